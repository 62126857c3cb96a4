//! Circuit breakers: stop calling a dependency that keeps failing, so
//! requests fail fast with 503 instead of piling up behind its timeouts.
//!
//! Each breaker is named after its dependency (`postgres`, `redis`):
//! - **closed**: calls pass; failures within `window` are counted, and
//!   `failures` of them open the breaker;
//! - **open**: calls are refused at once with [`BreakerOpen`] (which says
//!   when to retry) until `recovery` has passed;
//! - **half-open**: exactly one call goes through as a probe; its success
//!   closes the breaker, its failure opens it again for another `recovery`.
//!
//! Written here rather than taken from `failsafe` (the maintained crate
//! that fits best) because parley needs what that crate does not expose:
//! the state and the time left open (for `GET /admin/circuit-breakers` and
//! `Retry-After`), a manual reset, and a half-open state that lets a single
//! probe through instead of every caller at once.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// When a breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Failures within `window` that open the breaker.
    pub failures: u32,
    pub window: Duration,
    /// How long an open breaker refuses calls before letting a probe through.
    pub recovery: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            failures: 5,
            window: Duration::from_secs(10),
            recovery: Duration::from_secs(30),
        }
    }
}

/// A call refused because the breaker is open.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the {name} circuit breaker is open; retry in {} ms", retry_after.as_millis())]
pub struct BreakerOpen {
    pub name: String,
    /// Until the next probe may go through (at least 1 s when reported as
    /// `Retry-After`, which counts whole seconds).
    pub retry_after: Duration,
}

/// The three states, numbered as `parley_circuit_breaker_state` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

/// What `GET /admin/circuit-breakers` shows of one breaker.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub name: String,
    /// `closed`, `half_open` or `open`.
    #[schema(value_type = String)]
    pub state: State,
    /// Failures counted in the current window (closed state).
    pub recent_failures: usize,
    /// How many times the breaker opened since start-up.
    pub trips: u64,
    /// Milliseconds until a probe may go through (open state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The last failure seen, for the operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub failure_threshold: u32,
    pub window_ms: u64,
    pub recovery_ms: u64,
}

enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

struct Inner {
    phase: Phase,
    failures: VecDeque<Instant>,
    trips: u64,
    last_error: Option<String>,
}

/// One named breaker. Shared (`Arc`) by every caller of the dependency.
pub struct Breaker {
    name: String,
    thresholds: Thresholds,
    inner: Mutex<Inner>,
    state_gauge: Option<IntGauge>,
    trips_counter: Option<IntCounter>,
}

impl Breaker {
    pub fn new(name: &str, thresholds: Thresholds) -> Self {
        Self {
            name: name.to_owned(),
            thresholds,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                failures: VecDeque::new(),
                trips: 0,
                last_error: None,
            }),
            state_gauge: None,
            trips_counter: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the state half
        // written (every update is a few assignments), so poisoning is moot.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks to make one call. `Err` while open (or while the half-open
    /// probe is out); otherwise a permit to report the outcome on.
    pub fn acquire(&self) -> Result<Permit<'_>, BreakerOpen> {
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.phase {
            Phase::Closed => Ok(Permit::new(self, false)),
            Phase::Open { until } if now < until => Err(self.refusal(until - now)),
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                inner.phase = Phase::HalfOpen { probing: true };
                self.publish(State::HalfOpen);
                Ok(Permit::new(self, true))
            }
            // The probe's answer is near: ask again shortly.
            Phase::HalfOpen { probing: true } => Err(self.refusal(Duration::from_secs(1))),
        }
    }

    fn refusal(&self, retry_after: Duration) -> BreakerOpen {
        BreakerOpen {
            name: self.name.clone(),
            retry_after,
        }
    }

    fn on_success(&self, probe: bool) {
        let mut inner = self.lock();
        if probe || !matches!(inner.phase, Phase::Closed) {
            if !matches!(inner.phase, Phase::Open { .. }) {
                tracing::info!(breaker = %self.name, "circuit breaker closed");
                inner.phase = Phase::Closed;
                inner.failures.clear();
                self.publish(State::Closed);
            }
        } else {
            // A success does not forgive earlier failures: they still count
            // within their window, so a dependency failing half the time
            // opens the breaker too.
        }
    }

    fn on_failure(&self, probe: bool, error: String) {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.last_error = Some(error);
        let open = if probe {
            true
        } else if matches!(inner.phase, Phase::Closed) {
            inner.failures.push_back(now);
            while inner
                .failures
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.thresholds.window)
            {
                inner.failures.pop_front();
            }
            inner.failures.len() >= self.thresholds.failures as usize
        } else {
            // Already open (or probing): a late failure of a call let
            // through before it opened changes nothing.
            false
        };
        if open {
            inner.phase = Phase::Open {
                until: now + self.thresholds.recovery,
            };
            inner.failures.clear();
            inner.trips += 1;
            if let Some(trips) = &self.trips_counter {
                trips.inc();
            }
            self.publish(State::Open);
            tracing::warn!(breaker = %self.name, error = inner.last_error.as_deref().unwrap_or(""), recovery_ms = self.thresholds.recovery.as_millis() as u64, "circuit breaker opened");
        }
    }

    /// A probe that never reported (its caller gave up): let the next call probe.
    fn on_abandoned_probe(&self) {
        let mut inner = self.lock();
        if matches!(inner.phase, Phase::HalfOpen { probing: true }) {
            inner.phase = Phase::HalfOpen { probing: false };
        }
    }

    /// Closes the breaker by hand (`POST /admin/circuit-breakers/{name}/reset`).
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.phase = Phase::Closed;
        inner.failures.clear();
        self.publish(State::Closed);
        tracing::info!(breaker = %self.name, "circuit breaker reset by an operator");
    }

    pub fn state(&self) -> State {
        state_of(&self.lock().phase)
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let retry_after_ms = match inner.phase {
            Phase::Open { until } => {
                Some(until.saturating_duration_since(Instant::now()).as_millis() as u64)
            }
            _ => None,
        };
        Snapshot {
            name: self.name.clone(),
            state: state_of(&inner.phase),
            recent_failures: inner.failures.len(),
            trips: inner.trips,
            retry_after_ms,
            last_error: inner.last_error.clone(),
            failure_threshold: self.thresholds.failures,
            window_ms: self.thresholds.window.as_millis() as u64,
            recovery_ms: self.thresholds.recovery.as_millis() as u64,
        }
    }

    fn publish(&self, state: State) {
        if let Some(gauge) = &self.state_gauge {
            gauge.set(state as i64);
        }
    }
}

