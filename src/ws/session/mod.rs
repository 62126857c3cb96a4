//! One WebSocket connection as an actor.
//!
//! The actor reads client frames (a stream added to its context), turns
//! them into commands, and writes replies to its bounded [`Outbox`]; rooms
//! and the notifier write to the same outbox. It enforces the per-connection
//! limits: frame rate (GCRA, `PARLEY_WS_MSGS_PER_S`; sustained abuse closes
//! with 1008), frame size (1009), heartbeat (three silent intervals close).
//!
//! Publishes keep their order: a room's access is checked once (then cached,
//! see [`access`]) while the actor waits, so publishes reach the room's
//! writer in the order the client sent them.

mod access;
mod budget;
pub mod events;

pub use access::ACCESS_TTL;

use self::access::AccessCache;
use self::budget::{Admission, FrameBudget};
use super::caps::Slot;
use super::linger::Linger;
use super::protocol::{self, ClientFrame, Envelope, ServerFrame};
use super::quota::PublishQuota;
use super::quota::Verdict;
use super::socket::Incoming;
use crate::auth::Claims;
use crate::domain::Code;
use crate::http::error::ApiError;
use crate::service::Services;
use crate::service::publish::{self, Draft};
use crate::service::{read_state, rooms};
use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, StreamHandler, WrapFuture,
};
use actix_http::ws::ProtocolError;
use parley_actors::hub::messages::{Connect, Control, Credential, Disconnect};
use parley_actors::ids::{ClientId, RoomId, Seq, SessionId, UserId};
use parley_actors::model::Action;
use parley_actors::notify::messages::{Register, Unregister};
use parley_actors::outbox::{CloseReason, Outbox, Outgoing};
use parley_actors::room::messages::{Subscribe, Typing, Unsubscribe};
use parley_actors::writer::PublishError;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct WsSession {
    id: SessionId,
    user: UserId,
    username: String,
    outbox: Outbox,
    state: Services,
    /// The user's publish quota over all their connections.
    quota: Arc<PublishQuota>,
    budget: FrameBudget,
    last_heard: Instant,
    rooms: HashSet<RoomId>,
    access: AccessCache,
    /// Publishes sent to a writer and not yet answered.
    in_flight: usize,
    /// Set by [`Control::Drain`]: close once `in_flight` reaches 0.
    draining: bool,
    /// When the access token that opened the connection expires (Unix s).
    expires_at: i64,
    /// The login the token that opened the connection belongs to: revoking
    /// it closes the connection ([`Control::SignedOut`]).
    credential: Credential,
    /// This connection's place under the per-user and per-IP caps, given
    /// back when the session ends (taken out then).
    slot: Option<Slot>,
    /// Set by the socket writer once it is writing a close frame: client
    /// frames are discarded from then.
    linger: Arc<Linger>,
}

impl WsSession {
    pub fn new(
        id: SessionId,
        claims: &Claims,
        outbox: Outbox,
        slot: Slot,
        linger: Arc<Linger>,
        state: Services,
        quota: Arc<PublishQuota>,
    ) -> Self {
        Self {
            id,
            user: claims.sub,
            username: claims.name.clone(),
            outbox,
            budget: FrameBudget::per_second(state.settings.rate.ws_msgs_per_s),
            state,
            quota,
            last_heard: Instant::now(),
            rooms: HashSet::new(),
            access: AccessCache::default(),
            in_flight: 0,
            draining: false,
            expires_at: claims.exp,
            credential: Credential {
                began_ms: claims.login_began_ms(),
                family: claims.sid,
            },
            slot: Some(slot),
            linger,
        }
    }

    fn send(&self, frame: Arc<str>) {
        let _ = self.outbox.text(frame);
    }

    fn error(&self, code: Code, message: &str, reference: Option<&str>) {
        self.send(ServerFrame::error(code, message, reference));
    }

    fn close(&self, ctx: &mut Context<Self>, reason: CloseReason, why: &str) {
        self.state
            .metrics
            .ws_closes
            .with_label_values(&[&protocol::close_code(reason).to_string()])
            .inc();
        let _ = self.outbox.push(Outgoing::close(reason, why));
        ctx.stop();
    }

