//! Registered rooms on one node: the local broker's `chat_core::RoomKeeper`, which
//! hands each registration, each give-up (`/delete`) and each chat of a registered
//! room to the embedded store, and the way back at start ([`kept_rooms`]).
//!
//! Every call only queues a write ([`Store::submit`] never blocks): the broker calls
//! it under the room's lock, in the room's order, so the store sees one room's chats
//! in the order its members did. What the store promises for them is its own (a
//! `kill -9` loses at most the last commit window; `chat_store`'s module doc). A write
//! the store cannot take is counted there (`Health`) and logged by it.
//!
//! What it does not do: decide which rooms are registered (the broker's rule: a room
//! created by a client logged in to an account), or keep guest rooms (they are gone
//! with their last member, as on the reference server).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chat_core::moderation::Moderation;
use chat_core::{BrokerStat, ChatLine, KeptRoom, RoomId, RoomKeeper};
use chat_store::{ChatRecord, RegisteredRoom, Store, Write};

/// See the module doc.
pub(crate) struct StoreRooms {
    store: Arc<Store>,
}

impl StoreRooms {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        StoreRooms { store }
    }
}

impl RoomKeeper for StoreRooms {
    fn registered(&self, room: RoomId, title: &str, owner: &str) {
        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.store.submit(
            Write::CreateRoom(RegisteredRoom {
                id: room,
                title: title.to_owned(),
                owner_key: owner.to_owned(),
                created_ms,
            }),
            None,
        );
    }

    fn unregistered(&self, room: RoomId) {
        self.store.submit(Write::DeleteRoom { id: room }, None);
    }

    fn moderated(&self, room: RoomId, owner: &str, moderation: &Moderation) {
        self.store.submit(
            Write::SetModeration {
                id: room,
                owner_key: owner.to_owned(),
                moderation: moderation.to_text(),
            },
            None,
        );
    }

    fn chat(&self, room: RoomId, line: ChatLine) {
        let ChatLine {
            seq,
            time_ms,
            member,
            text,
        } = line;
        self.store.submit(
            Write::Chat(ChatRecord {
                room_id: room,
                seq,
                time_ms,
                member: member.to_string(),
                text: text.to_string(),
            }),
            None,
        );
    }
}

/// The registered rooms a store kept, each with its chats (`chats` as
/// `Snapshot::chats` holds them) and its moderation (`Snapshot::moderation`), for
/// the broker. A moderation text the server cannot read is logged and the room
/// starts without one (its owner keeps it).
pub(crate) fn kept_rooms(
    rooms: Vec<RegisteredRoom>,
    chats: Vec<ChatRecord>,
    moderation: Vec<(i64, String)>,
) -> Vec<KeptRoom> {
    let mut moderation: HashMap<i64, String> = moderation.into_iter().collect();
    let mut history: HashMap<i64, Vec<ChatLine>> = HashMap::new();
    for chat in chats {
        history.entry(chat.room_id).or_default().push(ChatLine {
            seq: chat.seq,
            time_ms: chat.time_ms,
            member: chat.member.into(),
            text: chat.text.into(),
        });
    }
    rooms
        .into_iter()
        .map(|room| KeptRoom {
            history: history.remove(&room.id).unwrap_or_default(),
            moderation: moderation
                .remove(&room.id)
                .and_then(|text| {
                    let read = Moderation::from_text(&text);
                    if read.is_none() {
                        tracing::warn!(
                            room = room.id,
                            "store: unreadable room moderation; ignored"
                        );
                    }
                    read
                })
                .unwrap_or_default(),
            id: room.id,
            title: room.title,
            owner: room.owner_key,
        })
        .collect()
}

/// How the store's writes are going, for the metrics endpoint.
pub(crate) fn store_stats(store: &Store) -> Vec<BrokerStat> {
    use std::sync::atomic::Ordering::Relaxed;
    let health = store.health();
    vec![
        BrokerStat {
            name: "store_writes_committed",
            help: "Writes (accounts, rooms, chats) the store committed",
            counter: true,
            value: health.committed.load(Relaxed),
        },
        BrokerStat {
            name: "store_commits",
            help: "Transactions the store committed (each a group of writes)",
            counter: true,
            value: health.commits.load(Relaxed),
        },
        BrokerStat {
            name: "store_write_failures",
            help: "Writes the store could not make (a disk error, a full disk)",
            counter: true,
            value: health.failed.load(Relaxed),
        },
        BrokerStat {
            name: "store_chats_dropped",
            help: "Chats of registered rooms not kept: the store's queue was full or it had stopped",
            counter: true,
            value: health.dropped.load(Relaxed),
        },
        BrokerStat {
            name: "store_failing",
            help: "1 while the store's last commit failed",
            counter: false,
            value: u64::from(health.failing.load(Relaxed)),
        },
    ]
}
