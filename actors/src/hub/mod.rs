//! The hub knows every local session: who is connected, and how to reach
//! each one. It counts connections, at drain tells every session to
//! reconnect elsewhere, and ends the sessions whose credential was revoked
//! ([`messages::EndSessions`]).

pub mod actor;
pub mod messages;

pub use actor::Hub;

use crate::ids::{RoomId, UserId};
use crate::room::RoomDirectory;
use crate::room::messages::{Evict, Eviction};
use actix::Addr;

/// Ends `user`'s access to `room` on this instance, in the one order that
/// keeps it closed: every session of theirs forgets its cached access
/// (awaited, so the forgetting is queued in each session's mailbox) before
/// the room ends their subscriptions and tells them `unsubscribed`. A
/// client that answers that frame at once (re-subscribing, publishing) is
/// then checked against the store again, and refused.
pub async fn revoke_room_access(
    hub: &Addr<Hub>,
    rooms: &RoomDirectory,
    user: UserId,
    room: RoomId,
    reason: Eviction,
) {
    if let Err(error) = hub.send(messages::RevokeAccess { user, room }).await {
        tracing::warn!(%error, "could not revoke cached room access");
    }
    if let Some(addr) = rooms.get(room) {
        addr.do_send(Evict { user, reason });
    }
}
