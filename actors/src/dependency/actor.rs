//! See [`super`].

use super::messages::{Check, Close, Health, Status};
use crate::ports::Dependency;
use crate::restart::{Restarts, jitter};
use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, ResponseFuture,
    SpawnHandle, Supervised, WrapFuture,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// The first pause before checking a down dependency again.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// How often a dependency is checked, and how long one check may take.
#[derive(Clone, Copy, Debug)]
pub struct CheckTiming {
    /// Between two checks while it is up; the longest pause while it is down.
    pub interval: Duration,
    /// A check not finished by then has failed.
    pub timeout: Duration,
}

impl CheckTiming {
    /// The first pause after a failed check: never longer than the interval,
    /// which bounds every pause.
    fn first_retry(&self) -> Duration {
        FIRST_RETRY.min(self.interval)
    }
}

pub struct DependencyActor {
    /// `database` or `cache`: names the actor in logs.
    name: &'static str,
    dependency: Arc<dyn Dependency>,
    timing: CheckTiming,
    health: watch::Sender<Health>,
    /// Whether a check is running; askers meanwhile wait in `waiters`.
    checking: bool,
    waiters: Vec<oneshot::Sender<Health>>,
    /// The next scheduled check.
    next: Option<SpawnHandle>,
    /// The pause before the next check while down; doubles per failure.
    retry: Duration,
    closed: bool,
    restarts: Restarts,
}

impl DependencyActor {
    fn new(
        name: &'static str,
        dependency: Arc<dyn Dependency>,
        timing: CheckTiming,
        health: watch::Sender<Health>,
    ) -> Self {
        Self {
            name,
            dependency,
            timing,
            health,
            checking: false,
            waiters: Vec::new(),
            next: None,
            retry: timing.first_retry(),
            closed: false,
            restarts: Restarts::default(),
        }
    }

    fn current(&self) -> Health {
        self.health.borrow().clone()
    }

    /// Starts a check unless one is running (or the dependency is closed).
    fn start_check(&mut self, ctx: &mut Context<Self>) {
        if self.checking || self.closed {
            return;
        }
        self.checking = true;
        if let Some(next) = self.next.take() {
            ctx.cancel_future(next);
        }
        let dependency = self.dependency.clone();
        let timeout = self.timing.timeout;
        let check = async move {
            let started = Instant::now();
            let outcome = match tokio::time::timeout(timeout, dependency.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            (outcome, started.elapsed())
        };
        // A task of its own: a check that panics marks the dependency down
        // and restarts this actor, instead of taking its arbiter thread.
        ctx.spawn(
            actix::spawn(check)
                .into_actor(self)
                .map(|joined, act, ctx| match joined {
                    Ok((outcome, latency)) => act.finish_check(outcome, latency, ctx),
                    Err(panicked) => {
                        let error = format!("the check panicked: {panicked}");
                        act.finish_check(Err(error), Duration::ZERO, ctx);
                        ctx.stop();
                    }
                }),
        );
    }

    fn finish_check(
        &mut self,
        outcome: Result<(), String>,
        latency: Duration,
        ctx: &mut Context<Self>,
    ) {
        self.checking = false;
        if self.closed {
            return;
        }
        let previous = self.current();
        let now = Instant::now();
        let status = if outcome.is_ok() {
            Status::Up
        } else {
            Status::Down
        };
        let since = if status == previous.status {
            previous.since
        } else {
            now
        };
        self.log_change(&previous, status, outcome.as_ref().err(), now);
        let health = Health {
            status,
            error: outcome.err(),
            latency,
            checked_at: Some(now),
            since,
        };
        self.health.send_replace(health.clone());
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(health.clone());
        }
        let pause = if health.is_up() {
            self.retry = self.timing.first_retry();
            self.timing.interval
        } else {
            let pause = jitter(self.retry);
            self.retry = (self.retry * 2).min(self.timing.interval);
            pause
        };
        self.next = Some(ctx.run_later(pause, |act, ctx| act.start_check(ctx)));
    }

