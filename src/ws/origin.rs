//! Who may open `/ws` from a browser: the `Origin` check that stops another
//! site's page from using a visitor's credentials (cross-site WebSocket
//! hijacking).
//!
//! Allowed by default: the deployment's own origin (the request's scheme
//! and `Host`, as a proxy forwards them), the REST API's
//! `PARLEY_CORS_ORIGINS`, and `PARLEY_WS_ALLOWED_ORIGINS`; `*` in the last
//! allows any. A request without `Origin` is not from a browser and is let
//! through: such clients can send any header they like anyway.

use crate::config::Settings;
use crate::http::error::ApiError;
use actix_web::HttpRequest;

/// `Ok` when the request may upgrade; `403` before the upgrade otherwise.
pub fn check(req: &HttpRequest, settings: &Settings) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get("origin") else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let listed = settings
        .ws
        .allowed_origins
        .iter()
        .chain(&settings.http.cors_origins)
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin));
    if listed || is_same_origin(req, origin) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "origin {origin} may not open a WebSocket here: only this site's own pages and \
         PARLEY_WS_ALLOWED_ORIGINS may"
    )))
}

/// `origin` is `scheme://host` of the request itself: the scheme and host a
/// proxy reports (`X-Forwarded-Proto`, `X-Forwarded-Host`), else the
/// connection's and the `Host` header's. A browser cannot set those
/// headers, and non-browser clients are not what this check stops.
fn is_same_origin(req: &HttpRequest, origin: &str) -> bool {
    // Without a host from the request, `connection_info` falls back to
    // actix's configured default, which is nothing the client said.
    if !req.headers().contains_key(actix_web::http::header::HOST) && req.uri().authority().is_none()
    {
        return false;
    }
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    own.eq_ignore_ascii_case(origin)
}
