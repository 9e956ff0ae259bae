//! No import cycles among a crate's modules, in the server (`crates/server/src`), the
//! chat core (`crates/core/src`) and the cluster broker (`crates/cluster/src`).
//!
//! The README ("No module cycles") and each crate's `lib.rs` describe a layering:
//! every module only uses modules below it. A cycle (`a` uses `b`, `b` uses `a`, maybe
//! through others) makes that layering false: the modules in it can no longer be read,
//! tested or replaced one at a time. This test keeps the layering true with no extra
//! tool, in `cargo test --workspace`.
//!
//! How: each `src/*.rs` file (except `lib.rs`, the root, and `main.rs`, a binary) and
//! each `src/<dir>/` module (with every file under it) is one node. Comments, strings
//! and char literals are blanked out, then every `crate::NAME` path (and each item of a
//! `use crate::{..}` group) that names another top-level module is an edge. `super::`
//! and `self::` stay inside a module and are ignored; so are items reached through the
//! root's re-exports (`crate::Server`), which name no module.
//!
//! Reading a failure: for each set of modules that reach each other it prints the
//! shortest cycle, `cycle: a -> b -> a`, then every edge among those modules with the
//! `file:line`s that create it, `*` marking the edges on that cycle. Remove one
//! direction (often by moving the shared item down into a module both can use) and
//! rerun. `cargo test -p chat-server --test module_graph -- --nocapture` prints the
//! whole graph.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// Edges `from -> to`, each with the `file:line`s that create it.
type Edges = BTreeMap<(String, String), Vec<String>>;

/// One source file: the top-level module it belongs to, its path for messages, its text.
struct Source {
    module: String,
    path: String,
    text: String,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// If a raw string (`r"`, `r#"`, `br#"`, `cr"`) starts at `i`: its opening's length and `#` count.
fn raw_string_at(c: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident(c[i - 1]) {
        return None;
    }
    let mut j = i + usize::from(matches!(c.get(i), Some('b' | 'c')));
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&x| x == '#').count();
    (c.get(j + hashes) == Some(&'"')).then_some((j + hashes + 1 - i, hashes))
}

/// The source with comments, strings and char literals replaced by spaces (newlines kept,
/// so positions and line numbers stay those of the original).
fn strip(src: &str) -> Vec<char> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::with_capacity(c.len());
    let mut i = 0;
    while i < c.len() {
        let start = i;
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0; // block comments nest
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some((open, hashes)) = raw_string_at(&c, i) {
            i += open;
            while i < c.len() && !(c[i] == '"' && c[i + 1..].iter().take(hashes).all(|&x| x == '#'))
            {
                i += 1;
            }
            i += 1 + hashes;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c[i] == '\'' && next == Some('\\') {
            i += 3; // `'\n'`, `'\''`, `'\u{..}'`: up to the next quote
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i += 3; // `'x'`; a lifetime (`'a`) is kept as code
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        }
        let end = i.min(c.len());
        out.extend(
            c[start..end]
                .iter()
                .map(|&x| if x == '\n' { '\n' } else { ' ' }),
        );
        i = end;
    }
    out
}

fn word_at(c: &[char], i: usize) -> String {
    c[i..].iter().take_while(|&&x| is_ident(x)).collect()
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while c.get(i).is_some_and(|x| x.is_whitespace()) {
        i += 1;
    }
    i
}

fn line_of(c: &[char], i: usize) -> usize {
    1 + c[..i].iter().filter(|&&x| x == '\n').count()
}

