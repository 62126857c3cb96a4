//! The restart policy of every supervised actor, in one place.
//!
//! actix's `Supervisor` restarts an actor the moment it stops. An actor that
//! stops because of something outside it (a poisoned state it cannot
//! rebuild, a dependency it cannot reach) would then spin: restart, fail,
//! restart, as fast as the thread allows, with a log line each time.
//! [`Restarts`] spaces restarts out with capped exponential backoff: the
//! first restart is immediate (most failures are one-offs), each further
//! one waits twice as long as the last, up to [`MAX_PAUSE`], with jitter so
//! that actors failing together do not come back in lockstep. An actor that
//! then ran for [`STABLE_AFTER`] counts as healthy again, and its next
//! failure is restarted at once.
//!
//! While an actor waits to restart its mailbox stays open and bounded:
//! messages queue (or are refused when it is full) and are handled once it
//! is back, so nobody holding its address has to know it failed.
//!
//! Use it from `Supervised::restarting`, after resetting the state the
//! failure may have left behind:
//!
//! ```ignore
//! impl Supervised for Hub {
//!     fn restarting(&mut self, ctx: &mut Context<Self>) {
//!         self.sessions.clear();
//!         self.restarts.pause(ctx, "hub");
//!     }
//! }
//! ```

use actix::{Actor, AsyncContext, Context};
use rand::Rng;
use std::time::{Duration, Instant};

/// The pause before the second restart of a failing streak.
pub const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two restarts.
pub const MAX_PAUSE: Duration = Duration::from_secs(10);
/// A run this long ends a failing streak.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// One supervised actor's failing streak. Lives in the actor's struct, which
/// actix keeps across restarts.
#[derive(Debug, Default)]
pub struct Restarts {
    /// Restarts in the current streak.
    streak: u32,
    /// Restarts since the actor was first started.
    total: u64,
    /// When the current run started (the last restart).
    last: Option<Instant>,
}

impl Restarts {
    /// How long to wait before restarting an actor that stopped at `now`,
    /// before jitter: zero for the first restart of a streak, then
    /// [`FIRST_PAUSE`] doubling to [`MAX_PAUSE`].
    pub fn next_pause(&mut self, now: Instant) -> Duration {
        let stable = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= STABLE_AFTER);
        if stable {
            self.streak = 0;
        }
        let pause = match self.streak {
            0 => Duration::ZERO,
            n => FIRST_PAUSE
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_PAUSE),
        };
        self.streak = self.streak.saturating_add(1);
        self.total = self.total.saturating_add(1);
        // The next run starts when the pause ends.
        self.last = Some(now + pause);
        pause
    }

    /// Restarts since the actor was first started.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Holds `ctx` (its mailbox waits, nothing is lost) for the next pause,
    /// jittered to between half and all of it, and logs the restart.
    pub fn pause<A>(&mut self, ctx: &mut Context<A>, actor: &'static str)
    where
        A: Actor<Context = Context<A>>,
    {
        let pause = jitter(self.next_pause(Instant::now()));
        tracing::warn!(
            actor,
            restarts = self.total,
            streak = self.streak,
            pause_ms = pause.as_millis() as u64,
            "actor stopped; restarting"
        );
        if !pause.is_zero() {
            ctx.wait(actix::fut::wrap_future(tokio::time::sleep(pause)));
        }
    }
}

/// Between half and all of `pause`, so actors (or instances) failing
/// together do not retry in lockstep.
pub(crate) fn jitter(pause: Duration) -> Duration {
    if pause.is_zero() {
        return pause;
    }
    pause.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_restarts_at_once_then_backs_off_to_the_cap() {
        let mut restarts = Restarts::default();
        let t0 = Instant::now();
        let pauses: Vec<_> = (0..10)
            .map(|i| restarts.next_pause(t0 + Duration::from_millis(i)))
            .collect();
        assert_eq!(pauses[0], Duration::ZERO);
        assert_eq!(pauses[1], FIRST_PAUSE);
        assert_eq!(pauses[2], FIRST_PAUSE * 2);
        assert_eq!(pauses[3], FIRST_PAUSE * 4);
        assert_eq!(pauses[9], MAX_PAUSE);
        assert_eq!(restarts.total(), 10);
    }

    #[test]
    fn a_long_healthy_run_ends_the_streak() {
        let mut restarts = Restarts::default();
        let t0 = Instant::now();
        restarts.next_pause(t0);
        restarts.next_pause(t0);
        assert_eq!(restarts.next_pause(t0), FIRST_PAUSE * 2);
        let later = t0 + FIRST_PAUSE * 2 + STABLE_AFTER;
        assert_eq!(restarts.next_pause(later), Duration::ZERO);
        assert_eq!(restarts.total(), 4);
    }

    #[test]
    fn jitter_keeps_at_least_half_the_pause() {
        for _ in 0..100 {
            let pause = jitter(Duration::from_secs(1));
            assert!(pause >= Duration::from_millis(500) && pause <= Duration::from_secs(1));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    /// An actor that stops whenever it is told to fail, and counts what it
    /// handled.
    struct Flaky {
        restarts: Restarts,
        handled: u32,
    }

    impl Actor for Flaky {
        type Context = Context<Self>;
    }

    impl actix::Supervised for Flaky {
        fn restarting(&mut self, ctx: &mut Context<Self>) {
            self.restarts.pause(ctx, "flaky");
        }
    }

    #[derive(actix::Message)]
    #[rtype(result = "u32")]
    struct Work {
        fail: bool,
    }

    impl actix::Handler<Work> for Flaky {
        type Result = u32;

        fn handle(&mut self, msg: Work, ctx: &mut Context<Self>) -> u32 {
            self.handled += 1;
            if msg.fail {
                use actix::ActorContext;
                ctx.stop();
            }
            self.handled
        }
    }

    #[actix::test]
    async fn a_failed_actor_comes_back_and_handles_what_queued_meanwhile() {
        let addr = actix::Supervisor::start(|_| Flaky {
            restarts: Restarts::default(),
            handled: 0,
        });
        // Three failures in a row: the first restart is immediate, the
        // second waits 50-100 ms, the third 100-200 ms.
        let started = std::time::Instant::now();
        for _ in 0..3 {
            addr.send(Work { fail: true }).await.unwrap();
        }
        // Sent while it waits to restart: queued, then handled, in order.
        let queued: Vec<_> = (0..5).map(|_| addr.send(Work { fail: false })).collect();
        let mut seen = Vec::new();
        for reply in queued {
            seen.push(reply.await.unwrap());
        }
        assert_eq!(seen, vec![4, 5, 6, 7, 8]);
        // A lower bound only: the backoff must have held the actor back.
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
}
