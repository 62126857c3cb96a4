//! The revoked logins every instance refuses (contract 6.2): log out
//! everywhere refuses every access token of a user whose login began before
//! an instant; a reused refresh token refuses every access token of its
//! family.
//!
//! [`Revocations::refuses`] runs on every authenticated request, after the
//! token verified (usually from the verified-token cache): a read lock and
//! at most two hash look-ups. What is held is bounded by time: a revocation
//! older than the access-token lifetime (plus leeway) refuses nothing that
//! would not already have expired, so [`Revocations::forget_expired`] drops
//! it. Applying one is idempotent, so the same revocation may arrive from
//! the local call, the bus and the store's poll in any order.

use crate::auth::Claims;
use crate::domain::UserId;
use crate::store::Revocation;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// How long past a revocation a token it refuses may still be presented:
/// one token lifetime, the clock leeway, and a margin for a refresh that
/// was in flight when the revocation committed.
pub fn horizon(access_ttl_s: u64) -> chrono::Duration {
    chrono::Duration::seconds((access_ttl_s + super::jwt::LEEWAY_S + 60) as i64)
}

/// Which kind of revocation, as metrics label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Every login of a user before an instant (log out everywhere).
    User,
    /// One login family (refresh-token reuse).
    Family,
}

impl Kind {
    pub fn of(revocation: &Revocation) -> Self {
        match revocation.family {
            None => Kind::User,
            Some(_) => Kind::Family,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Family => "family",
        }
    }
}

/// The revocations this instance enforces.
pub struct Revocations {
    revoked: RwLock<Revoked>,
    horizon: chrono::Duration,
}

#[derive(Default)]
struct Revoked {
    /// The latest log-out-everywhere instant of each user (Unix ms): a
    /// login begun strictly before it is refused.
    users: HashMap<UserId, i64>,
    /// Revoked families, with when they were revoked (Unix ms).
    families: HashMap<uuid::Uuid, i64>,
}

impl Revocations {
    /// Enforces revocations for tokens living `access_ttl_s` seconds.
    pub fn new(access_ttl_s: u64) -> Self {
        Self {
            revoked: RwLock::default(),
            horizon: horizon(access_ttl_s),
        }
    }

    /// Whether a verified token with `claims` belongs to a revoked login.
    pub fn refuses(&self, claims: &Claims) -> bool {
        self.refuses_login(claims.sub, claims.login_began_ms(), claims.sid)
    }

    /// Whether the login of `user` begun at `began_ms` (Unix ms), of
    /// `family` when known, is revoked.
    pub fn refuses_login(&self, user: UserId, began_ms: i64, family: Option<uuid::Uuid>) -> bool {
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(before) = revoked.users.get(&user)
            && began_ms < *before
        {
            return true;
        }
        family.is_some_and(|family| revoked.families.contains_key(&family))
    }

    /// Enforces `revocation` from now on; `false` when it was already
    /// enforced (or a later log-out-everywhere of the same user is).
    pub fn apply(&self, revocation: &Revocation) -> bool {
        let at = revocation.at.timestamp_millis();
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        match revocation.family {
            None => {
                let before = revoked.users.entry(revocation.user).or_insert(i64::MIN);
                let newer = at > *before;
                *before = (*before).max(at);
                newer
            }
            Some(family) => revoked.families.insert(family, at).is_none(),
        }
    }

    /// Drops the revocations whose tokens have all expired by `now`.
    pub fn forget_expired(&self, now: chrono::DateTime<chrono::Utc>) {
        let oldest = (now - self.horizon).timestamp_millis();
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        revoked.users.retain(|_, at| *at >= oldest);
        revoked.families.retain(|_, at| *at >= oldest);
    }

    /// How many revocations are enforced now.
    pub fn len(&self) -> usize {
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        revoked.users.len() + revoked.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn claims(user: UserId, family: Option<uuid::Uuid>, iat: i64) -> Claims {
        Claims {
            sub: user,
            name: "ada".into(),
            iss: "parley".into(),
            aud: "parley".into(),
            iat,
            nbf: iat,
            exp: iat + 900,
            sid: family,
        }
    }

    fn family_at(ms: i64) -> uuid::Uuid {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            (ms / 1000) as u64,
            ((ms % 1000) * 1_000_000) as u32,
        );
        uuid::Uuid::new_v7(ts)
    }

    fn user_revocation(user: UserId, at_ms: i64) -> Revocation {
        Revocation {
            user,
            family: None,
            at: Utc.timestamp_millis_opt(at_ms).unwrap(),
        }
    }

    #[test]
    fn logging_out_everywhere_refuses_logins_begun_before_it_and_not_after() {
        let revocations = Revocations::new(900);
        let user = UserId::new();
        let at = 1_764_000_000_500;
        assert!(revocations.apply(&user_revocation(user, at)));
        let before = claims(user, Some(family_at(at - 1)), at / 1000);
        let same_ms = claims(user, Some(family_at(at)), at / 1000);
        let after = claims(user, Some(family_at(at + 1)), at / 1000);
        assert!(revocations.refuses(&before));
        assert!(!revocations.refuses(&same_ms));
        assert!(!revocations.refuses(&after));
        // Without `sid`, a token of the revocation's second is refused.
        assert!(revocations.refuses(&claims(user, None, at / 1000)));
        assert!(!revocations.refuses(&claims(user, None, at / 1000 + 1)));
        // Someone else's logins are untouched.
        assert!(!revocations.refuses(&claims(UserId::new(), Some(family_at(at - 1)), 0)));
    }

    #[test]
    fn a_revoked_family_refuses_its_tokens_only() {
        let revocations = Revocations::new(900);
        let user = UserId::new();
        let (reused, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let revocation = Revocation {
            user,
            family: Some(reused),
            at: Utc::now(),
        };
        assert!(revocations.apply(&revocation));
        let now = Utc::now().timestamp();
        assert!(revocations.refuses(&claims(user, Some(reused), now)));
        assert!(!revocations.refuses(&claims(user, Some(other), now)));
    }

    #[test]
    fn applying_the_same_revocation_again_changes_nothing() {
        let revocations = Revocations::new(900);
        let user = UserId::new();
        let at = Utc::now().timestamp_millis();
        assert!(revocations.apply(&user_revocation(user, at)));
        assert!(!revocations.apply(&user_revocation(user, at)));
        // An older one arriving late keeps the newer instant.
        assert!(!revocations.apply(&user_revocation(user, at - 10)));
        assert!(revocations.refuses(&claims(user, Some(family_at(at - 5)), 0)));
        assert!(revocations.apply(&user_revocation(user, at + 10)));
        assert_eq!(revocations.len(), 1);
    }

    #[test]
    fn revocations_are_forgotten_once_every_token_they_refuse_expired() {
        let revocations = Revocations::new(900);
        let at = Utc::now();
        revocations.apply(&user_revocation(UserId::new(), at.timestamp_millis()));
        revocations.apply(&Revocation {
            user: UserId::new(),
            family: Some(uuid::Uuid::now_v7()),
            at,
        });
        revocations.forget_expired(at + chrono::Duration::seconds(900));
        assert_eq!(revocations.len(), 2);
        revocations.forget_expired(at + horizon(900) + chrono::Duration::seconds(1));
        assert!(revocations.is_empty());
    }
}
