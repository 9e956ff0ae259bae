//! Room-list pushes, the `rooms` extension (docs/PROTOCOL.md §7): a client that opted
//! in is sent the room list (`SCRoomsResult`, as `/rooms` answers) whenever it has
//! changed, instead of asking for it again and again.
//!
//! A [`ListingWatch`] is the set of clients watching, each with the list it last saw
//! (the one current when it began to watch, then each one it was sent). The transport
//! calls [`ListingWatch::push_if_changed`] on a timer with the broker's current
//! [`Listing`]: every watcher whose list has other rooms is sent it, in its format
//! (the listing encodes once per format, so a push costs a reference count per
//! watcher; watchers share their lists, so the rooms are compared once per distinct
//! list, not per watcher). So a watcher gets at most one list per tick, however fast
//! the rooms change, and nothing while they do not: the cost of many joins and leaves
//! is bounded by the tick, not by the churn.
//!
//! What it does not do: no timer (the transport's), no I/O (mailboxes), and no
//! ordering with the chats: a pushed list is a snapshot of some moment between two
//! ticks, as a `/rooms` reply is of the moment it was made.
//!
//! # Invariants
//!
//! * A watcher is held weakly: a client gone without unwatching (a cut connection) is
//!   dropped at the next push, so the set never grows past the clients alive.
//! * Each watcher's `seen` is a list whose rooms it knows: the one current when it
//!   began to watch (it asks `/rooms` once itself), or the last one it was sent.
//!   `None` (no list could be had then) means it is sent the next one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use chat_proto::WireFormat;

use crate::fanout::Fanout;
use crate::ids::ClientId;
use crate::listing::Listing;
use crate::mailbox::Mailbox;
use crate::sync::lock;

/// The clients watching the room list; see the module doc.
#[derive(Debug)]
pub struct ListingWatch<M> {
    state: Mutex<WatchState<M>>,
}

#[derive(Debug)]
struct WatchState<M> {
    watchers: HashMap<ClientId, Watcher<M>>,
}

#[derive(Debug)]
struct Watcher<M> {
    mailbox: Weak<M>,
    format: WireFormat,
    /// It opted in to `moderation`: the list it is sent has the rooms' topics.
    topics: bool,
    seen: Option<Arc<Listing>>,
}

impl<M> Default for ListingWatch<M> {
    fn default() -> Self {
        ListingWatch {
            state: Mutex::new(WatchState {
                watchers: HashMap::new(),
            }),
        }
    }
}

impl<M: Mailbox> ListingWatch<M> {
    /// Nobody watching.
    pub fn new() -> Self {
        Self::default()
    }

    /// Client `id` is sent the room list, in `format` (with topics if `topics`),
    /// whenever it is no longer
    /// `current` (the list as it is now, if the broker could give it). A client that
    /// watches already keeps the list it was last sent: a repeated hello must not
    /// make it miss a change that happened since (it was never sent `current`).
    pub fn watch(
        &self,
        id: ClientId,
        mailbox: &Arc<M>,
        format: WireFormat,
        topics: bool,
        current: Option<Arc<Listing>>,
    ) {
        let mut state = lock(&self.state);
        if let Some(watcher) = state.watchers.get_mut(&id) {
            watcher.format = format;
            watcher.topics = topics;
            return;
        }
        let watcher = Watcher {
            mailbox: Arc::downgrade(mailbox),
            format,
            topics,
            seen: current,
        };
        state.watchers.insert(id, watcher);
    }

    /// Client `id` no longer watches (it said hello without the feature, or left).
    pub fn unwatch(&self, id: ClientId) {
        lock(&self.state).watchers.remove(&id);
    }

    /// How many clients watch.
    pub fn watchers(&self) -> usize {
        lock(&self.state).watchers.len()
    }

