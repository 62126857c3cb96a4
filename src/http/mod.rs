//! The HTTP surface: one module per REST resource, the health probes and the
//! OpenAPI document. [`configure_public`] and [`configure_admin`] mount them.
//!
//! Request flow on `/api/v1`: [`request_id`] (outermost) → [`authn`] (verifies
//! the bearer token once, leaves the claims in the request) → [`limits`]
//! (per-user or per-IP GCRA, `X-RateLimit-*` headers) → the handler.

pub mod admin;
pub mod auth;
pub mod authn;
pub mod client_ip;
pub mod health;
pub mod limits;
pub mod notifications;
pub mod openapi;
pub mod page;
pub mod posts;
pub mod problem;
pub mod request_id;
pub mod rooms;
pub mod state;
pub mod static_files;
pub mod users;
pub mod ws_ticket;

use crate::error::ApiError;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
pub use state::AppState;

/// Routes of the public listener.
pub fn configure_public(cfg: &mut ServiceConfig) {
    health::configure(cfg, health::Exposure::Public);
    cfg.route("/ws", web::get().to(crate::ws::upgrade::upgrade))
        .route("/openapi.json", web::get().to(openapi::serve))
        .route("/.well-known/jwks.json", web::get().to(auth::jwks))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(limits::middleware))
                .wrap(from_fn(authn::middleware))
                .configure(auth::configure)
                .configure(users::configure)
                .configure(posts::configure)
                .configure(rooms::configure)
                .configure(notifications::configure)
                .configure(ws_ticket::configure)
                .default_service(web::to(not_found)),
        )
        // Last: the browser client only answers paths naming one of its files.
        .configure(static_files::configure);
}

/// Routes of the admin listener.
pub fn configure_admin(cfg: &mut ServiceConfig) {
    health::configure(cfg, health::Exposure::Admin);
    admin::configure(cfg);
}

/// Unknown routes answer problem+json too.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("route"))
}

/// Body, path and query extractors answer with problems that say what was
/// wrong (`bad_request`; `too_large` and `unsupported_media_type` for the
/// body), instead of actix's plain-text defaults.
pub fn extractor_config(
    max_body_bytes: usize,
) -> (web::JsonConfig, web::PathConfig, web::QueryConfig) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(move |err, _req| {
            use actix_web::error::JsonPayloadError as E;
            let api = match &err {
                E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::new(
                    crate::error::Code::TooLarge,
                    format!("the request body exceeds {max_body_bytes} bytes"),
                ),
                E::ContentType => ApiError::new(
                    crate::error::Code::UnsupportedMediaType,
                    "send the body as JSON with `Content-Type: application/json`",
                ),
                E::Deserialize(e) => ApiError::bad_request(format!("invalid JSON body: {e}")),
                other => ApiError::bad_request(format!("invalid JSON body: {other}")),
            };
            api.into()
        });
    let path = web::PathConfig::default()
        .error_handler(|err, _req| ApiError::bad_request(format!("invalid path: {err}")).into());
    let query = web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::bad_request(format!("invalid query: {err}")).into());
    (json, path, query)
}
