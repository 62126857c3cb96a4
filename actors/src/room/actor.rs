//! One room's live subscribers, and the order guarantee.
//!
//! Every `message` frame of this room reaches a session through this actor,
//! and the actor handles one message at a time, so per room and per session
//! frames leave in strictly increasing `seq`:
//!
//! - live: committed messages arrive from this instance's writers and from
//!   other instances (through the bus) in any order; the [`Sequencer`]
//!   releases them in `seq` order with no gap, filling gaps from the log;
//!   each is serialised once and pushed to every live subscriber whose last
//!   delivered `seq` is lower;
//! - the stream's start: when the actor starts it first subscribes to the
//!   room's bus channel, then reads the log's head; everything after that
//!   head is sequenced, so nothing published meanwhile is missed;
//! - catching up: a subscriber with `since` is first registered as
//!   replaying (live messages are buffered for it), then the actor pages the
//!   log from `since`, then flushes the buffer, skipping what the replay
//!   already sent. A message committed while the replay runs is in the
//!   buffer or in a later replay page, never lost, and never sent twice.
//!
//! A room nobody subscribes to for [`IDLE_STOP`] stops and leaves its bus
//! channel; the directory starts a fresh one on the next subscribe.

use super::directory::RoomDirectory;
use super::messages::{
    Committed, Evict, Receipt, RemotePresenceChanged, Resync, Subscribe, SubscriberCount, Typing,
    Unsubscribe,
};
use super::presence::{Flip, Presence};
use super::sequence::Sequencer;
use crate::ids::{RoomId, Seq, SessionId, UserId};
use crate::model::StoredEvent;
use crate::outbox::{CloseReason, Outbox, Outgoing};
use crate::ports::{Bus, BusEvent, BusScope, ErrorKind, FrameEncoder, LogError, MessageLog};
use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, SpawnHandle, WrapFuture,
};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Messages fetched per replay or gap-fill page.
const REPLAY_PAGE: u32 = 500;
/// Live messages held for one replaying subscriber before it is dropped as
/// a slow consumer (it recovers with `since`).
const REPLAY_BUFFER: usize = 10_000;
/// How long one replay may wait for the client to take its frames.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an early message waits for the ones before it to arrive on
/// their own before the gap is filled from the log. Pub/sub reorders by
/// milliseconds; a lost message (bus reconnect) costs this much latency.
const GAP_WAIT: Duration = Duration::from_millis(150);
/// How often the room refreshes its users in the shared presence registry
/// and reads the other instances' (see `src/bus`'s expiry, three times this).
pub const PRESENCE_TICK: Duration = Duration::from_secs(5);
/// How long a room with no subscribers lives on.
pub const IDLE_STOP: Duration = Duration::from_secs(60);

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
    /// Which subscribe of this session this is: a replay or a paced send
    /// that finishes after a re-subscribe must not touch the new stream.
    generation: u64,
}

/// A replay that waits for the room to know where its stream starts.
struct WaitingReplay {
    session: SessionId,
    since: Option<Seq>,
    reference: Option<String>,
}

/// Where the room stands on the start of its live stream.
enum Start {
    /// Not asked yet, or the last attempt failed.
    Unknown,
    /// Subscribing to the bus and reading the head; replays wait here.
    Loading(Vec<WaitingReplay>),
    /// Known: the sequencer has its start.
    Known,
}

pub struct RoomActor {
    room: RoomId,
    subscribers: HashMap<SessionId, Subscriber>,
    /// Numbers subscribes (see [`Subscriber::generation`]).
    subscribes: u64,
    presence: Presence,
    sequencer: Sequencer,
    start: Start,
    gap_timer: Option<SpawnHandle>,
    filling: bool,
    syncing_presence: bool,
    watching: bool,
    empty_since: Option<Instant>,
    log: Arc<dyn MessageLog>,
    encoder: Arc<dyn FrameEncoder>,
    bus: Arc<dyn Bus>,
    directory: Weak<RoomDirectory>,
}