    /// Sends `listing` to every watcher whose last list has other rooms; answers how
    /// many it was sent to. Watchers that are gone are dropped.
    pub fn push_if_changed(&self, listing: Arc<Listing>, out: &mut Fanout<M>) -> usize {
        let mut state = lock(&self.state);
        // Whether a list a watcher saw is out of date, decided once per distinct
        // list (watchers share them).
        let mut verdicts: Vec<(*const Listing, bool)> = Vec::new();
        let mut stale = |seen: &Arc<Listing>| {
            let key = Arc::as_ptr(seen);
            if let Some(&(_, verdict)) = verdicts.iter().find(|(k, _)| *k == key) {
                return verdict;
            }
            let verdict = !Arc::ptr_eq(seen, &listing) && seen.rooms() != listing.rooms();
            verdicts.push((key, verdict));
            verdict
        };
        let mut sent = 0;
        state.watchers.retain(|_, watcher| {
            let Some(mailbox) = watcher.mailbox.upgrade() else {
                return false;
            };
            if watcher.seen.as_ref().is_some_and(|seen| !stale(seen)) {
                return true;
            }
            for message in listing.messages(watcher.format, watcher.topics) {
                out.send(&mailbox, watcher.format, message);
            }
            watcher.seen = Some(Arc::clone(&listing));
            sent += 1;
            true
        });
        sent
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chat_proto::RoomInfo;

    use super::*;
    use crate::mailbox::Delivered;

    #[derive(Debug, Default)]
    struct Inbox(Mutex<Vec<Bytes>>);

    impl Mailbox for Inbox {
        fn deliver(&self, frames: &Bytes) -> Delivered {
            lock(&self.0).push(frames.clone());
            Delivered::Queued
        }
    }

    fn listing(titles: &[&str]) -> Arc<Listing> {
        Arc::new(Listing::new(
            titles
                .iter()
                .enumerate()
                .map(|(i, title)| RoomInfo {
                    room_id: i as i64 + 1,
                    title: (*title).to_owned(),
                    members: vec!["a".to_owned()],
                    topic: None,
                })
                .collect(),
        ))
    }

    fn received(inbox: &Inbox) -> Vec<String> {
        lock(&inbox.0)
            .iter()
            .map(|frames| String::from_utf8_lossy(&frames[2..]).into_owned())
            .collect()
    }

    #[test]
    fn watchers_get_each_changed_list_once_in_their_format() {
        let watch = ListingWatch::new();
        let (json, protobuf, other) = (
            Arc::new(Inbox::default()),
            Arc::new(Inbox::default()),
            Arc::new(Inbox::default()),
        );
        let empty = listing(&[]);
        watch.watch(1, &json, WireFormat::Json, false, Some(Arc::clone(&empty)));
        watch.watch(
            2,
            &protobuf,
            WireFormat::Protobuf,
            false,
            Some(Arc::clone(&empty)),
        );
        let mut out = Fanout::new();
        // What they saw when they began: nothing to send.
        assert_eq!(watch.push_if_changed(Arc::clone(&empty), &mut out), 0);
        assert_eq!(watch.push_if_changed(listing(&[]), &mut out), 0);
        assert_eq!(watch.push_if_changed(listing(&["x"]), &mut out), 2);
        assert_eq!(
            received(&json),
            [
                r#"{"type": "SCRoomsResult", "rooms": [{"roomId": 1, "title": "x", "members": ["a"]}]}"#
            ]
        );
        assert_eq!(lock(&protobuf.0).len(), 1);
        assert_eq!(
            &lock(&protobuf.0)[0][..4],
            b"\x00\x02\x08\x07",
            "SC_ROOMS_RESULT"
        );
        // The same rooms again (a new listing, equal): nothing.
        assert_eq!(watch.push_if_changed(listing(&["x"]), &mut out), 0);
        assert_eq!(received(&json).len(), 1);
        // A change: once more; a client that is not watching gets nothing.
        assert_eq!(watch.push_if_changed(listing(&["x", "y"]), &mut out), 2);
        assert_eq!(received(&json).len(), 2);
        assert!(lock(&other.0).is_empty());
        watch.unwatch(1);
        assert_eq!(watch.push_if_changed(listing(&["y"]), &mut out), 1);
        assert_eq!(received(&json).len(), 2, "unwatched");
    }

    #[test]
    fn a_new_watcher_does_not_hide_a_change_from_the_others() {
        let watch = ListingWatch::new();
        let (early, late) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
        let before = listing(&["x"]);
        watch.watch(1, &early, WireFormat::Json, false, Some(before));
        // The rooms change; before the next push a client begins to watch, seeing
        // the new list: the early watcher is still sent it, the late one is not.
        let after = listing(&["x", "y"]);
        watch.watch(2, &late, WireFormat::Json, false, Some(Arc::clone(&after)));
        let mut out = Fanout::new();
        assert_eq!(watch.push_if_changed(after, &mut out), 1);
        assert_eq!(received(&early).len(), 1);
        assert!(received(&late).is_empty());
        // A watcher that began with no list is sent the next one.
        let unknown = Arc::new(Inbox::default());
        watch.watch(3, &unknown, WireFormat::Json, false, None);
        assert_eq!(watch.push_if_changed(listing(&["x", "y"]), &mut out), 1);
        assert_eq!(received(&unknown).len(), 1);
    }

    /// A watcher that says hello again (with `rooms`) keeps the list it was last
    /// sent: a change since then is still pushed to it.
    #[test]
    fn a_repeated_hello_does_not_hide_a_change() {
        let watch = ListingWatch::new();
        let inbox = Arc::new(Inbox::default());
        watch.watch(1, &inbox, WireFormat::Json, false, Some(listing(&["x"])));
        let after = listing(&["x", "y"]);
        watch.watch(1, &inbox, WireFormat::Json, false, Some(Arc::clone(&after)));
        let mut out = Fanout::new();
        assert_eq!(watch.push_if_changed(after, &mut out), 1);
        assert_eq!(received(&inbox).len(), 1);
    }

    #[test]
    fn watchers_that_are_gone_are_dropped() {
        let watch = ListingWatch::new();
        let inbox = Arc::new(Inbox::default());
        watch.watch(1, &inbox, WireFormat::Json, false, None);
        drop(inbox);
        assert_eq!(watch.watchers(), 1);
        let mut out = Fanout::new();
        assert_eq!(watch.push_if_changed(listing(&["x"]), &mut out), 0);
        assert_eq!(watch.watchers(), 0);
    }
}
