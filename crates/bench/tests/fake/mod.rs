//! A deliberately simple chat server for the bench's tests: a thread per connection,
//! one mutex over everything. It speaks both formats (detected per connection) and
//! can be told to misbehave (drop, duplicate or swap chats) so the tests can check
//! that the bench notices.
//!
//! It is not the real server and says nothing about its performance; the real one is
//! tested in `real_server.rs`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_proto::codec::{RequestDecoder, WireFormat, encode_response};
use chat_proto::frame::FrameBuf;
use chat_proto::{Request, Response, RoomInfo};

/// How the fake server misbehaves with chats.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    /// Drop every n-th chat delivery.
    pub(crate) drop_every: Option<u64>,
    /// Deliver every n-th chat delivery twice.
    pub(crate) duplicate_every: Option<u64>,
    /// Also echo chats to their sender.
    pub(crate) echo: bool,
    /// After the n-th chat delivery, cut the receiving connection off.
    pub(crate) kick_at: Option<u64>,
    /// After every n-th chat delivery, send the receiver a frame that is not JSON.
    pub(crate) garbage_every: Option<u64>,
    /// Cut off a receiver whose name starts with this as soon as a chat is delivered
    /// to it (the bench names its never-reading flood members `n…`).
    pub(crate) kick_names_starting: Option<&'static str>,
    /// Cut off a connection whose frame has stayed incomplete this long (a
    /// protection against slowloris).
    pub(crate) cut_incomplete_after: Option<Duration>,
}

struct Client {
    name: String,
    room: Option<i64>,
    format: WireFormat,
    writer: Arc<Mutex<TcpStream>>,
}

struct Room {
    title: String,
    members: Vec<usize>,
}

#[derive(Default)]
struct State {
    next_room: i64,
    rooms: BTreeMap<i64, Room>,
    clients: BTreeMap<usize, Client>,
}

pub(crate) struct FakeServer {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts serving on an ephemeral loopback port, with `pre_existing` rooms already
    /// there (so the bench cannot assume ids start at 1).
    pub(crate) fn start(faults: Faults, pre_existing: usize) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut state = State {
            next_room: 1,
            ..State::default()
        };
        for i in 0..pre_existing {
            // Rooms with no members: this fake never deletes them.
            state.rooms.insert(
                state.next_room,
                Room {
                    title: format!("someone else's {i}"),
                    members: Vec::new(),
                },
            );
            state.next_room += 1;
        }
        let state = Arc::new(Mutex::new(state));
        let deliveries = Arc::new(AtomicU64::new(0));
        let accept_stop = stop.clone();
        let accept = std::thread::spawn(move || {
            let mut next_id = 0;
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let id = next_id;
                next_id += 1;
                let state = state.clone();
                let deliveries = deliveries.clone();
                std::thread::spawn(move || serve(id, stream, state, faults, deliveries));
            }
        });
        FakeServer {
            addr,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    id: usize,
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    faults: Faults,
    deliveries: Arc<AtomicU64>,
) {
    let _ = stream.set_nodelay(true);
    let writer = Arc::new(Mutex::new(stream.try_clone().unwrap()));
    let name = format!("{:?}", stream.peer_addr().ok());
    let mut decoder = RequestDecoder::new(None);
    let mut buf = FrameBuf::new();
    let mut registered = false;
    let mut incomplete_since: Option<Instant> = None;
    if faults.cut_incomplete_after.is_some() {
        // Wake up now and then to look at the clock.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
    }
    loop {
        match buf.read_from(&mut stream) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        while let Some(frame) = buf.next_frame() {
            let Some(request) = decoder.feed(frame) else {
                continue;
            };
            let Some(format) = decoder.format() else {
                continue;
            };
            let mut st = state.lock().unwrap();
            if !registered {
                st.clients.insert(
                    id,
                    Client {
                        name: name.clone(),
                        room: None,
                        format,
                        writer: writer.clone(),
                    },
                );
                registered = true;
            }
            match request {
                Ok(request) => handle(&mut st, id, request, faults, &deliveries),
                Err(e) => send(&st, id, &Response::system(e.to_string())),
            }
        }
        if let Some(limit) = faults.cut_incomplete_after {
            if buf.pending() == 0 {
                incomplete_since = None;
            } else if incomplete_since.get_or_insert_with(Instant::now).elapsed() > limit {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                break;
            }
        }
    }
    let mut st = state.lock().unwrap();
    if let Some(client) = st.clients.remove(&id)
        && let Some(room) = client.room.and_then(|r| st.rooms.get_mut(&r))
    {
        room.members.retain(|&m| m != id);
    }
}

