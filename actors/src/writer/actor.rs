//! Group commit: while one batch commits, new publishes queue; when it
//! finishes, everything queued (up to [`MAX_BATCH`]) commits as the next
//! batch in one transaction. Under load batches grow and the cost of a
//! commit is shared; when idle a publish commits alone, at once.
//!
//! A batch is all or nothing, so one bad publish (a room deleted meanwhile,
//! data the store refuses) would fail everyone else's with it. When a batch
//! of several is refused for anything but an outage, its publishes go back
//! to the head of the queue and commit one by one: only the bad one fails.

use super::messages::{Publish, PublishError, WhenIdle};
use crate::ids::RoomId;
use crate::model::{Appended, NewEvent, Refusal, StoredEvent};
use crate::ports::{Bus, BusEvent, LogError, MessageLog, OpenWriterLog};
use crate::restart::Restarts;
use crate::room::RoomDirectory;
use crate::room::messages::Committed;
use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, ArbiterHandle, AsyncContext, Context, Handler,
    ResponseFuture, Supervised, WrapFuture,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The most publishes one transaction takes.
pub const MAX_BATCH: usize = 512;
/// Writers started on each arbiter.
pub const WRITERS_PER_ARBITER: usize = 4;
/// Publishes queued beyond this are refused as overloaded, not buffered.
pub const MAX_QUEUE: usize = 20_000;

type Reply = oneshot::Sender<Result<Appended, PublishError>>;

pub struct Writer {
    log: Arc<dyn MessageLog>,
    rooms: Arc<RoomDirectory>,
    bus: Arc<dyn Bus>,
    queue: VecDeque<(Publish, Reply)>,
    flushing: bool,
    idle_waiters: Vec<oneshot::Sender<()>>,
    /// How many publishes at the head of the queue must commit alone: a
    /// refused batch's, being told apart.
    solo: usize,
    restarts: Restarts,
}

