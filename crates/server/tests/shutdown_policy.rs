//! `/shutdown` refused by policy, end to end. The address rule itself is a unit test
//! in `config.rs`; here a server started with `ShutdownPolicy::None` (and the binary
//! with `--shutdown-from=none`) must answer `/shutdown` — in both formats, including
//! the protobuf bytes the reference client sends — with `서버를 종료할 권한이 없습니다.`,
//! count it in `chat_shutdown_refused_total`, and keep serving everyone. Only
//! loopback addresses are used: `None` refuses them too, which `Local` would not.

mod support;

use chat_proto::{Request, WireFormat};
use chat_server::{ServerConfig, ShutdownPolicy};
use support::*;

const REFUSED: &str = "서버를 종료할 권한이 없습니다.";

#[test]
fn shutdown_from_none_is_refused_and_the_server_keeps_serving() {
    let server = TestServer::with_config(ServerConfig {
        shutdown_from: ShutdownPolicy::None,
        ..config_with_metrics(2)
    });
    let m = server.metrics_addr();
    let mut j = server.client(WireFormat::Json);
    let mut p = server.client(WireFormat::Protobuf);
    j.create("still here");
    p.join(1, "still here");
    j.expect_system(&entered(&p.default_name()));

    j.send(&Request::Shutdown);
    j.expect_system(REFUSED);
    metric_eventually(m, "chat_shutdown_refused_total", 1);
    // What the reference client sends: Type{CS_SHUTDOWN} + an empty CSLeaveRoom body.
    p.send_raw(&[0x00, 0x02, 0x08, 0x06, 0x00, 0x00]);
    p.expect_system(REFUSED);
    metric_eventually(m, "chat_shutdown_refused_total", 2);

    // Nobody else heard of it, and everything still works, for new clients too.
    j.expect_silence();
    p.chat("안녕");
    j.expect_chat(&p.default_name(), "안녕");
    let mut late = server.client(WireFormat::Json);
    late.join(1, "still here");
    j.expect_system(&entered(&late.default_name()));
    p.expect_system(&entered(&late.default_name()));
    metric_eventually(m, "chat_connections", 3);

    // Only the handle stops it.
    server.stop().expect("run() returns Ok");
    j.expect_eof();
}

#[test]
fn binary_with_shutdown_from_none_refuses_and_exits_zero_on_sigterm() {
    let mut server = BinaryServer::start(&["--shutdown-from=none"]);
    let mut c = server.client(WireFormat::Json);
    c.send(&Request::Shutdown);
    c.expect_system(REFUSED);
    c.set_name("after");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(server.pid(), libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    c.expect_eof();
    let log = server.stderr.lock().unwrap().clone();
    assert!(
        log.contains("shutdown refused"),
        "the refusal is not logged:\n{log}"
    );
}
