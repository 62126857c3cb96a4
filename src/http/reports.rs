//! Reports (contract 1.1, 6.2): `POST /reports` for users; operators list
//! them on the admin listener (`GET /admin/reports`, [`admin_list`]).

use crate::domain::{Reason, ReportId, ReportKind, RoomId, Seq, UserId};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::{Page, PageQuery};
use crate::service::Services;
use crate::service::reports::{self, Reported};
use crate::store::Report;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports", web::post().to(create));
}

/// A report of a message (`room` and `seq`) or of a user (`user_id`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReportRequest {
    /// `message` or `user`.
    pub kind: String,
    /// A message report's room.
    pub room: Option<String>,
    /// A message report's seq.
    pub seq: Option<i64>,
    /// A user report's user.
    pub user_id: Option<String>,
    /// 1 to 1,000 characters.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReportResponse {
    pub id: uuid::Uuid,
    pub reporter: uuid::Uuid,
    /// `message` or `user`.
    pub kind: &'static str,
    pub room: Option<uuid::Uuid>,
    pub seq: Option<i64>,
    pub user_id: Option<uuid::Uuid>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Report> for ReportResponse {
    fn from(r: &Report) -> Self {
        Self {
            id: r.id.0,
            reporter: r.reporter.0,
            kind: r.kind.as_str(),
            room: r.message.map(|(room, _)| room.0),
            seq: r.message.map(|(_, seq)| seq.0),
            user_id: r.user.map(|u| u.0),
            reason: r.reason.clone(),
            created_at: r.created_at,
        }
    }
}

impl NewReportRequest {
    /// What is reported and why; every bad or missing field named at once.
    pub fn parse(&self) -> Result<(Reported, Reason), ApiError> {
        let mut fields = Fields::default();
        let reason = fields.check("reason", Reason::parse_required(&self.reason));
        let reported = match fields.check("kind", ReportKind::parse(&self.kind)) {
            Some(ReportKind::Message) => {
                let room = required(&mut fields, "room", self.room.as_deref().map(RoomId::parse));
                let seq = required(&mut fields, "seq", self.seq.map(Seq::parse));
                room.zip(seq)
                    .map(|(room, seq)| Reported::Message { room, seq })
            }
            Some(ReportKind::User) => required(
                &mut fields,
                "user_id",
                self.user_id.as_deref().map(UserId::parse),
            )
            .map(Reported::User),
            None => None,
        };
        fields.finish((reported, reason))
    }
}

/// A field the report's kind needs.
fn required<T, E: std::fmt::Display>(
    fields: &mut Fields,
    name: &str,
    value: Option<Result<T, E>>,
) -> Option<T> {
    match value {
        Some(parsed) => fields.check(name, parsed),
        None => fields.check(name, Err::<T, _>("is required for this kind of report")),
    }
}

#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", security(("bearer" = [])),
    request_body = NewReportRequest,
    responses((status = 201, description = "stored for the operators", body = ReportResponse),
              (status = 400, description = "a bad or missing field", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "the message is in a room the caller may not read", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such room, message or user", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 503, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn create(
    state: web::Data<Services>,
    caller: AuthUser,
    body: web::Json<NewReportRequest>,
) -> Result<HttpResponse, ApiError> {
    let (reported, reason) = body.parse()?;
    let report = reports::file(&state, caller.id, reported, reason).await?;
    Ok(HttpResponse::Created().json(ReportResponse::from(&report)))
}

/// `GET /admin/reports` on the admin listener: newest first; `cursor` is a
/// report id.
#[utoipa::path(get, path = "/admin/reports", tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "reports, newest first; `cursor` is a report id. Served on the admin listener only.", body = Page<ReportResponse>),
              (status = 400, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 503, body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn admin_list(
    state: web::Data<Services>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) = query.parse(ReportId::parse)?;
    let rows = state.store.reports(before, limit.overfetch()).await?;
    let items: Vec<ReportResponse> = rows.iter().map(ReportResponse::from).collect();
    let page = Page::from_overfetch(items, limit.get(), |r: &ReportResponse| r.id.to_string());
    Ok(HttpResponse::Ok().json(page))
}
