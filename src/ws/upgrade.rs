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
use parley_actors::outbox::Outbox;
use serde::Deserialize;

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
