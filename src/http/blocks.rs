//! Blocks (contract 1.1, 6.2): `POST` / `DELETE /users/{id}/block`, `GET
//! /users/me/blocks`. What a block does is `service::blocks`.

use crate::http::auth_user::AuthUser;
use crate::http::error::ApiError;
use crate::http::page::{Page, PageQuery};
use crate::http::users::{UserBody, parse_user_id};
use crate::service::Services;
use crate::service::blocks::{self, BlockError};
use crate::store::Block;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/me/blocks", web::get().to(list))
        .route("/users/{id}/block", web::post().to(block))
        .route("/users/{id}/block", web::delete().to(unblock));
}

/// A blocked user and since when.
#[derive(Serialize, ToSchema)]
pub struct BlockResponse {
    pub user: UserBody,
    pub blocked_at: DateTime<Utc>,
}

impl From<&Block> for BlockResponse {
    fn from(b: &Block) -> Self {
        Self {
            user: UserBody::public(&b.user),
            blocked_at: b.since,
        }
    }
}

impl From<BlockError> for ApiError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Yourself => ApiError::bad_request("you cannot block yourself"),
            BlockError::UnknownUser => ApiError::not_found("user"),
            BlockError::Store(e) => e.into(),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/users/{id}/block", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "blocked (idempotent): they can no longer follow you, write to you in a direct room or notify you, and any follow between you two ended"),
              (status = 400, description = "blocking yourself, or not a user id", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn block(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_user_id(&path)?;
    blocks::block(&state, caller.id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/block", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "not blocked (idempotent); follows ended by the block stay ended"),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn unblock(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_user_id(&path)?;
    blocks::unblock(&state, caller.id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/users/me/blocks", tag = "users", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "whom the caller blocked, by user id; `cursor` is a user id", body = Page<BlockResponse>),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn list(
    state: web::Data<Services>,
    caller: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = query.parse(crate::domain::UserId::parse)?;
    let rows = blocks::list(&state, caller.id, after, limit.overfetch()).await?;
    let items: Vec<BlockResponse> = rows.iter().map(BlockResponse::from).collect();
    let page = Page::from_overfetch(items, limit.get(), |b: &BlockResponse| {
        b.user.id.to_string()
    });
    Ok(HttpResponse::Ok().json(page))
}