/// The first segment of every `crate::` path in (stripped) code, with its line:
/// `crate::a::X` gives `a`; `crate::{a::{X, Y}, b}` gives `a` and `b`.
fn crate_paths(c: &[char]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for at in 0..c.len() {
        let boundary = at == 0 || !is_ident(c[at - 1]);
        if !boundary || word_at(c, at) != "crate" {
            continue;
        }
        let mut j = skip_ws(c, at + 5);
        if c.get(j) != Some(&':') || c.get(j + 1) != Some(&':') {
            continue; // `pub(crate)`, `crate` alone
        }
        j = skip_ws(c, j + 2);
        if c.get(j) != Some(&'{') {
            found.push((word_at(c, j), line_of(c, j)));
            continue;
        }
        let (mut depth, mut expect) = (0, true);
        while j < c.len() {
            match c[j] {
                '{' => depth += 1,
                '}' if depth == 1 => break,
                '}' => depth -= 1,
                ',' if depth == 1 => expect = true,
                x if depth == 1 && expect && is_ident(x) => {
                    let word = word_at(c, j);
                    j += word.len() - 1;
                    found.push((word, line_of(c, j)));
                    expect = false;
                }
                _ => {}
            }
            j += 1;
        }
    }
    found
}

/// Every edge between distinct modules of `modules` that `files` create.
fn edges(modules: &BTreeSet<String>, files: &[Source]) -> Edges {
    let mut edges = Edges::new();
    for file in files {
        for (to, line) in crate_paths(&strip(&file.text)) {
            if to != file.module && modules.contains(&to) {
                let at = format!("{}:{line}", file.path);
                edges.entry((file.module.clone(), to)).or_default().push(at);
            }
        }
    }
    edges
}

fn successors<'a>(edges: &'a Edges, from: &'a str) -> impl Iterator<Item = &'a String> {
    edges.keys().filter(move |(f, _)| f == from).map(|(_, t)| t)
}

