//! Who may do what in a room: the one access policy REST handlers and
//! WebSocket sessions both call.
//!
//! - Public rooms are read and written by every signed-in user; private and
//!   direct rooms by their members only. A user banned from a room reads
//!   and writes nothing there.
//! - A muted user, or one whose direct-room peer blocked them, reads but
//!   does not publish (deleting their own messages stays allowed).
//! - Owners and admins add and remove members; anyone may join a public
//!   room as a plain member, or leave any room but one they own. Nobody
//!   adds a banned user back.

use super::Services;
use crate::domain::webhook::EventType;
use crate::domain::{RoomId, RoomKind, RoomRole, UserId};
use crate::store::{Room, RoomAccess, StoreError};
use chrono::{DateTime, Utc};
use parley_actors::hub::messages::RecheckAccess;
use parley_actors::hub::revoke_room_access;
use parley_actors::model::Action;
use parley_actors::ports::BusEvent;
use parley_actors::room::messages::Eviction;
use serde_json::json;

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
const BANNED: &str = "you are banned from this room";

/// A user's standing in a room they may read, as one access check found
/// it.
#[derive(Clone, Debug)]
pub struct Access {
    pub room: Room,
    /// None in a public room they have not joined.
    pub role: Option<RoomRole>,
    /// Why they may read but not publish, if so.
    pub silenced: Option<Silenced>,
}

/// Why a reader may not publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silenced {
    /// Muted by a moderator, until then (`None`: until unmuted).
    Muted { until: Option<DateTime<Utc>> },
    /// The other member of this direct room blocked them.
    BlockedByPeer,
}

impl Access {
    /// Whether the user may publish `action` here now. A mute's end is
    /// checked against the clock, so a session's cached access stops
    /// refusing when the mute expires.
    pub fn may_publish(&self, action: &Action) -> Result<(), RoomError> {
        may_publish(self.silenced, action)
    }
}

/// The publishing rule, for a standing cached apart from its room (a
/// WebSocket session's access cache).
pub fn may_publish(silenced: Option<Silenced>, action: &Action) -> Result<(), RoomError> {
    {
        if matches!(action, Action::Delete { .. }) {
            return Ok(());
        }
        match silenced {
            Some(Silenced::Muted { until }) if until.is_none_or(|t| t > Utc::now()) => Err(
                RoomError::Forbidden("you are muted in this room and cannot publish"),
            ),
            Some(Silenced::BlockedByPeer) => Err(RoomError::Forbidden(
                "the other member of this conversation blocked you",
            )),
            _ => Ok(()),
        }
    }
}

/// The room, if it exists and `user` may read it, with their standing
/// there.
pub async fn readable(
    services: &Services,
    room: RoomId,
    user: UserId,
) -> Result<Access, RoomError> {
    let access = access_of(services, room, user).await?;
    if access.banned.is_some() {
        return Err(RoomError::Forbidden(BANNED));
    }
    if !reads(&access.room, access.role) {
        return Err(RoomError::Forbidden(MEMBERS_ONLY));
    }
    let silenced = if let Some(mute) = &access.muted {
        Some(Silenced::Muted { until: mute.until })
    } else if access.blocked_by_peer {
        Some(Silenced::BlockedByPeer)
    } else {
        None
    };
    Ok(Access {
        room: access.room,
        role: access.role,
        silenced,
    })
}

/// [`readable`] for a publish: also refuses a user who may read but not
/// publish `action`.
pub async fn writable(
    services: &Services,
    room: RoomId,
    user: UserId,
    action: &Action,
) -> Result<Access, RoomError> {
    let access = readable(services, room, user).await?;
    access.may_publish(action)?;
    Ok(access)
}

/// Whether `user` may read `room` (e.g. to be notified of a mention there).
pub async fn may_read(services: &Services, room: &Room, user: UserId) -> Result<bool, StoreError> {
    match services.store.room_access(room.id, user).await? {
        Some(access) => Ok(access.banned.is_none() && reads(room, access.role)),
        None => Ok(false),
    }
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

/// The room, if it exists, and `user`'s standing in it: one read.
async fn access_of(
    services: &Services,
    room: RoomId,
    user: UserId,
) -> Result<RoomAccess, RoomError> {
    services
        .store
        .room_access(room, user)
        .await?
        .ok_or(RoomError::NotFound("room"))
}

/// `caller`'s role in `room`, if they manage its members (owner, admin);
/// `Forbidden(why)` otherwise.
pub(super) async fn manager_role(
    services: &Services,
    room: RoomId,
    caller: UserId,
    why: &'static str,
) -> Result<RoomRole, RoomError> {
    let access = access_of(services, room, caller).await?;
    match access.role {
        Some(role) if role.manages_members() => Ok(role),
        _ => Err(RoomError::Forbidden(why)),
    }
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
    let caller_access = access_of(services, room, caller).await?;
    let manages = caller_access.role.is_some_and(RoomRole::manages_members);
    let self_join =
        user == caller && caller_access.room.kind == RoomKind::Public && role == RoomRole::Member;
    if !manages && !self_join {
        return Err(RoomError::Forbidden(
            "only the room's owner or admins may add members",
        ));
    }
    let banned = if user == caller {
        caller_access.banned.is_some()
    } else {
        let target = services.store.room_access(room, user).await?;
        target.is_some_and(|t| t.banned.is_some())
    };
    if banned {
        return Err(RoomError::Forbidden(if user == caller {
            BANNED
        } else {
            "this user is banned from the room; lift the ban first"
        }));
    }
    services
        .store
        .add_member(room, user, role)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RoomError::NotFound("user"),
            other => other.into(),
        })?;
    let data = || json!({ "room": room, "user": user, "role": role.as_str(), "by": caller });
    services.webhooks.emit(EventType::MemberAdded, data).await;
    Ok(())
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
    let caller_role = access_of(services, room, caller).await?.role;
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
    revoke(services, room, user, Eviction::Removed).await;
    member_removed(services, room, user, caller, Eviction::Removed).await;
    Ok(())
}

/// Reports that `user` stopped being a member of `room` because of `by`:
/// `reason` is `left` (they removed themselves), `removed` or `banned`.
pub(super) async fn member_removed(
    services: &Services,
    room: RoomId,
    user: UserId,
    by: UserId,
    why: Eviction,
) {
    let reason = match why {
        Eviction::Banned => "banned",
        Eviction::Removed if user == by => "left",
        Eviction::Removed => "removed",
    };
    let data = || json!({ "room": room, "user": user, "by": by, "reason": reason });
    services.webhooks.emit(EventType::MemberRemoved, data).await;
}

/// Ends `user`'s access to `room` in live sessions. Their sessions forget
/// the cached access before the room tells them `unsubscribed` (awaited, so
/// a publish sent on seeing that frame is checked again and refused), and
/// their subscriptions end now, not at their next reconnect.
pub(super) async fn revoke(services: &Services, room: RoomId, user: UserId, reason: Eviction) {
    let engine = &services.engine;
    revoke_room_access(&engine.hub, &engine.rooms, user, room, reason).await;
    // Their sessions on other instances too.
    services
        .bus
        .publish(BusEvent::Revoke { room, user, reason });
}

/// `user`'s standing in `room` (every room: `None`) changed but they keep
/// reading: their sessions, here and on other instances, check access
/// again before their next publish.
pub(super) async fn recheck(services: &Services, user: UserId, room: Option<RoomId>) {
    if let Err(error) = services.engine.hub.send(RecheckAccess { user, room }).await {
        tracing::warn!(%error, "could not ask sessions to check access again");
    }
    services.bus.publish(BusEvent::Recheck { user, room });
}