/// Empty gap fills in a row after which a gap is declared unfillable and
/// skipped (logged): a message the log does not have cannot be waited for.
const MAX_EMPTY_FILLS: u32 = 20;

impl RoomActor {
    pub fn new(
        room: RoomId,
        log: Arc<dyn MessageLog>,
        encoder: Arc<dyn FrameEncoder>,
        bus: Arc<dyn Bus>,
        directory: Weak<RoomDirectory>,
    ) -> Self {
        Self {
            room,
            subscribers: HashMap::new(),
            subscribes: 0,
            presence: Presence::default(),
            sequencer: Sequencer::default(),
            start: Start::Unknown,
            gap_timer: None,
            filling: false,
            syncing_presence: false,
            watching: false,
            empty_since: Some(Instant::now()),
            log,
            encoder,
            bus,
            directory,
        }
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

    fn announce(&mut self, flip: Flip, except: Option<SessionId>) {
        let frame = self.encoder.presence(self.room, flip.user, flip.online);
        self.broadcast(frame, except);
    }

    fn publish_presence(&self, user: UserId, online: bool) {
        self.bus.publish(BusEvent::Presence {
            room: self.room,
            user,
            online,
        });
    }

    fn remove_subscriber(&mut self, session: SessionId) -> Option<Subscriber> {
        let sub = self.subscribers.remove(&session)?;
        let (last_local, flip) = self.presence.leave(sub.user);
        if last_local {
            self.publish_presence(sub.user, false);
        }
        if let Some(flip) = flip {
            self.announce(flip, None);
        }
        if self.subscribers.is_empty() {
            self.empty_since = Some(Instant::now());
        }
        Some(sub)
    }

    /// Removes a subscriber whose outbox refused a frame (or closed).
    fn drop_subscriber(&mut self, session: SessionId) {
        if self.remove_subscriber(session).is_some() {
            tracing::debug!(room = %self.room, %session, "dropped a slow or closed subscriber");
        }
    }

    /// Sends messages filled from the log, already in order, to every
    /// subscriber; those whose outbox could not take them all at once get
    /// them paced ([`Self::pace_bursts`]).
    fn fan_out_fill(&mut self, messages: &[StoredEvent], ctx: &mut Context<Self>) {
        let paced = self.pace_bursts(messages);
        self.fan_out(messages);
        for session in paced {
            self.go_live(session, ctx);
        }
    }

    /// Sends committed messages, already in order, to every subscriber. A
    /// live subscriber whose outbox overflows is a slow consumer.
    fn fan_out(&mut self, messages: &[StoredEvent]) {
        let started = Instant::now();
        let mut slow = Vec::new();
        let mut delivered = 0u64;
        for message in messages {
            let frame = self.encoder.event(message);
            for (id, sub) in self.subscribers.iter_mut() {
                delivered += u64::from(deliver(sub, message, &frame, *id, &mut slow));
            }
        }
        if !messages.is_empty()
            && let Some(directory) = self.directory.upgrade()
        {
            let observer = directory.observer();
            observer.delivered(delivered);
            observer.fanned_out(started.elapsed());
        }
        for id in slow {
            self.drop_subscriber(id);
        }
    }

    /// Switches the live subscribers that `messages` (a gap filled from the
    /// log after a bus outage, say) would overflow even with an empty
    /// outbox to a replay's buffered, paced path, and returns them: the
    /// burst is the server's doing, and closing a reader that keeps up as a
    /// slow consumer would only make it reconnect and replay the same
    /// messages. Live traffic is not paced: a reader that falls behind it
    /// is a slow consumer, closed at once.
    fn pace_bursts(&mut self, messages: &[StoredEvent]) -> Vec<SessionId> {
        let mut paced = Vec::new();
        for (id, sub) in self.subscribers.iter_mut() {
            let capacity = sub.outbox.capacity();
            if messages.len() <= capacity || !matches!(sub.phase, Phase::Live) {
                continue;
            }
            if messages.iter().filter(|m| m.seq > sub.last).count() > capacity {
                sub.phase = Phase::Replaying(Vec::new());
                paced.push(*id);
            }
        }
        paced
    }

    /// Hands a replaying subscriber the live messages buffered meanwhile,
    /// then makes it live. When its outbox cannot take them all now, they
    /// go out as the client reads (each round bounded by
    /// [`REPLAY_TIMEOUT`]) while newer messages buffer behind them, until
    /// what is left fits: a client that reads faster than the room talks
    /// catches up; one that does not is closed as a slow consumer, by the
    /// timeout or by the buffer's bound.
    fn go_live(&mut self, session: SessionId, ctx: &mut Context<Self>) {
        let Some(sub) = self.subscribers.get_mut(&session) else {
            return;
        };
        let Phase::Replaying(buffer) = &mut sub.phase else {
            return;
        };
        let last = sub.last;
        let due: Vec<(Seq, Arc<str>)> = std::mem::take(buffer)
            .into_iter()
            .filter(|(seq, _)| *seq > last)
            .collect();
        if due.len() <= sub.outbox.room() {
            let mut failed = false;
            for (seq, frame) in due {
                failed |= sub.outbox.text(frame).is_err();
                sub.last = seq;
            }
            sub.phase = Phase::Live;
            if failed {
                self.drop_subscriber(session);
            }
            return;
        }
        if let Some((seq, _)) = due.last() {
            sub.last = *seq;
        }
        let (outbox, generation) = (sub.outbox.clone(), sub.generation);
        let send = async move {
            let paced = async {
                for (_, frame) in due {
                    outbox.send_waiting(frame).await?;
                }
                Ok::<(), crate::outbox::PushError>(())
            };
            matches!(
                tokio::time::timeout(REPLAY_TIMEOUT, paced).await,
                Ok(Ok(()))
            )
        };
        ctx.spawn(send.into_actor(self).map(move |sent, act, ctx| {
            if !act.is_current(session, generation) {
                return;
            }
            if sent {
                act.go_live(session, ctx);
            } else {
                if let Some(sub) = act.subscribers.get(&session) {
                    let _ = sub.outbox.push(Outgoing::close(
                        CloseReason::SlowConsumer,
                        "did not keep up with the room",
                    ));
                }
                act.drop_subscriber(session);
            }
        }));
    }

    /// Whether `session`'s subscription is still the one numbered `generation`.
    fn is_current(&self, session: SessionId, generation: u64) -> bool {
        self.subscribers
            .get(&session)
            .is_some_and(|sub| sub.generation == generation)
    }

    /// Subscribes to the room's bus channel, then reads where the log ends:
    /// the live stream starts right after it.
    fn load_start(&mut self, ctx: &mut Context<Self>) {
        let watch = !self.watching;
        self.watching = true;
        let (room, bus, log) = (self.room, self.bus.clone(), self.log.clone());
        let local = self.presence.local_users();
        let load = async move {
            if watch {
                bus.watch(BusScope::Room(room)).await;
            }
            let head = log.last_seq(room).await;
            let remote = bus.presence(room, local).await;
            (head, remote)
        };
        ctx.spawn(load.into_actor(self).map(|(head, remote), act, ctx| {
            let Start::Loading(waiting) = std::mem::replace(&mut act.start, Start::Unknown) else {
                return;
            };
            if let Some(snapshot) = remote {
                act.apply_snapshot(snapshot);
            }
            match head {
                Ok(head) => {
                    act.start = Start::Known;
                    let ready = act.sequencer.start_after(head);
                    act.fan_out(&ready);
                    act.check_gap(ctx);
                    for replay in waiting {
                        act.start_replay(replay, ctx);
                    }
                }
                Err(e) => {
                    for replay in waiting {
                        act.fail_subscribe(replay.session, &describe(&e));
                    }
                }
            }
        }));
    }

    fn start_replay(&mut self, replay: WaitingReplay, ctx: &mut Context<Self>) {
        let Some(sub) = self.subscribers.get(&replay.session) else {
            return; // left while waiting
        };
        let run = run_replay(
            self.room,
            self.log.clone(),
            self.encoder.clone(),
            sub.outbox.clone(),
            replay.since,
            replay.reference,
        );
        let (session, generation) = (replay.session, sub.generation);
        ctx.spawn(run.into_actor(self).map(move |outcome, act, ctx| {
            if !act.is_current(session, generation) {
                return; // re-subscribed meanwhile: a newer replay runs
            }
            match outcome {
                Ok(replayed_to) => act.finish_replay(session, replayed_to, ctx),
                Err(why) => act.fail_subscribe(session, &why),
            }
        }));
    }

    fn fail_subscribe(&mut self, session: SessionId, why: &str) {
        tracing::warn!(room = %self.room, %session, %why, "subscribe failed");
        if let Some(sub) = self.subscribers.get(&session) {
            let _ = sub
                .outbox
                .text(self.encoder.error(ErrorKind::Unavailable, why, None));
        }
        self.remove_subscriber(session);
    }

    /// Ends replay: tells the session who else is here, sends the buffered
    /// live messages the replay did not cover, then goes live.
    fn finish_replay(&mut self, session: SessionId, replayed_to: Seq, ctx: &mut Context<Self>) {
        let present = self.presence.everyone();
        let Some(sub) = self.subscribers.get_mut(&session) else {
            return;
        };
        for user in present.into_iter().filter(|u| *u != sub.user) {
            let _ = sub
                .outbox
                .text(self.encoder.presence(self.room, user, true));
        }
        // Exactly what the replay covered: a `since` beyond the head (a
        // client from before a restore, say) must not hide live messages.
        sub.last = replayed_to;
        self.go_live(session, ctx);
        // The log went further than the live stream: an event was committed
        // and never announced (its instance died in between). The other
        // subscribers get it from the log, not only this one.
        if self.sequencer.delivered().is_some_and(|d| replayed_to > d) {
            self.sequencer.expect_up_to(replayed_to);
            self.check_gap(ctx);
        }
    }

    /// Waits [`GAP_WAIT`] for a gap to close by itself, then fills it.
    fn check_gap(&mut self, ctx: &mut Context<Self>) {
        if self.sequencer.gap().is_none() {
            if let Some(timer) = self.gap_timer.take() {
                ctx.cancel_future(timer);
            }
            return;
        }
        if self.gap_timer.is_none() && !self.filling {
            self.gap_timer = Some(ctx.run_later(GAP_WAIT, |act, ctx| {
                act.gap_timer = None;
                act.fill_gap(ctx, 0);
            }));
        }
    }

    fn fill_gap(&mut self, ctx: &mut Context<Self>, empty_fills: u32) {
        let Some(gap) = self.sequencer.gap() else {
            return;
        };
        self.filling = true;
        let (room, log) = (self.room, self.log.clone());
        let fetch = async move { log.range(room, gap.after, gap.before, REPLAY_PAGE).await };
        ctx.spawn(fetch.into_actor(self).map(move |outcome, act, ctx| {
            act.filling = false;
            match outcome {
                Ok(found) if found.is_empty() => {
                    act.sequencer.fill_exhausted();
                    if gap.before.is_some() && act.sequencer.gap() == Some(gap) {
                        if empty_fills + 1 >= MAX_EMPTY_FILLS {
                            tracing::error!(room = %act.room, after = %gap.after, "the log lacks messages below a committed one; skipping the gap");
                            let ready = act.sequencer.skip_gap();
                            act.fan_out_fill(&ready, ctx);
                        } else {
                            act.gap_timer = Some(ctx.run_later(GAP_WAIT, move |act, ctx| {
                                act.gap_timer = None;
                                act.fill_gap(ctx, empty_fills + 1);
                            }));
                            return;
                        }
                    }
                }
                Ok(found) => {
                    tracing::debug!(room = %act.room, filled = found.len(), "filled a gap from the log");
                    let ready = act.sequencer.accept(found);
                    act.fan_out_fill(&ready, ctx);
                }
                Err(error) => {
                    tracing::warn!(room = %act.room, %error, "could not fill a gap; retrying");
                }
            }
            act.check_gap(ctx);
        }));
    }

    fn apply_snapshot(&mut self, snapshot: Vec<(String, UserId)>) {
        for flip in self.presence.replace_remote(snapshot) {
            self.announce(flip, None);
        }
    }

    /// Refreshes presence, and stops the room once idle long enough.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let idle = self.subscribers.is_empty()
            && self.empty_since.is_some_and(|t| t.elapsed() >= IDLE_STOP)
            && !matches!(self.start, Start::Loading(_));
        if idle {
            let addr = ctx.address();
            if let Some(directory) = self.directory.upgrade() {
                directory.remove_if_same(self.room, &addr);
            }
            ctx.stop();
            return;
        }
        if self.syncing_presence || !matches!(self.start, Start::Known) {
            return;
        }
        self.syncing_presence = true;
        let (room, bus) = (self.room, self.bus.clone());
        let local = self.presence.local_users();
        let sync = async move { bus.presence(room, local).await };
        ctx.spawn(sync.into_actor(self).map(|remote, act, _| {
            act.syncing_presence = false;
            if let Some(snapshot) = remote {
                act.apply_snapshot(snapshot);
            }
        }));
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Fan-out bursts are absorbed by subscribers' outboxes, not here.
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(PRESENCE_TICK, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if self.watching {
            self.bus.unwatch(BusScope::Room(self.room));
        }
        for user in self.presence.local_users() {
            self.publish_presence(user, false);
        }
    }
}

impl Handler<Subscribe> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Self::Context) {
        // A re-subscribe restarts the stream from the new `since`; the
        // user's presence does not change.
        let resubscribe = self.subscribers.contains_key(&msg.session);
        self.subscribes += 1;
        self.subscribers.insert(
            msg.session,
            Subscriber {
                user: msg.user,
                outbox: msg.outbox,
                phase: Phase::Replaying(Vec::new()),
                last: msg.since.unwrap_or_default(),
                generation: self.subscribes,
            },
        );
        self.empty_since = None;
        if !resubscribe {
            let (first_local, flip) = self.presence.join(msg.user);
            if first_local {
                self.publish_presence(msg.user, true);
            }
            // The joining session learns who is here when its replay ends
            // (`finish_replay`), not from its own announcement.
            if let Some(flip) = flip {
                self.announce(flip, Some(msg.session));
            }
        }
        let replay = WaitingReplay {
            session: msg.session,
            since: msg.since,
            reference: msg.reference,
        };
        match &mut self.start {
            Start::Known => self.start_replay(replay, ctx),
            Start::Loading(waiting) => waiting.push(replay),
            Start::Unknown => {
                self.start = Start::Loading(vec![replay]);
                self.load_start(ctx);
            }
        }
    }
}

