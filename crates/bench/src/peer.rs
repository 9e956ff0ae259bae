//! The peers' protocols (`--protocol=irc|nats`), without I/O: what a request becomes
//! on the wire, and what received bytes mean, for comparing our server with IRC
//! servers (InspIRCd, ngIRCd) and nats-server under the same load (issue #24).
//!
//! The driver keeps speaking in our protocol's terms ([`Request`], [`Response`]); a
//! [`PeerState`] translates:
//!
//! | request | IRC | NATS |
//! |---|---|---|
//! | `Name` | `NICK n`, `USER n 0 * :n` | `CONNECT {"verbose":false,"pedantic":false,"echo":false}`, `PING` |
//! | `CreateRoom`/`JoinRoom` | `JOIN #title`, once `001` came | `SUB room.<title> 1`, `PING` |
//! | `Chat` | `PRIVMSG #title :text` | `PUB room.<title> len`, text |
//!
//! and back: our own join echo (IRC `:me!… JOIN #title`; NATS the `PONG` after the
//! `SUB`) becomes the join notice the driver waits for, another member's JOIN the
//! "joined" notice, `PRIVMSG`/`MSG` a [`Response::Chat`]; `PING` is answered here
//! (the answer goes into the outbound bytes), other numerics and `+OK` are ignored,
//! IRC `ERROR`/`4xx`/`5xx` replies and NATS `-ERR` become [`PeerEvent::Error`].
//!
//! The chat text is [`crate::payload`]'s `b<sender>:<seq>:<t_ns>:<step>[ xxx]`: ASCII
//! digits, `b`, `:`, space and `x`, so IRC-safe (no CR, LF or NUL, and it does not
//! start with `:`). IRC lines are at most 512 bytes with CRLF: [`irc_max_pad`] says
//! how much padding fits.

use chat_proto::{Request, Response};

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 1459/2812 client protocol.
    Irc,
    /// NATS core client protocol.
    Nats,
}

/// IRC's line limit, CRLF included (RFC 1459 §2.3).
pub const IRC_LINE_MAX: usize = 512;
/// Room for the `:nick!user@host ` prefix the server adds when relaying a PRIVMSG,
/// which must fit the same 512 bytes (servers cut longer lines).
pub const IRC_PREFIX_RESERVE: usize = 120;
/// The longest stamp [`crate::payload::write_text`] writes (u32, u32, u64, u32).
pub const STAMP_MAX: usize = "b4294967295:4294967295:18446744073709551615:4294967295".len();

/// The most `--pad` bytes an IRC chat to `#title` can carry and still fit one line
/// as relayed to the other members.
pub fn irc_max_pad(title_len: usize) -> usize {
    let fixed = "PRIVMSG #".len() + title_len + " :".len() + STAMP_MAX + 2 + IRC_PREFIX_RESERVE;
    IRC_LINE_MAX.saturating_sub(fixed)
}

/// What received bytes meant.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerEvent<'a> {
    /// A message in our protocol's terms, for the driver.
    Message(Response<'a>),
    /// The server refused something or is closing: its words.
    Error(String),
}

/// One connection's protocol state.
#[derive(Debug, Clone)]
pub struct PeerState {
    protocol: Protocol,
    /// The room's title (`#title` / `room.<title>`), once asked to join.
    title: Option<String>,
    /// Our nick (IRC), to tell our own JOIN echo from another member's.
    nick: String,
    /// IRC: `001` arrived (registration done; JOIN before it would be refused).
    welcomed: bool,
    /// IRC: a JOIN asked for before `001`, sent when it comes.
    join_pending: bool,
    /// NATS: PONGs still to come for our PINGs, and whether SUB's PING was sent.
    pongs_due: u32,
    subscribed: bool,
    joined: bool,
}

