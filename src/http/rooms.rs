//! `/api/v1/rooms`: rooms, membership and message history.
//!
//! Who may do what is decided in `service::rooms`, how a message is stored
//! and answered in `service::publish`: the WebSocket edge calls the same.

use crate::domain::{
    ClientId, Limit, MessageBody, RoomId, RoomKind, RoomName, RoomRole, Seq, UserId,
};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::{Page, PageQuery};
use crate::http::users::parse_user_id;
use crate::service::Services;
use crate::service::publish::{self, Draft};
use crate::service::rooms;
use crate::store::{Member, Room, StoreError};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use parley_actors::model::StoredMessage;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms", web::post().to(create))
        .route("/rooms", web::get().to(list))
        .route("/rooms/{id}", web::get().to(get_room))
        .route("/rooms/{id}/members", web::post().to(add_member))
        .route(
            "/rooms/{id}/members/{user_id}",
            web::delete().to(remove_member),
        )
        .route("/rooms/{id}/messages", web::get().to(history))
        .route("/rooms/{id}/messages", web::post().to(post_message));
}

#[derive(Serialize, ToSchema)]
pub struct RoomResponse {
    pub id: uuid::Uuid,
    pub name: String,
    pub kind: RoomKind,
    pub created_by: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    /// Present on `GET /rooms/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberResponse>>,
}

impl From<&Room> for RoomResponse {
    fn from(r: &Room) -> Self {
        Self {
            id: r.id.0,
            name: r.name.clone(),
            kind: r.kind,
            created_by: r.created_by.0,
            created_at: r.created_at,
            members: None,
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

/// A room message, with the fields of the WebSocket `message` frame.
#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    pub room: uuid::Uuid,
    pub seq: i64,
    pub id: uuid::Uuid,
    pub author: uuid::Uuid,
    pub body: String,
    pub ts: DateTime<Utc>,
    pub client_id: String,
}

impl From<&StoredMessage> for MessageResponse {
    fn from(m: &StoredMessage) -> Self {
        Self {
            room: m.room.0,
            seq: m.seq.0,
            id: m.id.0,
            author: m.author.0,
            body: m.body.clone(),
            ts: m.ts,
            client_id: m.client_id.clone(),
        }
    }
}

/// The answer to a publish: the message is durable.
#[derive(Serialize, ToSchema)]
pub struct AckResponse {
    pub room: uuid::Uuid,
    pub seq: i64,
    pub id: uuid::Uuid,
    pub client_id: String,
    /// False when this `client_id` was already published: this is the original ack.
    pub created: bool,
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

#[derive(Deserialize, ToSchema)]
pub struct PostMessage {
    pub body: String,
    /// Idempotency key, at most 64 characters: a repeat returns the original ack.
    pub client_id: String,
}

#[derive(Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Messages with `seq` greater than this, oldest first.
    pub after_seq: Option<i64>,
    /// Messages with `seq` smaller than this.
    pub before_seq: Option<i64>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

/// Parses a room id from the path.
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

impl PostMessage {
    /// The body and idempotency key, as a WebSocket `publish` checks them.
    pub fn parse(&self) -> Result<(MessageBody, ClientId), ApiError> {
        let mut fields = Fields::default();
        let text = fields.check("body", MessageBody::parse(&self.body));
        let client_id = fields.check("client_id", ClientId::parse(&self.client_id));
        fields.finish((text, client_id))
    }
}

impl HistoryQuery {
    /// `after_seq`, `before_seq` and the page size.
    pub fn parse(&self) -> Result<(Option<Seq>, Option<Seq>, Limit), ApiError> {
        let mut fields = Fields::default();
        let after = self
            .after_seq
            .map(|s| fields.check("after_seq", Seq::parse(s)));
        let before = self
            .before_seq
            .map(|s| fields.check("before_seq", Seq::parse(s)));
        let limit = fields.check("limit", Limit::parse(self.limit));
        let limit = fields.finish(limit)?;
        Ok((after.flatten(), before.flatten(), limit))
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
    Ok(HttpResponse::Created().json(RoomResponse::from(&room)))
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "public rooms and the caller's rooms, oldest first", body = Page<RoomResponse>)))]
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
    let rows = rooms.iter().map(RoomResponse::from).collect();
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
    let (room, _) = rooms::readable(&state, id, caller.id).await?;
    let members = state.store.members(id).await?;
    let mut body = RoomResponse::from(&room);
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

#[utoipa::path(get, path = "/api/v1/rooms/{id}/messages", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), HistoryQuery),
    responses((status = 200, description = "messages in ascending seq. With `after_seq`: the oldest page after it, and `next_cursor` is the next `after_seq`. Otherwise: the newest page before `before_seq` (or the newest overall), and `next_cursor` is the next `before_seq` going back.", body = Page<MessageResponse>),
              (status = 403, body = crate::http::error::Problem)))]
pub async fn history(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let (after, before, limit) = query.parse()?;
    rooms::readable(&state, id, caller.id).await?;
    let page = match after {
        Some(after) => {
            let rows = state
                .store
                .range(id, after, before, limit.overfetch().get())
                .await
                .map_err(StoreError::from)?;
            let rows = rows.iter().map(MessageResponse::from).collect();
            Page::from_overfetch(rows, limit.get(), |m: &MessageResponse| m.seq.to_string())
        }
        None => {
            let mut rows = state
                .store
                .tail(id, before, limit.overfetch().get())
                .await
                .map_err(StoreError::from)?;
            // Overfetched at the old end: drop the oldest, and page back from the oldest kept.
            let more = rows.len() > limit.get() as usize;
            if more {
                rows.remove(0);
            }
            let items: Vec<MessageResponse> = rows.iter().map(MessageResponse::from).collect();
            let next_cursor = if more {
                items.first().map(|m| m.seq.to_string())
            } else {
                None
            };
            Page { items, next_cursor }
        }
    };
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = PostMessage,
    responses((status = 201, description = "stored (durable)", body = AckResponse),
              (status = 200, description = "this client_id was already stored: the original ack", body = AckResponse),
              (status = 403, body = crate::http::error::Problem), (status = 503, body = crate::http::error::Problem)))]
pub async fn post_message(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<PostMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let (text, client_id) = body.parse()?;
    let (room, _) = rooms::readable(&state, id, caller.id).await?;
    let draft = Draft {
        room: id,
        author: caller.id,
        body: text,
        client_id,
    };
    let outcome = publish::submit(&state, draft, tracing::Span::current()).await?;
    publish::notify_new(&state, &outcome, Some(&room), &caller.name).await;
    let message = outcome.message();
    let ack = AckResponse {
        room: message.room.0,
        seq: message.seq.0,
        id: message.id.0,
        client_id: message.client_id.clone(),
        created: outcome.is_new(),
    };
    let mut response = if outcome.is_new() {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(ack))
}
