//! A room's event stream over REST (contract 1.1, section 6.1): history in
//! current state, publishing, edits, deletes, reactions, read cursors,
//! receipts and unread counts.
//!
//! Who may do what is decided in `service::rooms`, how an event is stored
//! and answered in `service::publish`, how a cursor moves in
//! `service::read_state`: the WebSocket frames call the same.

use crate::domain::{ClientId, Limit, MessageBody, RoomId, Seq};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::page::Page;
use crate::http::rooms::parse_room_id;
use crate::service::Services;
use crate::service::publish::{self, Draft};
use crate::service::{read_state, rooms};
use crate::store::{self, HistoryItem, RoomUnread};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use parley_actors::model::{Action, Appended, Emoji};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms/{id}/messages", web::get().to(history))
        .route("/rooms/{id}/messages", web::post().to(post_message))
        .route("/rooms/{id}/messages/{seq}", web::patch().to(edit))
        .route("/rooms/{id}/messages/{seq}", web::delete().to(delete))
        .route(
            "/rooms/{id}/messages/{seq}/reactions/{emoji}",
            web::put().to(react_on),
        )
        .route(
            "/rooms/{id}/messages/{seq}/reactions/{emoji}",
            web::delete().to(react_off),
        )
        .route("/rooms/{id}/read", web::post().to(read))
        .route("/rooms/{id}/receipts", web::get().to(receipts));
}

/// One emoji's reactions on a message.
#[derive(Serialize, ToSchema)]
pub struct ReactionResponse {
    pub emoji: String,
    pub count: i64,
    /// Whether the caller reacted with it.
    pub me: bool,
}

/// A room message in its current state: the `message` frame's fields plus
/// what its edits, delete and reactions made of it.
#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    pub room: uuid::Uuid,
    pub seq: i64,
    pub id: uuid::Uuid,
    pub author: uuid::Uuid,
    /// After the last edit; `""` once deleted.
    pub body: String,
    pub ts: DateTime<Utc>,
    pub client_id: String,
    /// The seq of the message this one replies to.
    pub reply_to: Option<i64>,
    /// When last edited; null if never.
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    pub reactions: Vec<ReactionResponse>,
}

impl MessageResponse {
    fn new(room: RoomId, m: HistoryItem) -> Self {
        Self {
            room: room.0,
            seq: m.seq.0,
            id: m.id.0,
            author: m.author.0,
            body: m.body,
            ts: m.ts,
            client_id: m.client_id,
            reply_to: m.reply_to.map(|s| s.0),
            edited_at: m.edited_at,
            deleted: m.deleted,
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionResponse {
                    emoji: r.emoji,
                    count: r.count,
                    me: r.me,
                })
                .collect(),
        }
    }
}

/// The answer to an event: it is durable. The WebSocket `ack`'s fields.
#[derive(Serialize, ToSchema)]
pub struct AckResponse {
    pub room: uuid::Uuid,
    /// The event's own seq.
    pub seq: i64,
    pub id: uuid::Uuid,
    pub client_id: String,
    /// The message an edit, delete or reaction applied to; null for a message.
    pub target: Option<i64>,
    /// False when this `client_id` was already used: this is the original ack.
    pub created: bool,
}

