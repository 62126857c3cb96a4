//! A connection's frame budget: GCRA at `PARLEY_WS_MSGS_PER_S`, and the
//! line between a client that bursts (its extra frames are refused) and one
//! that keeps exceeding its rate (closed with 1008).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Refusals are counted over this window; more than [`FrameBudget::abusive`]
/// of them within it closes the connection.
const ABUSE_WINDOW: Duration = Duration::from_secs(5);

/// What to do with one client frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Drop this frame; the client may send again in `retry_after_ms`.
    Refused {
        retry_after_ms: u64,
    },
    /// The client keeps exceeding its rate: close the connection.
    Abusive,
}

pub struct FrameBudget {
    limiter: DefaultDirectRateLimiter,
    /// Refusals counted since `window_start`.
    refused: u32,
    window_start: Instant,
    /// Refusals within [`ABUSE_WINDOW`] beyond which a client is abusive:
    /// two seconds' worth of its rate.
    abusive: u32,
}

impl FrameBudget {
    pub fn per_second(rate: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            refused: 0,
            window_start: Instant::now(),
            abusive: rate.get().saturating_mul(2),
        }
    }

    /// Spends one frame of the budget, or says why not.
    pub fn admit(&mut self) -> Admission {
        let Err(not_until) = self.limiter.check() else {
            return Admission::Admitted;
        };
        if self.window_start.elapsed() > ABUSE_WINDOW {
            self.window_start = Instant::now();
            self.refused = 0;
        }
        self.refused += 1;
        if self.refused > self.abusive {
            return Admission::Abusive;
        }
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Admission::Refused {
            retry_after_ms: wait.as_millis().max(1) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Admission, FrameBudget};
    use std::num::NonZeroU32;

    #[test]
    fn a_burst_over_the_rate_is_refused_then_a_flood_is_abusive() {
        let mut budget = FrameBudget::per_second(NonZeroU32::new(5).unwrap());
        let outcomes: Vec<Admission> = (0..20).map(|_| budget.admit()).collect();
        assert!(outcomes[..5].iter().all(|a| *a == Admission::Admitted));
        // The next ten are refused with a wait, the eleventh refusal closes.
        assert!(
            outcomes[5..15].iter().all(
                |a| matches!(a, Admission::Refused { retry_after_ms } if *retry_after_ms >= 1)
            )
        );
        assert_eq!(outcomes[15], Admission::Abusive);
    }
}