impl Writer {
    pub fn new(log: Arc<dyn MessageLog>, rooms: Arc<RoomDirectory>, bus: Arc<dyn Bus>) -> Self {
        Self {
            log,
            rooms,
            bus,
            queue: VecDeque::new(),
            flushing: false,
            idle_waiters: Vec::new(),
            solo: 0,
            restarts: Restarts::default(),
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing {
            return;
        }
        if self.queue.is_empty() {
            for waiter in self.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
            return;
        }
        self.flushing = true;
        let take = if self.solo > 0 {
            self.solo -= 1;
            1
        } else {
            self.queue.len().min(MAX_BATCH)
        };
        let observer = self.rooms.observer();
        observer.queued(-(take as i64));
        observer.committed(take);
        // One commit serves many publishes: its span links to each of
        // theirs (a span has one parent), and the database spans nest in it.
        let span = tracing::info_span!("writer_commit", otel.name = "writer commit", batch = take);
        let (batch, replies): (Vec<_>, Vec<_>) = self
            .queue
            .drain(..take)
            .map(|(publish, reply)| {
                span.follows_from(&publish.span);
                (publish.message, reply)
            })
            .unzip();
        let batch: Arc<[NewEvent]> = batch.into();
        let log = self.log.clone();
        let committing = batch.clone();
        let commit =
            tracing::Instrument::instrument(async move { log.append(&committing).await }, span);
        // A task of its own, so that a panic in the log (a bug, say, in
        // decoding a row) fails this batch and this writer, which the
        // supervisor restarts, instead of the arbiter thread it runs on.
        ctx.spawn(actix::spawn(commit).into_actor(self).map(
            move |joined, act, ctx| {
                let panicked = joined.is_err();
                let outcome = joined.unwrap_or_else(|panic| {
                    tracing::error!(error = %panic, "a batch commit panicked; restarting the writer");
                    Err(LogError::Unavailable(format!("the commit panicked: {panic}")))
                });
                match outcome {
                    Err(e) if !e.is_outage() && replies.len() > 1 && !panicked => {
                        act.isolate(&e, &batch, replies)
                    }
                    outcome => act.complete(outcome, replies),
                }
                act.flushing = false;
                if panicked {
                    ctx.stop();
                } else {
                    act.flush(ctx);
                }
            },
        ));
    }

    /// Puts a refused batch's publishes back at the head of the queue, in
    /// order, to commit one at a time.
    fn isolate(&mut self, error: &LogError, batch: &[NewEvent], replies: Vec<Reply>) {
        tracing::warn!(%error, batch = replies.len(), "a batch was refused; committing its publishes one by one");
        self.rooms.observer().queued(replies.len() as i64);
        self.solo += replies.len();
        for (message, reply) in batch.iter().zip(replies).rev() {
            let publish = Publish {
                message: message.clone(),
                span: tracing::Span::none(),
            };
            self.queue.push_front((publish, reply));
        }
    }

    /// Acks every publish of a batch and hands new messages to their rooms.
    fn complete(
        &self,
        outcome: Result<Vec<Result<Appended, Refusal>>, LogError>,
        replies: Vec<Reply>,
    ) {
        let appended = match outcome {
            Ok(appended) => appended,
            Err(e) => {
                tracing::warn!(error = %e, batch = replies.len(), "batch commit failed");
                let error = match e {
                    LogError::RoomNotFound => PublishError::RoomNotFound,
                    LogError::Unavailable(_) => PublishError::Unavailable,
                    LogError::Rejected(_) => PublishError::Rejected,
                };
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
                return;
            }
        };
        // A duplicate is announced again, not only a new event: the retry
        // may be of an event whose first commit was never announced (its
        // instance died between commit and publish), and its announcement
        // is what brings live subscribers to it. Rooms ignore what they
        // have delivered, so announcing one twice costs a frame on the
        // bus, not a second delivery.
        let mut by_room: BTreeMap<RoomId, Vec<StoredEvent>> = BTreeMap::new();
        for item in &appended {
            if let Ok(Appended::New(m) | Appended::Duplicate(m)) = item {
                by_room.entry(m.room).or_default().push(m.clone());
            }
        }
        // Hand to the rooms before acking, so delivery is never later than
        // the ack by more than a hop. Per connection the two still race:
        // the room and the session enqueue from different actors, so a
        // publisher may read its ack before its event's frame (clients
        // must not rely on the order; the SDK's `markRead` does not).
        for (room, mut messages) in by_room {
            messages.sort_by_key(|m| m.seq);
            messages.dedup_by_key(|m| m.seq);
            let messages: Arc<[StoredEvent]> = messages.into();
            if let Some(addr) = self.rooms.get(room) {
                addr.do_send(Committed {
                    messages: messages.clone(),
                });
            }
            self.bus.publish(BusEvent::Committed { room, messages });
        }
        for (reply, item) in replies.into_iter().zip(appended) {
            let _ = reply.send(item.map_err(PublishError::Refused));
        }
    }
}

impl Actor for Writer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

/// A restarted writer has lost only its queue, whose publishers were told
/// (their reply channels closed): they retry with the same `client_id`.
/// With nothing queued it is idle, which a drain waiting for it must hear.
impl Supervised for Writer {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.rooms.observer().queued(-(self.queue.len() as i64));
        self.queue.clear();
        self.solo = 0;
        self.flushing = false;
        for waiter in self.idle_waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.restarts.pause(ctx, "writer");
    }
}

impl Handler<Publish> for Writer {
    type Result = ResponseFuture<Result<Appended, PublishError>>;

    fn handle(&mut self, msg: Publish, ctx: &mut Self::Context) -> Self::Result {
        if self.queue.len() >= MAX_QUEUE {
            return Box::pin(async { Err(PublishError::Overloaded) });
        }
        let (tx, rx) = oneshot::channel();
        self.queue.push_back((msg, tx));
        self.rooms.observer().queued(1);
        self.flush(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(PublishError::Unavailable)) })
    }
}