impl AckResponse {
    fn new(outcome: &Appended) -> Self {
        let event = outcome.event();
        Self {
            room: event.room.0,
            seq: event.seq.0,
            id: event.id.0,
            client_id: event.client_id.clone(),
            target: event.data.target().map(|s| s.0),
            created: outcome.is_new(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct PostMessage {
    pub body: String,
    /// Idempotency key, at most 64 characters: a repeat returns the original ack.
    pub client_id: String,
    /// The seq of a message of this room that this one replies to.
    pub reply_to: Option<i64>,
}

impl PostMessage {
    /// The body, idempotency key and reply target, as a WebSocket `publish`
    /// checks them.
    pub fn parse(&self) -> Result<(MessageBody, ClientId, Option<Seq>), ApiError> {
        let mut fields = Fields::default();
        let text = fields.check("body", MessageBody::parse(&self.body));
        let client_id = fields.check("client_id", ClientId::parse(&self.client_id));
        // Checked, but kept out of `finish`: absent is fine.
        let reply_to = self
            .reply_to
            .and_then(|s| fields.check("reply_to", Seq::parse(s)));
        let (text, client_id) = fields.finish((text, client_id))?;
        Ok((text, client_id, reply_to))
    }
}

#[derive(Deserialize, ToSchema)]
pub struct EditMessage {
    pub body: String,
    /// Idempotency key, at most 64 characters: a repeat returns the original ack.
    pub client_id: String,
}

#[derive(Deserialize, ToSchema)]
pub struct MarkRead {
    /// Everything up to this seq is read (clamped to the room's newest).
    pub seq: i64,
}

/// The caller's read cursor after a `POST /rooms/{id}/read`.
#[derive(Serialize, ToSchema)]
pub struct ReadResponse {
    pub room: uuid::Uuid,
    pub seq: i64,
}

/// A member's read cursor.
#[derive(Serialize, ToSchema)]
pub struct ReceiptResponse {
    pub user: uuid::Uuid,
    pub seq: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptsResponse {
    pub items: Vec<ReceiptResponse>,
}

/// The caller's position in one room.
#[derive(Serialize, ToSchema)]
pub struct RoomUnreadResponse {
    pub room: uuid::Uuid,
    pub unread: i64,
    pub read_seq: i64,
    pub last_seq: i64,
}

impl From<&RoomUnread> for RoomUnreadResponse {
    fn from(p: &RoomUnread) -> Self {
        Self {
            room: p.room.0,
            unread: p.unread,
            read_seq: p.read_seq.0,
            last_seq: p.last_seq.0,
        }
    }
}

/// The badge: every room of the caller's with something unread.
#[derive(Serialize, ToSchema)]
pub struct UnreadResponse {
    pub total: i64,
    pub items: Vec<RoomUnreadResponse>,
}

#[derive(Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Messages with `seq` greater than this, oldest first.
    pub after_seq: Option<i64>,
    /// Messages with `seq` less than this (newest first page when `after_seq` is absent).
    pub before_seq: Option<i64>,
    /// Only the replies to the message with this seq (a thread).
    pub reply_to: Option<i64>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

impl HistoryQuery {
    /// The store's query (overfetching one to tell whether more follow)
    /// and the page size asked for.
    pub fn parse(&self) -> Result<(store::HistoryQuery, Limit), ApiError> {
        let mut fields = Fields::default();
        let mut seq =
            |name, value: Option<i64>| value.and_then(|s| fields.check(name, Seq::parse(s)));
        let (after, before, reply_to) = (
            seq("after_seq", self.after_seq),
            seq("before_seq", self.before_seq),
            seq("reply_to", self.reply_to),
        );
        let limit = fields.check("limit", Limit::parse(self.limit));
        let limit = fields.finish(limit)?;
        let query = store::HistoryQuery {
            after,
            before,
            reply_to,
            limit: limit.overfetch().get(),
        };
        Ok((query, limit))
    }
}

/// A path's message seq: a positive integer.
fn parse_seq(raw: &str) -> Result<Seq, ApiError> {
    match raw.parse::<i64>() {
        Ok(seq) if seq >= 1 => Ok(Seq(seq)),
        _ => Err(ApiError::bad_request(
            "seq must be the seq of a message (1 or more)",
        )),
    }
}

/// A key for an event REST asks for without one: a `DELETE` repeated by
/// the same caller answers with the first one's ack; reactions are
/// idempotent in effect (`on` twice is one reaction).
fn derived_client_id(action: &Action) -> ClientId {
    let key = match action {
        Action::Delete { target } => format!("delete:{target}"),
        _ => format!("rest:{}", uuid::Uuid::now_v7().simple()),
    };
    // At most 27 ASCII characters: always a valid key.
    ClientId::parse(&key).unwrap_or_else(|_| unreachable!("derived keys are valid"))
}

/// Stores `action` by the caller in the room of `access` (already checked
/// readable), if they may publish it there, and answers with its ack:
/// `201` for a new message, `200` otherwise.
pub(crate) async fn submit(
    state: &Services,
    caller: &AuthUser,
    access: &rooms::Access,
    client_id: ClientId,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    access.may_publish(&action)?;
    let is_message = matches!(action, Action::Message { .. });
    let draft = Draft {
        room: access.room.id,
        author: caller.id,
        client_id,
        action,
        role: access.role,
    };
    let outcome = publish::submit(state, draft, tracing::Span::current()).await?;
    publish::notify_new(state, &outcome, Some(&access.room), &caller.name).await;
    let mut response = if outcome.is_new() && is_message {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(AckResponse::new(&outcome)))
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}/messages", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), HistoryQuery),
    responses((status = 200, description = "messages (only the `message` kind) in their current state, in ascending seq. With `after_seq`: the oldest page after it, and `next_cursor` is the next `after_seq`. Otherwise: the newest page before `before_seq` (or the newest overall), and `next_cursor` is the next `before_seq` going back. With `reply_to`: only that message's replies.", body = Page<MessageResponse>),
              (status = 400, body = crate::http::error::Problem),
              (status = 403, body = crate::http::error::Problem), (status = 404, body = crate::http::error::Problem)))]
pub async fn history(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let (query, limit) = query.parse()?;
    rooms::readable(&state, id, caller.id).await?;
    let rows = state.store.history(id, caller.id, query).await?;
    let mut items: Vec<MessageResponse> = rows
        .into_iter()
        .map(|m| MessageResponse::new(id, m))
        .collect();
    let page = if query.after.is_some() {
        Page::from_overfetch(items, limit.get(), |m: &MessageResponse| m.seq.to_string())
    } else {
        // Overfetched at the old end: drop the oldest, and page back from the oldest kept.
        let more = items.len() > limit.get() as usize;
        if more {
            items.remove(0);
        }
        let next_cursor = more
            .then(|| items.first().map(|m| m.seq.to_string()))
            .flatten();
        Page { items, next_cursor }
    };
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = PostMessage,
    responses((status = 201, description = "stored (durable)", body = AckResponse),
              (status = 200, description = "this client_id was already stored: the original ack", body = AckResponse),
              (status = 400, body = crate::http::error::Problem),
              (status = 403, body = crate::http::error::Problem),
              (status = 404, description = "unknown room, or `reply_to` is not a message of this room", body = crate::http::error::Problem),
              (status = 503, body = crate::http::error::Problem)))]
pub async fn post_message(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<PostMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let (text, client_id, reply_to) = body.parse()?;
    let access = rooms::readable(&state, id, caller.id).await?;
    let action = Action::Message {
        body: text,
        reply_to,
    };
    submit(&state, &caller, &access, client_id, action).await
}

#[utoipa::path(patch, path = "/api/v1/rooms/{id}/messages/{seq}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("seq" = i64, Path)), request_body = EditMessage,
    responses((status = 200, description = "the edit is stored (or this client_id was: the original ack)", body = AckResponse),
              (status = 400, body = crate::http::error::Problem),
              (status = 403, description = "not the author", body = crate::http::error::Problem),
              (status = 404, description = "no such room, or no message with that seq", body = crate::http::error::Problem),
              (status = 409, description = "the message was deleted", body = crate::http::error::Problem),
              (status = 503, body = crate::http::error::Problem)))]
