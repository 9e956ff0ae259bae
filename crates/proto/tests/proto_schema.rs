//! Checks that the hand-written Rust mirror of `proto/message.proto` agrees with it.
//!
//! The protobuf types in `chat_proto::codec::protobuf` are written by hand with prost's
//! derive macros (no `protoc` at build time), so nothing but this test ties them to the
//! schema: a field renumbered, retyped or added on one side only would otherwise still
//! pass every round-trip test, because both ends of those tests are the Rust side.
//!
//! The test reads `proto/message.proto` at run time with a small parser for the subset
//! the file uses (proto2; messages with labelled scalar, enum and message fields;
//! nested messages and enums; `//` and `/* */` comments). Anything outside that subset
//! (`oneof`, `map`, options, `reserved`, imports, ...) makes the parser panic, so it
//! gets extended rather than silently skipping a construct. Then:
//!
//! * **Field numbers and wire types, Rust → wire.** Every mirrored prost struct is
//!   encoded from a sample with every field set (repeated fields with two elements) and
//!   the bytes are decoded generically (field number and wire type, no prost). Every
//!   field the .proto declares must appear on its number, with the wire type its
//!   declared type implies, once if singular and once per element if repeated; nothing
//!   else may appear. Nested messages are checked recursively.
//! * **Field types, wire → Rust.** For every mirrored message, bytes are built from the
//!   .proto alone with a distinctive value in every field, chosen so that a field of a
//!   neighbouring type would read it differently (an `int32` probe carries high bits
//!   that an `int32` drops but an `int64` keeps and is negative, which `uint32` and
//!   `sint32` read otherwise; a `bool` probe is 2; a `bytes` probe is not UTF-8; a
//!   repeated field gets two elements). The Rust struct decodes and re-encodes them, and
//!   they must come back as a parser of the declared types would leave them. Prost
//!   drops fields it does not know, so a field missing on the Rust side fails here too.
//! * **Enums.** Every value of `Type.MessageType` must exist in the Rust `MessageType`
//!   with the same number and the name prost-build would give it (`CS_NAME` →
//!   `CsName`), found through the derive's `TryFrom<i32>`; and the Rust enum may have
//!   no number (in -1024..=1024) the .proto lacks.
//! * **The codec.** Each request kind and response, encoded by the protobuf codec
//!   (whose hot-path responses are written by hand, not by prost), must send a `Type`
//!   frame that matches the schema and whose number is the `MessageType` value of the
//!   message the Rust side says it is (`RequestKind::name`, `Response::type_name`),
//!   then a body matching that message; every `MessageType` value must be sent by
//!   exactly one of them.
//!
//! The only hand-written correspondence is `mirrors()` (proto message ↔ prost struct,
//! with one sample value each, written as struct literals without `..` so a new Rust
//! field breaks the build until the sample sets it), `enum_mirrors()`, and
//! `NOT_MIRRORED` (messages the reference schema defines but neither side sends). A
//! .proto message or enum that none of them covers fails the test, as does an entry
//! that names something the .proto no longer has. Labels (`required` / `optional`) are
//! not compared: the Rust side declares every singular field `optional` on purpose (see
//! the codec's module docs). Types that share a wire encoding and a re-encoding
//! (`int64`/`uint64`/`sint64`, `uint32`/`sint32`, `string` read as `bytes`) cannot be
//! told apart this way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::ops::RangeInclusive;

use chat_proto::codec::protobuf::{self as pb, MessageType};
use chat_proto::codec::{encode_request, encode_response};
use chat_proto::frame::Frames;
use chat_proto::{Request, RequestKind, Response, RoomInfo, WireFormat};
use prost::Message;

/// The schema, read at test time.
const PROTO_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/message.proto");
/// How the schema is named in failure messages.
const PROTO_NAME: &str = "proto/message.proto";

// ---------------------------------------------------------------------------------
// The Rust side: the one table of correspondences
// ---------------------------------------------------------------------------------

/// A .proto message mirrored by a prost struct.
struct Mirror {
    /// The message's full name in the .proto, without the package (`SCRoomsResult.RoomInfo`).
    proto: &'static str,
    /// The Rust struct's name, taken from the type itself.
    rust: &'static str,
    /// The prost encoding of a value with every field set (repeated ones with two elements).
    sample: Vec<u8>,
    /// Decodes bytes into the Rust struct and encodes it again.
    reencode: fn(&[u8]) -> Result<Vec<u8>, prost::DecodeError>,
}

fn mirror<M: Message + Default>(proto: &'static str, sample: M) -> Mirror {
    fn reencode<M: Message + Default>(bytes: &[u8]) -> Result<Vec<u8>, prost::DecodeError> {
        Ok(M::decode(bytes)?.encode_to_vec())
    }
    let rust = std::any::type_name::<M>();
    Mirror {
        proto,
        rust: rust.rsplit("::").next().unwrap_or(rust),
        sample: sample.encode_to_vec(),
        reencode: reencode::<M>,
    }
}

