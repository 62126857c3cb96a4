//! `/api/v1/posts` and `/api/v1/feed`.

use crate::domain::{Limit, PostBody, PostId};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::{Page, PageQuery};
use crate::service::Services;
use crate::service::notify;
use crate::store::{NewPost, Post};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/posts", web::post().to(create))
        .route("/posts/{id}", web::get().to(get_post))
        .route("/posts/{id}", web::delete().to(delete))
        .route("/feed", web::get().to(feed));
}

#[derive(Serialize, ToSchema)]
pub struct PostResponse {
    pub id: uuid::Uuid,
    pub author: uuid::Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Post> for PostResponse {
    fn from(p: &Post) -> Self {
        Self {
            id: p.id.0,
            author: p.author.0,
            body: p.body.clone(),
            created_at: p.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreatePost {
    /// 1 to 5,000 characters.
    pub body: String,
}

/// Parses a post id from the path.
pub fn parse_post_id(raw: &str) -> Result<PostId, ApiError> {
    let mut fields = Fields::default();
    let id = fields.check("id", PostId::parse(raw));
    fields.finish(id)
}

impl CreatePost {
    /// The post's text.
    pub fn parse(&self) -> Result<PostBody, ApiError> {
        let mut fields = Fields::default();
        let text = fields.check("body", PostBody::parse(&self.body));
        fields.finish(text)
    }
}

#[utoipa::path(post, path = "/api/v1/posts", tag = "posts", security(("bearer" = [])),
    request_body = CreatePost,
    responses((status = 201, body = PostResponse), (status = 400, body = crate::http::error::Problem)))]
pub async fn create(
    state: web::Data<Services>,
    caller: AuthUser,
    body: web::Json<CreatePost>,
) -> Result<HttpResponse, ApiError> {
    let text = body.parse()?;
    let post = state
        .store
        .create_post(NewPost {
            id: PostId::new(),
            author: caller.id,
            body: text,
        })
        .await?;
    state.metrics.posts_created.inc();
    // One read of the followers serves both their feeds and their
    // notifications.
    let followers = match state.store.followers(caller.id).await {
        Ok(followers) => followers,
        Err(error) => {
            // The post is stored; cached feeds expire on their own (5 min).
            tracing::warn!(%error, "could not load followers to notify and refresh feeds");
            Vec::new()
        }
    };
    let mut feeds = followers.clone();
    feeds.push(caller.id);
    state.cache.feeds_changed(&feeds).await;
    notify::post_created(&state, &caller.name, &post, followers).await;
    Ok(HttpResponse::Created().json(PostResponse::from(&post)))
}

#[utoipa::path(get, path = "/api/v1/posts/{id}", tag = "posts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PostResponse), (status = 404, body = crate::http::error::Problem)))]
pub async fn get_post(
    state: web::Data<Services>,
    _caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_post_id(&path)?;
    let post = state
        .cache
        .post(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("post"))?;
    Ok(HttpResponse::Ok().json(PostResponse::from(&post)))
}

#[utoipa::path(delete, path = "/api/v1/posts/{id}", tag = "posts", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, description = "not the author", body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem)))]
pub async fn delete(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_post_id(&path)?;
    let post = state
        .store
        .post(id)
        .await?
        .ok_or_else(|| ApiError::not_found("post"))?;
    if post.author != caller.id {
        return Err(ApiError::forbidden("only the author may delete a post"));
    }
    state
        .store
        .delete_post(id)
        .await
        .map_err(ApiError::missing("post"))?;
    state.cache.post_deleted(id).await;
    state
        .cache
        .feeds_of_author_changed(&state.store, caller.id)
        .await;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/feed", tag = "posts", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "posts by the caller and everyone they follow, newest first", body = Page<PostResponse>)))]
pub async fn feed(
    state: web::Data<Services>,
    caller: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = query.parse(PostId::parse)?;
    // The first page at the default size is what clients load most.
    let posts = if cursor.is_none() && limit.get() == Limit::DEFAULT {
        state
            .cache
            .feed_head(&state.store, caller.id, limit.overfetch())
            .await?
    } else {
        state
            .store
            .feed(caller.id, cursor, limit.overfetch())
            .await?
    };
    let rows = posts.iter().map(PostResponse::from).collect();
    Ok(HttpResponse::Ok().json(Page::from_overfetch(
        rows,
        limit.get(),
        |p: &PostResponse| p.id.to_string(),
    )))
}