pub async fn edit(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String)>,
    body: web::Json<EditMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path.0)?;
    let target = parse_seq(&path.1)?;
    let mut fields = Fields::default();
    let text = fields.check("body", MessageBody::parse(&body.body));
    let client_id = fields.check("client_id", ClientId::parse(&body.client_id));
    let (text, client_id) = fields.finish((text, client_id))?;
    let access = rooms::readable(&state, id, caller.id).await?;
    let action = Action::Edit { target, body: text };
    submit(&state, &caller, &access, client_id, action).await
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{seq}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("seq" = i64, Path)),
    responses((status = 200, description = "deleted: the body is erased, the seq stays as a tombstone (a repeat by the same caller answers the original ack)", body = AckResponse),
              (status = 400, body = crate::http::error::Problem),
              (status = 403, description = "not the author, the room owner or an admin", body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem),
              (status = 409, description = "already deleted (by someone else)", body = crate::http::error::Problem),
              (status = 503, body = crate::http::error::Problem)))]
pub async fn delete(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path.0)?;
    let target = parse_seq(&path.1)?;
    let access = rooms::readable(&state, id, caller.id).await?;
    let action = Action::Delete { target };
    submit(&state, &caller, &access, derived_client_id(&action), action).await
}

/// Sets (`on`) or clears the caller's emoji on a message.
async fn react(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String, String)>,
    on: bool,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path.0)?;
    let target = parse_seq(&path.1)?;
    let mut fields = Fields::default();
    let emoji = fields.check("emoji", Emoji::parse(&path.2));
    let emoji = fields.finish(emoji)?;
    let access = rooms::readable(&state, id, caller.id).await?;
    let action = Action::React { target, emoji, on };
    submit(&state, &caller, &access, derived_client_id(&action), action).await
}

