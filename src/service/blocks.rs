//! Blocks between users (contract 1.1, 6.2): a blocked user cannot follow
//! the blocker, publish into a direct room with them, or cause them a
//! notification. Blocking also ends any follow between the two.
//!
//! The direct-room rule lives with the other access rules
//! ([`super::rooms`]); the notification rule is [`reachable`], which every
//! notification path in [`super::notify`] calls.

use super::Services;
use super::moderation::count;
use crate::domain::{Limit, UserId};
use crate::store::{Block, StoreError};

/// Why a block could not be made.
#[derive(Debug)]
pub enum BlockError {
    /// Blocking oneself.
    Yourself,
    UnknownUser,
    Store(StoreError),
}

/// `blocker` blocks `blocked`. Idempotent.
pub async fn block(
    services: &Services,
    blocker: UserId,
    blocked: UserId,
) -> Result<(), BlockError> {
    if blocker == blocked {
        return Err(BlockError::Yourself);
    }
    let new = match services.store.block(blocker, blocked).await {
        Ok(new) => new,
        Err(StoreError::NotFound) => return Err(BlockError::UnknownUser),
        Err(other) => return Err(BlockError::Store(other)),
    };
    if new {
        // A session of theirs may hold access to a direct room with the
        // blocker, checked before the block: it checks again.
        super::rooms::recheck(services, blocked, None).await;
        // The ended follows change both users' feeds.
        services.cache.feeds_changed(&[blocker, blocked]).await;
        count(services, "block");
    }
    Ok(())
}

/// Idempotent.
pub async fn unblock(
    services: &Services,
    blocker: UserId,
    blocked: UserId,
) -> Result<(), StoreError> {
    services.store.unblock(blocker, blocked).await?;
    super::rooms::recheck(services, blocked, None).await;
    count(services, "unblock");
    Ok(())
}

pub async fn list(
    services: &Services,
    blocker: UserId,
    after: Option<UserId>,
    limit: Limit,
) -> Result<Vec<Block>, StoreError> {
    services.store.blocks(blocker, after, limit).await
}

/// Whether `follower` may follow `followee`: not if `followee` blocked them.
pub async fn may_follow(
    services: &Services,
    follower: UserId,
    followee: UserId,
) -> Result<bool, StoreError> {
    let blockers = services.store.blockers_among(follower, &[followee]).await?;
    Ok(blockers.is_empty())
}

/// Those of `users` whom `actor` may notify: everyone who did not block
/// them. When the blocks cannot be read, nobody: a notification is not
/// worth reaching someone who asked not to be reached.
pub async fn reachable(services: &Services, actor: UserId, mut users: Vec<UserId>) -> Vec<UserId> {
    if users.is_empty() {
        return users;
    }
    match services.store.blockers_among(actor, &users).await {
        Ok(blockers) if blockers.is_empty() => users,
        Ok(blockers) => {
            users.retain(|u| !blockers.contains(u));
            users
        }
        Err(error) => {
            tracing::warn!(%error, "could not read blocks; notifying nobody");
            Vec::new()
        }
    }
}