impl PeerState {
    /// A fresh connection speaking `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            title: None,
            nick: String::new(),
            welcomed: false,
            join_pending: false,
            pongs_due: 0,
            subscribed: false,
            joined: false,
        }
    }

    /// Whether our own join was confirmed.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// Appends what `request` becomes to `out`. Requests with no equivalent
    /// (`/rooms`, leaving) are dropped: the driver does not use them with peers.
    pub fn encode(&mut self, request: &Request, out: &mut Vec<u8>) {
        match (self.protocol, request) {
            (Protocol::Irc, Request::Name { name }) => {
                self.nick = name.clone();
                push(
                    out,
                    &["NICK ", name, "\r\nUSER ", name, " 0 * :", name, "\r\n"],
                );
            }
            (Protocol::Nats, Request::Name { .. }) => {
                push(
                    out,
                    &[
                        r#"CONNECT {"verbose":false,"pedantic":false,"echo":false}"#,
                        "\r\nPING\r\n",
                    ],
                );
                self.pongs_due += 1;
            }
            (_, Request::CreateRoom { title }) => self.join(title.clone(), out),
            (_, Request::JoinRoom { room_id }) => self.join(room_id.to_string(), out),
            (Protocol::Irc, Request::Chat { text }) => {
                let title = self.title.as_deref().unwrap_or("");
                push(out, &["PRIVMSG #", title, " :", text, "\r\n"]);
            }
            (Protocol::Nats, Request::Chat { text }) => {
                let title = self.title.as_deref().unwrap_or("");
                let len = text.len().to_string();
                push(out, &["PUB room.", title, " ", &len, "\r\n", text, "\r\n"]);
            }
            _ => {}
        }
    }

    fn join(&mut self, title: String, out: &mut Vec<u8>) {
        self.title = Some(title);
        match self.protocol {
            Protocol::Irc if self.welcomed => self.send_join(out),
            Protocol::Irc => self.join_pending = true,
            Protocol::Nats => {
                let title = self.title.as_deref().unwrap_or("");
                push(out, &["SUB room.", title, " 1\r\nPING\r\n"]);
                self.pongs_due += 1;
                self.subscribed = true;
            }
        }
    }

    fn send_join(&mut self, out: &mut Vec<u8>) {
        let title = self.title.as_deref().unwrap_or("");
        push(out, &["JOIN #", title, "\r\n"]);
        self.join_pending = false;
    }

    /// The notice the driver waits for once this client is in `title`.
    pub fn joined_notice(title: &str) -> String {
        format!("방제[{title}] 방에 입장했습니다.")
    }

    /// Decodes every complete message at the start of `data`, handing each event to
    /// `on_event` and appending answers (PONG, a held JOIN) to `out`. Returns how
    /// many bytes were used; the rest is an incomplete message.
    pub fn decode<F>(&mut self, data: &[u8], out: &mut Vec<u8>, mut on_event: F) -> usize
    where
        F: FnMut(PeerEvent<'_>),
    {
        let mut used = 0;
        loop {
            let rest = &data[used..];
            let Some(eol) = rest.iter().position(|&b| b == b'\n') else {
                return used;
            };
            let line = trim_cr(&rest[..eol]);
            match self.protocol {
                Protocol::Irc => {
                    used += eol + 1;
                    self.irc_line(line, out, &mut on_event);
                }
                Protocol::Nats => {
                    if let Some(head) = line.strip_prefix(b"MSG ") {
                        // MSG <subject> <sid> [reply-to] <#bytes>
                        let Some(len) = head
                            .rsplit(|&b| b == b' ')
                            .next()
                            .and_then(|n| std::str::from_utf8(n).ok())
                            .and_then(|n| n.parse::<usize>().ok())
                        else {
                            used += eol + 1;
                            on_event(PeerEvent::Error(format!(
                                "bad MSG line: {}",
                                String::from_utf8_lossy(line)
                            )));
                            continue;
                        };
                        let body = eol + 1;
                        if rest.len() < body + len + 2 {
                            return used;
                        }
                        let subject = head.split(|&b| b == b' ').next().unwrap_or(b"");
                        let member = String::from_utf8_lossy(subject).into_owned();
                        let text = String::from_utf8_lossy(&rest[body..body + len]).into_owned();
                        used += body + len + 2;
                        on_event(PeerEvent::Message(Response::Chat {
                            member: member.into(),
                            text: text.into(),
                        }));
                    } else {
                        used += eol + 1;
                        self.nats_line(line, out, &mut on_event);
                    }
                }
            }
        }
    }

    fn nats_line<F>(&mut self, line: &[u8], out: &mut Vec<u8>, on_event: &mut F)
    where
        F: FnMut(PeerEvent<'_>),
    {
        if line == b"PING" {
            out.extend_from_slice(b"PONG\r\n");
        } else if line == b"PONG" {
            self.pongs_due = self.pongs_due.saturating_sub(1);
            if self.subscribed && self.pongs_due == 0 && !self.joined {
                self.joined = true;
                let title = self.title.as_deref().unwrap_or("");
                on_event(PeerEvent::Message(Response::SystemMessage {
                    text: Self::joined_notice(title).into(),
                }));
            }
        } else if line.starts_with(b"-ERR") {
            on_event(PeerEvent::Error(String::from_utf8_lossy(line).into_owned()));
        }
        // INFO and +OK: nothing to do.
    }

    fn irc_line<F>(&mut self, line: &[u8], out: &mut Vec<u8>, on_event: &mut F)
    where
        F: FnMut(PeerEvent<'_>),
    {
        let (prefix, rest) = match line.strip_prefix(b":") {
            Some(p) => match p.iter().position(|&b| b == b' ') {
                Some(sp) => (&p[..sp], &p[sp + 1..]),
                None => return,
            },
            None => (&b""[..], line),
        };
        let (command, params) = match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (rest, &b""[..]),
        };
        let nick = prefix.split(|&b| b == b'!').next().unwrap_or(b"");
        match command {
            b"PING" => {
                out.extend_from_slice(b"PONG ");
                out.extend_from_slice(params);
                out.extend_from_slice(b"\r\n");
            }
            b"001" => {
                self.welcomed = true;
                if self.join_pending {
                    self.send_join(out);
                }
            }
            b"PRIVMSG" => {
                // params: `#room :text`
                let text = match params.windows(2).position(|w| w == b" :") {
                    Some(at) => &params[at + 2..],
                    None => return,
                };
                on_event(PeerEvent::Message(Response::Chat {
                    member: String::from_utf8_lossy(nick).into_owned().into(),
                    text: String::from_utf8_lossy(text).into_owned().into(),
                }));
            }
            b"JOIN" => {
                let nick = String::from_utf8_lossy(nick);
                if nick == self.nick {
                    if !self.joined {
                        self.joined = true;
                        let title = self.title.as_deref().unwrap_or("");
                        on_event(PeerEvent::Message(Response::SystemMessage {
                            text: Self::joined_notice(title).into(),
                        }));
                    }
                } else {
                    on_event(PeerEvent::Message(Response::SystemMessage {
                        text: format!("[{nick}] 님이 입장했습니다.").into(),
                    }));
                }
            }
            b"ERROR" => on_event(PeerEvent::Error(String::from_utf8_lossy(line).into_owned())),
            // Errors that matter to the bench: nick in use, cannot join, flooding,
            // not registered... (4xx/5xx). Other numerics and commands are ignored.
            [b'4' | b'5', b'0'..=b'9', b'0'..=b'9'] => {
                on_event(PeerEvent::Error(String::from_utf8_lossy(line).into_owned()));
            }
            _ => {}
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn push(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(state: &mut PeerState, data: &[u8]) -> (Vec<String>, Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut got = Vec::new();
        let used = state.decode(data, &mut out, |e| got.push(format!("{e:?}")));
        (got, out, used)
    }

    #[test]
    fn irc_registers_then_joins_after_001() {
        let mut s = PeerState::new(Protocol::Irc);
        let mut out = Vec::new();
        s.encode(&Request::Name { name: "u3".into() }, &mut out);
        s.encode(
            &Request::CreateRoom {
                title: "ab12.0".into(),
            },
            &mut out,
        );
        assert_eq!(out, b"NICK u3\r\nUSER u3 0 * :u3\r\n");
        let wire = b":irc.local NOTICE * :*** Looking up\r\n:irc.local 001 u3 :Welcome\r\n:irc.loc";
        let (got, out, used) = events(&mut s, wire);
        assert!(got.is_empty());
        assert_eq!(out, b"JOIN #ab12.0\r\n");
        // The incomplete line is left for the next read.
        assert_eq!(used, wire.len() - b":irc.loc".len());
        let (got, _, _) = events(&mut s, b":u3!u3@127.0.0.1 JOIN :#ab12.0\r\n");
        assert_eq!(
            got,
            [r#"Message(SystemMessage { text: "방제[ab12.0] 방에 입장했습니다." })"#]
        );
        assert!(s.joined());
        let (got, _, _) = events(&mut s, b":u4!~u4@localhost JOIN #ab12.0\r\n");
        assert_eq!(
            got,
            [r#"Message(SystemMessage { text: "[u4] 님이 입장했습니다." })"#]
        );
    }

    #[test]
    fn irc_chat_bytes_and_deliveries() {
        let mut s = PeerState::new(Protocol::Irc);
        let mut out = Vec::new();
        s.encode(&Request::Name { name: "u1".into() }, &mut out);
        events(&mut s, b":srv 001 u1 :hi\r\n");
        out.clear();
        s.encode(&Request::CreateRoom { title: "r".into() }, &mut out);
        out.clear();
        s.encode(
            &Request::Chat {
                text: "b1:0:5:0 xx".into(),
            },
            &mut out,
        );
        assert_eq!(out, b"PRIVMSG #r :b1:0:5:0 xx\r\n");
        let wire =
            b":u2!u2@h PRIVMSG #r :b2:7:9:0\r\nPING :irc.local\r\n:srv 353 u1 = #r :u1 u2\r\n";
        let (got, out, used) = events(&mut s, wire);
        assert_eq!(got, [r#"Message(Chat { member: "u2", text: "b2:7:9:0" })"#]);
        assert_eq!(out, b"PONG :irc.local\r\n");
        assert_eq!(used, wire.len());
        let (got, _, _) = events(&mut s, b":srv 433 * u1 :Nickname is already in use\n");
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("Error("));
    }

    #[test]
    fn nats_handshake_pub_and_msg() {
        let mut s = PeerState::new(Protocol::Nats);
        let mut out = Vec::new();
        s.encode(&Request::Name { name: "u1".into() }, &mut out);
        s.encode(
            &Request::CreateRoom {
                title: "r.0".into(),
            },
            &mut out,
        );
        assert_eq!(
            out,
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nPING\r\n\
              SUB room.r.0 1\r\nPING\r\n"
        );
        let (got, _, _) = events(&mut s, b"INFO {\"server_id\":\"x\"}\r\nPONG\r\n");
        assert!(got.is_empty());
        let (got, _, _) = events(&mut s, b"PONG\r\n");
        assert_eq!(
            got,
            [r#"Message(SystemMessage { text: "방제[r.0] 방에 입장했습니다." })"#]
        );
        out.clear();
        s.encode(
            &Request::Chat {
                text: "b1:0:5:0".into(),
            },
            &mut out,
        );
        assert_eq!(out, b"PUB room.r.0 8\r\nb1:0:5:0\r\n");
        // A MSG split inside its payload waits for the rest.
        let wire = b"MSG room.r.0 1 8\r\nb2:3:4:0\r\nPING\r\n";
        let (got, out, used) = events(&mut s, &wire[..22]);
        assert!(got.is_empty() && out.is_empty());
        assert_eq!(used, 0);
        let (got, out, used) = events(&mut s, wire);
        assert_eq!(
            got,
            [r#"Message(Chat { member: "room.r.0", text: "b2:3:4:0" })"#]
        );
        assert_eq!(out, b"PONG\r\n");
        assert_eq!(used, wire.len());
        let (got, _, _) = events(&mut s, b"-ERR 'Slow Consumer'\r\n");
        assert_eq!(got, [r#"Error("-ERR 'Slow Consumer'")"#]);
    }

    #[test]
    fn irc_padding_budget() {
        // 512 - (9 + 6 + 2 + 54 + 2 + 120) = 319.
        assert_eq!(irc_max_pad(6), 319);
        assert_eq!(irc_max_pad(1000), 0);
    }
}
