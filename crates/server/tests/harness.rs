//! Checks on the test support itself: the assertions the other files lean on must
//! fail when the server misbehaves. Each case provokes a real message the assertion
//! must not accept (an unexpected chat before the probe reply, a wrong member or
//! text), so a harness that could never fail would show up here.

mod support;

use chat_proto::WireFormat;
use support::*;

/// Two clients in room 1.
fn pair() -> (TestServer, Client, Client) {
    let server = TestServer::start();
    let mut a = server.client(WireFormat::Json);
    let mut b = server.client(WireFormat::Protobuf);
    a.create("r");
    b.join(1, "r");
    a.expect_system(&entered(&b.default_name()));
    (server, a, b)
}

#[test]
#[should_panic(expected = "expected nothing before the /rooms probe's reply")]
fn expect_silence_sees_a_pending_message() {
    let (_server, mut a, mut b) = pair();
    b.chat("you should not ignore me");
    b.expect_silence();
    a.expect_silence();
}

#[test]
#[should_panic(expected = "expected a chat message")]
fn expect_chat_checks_the_member() {
    let (_server, mut a, mut b) = pair();
    b.chat("hi");
    a.expect_chat("someone else", "hi");
}

#[test]
#[should_panic(expected = "expected a system message")]
fn expect_system_checks_the_text() {
    let (_server, mut a, mut b) = pair();
    b.leave("r");
    a.expect_system(&left("someone else"));
}

#[test]
fn the_probe_reply_follows_what_was_queued_before_it() {
    let (_server, mut a, mut b) = pair();
    b.chat("first");
    b.expect_silence(); // barrier: the chat is handled
    a.send(&chat_proto::Request::Rooms);
    a.expect_chat(&b.default_name(), "first");
    a.expect_rooms();
}
