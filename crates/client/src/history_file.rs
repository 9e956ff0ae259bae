//! The line editor's history, kept between runs in
//! `$XDG_STATE_HOME/chat-client/history` (default `~/.local/state/chat-client/history`;
//! a relative `XDG_STATE_HOME` is ignored, as the XDG spec says). Terminal sessions
//! only: piped runs neither read nor write it.
//!
//! One entered line per line of the file, oldest first. The last [`LIMIT`] lines are
//! loaded at start; each entered line is appended as it is entered, so a crash or a
//! kill loses nothing. The file is cut back to [`LIMIT`] lines (rewritten through a
//! temporary file and a rename) when a load finds it has grown past twice that, so it
//! stays bounded without a rewrite per line.
//!
//! History is a convenience: every failure here (no home directory, a read-only
//! disk, a file that is not UTF-8) is silent and leaves the session running. The file
//! is created readable by its owner only, since it holds what the user wrote.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The most lines loaded and kept.
pub const LIMIT: usize = 1000;

/// How much of the end of the file is read at most: far more than [`LIMIT`] lines
/// of any sane length, so a huge file cannot make the start slow.
const MAX_READ: u64 = 1024 * 1024;

/// Where history is kept, if a place can be found.
#[derive(Debug, Clone)]
pub struct HistoryFile {
    path: PathBuf,
}

impl HistoryFile {
    /// The file the environment names (`XDG_STATE_HOME`, else `HOME`).
    pub fn from_env() -> Option<Self> {
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let state = absolute("XDG_STATE_HOME")
            .or_else(|| absolute("HOME").map(|home| home.join(".local").join("state")))?;
        Some(Self::at(state.join("chat-client").join("history")))
    }

    /// History kept at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last [`LIMIT`] non-blank lines, oldest first; empty if the file cannot be
    /// read. Lines that are not UTF-8 or hold control characters are skipped (the
    /// editor never enters such lines, so they came from elsewhere).
    pub fn load(&self) -> Vec<String> {
        let Ok((bytes, total)) = self.read_tail() else {
            return Vec::new();
        };
        let mut lines: Vec<String> = bytes
            .split(|&b| b == b'\n')
            .filter_map(|line| std::str::from_utf8(line).ok())
            .filter(|line| !line.trim().is_empty() && !line.chars().any(char::is_control))
            .map(str::to_owned)
            .collect();
        let excess = lines.len().saturating_sub(LIMIT);
        lines.drain(..excess);
        if total > 2 * LIMIT {
            let _ = self.rewrite(&lines);
        }
        lines
    }

    /// Appends one entered line; failures are ignored.
    pub fn append(&self, line: &str) {
        let _ = self.try_append(line);
    }

    /// The end of the file (at most [`MAX_READ`] bytes, starting at a line boundary)
    /// and how many lines the whole file has, counting a cut-off read as over the cap.
    fn read_tail(&self) -> io::Result<(Vec<u8>, usize)> {
        let mut file = File::open(&self.path)?;
        let len = file.metadata()?.len();
        let mut bytes = Vec::new();
        if len > MAX_READ {
            file.seek(SeekFrom::Start(len - MAX_READ))?;
            file.take(MAX_READ).read_to_end(&mut bytes)?;
            // The first line is probably cut: drop it.
            let start = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            bytes.drain(..start);
            let lines = bytes.iter().filter(|&&b| b == b'\n').count();
            // More was skipped, so the file is over the cap however long its lines.
            return Ok((bytes, lines + 2 * LIMIT + 1));
        }
        file.read_to_end(&mut bytes)?;
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        Ok((bytes, lines))
    }

    fn try_append(&self, line: &str) -> io::Result<()> {
        // A line break would make one entry two; the editor never produces one.
        if line.contains('\n') {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        // One write per line, so concurrent clients interleave whole lines.
        file.write_all(format!("{line}\n").as_bytes())
    }

    /// Replaces the file with `lines`, atomically (a temporary file, then rename).
    fn rewrite(&self, lines: &[String]) -> io::Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        let result = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&tmp, &self.path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("chat-client-history-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn appends_and_loads_creating_the_directory() {
        let dir = temp_dir("append");
        let history = HistoryFile::at(dir.join("a").join("history"));
        assert!(history.load().is_empty(), "no file yet: nothing, no error");
        history.append("first");
        history.append("두 번째");
        assert_eq!(history.load(), ["first", "두 번째"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn keeps_the_last_lines_and_cuts_the_file() {
        let dir = temp_dir("cap");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history");
        let text: String = (0..2 * LIMIT + 5).map(|i| format!("line {i}\n")).collect();
        fs::write(&path, text).unwrap();
        let history = HistoryFile::at(&path);
        let lines = history.load();
        assert_eq!(lines.len(), LIMIT);
        assert_eq!(lines[0], format!("line {}", LIMIT + 5));
        let on_disk = fs::read_to_string(&path).unwrap();
        assert_eq!(on_disk.lines().count(), LIMIT, "rewritten to the cap");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_content_and_unwritable_places_are_silent() {
        let dir = temp_dir("bad");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history");
        fs::write(&path, b"ok\n\xff\xfe\n  \nesc\x1b[2J\nlast").unwrap();
        assert_eq!(HistoryFile::at(&path).load(), ["ok", "last"]);
        // A directory where the file should be: reading and writing fail quietly.
        let blocked = HistoryFile::at(&dir);
        assert!(blocked.load().is_empty());
        blocked.append("lost");
        let _ = fs::remove_dir_all(&dir);
    }
}
