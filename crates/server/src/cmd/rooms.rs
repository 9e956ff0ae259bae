//! `/rooms`: list the rooms.

use chat_proto::codec::encode_response;
use chat_proto::frame::{HEADER_LEN, MAX_PAYLOAD};
use chat_proto::{Request, Response, RoomInfo, WireFormat};

use super::Context;

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::Rooms = request else {
        return;
    };
    let rooms = ctx.shared.broker.rooms();
    for chunk in chunks_that_fit(rooms, ctx.state.reply_format()) {
        if let Err(e) = ctx.reply(&Response::RoomsResult { rooms: chunk }) {
            tracing::error!(session = ctx.session.id, "room list not sent: {e}");
        }
    }
}

/// Splits the list into as few `SCRoomsResult` messages as fit in one frame each
/// (the reference client reads one frame per message). An empty list is one empty
/// message. Sizes are measured per room, so this is linear in the list's length.
/// A single room whose member list alone overflows a frame (thousands of members)
/// is listed with as many members as fit.
fn chunks_that_fit(rooms: Vec<RoomInfo>, format: WireFormat) -> Vec<Vec<RoomInfo>> {
    // Frame headers around the payload: one frame in JSON, Type + body in protobuf.
    let headers = match format {
        WireFormat::Json => HEADER_LEN,
        WireFormat::Protobuf => 4 + HEADER_LEN,
    };
    let encoded_len = |rooms: Vec<RoomInfo>| {
        let mut buf = Vec::new();
        match encode_response(format, &Response::RoomsResult { rooms }, &mut buf) {
            Ok(()) => buf.len() - headers,
            Err(_) => usize::MAX,
        }
    };
    let empty = encoded_len(Vec::new());
    // What one more room adds: its own bytes, plus a separator (", " in JSON).
    let cost = |room: &RoomInfo| {
        encoded_len(vec![room.clone()])
            .saturating_sub(empty)
            .saturating_add(2)
    };

    let mut chunks: Vec<Vec<RoomInfo>> = vec![Vec::new()];
    let mut used = empty;
    for mut room in rooms {
        let mut room_cost = cost(&room);
        if empty + room_cost > MAX_PAYLOAD {
            tracing::warn!(
                room = room.room_id,
                "room's member list exceeds one frame; listing those that fit"
            );
            while empty + room_cost > MAX_PAYLOAD && room.members.pop().is_some() {
                room_cost = cost(&room);
            }
        }
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
}
