//! A room actor against a log that holds more than the bus delivered: what
//! a subscriber receives when the room fills a gap larger than its outbox.

use super::RoomDirectory;
use super::messages::{Committed, Eviction, Subscribe};
use crate::ids::{MessageId, RoomId, Seq, SessionId, UserId};
use crate::model::{Appended, EventData, NewEvent, Refusal, StoredEvent};
use crate::outbox::{Outbox, Outgoing};
use crate::ports::{ErrorKind, FrameEncoder, LocalBus, LogError, MessageLog, NoObserver};
use std::sync::Arc;
use std::time::Duration;

/// One room's committed events, `1..=n`. Its head reads 0, as if the room
/// started listening before any was published and the bus then lost them.
struct Backlog {
    events: Vec<StoredEvent>,
}

impl Backlog {
    fn new(room: RoomId, n: i64) -> Self {
        let author = UserId::new();
        let events = (1..=n)
            .map(|seq| StoredEvent {
                room,
                seq: Seq(seq),
                id: MessageId::new(),
                author,
                ts: chrono::Utc::now(),
                client_id: format!("c{seq}"),
                data: EventData::Message {
                    body: format!("message {seq}"),
                    reply_to: None,
                },
            })
            .collect();
        Self { events }
    }
}

#[async_trait::async_trait]
impl MessageLog for Backlog {
    async fn append(&self, _: &[NewEvent]) -> Result<Vec<Result<Appended, Refusal>>, LogError> {
        Err(LogError::Unavailable("read-only in this test".into()))
    }
    async fn range(
        &self,
        _: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError> {
        Ok(self
            .events
            .iter()
            .filter(|e| e.seq > after && before.is_none_or(|b| e.seq < b))
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn tail(&self, _: RoomId, _: Option<Seq>, _: u32) -> Result<Vec<StoredEvent>, LogError> {
        Ok(Vec::new())
    }
    async fn last_seq(&self, _: RoomId) -> Result<Seq, LogError> {
        Ok(Seq(0))
    }
}

/// An event's frame is its seq; every other frame is "other".
struct SeqFrames;

impl FrameEncoder for SeqFrames {
    fn event(&self, m: &StoredEvent) -> Arc<str> {
        m.seq.0.to_string().into()
    }
    fn receipt(&self, _: RoomId, _: UserId, _: Seq) -> Arc<str> {
        "other".into()
    }
    fn subscribed(&self, _: RoomId, _: Seq, _: Option<&str>) -> Arc<str> {
        "other".into()
    }
    fn unsubscribed(&self, _: RoomId, _: Option<&str>) -> Arc<str> {
        "other".into()
    }
    fn evicted(&self, _: RoomId, _: Eviction) -> Arc<str> {
        "other".into()
    }
    fn truncated(&self, _: RoomId, _: Seq) -> Arc<str> {
        "other".into()
    }
    fn typing(&self, _: RoomId, _: UserId) -> Arc<str> {
        "other".into()
    }
    fn presence(&self, _: RoomId, _: UserId, _: bool) -> Arc<str> {
        "other".into()
    }
    fn error(&self, _: ErrorKind, _: &str, _: Option<&str>) -> Arc<str> {
        "other".into()
    }
}

/// The seqs of the next `n` event frames; fails on a close or a dropped
/// subscription.
async fn read_events(inbox: &mut crate::outbox::Inbox, n: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), inbox.rx.recv()).await;
        match next.expect("the room stopped sending") {
            Some(Outgoing::Text(frame)) if &*frame == "other" => {}
            Some(Outgoing::Text(frame)) => seqs.push(frame.parse().unwrap()),
            Some(other) => panic!("expected frames, got {other:?} after {seqs:?}"),
            None => panic!("the room dropped the subscriber after {seqs:?}"),
        }
        assert!(
            !inbox.overflow.is_set(),
            "closed as a slow consumer after {seqs:?}"
        );
    }
    seqs
}

#[actix::test]
async fn a_gap_fill_larger_than_the_outbox_reaches_a_reader_whole_and_in_order() {
    let room = RoomId::new();
    let log = Arc::new(Backlog::new(room, 200));
    let directory = RoomDirectory::new(
        Vec::new(),
        log.clone(),
        Arc::new(SeqFrames),
        Arc::new(LocalBus),
        Arc::new(NoObserver),
    );
    let actor = directory.get_or_start(room);
    let (outbox, mut inbox) = Outbox::channel(16);
    actor
        .send(Subscribe {
            session: SessionId::new(),
            user: UserId::new(),
            outbox,
            since: None,
            reference: None,
        })
        .await
        .unwrap();
    let subscribed = inbox.rx.recv().await;
    assert!(matches!(subscribed, Some(Outgoing::Text(f)) if &*f == "other"));

    // Seq 200 arrives alone: 1..=199 come from the log in one fill, twelve
    // times what the outbox holds.
    let last = log.events.last().cloned().unwrap();
    actor
        .send(Committed {
            messages: vec![last].into(),
        })
        .await
        .unwrap();

    assert_eq!(
        read_events(&mut inbox, 200).await,
        (1..=200).collect::<Vec<_>>()
    );
}
