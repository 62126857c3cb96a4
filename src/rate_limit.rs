//! Request rate limits: GCRA (a leaky bucket without timers) per key.
//!
//! Two limits from the wire contract: `PARLEY_RATE_API_PER_MIN` per user on
//! the API and `PARLEY_RATE_AUTH_PER_MIN` per client IP on `/api/v1/auth/*`.
//! [`LocalLimiter`] keeps the counters in this process with `governor`; a
//! limiter backed by Redis implements the same [`Limiter`] trait so the
//! limits hold across instances.

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
