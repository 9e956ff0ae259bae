//! `/rooms` replies: a room list, encoded once per format and shared.
//!
//! A [`Listing`] is the room list at one moment and, computed on first use and kept,
//! its `SCRoomsResult` messages in each wire format. A broker keeps the last one and
//! hands out the same `Arc` until the rooms change, so a client asking for `/rooms`
//! in a loop costs a reference count per reply, not an encoding of every room; a
//! [`ListingCache`] is that rule, for every broker.
//!
//! The reference client reads one frame per message, so a list too long for 65,535
//! bytes is split into several `SCRoomsResult` messages, in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chat_proto::codec::encode_response;
use chat_proto::frame::{HEADER_LEN, MAX_PAYLOAD};
use chat_proto::{Response, RoomInfo, WireFormat};

use crate::encoded::Encoded;
use crate::sync::lock;

/// The room list at one moment, and its replies; see the module doc.
#[derive(Debug)]
pub struct Listing {
    rooms: Vec<RoomInfo>,
    /// Indexed by [`WireFormat::index`], then without topics (0) and with (1).
    messages: [[OnceLock<Vec<Encoded>>; 2]; 2],
}

impl Listing {
    /// A listing of `rooms` (ordered by id, members in join order).
    pub fn new(rooms: Vec<RoomInfo>) -> Self {
        Listing {
            rooms,
            messages: Default::default(),
        }
    }

    /// The rooms.
    pub fn rooms(&self) -> &[RoomInfo] {
        &self.rooms
    }

    /// The `SCRoomsResult` messages for `format`, each fitting one frame (encoded on
    /// first use), with the rooms' topics only for a client that opted in to
    /// `moderation` (`topics`): without, they are what they were before topics.
    pub fn messages(&self, format: WireFormat, topics: bool) -> &[Encoded] {
        self.messages[format.index()][usize::from(topics)].get_or_init(|| {
            let mut rooms = self.rooms.clone();
            if !topics {
                for room in &mut rooms {
                    room.topic = None;
                }
            }
            chunks_that_fit(rooms, format)
                .into_iter()
                .filter_map(|rooms| Encoded::one(format, &Response::RoomsResult { rooms }).ok())
                .collect()
        })
    }
}

/// The last [`Listing`] a broker made, kept until the rooms change.
///
/// The broker calls [`ListingCache::changed`] after every change to rooms, titles or
/// members (under the lock that made it). A listing is kept only if no change
/// happened while it was computed, so a kept listing is never stale: a caller whose
/// request came before a change may get the older list, a later one never does.
#[derive(Debug, Default)]
pub struct ListingCache {
    /// Bumped after every change.
    version: AtomicU64,
    /// The last listing and the version it shows.
    kept: Mutex<Option<(u64, Arc<Listing>)>>,
}

impl ListingCache {
    /// Marks the kept listing out of date.
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The kept listing if nothing changed since it was made; else a new one of the
    /// rooms `rooms` lists (computed outside the cache's lock), kept if nothing
    /// changed meanwhile.
    pub fn get(&self, rooms: impl FnOnce() -> Vec<RoomInfo>) -> Arc<Listing> {
        let version = self.version.load(Ordering::Acquire);
        if let Some((shown, listing)) = &*lock(&self.kept)
            && *shown == version
        {
            return Arc::clone(listing);
        }
        let listing = Arc::new(Listing::new(rooms()));
        let mut kept = lock(&self.kept);
        if self.version.load(Ordering::Acquire) == version {
            *kept = Some((version, Arc::clone(&listing)));
        }
        listing
    }
}

