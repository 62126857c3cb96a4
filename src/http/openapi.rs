//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' annotations so it cannot drift from the routes (a test checks
//! that every mounted route is listed).

use crate::http::{auth, health, notifications, page::Page, posts, rooms, users, ws_ticket};
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "parley", description = "Realtime chat and notification server. The WebSocket protocol (`GET /ws`) is described in docs/api.md."),
    paths(
        auth::register, auth::login, auth::refresh_tokens, auth::logout, auth::jwks, ws_ticket::issue,
        users::me, users::update_me, users::get_user, users::follow, users::unfollow,
        posts::create, posts::get_post, posts::delete, posts::feed,
        rooms::create, rooms::list, rooms::get_room, rooms::add_member, rooms::remove_member,
        rooms::history, rooms::post_message,
        notifications::list, notifications::unread_count, notifications::read_one, notifications::read_all,
        health::live, health::ready, health::startup, health::version_info, health::db_stats, health::redis_stats,
        crate::http::admin::start_drain,
    ),
    components(schemas(
        crate::error::Problem, crate::error::FieldError,
        Page<posts::PostResponse>, Page<rooms::RoomResponse>, Page<rooms::MessageResponse>,
        Page<notifications::NotificationResponse>,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, token refresh and JWKS"),
        (name = "users"), (name = "posts"), (name = "rooms"), (name = "notifications"),
        (name = "health", description = "Probes; also served on the admin listener"),
        (name = "admin", description = "Served on the admin listener only (PARLEY_ADMIN_ADDR)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
