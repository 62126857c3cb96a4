//! Applies the rate limits to `/api/v1`: `/api/v1/auth/*` per client IP,
//! everything else per user (per IP for anonymous calls). Every limited
//! response carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`; a refused
//! one is `429` with `Retry-After`.

use crate::auth::Claims;
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::infra::limiter::Limiter;
use crate::infra::limiter::{Decision, LimitKind};
use crate::service::Services;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let (Some(state), Some(limiter)) = (
        req.app_data::<web::Data<Services>>().cloned(),
        req.app_data::<web::Data<dyn Limiter>>().cloned(),
    ) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let ip = client_ip(req.request(), &state.settings.http.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into());
    let (kind, key) = if is_auth_route(&req) {
        (LimitKind::Auth, format!("ip:{ip}"))
    } else if let Some(claims) = req.extensions().get::<Claims>() {
        (LimitKind::Api, format!("user:{}", claims.sub))
    } else {
        (LimitKind::Api, format!("ip:{ip}"))
    };
    let decision = limiter.check(kind, &key).await;
    if !decision.allowed {
        state
            .metrics
            .rate_limit_rejections
            .with_label_values(&[kind.as_str()])
            .inc();
        tracing::info!(
            limit = kind.as_str(),
            retry_after_s = decision.retry_after_s,
            "rate limited"
        );
        let mut response = ApiError::rate_limited(decision.retry_after_s).error_response();
        set_headers(response.headers_mut(), &decision);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    set_headers(res.headers_mut(), &decision);
    Ok(res.map_into_left_body())
}

/// Whether the request goes to `/api/v1/auth/*`, judged on the path the
/// router matches: percent-decoded (`/api/v1/%61uth/login` routes to
/// login, so it must count against login's limit). Paths the router does
/// not match (`//auth`, `/AUTH`, a trailing slash) reach no handler but the
/// 404, so they need no auth bucket.
fn is_auth_route(req: &ServiceRequest) -> bool {
    req.match_info()
        .as_str()
        .strip_prefix("/api/v1/auth/")
        .is_some()
}

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    let pairs = [
        ("x-ratelimit-limit", u64::from(d.limit)),
        ("x-ratelimit-remaining", u64::from(d.remaining)),
        ("x-ratelimit-reset", d.reset_s),
    ];
    for (name, value) in pairs {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}
