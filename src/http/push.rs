//! Web Push (contract 1.1, 6.3): `GET /push/vapid-public-key`, `POST
//! /push/subscriptions`, `DELETE /push/subscriptions/{id}`. What is pushed
//! when is `service::push`.

use crate::domain::PushSubscriptionId;
use crate::domain::push::{PushEndpoint, PushKeyField, PushKeys};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::infra::webpush::WebPush;
use crate::service::Services;
use crate::service::push::{self, SubscribeError};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/push/vapid-public-key", web::get().to(vapid_public_key))
        .route("/push/subscriptions", web::post().to(subscribe))
        .route("/push/subscriptions/{id}", web::delete().to(unsubscribe));
}

/// The VAPID public key browsers subscribe with.
#[derive(Serialize, ToSchema)]
pub struct VapidKeyResponse {
    /// base64url (no padding) of the uncompressed P-256 point: pass it as
    /// `applicationServerKey` to `PushManager.subscribe`.
    pub key: String,
}

/// `PushSubscription.toJSON()` as a browser gives it (`expirationTime` may
/// come along and is ignored).
#[derive(Deserialize, ToSchema)]
pub struct SubscriptionRequest {
    /// The push service URL: `https` on a public address.
    pub endpoint: String,
    pub keys: SubscriptionKeys,
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<f64>)]
    pub expiration_time: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
pub struct SubscriptionKeys {
    /// base64url of the browser's P-256 public key (65 bytes, uncompressed).
    pub p256dh: String,
    /// base64url of the browser's 16-byte auth secret.
    pub auth: String,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionResponse {
    pub id: uuid::Uuid,
}

impl SubscriptionRequest {
    /// The endpoint (against `PARLEY_PUSH_ALLOW_HOSTS`) and keys; every bad
    /// field named at once.
    pub fn parse(
        &self,
        allow: &crate::domain::push::AllowHosts,
    ) -> Result<(PushEndpoint, PushKeys), ApiError> {
        let mut fields = Fields::default();
        let endpoint = fields.check("endpoint", PushEndpoint::parse(&self.endpoint, allow));
        let keys = match PushKeys::parse(&self.keys.p256dh, &self.keys.auth) {
            Ok(keys) => Some(keys),
            Err((field, why)) => {
                let name = match field {
                    PushKeyField::P256dh => "keys.p256dh",
                    PushKeyField::Auth => "keys.auth",
                };
                fields.check(name, Err::<PushKeys, _>(why))
            }
        };
        fields.finish((endpoint, keys))
    }
}

impl From<SubscribeError> for ApiError {
    fn from(e: SubscribeError) -> Self {
        match e {
            SubscribeError::Address(why) => {
                ApiError::invalid(vec![crate::http::error::FieldError {
                    field: "endpoint".into(),
                    message: why.to_string(),
                }])
            }
            SubscribeError::Store(e) => e.into(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/push/vapid-public-key", tag = "push",
    responses((status = 200, description = "the VAPID public key (RFC 8292) to subscribe with", body = VapidKeyResponse)))]
pub async fn vapid_public_key(web_push: web::Data<WebPush>) -> HttpResponse {
    HttpResponse::Ok().json(VapidKeyResponse {
        key: web_push.vapid().public_key().to_owned(),
    })
}

#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push", security(("bearer" = [])),
    request_body = SubscriptionRequest,
    responses((status = 201, description = "subscribed: notifications the caller has not seen in the app are pushed here. The same endpoint posted again is the same subscription (same id, keys replaced).", body = SubscriptionResponse),
              (status = 400, description = "an endpoint that is not https on a public address (its host is resolved), or keys of the wrong form", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 503, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn subscribe(
    state: web::Data<Services>,
    caller: AuthUser,
    body: web::Json<SubscriptionRequest>,
) -> Result<HttpResponse, ApiError> {
    let (endpoint, keys) = body.parse(&push::allow_hosts(&state.settings.push))?;
    let id = push::subscribe(&state, caller.id, endpoint, keys).await?;
    Ok(HttpResponse::Created().json(SubscriptionResponse { id: id.0 }))
}

#[utoipa::path(delete, path = "/api/v1/push/subscriptions/{id}", tag = "push", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "unsubscribed; its pending pushes are dropped"),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no subscription of the caller's with that id", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 503, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn unsubscribe(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut fields = Fields::default();
    let id = fields.check("id", PushSubscriptionId::parse(&path));
    let id = fields.finish(id)?;
    push::unsubscribe(&state, caller.id, id)
        .await
        .map_err(ApiError::missing("push subscription"))?;
    Ok(HttpResponse::NoContent().finish())
}