#[utoipa::path(put, path = "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("seq" = i64, Path), ("emoji" = String, Path, description = "1 to 32 characters, percent-encoded")),
    responses((status = 200, description = "the caller now holds this reaction (again: still one)", body = AckResponse),
              (status = 400, body = crate::http::error::Problem), (status = 403, body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem),
              (status = 409, description = "the message was deleted", body = crate::http::error::Problem),
              (status = 503, body = crate::http::error::Problem)))]
pub async fn react_on(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    react(state, caller, path, true).await
}

#[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("seq" = i64, Path), ("emoji" = String, Path, description = "1 to 32 characters, percent-encoded")),
    responses((status = 200, description = "the caller no longer holds this reaction", body = AckResponse),
              (status = 400, body = crate::http::error::Problem), (status = 403, body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem),
              (status = 409, description = "the message was deleted", body = crate::http::error::Problem),
              (status = 503, body = crate::http::error::Problem)))]
pub async fn react_off(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    react(state, caller, path, false).await
}

#[utoipa::path(post, path = "/api/v1/rooms/{id}/read", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = MarkRead,
    responses((status = 200, description = "the caller's cursor now (it never moves back); every session of the caller gets a `read` frame", body = ReadResponse),
              (status = 400, body = crate::http::error::Problem), (status = 403, body = crate::http::error::Problem),
              (status = 404, body = crate::http::error::Problem), (status = 503, body = crate::http::error::Problem)))]
pub async fn read(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
    body: web::Json<MarkRead>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let mut fields = Fields::default();
    let seq = fields.check("seq", Seq::parse(body.seq));
    let seq = fields.finish(seq)?;
    let room = rooms::readable(&state, id, caller.id).await?.room;
    let cursor = read_state::mark_read(&state, &room, caller.id, seq).await?;
    Ok(HttpResponse::Ok().json(ReadResponse {
        room: id.0,
        seq: cursor.0,
    }))
}

#[utoipa::path(get, path = "/api/v1/rooms/{id}/receipts", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "every current member's read cursor, by user id, in private and direct rooms; always empty in public rooms", body = ReceiptsResponse),
              (status = 403, body = crate::http::error::Problem), (status = 404, body = crate::http::error::Problem)))]
pub async fn receipts(
    state: web::Data<Services>,
    caller: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_room_id(&path)?;
    let room = rooms::readable(&state, id, caller.id).await?.room;
    let items = if read_state::shows_receipts(&room) {
        let cursors = state.store.read_cursors(id).await?;
        // A cursor outlives its member: someone removed from the room no
        // longer shows in it.
        let members = state.store.members(id).await?;
        cursors
            .iter()
            .filter(|c| members.iter().any(|m| m.user == c.user))
            .map(|c| ReceiptResponse {
                user: c.user.0,
                seq: c.seq.0,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(HttpResponse::Ok().json(ReceiptsResponse { items }))
}

#[utoipa::path(get, path = "/api/v1/rooms/unread", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, description = "the rooms the caller is a member of, and public rooms they have read in, with something unread, and the total (the badge)", body = UnreadResponse)))]
pub async fn unread(
    state: web::Data<Services>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let positions = state.store.unread_rooms(caller.id).await?;
    Ok(HttpResponse::Ok().json(UnreadResponse {
        total: positions.iter().map(|p| p.unread).sum(),
        items: positions.iter().map(RoomUnreadResponse::from).collect(),
    }))
}
