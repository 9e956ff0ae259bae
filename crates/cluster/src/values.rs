//! Reading Redis replies: the few shapes the scripts and `XREAD` answer with.

use redis::Value;

/// A reply as text (bulk or simple strings).
pub(crate) fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        Value::Okay => Some("OK"),
        _ => None,
    }
}

/// A reply as a number (integers, or text holding one).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

/// A reply's elements (arrays; a nil is empty).
pub(crate) fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

/// A script's status array: its first element, and the rest.
pub(crate) fn status(value: &Value) -> (&str, &[Value]) {
    match items(value).split_first() {
        Some((first, rest)) => (text(first).unwrap_or(""), rest),
        None => ("", &[]),
    }
}
