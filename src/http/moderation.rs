//! Room bans and mutes (contract 1.1, 6.2): `POST /rooms/{id}/bans`,
//! `DELETE /rooms/{id}/bans/{user_id}`, `GET /rooms/{id}/bans`, and the same
//! for `mutes`. Who may and what follows is `service::moderation`.

use crate::domain::{Reason, RestrictionKind, Until, UserId};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::{Page, PageQuery};
use crate::http::rooms::parse_room_id;
use crate::http::users::parse_user_id;
use crate::service::Services;
use crate::service::moderation;
use crate::store::{NewRestriction, Restriction};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms/{id}/bans", web::post().to(ban))
        .route("/rooms/{id}/bans", web::get().to(bans))
        .route("/rooms/{id}/bans/{user_id}", web::delete().to(unban))
        .route("/rooms/{id}/mutes", web::post().to(mute))
        .route("/rooms/{id}/mutes", web::get().to(mutes))
        .route("/rooms/{id}/mutes/{user_id}", web::delete().to(unmute));
}

/// `POST /rooms/{id}/bans` and `/mutes`. `reason` is kept for bans only
/// (a mute's is accepted and stored too).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictRequest {
    pub user_id: String,
    /// Up to 1,000 characters, shown to the room's managers.
    pub reason: Option<String>,
    /// RFC 3339, in the future, at most 3,650 days ahead; absent: until
    /// lifted.
    pub until: Option<String>,
}

/// A ban or mute in force.
#[derive(Serialize, ToSchema)]
pub struct RestrictionResponse {
    pub room: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub reason: String,
    /// Null: until lifted.
    pub until: Option<DateTime<Utc>>,
    pub created_by: uuid::Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<&Restriction> for RestrictionResponse {
    fn from(r: &Restriction) -> Self {
        Self {
            room: r.room.0,
            user_id: r.user.0,
            reason: r.reason.clone(),
            until: r.until,
            created_by: r.created_by.0,
            created_at: r.created_at,
        }
    }
}

impl RestrictRequest {
    pub fn parse(&self) -> Result<(UserId, Reason, Option<Until>), ApiError> {
        let mut fields = Fields::default();
        let user = fields.check("user_id", UserId::parse(&self.user_id));
        let reason = fields.check(
            "reason",
            Reason::parse(self.reason.as_deref().unwrap_or("")),
        );
        let until = match &self.until {
            None => Some(None),
            Some(text) => fields
                .check("until", Until::parse_text(text, Utc::now()))
                .map(Some),
        };
        fields.finish((user, reason, until))
    }
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/bans", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = RestrictRequest,
    responses((status = 201, description = "banned (replacing an earlier ban): removed from the room, refused joining, being added, subscribing and publishing; their open sessions on every instance get `unsubscribed` with `reason: \"banned\"`", body = RestrictionResponse),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "the caller is not the room's owner or an admin, the target is the owner, or an admin banning an admin", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such room or user", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 409, description = "banning yourself", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 503, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn ban(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<RestrictRequest>,
) -> Result<HttpResponse, ApiError> {
    impose(state, caller, path, body, RestrictionKind::Ban).await
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/mutes", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = RestrictRequest,
    responses((status = 201, description = "muted (replacing an earlier mute): they still read, but every publish but deleting their own messages is refused with `forbidden` until lifted or `until`", body = RestrictionResponse),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 403, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 409, description = "muting yourself", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 503, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn mute(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<RestrictRequest>,
) -> Result<HttpResponse, ApiError> {
    impose(state, caller, path, body, RestrictionKind::Mute).await
}

async fn impose(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<RestrictRequest>,
    kind: RestrictionKind,
) -> Result<HttpResponse, ApiError> {
    let room = parse_room_id(&path)?;
    let (user, reason, until) = body.parse()?;
    let new = NewRestriction {
        room,
        user,
        kind,
        reason,
        until,
        by: caller.id,
    };
    let stored = moderation::restrict(&state, new).await?;
    Ok(HttpResponse::Created().json(RestrictionResponse::from(&stored)))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/bans/{user_id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "the ban is lifted: they may join or be added again (they are not added back)"),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 403, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such room, or no ban in force", body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn unban(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    lift(state, caller, path, RestrictionKind::Ban).await
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/mutes/{user_id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "the mute is lifted: they may publish again"),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 403, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such room, or no mute in force", body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn unmute(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    lift(state, caller, path, RestrictionKind::Mute).await
}

async fn lift(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String)>,
    kind: RestrictionKind,
) -> Result<HttpResponse, ApiError> {
    let (room_raw, user_raw) = path.into_inner();
    let room = parse_room_id(&room_raw)?;
    let user = parse_user_id(&user_raw)?;
    moderation::lift(&state, caller.id, room, user, kind).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}/bans", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, description = "bans in force, by user id; `cursor` is a user id", body = Page<RestrictionResponse>),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 403, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn bans(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    list(state, caller, path, query, RestrictionKind::Ban).await
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}/mutes", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, description = "mutes in force, by user id; `cursor` is a user id", body = Page<RestrictionResponse>),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 403, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn mutes(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    list(state, caller, path, query, RestrictionKind::Mute).await
}

async fn list(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    kind: RestrictionKind,
) -> Result<HttpResponse, ApiError> {
    let room = parse_room_id(&path)?;
    let (after, limit) = query.parse(UserId::parse)?;
    let rows = moderation::list(&state, caller.id, room, kind, after, limit.overfetch()).await?;
    let items: Vec<RestrictionResponse> = rows.iter().map(RestrictionResponse::from).collect();
    let page = Page::from_overfetch(items, limit.get(), |r: &RestrictionResponse| {
        r.user_id.to_string()
    });
    Ok(HttpResponse::Ok().json(page))
}