    /// One log line per change of state, never one per check.
    fn log_change(
        &self,
        previous: &Health,
        now_status: Status,
        error: Option<&String>,
        now: Instant,
    ) {
        let name = self.name;
        match (previous.status, now_status) {
            (Status::Starting, Status::Up) => tracing::info!(dependency = name, "dependency up"),
            (Status::Down, Status::Up) => tracing::info!(
                dependency = name,
                down_ms = now.saturating_duration_since(previous.since).as_millis() as u64,
                "dependency back up"
            ),
            (Status::Starting | Status::Up, Status::Down) => tracing::warn!(
                dependency = name,
                error = error.map_or("", String::as_str),
                "dependency down; retrying with backoff"
            ),
            _ => {}
        }
    }
}

impl Actor for DependencyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.start_check(ctx);
    }
}

/// A restarted actor forgets the check in flight (its askers get the last
/// known health) and checks again once its pause is over.
impl Supervised for DependencyActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.checking = false;
        self.next = None;
        let health = self.current();
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(health.clone());
        }
        self.restarts.pause(ctx, self.name);
    }
}

impl Handler<Check> for DependencyActor {
    type Result = ResponseFuture<Health>;

    fn handle(&mut self, msg: Check, ctx: &mut Self::Context) -> Self::Result {
        let current = self.current();
        if self.closed || (!self.checking && current.fresher_than(msg.max_age)) {
            return Box::pin(async move { current });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        self.start_check(ctx);
        Box::pin(async move { rx.await.unwrap_or(current) })
    }
}

impl Handler<Close> for DependencyActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Close, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Box::pin(async {});
        }
        self.closed = true;
        if let Some(next) = self.next.take() {
            ctx.cancel_future(next);
        }
        let mut health = self.current();
        health.status = Status::Closed;
        health.since = Instant::now();
        self.health.send_replace(health.clone());
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(health.clone());
        }
        tracing::info!(dependency = self.name, "dependency closed");
        let dependency = self.dependency.clone();
        Box::pin(async move { dependency.close().await })
    }
}

/// What the application holds of one dependency actor.
#[derive(Clone)]
pub struct DependencyHandle {
    pub name: &'static str,
    addr: Addr<DependencyActor>,
    health: watch::Receiver<Health>,
}

impl DependencyHandle {
    /// Starts the actor under `actix::Supervisor` (restarted with backoff
    /// if it stops); its first check starts at once.
    pub fn start(name: &'static str, dependency: Arc<dyn Dependency>, timing: CheckTiming) -> Self {
        let (tx, health) = watch::channel(Health::starting());
        let addr =
            actix::Supervisor::start(move |_| DependencyActor::new(name, dependency, timing, tx));
        Self { name, addr, health }
    }

    /// The latest health, without waiting.
    pub fn current(&self) -> Health {
        self.health.borrow().clone()
    }

    /// Every change of health, as it happens.
    pub fn subscribe(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// The health no older than `max_age` (a check runs when it is older).
    pub async fn check(&self, max_age: Duration) -> Health {
        match self.addr.send(Check { max_age }).await {
            Ok(health) => health,
            Err(_) => self.current(),
        }
    }

    /// Stops checking and closes the connections.
    pub async fn close(&self) {
        let _ = self.addr.send(Close).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A dependency that is up while `up` says so, and counts calls.
    #[derive(Default)]
    struct Fake {
        up: AtomicBool,
        checks: AtomicU32,
        closes: AtomicU32,
        /// Makes each check take this long (ms).
        slow_ms: AtomicU32,
        /// Makes each check panic, as a bug in a client library would.
        panics: AtomicBool,
    }

    #[async_trait]
    impl Dependency for Fake {
        async fn check(&self) -> Result<(), String> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            assert!(!self.panics.load(Ordering::SeqCst), "a bug in the check");
            let slow = self.slow_ms.load(Ordering::SeqCst);
            if slow > 0 {
                tokio::time::sleep(Duration::from_millis(u64::from(slow))).await;
            }
            if self.up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("connection refused".into())
            }
        }

        async fn close(&self) {
            self.closes.fetch_add(1, Ordering::SeqCst);
        }
    }

    const TIMING: CheckTiming = CheckTiming {
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };

    /// An actor whose dependency is up, after its first check.
    async fn started_up(name: &'static str) -> (Arc<Fake>, DependencyHandle) {
        let fake = Arc::new(Fake::default());
        fake.up.store(true, Ordering::SeqCst);
        let handle = DependencyHandle::start(name, fake.clone(), TIMING);
        until(&mut handle.subscribe(), Health::is_up).await;
        (fake, handle)
    }