    /// `false` (and an `error` frame) when the frame exceeds the rate.
    fn admit(&mut self, ctx: &mut Context<Self>, reference: Option<&str>) -> bool {
        let retry_after_ms = match self.budget.admit() {
            Admission::Admitted => return true,
            Admission::Refused { retry_after_ms } => retry_after_ms,
            Admission::Abusive => {
                self.state.metrics.ws_rate_limited.inc();
                tracing::info!(session = %self.id, "closing a connection that keeps exceeding its rate");
                self.close(ctx, CloseReason::Policy, "rate limit exceeded repeatedly");
                return false;
            }
        };
        self.state.metrics.ws_rate_limited.inc();
        self.send(
            ServerFrame::Error {
                code: Code::RateLimited.as_str(),
                message: "too many frames; this one was dropped",
                reference,
                retry_after_ms: Some(retry_after_ms),
            }
            .encode(),
        );
        false
    }

    fn handle_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let envelope = match protocol::parse(text) {
            Ok(envelope) => envelope,
            Err(e) => {
                self.state
                    .metrics
                    .ws_frames_in
                    .with_label_values(&["invalid"])
                    .inc();
                if self.admit(ctx, e.reference.as_deref()) {
                    self.error(Code::BadRequest, &e.message, e.reference.as_deref());
                }
                return;
            }
        };
        let kind = envelope.frame.kind();
        self.state
            .metrics
            .ws_frames_in
            .with_label_values(&[kind])
            .inc();
        if !self.admit(ctx, envelope.reference.as_deref()) {
            return;
        }
        self.dispatch(envelope, ctx);
    }

    fn dispatch(&mut self, Envelope { frame, reference }: Envelope, ctx: &mut Context<Self>) {
        let r = reference.as_deref();
        match frame {
            ClientFrame::Ping => self.send(ServerFrame::Pong { reference: r }.encode()),
            ClientFrame::Subscribe { room, since } => {
                let since = match since.map(Seq::parse).transpose() {
                    Ok(since) => since,
                    Err(e) => return self.error(Code::BadRequest, &format!("since {e}"), r),
                };
                self.with_room(&room, reference, ctx, move |act, room, reference, _| {
                    act.subscribe(room, since, reference)
                });
            }
            ClientFrame::Unsubscribe { room } => {
                let Ok(room) = RoomId::parse(&room) else {
                    return self.error(Code::BadRequest, "room must be a room id (UUID)", r);
                };
                if self.rooms.remove(&room)
                    && let Some(addr) = self.state.engine.rooms.get(room)
                {
                    addr.do_send(Unsubscribe {
                        session: self.id,
                        reference,
                        reply: true,
                    });
                } else {
                    self.send(
                        ServerFrame::Unsubscribed {
                            room,
                            reference: r,
                            reason: None,
                        }
                        .encode(),
                    );
                }
            }
            ClientFrame::Typing { room } => {
                self.with_room(&room, reference, ctx, |act, room, _, _| {
                    act.state.engine.rooms.get_or_start(room).do_send(Typing {
                        session: Some(act.id),
                        user: act.user,
                    });
                });
            }
            ClientFrame::Read { room, seq } => {
                let Ok(seq) = Seq::parse(seq) else {
                    return self.error(Code::BadRequest, "seq must be zero or positive", r);
                };
                self.with_room(&room, reference, ctx, move |act, room, reference, ctx| {
                    act.mark_read(room, seq, reference, ctx)
                });
            }
            event => {
                let (room, client_id, action) = match events::parse(event) {
                    Ok(parsed) => parsed,
                    Err(e) => return self.error(Code::BadRequest, &e, r),
                };
                self.within_quota(reference, ctx, move |act, reference, ctx| {
                    act.with_room(&room, reference, ctx, move |act, room, reference, ctx| {
                        act.publish(room, client_id, action, reference, ctx)
                    });
                });
            }
        }
    }

    /// Runs `then` if the user's publish quota (all their connections, all
    /// instances) allows one more publish; answers `rate_limited` if not.
    /// Usually decided at once from a local lease; when a new lease is
    /// needed the actor waits for it, so publishes keep their order.
    fn within_quota(
        &mut self,
        reference: Option<String>,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, Option<String>, &mut Context<Self>) + 'static,
    ) {
        let decide = |act: &mut Self,
                      verdict,
                      reference: Option<String>,
                      ctx: &mut Context<Self>| {
            match verdict {
                Verdict::Refused { retry_after_ms } => act.over_quota(retry_after_ms, reference),
                Verdict::Allowed | Verdict::Lease => then(act, reference, ctx),
            }
        };
        match self.quota.check(self.user) {
            Verdict::Lease => {
                let (quota, user) = (self.quota.clone(), self.user);
                let lease = async move { quota.lease(user).await };
                ctx.wait(
                    lease
                        .into_actor(self)
                        .map(move |verdict, act, ctx| decide(act, verdict, reference, ctx)),
                );
            }
            verdict => decide(self, verdict, reference, ctx),
        }
    }

    fn over_quota(&mut self, retry_after_ms: u64, reference: Option<String>) {
        self.state
            .metrics
            .rate_limit_rejections
            .with_label_values(&["ws_user_publish"])
            .inc();
        self.send(
            ServerFrame::Error {
                code: Code::RateLimited.as_str(),
                message: "this user publishes too fast over all their connections; \
                          this publish was dropped",
                reference: reference.as_deref(),
                retry_after_ms: Some(retry_after_ms),
            }
            .encode(),
        );
    }

    /// Runs `then` once `user` is known to have access to `room`, checking
    /// (and waiting, to keep frame order) only when the cached answer is old.
    fn with_room(
        &mut self,
        room: &str,
        reference: Option<String>,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, RoomId, Option<String>, &mut Context<Self>) + 'static,
    ) {
        let Ok(room) = RoomId::parse(room) else {
            return self.error(
                Code::BadRequest,
                "room must be a room id (UUID)",
                reference.as_deref(),
            );
        };
        if self.access.is_fresh(room) {
            return then(self, room, reference, ctx);
        }
        let state = self.state.clone();
        let user = self.user;
        let check = async move { rooms::readable(&state, room, user).await };
        ctx.wait(
            check
                .into_actor(self)
                .map(move |outcome, act, ctx| match outcome {
                    Ok(access) => {
                        act.access.grant(access);
                        then(act, room, reference, ctx)
                    }
                    Err(refused) => {
                        let e = ApiError::from(refused);
                        act.error(e.code, &e.detail, reference.as_deref())
                    }
                }),
        );
    }

    fn subscribe(&mut self, room: RoomId, since: Option<Seq>, reference: Option<String>) {
        self.rooms.insert(room);
        self.state
            .engine
            .rooms
            .get_or_start(room)
            .do_send(Subscribe {
                session: self.id,
                user: self.user,
                outbox: self.outbox.clone(),
                since,
                reference,
            });
    }

    /// Moves the user's read cursor; `read` comes back to every session of
    /// theirs (this one included), so nothing else answers it.
    fn mark_read(
        &mut self,
        room: RoomId,
        seq: Seq,
        reference: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let Some(found) = self.access.room(room) else {
            return;
        };
        let (state, user) = (self.state.clone(), self.user);
        let moved = async move { read_state::mark_read(&state, &found, user, seq).await };
        ctx.spawn(moved.into_actor(self).map(move |outcome, act, _| {
            if let Err(refused) = outcome {
                let e = ApiError::from(refused);
                act.error(e.code, &e.detail, reference.as_deref());
            }
        }));
    }

    fn publish(
        &mut self,
        room: RoomId,
        client_id: ClientId,
        action: Action,
        reference: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        if self.draining {
            return self.send(publish_error(
                &PublishError::Unavailable,
                reference.as_deref(),
            ));
        }
        if let Err(refused) = rooms::may_publish(self.access.silenced(room), &action) {
            let e = ApiError::from(refused);
            return self.error(e.code, &e.detail, reference.as_deref());
        }
        let draft = Draft {
            room,
            author: self.user,
            client_id,
            action,
            role: self.access.role(room),
        };
        // Publish to durable answer, in one span. The writer's commit (and
        // its database spans) is linked to it rather than nested: one commit
        // serves many sessions' publishes.
        let span = tracing::info_span!(
            "ws_publish",
            otel.name = "ws publish",
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            messaging.operation = "publish",
            outcome = tracing::field::Empty,
        );
        // Enqueued now, in frame order; only the answer is awaited.
        let answer = publish::submit(&self.state, draft, span.clone());
        let answer = tracing::Instrument::instrument(answer, span);
        // The access check already loaded the room: notifications use it
        // instead of reading it again for every publish.
        let known_room = self.access.room(room);
        self.in_flight += 1;
        ctx.spawn(answer.into_actor(self).map(move |outcome, act, ctx| {
            act.in_flight -= 1;
            let frame = match &outcome {
                Ok(appended) => ServerFrame::ack(appended.event(), reference.as_deref()).encode(),
                Err(e) => publish_error(e, reference.as_deref()),
            };
            act.send(frame);
            if let Ok(appended) = &outcome {
                publish::spawn_notify(&act.state, appended, known_room, &act.username);
            }
            if act.draining && act.in_flight == 0 {
                act.finish_drain(ctx);
            }
        }));
    }

    /// Sends `reconnect` (each session its own jittered wait) and closes
    /// with 1012. Called once nothing this session published is unanswered.
    fn finish_drain(&mut self, ctx: &mut Context<Self>) {
        let retry_after_ms = 500 + u64::from(rand::random::<u16>()) % 2_500;
        self.send(
            ServerFrame::Reconnect {
                reason: "draining",
                retry_after_ms,
            }
            .encode(),
        );
        self.close(
            ctx,
            CloseReason::Restart,
            "server restarting; reconnect and resubscribe with since",
        );
    }
}

