//! `/api/v1/notifications`.

use crate::domain::NotificationId;
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::{Page, PageQuery};
use crate::service::Services;
use crate::store::Notification;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/notifications", web::get().to(list))
        .route("/notifications/unread-count", web::get().to(unread_count))
        .route("/notifications/read-all", web::post().to(read_all))
        .route("/notifications/{id}/read", web::post().to(read_one));
}

/// The REST form of the WebSocket `notification` frame.
#[derive(Serialize, ToSchema)]
pub struct NotificationResponse {
    pub id: uuid::Uuid,
    /// `new_post`, `follow`, `mention` or `direct_message`.
    pub kind: String,
    pub payload: serde_json::Value,
    pub read: bool,
    pub ts: DateTime<Utc>,
}

impl From<&Notification> for NotificationResponse {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id.0,
            kind: n.kind.clone(),
            payload: n.payload.clone(),
            read: n.read,
            ts: n.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CountResponse {
    pub count: i64,
}

/// The filter of `GET /notifications`, beside its [`PageQuery`].
#[derive(Deserialize, IntoParams)]
pub struct UnreadQuery {
    /// `true`: unread only.
    pub unread: Option<bool>,
}

/// Parses a notification id from the path.
pub fn parse_notification_id(raw: &str) -> Result<NotificationId, ApiError> {
    let mut fields = Fields::default();
    let id = fields.check("id", NotificationId::parse(raw));
    fields.finish(id)
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(UnreadQuery, PageQuery),
    responses((status = 200, description = "newest first", body = Page<NotificationResponse>)))]
pub async fn list(
    state: web::Data<Services>,
    caller: AuthUser,
    filter: web::Query<UnreadQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = page.parse(NotificationId::parse)?;
    let unread = filter.unread.unwrap_or(false);
    let rows = state
        .store
        .notifications(caller.id, unread, cursor, limit.overfetch())
        .await?;
    let rows = rows.iter().map(NotificationResponse::from).collect();
    Ok(HttpResponse::Ok().json(Page::from_overfetch(
        rows,
        limit.get(),
        |n: &NotificationResponse| n.id.to_string(),
    )))
}

#[utoipa::path(get, path = "/api/v1/notifications/unread-count", tag = "notifications",
    security(("bearer" = [])), responses((status = 200, body = CountResponse)))]
pub async fn unread_count(
    state: web::Data<Services>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let count = state.store.unread_count(caller.id).await?;
    Ok(HttpResponse::Ok().json(CountResponse { count }))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::http::error::Problem)))]
pub async fn read_one(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_notification_id(&path)?;
    state
        .store
        .mark_read(caller.id, id)
        .await
        .map_err(ApiError::missing("notification"))?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/notifications/read-all", tag = "notifications",
    security(("bearer" = [])), responses((status = 200, description = "how many were unread", body = CountResponse)))]
pub async fn read_all(
    state: web::Data<Services>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let count = state.store.mark_all_read(caller.id).await?;
    Ok(HttpResponse::Ok().json(CountResponse { count }))
}
