//! A subscriber connection: joins one room, then reads until the run
//! stops, checking every `message` seq and measuring end-to-end latency
//! from the send time the publisher put in the body.

use super::seq::SeqTracker;
use super::stats::{BATCH, Phase};
use super::task::{self, Ctx, Outcome};
use crate::wire::{Frame, body_timestamp, unix_nanos};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Subscriber `i` of room `room_index` (named `room`), for the whole run.
pub async fn run(
    ctx: Ctx,
    i: usize,
    room_index: usize,
    room: String,
    token: Option<String>,
) -> Outcome {
    let (mut ws, seq) = match task::establish(&ctx, i, token.as_deref(), Some(&room)).await {
        Ok(pair) => pair,
        Err(e) => return Outcome::failed(e),
    };
    let subscribed = seq.unwrap_or(0);
    let progress = &ctx.shared.progress[i];
    progress.store(subscribed, Ordering::Release);
    let mut reader = Reader {
        ctx: &ctx,
        i,
        room: &room,
        tracker: SeqTracker::new(subscribed),
        outcome: Outcome::default(),
        batch: Vec::with_capacity(BATCH),
    };
    let mut phase = ctx.phase.clone();
    loop {
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Stop {
                    break;
                }
            }
            item = ws.next() => match item {
                Some(Ok(Message::Text(text))) => reader.handle(&text),
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => {
                    reader.outcome.ended_early = Some(task::ended(other));
                    break;
                }
            },
        }
    }
    progress.store(i64::MAX, Ordering::Release);
    ctx.shared.end_to_end.record(i, &mut reader.batch);
    if reader.outcome.ended_early.is_none() {
        task::close(&mut ws).await;
    }
    let Reader {
        mut outcome,
        tracker,
        ..
    } = reader;
    outcome.subscription = Some((room_index, tracker));
    outcome
}

struct Reader<'a> {
    ctx: &'a Ctx,
    i: usize,
    room: &'a str,
    tracker: SeqTracker,
    outcome: Outcome,
    /// End-to-end latencies (µs) not yet in the shared histogram.
    batch: Vec<u64>,
}

impl Reader<'_> {
    fn handle(&mut self, text: &str) {
        let Ok(frame) = Frame::parse(text) else {
            self.outcome.count_error(Some("unparseable_frame"));
            return;
        };
        match frame.kind.as_ref() {
            "message" if frame.room.as_deref() == Some(self.room) => self.message(&frame),
            "error" => self.outcome.count_error(frame.code.as_deref()),
            _ => {} // presence, typing, notifications: not measured
        }
    }

    fn message(&mut self, frame: &Frame<'_>) {
        let received_at = unix_nanos();
        self.outcome.deliveries += 1;
        if let Some(seq) = frame.seq {
            self.tracker.record(seq);
            self.ctx.shared.progress[self.i].store(self.tracker.max_seen(), Ordering::Release);
        }
        if !self.ctx.shared.in_window(Instant::now()) {
            return;
        }
        self.outcome.deliveries_in_window += 1;
        if let Some(sent) = frame.body.as_deref().and_then(body_timestamp) {
            self.batch.push(received_at.saturating_sub(sent) / 1000);
            if self.batch.len() >= BATCH {
                self.ctx.shared.end_to_end.record(self.i, &mut self.batch);
            }
        }
    }
}
