//! A publisher connection: an open-loop sender at a fixed rate. Each tick
//! sends however many publishes are due since the publishing phase began
//! (so a late tick catches up instead of lowering the rate), cycling over
//! its rooms, and matches every `ack` to its send by `ref`.
//!
//! The body carries the send time (`{"t":<unix nanos>}`); the `client_id`
//! is unique to the run, publisher and message, so parley never treats a
//! publish as a retry.

use super::connect::Ws;
use super::stats::{BATCH, Phase};
use super::task::{self, Ctx, Outcome};
use crate::wire::{ClientFrame, Frame, timestamp_body, unix_nanos};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

/// Unanswered publishes per publisher beyond which sends are skipped.
pub const MAX_IN_FLIGHT: usize = 100_000;
/// Publishes sent in one tick, at most.
const MAX_BURST: u64 = 10_000;
/// Shortest tick; higher rates send several publishes per tick.
const MIN_TICK: Duration = Duration::from_millis(1);

/// What publisher `p` publishes, and how fast.
pub struct Assignment {
    pub p: usize,
    /// Connection index (for the source address and histogram shard).
    pub conn: usize,
    /// `(room index, room name)` in turn.
    pub rooms: Vec<(usize, String)>,
    pub per_second: f64,
    /// Which share of its period this publisher's clock is shifted by
    /// (0 ≤ shift < 1): the publishers' clocks are spread over the period,
    /// so that the total rate arrives evenly rather than in bursts of
    /// every publisher at once.
    pub shift: f64,
    pub token: Option<String>,
    pub run_id: String,
}

struct Pending {
    sent: Instant,
    in_window: bool,
    room: usize,
}

type Sink = futures_util::stream::SplitSink<Ws, Message>;

/// One publisher's state while it runs.
struct Publisher {
    ctx: Ctx,
    job: Assignment,
    sink: Sink,
    /// Checked before each send, so nothing is sent once the drain began.
    gate: watch::Receiver<Phase>,
    pending: HashMap<u64, Pending>,
    outcome: Outcome,
    /// Ack latencies (µs) not yet in the shared histogram.
    batch: Vec<u64>,
    started: Option<Instant>,
    /// Publishes scheduled so far (sent or skipped).
    scheduled: u64,
}

pub async fn run(ctx: Ctx, job: Assignment) -> Outcome {
    let ws = match task::establish(&ctx, job.conn, job.token.as_deref(), None).await {
        Ok((ws, _)) => ws,
        Err(e) => return Outcome::failed(e),
    };
    let (sink, mut stream) = ws.split();
    let period = Duration::from_secs_f64(1.0 / job.per_second.max(1e-6));
    let period = period.max(MIN_TICK);
    let first = tokio::time::Instant::now() + period.mul_f64(job.shift.clamp(0.0, 1.0));
    let mut ticks = tokio::time::interval_at(first, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut phase = ctx.phase.clone();
    let mut me = Publisher {
        gate: ctx.phase.clone(),
        ctx,
        job,
        sink,
        pending: HashMap::new(),
        outcome: Outcome::default(),
        batch: Vec::with_capacity(BATCH),
        started: None,
        scheduled: 0,
    };
    loop {
        let now = *phase.borrow_and_update();
        if now == Phase::Stop {
            break;
        }
        if now == Phase::Publish && me.started.is_none() {
            me.started = Some(Instant::now());
        }
        let sending = now == Phase::Publish;
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            item = stream.next() => match item {
                Some(Ok(Message::Text(text))) => me.answer(&text),
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => {
                    me.outcome.ended_early = Some(task::ended(other));
                    break;
                }
            },
            _ = ticks.tick(), if sending => {
                if let Err(e) = me.send_due().await {
                    me.outcome.ended_early = Some(format!("send failed: {e}"));
                    break;
                }
            }
        }
    }
    me.finish(stream).await
}

impl Publisher {
    /// Sends the publishes due since publishing began, then flushes.
    async fn send_due(&mut self) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let due = self.started.map_or(0, |s| {
            (s.elapsed().as_secs_f64() * self.job.per_second) as u64
        });
        let burst = due.saturating_sub(self.scheduled).min(MAX_BURST);
        let mut sent_any = false;
        for _ in 0..burst {
            let n = self.scheduled;
            self.scheduled += 1;
            if self.pending.len() >= MAX_IN_FLIGHT {
                self.outcome.skipped += 1;
                continue;
            }
            // Counted before the phase check: the drain wait either sees
            // this publish in flight or it is never sent.
            self.ctx.shared.in_flight.fetch_add(1, Ordering::AcqRel);
            if *self.gate.borrow() != Phase::Publish {
                self.ctx.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                break;
            }
            let (room, name) =
                &self.job.rooms[usize::try_from(n).unwrap_or(0) % self.job.rooms.len()];
            let reference = n.to_string();
            let client_id = format!("{}-{}-{n}", self.job.run_id, self.job.p);
            let body = timestamp_body(unix_nanos());
            let frame = ClientFrame::Publish {
                room: name,
                body: &body,
                client_id: &client_id,
                reference: &reference,
            };
            let sent = Instant::now();
            let in_window = self.ctx.shared.in_window(sent);
            self.pending.insert(
                n,
                Pending {
                    sent,
                    in_window,
                    room: *room,
                },
            );
            self.outcome.published += 1;
            let text = frame.encode().unwrap_or_default();
            self.sink.feed(Message::text(text)).await?;
            sent_any = true;
        }
        if sent_any {
            self.sink.flush().await?;
        }
        Ok(())
    }

    /// Handles one frame from the server: an `ack` or `error` answering a
    /// publish by its `ref`; anything else is ignored.
    fn answer(&mut self, text: &str) {
        let Ok(frame) = Frame::parse(text) else {
            self.outcome.count_error(Some("unparseable_frame"));
            return;
        };
        let is_ack = match frame.kind.as_ref() {
            "ack" => true,
            "error" => {
                self.outcome.count_error(frame.code.as_deref());
                false
            }
            _ => return,
        };
        let Some(done) = frame
            .reference
            .as_ref()
            .and_then(|r| r.as_u64())
            .and_then(|r| self.pending.remove(&r))
        else {
            return;
        };
        let shared = &self.ctx.shared;
        if is_ack {
            self.outcome.acked += 1;
            // Before `in_flight` drops: the drain wait must see the new seq.
            if let Some(seq) = frame.seq {
                shared.last_acked[done.room].fetch_max(seq, Ordering::AcqRel);
            }
            if done.in_window {
                shared.acks_in_window.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(done.sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.batch.push(micros);
                if self.batch.len() >= BATCH {
                    shared.ack.record(self.job.conn, &mut self.batch);
                }
            }
        }
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Flushes the latencies, gives up on what is unanswered, closes.
    async fn finish(mut self, stream: futures_util::stream::SplitStream<Ws>) -> Outcome {
        self.ctx.shared.ack.record(self.job.conn, &mut self.batch);
        self.outcome.unanswered = self.pending.len() as u64;
        self.ctx
            .shared
            .in_flight
            .fetch_sub(self.pending.len() as i64, Ordering::AcqRel);
        if self.outcome.ended_early.is_none()
            && let Ok(mut ws) = self.sink.reunite(stream)
        {
            task::close(&mut ws).await;
        }
        self.outcome
    }
}
