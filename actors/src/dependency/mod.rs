//! The database and cache actors: one [`DependencyActor`] per external
//! service the instance holds connections to (PostgreSQL, Redis).
//!
//! Each owns its service's lifecycle after start-up:
//!
//! - **health**: it checks the service every `interval` while it is up, so
//!   an outage is noticed (logged once, reported to metrics) even when no
//!   request touches it; probes ask the actor instead of the service, and
//!   concurrent probes share one check, so a struggling database is never
//!   hammered by its own health checks;
//! - **reconnect with retry**: while the service is down it checks again
//!   after a pause that doubles from 250 ms up to `interval`, with jitter;
//!   a check is what makes the pool open a new connection, so the first one
//!   that succeeds is the reconnect, and it also serves as the circuit
//!   breaker's half-open probe, so the instance recovers with no traffic;
//! - **close**: [`Close`] (the end of the drain) stops the checks and
//!   closes the connections, once.
//!
//! What "check" and "close" mean is the application's: it implements
//! [`crate::ports::Dependency`]. The current [`Health`] is published on a
//! `watch` channel, so readers (readiness, metrics) never queue behind a
//! check.

pub mod actor;
pub mod messages;

pub use actor::{CheckTiming, DependencyActor, DependencyHandle};
pub use messages::{Check, Close, Health, Status};
