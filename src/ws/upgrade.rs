//! `GET /ws`: check `Origin` (see [`super::origin`]), authenticate (bearer
//! header, a single-use `?ticket=` from `POST /api/v1/ws-ticket`, or
//! `?access_token=` for older browsers), take a slot under the per-user and
//! per-IP connection caps, then hand the connection to a [`WsSession`]
//! actor and its socket writer. Refusals happen before the upgrade, as
//! plain HTTP problems.

use super::linger::{Linger, LingeringBody};
use super::pump;
use super::session::WsSession;
use crate::auth::Claims;
use crate::auth::JwtKeys;
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::http::middleware::authn::{SIGNED_OUT, bearer};
use crate::service::Services;
use crate::ws::WsParts;
use actix::{Actor, AsyncContext};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::ProtocolError;
use futures_util::{Stream, StreamExt};
use parley_actors::ids::SessionId;
use parley_actors::outbox::Outbox;
use serde::Deserialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
    body: web::Payload,
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
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    let max = state.settings.ws.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max)
        .map(|item| item.map_err(continuation_overflow_as_overflow));
    let stream = ErrorsLast::new(stream);
    let (outbox, inbox) = Outbox::channel(state.settings.ws.outbox);
    let linger = Arc::new(Linger::default());
    let state = state.get_ref().clone();
    let metrics = state.metrics.clone();
    let session_linger = linger.clone();
    let quota = ws.publish_quota.clone();
    WsSession::create(|ctx| {
        ctx.add_stream(stream);
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
    actix_web::rt::spawn(pump::run(session, inbox, linger.clone(), metrics));
    Ok(response
        .map_body(|_, body| LingeringBody::new(body, linger))
        .map_into_boxed_body())
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

/// Frames handed out after a held error, at most: enough for everything a
/// client can have sent in one read, and a bound on a client that keeps
/// writing after its oversized frame.
const AFTER_ERROR: usize = 256;

/// Hands out the frames decoded before a protocol error first, then the error.
///
/// actix-ws decodes every frame of a read before handing out the first, and
/// returns a decode error (an oversized frame, say) ahead of the frames that
/// came before it in that read. The session closes on the error, so a
/// client that wrote quickly (right after the 101, before reading `hello`)
/// lost those frames without a reply. Holding the error until the inner
/// stream has nothing ready keeps the client's order.
struct ErrorsLast<S, E> {
    inner: S,
    held: Option<E>,
    /// Frames handed out since the error was held.
    after: usize,
    done: bool,
}

impl<S, E> ErrorsLast<S, E> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            held: None,
            after: 0,
            done: false,
        }
    }
}

impl<S, T, E> Stream for ErrorsLast<S, E>
where
    S: Stream<Item = Result<T, E>> + Unpin,
    E: Unpin,
{
    type Item = Result<T, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let Some(held) = this.held.take() else {
            return match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Err(e))) => {
                    this.held = Some(e);
                    Pin::new(this).poll_next(cx)
                }
                other => other,
            };
        };
        if this.after < AFTER_ERROR
            && let Poll::Ready(Some(Ok(item))) = Pin::new(&mut this.inner).poll_next(cx)
        {
            this.after += 1;
            this.held = Some(held);
            return Poll::Ready(Some(Ok(item)));
        }
        this.done = true;
        Poll::Ready(Some(Err(held)))
    }
}

/// What actix-ws says, as an I/O error, when a fragmented message grows past
/// `max_continuation_size`: a single oversized frame is
/// [`ProtocolError::Overflow`], fragments are not (actix-ws 0.4).
const CONTINUATION_OVERFLOW: &str = "Exceeded maximum continuation size";

/// Makes a message over the limit one error however it was framed, so the
/// session closes both with 1009. The test
/// `ws_limits::a_fragmented_message_over_the_limit_closes_with_1009` notices
/// if actix-ws changes its wording.
fn continuation_overflow_as_overflow(error: ProtocolError) -> ProtocolError {
    match error {
        ProtocolError::Io(io) if io.to_string() == CONTINUATION_OVERFLOW => ProtocolError::Overflow,
        other => other,
    }
}
