//! `POST /api/v1/ws-ticket`: a single-use ticket for `GET /ws?ticket=`, so
//! a browser opens its WebSocket without putting the access token in the
//! URL (see [`crate::ws::ticket`]).

use crate::auth::Claims;
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Code};
use crate::ws::WsParts;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws-ticket", web::post().to(issue));
}

/// A WebSocket ticket.
#[derive(Serialize, ToSchema)]
pub struct TicketResponse {
    /// Opens one WebSocket as `GET /ws?ticket=...` within `expires_in` seconds.
    pub ticket: String,
    /// Seconds the ticket stays valid (30).
    pub expires_in: u64,
}

#[utoipa::path(post, path = "/api/v1/ws-ticket", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = TicketResponse, description = "a ticket for `GET /ws?ticket=`, valid once for 30 s on any instance"),
        (status = 401, body = crate::http::error::Problem),
        (status = 429, body = crate::http::error::Problem),
    ))]
pub async fn issue(
    req: HttpRequest,
    ws: web::Data<WsParts>,
    _caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let claims =
        req.extensions().get::<Claims>().cloned().ok_or_else(|| {
            ApiError::unauthorized("send an access token as `Authorization: Bearer`")
        })?;
    let ticket = ws.tickets.issue(&claims).await.map_err(|full| {
        let mut e = ApiError::new(Code::Unavailable, full.to_string());
        e.retry_after_s = Some(1);
        e
    })?;
    Ok(
        crate::http::auth::no_store(HttpResponse::Ok()).json(TicketResponse {
            ticket,
            expires_in: crate::ws::ticket::TTL.as_secs(),
        }),
    )
}
