//! Who may do what in a room: the one access policy REST handlers and
//! WebSocket sessions both call.
//!
//! - Public rooms are read and written by every signed-in user; private and
//!   direct rooms by their members only.
//! - Owners and admins add and remove members; anyone may join a public
//!   room as a plain member, or leave any room but one they own.

use super::Services;
use crate::domain::{RoomId, RoomKind, RoomRole, UserId};
use crate::store::{Room, StoreError};
use parley_actors::hub::messages::RevokeAccess;
use parley_actors::ports::BusEvent;
use parley_actors::room::messages::Evict;

/// Why a room operation was refused, in words a client can act on.
#[derive(Debug)]
pub enum RoomError {
    NotFound(&'static str),
    Forbidden(&'static str),
    Conflict(&'static str),
    Store(StoreError),
}

impl From<StoreError> for RoomError {
    fn from(e: StoreError) -> Self {
        RoomError::Store(e)
    }
}

const MEMBERS_ONLY: &str = "only members may read or write this room";

/// The room, if it exists and `user` may read and write it, with the
/// user's role there (none in a public room they have not joined).
pub async fn readable(
    services: &Services,
    room: RoomId,
    user: UserId,
) -> Result<(Room, Option<RoomRole>), RoomError> {
    let (found, role) = with_role(services, room, user).await?;
    if !reads(&found, role) {
        return Err(RoomError::Forbidden(MEMBERS_ONLY));
    }
    Ok((found, role))
}

/// Whether `user` may read `room` (e.g. to be notified of a mention there).
pub async fn may_read(services: &Services, room: &Room, user: UserId) -> Result<bool, StoreError> {
    if reads(room, None) {
        return Ok(true);
    }
    let role = services.store.role(room.id, user).await?;
    Ok(reads(room, role))
}

/// Whether a member with `role` moderates the room: deletes other people's
/// messages (and manages its members).
pub fn moderates(role: Option<RoomRole>) -> bool {
    role.is_some_and(RoomRole::manages_members)
}

/// The rule itself: every signed-in user reads a public room; only members
/// read the others.
fn reads(room: &Room, role: Option<RoomRole>) -> bool {
    room.kind == RoomKind::Public || role.is_some()
}

/// The room, if it exists, and `user`'s role in it: one read.
async fn with_role(
    services: &Services,
    room: RoomId,
    user: UserId,
) -> Result<(Room, Option<RoomRole>), RoomError> {
    services
        .store
        .room_with_role(room, user)
        .await?
        .ok_or(RoomError::NotFound("room"))
}

/// Adds `user` to `room` as `role`, if `caller` manages the room's members
/// or is joining a public room as a plain member. Idempotent.
pub async fn add_member(
    services: &Services,
    caller: UserId,
    room: RoomId,
    user: UserId,
    role: RoomRole,
) -> Result<(), RoomError> {
    let (found, caller_role) = with_role(services, room, caller).await?;
    let manages = caller_role.is_some_and(RoomRole::manages_members);
    let self_join = user == caller && found.kind == RoomKind::Public && role == RoomRole::Member;
    if !manages && !self_join {
        return Err(RoomError::Forbidden(
            "only the room's owner or admins may add members",
        ));
    }
    services
        .store
        .add_member(room, user, role)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RoomError::NotFound("user"),
            other => other.into(),
        })
}

/// Removes `user` from `room` (`caller` leaving, or a manager removing
/// someone who is not the owner), then ends their live subscriptions on
/// every instance.
pub async fn remove_member(
    services: &Services,
    caller: UserId,
    room: RoomId,
    user: UserId,
) -> Result<(), RoomError> {
    let (_, caller_role) = with_role(services, room, caller).await?;
    let target_role = services.store.role(room, user).await?;
    let allowed = user == caller
        || (caller_role.is_some_and(RoomRole::manages_members)
            && target_role != Some(RoomRole::Owner));
    if !allowed {
        return Err(RoomError::Forbidden(
            "only the room's owner or admins may remove other members",
        ));
    }
    // A room always keeps someone who can manage it.
    if user == caller && target_role == Some(RoomRole::Owner) {
        return Err(RoomError::Conflict("the owner cannot leave the room"));
    }
    services
        .store
        .remove_member(room, user)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RoomError::NotFound("member"),
            other => other.into(),
        })?;
    revoke(services, room, user).await;
    Ok(())
}

/// Ends `user`'s access to `room` in live sessions. Their sessions forget
/// the cached access before the room tells them `unsubscribed` (awaited, so
/// a publish sent on seeing that frame is checked again and refused), and
/// their subscriptions end now, not at their next reconnect.
async fn revoke(services: &Services, room: RoomId, user: UserId) {
    let engine = &services.engine;
    if let Err(error) = engine.hub.send(RevokeAccess { user, room }).await {
        tracing::warn!(%error, "could not revoke cached room access");
    }
    if let Some(addr) = engine.rooms.get(room) {
        addr.do_send(Evict { user });
    }
    // Their sessions on other instances too.
    services.bus.publish(BusEvent::Revoke { room, user });
}
