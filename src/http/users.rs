//! `/api/v1/users`: profiles and follows.

use crate::domain::{Bio, DisplayName, Invalid, Limit, SearchPrefix, UserId};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::Page;
use crate::service::Services;
use crate::service::notify;
use crate::store::{ProfilePatch, User};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(search))
        .route("/users/me", web::get().to(me))
        .route("/users/me", web::patch().to(update_me))
        .route("/users/{id}", web::get().to(get_user))
        .route("/users/{id}/follow", web::post().to(follow))
        .route("/users/{id}/follow", web::delete().to(unfollow));
}

/// A user profile. `email` only appears on the caller's own profile.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub id: uuid::Uuid,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl UserBody {
    pub fn public(u: &User) -> Self {
        Self {
            id: u.id.0,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            bio: u.bio.clone(),
            created_at: u.created_at,
            email: None,
        }
    }

    pub fn private(u: &User) -> Self {
        Self {
            email: Some(u.email.clone()),
            ..Self::public(u)
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// Up to 64 characters.
    pub display_name: Option<String>,
    /// Up to 500 characters.
    pub bio: Option<String>,
}

impl ProfileUpdate {
    /// The fields to change; absent ones stay as they are.
    pub fn parse(self) -> Result<ProfilePatch, ApiError> {
        let mut fields = Fields::default();
        let display_name = self
            .display_name
            .as_deref()
            .map(|d| fields.check("display_name", DisplayName::parse(d)));
        let bio = self
            .bio
            .as_deref()
            .map(|b| fields.check("bio", Bio::parse(b).map(Bio::into_string)));
        fields.finish(Some(()))?;
        Ok(ProfilePatch {
            display_name: display_name.flatten(),
            bio: bio.flatten(),
        })
    }
}

/// Parses a user id from the path.
pub fn parse_user_id(raw: &str) -> Result<UserId, ApiError> {
    let mut fields = Fields::default();
    let id = fields.check("id", UserId::parse(raw));
    fields.finish(id)
}

#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserBody),
              (status = 404, description = "the account no longer exists", body = crate::http::error::Problem)))]
pub async fn me(state: web::Data<Services>, caller: AuthUser) -> Result<HttpResponse, ApiError> {
    let user = state
        .cache
        .user(&state.store, caller.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(HttpResponse::Ok().json(UserBody::private(&user)))
}

#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses((status = 200, body = UserBody),
              (status = 404, description = "the account no longer exists", body = crate::http::error::Problem)))]
pub async fn update_me(
    state: web::Data<Services>,
    caller: AuthUser,
    body: web::Json<ProfileUpdate>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner().parse()?;
    let user = state.store.update_profile(caller.id, patch).await?;
    state.cache.user_changed(caller.id).await;
    Ok(HttpResponse::Ok().json(UserBody::private(&user)))
}

#[derive(Deserialize, IntoParams)]
pub struct SearchQuery {
    /// The start of a username or display name: 2 to 64 characters, any case.
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

impl SearchQuery {
    /// The prefix, the cursor (a lower-cased username) and the page size.
    pub fn parse(&self) -> Result<(SearchPrefix, Option<String>, Limit), ApiError> {
        let mut fields = Fields::default();
        let q = fields.check(
            "q",
            self.q
                .as_deref()
                .ok_or(Invalid::LengthOrControl { min: 2, max: 64 })
                .and_then(SearchPrefix::parse),
        );
        let cursor = self.cursor.as_deref().and_then(|c| {
            let ok = c.chars().count() <= 64 && !c.chars().any(char::is_control);
            let checked = if ok {
                Ok(c.to_owned())
            } else {
                Err(Invalid::TooLongOrControl { max: 64 })
            };
            fields.check("cursor", checked)
        });
        let limit = fields.check("limit", Limit::parse(self.limit));
        let (q, limit) = fields.finish((q, limit))?;
        Ok((q, cursor, limit))
    }
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(SearchQuery),
    responses((status = 200, description = "users whose username or display name starts with `q`, ignoring case, by username; public profiles (no e-mail)", body = Page<UserBody>),
              (status = 400, body = crate::http::error::Problem)))]
pub async fn search(
    state: web::Data<Services>,
    _caller: AuthUser,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let (prefix, cursor, limit) = query.parse()?;
    let found = state
        .store
        .search_users(&prefix, cursor.as_deref(), limit.overfetch())
        .await?;
    let rows = found.iter().map(UserBody::public).collect();
    Ok(
        HttpResponse::Ok().json(Page::from_overfetch(rows, limit.get(), |u: &UserBody| {
            u.username.to_lowercase()
        })),
    )
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = UserBody), (status = 404, body = crate::http::error::Problem)))]
pub async fn get_user(
    state: web::Data<Services>,
    _caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_user_id(&path)?;
    let user = state
        .cache
        .user(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(HttpResponse::Ok().json(UserBody::public(&user)))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/follow", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "now following (idempotent)"),
              (status = 400, description = "following yourself", body = crate::http::error::Problem),
              (status = 403, description = "this user blocked you", body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem)))]
pub async fn follow(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_user_id(&path)?;
    if id == caller.id {
        return Err(ApiError::bad_request("you cannot follow yourself"));
    }
    if !crate::service::blocks::may_follow(&state, caller.id, id).await? {
        return Err(ApiError::forbidden("this user blocked you"));
    }
    let new = state
        .store
        .follow(caller.id, id)
        .await
        .map_err(ApiError::missing("user"))?;
    // Following twice is idempotent, and so is the notification.
    if new {
        state.cache.feeds_changed(&[caller.id]).await;
        notify::followed(&state, caller.id, &caller.name, id).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/follow", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "no longer following (idempotent)")))]
pub async fn unfollow(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_user_id(&path)?;
    state.store.unfollow(caller.id, id).await?;
    state.cache.feeds_changed(&[caller.id]).await;
    Ok(HttpResponse::NoContent().finish())
}
