//! # parley-actors: the concurrency core of parley
//!
//! This crate knows nothing of HTTP, SQL, Redis or JSON: it owns the ids and
//! the room message model every layer shares, the ports the application
//! implements ([`ports::MessageLog`] for storage, [`ports::FrameEncoder`] for
//! the wire format), and the actors.
//!
//! ## Actor map
//!
//! | actor | owns | receives from | sends to |
//! |---|---|---|---|
//! | [`supervisor::Engine`] | arbiters, restart policy | application start-up | starts everything below |
//! | [`hub::Hub`] | every local session | sessions (connect/disconnect), drain | sessions' outboxes |
//! | [`room::RoomActor`] (one per room, spread over arbiters) | a room's subscribers, per-session `seq` order, presence | sessions (subscribe, typing), writers (committed) | subscribers' outboxes |
//! | [`writer::Writer`] (one per arbiter, rooms hashed to one) | the publish queue, group commit | sessions and REST (publish) | the log, then room actors |
//! | [`notify::Notifier`] | user → sessions | application (after storing) | sessions' outboxes |
//!
//! Fan-out never waits on a client: every connection has a bounded
//! [`outbox::Outbox`]; a full one marks the connection a slow consumer and it
//! is closed with 1013.

pub mod hub;
pub mod ids;
pub mod model;
pub mod notify;
pub mod outbox;
pub mod ports;
pub mod room;
pub mod supervisor;
pub mod writer;