/// Splits the list into as few `SCRoomsResult` messages as fit in one frame each
/// (the reference client reads one frame per message). An empty list is one empty
/// message. Sizes are measured per room, so this is linear in the list's length.
/// A single room whose member list alone overflows a frame (thousands of members
/// with long names) is listed with as many members as fit, found by bisection.
pub(crate) fn chunks_that_fit(rooms: Vec<RoomInfo>, format: WireFormat) -> Vec<Vec<RoomInfo>> {
    // Frame headers around the payload: one frame in JSON, Type + body in protobuf.
    let headers = match format {
        WireFormat::Json => HEADER_LEN,
        WireFormat::Protobuf => 4 + HEADER_LEN,
    };
    // The payload size of a list, or `None` if it does not fit in a frame.
    let encoded_len = |rooms: &[RoomInfo]| {
        let mut buf = Vec::new();
        let response = Response::RoomsResult {
            rooms: rooms.to_vec(),
        };
        encode_response(format, &response, &mut buf)
            .ok()
            .map(|()| buf.len() - headers)
    };
    let empty = encoded_len(&[]).unwrap_or(0);
    // What one more room adds to a list: its own bytes, plus a separator (", " in
    // JSON); `None` if the room alone does not fit.
    let cost = |room: &RoomInfo| {
        encoded_len(std::slice::from_ref(room))
            .map(|len| len - empty + 2)
            .filter(|cost| empty + cost <= MAX_PAYLOAD)
    };

    let mut chunks: Vec<Vec<RoomInfo>> = vec![Vec::new()];
    let mut used = empty;
    for mut room in rooms {
        let room_cost = match cost(&room) {
            Some(cost) => cost,
            None => {
                // Bisect on how many members fit: `fits` members do, `too_many` don't.
                let all = std::mem::take(&mut room.members);
                let (mut fits, mut too_many) = (0, all.len());
                while too_many - fits > 1 {
                    let mid = fits + (too_many - fits) / 2;
                    room.members = all[..mid].to_vec();
                    if cost(&room).is_some() {
                        fits = mid;
                    } else {
                        too_many = mid;
                    }
                }
                room.members = all[..fits].to_vec();
                // A room with no members listed fits: titles are at most 64 chars.
                cost(&room).unwrap_or(MAX_PAYLOAD - empty)
            }
        };
        if used + room_cost > MAX_PAYLOAD {
            chunks.push(Vec::new());
            used = empty;
        }
        chunks
            .last_mut()
            .expect("chunks starts non-empty and only grows")
            .push(room);
        used += room_cost;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: i64, members: usize) -> RoomInfo {
        RoomInfo {
            room_id: id,
            title: format!("{:064}", id),
            members: (0..members).map(|m| format!("{:032}", m)).collect(),
            topic: None,
        }
    }

    #[test]
    fn small_lists_are_one_message_and_big_ones_split_in_order() {
        for format in WireFormat::ALL {
            assert_eq!(
                chunks_that_fit(vec![], format),
                vec![Vec::<RoomInfo>::new()]
            );
            assert_eq!(chunks_that_fit(vec![room(1, 2)], format).len(), 1);
            let many: Vec<RoomInfo> = (1..=2000).map(|id| room(id, 3)).collect();
            let chunks = chunks_that_fit(many.clone(), format);
            assert!(chunks.len() > 1, "{format}");
            assert_eq!(chunks.concat(), many, "{format}: nothing lost, order kept");
            for chunk in chunks {
                let mut buf = Vec::new();
                encode_response(format, &Response::RoomsResult { rooms: chunk }, &mut buf).unwrap();
            }
        }
    }

    #[test]
    fn a_room_too_big_for_one_frame_lists_the_members_that_fit() {
        // Regression: an oversized room overflowed the size arithmetic (a panic in
        // debug builds, no reply at all in release).
        let payload_len = |format, rooms: Vec<RoomInfo>| {
            let mut buf = Vec::new();
            encode_response(format, &Response::RoomsResult { rooms }, &mut buf)
                .ok()
                .map(|()| buf.len())
        };
        let everyone = room(2, 3000).members;
        for format in WireFormat::ALL {
            let chunks = chunks_that_fit(vec![room(1, 1), room(2, 3000), room(3, 2)], format);
            let listed: Vec<RoomInfo> = chunks.iter().flatten().cloned().collect();
            let ids: Vec<i64> = listed.iter().map(|r| r.room_id).collect();
            assert_eq!(ids, vec![1, 2, 3], "{format}");
            let shown = listed[1].members.len();
            assert!(shown > 100 && shown < 3000, "{format}: {shown}");
            assert_eq!(
                listed[1].members[..],
                everyone[..shown],
                "a prefix, in join order"
            );
            for chunk in chunks {
                assert!(
                    payload_len(format, chunk).is_some(),
                    "{format}: every chunk fits"
                );
            }
            // One more member would not have fit (with the per-room separator).
            let mut one_more = listed[1].clone();
            one_more.members = everyone[..shown + 1].to_vec();
            let len = payload_len(format, vec![one_more]);
            assert!(
                len.is_none_or(|len| len + 2 > MAX_PAYLOAD),
                "{format}: {len:?}"
            );
        }
    }
}