fn publish_error(e: &PublishError, reference: Option<&str>) -> Arc<str> {
    let (code, message) = publish::failure(e);
    // Only an outage is worth retrying; a refusal would be refused again.
    let retry_after_ms = (code == Code::Unavailable).then_some(1000);
    ServerFrame::Error {
        code: code.as_str(),
        message,
        reference,
        retry_after_ms,
    }
    .encode()
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state.metrics.ws_connections.inc();
        let engine = &self.state.engine;
        engine.hub.do_send(Connect {
            session: self.id,
            user: self.user,
            outbox: self.outbox.clone(),
            control: ctx.address().recipient(),
            credential: self.credential,
        });
        // The upgrade checked the token, but a revocation applied since
        // may have reached the hub before this session did.
        let Credential { began_ms, family } = self.credential;
        if self
            .state
            .revocations
            .refuses_login(self.user, began_ms, family)
        {
            ctx.notify(Control::SignedOut);
        }
        engine.notifier.do_send(Register {
            user: self.user,
            session: self.id,
            outbox: self.outbox.clone(),
        });
        if self.slot.as_ref().is_some_and(Slot::first_anywhere) {
            self.state.webhooks.online(self.user);
        }
        let heartbeat = Duration::from_millis(self.state.settings.ws.heartbeat_ms);
        self.send(
            ServerFrame::Hello {
                session: self.id,
                instance: &self.state.instance_id,
                user: self.user,
                heartbeat_ms: heartbeat.as_millis() as u64,
                protocol: crate::ws::protocol::PROTOCOL_VERSION,
            }
            .encode(),
        );
        // The token was checked once, at the upgrade; the connection lives
        // no longer than the token would.
        let left = self.expires_at - chrono::Utc::now().timestamp();
        ctx.run_later(Duration::from_secs(left.max(0) as u64), |act, ctx| {
            act.error(
                Code::Unauthorized,
                "the access token expired; reconnect with a fresh one",
                None,
            );
            act.close(ctx, CloseReason::Policy, "access token expired");
        });
        ctx.run_interval(heartbeat, move |act, ctx| {
            if act.last_heard.elapsed() > heartbeat * 3 {
                tracing::info!(session = %act.id, "closing a silent connection");
                act.close(ctx, CloseReason::Normal, "heartbeat timeout");
            } else {
                let _ = act.outbox.push(Outgoing::Ping);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // What is queued is all the socket will get: its writer may now
        // give up on a client that does not read.
        self.linger.end_session();
        self.state.metrics.ws_connections.dec();
        let engine = &self.state.engine;
        for room in self.rooms.drain() {
            if let Some(addr) = engine.rooms.get(room) {
                addr.do_send(Unsubscribe {
                    session: self.id,
                    reference: None,
                    reply: false,
                });
            }
        }
        engine.hub.do_send(Disconnect { session: self.id });
        engine.notifier.do_send(Unregister {
            user: self.user,
            session: self.id,
        });
        if let Some(slot) = self.slot.take() {
            let (webhooks, user) = (self.state.webhooks.clone(), self.user);
            actix::spawn(async move {
                if slot.release().await {
                    webhooks.offline(user);
                }
            });
        }
        let _ = self
            .outbox
            .push(Outgoing::close(CloseReason::Normal, String::new()));
    }
}

impl StreamHandler<Result<Incoming, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<Incoming, ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        if self.linger.is_lingering() {
            // The server is closing: read and discard until the socket
            // writer is done or the client answers (see `super::linger`).
            if matches!(item, Ok(Incoming::Close(_)) | Err(_)) {
                ctx.stop();
            }
            return;
        }
        match item {
            Ok(Incoming::Text(text)) => self.handle_text(&text, ctx),
            Ok(Incoming::Binary(_)) => {
                if self.admit(ctx, None) {
                    self.error(
                        Code::BadRequest,
                        "binary frames are not supported; send JSON text frames",
                        None,
                    );
                }
            }
            Ok(Incoming::Ping(payload)) => {
                let _ = self.outbox.push(Outgoing::Pong(payload.as_ref().into()));
            }
            Ok(Incoming::Pong(_)) => {}
            Ok(Incoming::Close(_)) => ctx.stop(),
            Err(ProtocolError::Overflow) => {
                let limit = self.state.settings.ws.max_frame_bytes;
                self.close(
                    ctx,
                    CloseReason::TooBig,
                    &format!("frames are limited to {limit} bytes"),
                );
            }
            Err(e) if super::socket::is_not_utf8(&e) => {
                self.close(ctx, CloseReason::InvalidText, "text messages must be UTF-8");
            }
            // The socket failed: nothing can reach the client any more.
            // (actix-http's frame errors come as `InvalidData`: 1002s.)
            Err(ProtocolError::Io(e)) if e.kind() != std::io::ErrorKind::InvalidData => {
                tracing::debug!(session = %self.id, error = %e, "WebSocket read failed");
                ctx.stop();
            }
            Err(e) => {
                tracing::debug!(session = %self.id, error = %e, "WebSocket protocol error");
                self.close(ctx, CloseReason::ProtocolViolation, &e.to_string());
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// From the socket writer: it wrote a close frame, or the socket failed.
/// Nothing more reaches the client, so the session ends.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct SocketClosed;

impl Handler<SocketClosed> for WsSession {
    type Result = ();

    fn handle(&mut self, _: SocketClosed, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Control> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Self::Context) {
        match msg {
            // The room already ended the subscription; forget the cached
            // access so the next publish is checked again (and refused).
            Control::Revoked { room } => {
                self.access.forget(room);
                self.rooms.remove(&room);
            }
            Control::Recheck { room: Some(room) } => self.access.forget(room),
            Control::Recheck { room: None } => self.access.forget_all(),
            Control::Drain => {
                self.draining = true;
                if self.in_flight == 0 {
                    self.finish_drain(ctx);
                }
            }
            Control::SignedOut => {
                self.state.metrics.revocation_closes.inc();
                self.error(
                    Code::Unauthorized,
                    "this login was signed out; log in again",
                    None,
                );
                self.close(ctx, CloseReason::Policy, "login revoked");
            }
        }
    }
}