fn state_of(phase: &Phase) -> State {
    match phase {
        Phase::Closed => State::Closed,
        Phase::Open { .. } => State::Open,
        Phase::HalfOpen { .. } => State::HalfOpen,
    }
}

/// Leave to make one call; report how it went with [`Permit::success`] or
/// [`Permit::failure`]. Dropping it unreported (the caller was cancelled)
/// counts as neither.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl<'a> Permit<'a> {
    fn new(breaker: &'a Breaker, probe: bool) -> Self {
        Self {
            breaker,
            probe,
            reported: false,
        }
    }

    pub fn success(mut self) {
        self.reported = true;
        self.breaker.on_success(self.probe);
    }

    pub fn failure(mut self, error: impl std::fmt::Display) {
        self.reported = true;
        self.breaker.on_failure(self.probe, format!("{error:#}"));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.on_abandoned_probe();
        }
    }
}

/// Every breaker of the process, by name. Cheap to clone.
#[derive(Clone)]
pub struct Breakers {
    thresholds: Thresholds,
    by_name: Arc<Mutex<BTreeMap<String, Arc<Breaker>>>>,
    metrics: Option<(IntGaugeVec, IntCounterVec)>,
}

impl Breakers {
    /// Breakers that report `parley_circuit_breaker_state{breaker}` and
    /// `parley_circuit_breaker_trips_total{breaker}` through `metrics`.
    pub fn new(thresholds: Thresholds, metrics: Option<(IntGaugeVec, IntCounterVec)>) -> Self {
        Self {
            thresholds,
            by_name: Arc::default(),
            metrics,
        }
    }

    /// The breaker called `name`, created closed on first use.
    pub fn get_or_register(&self, name: &str) -> Arc<Breaker> {
        let mut by_name = self
            .by_name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_name
            .entry(name.to_owned())
            .or_insert_with(|| {
                let mut breaker = Breaker::new(name, self.thresholds);
                if let Some((state, trips)) = &self.metrics {
                    let gauge = state.with_label_values(&[name]);
                    gauge.set(State::Closed as i64);
                    breaker.state_gauge = Some(gauge);
                    breaker.trips_counter = Some(trips.with_label_values(&[name]));
                }
                Arc::new(breaker)
            })
            .clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Breaker>> {
        self.by_name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every breaker, by name.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        let all: Vec<Arc<Breaker>> = self
            .by_name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.iter().map(|b| b.snapshot()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn quick() -> Thresholds {
        Thresholds {
            failures: 3,
            window: Duration::from_secs(10),
            recovery: Duration::from_millis(50),
        }
    }

    #[test]
    fn opens_after_the_threshold_then_probes_once_and_closes() {
        let b = Breaker::new("db", quick());
        for _ in 0..2 {
            b.acquire().unwrap().failure("down");
        }
        assert_eq!(b.state(), State::Closed);
        b.acquire().unwrap().failure("down");
        assert_eq!(b.state(), State::Open);
        let refused = b.acquire().err().expect("open refuses");
        assert!(refused.retry_after <= Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(60));
        let probe = b.acquire().expect("one probe after recovery");
        assert_eq!(b.state(), State::HalfOpen);
        assert!(b.acquire().is_err(), "a single probe at a time");
        probe.success();
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.snapshot().trips, 1);
    }

    #[test]
    fn a_failed_probe_reopens_and_an_abandoned_one_frees_the_slot() {
        let b = Breaker::new("db", quick());
        for _ in 0..3 {
            b.acquire().unwrap().failure("down");
        }
        std::thread::sleep(Duration::from_millis(60));
        drop(b.acquire().unwrap());
        assert_eq!(b.state(), State::HalfOpen);
        b.acquire().unwrap().failure("still down");
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.snapshot().trips, 2);
        b.reset();
        assert_eq!(b.state(), State::Closed);
        assert!(b.acquire().is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let b = Breaker::new(
            "db",
            Thresholds {
                failures: 2,
                window: Duration::from_millis(20),
                recovery: Duration::from_secs(1),
            },
        );
        b.acquire().unwrap().failure("down");
        std::thread::sleep(Duration::from_millis(30));
        b.acquire().unwrap().failure("down");
        assert_eq!(b.state(), State::Closed);
    }
}
