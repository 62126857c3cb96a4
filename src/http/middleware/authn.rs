//! Verifies the bearer token once per request. Valid claims go into the
//! request extensions for [`crate::http::auth_user::AuthUser`] and the rate limiter; an
//! invalid token leaves the reason, so a route that needs a user answers 401
//! saying why, while public routes (register, login) ignore it.

use crate::auth::JwtKeys;
use crate::http::auth_user::AuthFailure;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

/// The token of `Authorization: Bearer <token>`, if any.
pub fn bearer(req: &actix_web::HttpRequest) -> Option<&str> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(keys) = req.app_data::<web::Data<JwtKeys>>().cloned()
        && let Some(token) = bearer(req.request())
    {
        match keys.verify(token) {
            Ok(claims) => {
                tracing::Span::current().record("user_id", tracing::field::display(claims.sub));
                req.extensions_mut().insert(claims);
            }
            Err(why) => {
                req.extensions_mut().insert(AuthFailure(why.to_string()));
            }
        }
    }
    next.call(req).await
}
