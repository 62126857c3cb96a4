//! The policies REST and WebSocket both call, each in one place (the model
//! is Revolt's one permissions crate under both its REST and its gateway):
//!
//! - [`rooms`]: who may read, write and manage a room; membership changes;
//! - [`publish`]: a room event (message, edit, delete, reaction) through
//!   its room's writer to a durable answer, counted, mapped to one client
//!   error, and notified;
//! - [`read_state`]: read cursors, and who hears that one moved;
//! - [`notify`]: which events notify whom, stored first, then pushed live;
//! - [`moderation`]: room bans and mutes; [`blocks`]: blocks between
//!   users; [`reports`]: reports for operators;
//! - [`revocation`]: revoked logins, refused and closed on every instance.
//! - [`retention`]: who sets how long a room keeps its events, and the purge.
//! - [`push`]: Web Push subscriptions, and the sender that pushes what
//!   was not seen in the app.
//!
//! Both edges hold a [`Services`] and nothing wider: the HTTP handlers as
//! `web::Data<Services>`, each WebSocket session by value.

pub mod blocks;
pub mod moderation;
pub mod notify;
pub mod publish;
pub mod push;
pub mod read_state;
pub mod reports;
pub mod retention;
pub mod revocation;
pub mod rooms;

use crate::config::Settings;
use crate::observability::metrics::Metrics;
use crate::store::SharedStore;
use crate::store::cache::Cache;
use parley_actors::ports::Bus;
use parley_actors::supervisor::Engine;
use std::sync::Arc;

/// What the policies work with (cheap to clone: every field is shared).
#[derive(Clone)]
pub struct Services {
    pub store: SharedStore,
    /// Cached profiles, posts and feed heads.
    pub cache: Arc<Cache>,
    /// The actor system: rooms, writers, hub, notifier.
    pub engine: Engine,
    /// Events for other instances (a no-op without Redis).
    pub bus: Arc<dyn Bus>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<Settings>,
    pub instance_id: Arc<str>,
    /// Pushes stored notifications to live sessions (`ws::live`).
    pub live: Arc<dyn notify::LiveDelivery>,
    /// The revoked logins this instance refuses (see [`revocation`]).
    pub revocations: Arc<crate::auth::Revocations>,
    /// Events for webhook endpoints, through the outbox.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
}
