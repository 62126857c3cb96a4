//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' annotations so it cannot drift from the routes (a test checks
//! that every mounted route is listed).
//!
//! Handlers declare their successes and the problems only they produce
//! (`403`, `409`, ...). The problems that come from a route's shape, the
//! extractors and the middleware (bad body, path or query, no token, body
//! too large or not JSON, rate limit, database down or draining) are added
//! to every operation by [`SharedProblems`], in this one place, so a new
//! route documents them without saying so; `scripts/test/check-schemathesis.sh`
//! checks the result against the running server.

use crate::http::middleware::problem::PROBLEM_JSON;
use crate::http::{
    api_keys, auth, blocks, health, moderation, notifications, page::Page, posts, push, reports,
    room_events, room_retention, rooms, sdk, server_api, users, webhooks,
};
use crate::ws::ticket_endpoint as ws_ticket;
use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Object, Ref, RefOr, Response, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "parley", description = "Realtime chat and notification server. The WebSocket protocol (`GET /ws`) is described in docs/api.md."),
    paths(
        auth::register, auth::login, auth::refresh_tokens, auth::logout, auth::jwks, ws_ticket::issue,
        users::search, users::me, users::update_me, users::get_user, users::follow, users::unfollow,
        blocks::block, blocks::unblock, blocks::list,
        posts::create, posts::get_post, posts::delete, posts::feed,
        rooms::create, rooms::list, rooms::get_room, rooms::add_member, rooms::remove_member,
        room_retention::patch_room,
        room_events::history, room_events::post_message, room_events::edit, room_events::delete,
        room_events::react_on, room_events::react_off, room_events::read, room_events::receipts,
        room_events::unread,
        moderation::ban, moderation::bans, moderation::unban,
        moderation::mute, moderation::mutes, moderation::unmute,
        reports::create, reports::admin_list,
        notifications::list, notifications::unread_count, notifications::read_one, notifications::read_all,
        health::live, health::ready, health::startup, health::version_info, health::db_stats, health::redis_stats,
        crate::app::drain::start_drain, crate::ws::upgrade::upgrade,
        auth::logout_all,
        sdk::module, sdk::declarations,
        webhooks::create, webhooks::list, webhooks::get_endpoint, webhooks::delete, webhooks::enable,
        webhooks::deliveries,
        api_keys::create, api_keys::list, api_keys::revoke,
        server_api::post_message, server_api::notify_user,
        push::vapid_public_key, push::subscribe, push::unsubscribe,
    ),
    components(schemas(
        crate::http::error::Problem, crate::http::error::FieldError,
        Page<posts::PostResponse>, Page<rooms::RoomResponse>, Page<users::UserBody>, Page<room_events::MessageResponse>,
        Page<notifications::NotificationResponse>, Page<blocks::BlockResponse>,
        Page<moderation::RestrictionResponse>, Page<reports::ReportResponse>,
        Page<webhooks::DeliveryResponse>,
    )),
    modifiers(&BearerAuth, &SharedProblems),
    tags(
        (name = "auth", description = "Registration, login, token refresh and JWKS"),
        (name = "users"), (name = "posts"), (name = "rooms"), (name = "notifications"),
        (name = "push", description = "Web Push subscriptions (docs/push.md)"),
        (name = "reports", description = "Reports of messages and users, for operators"),
        (name = "health", description = "Probes; also served on the admin listener"),
        (name = "sdk", description = "The client SDK (docs/sdk.md): an ES module and its TypeScript declarations"),
        (name = "admin", description = "Served on the admin listener only (PARLEY_ADMIN_ADDR)"),
        (name = "server", description = "The server API: a backend with an API key (`Authorization: Bearer psk_...`) posts into rooms and notifies users"),
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
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("psk_ API key (POST /admin/api-keys)")
                        .build(),
                ),
            );
        }
    }
}

/// The problems an operation can meet before or around its handler, by
/// component name: (name, status, when).
const SHARED: &[(&str, &str, &str)] = &[
    (
        "BadRequest",
        "400",
        "the body, a path parameter or the query is invalid; `errors` names each bad field",
    ),
    (
        "Unauthorized",
        "401",
        "no access token, or an invalid or expired one",
    ),
    (
        "NotFound",
        "404",
        "no such resource (or no route for this path)",
    ),
    (
        "TooLarge",
        "413",
        "the body exceeds `PARLEY_MAX_BODY_BYTES`",
    ),
    (
        "UnsupportedMediaType",
        "415",
        "the body is not sent as `Content-Type: application/json`",
    ),
    (
        "RateLimited",
        "429",
        "a rate limit was exceeded; retry after `Retry-After` seconds",
    ),
    (
        "Unavailable",
        "503",
        "the database is unavailable or the instance is draining; retry after `Retry-After` seconds",
    ),
];

/// Adds the shared problem responses (see the module doc) and makes every
/// `Problem` body `application/problem+json`.
struct SharedProblems;

impl Modify for SharedProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, _, description) in SHARED {
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(problem_response(description)));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        serve_problems_as_problem_json(response);
                    }
                }
                for name in shared_problems(path, operation) {
                    let Some((_, status, _)) = SHARED.iter().find(|(n, ..)| *n == name) else {
                        continue;
                    };
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

/// Which of [`SHARED`] `operation` on `path` can answer, from its shape.
fn shared_problems(path: &str, operation: &Operation) -> Vec<&'static str> {
    let params = operation.parameters.as_deref().unwrap_or_default();
    let in_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let in_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let body = operation.request_body.is_some();
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    // The drain gate spares the probes; the admin listener has none.
    let probe = path.starts_with("/health") || path == "/readyz";
    let admin = path.starts_with("/admin/");
    let mut names = Vec::new();
    if body || in_path || in_query {
        names.push("BadRequest");
    }
    if secured {
        names.push("Unauthorized");
    }
    if in_path {
        names.push("NotFound");
    }
    if body {
        names.extend(["TooLarge", "UnsupportedMediaType"]);
    }
    if path.starts_with("/api/v1/") {
        names.push("RateLimited");
    }
    if !probe && !admin {
        names.push("Unavailable");
    }
    names
}

/// A problem response with `Retry-After` where the problem has one.
fn problem_response(description: &str) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content);
    if description.contains("Retry-After") {
        let seconds = HeaderBuilder::new()
            .schema(Object::with_type(Type::Integer))
            .description(Some("seconds to wait before retrying"))
            .build();
        response = response.header("Retry-After", seconds);
    }
    response.build()
}

/// Handlers declare `body = Problem`; the media type they send is problem+json.
fn serve_problems_as_problem_json(response: &mut Response) {
    let problem = Ref::from_schema_name("Problem");
    let is_problem =
        |c: &utoipa::openapi::Content| matches!(&c.schema, Some(RefOr::Ref(r)) if *r == problem);
    if let Some(content) = response.content.shift_remove("application/json") {
        if is_problem(&content) {
            response.content.insert(PROBLEM_JSON.to_owned(), content);
        } else {
            response
                .content
                .insert("application/json".to_owned(), content);
        }
    }
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
