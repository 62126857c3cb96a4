//! Verifies the bearer token once per request. Valid claims go into the
//! request extensions for [`crate::http::auth_user::AuthUser`] and the rate limiter; an
//! invalid token leaves the reason, so a route that needs a user answers 401
//! saying why, while public routes (register, login) ignore it. A token of
//! a revoked login ([`Revocations`]) is refused like an invalid one.

use crate::auth::{JwtKeys, Revocations};
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

/// Why a token of a revoked login is refused.
pub const SIGNED_OUT: &str =
    "this login was signed out (log out everywhere, or its refresh token was reused); log in again";

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(keys) = req.app_data::<web::Data<JwtKeys>>().cloned()
        && let Some(token) = bearer(req.request())
    {
        let revocations = req.app_data::<web::Data<Revocations>>();
        match keys.verify(token) {
            Ok(claims) if revocations.is_some_and(|r| r.refuses(&claims)) => {
                req.extensions_mut()
                    .insert(AuthFailure(SIGNED_OUT.to_owned()));
            }
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
