//! Messages of [`super::DependencyActor`], and the [`Health`] it reports.

use actix::Message;
use std::time::{Duration, Instant};

/// Where a dependency stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not checked yet.
    Starting,
    /// The last check succeeded.
    Up,
    /// The last check failed; it is being retried.
    Down,
    /// Closed at the end of the drain; no longer checked.
    Closed,
}

/// The outcome of the latest check.
#[derive(Clone, Debug)]
pub struct Health {
    pub status: Status,
    /// Why the last check failed (`Down`), in words for an operator.
    pub error: Option<String>,
    /// How long the last check took.
    pub latency: Duration,
    /// When the last check finished; `None` before the first.
    pub checked_at: Option<Instant>,
    /// Since when `status` holds.
    pub since: Instant,
}

impl Health {
    pub fn starting() -> Self {
        Self {
            status: Status::Starting,
            error: None,
            latency: Duration::ZERO,
            checked_at: None,
            since: Instant::now(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.status == Status::Up
    }

    /// Whether the last check finished less than `max_age` ago.
    pub fn fresher_than(&self, max_age: Duration) -> bool {
        self.checked_at.is_some_and(|at| at.elapsed() < max_age)
    }
}

/// The current health, checked anew unless the last check is younger than
/// `max_age`. Concurrent askers share one check.
#[derive(Message)]
#[rtype(result = "Health")]
pub struct Check {
    pub max_age: Duration,
}

/// Stops checking and closes the dependency's connections. Answered once
/// they are closed; later `Close`s answer at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;