/// Every mirrored message with a sample that sets every field. Struct literals without
/// `..Default::default()`, so adding a field to a Rust struct breaks the build here.
fn mirrors() -> Vec<Mirror> {
    let room = |n: i32| pb::ScRoomInfo {
        room_id: Some(-40_000 - n),
        title: Some(format!("방 {n}")),
        members: vec![format!("회원 {n}a"), format!("회원 {n}b")],
        topic: Some(format!("주제 {n}")),
    };
    vec![
        mirror(
            "Type",
            pb::Type {
                r#type: Some(MessageType::ScSystemMessage.into()),
            },
        ),
        mirror(
            "CSName",
            pb::CsName {
                name: Some("이름".to_owned()),
            },
        ),
        mirror("CSRooms", pb::Empty {}),
        mirror(
            "CSCreateRoom",
            pb::CsCreateRoom {
                title: Some("제목".to_owned()),
            },
        ),
        mirror(
            "CSJoinRoom",
            pb::CsJoinRoom {
                room_id: Some(-123_456),
            },
        ),
        // CSDeleteRoom is CSJoinRoom's shape: the codec uses one struct for both.
        mirror(
            "CSDeleteRoom",
            pb::CsJoinRoom {
                room_id: Some(-654_321),
            },
        ),
        mirror("CSLeaveRoom", pb::Empty {}),
        mirror(
            "CSChat",
            pb::CsChat {
                text: Some("안녕".to_owned()),
            },
        ),
        mirror("CSShutdown", pb::Empty {}),
        mirror(
            "SCRoomsResult",
            pb::ScRoomsResult {
                rooms: vec![room(1), room(2)],
            },
        ),
        mirror("SCRoomsResult.RoomInfo", room(3)),
        mirror(
            "SCChat",
            pb::ScChat {
                member: Some("보낸이".to_owned()),
                text: Some("내용".to_owned()),
                seq: Some(-7_000_000_000),
                time: Some(1_700_000_000_123),
            },
        ),
        mirror(
            "CSHistory",
            pb::CsHistory {
                count: Some(-40_001),
                before: Some(-9_000_000_000),
            },
        ),
        mirror(
            "SCHistory",
            pb::ScHistory {
                room_id: Some(-40_002),
                lines: vec![history_line(1), history_line(2)],
                more: Some(true),
            },
        ),
        mirror("SCHistory.Line", history_line(3)),
        mirror(
            "SCSystemMessage",
            pb::ScSystemMessage {
                text: Some("공지".to_owned()),
            },
        ),
        mirror(
            "CSHello",
            pb::CsHello {
                features: vec!["time".to_owned(), "기능".to_owned()],
            },
        ),
        mirror(
            "CSRegister",
            pb::CsRegister {
                password: Some("비밀번호".to_owned()),
            },
        ),
        mirror(
            "CSLogin",
            pb::CsLogin {
                name: Some("이름".to_owned()),
                password: Some("비밀번호".to_owned()),
            },
        ),
        mirror("CSLogout", pb::Empty {}),
        mirror(
            "CSPassword",
            pb::CsPassword {
                old: Some("옛".to_owned()),
                new: Some("새".to_owned()),
            },
        ),
        mirror(
            "SCHello",
            pb::ScHello {
                features: vec!["time".to_owned(), "기능".to_owned()],
                server: Some("chat-server/1".to_owned()),
            },
        ),
        mirror(
            "CSResume",
            pb::CsResume {
                name: Some("이름".to_owned()),
                token: Some("토큰".to_owned()),
            },
        ),
        mirror(
            "SCSession",
            pb::ScSession {
                token: Some("토큰".to_owned()),
                expires: Some(-1_700_000_000_000),
            },
        ),
        mirror(
            "CSDirect",
            pb::CsDirect {
                name: Some("받는이".to_owned()),
                text: Some("귓속말".to_owned()),
            },
        ),
        mirror(
            "CSIgnore",
            pb::CsIgnore {
                name: Some("이름".to_owned()),
                ignore: Some(true),
            },
        ),
        mirror(
            "SCDirect",
            pb::ScDirect {
                member: Some("보낸이".to_owned()),
                text: Some("귓속말".to_owned()),
                time: Some(-1_700_000_000_456),
                outgoing: Some(true),
            },
        ),
        mirror(
            "CSOp",
            pb::CsOp {
                name: Some("운영자".to_owned()),
                op: Some(true),
            },
        ),
        mirror(
            "CSOwner",
            pb::CsOwner {
                name: Some("새주인".to_owned()),
            },
        ),
        mirror(
            "CSKick",
            pb::CsKick {
                name: Some("손님".to_owned()),
                reason: Some("도배".to_owned()),
            },
        ),
        mirror(
            "CSBan",
            pb::CsBan {
                name: Some("손님".to_owned()),
                minutes: Some(-9_000_000_000),
                ban: Some(true),
            },
        ),
        mirror(
            "CSTopic",
            pb::CsTopic {
                text: Some("주제".to_owned()),
            },
        ),
        mirror(
            "SCTopic",
            pb::ScTopic {
                room_id: Some(-9_000_000_001),
                topic: Some("주제".to_owned()),
                by: Some("운영자".to_owned()),
            },
        ),
    ]
}

fn history_line(n: i64) -> pb::ScHistoryLine {
    pb::ScHistoryLine {
        seq: Some(-5_000_000_000 - n),
        time: Some(1_700_000_000_000 + n),
        member: Some(format!("회원 {n}")),
        text: Some(format!("줄 {n}")),
    }
}

/// Messages the reference schema defines but neither side ever sends, so the Rust side
/// has no struct for them. Nothing to compare; listed so the coverage check knows that
/// leaving them out is deliberate.
const NOT_MIRRORED: &[&str] = &[
    "SCNameResult",
    "SCCreateRoomResult",
    "SCJoinRoomResult",
    "SCLeaveRoomResult",
];

/// A .proto enum mirrored by a prost `Enumeration`.
struct EnumMirror {
    /// The enum's full name in the .proto, without the package.
    proto: &'static str,
    /// The Rust enum's name, taken from the type itself.
    rust: &'static str,
    /// The Rust variant with this number, if any: its name and its number back.
    variant: fn(i32) -> Option<(String, i32)>,
}

fn enum_mirror<E>(proto: &'static str) -> EnumMirror
where
    E: TryFrom<i32> + Into<i32> + Debug + Copy,
{
    fn variant<E: TryFrom<i32> + Into<i32> + Debug + Copy>(number: i32) -> Option<(String, i32)> {
        E::try_from(number)
            .ok()
            .map(|e| (format!("{e:?}"), e.into()))
    }
    let rust = std::any::type_name::<E>();
    EnumMirror {
        proto,
        rust: rust.rsplit("::").next().unwrap_or(rust),
        variant: variant::<E>,
    }
}

fn enum_mirrors() -> Vec<EnumMirror> {
    vec![enum_mirror::<MessageType>("Type.MessageType")]
}

/// The numbers tried to find Rust variants the .proto lacks (the derive offers no list).
const ENUM_SCAN: RangeInclusive<i32> = -1024..=1024;

/// The Rust variant name prost-build gives a .proto enum value: `SC_ROOMS_RESULT` →
/// `ScRoomsResult` (SCREAMING_SNAKE_CASE to UpperCamelCase; this schema's value names
/// carry no enum-name prefix for prost-build to strip).
fn rust_variant_name(proto_value: &str) -> String {
    proto_value
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let lower = part.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// The .proto side: a parser for the subset message.proto uses
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Required,
    Optional,
    Repeated,
}

impl Label {
    fn as_str(self) -> &'static str {
        match self {
            Label::Required => "required",
            Label::Optional => "optional",
            Label::Repeated => "repeated",
        }
    }
}

#[derive(Debug)]
struct FieldDef {
    label: Label,
    /// The type as written (`string`, `RoomInfo`, `.mju.Type`).
    type_name: String,
    name: String,
    number: u32,
}

impl FieldDef {
    /// The declaration as written: `repeated string members = 3`.
    fn decl(&self) -> String {
        format!(
            "{} {} {} = {}",
            self.label.as_str(),
            self.type_name,
            self.name,
            self.number
        )
    }
}

#[derive(Debug)]
struct MessageDef {
    fields: Vec<FieldDef>,
    line: usize,
}

impl MessageDef {
    fn field(&self, number: u32) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.number == number)
    }

    /// The fields for a failure message: `name = 1, text = 2`.
    fn list(&self) -> String {
        if self.fields.is_empty() {
            return "none".to_owned();
        }
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("{} = {}", f.name, f.number))
            .collect();
        fields.join(", ")
    }
}

#[derive(Debug)]
struct EnumDef {
    values: Vec<(String, i32)>,
    line: usize,
}

