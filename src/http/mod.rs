//! The HTTP edge, and the only module that knows actix-web's request side:
//! one module per REST resource, the health probes, the admin routes,
//! [`error`] (problem+json) and [`middleware`]. `app::routes` mounts them.
//!
//! Request flow on `/api/v1`: `request_id` (outermost) → `authn` (verifies
//! the bearer token once, leaves the claims in the request) → `limits`
//! (per-user or per-IP GCRA, `X-RateLimit-*` headers) → the handler.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod auth_user;
pub mod blocks;
pub mod client_ip;
pub mod error;
pub mod health;
pub mod middleware;
pub mod moderation;
pub mod notifications;
pub mod page;
pub mod posts;
pub mod push;
pub mod reports;
pub mod room_events;
pub mod room_retention;
pub mod rooms;
pub mod sdk;
pub mod server_api;
pub mod static_files;
pub mod users;
pub mod webhooks;

use crate::http::error::ApiError;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};

/// The REST resources under `/api/v1`, behind authentication and limits;
/// `edge` adds the routes of another edge (the WebSocket ticket) there.
pub fn configure_api(cfg: &mut ServiceConfig, edge: fn(&mut ServiceConfig)) {
    cfg.service(
        web::scope("/api/v1")
            .wrap(from_fn(middleware::limits::middleware))
            .wrap(from_fn(middleware::authn::middleware))
            .configure(auth::configure)
            .configure(users::configure)
            .configure(blocks::configure)
            .configure(moderation::configure)
            .configure(reports::configure)
            .configure(posts::configure)
            .configure(rooms::configure)
            .configure(notifications::configure)
            .configure(server_api::configure)
            .configure(push::configure)
            .configure(edge)
            .default_service(web::to(not_found)),
    );
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
                    crate::domain::Code::TooLarge,
                    format!("the request body exceeds {max_body_bytes} bytes"),
                ),
                E::ContentType => ApiError::new(
                    crate::domain::Code::UnsupportedMediaType,
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
