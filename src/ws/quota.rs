//! The per-user publish quota (`PARLEY_WS_USER_MSGS_PER_S`), shared by all
//! of a user's connections, and with Redis by all instances.
//!
//! A Redis round trip per publish would put Redis on the hot path of every
//! message (and make each connection wait on it to keep its frames in
//! order). Instead each instance *leases* tokens from a GCRA bucket per
//! user in Redis, [`LEASE`] of a second's quota at a time, and spends them
//! locally: one round trip per lease, not per publish. Leased tokens are
//! already charged to the user's global budget, so the quota is never
//! exceeded across instances; a lease unused after [`LEASE_TTL`] is
//! dropped, which can only under-spend (a user spread over `n` instances
//! may lose up to `n` leases a second). Without Redis, or while it fails,
//! a local GCRA per user (`governor`) enforces the quota per instance.

use crate::infra::redis::Redis;
use fred::types::scripts::Script;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use parley_actors::ids::UserId;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The share of a second's quota one lease takes.
const LEASE: u32 = 10;
/// How long leased tokens may be spent.
const LEASE_TTL: Duration = Duration::from_secs(1);
/// The longest a publish waits on Redis before the local quota decides.
const REDIS_DEADLINE: Duration = Duration::from_millis(250);
/// Leases kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;
/// Local checks between two sweeps of the local buckets.
const SWEEP_EVERY: u32 = 4_096;

/// GCRA with a cost: grants up to ARGV[3] tokens of KEYS[1] (a burst of
/// ARGV[2], one token per ARGV[1] µs), as many as the bucket holds. Returns
/// {granted, retry_after_ms}. The clock is Redis's `TIME`, in µs (exact in
/// a Lua number for the next few centuries).
const LEASE_LUA: &str = r#"
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local tolerance = interval * limit
local free = math.floor((tolerance - (tat - now)) / interval)
if free <= 0 then
  return {0, math.ceil((tat + interval - tolerance - now) / 1000)}
end
local grant = math.min(want, free)
local new_tat = tat + interval * grant
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {grant, 0}
"#;

/// What the quota says about one publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the quota: the next publish may succeed after this long.
    Refused {
        retry_after_ms: u64,
    },
    /// No leased token here: ask Redis ([`PublishQuota::lease`]).
    Lease,
}

/// What this instance holds of a user's quota until `until`: tokens to
/// spend, or (`refused`) Redis's answer that there are none, so refused
/// publishes do not each cost a round trip.
struct Leased {
    tokens: u32,
    until: Instant,
    refused: bool,
}

type Keyed = RateLimiter<UserId, DefaultKeyedStateStore<UserId>, DefaultClock>;

/// The quota of one instance; shared by all sessions.
pub struct PublishQuota {
    per_s: NonZeroU32,
    local: Keyed,
    redis: Option<(Arc<Redis>, Script)>,
    leases: Mutex<HashMap<UserId, Leased>>,
    /// Local checks so far, to sweep the local buckets now and then.
    checks: AtomicU32,
}

impl PublishQuota {
    pub fn new(per_s: NonZeroU32, redis: Option<Arc<Redis>>) -> Self {
        Self {
            per_s,
            local: RateLimiter::keyed(Quota::per_second(per_s)),
            redis: redis.map(|r| (r, Script::from_lua(LEASE_LUA))),
            leases: Mutex::new(HashMap::new()),
            checks: AtomicU32::new(1),
        }
    }

    /// The cheap check, on every publish: a leased token (with Redis) or
    /// the local bucket (without).
    pub fn check(&self, user: UserId) -> Verdict {
        if self.redis.is_none() {
            return self.check_local(user);
        }
        let Ok(mut leases) = self.leases.lock() else {
            return self.check_local(user);
        };
        let now = Instant::now();
        match leases.get_mut(&user) {
            Some(lease) if lease.until > now && lease.refused => Verdict::Refused {
                retry_after_ms: (lease.until - now).as_millis().max(1) as u64,
            },
            Some(lease) if lease.until > now && lease.tokens > 0 => {
                lease.tokens -= 1;
                Verdict::Allowed
            }
            _ => Verdict::Lease,
        }
    }

    /// Leases tokens from Redis and spends one; the local bucket decides
    /// while Redis does not answer.
    pub async fn lease(&self, user: UserId) -> Verdict {
        let Some((redis, script)) = &self.redis else {
            return self.check_local(user);
        };
        let limit = self.per_s.get();
        let interval_us = (1_000_000 / u64::from(limit)).max(1);
        let want = (limit / LEASE).max(1);
        let call = script.evalsha_with_reload::<Vec<i64>, _, _>(
            &redis.client,
            redis.key(&format!("quota:publish:{}", user.0)),
            vec![interval_us as i64, i64::from(limit), i64::from(want)],
        );
        let reply = match redis.call(REDIS_DEADLINE, call).await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::debug!(%error, "publish quota: Redis failed; counting locally");
                return self.check_local(user);
            }
        };
        let [granted, retry_after_ms] = reply[..] else {
            return self.check_local(user);
        };
        let retry_after_ms = retry_after_ms.max(1) as u64;
        let now = Instant::now();
        let lease = if granted <= 0 {
            Leased {
                tokens: 0,
                until: now + Duration::from_millis(retry_after_ms),
                refused: true,
            }
        } else {
            Leased {
                tokens: u32::try_from(granted - 1).unwrap_or(0),
                until: now + LEASE_TTL,
                refused: false,
            }
        };
        if let Ok(mut leases) = self.leases.lock() {
            if leases.len() >= SWEEP_AT {
                leases.retain(|_, lease| lease.until > now);
            }
            leases.insert(user, lease);
        }
        if granted <= 0 {
            Verdict::Refused { retry_after_ms }
        } else {
            Verdict::Allowed
        }
    }

    fn check_local(&self, user: UserId) -> Verdict {
        // Now and then, forget users whose bucket is full again.
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            self.local.retain_recent();
        }
        match self.local.check_key(&user) {
            Ok(()) => Verdict::Allowed,
            Err(not_until) => Verdict::Refused {
                retry_after_ms: (not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_millis() as u64)
                    .max(1),
            },
        }
    }
}
