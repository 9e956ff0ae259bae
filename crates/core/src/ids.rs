//! The identities the core hands out: room ids and client ids. A leaf module, so
//! that every other module can name them without depending on the broker.

/// A room's number, as clients see it.
pub type RoomId = i64;

/// The largest room id: the protobuf wire carries room ids as `int32`.
pub const MAX_ROOM_ID: RoomId = i32::MAX as RoomId;

/// A client's identity for the server's lifetime (never reused, unlike addresses or
/// descriptor numbers).
pub type ClientId = u64;