/// Messages and enums by full name without the package (`SCRoomsResult.RoomInfo`).
#[derive(Debug, Default)]
struct Schema {
    package: String,
    messages: BTreeMap<String, MessageDef>,
    enums: BTreeMap<String, EnumDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Bool,
    Fixed32,
    Sfixed32,
    Float,
    Fixed64,
    Sfixed64,
    Double,
    String,
    Bytes,
}

impl Scalar {
    fn from_name(name: &str) -> Option<Scalar> {
        Some(match name {
            "int32" => Scalar::Int32,
            "int64" => Scalar::Int64,
            "uint32" => Scalar::Uint32,
            "uint64" => Scalar::Uint64,
            "sint32" => Scalar::Sint32,
            "sint64" => Scalar::Sint64,
            "bool" => Scalar::Bool,
            "fixed32" => Scalar::Fixed32,
            "sfixed32" => Scalar::Sfixed32,
            "float" => Scalar::Float,
            "fixed64" => Scalar::Fixed64,
            "sfixed64" => Scalar::Sfixed64,
            "double" => Scalar::Double,
            "string" => Scalar::String,
            "bytes" => Scalar::Bytes,
            _ => return None,
        })
    }
}

/// A field's type, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FieldType {
    Scalar(Scalar),
    /// An enum, by full name.
    Enum(String),
    /// A message, by full name.
    Message(String),
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn wire_name(wire_type: u8) -> String {
    let name = match wire_type {
        VARINT => "VARINT",
        I64 => "I64",
        LEN => "LEN",
        I32 => "I32",
        _ => "?",
    };
    format!("wire type {wire_type} ({name})")
}

impl FieldType {
    /// The wire type a single value of this type goes out as (proto2: repeated fields
    /// are unpacked, one record per element).
    fn wire_type(&self) -> u8 {
        match self {
            FieldType::Scalar(s) => match s {
                Scalar::Int32
                | Scalar::Int64
                | Scalar::Uint32
                | Scalar::Uint64
                | Scalar::Sint32
                | Scalar::Sint64
                | Scalar::Bool => VARINT,
                Scalar::Fixed32 | Scalar::Sfixed32 | Scalar::Float => I32,
                Scalar::Fixed64 | Scalar::Sfixed64 | Scalar::Double => I64,
                Scalar::String | Scalar::Bytes => LEN,
            },
            FieldType::Enum(_) => VARINT,
            FieldType::Message(_) => LEN,
        }
    }
}

impl Schema {
    fn message(&self, name: &str) -> &MessageDef {
        self.messages
            .get(name)
            .unwrap_or_else(|| panic!("{PROTO_NAME} defines no message {name}"))
    }

    /// Resolves the type of `field` of message `scope` the way protoc does: innermost
    /// scope first, then outwards; a leading `.` (with or without the package) is
    /// absolute.
    fn try_field_type(&self, scope: &str, field: &FieldDef) -> Option<FieldType> {
        if let Some(scalar) = Scalar::from_name(&field.type_name) {
            return Some(FieldType::Scalar(scalar));
        }
        let name = field.type_name.as_str();
        let package_prefix = format!("{}.", self.package);
        let candidates: Vec<String> = if let Some(absolute) = name.strip_prefix('.') {
            let without_package = if self.package.is_empty() {
                absolute
            } else {
                absolute.strip_prefix(&package_prefix)?
            };
            vec![without_package.to_owned()]
        } else {
            let name = name.strip_prefix(&package_prefix).unwrap_or(name);
            let mut scopes: Vec<&str> =
                scope.match_indices('.').map(|(i, _)| &scope[..i]).collect();
            scopes.push(scope);
            scopes.reverse();
            scopes
                .into_iter()
                .map(|s| format!("{s}.{name}"))
                .chain([name.to_owned()])
                .collect()
        };
        candidates.into_iter().find_map(|c| {
            if self.messages.contains_key(&c) {
                Some(FieldType::Message(c))
            } else if self.enums.contains_key(&c) {
                Some(FieldType::Enum(c))
            } else {
                None
            }
        })
    }

    fn field_type(&self, scope: &str, field: &FieldDef) -> FieldType {
        self.try_field_type(scope, field).unwrap_or_else(|| {
            panic!(
                "{PROTO_NAME}: {scope}.{} has type {}, which is neither a scalar nor a message or enum defined in the file",
                field.name, field.type_name
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Int(i64),
    Str(String),
    Punct(char),
}

/// Splits the schema into tokens, each with its line; comments are dropped.
fn tokenize(file: &str, src: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut prev = '\0';
                loop {
                    match chars.next() {
                        Some('/') if prev == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            prev = c;
                        }
                        None => panic!("{file}:{start}: unterminated /* comment"),
                    }
                }
            }
            '"' | '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\' | '\n') | None => {
                            panic!(
                                "{file}:{line}: escapes and unterminated strings are not supported"
                            )
                        }
                        Some(ch) => text.push(ch),
                    }
                }
                out.push((Tok::Str(text), line));
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '.' => {
                let mut word = String::from(c);
                while let Some(&c) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push((Tok::Word(word), line));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut number = String::from(c);
                while let Some(&c) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '.') {
                        break;
                    }
                    number.push(c);
                    chars.next();
                }
                let value = number.parse().unwrap_or_else(|_| {
                    panic!(
                        "{file}:{line}: number {number:?} is not supported (decimal integers only)"
                    )
                });
                out.push((Tok::Int(value), line));
            }
            '{' | '}' | '=' | ';' | '[' | ']' | '<' | '>' | ',' | '(' | ')' => {
                out.push((Tok::Punct(c), line));
            }
            other => panic!("{file}:{line}: unexpected character {other:?}"),
        }
    }
    out
}

struct Parser<'a> {
    file: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    schema: Schema,
}

