//! One room's live subscribers, and the order guarantee.
//!
//! Every `message` frame of this room reaches a session through this actor,
//! and the actor handles one message at a time, so per room and per session
//! frames leave in strictly increasing `seq`:
//!
//! - live: [`Committed`] batches arrive from the writer in commit order; each
//!   message is serialised once and pushed to every live subscriber whose
//!   last delivered `seq` is lower;
//! - catching up: a subscriber with `since` is first registered as
//!   replaying (live messages are buffered for it), then the actor pages the
//!   log from `since`, then flushes the buffer, skipping what the replay
//!   already sent. A message committed while the replay runs is in the
//!   buffer or in a later replay page, never lost, and never sent twice.

use super::messages::{Committed, Evict, Subscribe, SubscriberCount, Typing, Unsubscribe};
use crate::ids::{RoomId, Seq, SessionId, UserId};
use crate::model::StoredMessage;
use crate::outbox::{CloseCode, Outbox, Outgoing};
use crate::ports::{FrameEncoder, LogError, MessageLog};
use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Messages fetched per replay page.
const REPLAY_PAGE: u32 = 500;
/// Live messages held for one replaying subscriber before it is dropped as
/// a slow consumer (it recovers with `since`).
const REPLAY_BUFFER: usize = 10_000;
/// How long one replay may wait for the client to take its frames.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

enum Phase {
    /// Receiving the backlog; live messages wait here.
    Replaying(Vec<(Seq, Arc<str>)>),
    /// Live; `last` is the highest `seq` sent.
    Live,
}

struct Subscriber {
    user: UserId,
    outbox: Outbox,
    phase: Phase,
    last: Seq,
}

pub struct RoomActor {
    room: RoomId,
    subscribers: HashMap<SessionId, Subscriber>,
    log: Arc<dyn MessageLog>,
    encoder: Arc<dyn FrameEncoder>,
}

impl RoomActor {
    pub fn new(room: RoomId, log: Arc<dyn MessageLog>, encoder: Arc<dyn FrameEncoder>) -> Self {
        Self {
            room,
            subscribers: HashMap::new(),
            log,
            encoder,
        }
    }

    fn sessions_of(&self, user: UserId) -> usize {
        self.subscribers.values().filter(|s| s.user == user).count()
    }

    /// Sends a frame to every subscriber but `except`.
    fn broadcast(&mut self, frame: Arc<str>, except: Option<SessionId>) {
        let mut slow = Vec::new();
        for (id, sub) in &self.subscribers {
            if Some(*id) != except && sub.outbox.text(frame.clone()).is_err() {
                slow.push(*id);
            }
        }
        for id in slow {
            self.drop_subscriber(id);
        }
    }

    fn announce_presence(&mut self, user: UserId, online: bool) {
        let frame = self.encoder.presence(self.room, user, online);
        self.broadcast(frame, None);
    }

    /// Removes a subscriber whose outbox refused a frame (or closed).
    fn drop_subscriber(&mut self, session: SessionId) {
        if let Some(sub) = self.subscribers.remove(&session) {
            tracing::debug!(room = %self.room, %session, "dropped a slow or closed subscriber");
            if self.sessions_of(sub.user) == 0 {
                self.announce_presence(sub.user, false);
            }
        }
    }

