//! Exponential backoff per account after failed logins, independent of the
//! per-IP limit on `/api/v1/auth/*`: an attacker with many addresses still
//! gets only a handful of guesses at one account before each further guess
//! costs twice the wait of the one before.
//!
//! # Policy
//!
//! - The first [`FREE_FAILURES`] failures cost nothing (typos happen).
//! - Each failure after those locks the account identifier for 1 s, 2 s,
//!   4 s, ... up to [`MAX_LOCK`]. While locked, every login attempt for it,
//!   right password or not, is `429` with `Retry-After`, and no password is
//!   checked (so a lock is also cheap for the server).
//! - A successful login clears the count; a quiet [`FORGET_AFTER`] does too.
//!
//! # No user enumeration
//!
//! The key is the identifier as the client sent it (username or e-mail,
//! lower-cased), never the account id: an identifier that names no account
//! is counted, locked and answered exactly like one that does.
//!
//! Counts live in Redis when it is configured, so the backoff holds across
//! instances; while Redis is unreachable (or without it) each instance
//! counts on its own in a bounded in-process cache.

use crate::infra::redis::Redis;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Failures allowed before the first lock.
pub const FREE_FAILURES: u32 = 5;
/// The longest lock one failure can cause.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// A count untouched this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Identifiers counted at once by one instance without Redis.
const LOCAL_CAPACITY: u64 = 100_000;

/// How long the `failures`th consecutive failure locks an identifier.
pub fn lock_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None | Some(0) => Duration::ZERO,
        Some(over) => Duration::from_secs(1u64 << (over - 1).min(20)).min(MAX_LOCK),
    }
}

/// Records a failure; returns the lock it causes (ms). Redis's clock, so
/// instances with skewed clocks agree. KEYS[1]: the identifier's hash.
/// ARGV: free failures, max lock ms, forget ms.
const FAIL_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local over = failures - tonumber(ARGV[1])
local lock = 0
if over > 0 then
  lock = math.min(1000 * 2 ^ math.min(over - 1, 20), tonumber(ARGV[2]))
  redis.call('HSET', KEYS[1], 'until', now + lock)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + lock)
return lock
"#;

/// The milliseconds left of an identifier's lock (0 when not locked).
const LOCKED_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local locked_until = tonumber(redis.call('HGET', KEYS[1], 'until') or 0)
return math.max(0, locked_until - now)
"#;

/// One instance's count for an identifier.
#[derive(Clone, Copy)]
struct Local {
    failures: u32,
    locked_until: Option<Instant>,
}

/// The backoff, shared by all workers.
pub struct LoginBackoff {
    redis: Option<Arc<Redis>>,
    fail: fred::types::scripts::Script,
    locked: fred::types::scripts::Script,
    local: moka::future::Cache<String, Local>,
}

impl LoginBackoff {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Self {
            redis,
            fail: fred::types::scripts::Script::from_lua(FAIL_LUA),
            locked: fred::types::scripts::Script::from_lua(LOCKED_LUA),
            local: moka::future::Cache::builder()
                .max_capacity(LOCAL_CAPACITY)
                .time_to_idle(FORGET_AFTER)
                .build(),
        }
    }

    /// `Err(seconds)` while `identifier` is locked.
    pub async fn check(&self, identifier: &str) -> Result<(), u64> {
        let left = match self.shared::<i64>(&self.locked, identifier, vec![]).await {
            Some(ms) => Duration::from_millis(ms.max(0) as u64),
            None => self
                .local
                .get(identifier)
                .await
                .and_then(|l| l.locked_until)
                .map_or(Duration::ZERO, |until| {
                    until.saturating_duration_since(Instant::now())
                }),
        };
        if left.is_zero() {
            Ok(())
        } else {
            Err(left.as_secs() + u64::from(left.subsec_nanos() > 0))
        }
    }

    /// Counts a failed login for `identifier`.
    pub async fn failed(&self, identifier: &str) {
        let args = vec![
            i64::from(FREE_FAILURES),
            MAX_LOCK.as_millis() as i64,
            FORGET_AFTER.as_millis() as i64,
        ];
        if self
            .shared::<i64>(&self.fail, identifier, args)
            .await
            .is_some()
        {
            return;
        }
        let mut entry = self.local.get(identifier).await.unwrap_or(Local {
            failures: 0,
            locked_until: None,
        });
        entry.failures = entry.failures.saturating_add(1);
        let lock = lock_after(entry.failures);
        if !lock.is_zero() {
            entry.locked_until = Some(Instant::now() + lock);
        }
        self.local.insert(identifier.to_owned(), entry).await;
    }

    /// Clears `identifier`'s count after a successful login.
    pub async fn succeeded(&self, identifier: &str) {
        self.local.invalidate(identifier).await;
        if let Some(redis) = &self.redis {
            let key = redis.key(&format!("login:{identifier}"));
            let del = fred::interfaces::KeysInterface::del::<i64, _>(&redis.client, key);
            let _ = redis.call(Duration::from_millis(500), del).await;
        }
    }

    /// Runs `script` on the identifier's key in Redis; `None` without Redis
    /// or when it fails (the caller falls back to the local count).
    async fn shared<T: fred::types::FromValue>(
        &self,
        script: &fred::types::scripts::Script,
        identifier: &str,
        args: Vec<i64>,
    ) -> Option<T> {
        let redis = self.redis.as_ref()?;
        let key = redis.key(&format!("login:{identifier}"));
        let call = script.evalsha_with_reload::<T, _, _>(&redis.client, key, args);
        redis.call(Duration::from_millis(500), call).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_after_the_free_failures_up_to_the_cap() {
        let locks: Vec<u64> = (1..=9).map(|n| lock_after(n).as_secs()).collect();
        assert_eq!(locks, [0, 0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(lock_after(40), MAX_LOCK);
        assert_eq!(lock_after(u32::MAX), MAX_LOCK);
    }

    #[tokio::test]
    async fn an_unknown_identifier_is_locked_like_any_other() {
        let backoff = LoginBackoff::new(None);
        for _ in 0..FREE_FAILURES {
            assert_eq!(backoff.check("nobody").await, Ok(()));
            backoff.failed("nobody").await;
        }
        assert_eq!(backoff.check("nobody").await, Ok(()));
        backoff.failed("nobody").await;
        assert_eq!(backoff.check("nobody").await, Err(1));
        assert_eq!(backoff.check("somebody-else").await, Ok(()));
        backoff.succeeded("nobody").await;
        assert_eq!(backoff.check("nobody").await, Ok(()));
    }
}
