//! `PATCH /api/v1/rooms/{id}`: a room's settings, for now only how long it
//! keeps its events (`retention_days`). Who may is decided in
//! `service::retention`.

use crate::domain::RetentionDays;
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::rooms::{RoomResponse, parse_room_id};
use crate::service::{Services, retention};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomPatch {
    /// Days the room keeps its events (1 to 36500), or `null`: forever.
    /// Required: it is the only setting so far.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1, maximum = 36500)]
    pub retention_days: Option<Value>,
}

/// Tells `"retention_days": null` (a value: forever) from a missing field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl RoomPatch {
    /// The patch in a body, which must be a JSON object (serde would take
    /// `[30]` for `{"retention_days": 30}`).
    fn from_body(body: Value) -> Result<Self, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body must be a JSON object such as {\"retention_days\": 30}",
            ));
        }
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// The retention asked for (`None`: forever), or a `bad_request`.
    pub fn parse(&self) -> Result<Option<RetentionDays>, ApiError> {
        let mut fields = Fields::default();
        let days = fields.check("retention_days", parse_days(self.retention_days.as_ref()));
        fields.finish(days)
    }
}

fn parse_days(raw: Option<&Value>) -> Result<Option<RetentionDays>, &'static str> {
    const RANGE: &str = "must be a whole number of days from 1 to 36500, or null (forever)";
    match raw {
        None => Err("is required (null keeps events forever)"),
        Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .and_then(|days| RetentionDays::parse(days).ok())
            .map(Some)
            .ok_or(RANGE),
    }
}

#[utoipa::path(patch, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = RoomPatch,
    responses((status = 200, description = "the room with its new settings", body = RoomResponse),
              (status = 400, description = "`retention_days` missing, not a whole number from 1 to 36500 nor null, or an unknown field", body = crate::http::error::Problem),
              (status = 403, description = "the caller is not the room's owner or an admin", body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem)))]
pub async fn patch_room(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let days = RoomPatch::from_body(body.into_inner())?.parse()?;
    let room = retention::set(&state, caller.id, id, days).await?;
    Ok(HttpResponse::Ok().json(RoomResponse::from(&room)))
}
