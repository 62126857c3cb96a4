//! The server API (contract 6.3): a team's backend, holding an API key
//! (`http::api_keys`), posts into rooms and notifies users.
//!
//! - `POST /api/v1/server/rooms/{id}/messages` `{body, client_id, author}`
//!   posts as `author` (scope `rooms:write`), through the same access
//!   checks, writer and notifications as the author's own publish, so
//!   subscribers, webhooks and notifications see an ordinary message.
//!   Idempotent by `(author, client_id)` like every publish. `author` is
//!   required: parley has no system user, and a message always has one.
//! - `POST /api/v1/server/notifications` `{user_id, kind, payload}` stores
//!   a notification and delivers it live (scope `notifications:write`).
//!
//! A key is not a user's token, nor the reverse: [`ServerKey`] accepts
//! only `psk_` keys, and a key never verifies as a JWT.

use crate::auth::api_key;
use crate::domain::api_key::{NotificationKind, NotificationPayload, Scope};
use crate::domain::{ClientId, MessageBody, UserId};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields, Problem};
use crate::http::middleware::authn::bearer;
use crate::http::notifications::NotificationResponse;
use crate::http::room_events::{AckResponse, submit};
use crate::http::rooms::parse_room_id;
use crate::service::{Services, notify, rooms};
use crate::store::NewNotification;
use crate::store::integration::ApiKey;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use parley_actors::model::Action;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/server/rooms/{id}/messages", web::post().to(post_message))
        .route("/server/notifications", web::post().to(notify_user));
}

/// A caller holding a valid, unrevoked API key.
pub struct ServerKey(pub ApiKey);

impl ServerKey {
    /// `403` unless the key holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.scopes.contains(&scope) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "this API key lacks the `{}` scope; create a key with it",
            scope.as_str()
        )))
    }
}

impl FromRequest for ServerKey {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req).map(str::to_owned);
        let services = req.app_data::<web::Data<Services>>().cloned();
        Box::pin(async move {
            let Some(token) = token.filter(|t| api_key::looks_like_key(t)) else {
                return Err(ApiError::unauthorized(
                    "send an API key (psk_...) as `Authorization: Bearer <key>`; user tokens are not accepted here",
                ));
            };
            let services = services
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("services not registered")))?;
            match services
                .store
                .api_key_by_hash(&api_key::hash(&token))
                .await?
            {
                Some(key) => Ok(ServerKey(key)),
                None => Err(ApiError::unauthorized(
                    "unknown or revoked API key; ask an operator for a valid one",
                )),
            }
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerMessage {
    pub body: String,
    /// Idempotency key, at most 64 characters: a repeat (with the same
    /// author) returns the original ack.
    pub client_id: String,
    /// The user the message is posted as; required (see docs/api.md).
    pub author: Option<String>,
}

impl ServerMessage {
    pub fn parse(&self) -> Result<(MessageBody, ClientId, UserId), ApiError> {
        let mut fields = Fields::default();
        let body = fields.check("body", MessageBody::parse(&self.body));
        let client_id = fields.check("client_id", ClientId::parse(&self.client_id));
        let author = match self.author.as_deref() {
            Some(raw) => fields.check("author", UserId::parse(raw)),
            None => fields.check(
                "author",
                Err::<UserId, _>("is required: the id of the user the message is posted as"),
            ),
        };
        fields.finish((body, client_id, author))
    }
}

#[utoipa::path(post, path = "/api/v1/server/rooms/{id}/messages", tag = "server", security(("api_key" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = ServerMessage,
    responses((status = 201, description = "stored (durable), as posted by `author`", body = AckResponse),
              (status = 200, description = "this author's client_id was already stored: the original ack", body = AckResponse),
              (status = 400, description = "a bad field, or `author` missing or not a user", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "no API key, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "the key lacks `rooms:write`, or the author may not post in this room", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn post_message(
    state: web::Data<Services>,
    key: ServerKey,
    path: web::Path<String>,
    body: web::Json<ServerMessage>,
) -> Result<HttpResponse, ApiError> {
    key.require(Scope::RoomsWrite)?;
    let room = parse_room_id(&path)?;
    let (text, client_id, author) = body.parse()?;
    let Some(user) = state.store.user(author).await? else {
        return Err(ApiError::bad_request("author: no user with this id"));
    };
    let access = rooms::readable(&state, room, author).await?;
    let caller = AuthUser {
        id: user.id,
        name: user.username.clone(),
    };
    let action = Action::Message {
        body: text,
        reply_to: None,
    };
    tracing::info!(api_key = %key.0.id, %room, author = %author, "server API publish");
    submit(&state, &caller, &access, client_id, action).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerNotification {
    pub user_id: String,
    /// 1 to 64 characters of `[a-z0-9_.-]`.
    pub kind: String,
    /// A JSON object of at most 4096 bytes.
    pub payload: serde_json::Value,
}

impl ServerNotification {
    pub fn parse(&self) -> Result<(UserId, NotificationKind, NotificationPayload), ApiError> {
        let mut fields = Fields::default();
        let user = fields.check("user_id", UserId::parse(&self.user_id));
        let kind = fields.check("kind", NotificationKind::parse(&self.kind));
        let payload = fields.check("payload", NotificationPayload::parse(&self.payload));
        fields.finish((user, kind, payload))
    }
}

#[utoipa::path(post, path = "/api/v1/server/notifications", tag = "server", security(("api_key" = [])),
    request_body = ServerNotification,
    responses((status = 201, description = "stored and delivered to the user's open sessions", body = NotificationResponse),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "no API key, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "the key lacks `notifications:write`", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such user", body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn notify_user(
    state: web::Data<Services>,
    key: ServerKey,
    body: web::Json<ServerNotification>,
) -> Result<HttpResponse, ApiError> {
    key.require(Scope::NotificationsWrite)?;
    let (user, kind, payload) = body.parse()?;
    if state.store.user(user).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    let new = NewNotification {
        user,
        kind: kind.as_str().to_owned(),
        payload: payload.into_value(),
    };
    let stored = state.store.create_notification(new).await?;
    notify::deliver(&state, std::slice::from_ref(&stored));
    Ok(HttpResponse::Created().json(NotificationResponse::from(&stored)))
}