impl Handler<WhenIdle> for Writer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: WhenIdle, _: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if !self.flushing && self.queue.is_empty() {
            let _ = tx.send(());
        } else {
            self.idle_waiters.push(tx);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

/// The writers, a few per arbiter; a room always goes to the same one.
#[derive(Clone)]
pub struct WriterPool {
    writers: Arc<[Addr<Writer>]>,
}

impl WriterPool {
    pub fn start(
        arbiters: &[ArbiterHandle],
        open_log: &OpenWriterLog,
        rooms: Arc<RoomDirectory>,
        bus: Arc<dyn Bus>,
    ) -> Self {
        let writers: Vec<Addr<Writer>> = if arbiters.is_empty() {
            vec![Writer::new(open_log(), rooms, bus).start()]
        } else {
            // Several writers per arbiter: a writer waits on its commit (an
            // fsync), so more of them keep more transactions in flight, which
            // the database group-commits; the arbiter's thread is idle
            // meanwhile. Each arbiter's writers share one log of their own.
            // Writers are interleaved across arbiters, so that rooms hashed
            // to consecutive writers land on different threads.
            let logs: Vec<Arc<dyn MessageLog>> = arbiters.iter().map(|_| open_log()).collect();
            (0..arbiters.len() * WRITERS_PER_ARBITER)
                .map(|i| {
                    let arbiter = &arbiters[i % arbiters.len()];
                    let log = logs[i % arbiters.len()].clone();
                    let (rooms, bus) = (rooms.clone(), bus.clone());
                    actix::Supervisor::start_in_arbiter(arbiter, move |_| {
                        Writer::new(log, rooms, bus)
                    })
                })
                .collect()
        };
        Self {
            writers: writers.into(),
        }
    }

    pub fn for_room(&self, room: RoomId) -> &Addr<Writer> {
        let bytes = room.0.as_bytes();
        // The random tail of a UUIDv7 spreads rooms evenly.
        let i = bytes[15] as usize % self.writers.len();
        &self.writers[i]
    }

    /// Resolves once every writer is idle: all received publishes answered.
    pub async fn when_idle(&self) {
        let waits = self.writers.iter().map(|w| w.send(WhenIdle));
        for wait in waits {
            let _ = wait.await;
        }
    }

    /// Persists one publish through the room's writer.
    pub async fn publish(&self, publish: Publish) -> Result<Appended, PublishError> {
        let writer = self.for_room(publish.message.room);
        writer
            .send(publish)
            .await
            .unwrap_or(Err(PublishError::Unavailable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, MessageId, Seq, UserId};
    use crate::model::{EventData, MessageBody, NewEvent};
    use crate::ports::{ErrorKind, FrameEncoder, LocalBus, NoObserver};
    use std::sync::atomic::{AtomicI64, Ordering};

    /// A log that panics on the body "boom", as a bug in the store would,
    /// refuses any batch holding the body "refused", as PostgreSQL refuses a
    /// value it cannot store, and numbers everything else.
    #[derive(Default)]
    struct BuggyLog {
        last: AtomicI64,
    }

    #[async_trait::async_trait]
    impl MessageLog for BuggyLog {
        async fn append(
            &self,
            batch: &[NewEvent],
        ) -> Result<Vec<Result<Appended, Refusal>>, LogError> {
            let body = |m: &NewEvent| EventData::from_action(&m.action);
            assert!(batch.iter().all(|m| body(m).body() != Some("boom")), "boom");
            if batch.iter().any(|m| body(m).body() == Some("refused")) {
                return Err(LogError::Rejected("a value the log cannot hold".into()));
            }
            Ok(batch
                .iter()
                .map(|m| {
                    Ok(Appended::New(StoredEvent {
                        room: m.room,
                        seq: Seq(self.last.fetch_add(1, Ordering::SeqCst) + 1),
                        id: MessageId::new(),
                        author: m.author,
                        ts: chrono::Utc::now(),
                        client_id: m.client_id.as_str().to_owned(),
                        data: body(m),
                    }))
                })
                .collect())
        }
        async fn range(
            &self,
            _: RoomId,
            _: Seq,
            _: Option<Seq>,
            _: u32,
        ) -> Result<Vec<StoredEvent>, LogError> {
            Ok(Vec::new())
        }
        async fn tail(
            &self,
            _: RoomId,
            _: Option<Seq>,
            _: u32,
        ) -> Result<Vec<StoredEvent>, LogError> {
            Ok(Vec::new())
        }
        async fn last_seq(&self, _: RoomId) -> Result<Seq, LogError> {
            Ok(Seq(self.last.load(Ordering::SeqCst)))
        }
    }

    /// No room has subscribers here, so nothing is ever encoded.
    struct NoFrames;

    impl FrameEncoder for NoFrames {
        fn event(&self, _: &StoredEvent) -> Arc<str> {
            "".into()
        }
        fn receipt(&self, _: RoomId, _: UserId, _: Seq) -> Arc<str> {
            "".into()
        }
        fn subscribed(&self, _: RoomId, _: Seq, _: Option<&str>) -> Arc<str> {
            "".into()
        }
        fn unsubscribed(&self, _: RoomId, _: Option<&str>) -> Arc<str> {
            "".into()
        }
        fn evicted(&self, _: RoomId, _: crate::room::messages::Eviction) -> Arc<str> {
            "".into()
        }
        fn truncated(&self, _: RoomId, _: Seq) -> Arc<str> {
            "".into()
        }
        fn typing(&self, _: RoomId, _: UserId) -> Arc<str> {
            "".into()
        }
        fn presence(&self, _: RoomId, _: UserId, _: bool) -> Arc<str> {
            "".into()
        }
        fn error(&self, _: ErrorKind, _: &str, _: Option<&str>) -> Arc<str> {
            "".into()
        }
    }

    fn publish(body: &str, client_id: &str) -> Publish {
        Publish::new(NewEvent::message(
            RoomId::new(),
            UserId::new(),
            ClientId::parse(client_id).unwrap(),
            MessageBody::parse(body).unwrap(),
        ))
    }

    /// A writer on a [`BuggyLog`], with no subscribers and no other instance.
    fn buggy_writer() -> Writer {
        let log: Arc<dyn MessageLog> = Arc::new(BuggyLog::default());
        let bus: Arc<dyn Bus> = Arc::new(LocalBus);
        let rooms = RoomDirectory::new(
            vec![actix::Arbiter::current()],
            log.clone(),
            Arc::new(NoFrames),
            bus.clone(),
            Arc::new(NoObserver),
        );
        Writer::new(log, rooms, bus)
    }

    #[actix::test]
    async fn a_panicking_commit_fails_its_batch_and_the_writer_comes_back() {
        let writer = actix::Supervisor::start(|_| buggy_writer());

        let failed = writer.send(publish("boom", "c1")).await.unwrap();
        assert_eq!(failed, Err(PublishError::Unavailable));

        // The restarted writer commits, and a drain waiting on it returns.
        let next = writer.send(publish("hello", "c2")).await.unwrap();
        assert!(matches!(next, Ok(Appended::New(m)) if m.seq == Seq(1) && m.body() == "hello"));
        writer.send(WhenIdle).await.unwrap();
    }

    #[actix::test]
    async fn a_refused_publish_fails_alone_and_the_rest_of_its_batch_commits() {
        let writer = buggy_writer().start();

        // Sent together: the first commits alone, the rest queue behind it
        // and commit as one batch that the log refuses.
        let sends: Vec<_> = ["one", "two", "refused", "three"]
            .iter()
            .enumerate()
            .map(|(i, body)| writer.send(publish(body, &format!("c{i}"))))
            .collect();
        let mut outcomes = Vec::new();
        for send in sends {
            outcomes.push(send.await.unwrap());
        }

        assert_eq!(outcomes[2], Err(PublishError::Rejected));
        let acked: Vec<&str> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|a| a.event().body())
            .collect();
        assert_eq!(acked, ["one", "two", "three"]);
    }
}
