//! The authenticated caller, as handlers receive it.
//!
//! The bearer token is verified once per request by
//! [`crate::http::middleware::authn::middleware`], which leaves the [`Claims`] in the
//! request extensions (the rate limiter keys on them too); this extractor
//! only reads them back, or answers 401.

use crate::auth::jwt::Claims;
use crate::domain::UserId;
use crate::http::error::ApiError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload};
use std::future::{Ready, ready};

/// Why the request carries no valid identity, left by the middleware.
#[derive(Clone, Debug)]
pub struct AuthFailure(pub String);

/// A verified caller.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: UserId,
    pub name: String,
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        if let Some(claims) = extensions.get::<Claims>() {
            return ready(Ok(AuthUser {
                id: claims.sub,
                name: claims.name.clone(),
            }));
        }
        let why = extensions
            .get::<AuthFailure>()
            .map(|f| f.0.clone())
            .unwrap_or_else(|| "send an access token as `Authorization: Bearer <token>`".into());
        ready(Err(ApiError::unauthorized(why)))
    }
}
