//! `GET /ws`: authenticate (bearer header, or `?access_token=` for
//! browsers), check `Origin` against `PARLEY_WS_ALLOWED_ORIGINS`, then hand
//! the connection to a [`WsSession`] actor and its socket writer. Refusals
//! happen before the upgrade, as plain HTTP problems.

use super::pump;
use super::session::WsSession;
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::authn::bearer;
use actix::{Actor, AsyncContext};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::Stream;
use parley_actors::outbox::Outbox;
use serde::Deserialize;
use std::pin::Pin;
use std::task::{Context, Poll};

#[derive(Deserialize)]
pub struct TokenQuery {
    access_token: Option<String>,
}

pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state.settings.ws.allowed_origins)?;
    let token = bearer(&req)
        .map(str::to_owned)
        .or_else(|| query.into_inner().access_token)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "send an access token as `Authorization: Bearer` or `?access_token=`",
            )
        })?;
    let claims = state
        .keys
        .verify(&token)
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    let max = state.settings.ws.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let stream = ErrorsLast::new(stream);
    let (outbox, inbox) = Outbox::channel(state.settings.ws.outbox);
    let state = state.get_ref().clone();
    let metrics = state.metrics.clone();
    WsSession::create(|ctx| {
        ctx.add_stream(stream);
        WsSession::new(claims.sub, claims.name, claims.exp, outbox, state)
    });
    actix_web::rt::spawn(pump::run(session, inbox, metrics));
    Ok(response)
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

fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get("origin").and_then(|o| o.to_str().ok()) else {
        return Ok(()); // not a browser
    };
    if allowed.is_empty() || allowed.iter().any(|a| a == origin) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "origin {origin} is not allowed to open a WebSocket"
    )))
}
