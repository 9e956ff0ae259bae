//! The web client end to end, in a real headless Chromium: `web-tests/e2e.mjs`
//! (playwright-core driving Debian's `chromium`) against this build's server. It types
//! the commands, chats with a TCP client, checks that a chat cannot pass for a system
//! message, composes Korean through the IME, restarts the server under the page, and
//! loads the page over https (a pair from `chat-server cert`) to chat over wss; and the
//! page's own behaviour: one CSHello with `rooms`, `history`, `accounts`, `resume`,
//! `direct` (direct messages: `/msg` between two pages shown apart from chats with
//! the reply button, `/ignore` and `/unignore` with the server's texts) and
//! `moderation` (against a server with a temporary `--data-dir`, an owner's page and
//! a guest's: the owner's `/topic` shown on the guest's page under the room in the
//! header, as a line and in the room list, as text; `/kick` with a quoted name and a
//! reason, after which the kicked page shows the kick line and no current room having
//! sent nothing; `/ban` that keeps it out until `/unban`; `/op`, `/deop`, `/owner`
//! with the server's refusals, usage lines, the topic cleared, the room handed on with
//! "내 방" moving with it, local lines where the server does not offer it, and axe-core
//! with a long topic, light and dark, at both widths),
//! (the account panel hidden where the server, run with `--no-store`, grants no
//! accounts), the room list updated
//! by the server's push with no `/rooms` sent (also right after a chat), a room's
//! earlier chats shown as history with the server's times and "이전 메시지 더 보기"
//! paging back (a server run with `--history=60`), the log following 50 chats and the
//! "새 메시지" chip when scrolled up, own chats shown only once accepted, room switching
//! by click with the current room marked, focus kept across room-list updates, times,
//! the unread count in the title, name and room restored after a reconnect and a reload
//! with no line shown twice, the phone layout, no console errors, and axe-core (no
//! serious or critical violations) at 1280×800 and 390×844. Against a server with a
//! temporary `--data-dir`, the accounts: registering from the panel, the token (never
//! a password) kept in localStorage, a reload logged in again by CSResume before the
//! room is restored, `/password` replacing the token, a registered room marked "내 방"
//! that stays "(비어 있음)" when left and goes with a two-step delete, `/logout` then a
//! reload as a guest, `/login` shown masked, a tampered or expired token dropped with
//! the login form shown, and axe-core with the account panel logged out and logged in.
//! With `SCREENSHOT_DIR` set, e2e.mjs also writes web-desktop.png and web-phone.png.
//!
//! Needs `node`, `chromium` and `web-tests/node_modules` (`npm ci --prefix web-tests`);
//! `.ci/run` installs them. Without them this test says loudly that it skipped, and
//! fails under `CI=true`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_web_client_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!node_ok).then_some("node"),
        (!Path::new(&chromium).exists()).then_some("chromium"),
        (!root.join("web-tests/node_modules/playwright-core").exists())
            .then_some("web-tests/node_modules (npm ci --prefix web-tests)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the browser tests lack {missing:?}: .ci/run installs them"
        );
        eprintln!("\n*** SKIPPED: the browser tests need {missing:?} ***\n");
        return;
    }
    let mut child = Command::new("node")
        .arg(root.join("web-tests/e2e.mjs"))
        .env("SERVER_BIN", env!("CARGO_BIN_EXE_chat-server"))
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    // Bounded: the script's own waits are 10 s each; the whole run takes seconds.
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("the browser tests' output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
