//! What each listener serves, composed from the edges: the probes, `GET
//! /ws`, `/openapi.json`, the JWKS, `/api/v1` (REST and the WebSocket
//! ticket) and, last, the browser client's files; on the admin listener the
//! probes, the admin routes and the drain.

use super::{drain, openapi};
use crate::http::{self, health};
use crate::ws;
use actix_web::web::{self, ServiceConfig};

/// Routes of the public listener.
pub fn public(cfg: &mut ServiceConfig) {
    health::configure(cfg, health::Exposure::Public);
    ws::configure(cfg);
    cfg.route("/openapi.json", web::get().to(openapi::serve))
        .route("/.well-known/jwks.json", web::get().to(http::auth::jwks));
    http::configure_api(cfg, ws::configure_api);
    http::sdk::configure(cfg);
    // Last: the browser client only answers paths naming one of its files.
    http::static_files::configure(cfg);
}

/// Routes of the admin listener.
pub fn admin(cfg: &mut ServiceConfig) {
    health::configure(cfg, health::Exposure::Admin);
    http::admin::configure(cfg);
    drain::configure(cfg);
}