    /// Ends replay: tells the session who else is here, sends the buffered
    /// live messages the replay did not cover, then goes live.
    fn finish_replay(&mut self, session: SessionId, replayed_to: Seq) {
        let present: std::collections::BTreeSet<UserId> =
            self.subscribers.values().map(|s| s.user).collect();
        let Some(sub) = self.subscribers.get_mut(&session) else {
            return;
        };
        for user in present.into_iter().filter(|u| *u != sub.user) {
            let _ = sub
                .outbox
                .text(self.encoder.presence(self.room, user, true));
        }
        let Phase::Replaying(buffer) = std::mem::replace(&mut sub.phase, Phase::Live) else {
            return;
        };
        // Exactly what the replay covered: a `since` beyond the head (a
        // client from before a restore, say) must not hide live messages.
        sub.last = replayed_to;
        let mut failed = false;
        for (seq, frame) in buffer {
            if seq > sub.last {
                failed |= sub.outbox.text(frame).is_err();
                sub.last = seq;
            }
        }
        if failed {
            self.drop_subscriber(session);
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Fan-out bursts are absorbed by subscribers' outboxes, not here.
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<Subscribe> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Self::Context) {
        let first_session = self.sessions_of(msg.user) == 0;
        // A re-subscribe restarts the stream from the new `since`.
        self.subscribers.remove(&msg.session);
        self.subscribers.insert(
            msg.session,
            Subscriber {
                user: msg.user,
                outbox: msg.outbox.clone(),
                phase: Phase::Replaying(Vec::new()),
                last: msg.since.unwrap_or_default(),
            },
        );
        if first_session {
            // The joining session learns who is here when its replay ends
            // (`finish_replay`), not from its own announcement.
            let frame = self.encoder.presence(self.room, msg.user, true);
            self.broadcast(frame, Some(msg.session));
        }
        let replay = replay(
            self.room,
            self.log.clone(),
            self.encoder.clone(),
            msg.outbox,
            msg.since,
            msg.reference,
        );
        let session = msg.session;
        ctx.spawn(
            replay
                .into_actor(self)
                .map(move |outcome, act, _| match outcome {
                    Ok(replayed_to) => act.finish_replay(session, replayed_to),
                    Err(why) => {
                        tracing::warn!(room = %act.room, %session, %why, "subscribe failed");
                        if let Some(sub) = act.subscribers.get(&session) {
                            let frame = act.encoder.error("unavailable", &why, None);
                            let _ = sub.outbox.text(frame);
                        }
                        act.subscribers.remove(&session);
                    }
                }),
        );
    }
}

/// Sends `subscribed`, then every message after `since`; returns the last
/// `seq` covered.
async fn replay(
    room: RoomId,
    log: Arc<dyn MessageLog>,
    encoder: Arc<dyn FrameEncoder>,
    outbox: Outbox,
    since: Option<Seq>,
    reference: Option<String>,
) -> Result<Seq, String> {
    let head = log.last_seq(room).await.map_err(|e| describe(&e))?;
    outbox
        .text(encoder.subscribed(room, head, reference.as_deref()))
        .map_err(|e| e.to_string())?;
    let Some(mut cursor) = since else {
        return Ok(head);
    };
    let send_all = async {
        while cursor < head {
            let page = log
                .range(room, cursor, Some(head.next()), REPLAY_PAGE)
                .await
                .map_err(|e| describe(&e))?;
            let Some(last) = page.last() else { break };
            let last_seq = last.seq;
            for message in &page {
                outbox
                    .send_waiting(encoder.message(message))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            cursor = last_seq;
        }
        Ok::<Seq, String>(head)
    };
    tokio::time::timeout(REPLAY_TIMEOUT, send_all)
        .await
        .map_err(|_| "the replay did not finish in time".to_owned())?
}

fn describe(e: &LogError) -> String {
    match e {
        LogError::RoomNotFound => "room not found".into(),
        LogError::Unavailable(_) => "history is unavailable; retry shortly".into(),
    }
}

impl Handler<Committed> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Self::Context) {
        let mut slow = Vec::new();
        for message in msg.messages.iter() {
            let frame = self.encoder.message(message);
            for (id, sub) in self.subscribers.iter_mut() {
                deliver(sub, message, &frame, *id, &mut slow);
            }
        }
        for id in slow {
            self.drop_subscriber(id);
        }
    }
}

fn deliver(
    sub: &mut Subscriber,
    message: &StoredMessage,
    frame: &Arc<str>,
    id: SessionId,
    slow: &mut Vec<SessionId>,
) {
    match &mut sub.phase {
        Phase::Replaying(buffer) => {
            if buffer.len() >= REPLAY_BUFFER {
                let _ = sub.outbox.push(Outgoing::Close(
                    CloseCode::TryAgainLater,
                    "replay buffer full".into(),
                ));
                slow.push(id);
            } else {
                buffer.push((message.seq, frame.clone()));
            }
        }
        Phase::Live if message.seq > sub.last => {
            if sub.outbox.text(frame.clone()).is_err() {
                slow.push(id);
            }
            sub.last = message.seq;
        }
        Phase::Live => {}
    }
}

impl Handler<Unsubscribe> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) {
        let Some(sub) = self.subscribers.remove(&msg.session) else {
            return;
        };
        if msg.reply {
            let _ = sub.outbox.text(
                self.encoder
                    .unsubscribed(self.room, msg.reference.as_deref()),
            );
        }
        if self.sessions_of(sub.user) == 0 {
            self.announce_presence(sub.user, false);
        }
    }
}

impl Handler<Typing> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Typing, _: &mut Self::Context) {
        let frame = self.encoder.typing(self.room, msg.user);
        self.broadcast(frame, Some(msg.session));
    }
}

impl Handler<Evict> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Evict, _: &mut Self::Context) {
        let evicted: Vec<SessionId> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.user == msg.user)
            .map(|(id, _)| *id)
            .collect();
        for session in &evicted {
            if let Some(sub) = self.subscribers.remove(session) {
                let _ = sub.outbox.text(self.encoder.unsubscribed(self.room, None));
            }
        }
        if !evicted.is_empty() {
            self.announce_presence(msg.user, false);
        }
    }
}

impl Handler<SubscriberCount> for RoomActor {
    type Result = usize;

    fn handle(&mut self, _: SubscriberCount, _: &mut Self::Context) -> usize {
        self.subscribers.len()
    }
}
