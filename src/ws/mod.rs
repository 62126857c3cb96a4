//! The WebSocket edge (`GET /ws`): the wire contract ([`protocol`]), the
//! authenticated upgrade ([`upgrade`]) and the hand-off of its connection
//! ([`handoff`]), one actor per connection ([`session`]), the frames on the
//! socket ([`socket`]) and the socket writer that drains its outbox
//! ([`pump`]).

pub mod caps;
pub mod handoff;
pub mod linger;
pub mod live;
pub mod origin;
pub mod protocol;
pub mod pump;
pub mod quota;
pub mod session;
pub mod socket;
pub mod sockets;
pub mod ticket;
pub mod ticket_endpoint;
pub mod upgrade;

use actix_web::web;
use std::sync::Arc;

/// The WebSocket edge's own parts, beside the shared `service::Services`.
pub struct WsParts {
    /// Single-use tickets (`POST /api/v1/ws-ticket`).
    pub tickets: Arc<ticket::Tickets>,
    /// Concurrent WebSockets per user and per client IP.
    pub conn_caps: Arc<caps::ConnCaps>,
    /// Publishes per user, over all of the user's connections.
    pub publish_quota: Arc<quota::PublishQuota>,
    /// The sockets handed off and not yet let go (shutdown waits for them).
    pub open: Arc<sockets::OpenSockets>,
}

/// `GET /ws`, on the public listener.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade::upgrade));
}

/// The edge's routes under `/api/v1` (authenticated and limited there).
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    ticket_endpoint::configure(cfg);
}