impl Parser<'_> {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |t| t.1)
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{}:{}: {what} (the parser in crates/proto/tests/proto_schema.rs reads only the subset message.proto uses; extend it)",
            self.file,
            self.line()
        )
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn next(&mut self) -> Tok {
        let tok = match self.toks.get(self.pos) {
            Some((tok, _)) => tok.clone(),
            None => self.fail("unexpected end of file"),
        };
        self.pos += 1;
        tok
    }

    fn punct(&mut self, want: char) {
        match self.next() {
            Tok::Punct(c) if c == want => {}
            other => {
                self.pos -= 1;
                self.fail(&format!("expected `{want}`, found {other:?}"))
            }
        }
    }

    fn word(&mut self) -> String {
        match self.next() {
            Tok::Word(word) => word,
            other => {
                self.pos -= 1;
                self.fail(&format!("expected a name, found {other:?}"))
            }
        }
    }

    fn ident(&mut self) -> String {
        let word = self.word();
        if word.contains('.') {
            self.pos -= 1;
            self.fail(&format!("expected a plain identifier, found {word:?}"));
        }
        word
    }

    fn int(&mut self) -> i64 {
        match self.next() {
            Tok::Int(n) => n,
            other => {
                self.pos -= 1;
                self.fail(&format!("expected a number, found {other:?}"))
            }
        }
    }

    /// `= N ;` with no options.
    fn number_and_end(&mut self) -> i64 {
        self.punct('=');
        let number = self.int();
        if self.peek() == Some(&Tok::Punct('[')) {
            self.fail("options in `[...]` are not supported");
        }
        self.punct(';');
        number
    }

    fn define(&mut self, full: &str, line: usize) {
        if self.schema.messages.contains_key(full) || self.schema.enums.contains_key(full) {
            panic!("{}:{line}: {full} is defined twice", self.file);
        }
    }

    fn file(&mut self) {
        let mut syntax = None;
        while let Some(tok) = self.peek().cloned() {
            match tok {
                Tok::Word(w) if w == "syntax" => {
                    self.next();
                    self.punct('=');
                    match self.next() {
                        Tok::Str(s) => syntax = Some(s),
                        other => self.fail(&format!("expected a string, found {other:?}")),
                    }
                    self.punct(';');
                }
                Tok::Word(w) if w == "package" => {
                    self.next();
                    self.schema.package = self.word();
                    self.punct(';');
                }
                Tok::Word(w) if w == "message" => self.message(""),
                Tok::Word(w) if w == "enum" => self.enumeration(""),
                Tok::Punct(';') => {
                    self.next();
                }
                other => self.fail(&format!("top-level {other:?} is not supported")),
            }
        }
        if syntax.as_deref() != Some("proto2") {
            panic!(
                "{}: expected `syntax = \"proto2\";`, found {syntax:?}; the parser and the probes assume proto2 (explicit labels, unpacked repeated fields)",
                self.file
            );
        }
    }

    fn message(&mut self, scope: &str) {
        let line = self.line();
        self.next(); // `message`
        let name = self.ident();
        let full = if scope.is_empty() {
            name
        } else {
            format!("{scope}.{name}")
        };
        self.punct('{');
        let mut fields: Vec<FieldDef> = Vec::new();
        loop {
            match self.peek().cloned() {
                Some(Tok::Punct('}')) => {
                    self.next();
                    break;
                }
                Some(Tok::Punct(';')) => {
                    self.next();
                }
                Some(Tok::Word(w)) if w == "message" => self.message(&full),
                Some(Tok::Word(w)) if w == "enum" => self.enumeration(&full),
                Some(Tok::Word(w)) if matches!(w.as_str(), "required" | "optional" | "repeated") => {
                    let field_line = self.line();
                    let field = self.field();
                    if let Some(other) = fields.iter().find(|f| f.number == field.number) {
                        panic!(
                            "{}:{field_line}: {full}.{} reuses field number {} of {full}.{}",
                            self.file, field.name, field.number, other.name
                        );
                    }
                    if fields.iter().any(|f| f.name == field.name) {
                        panic!("{}:{field_line}: {full}.{} is declared twice", self.file, field.name);
                    }
                    fields.push(field);
                }
                Some(other) => self.fail(&format!(
                    "{other:?} in message {full} is not supported (only labelled fields, nested messages and enums)"
                )),
                None => self.fail(&format!("message {full} is not closed")),
            }
        }
        self.define(&full, line);
        self.schema
            .messages
            .insert(full, MessageDef { fields, line });
    }

    fn field(&mut self) -> FieldDef {
        let label = match self.word().as_str() {
            "required" => Label::Required,
            "optional" => Label::Optional,
            _ => Label::Repeated,
        };
        let type_name = self.word();
        if type_name == "group" {
            self.fail("groups are not supported");
        }
        let name = self.ident();
        let number = self.number_and_end();
        let Some(number) = u32::try_from(number)
            .ok()
            .filter(|n| (1..=536_870_911).contains(n) && !(19_000..=19_999).contains(n))
        else {
            self.pos -= 1;
            self.fail(&format!("{name} = {number} is not a valid field number"));
        };
        FieldDef {
            label,
            type_name,
            name,
            number,
        }
    }

    fn enumeration(&mut self, scope: &str) {
        let line = self.line();
        self.next(); // `enum`
        let name = self.ident();
        let full = if scope.is_empty() {
            name
        } else {
            format!("{scope}.{name}")
        };
        self.punct('{');
        let mut values: Vec<(String, i32)> = Vec::new();
        loop {
            match self.peek().cloned() {
                Some(Tok::Punct('}')) => {
                    self.next();
                    break;
                }
                Some(Tok::Punct(';')) => {
                    self.next();
                }
                Some(Tok::Word(w)) if !matches!(w.as_str(), "option" | "reserved") => {
                    let value_line = self.line();
                    let value = self.ident();
                    let number = self.number_and_end();
                    let Ok(number) = i32::try_from(number) else {
                        panic!(
                            "{}:{value_line}: {value} = {number} is out of range",
                            self.file
                        );
                    };
                    if values.iter().any(|(v, _)| *v == value) {
                        panic!(
                            "{}:{value_line}: {full}.{value} is declared twice",
                            self.file
                        );
                    }
                    if let Some((other, _)) = values.iter().find(|(_, n)| *n == number) {
                        panic!(
                            "{}:{value_line}: {full}.{value} reuses number {number} of {other} (aliases are not supported)",
                            self.file
                        );
                    }
                    values.push((value, number));
                }
                Some(other) => self.fail(&format!("{other:?} in enum {full} is not supported")),
                None => self.fail(&format!("enum {full} is not closed")),
            }
        }
        if values.is_empty() {
            panic!("{}:{line}: enum {full} has no values", self.file);
        }
        self.define(&full, line);
        self.schema.enums.insert(full, EnumDef { values, line });
    }
}

/// Parses a schema and checks that every field's type resolves.
fn parse(file: &str, src: &str) -> Schema {
    let mut parser = Parser {
        file,
        toks: tokenize(file, src),
        pos: 0,
        schema: Schema::default(),
    };
    parser.file();
    let schema = parser.schema;
    for (name, message) in &schema.messages {
        for field in &message.fields {
            schema.field_type(name, field);
        }
    }
    schema
}

fn schema() -> Schema {
    let src = std::fs::read_to_string(PROTO_PATH)
        .unwrap_or_else(|e| panic!("cannot read {PROTO_PATH}: {e}"));
    parse(PROTO_NAME, &src)
}

// ---------------------------------------------------------------------------------
// The wire, decoded generically (no prost)
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Varint(u64),
    I64(u64),
    Len(Vec<u8>),
    I32(u32),
}

impl Value {
    fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => VARINT,
            Value::I64(_) => I64,
            Value::Len(_) => LEN,
            Value::I32(_) => I32,
        }
    }
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if buf.len() < n {
        return Err(format!("{n} bytes needed, {} left", buf.len()));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".to_owned())
}