fn send(st: &State, to: usize, response: &Response<'_>) {
    let Some(client) = st.clients.get(&to) else {
        return;
    };
    let mut wire = Vec::new();
    encode_response(client.format, response, &mut wire).unwrap();
    let _ = client.writer.lock().unwrap().write_all(&wire);
}

fn handle(st: &mut State, id: usize, request: Request, faults: Faults, n: &AtomicU64) {
    match request {
        Request::Name { name } => {
            st.clients.get_mut(&id).unwrap().name = name.clone();
            send(
                st,
                id,
                &Response::system(format!("이름이 {name} 으로 변경되었습니다.")),
            );
        }
        Request::Rooms => {
            let rooms = st
                .rooms
                .iter()
                .map(|(&room_id, room)| RoomInfo {
                    room_id,
                    title: room.title.clone(),
                    members: room
                        .members
                        .iter()
                        .map(|m| st.clients[m].name.clone())
                        .collect(),
                    topic: None,
                })
                .collect();
            send(st, id, &Response::RoomsResult { rooms });
        }
        Request::CreateRoom { title } => {
            let room_id = st.next_room;
            st.next_room += 1;
            st.rooms.insert(
                room_id,
                Room {
                    title: title.clone(),
                    members: vec![id],
                },
            );
            st.clients.get_mut(&id).unwrap().room = Some(room_id);
            send(
                st,
                id,
                &Response::system(format!("방제[{title}] 방에 입장했습니다.")),
            );
        }
        Request::JoinRoom { room_id } => {
            let Some(room) = st.rooms.get_mut(&room_id) else {
                return send(st, id, &Response::system("대화방이 존재하지 않습니다."));
            };
            let earlier = room.members.clone();
            room.members.push(id);
            let title = room.title.clone();
            st.clients.get_mut(&id).unwrap().room = Some(room_id);
            send(
                st,
                id,
                &Response::system(format!("방제[{title}] 방에 입장했습니다.")),
            );
            let notice = format!("[{}] 님이 입장했습니다.", st.clients[&id].name);
            for m in earlier {
                send(st, m, &Response::system(notice.clone()));
            }
        }
        Request::Chat { text } => {
            let Some(room) = st.clients[&id].room.and_then(|r| st.rooms.get(&r)) else {
                return send(
                    st,
                    id,
                    &Response::system("현재 대화방에 들어가 있지 않습니다."),
                );
            };
            let chat = Response::Chat {
                member: st.clients[&id].name.clone().into(),
                text: text.into(),
            };
            let to: Vec<usize> = room
                .members
                .iter()
                .copied()
                .filter(|&m| m != id || faults.echo)
                .collect();
            for m in to {
                let k = n.fetch_add(1, Ordering::SeqCst) + 1;
                if faults.drop_every.is_some_and(|e| k.is_multiple_of(e)) {
                    continue;
                }
                send(st, m, &chat);
                if faults.duplicate_every.is_some_and(|e| k.is_multiple_of(e)) {
                    send(st, m, &chat);
                }
                if faults.garbage_every.is_some_and(|e| k.is_multiple_of(e)) {
                    let mut wire = Vec::new();
                    chat_proto::frame::write_frame(&mut wire, b"{not json").unwrap();
                    let _ = st.clients[&m].writer.lock().unwrap().write_all(&wire);
                }
                let kick_name = faults
                    .kick_names_starting
                    .is_some_and(|p| st.clients[&m].name.starts_with(p));
                if faults.kick_at == Some(k) || kick_name {
                    let writer = st.clients[&m].writer.lock().unwrap();
                    let _ = writer.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        // The fake server speaks no extension.
        _ => {}
    }
}