    /// Waits for the next health that satisfies `pred`.
    async fn until(rx: &mut watch::Receiver<Health>, pred: impl Fn(&Health) -> bool) -> Health {
        let wait = rx.wait_for(|h| pred(h));
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("health did not change in time")
            .expect("the actor went away")
            .clone()
    }

    #[actix::test]
    async fn a_down_dependency_is_retried_until_it_is_back_then_reported_up() {
        let fake = Arc::new(Fake::default());
        let handle = DependencyHandle::start("database", fake.clone(), TIMING);
        let mut rx = handle.subscribe();
        let down = until(&mut rx, |h| h.status == Status::Down).await;
        assert_eq!(down.error.as_deref(), Some("connection refused"));
        // Retried on its own, with no one asking (interval is 60 s).
        let retries = fake.checks.load(Ordering::SeqCst);
        fake.up.store(true, Ordering::SeqCst);
        let up = until(&mut rx, Health::is_up).await;
        assert!(fake.checks.load(Ordering::SeqCst) > retries);
        assert!(up.error.is_none());
        assert!(up.since >= down.since);
    }

    #[actix::test]
    async fn concurrent_askers_share_one_check_and_fresh_health_costs_none() {
        let (fake, handle) = started_up("cache").await;
        assert_eq!(fake.checks.load(Ordering::SeqCst), 1);

        // Fresh enough: answered from the last check.
        let health = handle.check(Duration::from_secs(30)).await;
        assert!(health.is_up());
        assert_eq!(fake.checks.load(Ordering::SeqCst), 1);

        // Twenty probes wanting a fresh answer while a slow check runs.
        fake.slow_ms.store(200, Ordering::SeqCst);
        let asks: Vec<_> = (0..20)
            .map(|_| {
                let handle = handle.clone();
                actix::spawn(async move { handle.check(Duration::ZERO).await })
            })
            .collect();
        for ask in asks {
            assert!(ask.await.unwrap().is_up());
        }
        assert_eq!(fake.checks.load(Ordering::SeqCst), 2);
    }

    #[actix::test]
    async fn a_panicking_check_reports_down_and_the_actor_comes_back() {
        let fake = Arc::new(Fake::default());
        fake.up.store(true, Ordering::SeqCst);
        fake.panics.store(true, Ordering::SeqCst);
        let handle = DependencyHandle::start("cache", fake.clone(), TIMING);
        let mut rx = handle.subscribe();
        let down = until(&mut rx, |h| h.status == Status::Down).await;
        assert!(down.error.unwrap_or_default().contains("panicked"));
        fake.panics.store(false, Ordering::SeqCst);
        // The restarted actor checks again on its own (the interval is 60 s).
        until(&mut rx, Health::is_up).await;
    }

    #[actix::test]
    async fn a_closed_dependency_is_not_checked_again_even_with_a_check_in_flight() {
        let fast = CheckTiming {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        };
        let fake = Arc::new(Fake::default());
        fake.up.store(true, Ordering::SeqCst);
        let handle = DependencyHandle::start("database", fake.clone(), fast);
        until(&mut handle.subscribe(), Health::is_up).await;
        fake.slow_ms.store(100, Ordering::SeqCst);
        let in_flight = {
            let handle = handle.clone();
            actix::spawn(async move { handle.check(Duration::ZERO).await })
        };
        handle.close().await;
        in_flight.await.unwrap();
        let checks = fake.checks.load(Ordering::SeqCst);
        // Nothing to await for an absence: ten intervals pass unchecked.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fake.checks.load(Ordering::SeqCst), checks);
        assert_eq!(handle.current().status, Status::Closed);
    }

    #[actix::test]
    async fn close_closes_once_and_stops_checking() {
        let (fake, handle) = started_up("database").await;
        handle.close().await;
        handle.close().await;
        assert_eq!(fake.closes.load(Ordering::SeqCst), 1);
        assert_eq!(handle.current().status, Status::Closed);
        let checks = fake.checks.load(Ordering::SeqCst);
        let after = handle.check(Duration::ZERO).await;
        assert_eq!(after.status, Status::Closed);
        assert_eq!(fake.checks.load(Ordering::SeqCst), checks);
    }
}