/// The records of one message: (field number, value), in wire order.
fn decode_wire(mut buf: &[u8]) -> Result<Vec<(u32, Value)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("key {key:#x} has no valid field number"))?;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(read_varint(&mut buf)?),
            I64 => Value::I64(u64::from_le_bytes(
                take(&mut buf, 8)?.try_into().expect("8 bytes"),
            )),
            LEN => {
                let len = usize::try_from(read_varint(&mut buf)?).map_err(|e| e.to_string())?;
                Value::Len(take(&mut buf, len)?.to_vec())
            }
            I32 => Value::I32(u32::from_le_bytes(
                take(&mut buf, 4)?.try_into().expect("4 bytes"),
            )),
            other => return Err(format!("field {number}: {}", wire_name(other))),
        };
        out.push((number, value));
    }
    Ok(out)
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn write_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    write_varint(out, u64::from(number) << 3 | u64::from(wire_type));
}

fn report(what: &str, errors: &[String]) {
    assert!(
        errors.is_empty(),
        "{what}: {} mismatch(es) between {PROTO_NAME} and the Rust side:\n  - {}\n",
        errors.len(),
        errors.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------
// Check 1: what Rust sends has the .proto's numbers and wire types
// ---------------------------------------------------------------------------------

/// Checks `bytes`, sent by Rust for .proto message `msg` from a value with every field
/// set and every repeated field holding two or more elements.
fn check_sent(schema: &Schema, msg: &str, bytes: &[u8], who: &str, errors: &mut Vec<String>) {
    let def = schema.message(msg);
    let records = match decode_wire(bytes) {
        Ok(records) => records,
        Err(e) => {
            errors.push(format!(
                "{who}: the bytes sent for {msg} are not protobuf: {e}"
            ));
            return;
        }
    };
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for (number, value) in &records {
        *seen.entry(*number).or_default() += 1;
        let Some(field) = def.field(*number) else {
            errors.push(format!(
                "{who}: Rust sent field number {number} ({}), but message {msg} in {PROTO_NAME} has no field {number} (its fields: {})",
                wire_name(value.wire_type()),
                def.list()
            ));
            continue;
        };
        let ty = schema.field_type(msg, field);
        if value.wire_type() != ty.wire_type() {
            errors.push(format!(
                "{who}: {msg}.{} is `{}` in {PROTO_NAME}, which goes on the wire as {}, but Rust sent {}",
                field.name,
                field.decl(),
                wire_name(ty.wire_type()),
                wire_name(value.wire_type())
            ));
            continue;
        }
        match (&ty, value) {
            (FieldType::Message(sub), Value::Len(payload)) => {
                let who = format!("{who} → {msg}.{}", field.name);
                check_sent(schema, sub, payload, &who, errors);
            }
            (FieldType::Scalar(Scalar::String), Value::Len(payload))
                if std::str::from_utf8(payload).is_err() =>
            {
                errors.push(format!(
                    "{who}: {msg}.{} is `{}` in {PROTO_NAME}, but Rust sent bytes that are not UTF-8",
                    field.name,
                    field.decl()
                ));
            }
            (FieldType::Enum(e), Value::Varint(v)) => {
                let number = *v as i64;
                if !schema.enums[e]
                    .values
                    .iter()
                    .any(|(_, n)| i64::from(*n) == number)
                {
                    errors.push(format!(
                        "{who}: {msg}.{} is `{}` in {PROTO_NAME}, but Rust sent {number}, which {e} does not define",
                        field.name,
                        field.decl()
                    ));
                }
            }
            _ => {}
        }
    }
    for field in &def.fields {
        let count = seen.get(&field.number).copied().unwrap_or(0);
        let problem = match (field.label, count) {
            (_, 0) => Some(format!(
                "nothing was sent on number {}: the Rust struct lacks the field or gives it another number",
                field.number
            )),
            (Label::Repeated, 1) => Some(
                "it was sent once, though the sample holds two elements: is the Rust field singular?"
                    .to_owned(),
            ),
            (Label::Required | Label::Optional, n) if n > 1 => {
                Some(format!("it was sent {n} times: is the Rust field repeated?"))
            }
            _ => None,
        };
        if let Some(problem) = problem {
            errors.push(format!(
                "{who}: {PROTO_NAME} declares {msg}.{} as `{}`, but {problem}",
                field.name,
                field.decl()
            ));
        }
    }
}

#[test]
fn rust_structs_send_every_field_on_its_proto_number_and_wire_type() {
    let schema = schema();
    let mut errors = Vec::new();
    for m in mirrors() {
        let who = format!("Rust {} (for {})", m.rust, m.proto);
        if schema.messages.contains_key(m.proto) {
            check_sent(&schema, m.proto, &m.sample, &who, &mut errors);
        } else {
            errors.push(format!("{who}: {PROTO_NAME} has no message {}", m.proto));
        }
    }
    report("encoding Rust values with every field set", &errors);
}

// ---------------------------------------------------------------------------------
// Check 2: Rust reads what the .proto describes as the declared types would
// ---------------------------------------------------------------------------------

/// A decoded message, with nested messages decoded too.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Varint(u64),
    I64(u64),
    I32(u32),
    Len(Vec<u8>),
    Message(Tree),
}

type Tree = Vec<(u32, Node)>;

fn show(node: &Node) -> String {
    match node {
        Node::Varint(v) => format!("varint {v:#x} (int64 {})", *v as i64),
        Node::I64(v) => format!("I64 {v:#018x}"),
        Node::I32(v) => format!("I32 {v:#010x}"),
        Node::Len(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => format!("LEN {text:?}"),
            Err(_) => format!("LEN bytes {bytes:02x?}"),
        },
        Node::Message(tree) => format!("a message with {} field record(s)", tree.len()),
    }
}

/// A varint probe for scalar `s`: (the value sent, the value a parser of type `s` keeps,
/// as it re-encodes it). Neighbouring types keep something else.
fn varint_probe(s: Scalar, i: u64) -> (u64, u64) {
    // Garbage above bit 32 that 32-bit types drop; negative as an i32.
    let wide: u64 = 0x0000_005A_FFFF_FFF0 | i;
    match s {
        Scalar::Int32 => (wide, wide as u32 as i32 as i64 as u64),
        // sint32 re-encodes the zigzag form of the same low 32 bits.
        Scalar::Uint32 | Scalar::Sint32 => (wide, u64::from(wide as u32)),
        Scalar::Int64 | Scalar::Uint64 | Scalar::Sint64 => {
            let v = 0x8000_005A_0000_0100 | i;
            (v, v)
        }
        Scalar::Bool => (2, 1),
        other => unreachable!("{other:?} is not a varint type"),
    }
}

/// Builds bytes for .proto message `msg` from the schema alone, with a distinctive value
/// in every field (two in repeated ones), and what a parser of the declared types makes
/// of them.
fn probe(schema: &Schema, msg: &str, depth: usize) -> (Vec<u8>, Tree) {
    assert!(
        depth < 8,
        "{msg} nests too deeply: recursive messages are not supported by the probe"
    );
    let def = schema.message(msg);
    let mut sent = Vec::new();
    let mut expected = Tree::new();
    for field in &def.fields {
        let ty = schema.field_type(msg, field);
        let count = if field.label == Label::Repeated { 2 } else { 1 };
        for i in 0..count {
            write_key(&mut sent, field.number, ty.wire_type());
            let node = match &ty {
                FieldType::Scalar(s) => match s {
                    Scalar::Int32
                    | Scalar::Int64
                    | Scalar::Uint32
                    | Scalar::Uint64
                    | Scalar::Sint32
                    | Scalar::Sint64
                    | Scalar::Bool => {
                        let (raw, kept) = varint_probe(*s, i);
                        write_varint(&mut sent, raw);
                        Node::Varint(kept)
                    }
                    Scalar::Fixed32 | Scalar::Sfixed32 | Scalar::Float => {
                        let v = 0x4020_0000 + i as u32;
                        sent.extend_from_slice(&v.to_le_bytes());
                        Node::I32(v)
                    }
                    Scalar::Fixed64 | Scalar::Sfixed64 | Scalar::Double => {
                        let v = 0x4004_0000_0000_0000 + i;
                        sent.extend_from_slice(&v.to_le_bytes());
                        Node::I64(v)
                    }
                    Scalar::String | Scalar::Bytes => {
                        let bytes = if *s == Scalar::String {
                            format!("{msg}.{} #{i} → ✓", field.name).into_bytes()
                        } else {
                            vec![0xFF, 0xFE, 0x00, i as u8]
                        };
                        write_varint(&mut sent, bytes.len() as u64);
                        sent.extend_from_slice(&bytes);
                        Node::Len(bytes)
                    }
                },
                FieldType::Enum(e) => {
                    let values = &schema.enums[e].values;
                    let v = values[values.len() - 1 - (i as usize % values.len())].1;
                    let raw = i64::from(v) as u64;
                    write_varint(&mut sent, raw);
                    Node::Varint(raw)
                }
                FieldType::Message(sub) => {
                    let (bytes, tree) = probe(schema, sub, depth + 1);
                    write_varint(&mut sent, bytes.len() as u64);
                    sent.extend_from_slice(&bytes);
                    Node::Message(tree)
                }
            };
            expected.push((field.number, node));
        }
    }
    (sent, expected)
}

/// Decodes `bytes` as message `msg`, nested messages included.
fn parse_tree(schema: &Schema, msg: &str, bytes: &[u8]) -> Result<Tree, String> {
    let def = schema.message(msg);
    decode_wire(bytes)?
        .into_iter()
        .map(|(number, value)| {
            let ty = def.field(number).map(|f| schema.field_type(msg, f));
            let node = match (value, ty) {
                (Value::Len(payload), Some(FieldType::Message(sub))) => Node::Message(
                    parse_tree(schema, &sub, &payload).map_err(|e| format!("in {sub}: {e}"))?,
                ),
                (Value::Len(payload), _) => Node::Len(payload),
                (Value::Varint(v), _) => Node::Varint(v),
                (Value::I64(v), _) => Node::I64(v),
                (Value::I32(v), _) => Node::I32(v),
            };
            Ok((number, node))
        })
        .collect()
}

/// Compares what the Rust struct gave back with what the declared types keep.
fn compare(
    schema: &Schema,
    msg: &str,
    expected: &Tree,
    actual: &Tree,
    path: &str,
    errors: &mut Vec<String>,
) {
    let def = schema.message(msg);
    let group = |tree: &Tree| {
        let mut by_number: BTreeMap<u32, Vec<Node>> = BTreeMap::new();
        for (number, node) in tree {
            by_number.entry(*number).or_default().push(node.clone());
        }
        by_number
    };
    let (expected, actual) = (group(expected), group(actual));
    let numbers: BTreeSet<u32> = expected.keys().chain(actual.keys()).copied().collect();
    for number in numbers {
        let want = expected.get(&number).map_or(&[][..], Vec::as_slice);
        let got = actual.get(&number).map_or(&[][..], Vec::as_slice);
        let field = def.field(number);
        let name = match field {
            Some(f) => format!("{path}.{} (`{}`)", f.name, f.decl()),
            None => format!("{path}, field number {number} (not in {PROTO_NAME})"),
        };
        if want.len() != got.len() {
            let hint = if got.is_empty() {
                "the Rust struct dropped it: it has no field with that number, or one of a type that cannot hold the value"
            } else if want.is_empty() {
                "the Rust struct wrote a field the probe never sent"
            } else if got.len() < want.len() {
                "the Rust field keeps fewer values: singular where the .proto says repeated?"
            } else {
                "the Rust field gave back more values than it was sent"
            };
            let shown: Vec<String> = got.iter().map(show).collect();
            errors.push(format!(
                "{name}: sent {} value(s), the Rust struct gave back {} [{}]; {hint}",
                want.len(),
                got.len(),
                shown.join(", ")
            ));
            continue;
        }
        for (index, (w, g)) in want.iter().zip(got).enumerate() {
            match (w, g, field) {
                (Node::Message(w), Node::Message(g), Some(f)) => {
                    let FieldType::Message(sub) = schema.field_type(msg, f) else {
                        unreachable!("only message fields decode to Node::Message")
                    };
                    let path = format!("{path}.{}[{index}]", f.name);
                    compare(schema, &sub, w, g, &path, errors);
                }
                _ if w != g => errors.push(format!(
                    "{name}: a parser of the declared type keeps {}, but the Rust struct gave back {}: its field has another type",
                    show(w),
                    show(g)
                )),
                _ => {}
            }
        }
    }
}

#[test]
fn rust_structs_read_every_field_as_its_proto_type() {
    let schema = schema();
    let mut errors = Vec::new();
    for m in mirrors() {
        if !schema.messages.contains_key(m.proto) {
            errors.push(format!(
                "Rust {}: {PROTO_NAME} has no message {}",
                m.rust, m.proto
            ));
            continue;
        }
        let (sent, expected) = probe(&schema, m.proto, 0);
        let who = format!("Rust {} reading {}", m.rust, m.proto);
        match (m.reencode)(&sent) {
            Err(e) => errors.push(format!(
                "{who}: cannot decode bytes built from {PROTO_NAME} with a value in every field: {e}"
            )),
            Ok(back) => match parse_tree(&schema, m.proto, &back) {
                Err(e) => errors.push(format!("{who}: re-encoded bytes that do not parse: {e}")),
                Ok(actual) => compare(&schema, m.proto, &expected, &actual, &who, &mut errors),
            },
        }
    }
    report("decoding bytes built from the .proto into Rust", &errors);
}

// ---------------------------------------------------------------------------------
// Check 3: enums
// ---------------------------------------------------------------------------------

#[test]
fn rust_enums_have_the_proto_values_names_and_numbers() {
    let schema = schema();
    let mut errors = Vec::new();
    for m in enum_mirrors() {
        let Some(def) = schema.enums.get(m.proto) else {
            errors.push(format!(
                "Rust enum {}: {PROTO_NAME} has no enum {}",
                m.rust, m.proto
            ));
            continue;
        };
        for (name, number) in &def.values {
            let want = rust_variant_name(name);
            match (m.variant)(*number) {
                None => errors.push(format!(
                    "enum {}: {PROTO_NAME} has {name} = {number}, but Rust {}::try_from({number}) fails (expected variant {}::{want} = {number})",
                    m.proto, m.rust, m.rust
                )),
                Some((got, back)) => {
                    if got != want {
                        errors.push(format!(
                            "enum {}: {PROTO_NAME} has {name} = {number}, but number {number} is {}::{got} in Rust (expected {}::{want})",
                            m.proto, m.rust, m.rust
                        ));
                    }
                    if back != *number {
                        errors.push(format!(
                            "enum {}: Rust {}::{got} converts back to {back}, not {number}",
                            m.proto, m.rust
                        ));
                    }
                }
            }
        }
        for number in ENUM_SCAN {
            if def.values.iter().any(|(_, n)| *n == number) {
                continue;
            }
            if let Some((got, _)) = (m.variant)(number) {
                errors.push(format!(
                    "enum {}: Rust {}::{got} = {number}, but {PROTO_NAME} has no value numbered {number} (its values: {})",
                    m.proto,
                    m.rust,
                    def.values
                        .iter()
                        .map(|(v, n)| format!("{v} = {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    report("enums", &errors);
}

// ---------------------------------------------------------------------------------
// Check 4: the codec sends the .proto's messages under the .proto's type numbers
// ---------------------------------------------------------------------------------

/// One request of the given kind; the match makes a new kind a compile error here.
fn request_sample(kind: RequestKind) -> Request {
    match kind {
        RequestKind::Name => Request::Name {
            name: "이름".to_owned(),
        },
        RequestKind::Rooms => Request::Rooms,
        RequestKind::CreateRoom => Request::CreateRoom {
            title: "제목".to_owned(),
        },
        RequestKind::JoinRoom => Request::JoinRoom { room_id: 7 },
        RequestKind::LeaveRoom => Request::LeaveRoom,
        RequestKind::Chat => Request::Chat {
            text: "안녕".to_owned(),
        },
        RequestKind::Shutdown => Request::Shutdown,
        RequestKind::Hello => Request::Hello {
            features: vec!["time".to_owned(), "기능".to_owned()],
        },
        RequestKind::Register => Request::Register {
            password: "비밀번호".to_owned(),
        },
        RequestKind::Login => Request::Login {
            name: "이름".to_owned(),
            password: "비밀번호".to_owned(),
        },
        RequestKind::Logout => Request::Logout,
        RequestKind::ChangePassword => Request::ChangePassword {
            old: "옛".to_owned(),
            new: "새".to_owned(),
        },
        RequestKind::History => Request::History {
            count: Some(50),
            before: Some(7),
        },
        RequestKind::DeleteRoom => Request::DeleteRoom { room_id: 9 },
        RequestKind::Resume => Request::Resume {
            name: "이름".to_owned(),
            token: "토큰".to_owned(),
        },
        RequestKind::Direct => Request::Direct {
            name: "받는이".to_owned(),
            text: "귓속말".to_owned(),
        },
        RequestKind::Ignore => Request::Ignore {
            name: "이름".to_owned(),
            ignore: true,
        },
        RequestKind::Op => Request::Op {
            name: "운영자".to_owned(),
            op: true,
        },
        RequestKind::Owner => Request::Owner {
            name: "새주인".to_owned(),
        },
        RequestKind::Kick => Request::Kick {
            name: "손님".to_owned(),
            reason: "도배".to_owned(),
        },
        RequestKind::Ban => Request::Ban {
            name: "손님".to_owned(),
            minutes: Some(30),
            ban: true,
        },
        RequestKind::Topic => Request::Topic {
            text: "주제".to_owned(),
        },
    }
}

/// One response of each kind, every field set, two elements in every list.
fn response_samples() -> Vec<Response<'static>> {
    let room = |n: i64| RoomInfo {
        room_id: n,
        title: format!("방 {n}"),
        members: vec![format!("회원 {n}a"), format!("회원 {n}b")],
        topic: Some(format!("주제 {n}")),
    };
    vec![
        Response::system("공지"),
        // `SCChat` with every field: the timed one (the plain one leaves the two
        // optional fields out; the codec's tests compare it with prost's bytes).
        Response::RoomsResult {
            rooms: vec![room(1), room(2)],
        },
        Response::Hello {
            features: vec!["time".to_owned(), "기능".to_owned()],
            server: "chat-server/1".into(),
        },
        Response::TimedChat {
            member: "보낸이".into(),
            text: "내용".into(),
            seq: 5,
            time: 1_700_000_000_123,
        },
        Response::History {
            room_id: 3,
            lines: vec![
                chat_proto::HistoryLine {
                    seq: 1,
                    time: 1_700_000_000_000,
                    member: "가".into(),
                    text: "하나".into(),
                },
                chat_proto::HistoryLine {
                    seq: 2,
                    time: 1_700_000_000_001,
                    member: "나".into(),
                    text: "둘".into(),
                },
            ],
            more: true,
        },
        Response::Session {
            token: "토큰".into(),
            expires: 1_700_000_000_000,
        },
        Response::Direct {
            member: "보낸이".into(),
            text: "귓속말".into(),
            time: 1_700_000_000_456,
            outgoing: true,
        },
        Response::Topic {
            room_id: 3,
            topic: "주제".into(),
            by: "운영자".into(),
        },
    ]
}

/// The top-level message a `MessageType` value stands for: `SC_ROOMS_RESULT` →
/// `SCRoomsResult` (the value's letters, case-insensitively).
fn message_for_type_value<'s>(schema: &'s Schema, value: &str) -> Option<&'s str> {
    let letters = value.replace('_', "");
    let found: Vec<&str> = schema
        .messages
        .keys()
        .filter(|m| !m.contains('.') && m.eq_ignore_ascii_case(&letters))
        .map(String::as_str)
        .collect();
    match found.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

#[test]
fn protobuf_codec_sends_proto_messages_under_their_type_numbers() {
    let schema = schema();
    let type_field = schema
        .message("Type")
        .fields
        .iter()
        .find(|f| f.name == "type")
        .unwrap_or_else(|| panic!("{PROTO_NAME}: message Type has no field `type`"));
    let FieldType::Enum(type_enum) = schema.field_type("Type", type_field) else {
        panic!("{PROTO_NAME}: Type.type is not an enum");
    };
    let type_values = &schema.enums[&type_enum].values;

    let mut cases: Vec<(String, &'static str, Vec<u8>)> = Vec::new();
    for kind in RequestKind::ALL {
        let request = request_sample(kind);
        assert_eq!(
            request.kind(),
            kind,
            "request_sample({kind:?}) is of another kind"
        );
        let mut wire = Vec::new();
        encode_request(WireFormat::Protobuf, &request, &mut wire).expect("small request");
        cases.push((format!("encode_request({kind:?})"), kind.name(), wire));
    }
    for response in response_samples() {
        let mut wire = Vec::new();
        encode_response(WireFormat::Protobuf, &response, &mut wire).expect("small response");
        let name = response.type_name();
        cases.push((format!("encode_response({name})"), name, wire));
    }

    let mut errors = Vec::new();
    let mut senders: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (who, claimed, wire) in &cases {
        let mut frames = Frames::new(wire);
        let payloads: Vec<&[u8]> = frames.by_ref().collect();
        if payloads.len() != 2 || frames.consumed() != wire.len() {
            errors.push(format!(
                "{who}: expected a Type frame and a body frame, got {} frame(s) covering {} of {} bytes",
                payloads.len(),
                frames.consumed(),
                wire.len()
            ));
            continue;
        }
        check_sent(
            &schema,
            "Type",
            payloads[0],
            &format!("{who}, Type frame"),
            &mut errors,
        );
        let number = decode_wire(payloads[0]).ok().and_then(|records| {
            records.iter().find_map(|(n, v)| match v {
                Value::Varint(v) if *n == type_field.number => Some(*v as i64 as i32),
                _ => None,
            })
        });
        let Some(number) = number else {
            errors.push(format!("{who}: the Type frame carries no type number"));
            continue;
        };
        senders.entry(number).or_default().push(who.clone());
        let Some((value, _)) = type_values.iter().find(|(_, n)| *n == number) else {
            errors.push(format!(
                "{who}: sent type number {number}, which {type_enum} in {PROTO_NAME} does not define"
            ));
            continue;
        };
        let Some(body) = message_for_type_value(&schema, value) else {
            errors.push(format!(
                "{who}: {type_enum} value {value} = {number} names no message in {PROTO_NAME}"
            ));
            continue;
        };
        if body != *claimed {
            errors.push(format!(
                "{who}: sent type {value} = {number}, which is message {body} in {PROTO_NAME}, but the Rust side calls this message {claimed}"
            ));
        }
        check_sent(
            &schema,
            body,
            payloads[1],
            &format!("{who}, {body} body"),
            &mut errors,
        );
    }
    for (value, number) in type_values {
        match senders.get(number).map_or(&[][..], Vec::as_slice) {
            [_] => {}
            [] => errors.push(format!(
                "{type_enum} value {value} = {number} in {PROTO_NAME} is sent for no request kind or response: the Rust side lacks it (or this test lacks a sample)"
            )),
            several => errors.push(format!(
                "{type_enum} value {value} = {number} is sent by several messages: {several:?}"
            )),
        }
    }
    report("the protobuf codec", &errors);
}

// ---------------------------------------------------------------------------------
// Coverage: every .proto message and enum has a counterpart, and no entry is stale
// ---------------------------------------------------------------------------------

#[test]
fn every_proto_message_and_enum_is_covered() {
    let schema = schema();
    let mirrored: Vec<&'static str> = mirrors().iter().map(|m| m.proto).collect();
    let enums: Vec<&'static str> = enum_mirrors().iter().map(|m| m.proto).collect();
    let mut errors = Vec::new();
    for (name, def) in &schema.messages {
        let listed = mirrored
            .iter()
            .chain(NOT_MIRRORED)
            .filter(|m| *m == name)
            .count();
        match listed {
            1 => {}
            0 => errors.push(format!(
                "message {name} ({PROTO_NAME}:{}) has no Rust counterpart in this test: add its prost struct and a sample to mirrors(), or, if neither side ever sends it, add it to NOT_MIRRORED",
                def.line
            )),
            _ => errors.push(format!("message {name} is listed {listed} times in mirrors() and NOT_MIRRORED")),
        }
    }
    for (name, def) in &schema.enums {
        if !enums.contains(&name.as_str()) {
            errors.push(format!(
                "enum {name} ({PROTO_NAME}:{}) has no Rust counterpart in enum_mirrors()",
                def.line
            ));
        }
    }
    for name in mirrored.iter().chain(NOT_MIRRORED) {
        if !schema.messages.contains_key(*name) {
            errors.push(format!("this test lists message {name}, which {PROTO_NAME} does not define (renamed or removed?)"));
        }
    }
    for name in &enums {
        if !schema.enums.contains_key(*name) {
            errors.push(format!(
                "this test lists enum {name}, which {PROTO_NAME} does not define"
            ));
        }
    }
    report("coverage", &errors);
}

// ---------------------------------------------------------------------------------
// The parser itself
// ---------------------------------------------------------------------------------

#[test]
fn the_parser_reads_its_subset() {
    let schema = parse(
        "snippet",
        r#"
        syntax = "proto2"; // a comment with = 5;
        package p;
        /* a block
           comment */
        message Outer {
          enum Kind { A_B = 0; C = -1; }
          message Inner { repeated sint64 xs = 3; }
          optional Kind kind = 1;
          repeated Inner inners = 2; // trailing
          required .p.Outer.Inner one = 4;
        }
        message Other { optional Outer.Kind k = 7; }
        "#,
    );
    assert_eq!(
        schema.messages.keys().collect::<Vec<_>>(),
        ["Other", "Outer", "Outer.Inner"]
    );
    assert_eq!(
        schema.enums["Outer.Kind"].values,
        [("A_B".to_owned(), 0), ("C".to_owned(), -1)]
    );
    let outer = schema.message("Outer");
    let types: Vec<(String, Label, FieldType, u32)> = outer
        .fields
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                f.label,
                schema.field_type("Outer", f),
                f.number,
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            (
                "kind".to_owned(),
                Label::Optional,
                FieldType::Enum("Outer.Kind".to_owned()),
                1
            ),
            (
                "inners".to_owned(),
                Label::Repeated,
                FieldType::Message("Outer.Inner".to_owned()),
                2
            ),
            (
                "one".to_owned(),
                Label::Required,
                FieldType::Message("Outer.Inner".to_owned()),
                4
            ),
        ]
    );
    let other = &schema.message("Other").fields[0];
    assert_eq!(
        schema.field_type("Other", other),
        FieldType::Enum("Outer.Kind".to_owned())
    );
    assert_eq!(rust_variant_name("SC_ROOMS_RESULT"), "ScRoomsResult");
}

#[test]
#[should_panic(expected = "not supported")]
fn the_parser_refuses_what_it_does_not_read() {
    parse(
        "snippet",
        r#"syntax = "proto2"; message M { oneof x { string a = 1; } }"#,
    );
}