/// The modules reachable from `from` through one edge or more.
fn reachable(edges: &Edges, from: &str) -> BTreeSet<String> {
    let (mut seen, mut todo) = (BTreeSet::new(), vec![from.to_string()]);
    while let Some(m) = todo.pop() {
        for next in successors(edges, &m) {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// The shortest way from `start` back to itself through `within`, as `[start, .., start]`.
fn shortest_cycle(edges: &Edges, within: &BTreeSet<String>, start: &str) -> Vec<String> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    let mut last = start;
    'search: while let Some(at) = queue.pop_front() {
        for next in successors(edges, at).filter(|n| within.contains(*n)) {
            if next == start {
                last = at;
                break 'search;
            }
            if !parent.contains_key(next.as_str()) {
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    let mut path = vec![start.to_string()];
    while last != start {
        path.insert(1, last.to_string());
        last = parent[last];
    }
    path.push(start.to_string());
    path
}

/// One report paragraph per cycle (strongly connected set of ≥ 2 modules); empty if none.
fn cycles(modules: &BTreeSet<String>, edges: &Edges) -> String {
    let reach: BTreeMap<&String, BTreeSet<String>> =
        modules.iter().map(|m| (m, reachable(edges, m))).collect();
    let (mut done, mut report) = (BTreeSet::new(), String::new());
    for m in modules {
        if done.contains(m) || !reach[m].contains(m) {
            continue;
        }
        let tangle: BTreeSet<String> = reach[m]
            .iter()
            .filter(|u| reach[u].contains(m))
            .cloned()
            .collect();
        done.extend(tangle.iter().cloned());
        let cycle = tangle
            .iter()
            .map(|s| shortest_cycle(edges, &tangle, s))
            .min_by_key(Vec::len)
            .unwrap();
        let tangled: Vec<&str> = tangle.iter().map(String::as_str).collect();
        report += &format!("cycle: {}\n", cycle.join(" -> "));
        report += &format!(
            "  edges among {} (* = on the cycle above):\n",
            tangled.join(", ")
        );
        for ((from, to), at) in edges
            .iter()
            .filter(|((f, t), _)| tangle.contains(f) && tangle.contains(t))
        {
            let on_cycle = cycle.windows(2).any(|w| w[0] == *from && w[1] == *to);
            let mark = if on_cycle { '*' } else { ' ' };
            report += &format!("  {mark} {from} -> {to}  ({})\n", at.join(", "));
        }
    }
    report
}

/// A crate's top-level modules and source files; paths in messages start with `label`.
fn load(label: &str, src: &Path) -> (BTreeSet<String>, Vec<Source>) {
    let read = |p: &Path| fs::read_dir(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (mut modules, mut files) = (BTreeSet::new(), Vec::new());
    let mut entries: Vec<PathBuf> = read(src).map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut todo = Vec::new();
        if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            todo.push(path.clone());
        } else if path.is_dir()
            && (path.join("mod.rs").exists() || src.join(format!("{name}.rs")).exists())
        {
            todo.push(path.clone()); // `dir/mod.rs`, or `dir.rs` next to `dir/`
        } else {
            continue;
        }
        modules.insert(name.clone());
        while let Some(p) = todo.pop() {
            if p.is_dir() {
                todo.extend(read(&p).map(|e| e.unwrap().path()));
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text =
                    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let path = format!("{label}/src/{}", p.strip_prefix(src).unwrap().display());
                files.push(Source {
                    module: name.clone(),
                    path,
                    text,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (modules, files)
}

/// Builds and prints the module graph of `label` (a crate's directory, from the
/// workspace root), checks it is not trivially small, and fails on any cycle.
fn check(label: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (modules, files) = load(label, &root.join(label).join("src"));
    let edges = edges(&modules, &files);
    println!("{label}: {} modules, {} edges", modules.len(), edges.len());
    for ((from, to), at) in &edges {
        println!("  {from} -> {to}  ({})", at.join(", "));
    }
    assert!(
        modules.len() >= 8 && edges.len() >= 8,
        "{label}: only {} modules and {} edges found; is the parser broken?",
        modules.len(),
        edges.len()
    );
    let report = cycles(&modules, &edges);
    assert!(
        report.is_empty(),
        "{label} has module import cycles:\n{report}"
    );
}

#[test]
fn server_modules_have_no_cycles() {
    check("crates/server");
}

#[test]
fn core_modules_have_no_cycles() {
    check("crates/core");
}

#[test]
fn cluster_modules_have_no_cycles() {
    check("crates/cluster");
}

#[test]
fn parser_finds_exactly_the_real_edges_and_the_cycle() {
    let file = |module: &str, text: &str| Source {
        module: module.into(),
        path: format!("{module}.rs"),
        text: text.into(),
    };
    let files = [
        file(
            "a",
            r#"//! Uses [`crate::foo`].
use crate::b::Thing;
fn f() { let _ = "crate::bar"; }
"#,
        ),
        file(
            "b",
            r#"/* outer /* crate::foo */ crate::bar */
use crate::{
    a::X,
    c::{self, Y},
};
"#,
        ),
        file(
            "c",
            r##"pub(crate) fn g<'x>(_: &'x str) -> char { let _ = r#"crate::foo "q""#; '"' }
use crate::d; use super::foo; use crate::c::g;
"##,
        ),
        file(
            "d",
            r#"/// crate::bar
const S: &str = "\" crate::foo";
const C: char = '\'';
"#,
        ),
    ];
    let modules: BTreeSet<String> = ["a", "b", "c", "d", "foo", "bar"].map(String::from).into();
    let found = edges(&modules, &files);
    let listed: Vec<String> = found
        .iter()
        .map(|((f, t), at)| format!("{f}->{t} {}", at.join(",")))
        .collect();
    assert_eq!(
        listed,
        ["a->b a.rs:2", "b->a b.rs:3", "b->c b.rs:4", "c->d c.rs:2"]
    );
    let report = cycles(&modules, &found);
    assert!(report.contains("cycle: a -> b -> a\n"), "{report}");
    assert!(report.contains("* a -> b  (a.rs:2)\n"), "{report}");
    assert!(report.contains("* b -> a  (b.rs:3)\n"), "{report}");
    assert!(!report.contains("c ->"), "c is not in the cycle:\n{report}");
}
