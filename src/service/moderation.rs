//! Room bans and mutes (contract 1.1, 6.2): who may impose them, and what
//! they do to live sessions on every instance.
//!
//! - Only the room's owner and admins ban and mute; the owner cannot be
//!   banned or muted, nobody restricts themselves, and only the owner
//!   restricts an admin.
//! - A ban removes the member (in the store, in the same transaction),
//!   reports `member.removed` `{reason: "banned"}` to webhooks if they were
//!   one, and ends their subscriptions everywhere with `unsubscribed`
//!   `{reason: "banned"}`; [`super::rooms`] refuses them reading,
//!   joining, being added and publishing until it is lifted or expires.
//! - A mute keeps them reading; their sessions check access again before
//!   their next publish, which is refused until the mute is lifted or
//!   expires.

use super::Services;
use super::rooms::{self, RoomError};
use crate::domain::{Limit, RestrictionKind, RoomId, RoomRole, UserId};
use crate::store::{NewRestriction, Restriction, StoreError};
use parley_actors::room::messages::Eviction;

const MANAGERS_ONLY: &str = "only the room's owner or admins may ban or mute";

/// Bans or mutes `new.user` in `new.room` on behalf of `new.by`.
pub async fn restrict(services: &Services, new: NewRestriction) -> Result<Restriction, RoomError> {
    let caller_role = rooms::manager_role(services, new.room, new.by, MANAGERS_ONLY).await?;
    if new.user == new.by {
        return Err(RoomError::Conflict("you cannot ban or mute yourself"));
    }
    match services.store.role(new.room, new.user).await? {
        Some(RoomRole::Owner) => {
            return Err(RoomError::Forbidden(
                "the room's owner cannot be banned or muted",
            ));
        }
        Some(RoomRole::Admin) if caller_role != RoomRole::Owner => {
            return Err(RoomError::Forbidden(
                "only the room's owner may ban or mute an admin",
            ));
        }
        _ => {}
    }
    let (room, user, kind) = (new.room, new.user, new.kind);
    let by = new.by;
    let imposed = services.store.restrict(new).await.map_err(|e| match e {
        StoreError::NotFound => RoomError::NotFound("user"),
        other => other.into(),
    })?;
    match kind {
        RestrictionKind::Ban => rooms::revoke(services, room, user, Eviction::Banned).await,
        RestrictionKind::Mute => rooms::recheck(services, user, Some(room)).await,
    }
    if imposed.ended_membership {
        rooms::member_removed(services, room, user, by, Eviction::Banned).await;
    }
    count(services, kind.as_str());
    tracing::info!(%room, %user, action = kind.as_str(), "room restriction imposed");
    Ok(imposed.restriction)
}

/// Lifts `user`'s ban or mute in `room` on behalf of `caller`.
pub async fn lift(
    services: &Services,
    caller: UserId,
    room: RoomId,
    user: UserId,
    kind: RestrictionKind,
) -> Result<(), RoomError> {
    rooms::manager_role(services, room, caller, MANAGERS_ONLY).await?;
    services
        .store
        .lift_restriction(room, user, kind)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RoomError::NotFound(match kind {
                RestrictionKind::Ban => "ban",
                RestrictionKind::Mute => "mute",
            }),
            other => other.into(),
        })?;
    // A banned user holds no cached access (refusals are never cached);
    // a muted one does, and may publish again.
    if kind == RestrictionKind::Mute {
        rooms::recheck(services, user, Some(room)).await;
    }
    count(
        services,
        match kind {
            RestrictionKind::Ban => "unban",
            RestrictionKind::Mute => "unmute",
        },
    );
    Ok(())
}

/// The bans or mutes in force in `room`, for its managers.
pub async fn list(
    services: &Services,
    caller: UserId,
    room: RoomId,
    kind: RestrictionKind,
    after: Option<UserId>,
    limit: Limit,
) -> Result<Vec<Restriction>, RoomError> {
    rooms::manager_role(services, room, caller, MANAGERS_ONLY).await?;
    Ok(services
        .store
        .restrictions(room, kind, after, limit)
        .await?)
}

pub(super) fn count(services: &Services, action: &str) {
    services
        .metrics
        .moderation_actions
        .with_label_values(&[action])
        .inc();
}
