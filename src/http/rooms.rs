//! `/api/v1/rooms`: rooms and membership, each room with the caller's
//! unread position. Its messages and other events are in
//! [`super::room_events`].
//!
//! Who may do what is decided in `service::rooms`: the WebSocket edge calls
//! the same.

use crate::domain::{RoomId, RoomKind, RoomName, RoomRole, UserId};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::{Page, PageQuery};
use crate::http::users::parse_user_id;
use crate::service::Services;
use crate::service::rooms;
use crate::store::{Member, Room, RoomUnread};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms", web::post().to(create))
        .route("/rooms", web::get().to(list))
        // Before `/rooms/{id}`, which would take `unread` for an id.
        .route("/rooms/unread", web::get().to(super::room_events::unread))
        .route("/rooms/{id}", web::get().to(get_room))
        .route(
            "/rooms/{id}",
            web::patch().to(super::room_retention::patch_room),
        )
        .route("/rooms/{id}/members", web::post().to(add_member))
        .route(
            "/rooms/{id}/members/{user_id}",
            web::delete().to(remove_member),
        )
        .configure(super::room_events::configure);
}

#[derive(Serialize, ToSchema)]
pub struct RoomResponse {
    pub id: uuid::Uuid,
    pub name: String,
    pub kind: RoomKind,
    pub created_by: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    /// Days the room keeps its events; `null`: forever.
    pub retention_days: Option<u32>,
    /// Present on `GET /rooms/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberResponse>>,
    /// The room's newest seq (any event kind).
    pub last_seq: i64,
    /// The caller's read cursor (0: nothing read).
    pub read_seq: i64,
    /// Messages by others after `read_seq` that are not deleted.
    pub unread: i64,
}

impl RoomResponse {
    /// The room with the caller's position in it.
    fn with_position(room: &Room, position: Option<&RoomUnread>) -> Self {
        let mut response = Self::from(room);
        if let Some(p) = position {
            response.last_seq = p.last_seq.0;
            response.read_seq = p.read_seq.0;
            response.unread = p.unread;
        }
        response
    }
}

impl From<&Room> for RoomResponse {
    fn from(r: &Room) -> Self {
        Self {
            id: r.id.0,
            name: r.name.clone(),
            kind: r.kind,
            created_by: r.created_by.0,
            created_at: r.created_at,
            retention_days: r.retention_days.map(|d| d.get()),
            members: None,
            last_seq: 0,
            read_seq: 0,
            unread: 0,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberResponse {
    pub user_id: uuid::Uuid,
    pub role: RoomRole,
    pub joined_at: DateTime<Utc>,
}

impl From<&Member> for MemberResponse {
    fn from(m: &Member) -> Self {
        Self {
            user_id: m.user.0,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateRoom {
    /// 1 to 100 characters.
    pub name: String,
    #[schema(value_type = RoomKind)]
    pub kind: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AddMember {
    pub user_id: String,
    /// `member` (default) or `admin`.
    pub role: Option<String>,
}

pub fn parse_room_id(raw: &str) -> Result<RoomId, ApiError> {
    let mut fields = Fields::default();
    let id = fields.check("id", RoomId::parse(raw));
    fields.finish(id)
}

impl CreateRoom {
    /// The room's name and kind, or a `bad_request` naming each bad field.
    pub fn parse(&self) -> Result<(RoomName, RoomKind), ApiError> {
        let mut fields = Fields::default();
        let name = fields.check("name", RoomName::parse(&self.name));
        let kind = fields.check("kind", RoomKind::parse(&self.kind));
        fields.finish((name, kind))
    }
}

impl AddMember {
    /// The user to add and their role (`member` unless `admin` is asked for).
    pub fn parse(&self) -> Result<(UserId, RoomRole), ApiError> {
        let mut fields = Fields::default();
        let user = fields.check("user_id", UserId::parse(&self.user_id));
        let role = fields.check(
            "role",
            match self.role.as_deref() {
                None | Some("member") => Ok(RoomRole::Member),
                Some("admin") => Ok(RoomRole::Admin),
                Some(_) => Err("must be \"member\" or \"admin\""),
            },
        );
        fields.finish((user, role))
    }
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
    request_body = CreateRoom,
    responses((status = 201, body = RoomResponse), (status = 400, body = crate::http::error::Problem)))]
pub async fn create(
    state: web::Data<Services>,
    caller: AuthUser,
    body: web::Json<CreateRoom>,
) -> Result<HttpResponse, ApiError> {
    let (name, kind) = body.parse()?;
    let room = state.store.create_room(caller.id, name, kind).await?;
    let room = crate::service::retention::apply_default(&state, room).await?;
    Ok(HttpResponse::Created().json(RoomResponse::from(&room)))
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "public rooms and the caller's rooms, oldest first, each with the caller's `last_seq`, `read_seq` and `unread`", body = Page<RoomResponse>)))]
pub async fn list(
    state: web::Data<Services>,
    caller: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (cursor, limit) = query.parse(RoomId::parse)?;
    let rooms = state
        .store
        .rooms_visible_to(caller.id, cursor, limit.overfetch())
        .await?;
    let ids: Vec<RoomId> = rooms.iter().map(|r| r.id).collect();
    let positions = state.store.room_unread(caller.id, &ids).await?;
    let by_room: HashMap<RoomId, &RoomUnread> = positions.iter().map(|p| (p.room, p)).collect();
    let rows = rooms
        .iter()
        .map(|room| RoomResponse::with_position(room, by_room.get(&room.id).copied()))
        .collect();
    Ok(HttpResponse::Ok().json(Page::from_overfetch(
        rows,
        limit.get(),
        |r: &RoomResponse| r.id.to_string(),
    )))
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RoomResponse), (status = 403, body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem)))]
pub async fn get_room(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let room = rooms::readable(&state, id, caller.id).await?.room;
    let members = state.store.members(id).await?;
    let position = state.store.room_unread(caller.id, &[id]).await?;
    let mut body = RoomResponse::with_position(&room, position.first());
    body.members = Some(members.iter().map(MemberResponse::from).collect());
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/members", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = AddMember,
    responses((status = 204, description = "the user is a member (idempotent)"),
              (status = 403, body = crate::http::error::Problem), (status = 404, body = crate::http::error::Problem),
              (status = 409, description = "a direct room already has two members", body = crate::http::error::Problem)))]
pub async fn add_member(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let room_id = parse_room_id(&path)?;
    let (user, role) = body.parse()?;
    rooms::add_member(&state, caller.id, room_id, user, role).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/members/{user_id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = crate::http::error::Problem), (status = 404, body = crate::http::error::Problem),
              (status = 409, description = "the owner cannot leave the room", body = crate::http::error::Problem)))]
pub async fn remove_member(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (room_raw, user_raw) = path.into_inner();
    let room_id = parse_room_id(&room_raw)?;
    let user = parse_user_id(&user_raw)?;
    rooms::remove_member(&state, caller.id, room_id, user).await?;
    Ok(HttpResponse::NoContent().finish())
}
