//! Request rate limits: GCRA (a leaky bucket without timers) per key.
//!
//! Two limits from the wire contract: `PARLEY_RATE_API_PER_MIN` per user on
//! the API and `PARLEY_RATE_AUTH_PER_MIN` per client IP on `/api/v1/auth/*`.
//! [`LocalLimiter`] keeps the counters in this process with `governor`;
//! [`RedisLimiter`] keeps them in Redis so the limits hold across instances,
//! and falls back to a [`LocalLimiter`] (said in a log line and the
//! `parley_rate_limit_local_fallback` gauge) while Redis is unreachable:
//! never open, never refusing everything.

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// What a limiter decided for one request, with what the
/// `X-RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests per window.
    pub limit: u32,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_s: u64,
    /// Seconds until the next request is allowed (refused requests only).
    pub retry_after_s: u64,
}

/// Which limit a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// Per user (or per IP when anonymous) on the API.
    Api,
    /// Per client IP on `/api/v1/auth/*`.
    Auth,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Api => "api",
            LimitKind::Auth => "auth",
        }
    }
}

/// A rate limiter shared by all workers.
#[async_trait]
pub trait Limiter: Send + Sync + 'static {
    async fn check(&self, kind: LimitKind, key: &str) -> Decision;
}

pub type SharedLimiter = Arc<dyn Limiter>;

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// In-process limits, one GCRA bucket per key.
pub struct LocalLimiter {
    api: (Keyed, u32),
    auth: (Keyed, u32),
}

impl LocalLimiter {
    pub fn new(api_per_min: NonZeroU32, auth_per_min: NonZeroU32) -> Self {
        Self {
            api: (per_minute(api_per_min), api_per_min.get()),
            auth: (per_minute(auth_per_min), auth_per_min.get()),
        }
    }

    fn decide(limiter: &Keyed, limit: u32, key: &str) -> Decision {
        let per_cell = Duration::from_secs(60) / limit;
        match limiter.check_key(&key.to_owned()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit,
                    remaining,
                    reset_s: ceil_secs(per_cell * (limit - remaining)),
                    retry_after_s: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    reset_s: ceil_secs(per_cell * limit),
                    retry_after_s: ceil_secs(wait).max(1),
                }
            }
        }
    }
}

#[async_trait]
impl Limiter for LocalLimiter {
    async fn check(&self, kind: LimitKind, key: &str) -> Decision {
        let (limiter, limit) = match kind {
            LimitKind::Api => &self.api,
            LimitKind::Auth => &self.auth,
        };
        Self::decide(limiter, *limit, key)
    }
}

/// GCRA in one Lua script, so the read-modify-write of a bucket is atomic
/// across instances. Written here because the maintained Rust GCRA crates
/// (governor) keep state in process, and `redis-cell` is a server module a
/// managed Redis rarely allows. The clock is Redis's `TIME`, so instances
/// with skewed clocks still agree. Same semantics as [`LocalLimiter`]: a
/// burst of `limit`, then one request per `interval`.
///
/// ARGV: interval (ms), limit. Returns {allowed, remaining, reset_ms,
/// retry_after_ms}.
const GCRA_LUA: &str = r#"
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local tolerance = interval * limit
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return {1, math.floor((tolerance - (new_tat - now)) / interval), new_tat - now, 0}
"#;

/// Limits shared by every instance through Redis.
pub struct RedisLimiter {
    redis: Arc<crate::infra::redis::Redis>,
    script: fred::types::scripts::Script,
    fallback: LocalLimiter,
    limits: (u32, u32),
    falling_back: std::sync::atomic::AtomicBool,
    metrics: Arc<crate::observability::metrics::Metrics>,
}

impl RedisLimiter {
    pub fn new(
        redis: Arc<crate::infra::redis::Redis>,
        api_per_min: NonZeroU32,
        auth_per_min: NonZeroU32,
        metrics: Arc<crate::observability::metrics::Metrics>,
    ) -> Self {
        Self {
            redis,
            script: fred::types::scripts::Script::from_lua(GCRA_LUA),
            fallback: LocalLimiter::new(api_per_min, auth_per_min),
            limits: (api_per_min.get(), auth_per_min.get()),
            falling_back: std::sync::atomic::AtomicBool::new(false),
            metrics,
        }
    }

    async fn shared(&self, kind: LimitKind, key: &str) -> Result<Decision, String> {
        let limit = match kind {
            LimitKind::Api => self.limits.0,
            LimitKind::Auth => self.limits.1,
        };
        let interval_ms = (60_000 / u64::from(limit)).max(1);
        let bucket = self.redis.key(&format!("rl:{}:{key}", kind.as_str()));
        let call = self.script.evalsha_with_reload::<Vec<i64>, _, _>(
            &self.redis.client,
            bucket,
            vec![interval_ms as i64, i64::from(limit)],
        );
        let reply = self.redis.call(Duration::from_millis(500), call).await?;
        let [allowed, remaining, reset_ms, retry_ms] = reply[..] else {
            return Err(format!("unexpected reply {reply:?}"));
        };
        let secs = |ms: i64| ceil_secs(Duration::from_millis(ms.max(0) as u64));
        Ok(Decision {
            allowed: allowed == 1,
            limit,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
            reset_s: secs(reset_ms),
            retry_after_s: if allowed == 1 {
                0
            } else {
                secs(retry_ms).max(1)
            },
        })
    }

    /// Logs and flags only the transitions, not every request.
    fn set_falling_back(&self, now: bool, why: Option<&str>) {
        use std::sync::atomic::Ordering;
        if self.falling_back.swap(now, Ordering::SeqCst) == now {
            return;
        }
        self.metrics.rate_limit_local_fallback.set(i64::from(now));
        if now {
            tracing::warn!(
                error = why.unwrap_or_default(),
                "Redis rate limits unavailable: counting per instance until Redis returns"
            );
        } else {
            tracing::info!("Redis rate limits restored");
        }
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn check(&self, kind: LimitKind, key: &str) -> Decision {
        match self.shared(kind, key).await {
            Ok(decision) => {
                self.set_falling_back(false, None);
                decision
            }
            Err(why) => {
                self.set_falling_back(true, Some(&why));
                self.fallback.check(kind, key).await
            }
        }
    }
}

/// `n` per minute with a burst of `n`: a fresh client may spend its whole
/// minute at once, then one request per `60/n` seconds.
fn per_minute(n: NonZeroU32) -> Keyed {
    RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))
        .with_middleware::<StateInformationMiddleware>()
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_the_burst_then_refuses_with_a_retry_time() {
        let limiter = LocalLimiter::new(NonZeroU32::new(3).unwrap(), NonZeroU32::new(1).unwrap());
        let remaining: Vec<u32> = [
            limiter.check(LimitKind::Api, "u").await,
            limiter.check(LimitKind::Api, "u").await,
            limiter.check(LimitKind::Api, "u").await,
        ]
        .iter()
        .map(|d| d.remaining)
        .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check(LimitKind::Api, "u").await;
        assert!(!refused.allowed);
        assert!((1..=20).contains(&refused.retry_after_s), "{refused:?}");
        assert!(limiter.check(LimitKind::Api, "other").await.allowed);
        assert!(limiter.check(LimitKind::Auth, "u").await.allowed);
    }
}
