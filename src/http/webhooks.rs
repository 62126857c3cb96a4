//! Webhook endpoints on the admin listener (contract 6.3,
//! `docs/webhooks.md`): create (the secret is shown then, and only then),
//! list, read, delete, enable again, and each endpoint's delivery log.

use crate::domain::webhook::{EventTypes, WebhookUrl};
use crate::http::error::{ApiError, Fields, Problem};
use crate::http::page::{Page, PageQuery};
use crate::service::Services;
use crate::store::integration::{DeliveryRecord, Endpoint, NewEndpoint};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/webhooks", web::post().to(create))
        .route("/admin/webhooks", web::get().to(list))
        .route("/admin/webhooks/{id}", web::get().to(get_endpoint))
        .route("/admin/webhooks/{id}", web::delete().to(delete))
        .route("/admin/webhooks/{id}/enable", web::post().to(enable))
        .route("/admin/webhooks/{id}/deliveries", web::get().to(deliveries));
}

/// A new endpoint: where to post, and which event types.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// An `http` or `https` URL.
    pub url: String,
    /// At least one of `message.created`, `message.edited`,
    /// `message.deleted`, `member.added`, `member.removed`, `user.online`,
    /// `user.offline`, `notification.created`.
    pub events: Vec<String>,
}

impl NewWebhook {
    pub fn parse(&self) -> Result<(WebhookUrl, EventTypes), ApiError> {
        let mut fields = Fields::default();
        let url = fields.check("url", WebhookUrl::parse(&self.url));
        let events = fields.check("events", EventTypes::parse(&self.events));
        fields.finish((url, events))
    }
}

/// An endpoint as operators see it (the secret only when created).
#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    pub id: uuid::Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// False once disabled after repeated failure (or never: see `enable`).
    pub enabled: bool,
    /// Consecutive failed attempts.
    pub failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&Endpoint> for WebhookResponse {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url.clone(),
            events: e.events.names(),
            enabled: e.enabled,
            failures: e.failures,
            failing_since: e.failing_since,
            disabled_at: e.disabled_at,
            created_at: e.created_at,
        }
    }
}

/// The answer to a create: the endpoint and its signing secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub id: uuid::Uuid,
    /// `whsec_` + base64: verify `webhook-signature` with it. Shown once.
    pub secret: String,
    #[serde(flatten)]
    pub endpoint: WebhookResponse,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookResponse>,
}

/// One attempt of the delivery log.
#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: uuid::Uuid,
    /// The `webhook-id` sent (the same on every attempt of one event).
    pub webhook_id: String,
    pub event_type: String,
    pub attempt: i32,
    /// `delivered` (2xx), `failed` (another status), `error` (no answer).
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u32,
    pub at: DateTime<Utc>,
}

impl From<&DeliveryRecord> for DeliveryResponse {
    fn from(d: &DeliveryRecord) -> Self {
        Self {
            id: d.id,
            webhook_id: crate::domain::webhook::OutboxEvent::webhook_id(d.event_id),
            event_type: d.event_type.clone(),
            attempt: d.attempt,
            outcome: d.outcome.as_str(),
            status: d.status,
            error: d.error.clone(),
            duration_ms: d.duration_ms,
            at: d.at,
        }
    }
}

const ENDPOINT: &str = "webhook endpoint";

/// The endpoint `id`, or the 404 that says it does not exist.
async fn load(state: &Services, id: uuid::Uuid) -> Result<Endpoint, ApiError> {
    state
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| ApiError::not_found(ENDPOINT))
}

fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    let mut fields = Fields::default();
    let id = fields.check(
        "id",
        uuid::Uuid::parse_str(raw).map_err(|_| "must be a UUID"),
    );
    fields.finish(id)
}

#[utoipa::path(post, path = "/admin/webhooks", tag = "admin", request_body = NewWebhook,
    responses((status = 201, description = "created; `secret` is shown this once. Served on the admin listener only.", body = CreatedWebhook),
              (status = 400, description = "a bad URL (not http or https) or an unknown event type", body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    state: web::Data<Services>,
    body: web::Json<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    let (url, events) = body.parse()?;
    let secret = crate::webhooks::signature::new_secret();
    let endpoint = state
        .store
        .create_webhook(NewEndpoint {
            url,
            events,
            secret,
        })
        .await?;
    tracing::info!(endpoint = %endpoint.id, url = %endpoint.url, "webhook endpoint created");
    Ok(HttpResponse::Created().json(CreatedWebhook {
        id: endpoint.id,
        secret: endpoint.secret.clone(),
        endpoint: WebhookResponse::from(&endpoint),
    }))
}

#[utoipa::path(get, path = "/admin/webhooks", tag = "admin",
    responses((status = 200, description = "every endpoint, oldest first (no secrets). Served on the admin listener only.", body = WebhookList),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn list(state: web::Data<Services>) -> Result<HttpResponse, ApiError> {
    let endpoints = state.store.webhooks().await?;
    let items = endpoints.iter().map(WebhookResponse::from).collect();
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

#[utoipa::path(get, path = "/admin/webhooks/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "the endpoint (no secret). Served on the admin listener only.", body = WebhookResponse),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn get_endpoint(
    state: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let endpoint = load(&state, id).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(&endpoint)))
}

#[utoipa::path(delete, path = "/admin/webhooks/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "deleted, with its pending deliveries and log. Served on the admin listener only."),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    state: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    state
        .store
        .delete_webhook(id)
        .await
        .map_err(ApiError::missing(ENDPOINT))?;
    tracing::info!(endpoint = %id, "webhook endpoint deleted");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/webhooks/{id}/enable", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "enabled, failures cleared; pending deliveries resume. Served on the admin listener only.", body = WebhookResponse),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn enable(
    state: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let endpoint = state
        .store
        .enable_webhook(id)
        .await
        .map_err(ApiError::missing(ENDPOINT))?;
    state.webhooks.nudge();
    Ok(HttpResponse::Ok().json(WebhookResponse::from(&endpoint)))
}

#[utoipa::path(get, path = "/admin/webhooks/{id}/deliveries", tag = "admin",
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, description = "the endpoint's delivery attempts, newest first; `cursor` is an attempt id. Served on the admin listener only.", body = Page<DeliveryResponse>),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    state: web::Data<Services>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let (before, limit) =
        query.parse(|c| uuid::Uuid::parse_str(c).map_err(|_| "must be a delivery id"))?;
    load(&state, id).await?;
    let rows = state
        .store
        .webhook_deliveries(id, before, limit.overfetch())
        .await?;
    let items: Vec<DeliveryResponse> = rows.iter().map(DeliveryResponse::from).collect();
    let page = Page::from_overfetch(items, limit.get(), |d: &DeliveryResponse| d.id.to_string());
    Ok(HttpResponse::Ok().json(page))
}
