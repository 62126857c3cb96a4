//! # parley-actors: the concurrency core of parley
//!
//! This crate knows nothing of HTTP, SQL, Redis or JSON: it owns the ids and
//! the room message model every layer shares, the ports the application
//! implements ([`ports::MessageLog`] for storage, [`ports::FrameEncoder`] for
//! the wire format, [`ports::Bus`] for the bridge to other instances), and
//! the actors.
//!
//! ## Actor map
//!
//! | actor | owns | receives from | sends to |
//! |---|---|---|---|
//! | [`supervisor::Engine`] | arbiters, restart policy | application start-up | starts everything below |
//! | [`hub::Hub`] | every local session and its credential | sessions (connect/disconnect), drain, revocations (local and the bus) | sessions' outboxes and controls |
//! | [`room::RoomActor`] (one per room with local subscribers, spread over arbiters) | a room's subscribers, the room's `seq` order (re-sequencing, gap fill), presence across instances | sessions (subscribe, typing), writers and the bus (committed), the bus (typing, presence) | subscribers' outboxes, the bus (typing, presence) |
//! | [`writer::Writer`] (a few per arbiter, rooms hashed to one) | the publish queue, group commit | sessions and REST (publish) | the log, then room actors and the bus |
//! | [`notify::Notifier`] | user → sessions, per-user bus channels | application (after storing), the bus | sessions' outboxes |
//! | [`dependency::DependencyActor`] (`database`, `cache`) | a service's health, retries while it is down, closing its connections | probes (check), the drain (close) | the application's [`ports::Dependency`] |
//!
//! Events from other instances enter through [`bus::BusInbox`], which routes
//! them to the same actors as local ones; rooms trust no arrival order.
//!
//! Fan-out never waits on a client: every connection has a bounded
//! [`outbox::Outbox`]; a full one marks the connection a slow consumer and it
//! is closed ([`outbox::CloseReason::SlowConsumer`]).
//!
//! Every long-lived actor runs under `actix::Supervisor` and comes back after
//! it stops, with the backoff of [`restart::Restarts`].

pub mod bus;
pub mod dependency;
pub mod hub;
pub mod ids;
pub mod model;
pub mod notify;
pub mod outbox;
pub mod ports;
pub mod restart;
pub mod room;
pub mod supervisor;
pub mod writer;
