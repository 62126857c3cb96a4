//! Browser-facing protections: CORS for the configured origins only,
//! `Strict-Transport-Security` behind a trusted TLS proxy, and the fixed
//! security headers on every response.

use crate::config::Settings;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;

/// CORS for the origins in `PARLEY_CORS_ORIGINS` only; none by default.
pub fn cors(settings: &Settings) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers(["authorization", "content-type", "x-request-id"])
        .expose_headers([
            "x-request-id",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "retry-after",
        ])
        .max_age(600);
    for origin in &settings.http.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// `Strict-Transport-Security` when the request came over TLS. parley
/// speaks plain HTTP behind a TLS-terminating proxy, so only a trusted
/// proxy's `X-Forwarded-Proto: https` says so (anyone else could send it);
/// on plain HTTP the header would be meaningless, and browsers ignore it.
pub async fn strict_transport_security(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let trusted = req
        .app_data::<web::Data<Settings>>()
        .is_some_and(|settings| {
            req.peer_addr().is_some_and(|peer| {
                crate::http::client_ip::is_trusted(&settings.http.trusted_proxies, peer.ip())
            })
        });
    // The first value is the proxy nearest the client.
    let over_tls = trusted
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let mut res = next.call(req).await?;
    if over_tls {
        res.headers_mut().insert(
            actix_web::http::header::STRICT_TRANSPORT_SECURITY,
            actix_web::http::header::HeaderValue::from_static(
                "max-age=31536000; includeSubDomains",
            ),
        );
    }
    Ok(res)
}

pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
        ))
}