/// Sends `subscribed`, then every message after `since` (after `truncated`
/// when retention purged some of them); returns the last `seq` covered.
async fn run_replay(
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
                .replay_page(room, cursor, Some(head.next()), REPLAY_PAGE)
                .await
                .map_err(|e| describe(&e))?;
            // Retention purged events after `cursor`: say so before what
            // follows, so the client never takes the hole for history.
            // Checked on every page, as a purge may run during the replay.
            if page.first_seq.0 > cursor.0 + 1 {
                outbox
                    .send_waiting(encoder.truncated(room, page.first_seq))
                    .await
                    .map_err(|e| e.to_string())?;
                cursor = Seq(page.first_seq.0 - 1);
            }
            let Some(last) = page.events.last() else {
                break;
            };
            let last_seq = last.seq;
            for message in &page.events {
                outbox
                    .send_waiting(encoder.event(message))
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
        LogError::Rejected(_) => "history could not be read".into(),
    }
}

impl Handler<Committed> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Self::Context) {
        // No stream yet means no subscriber: its start, read later from
        // the log, covers these.
        if matches!(self.start, Start::Unknown) {
            return;
        }
        if self.sequencer.continues(&msg.messages) {
            self.fan_out(&msg.messages);
            return;
        }
        let ready = self.sequencer.accept(msg.messages.iter().cloned());
        self.fan_out(&ready);
        self.check_gap(ctx);
    }
}

