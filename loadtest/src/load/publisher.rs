//! A publisher connection: an open-loop sender at a fixed rate. Each tick
//! sends however many publishes are due since the publishing phase began
//! (so a late tick catches up instead of lowering the rate), cycling over
//! its rooms, and matches every `ack` to its send by `ref`.
//!
//! The body carries the send time (`{"t":<unix nanos>}`); the `client_id`
//! is unique to the run, publisher and message, so parley never treats a
//! publish as a retry.

use super::stats::{BATCH, Phase};
use super::task::{self, Ctx, Outcome};
use crate::wire::{ClientFrame, Frame, timestamp_body, unix_nanos};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
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
    pub token: Option<String>,
    pub run_id: String,
}

struct Pending {
    sent: Instant,
    in_window: bool,
    room: usize,
}

pub async fn run(ctx: Ctx, job: Assignment) -> Outcome {
    let ws = match task::establish(&ctx, job.conn, job.token.as_deref(), None).await {
        Ok((ws, _)) => ws,
        Err(e) => return Outcome::failed(e),
    };
    let (mut sink, mut stream) = ws.split();
    let mut outcome = Outcome::default();
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    let period = Duration::from_secs_f64(1.0 / job.per_second.max(1e-6));
    let mut ticks = tokio::time::interval(period.max(MIN_TICK));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut phase = ctx.phase.clone();
    let mut started: Option<Instant> = None;
    let mut sending = false;
    let mut scheduled: u64 = 0;
    loop {
        let now_phase = *phase.borrow_and_update();
        if now_phase == Phase::Stop {
            break;
        }
        if now_phase == Phase::Publish && started.is_none() {
            started = Some(Instant::now());
            sending = true;
        }
        if now_phase == Phase::Drain {
            sending = false;
        }
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            item = stream.next() => match item {
                Some(Ok(Message::Text(text))) => {
                    answer(&ctx, &text, &mut pending, &mut outcome, &mut batch, job.conn);
                }
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => {
                    outcome.ended_early = Some(task::ended(other));
                    break;
                }
            },
            _ = ticks.tick(), if sending => {
                let due = started.map_or(0, |s| (s.elapsed().as_secs_f64() * job.per_second) as u64);
                let burst = due.saturating_sub(scheduled).min(MAX_BURST);
                let mut sent_any = false;
                for _ in 0..burst {
                    let n = scheduled;
                    scheduled += 1;
                    if pending.len() >= MAX_IN_FLIGHT {
                        outcome.skipped += 1;
                        continue;
                    }
                    let (room, name) = &job.rooms[usize::try_from(n).unwrap_or(0) % job.rooms.len()];
                    let reference = n.to_string();
                    let client_id = format!("{}-{}-{n}", job.run_id, job.p);
                    let body = timestamp_body(unix_nanos());
                    let frame = ClientFrame::Publish { room: name, body: &body, client_id: &client_id, reference: &reference };
                    let Ok(text) = frame.encode() else { continue };
                    let sent = Instant::now();
                    if let Err(e) = sink.feed(Message::text(text)).await {
                        outcome.ended_early = Some(format!("send failed: {e}"));
                        break;
                    }
                    sent_any = true;
                    outcome.published += 1;
                    ctx.shared.in_flight.fetch_add(1, Ordering::AcqRel);
                    pending.insert(n, Pending { sent, in_window: ctx.shared.in_window(sent), room: *room });
                }
                if outcome.ended_early.is_some() {
                    break;
                }
                if sent_any && let Err(e) = sink.flush().await {
                    outcome.ended_early = Some(format!("send failed: {e}"));
                    break;
                }
            }
        }
    }
    ctx.shared.ack.record(job.conn, &mut batch);
    outcome.unanswered = pending.len() as u64;
    ctx.shared
        .in_flight
        .fetch_sub(pending.len() as i64, Ordering::AcqRel);
    if outcome.ended_early.is_none()
        && let Ok(mut ws) = sink.reunite(stream)
    {
        task::close(&mut ws).await;
    }
    outcome
}

/// Handles one frame from the server: an `ack` or `error` answering a
/// publish by its `ref`; anything else is ignored.
fn answer(
    ctx: &Ctx,
    text: &str,
    pending: &mut HashMap<u64, Pending>,
    outcome: &mut Outcome,
    batch: &mut Vec<u64>,
    conn: usize,
) {
    let Ok(frame) = Frame::parse(text) else {
        outcome.count_error(Some("unparseable_frame"));
        return;
    };
    let is_ack = match frame.kind.as_ref() {
        "ack" => true,
        "error" => {
            outcome.count_error(frame.code.as_deref());
            false
        }
        _ => return,
    };
    let Some(done) = frame
        .reference
        .as_ref()
        .and_then(|r| r.as_u64())
        .and_then(|r| pending.remove(&r))
    else {
        return;
    };
    ctx.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    if !is_ack {
        return;
    }
    outcome.acked += 1;
    if let Some(seq) = frame.seq {
        ctx.shared.last_acked[done.room].fetch_max(seq, Ordering::AcqRel);
    }
    if done.in_window {
        ctx.shared.acks_in_window.fetch_add(1, Ordering::Relaxed);
        batch.push(u64::try_from(done.sent.elapsed().as_micros()).unwrap_or(u64::MAX));
        if batch.len() >= BATCH {
            ctx.shared.ack.record(conn, batch);
        }
    }
}
