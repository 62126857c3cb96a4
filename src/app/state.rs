//! Every part of a running parley, held by the composition root. Nothing
//! below `app` sees this struct: each edge gets the parts it needs as
//! `web::Data` (see [`AppState::register`]).

use super::drain::DrainReport;
use crate::auth::JwtKeys;
use crate::auth::login_backoff::LoginBackoff;
use crate::http::health::Probes;
use crate::infra::breaker::Breakers;
use crate::infra::limiter::Limiter;
use crate::observability::lifecycle::Lifecycle;
use crate::service::Services;
use crate::ws::WsParts;
use actix_web::web;
use std::sync::Arc;

/// Shared by all workers of both listeners (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The policies and what they work with: store, cache, engine, bus.
    pub services: Services,
    pub keys: Arc<JwtKeys>,
    /// Per-user and per-IP request limits on `/api/v1`.
    pub limiter: Arc<dyn Limiter>,
    /// Backoff per account identifier after failed logins.
    pub login_backoff: Arc<LoginBackoff>,
    /// Circuit breakers by dependency (`postgres`, `redis`).
    pub breakers: Breakers,
    /// What the probes read: lifecycle flags and Redis.
    pub probes: Arc<Probes>,
    /// Tickets, connection caps and the publish quota of `GET /ws`.
    pub ws: Arc<WsParts>,
    /// Web Push requests and the VAPID key (`GET /push/vapid-public-key`).
    pub push: Arc<crate::infra::webpush::WebPush>,
    /// The drain's report, once it ran (it runs at most once).
    pub drained: Arc<tokio::sync::OnceCell<DrainReport>>,
}

impl AppState {
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.probes.lifecycle
    }

    /// Hands each part to the handlers, middleware and sessions that take
    /// it, as `web::Data<Part>`.
    pub fn register(&self, app: &mut web::ServiceConfig) {
        app.app_data(web::Data::new(self.clone()))
            .app_data(web::Data::new(self.services.clone()))
            .app_data(web::Data::from(self.services.settings.clone()))
            .app_data(web::Data::from(self.services.metrics.clone()))
            .app_data(web::Data::from(self.keys.clone()))
            .app_data(web::Data::from(self.services.revocations.clone()))
            .app_data(web::Data::from(self.limiter.clone()))
            .app_data(web::Data::from(self.login_backoff.clone()))
            .app_data(web::Data::new(self.breakers.clone()))
            .app_data(web::Data::from(self.probes.clone()))
            .app_data(web::Data::from(self.probes.lifecycle.clone()))
            .app_data(web::Data::from(self.ws.clone()))
            .app_data(web::Data::from(self.push.clone()));
    }
}