fn deliver(
    sub: &mut Subscriber,
    message: &StoredEvent,
    frame: &Arc<str>,
    id: SessionId,
    slow: &mut Vec<SessionId>,
) -> bool {
    match &mut sub.phase {
        Phase::Replaying(buffer) => {
            if buffer.len() >= REPLAY_BUFFER {
                let _ = sub.outbox.push(Outgoing::close(
                    CloseReason::SlowConsumer,
                    "replay buffer full",
                ));
                slow.push(id);
                false
            } else {
                buffer.push((message.seq, frame.clone()));
                true
            }
        }
        Phase::Live if message.seq > sub.last => {
            let handed = sub.outbox.text(frame.clone()).is_ok();
            if !handed {
                slow.push(id);
            }
            sub.last = message.seq;
            handed
        }
        Phase::Live => false,
    }
}

impl Handler<Unsubscribe> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) {
        let Some(sub) = self.remove_subscriber(msg.session) else {
            return;
        };
        if msg.reply {
            let _ = sub.outbox.text(
                self.encoder
                    .unsubscribed(self.room, msg.reference.as_deref()),
            );
        }
    }
}

impl Handler<Typing> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Typing, _: &mut Self::Context) {
        let frame = self.encoder.typing(self.room, msg.user);
        self.broadcast(frame, msg.session);
        if msg.session.is_some() {
            self.bus.publish(BusEvent::Typing {
                room: self.room,
                user: msg.user,
            });
        }
    }
}

