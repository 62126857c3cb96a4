//! Read state: each user's read cursor per room, which only moves forward,
//! and who hears of a move. For the `read` frame and `POST
//! /rooms/{id}/read` alike:
//!
//! - every session of the reader, on every instance, gets `read` (their
//!   own cursor), so a badge cleared on the phone clears on the laptop;
//! - in private and direct rooms the other subscribers get `receipt`
//!   (public rooms have no receipts: a room anyone may join should not
//!   tell strangers who read what).
//!
//! A user's own message moves their cursor too; that happens in the same
//! transaction as the message (`store`), and clients apply it themselves
//! from the `message` frame, so no `read` frame is sent for it.

use super::Services;
use super::rooms::RoomError;
use crate::domain::{RoomKind, Seq, UserId};
use crate::store::{CursorMove, Room};
use parley_actors::ports::BusEvent;
use parley_actors::room::messages::Receipt;

/// Moves `user`'s cursor in `room` (already checked readable by the
/// caller) forward to `seq`, tells their sessions and, where the room
/// shows receipts, the other members; returns the cursor it now holds.
pub async fn mark_read(
    services: &Services,
    room: &Room,
    user: UserId,
    seq: Seq,
) -> Result<Seq, RoomError> {
    let CursorMove { seq: cursor, moved } =
        services.store.mark_room_read(room.id, user, seq).await?;
    // The contract answers every `read` with `read` on every session of
    // the reader, moved or not; other members hear only of a move.
    services.live.read_cursor(user, room.id, cursor);
    if !moved {
        return Ok(cursor);
    }
    services.metrics.read_cursor_moves.inc();
    if shows_receipts(room) {
        if let Some(addr) = services.engine.rooms.get(room.id) {
            addr.do_send(Receipt { user, seq: cursor });
        }
        services.bus.publish(BusEvent::Receipt {
            room: room.id,
            user,
            seq: cursor,
        });
    }
    Ok(cursor)
}

/// Whether members see each other's read cursors in `room`.
pub fn shows_receipts(room: &Room) -> bool {
    room.kind != RoomKind::Public
}
