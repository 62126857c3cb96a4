//! `GET /ws`: check `Origin` (see [`super::origin`]), authenticate (bearer
//! header, a single-use `?ticket=` from `POST /api/v1/ws-ticket`, or
//! `?access_token=` for older browsers), take a slot under the per-user and
//! per-IP connection caps, then answer 101 with a [`Handoff`] that starts a
//! [`WsSession`] actor and its socket writer on the connection (see
//! [`super::handoff`]). Refusals happen before the upgrade, as plain HTTP
//! problems.

use super::handoff::{Handoff, Upgradable};
use super::linger::Linger;
use super::pump;
use super::session::WsSession;
use super::socket::{FrameWriter, Frames};
use crate::auth::Claims;
use crate::auth::JwtKeys;
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::http::middleware::authn::{SIGNED_OUT, bearer};
use crate::service::Services;
use crate::ws::WsParts;
use actix::{Actor, AsyncContext};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use parley_actors::ids::SessionId;
use parley_actors::outbox::Outbox;
use serde::Deserialize;
use std::sync::Arc;

/// The credentials a browser may put in the query string. Both are
/// redacted from every log line parley writes (request lines log the
/// route, never the URI).
#[derive(Deserialize)]
pub struct CredentialQuery {
    access_token: Option<String>,
    ticket: Option<String>,
}

/// The WebSocket endpoint: the frames are in `docs/api.md`; this documents
/// the HTTP side of the upgrade.
#[utoipa::path(get, path = "/ws", tag = "websocket",
    params(
        ("access_token" = Option<String>, Query, description = "an access token, for clients that cannot send headers (prefer `ticket`)"),
        ("ticket" = Option<String>, Query, description = "a single-use ticket from `POST /api/v1/ws-ticket`, valid 30 s"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "switching protocols: the connection speaks the WebSocket protocol of docs/api.md"),
        (status = 400, description = "not a WebSocket upgrade request", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "no credential, or a bad, expired or revoked one (log out everywhere, refresh-token reuse)", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "the browser's `Origin` is not allowed", body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "over the concurrent WebSocket cap per user or per client IP; see `Retry-After`", body = crate::http::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn upgrade(
    req: HttpRequest,
    state: web::Data<Services>,
    ws: web::Data<WsParts>,
    keys: web::Data<JwtKeys>,
    query: web::Query<CredentialQuery>,
) -> Result<HttpResponse, ApiError> {
    super::origin::check(&req, &state.settings)?;
    let claims = authenticate(&req, &ws, &keys, query.into_inner()).await?;
    // Whether it came as a token or a ticket: a ticket carries the claims
    // of the token it was issued for.
    if state.revocations.refuses(&claims) {
        return Err(ApiError::unauthorized(SIGNED_OUT));
    }
    let session_id = SessionId::new();
    let ip = client_ip(&req, &state.settings.http.trusted_proxies);
    let slot = ws
        .conn_caps
        .acquire(session_id, claims.sub, ip)
        .await
        .map_err(|refused| {
            let (what, limit) = match refused {
                super::caps::Refused::PerUser => ("user", state.settings.ws.conns_per_user),
                super::caps::Refused::PerIp => ("client address", state.settings.ws.conns_per_ip),
            };
            let mut e = ApiError::rate_limited(super::caps::RETRY_AFTER_S);
            e.detail = format!(
                "this {what} already has {limit} open WebSockets; close one or retry in {} s",
                super::caps::RETRY_AFTER_S
            );
            e
        })?;
    let handshake = handshake(&req)?;
    let max = state.settings.ws.max_frame_bytes;
    let capacity = state.settings.ws.outbox;
    let state = state.get_ref().clone();
    let quota = ws.publish_quota.clone();
    let open = ws.open.clone();
    let start = move |socket: tokio::net::TcpStream, early: &[u8]| {
        let held = open.hold();
        let socket = Arc::new(socket);
        let (outbox, inbox) = Outbox::channel(capacity);
        let linger = Arc::new(Linger::default());
        let metrics = state.metrics.clone();
        let session_linger = linger.clone();
        let session = WsSession::create(|ctx| {
            ctx.add_stream(Frames::new(socket.clone(), early, max));
            WsSession::new(
                session_id,
                &claims,
                outbox,
                slot,
                session_linger,
                state,
                quota,
            )
        });
        let session = pump::Session {
            linger,
            closed: session.downgrade().recipient(),
        };
        actix_web::rt::spawn(async move {
            pump::run(FrameWriter::new(socket), inbox, session, metrics).await;
            drop(held);
        });
    };
    let mut response = HttpResponse::from(handshake);
    response.extensions_mut().insert(Handoff::new(start));
    Ok(response)
}

/// The 101 for a valid WebSocket handshake that arrived with its
/// connection (see [`super::handoff`]).
fn handshake(
    req: &HttpRequest,
) -> Result<actix_http::Response<actix_web::body::BoxBody>, ApiError> {
    let mut handshake = actix_http::ws::handshake(req.head())
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    if !req.extensions().contains::<Upgradable>() {
        return Err(ApiError::bad_request(
            "not a WebSocket upgrade: the request cannot take over its connection",
        ));
    }
    Ok(handshake.finish().map_into_boxed_body())
}

/// The caller's verified claims: the `Authorization` header wins, then a
/// ticket, then the `access_token` query parameter.
async fn authenticate(
    req: &HttpRequest,
    ws: &WsParts,
    keys: &JwtKeys,
    query: CredentialQuery,
) -> Result<Claims, ApiError> {
    let token = bearer(req).map(str::to_owned);
    if token.is_none()
        && let Some(ticket) = query.ticket
    {
        let claims = ws.tickets.redeem(&ticket).await.ok_or_else(|| {
            ApiError::unauthorized(
                "the ticket is unknown, already used or older than 30 s; \
                 get a new one from POST /api/v1/ws-ticket",
            )
        })?;
        // A ticket lives 30 s; the token it stands for may expire sooner.
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(ApiError::unauthorized(
                "the access token behind this ticket has expired; refresh it and get a new ticket",
            ));
        }
        return Ok(claims);
    }
    let token = token.or(query.access_token).ok_or_else(|| {
        ApiError::unauthorized(
            "send an access token as `Authorization: Bearer`, or a ticket from \
             POST /api/v1/ws-ticket as `?ticket=`",
        )
    })?;
    keys.verify(&token)
        .map_err(|e| ApiError::unauthorized(e.to_string()))
}