impl Handler<Receipt> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Receipt, _: &mut Self::Context) {
        let frame = self.encoder.receipt(self.room, msg.user, msg.seq);
        // The reader's own sessions learn their cursor from `read` frames.
        for sub in self.subscribers.values().filter(|s| s.user != msg.user) {
            let _ = sub.outbox.text(frame.clone());
        }
    }
}

impl Handler<RemotePresenceChanged> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: RemotePresenceChanged, _: &mut Self::Context) {
        if let Some(flip) = self
            .presence
            .remote_event(&msg.instance, msg.user, msg.online)
        {
            self.announce(flip, None);
        }
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
        for session in evicted {
            if let Some(sub) = self.remove_subscriber(session) {
                let _ = sub.outbox.text(self.encoder.evicted(self.room, msg.reason));
            }
        }
    }
}

impl Handler<Resync> for RoomActor {
    type Result = ();

    fn handle(&mut self, _: Resync, ctx: &mut Self::Context) {
        if !matches!(self.start, Start::Known) {
            return;
        }
        let (room, log) = (self.room, self.log.clone());
        let head = async move { log.last_seq(room).await };
        ctx.spawn(head.into_actor(self).map(|head, act, ctx| {
            if let Ok(head) = head {
                act.sequencer.expect_up_to(head);
                if act.gap_timer.is_none() && !act.filling {
                    act.fill_gap(ctx, 0);
                }
            }
        }));
    }
}

impl Handler<SubscriberCount> for RoomActor {
    type Result = usize;

    fn handle(&mut self, _: SubscriberCount, _: &mut Self::Context) -> usize {
        self.subscribers.len()
    }
}
