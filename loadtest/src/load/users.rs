//! The `users` scenario: what N people online at once cost the server.
//!
//! Each of N users holds one WebSocket subscribed to `--rooms-per-user`
//! rooms, publishes one message every `--publish-every-s` (to its rooms in
//! turn) and reads a page of history over REST every `--read-every-s`
//! (`GET /api/v1/rooms/{id}/messages?limit=50`), for `--duration-s`. Users
//! start their clocks at offsets spread evenly over the period, so the load
//! is steady rather than in waves. With the defaults and 10,000 users that is
//! about 333 durable publishes and 667 REST reads a second, with each
//! message delivered to the 30 subscribers of its room.
//!
//! It reports publish→ack, REST and end-to-end latency (p50 / p95 / p99),
//! every error, what each subscriber lost, saw twice or out of order, and,
//! every `--interval-s`, the server's RSS and that interval's p95s, so a
//! drift over the run shows.
//!
//! Every loop is bounded by the run's phases; every wait by a timeout.

use super::cli::{Args, Plan};
use super::connect::{self, Ws};
use super::seq::SeqTracker;
use super::setup::{self, Setup};
use super::stats::{BATCH, Latency, LatencySummary, Phase};
use super::task::{self, Ctx};
use super::{join_all, note, rss, wait_until};
use crate::wire::{ClientFrame, Frame, body_timestamp, timestamp_body, unix_nanos};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for one REST read.
const REST_TIMEOUT: Duration = Duration::from_secs(10);
/// Intervals kept for the time series (a 5-minute run at 30 s needs 10).
const MAX_INTERVALS: usize = 120;

/// The rooms user `i` subscribes to: `k` rooms spread evenly over all, so
/// each room gets the same number of subscribers.
pub fn rooms_of_user(i: usize, rooms: usize, k: usize) -> Vec<usize> {
    let k = k.clamp(1, rooms);
    let mut picked: Vec<usize> = (0..k).map(|j| (i + j * rooms / k) % rooms).collect();
    picked.dedup();
    picked
}

/// Where user `i` starts its period of `period`: spread evenly over users
/// (a fixed stride, so a rerun has the same shape).
fn offset(i: usize, users: usize, period: Duration) -> Duration {
    let slot = (i.wrapping_mul(7_919)) % users.max(1);
    period.mul_f64(slot as f64 / users.max(1) as f64)
}

/// Latencies over the whole window and per interval.
struct Series {
    total: Latency,
    intervals: Vec<Latency>,
}

impl Series {
    fn new(intervals: usize) -> anyhow::Result<Self> {
        Ok(Self {
            total: Latency::new()?,
            intervals: (0..intervals)
                .map(|_| Latency::new())
                .collect::<anyhow::Result<_>>()?,
        })
    }

    fn record(&self, task: usize, interval: Option<usize>, micros: u64) {
        let mut one = vec![micros];
        if let Some(series) = interval.and_then(|i| self.intervals.get(i)) {
            series.record(task, &mut one.clone());
        }
        self.total.record(task, &mut one);
    }
}

/// What every user task shares.
struct Shared {
    window: OnceSet,
    interval: Duration,
    ack: Series,
    rest: Series,
    end_to_end: Latency,
    /// Highest seq acked per room.
    last_acked: Vec<AtomicI64>,
    /// Highest seq each (user, room slot) received; `i64::MAX` once it ended.
    progress: Vec<AtomicI64>,
    in_flight: AtomicI64,
    /// Users connected and subscribed to all their rooms, and users that
    /// failed to: publishing starts when they add up to all, so no message
    /// arrives while a user still waits for a `subscribed`.
    ready: AtomicUsize,
    not_ready: AtomicUsize,
    published: AtomicU64,
    acked: AtomicU64,
    reads: AtomicU64,
    reads_ok: AtomicU64,
    /// A read still running when the next was due (the user skips one).
    reads_skipped: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// The measurement window, set once publishing starts.
#[derive(Default)]
struct OnceSet(std::sync::OnceLock<(Instant, Instant)>);

impl Shared {
    fn in_window(&self, t: Instant) -> bool {
        self.window.0.get().is_some_and(|(s, e)| t >= *s && t < *e)
    }

    /// The interval `t` falls in, counted from the window's start.
    fn interval_of(&self, t: Instant) -> Option<usize> {
        let (start, end) = self.window.0.get()?;
        if t < *start || t >= *end {
            return None;
        }
        let i = (t - *start).as_secs_f64() / self.interval.as_secs_f64();
        Some(i as usize)
    }

    fn error(&self, what: String) {
        *self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(what)
            .or_default() += 1;
    }

    fn drained(&self, room_of_slot: impl Fn(usize) -> usize) -> bool {
        self.in_flight.load(Ordering::Acquire) <= 0
            && self.progress.iter().enumerate().all(|(j, p)| {
                p.load(Ordering::Acquire)
                    >= self.last_acked[room_of_slot(j)].load(Ordering::Acquire)
            })
    }
}

/// One user's assignment.
struct User {
    i: usize,
    token: String,
    /// `(room index, room id)`.
    rooms: Vec<(usize, String)>,
    run_id: String,
    publish_every: Duration,
    read_every: Duration,
    start_offset: Duration,
}

/// What one user task hands back.
#[derive(Default)]
struct Outcome {
    connect_error: Option<String>,
    ended_early: Option<String>,
    trackers: Vec<(usize, SeqTracker)>,
    deliveries: u64,
    unanswered: u64,
}

/// The whole report of a `users` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsersReport {
    pub users: usize,
    pub rooms: usize,
    pub rooms_per_user: usize,
    pub publish_every_s: f64,
    pub read_every_s: f64,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub measured_s: f64,
    pub connections_established: usize,
    pub connections_failed: usize,
    pub connections_ended_early: usize,
    pub reasons: Vec<String>,
    pub published: u64,
    pub acked: u64,
    pub acked_per_s: f64,
    pub unanswered: u64,
    pub reads: u64,
    pub reads_ok: u64,
    pub reads_per_s: f64,
    pub reads_skipped: u64,
    pub errors: BTreeMap<String, u64>,
    pub deliveries: u64,
    pub ack: LatencySummary,
    pub rest: LatencySummary,
    pub end_to_end: LatencySummary,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub intervals: Vec<IntervalRow>,
}

/// One `--interval-s` of the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalRow {
    /// Seconds from the window's start to the end of this interval.
    pub at_s: f64,
    pub rss_mib: Option<f64>,
    pub acks: u64,
    pub ack_p95_ms: f64,
    pub reads: u64,
    pub rest_p95_ms: f64,
}

impl UsersReport {
    /// Zero errors, nothing lost, duplicated or reordered, every connection
    /// held to the end.
    pub fn clean(&self) -> bool {
        self.connections_failed == 0
            && self.connections_ended_early == 0
            && self.errors.is_empty()
            && self.unanswered == 0
            && self.lost + self.duplicated + self.out_of_order == 0
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let ms = |s: &LatencySummary| {
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ms ({} samples)",
                s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.count
            )
        };
        let _ = writeln!(
            t,
            "users {} ({} rooms, {} each), publish every {} s, read every {} s, {:.0} s measured",
            self.users,
            self.rooms,
            self.rooms_per_user,
            self.publish_every_s,
            self.read_every_s,
            self.measured_s
        );
        let _ = writeln!(
            t,
            "connections       {} held, {} failed, {} ended early {:?}",
            self.connections_established,
            self.connections_failed,
            self.connections_ended_early,
            self.reasons
        );
        let _ = writeln!(
            t,
            "publishes         {} sent, {} acked ({:.1}/s), {} unanswered",
            self.published, self.acked, self.acked_per_s, self.unanswered
        );
        let _ = writeln!(
            t,
            "REST reads        {} sent, {} ok ({:.1}/s), {} skipped",
            self.reads, self.reads_ok, self.reads_per_s, self.reads_skipped
        );
        let _ = writeln!(t, "errors            {:?}", self.errors);
        let _ = writeln!(
            t,
            "publish → ack     p50 / p95 / p99 / max {}",
            ms(&self.ack)
        );
        let _ = writeln!(
            t,
            "REST read         p50 / p95 / p99 / max {}",
            ms(&self.rest)
        );
        let _ = writeln!(
            t,
            "end to end        p50 / p95 / p99 / max {}",
            ms(&self.end_to_end)
        );
        let _ = writeln!(
            t,
            "deliveries        {}; lost {}, duplicated {}, out of order {}",
            self.deliveries, self.lost, self.duplicated, self.out_of_order
        );
        let _ = writeln!(
            t,
            "\n| at (s) | RSS (MiB) | acks | ack p95 (ms) | reads | REST p95 (ms) |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|");
        for r in &self.intervals {
            let rss = r.rss_mib.map_or("-".into(), |m| format!("{m:.1}"));
            let _ = writeln!(
                t,
                "| {:.0} | {rss} | {} | {:.1} | {} | {:.1} |",
                r.at_s, r.acks, r.ack_p95_ms, r.reads, r.rest_p95_ms
            );
        }
        t
    }
}

/// Runs the scenario through set-up, connect, the window and the drain.
pub async fn run(args: &Args, plan: &Plan) -> anyhow::Result<UsersReport> {
    let addr = setup::loopback_addr(&args.ws).await?;
    let clock = Instant::now();
    let setup = tokio::time::timeout(
        Duration::from_secs(args.setup_timeout_s),
        setup::prepare(args, plan),
    )
    .await
    .map_err(|_| anyhow::anyhow!("set-up exceeded --setup-timeout-s"))??;
    note(
        clock,
        &format!(
            "set-up done: {} users, {} rooms",
            setup.tokens.len(),
            setup.rooms.len()
        ),
    );
    let k = args.rooms_per_user.clamp(1, plan.rooms);
    let interval = Duration::from_secs(args.interval_s.max(1));
    let intervals = (args.duration_s.div_ceil(args.interval_s.max(1)) as usize).min(MAX_INTERVALS);
    let shared = Arc::new(Shared {
        window: OnceSet::default(),
        interval,
        ack: Series::new(intervals)?,
        rest: Series::new(intervals)?,
        end_to_end: Latency::new()?,
        last_acked: (0..plan.rooms).map(|_| AtomicI64::new(0)).collect(),
        progress: (0..plan.subscribers * k)
            .map(|_| AtomicI64::new(i64::MAX))
            .collect(),
        in_flight: AtomicI64::new(0),
        ready: AtomicUsize::new(0),
        not_ready: AtomicUsize::new(0),
        published: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        reads: AtomicU64::new(0),
        reads_ok: AtomicU64::new(0),
        reads_skipped: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let endpoint = connect::Endpoint {
        addr,
        url: args.ws.clone(),
        source_ips: args.source_ips,
    };
    // The users keep their own counters (`Shared` here); the connection
    // context's are unused.
    let ctx = Ctx::new(
        Arc::new(super::stats::Shared::new(0, 0)?),
        endpoint,
        phase_rx,
        args,
    );
    let rest = reqwest::Client::builder()
        .timeout(REST_TIMEOUT)
        .pool_max_idle_per_host(256)
        .build()?;
    let mut tasks = spawn_users(args, plan, &setup, k, &ctx, &shared, &rest);

    let total = plan.subscribers;
    wait_until(Duration::from_secs(args.connect_timeout_s), || {
        shared.ready.load(Ordering::Acquire) + shared.not_ready.load(Ordering::Acquire) >= total
    })
    .await;
    note(
        clock,
        &format!(
            "connected and subscribed {}/{total} ({} failed)",
            shared.ready.load(Ordering::Acquire),
            shared.not_ready.load(Ordering::Acquire)
        ),
    );

    let start = Instant::now() + Duration::from_secs(args.warmup_s);
    let end = Instant::now() + Duration::from_secs(args.duration_s);
    let _ = shared.window.0.set((start, end));
    let _ = phase_tx.send(Phase::Publish);
    let rss_samples = sample_rss(args, &shared, start, end, intervals, clock).await;
    let _ = phase_tx.send(Phase::Drain);
    let room_of_slot = |j: usize| {
        rooms_of_user(j / k, plan.rooms, k)
            .get(j % k)
            .copied()
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(args.drain_s), || {
        shared.drained(room_of_slot)
    })
    .await;
    note(clock, "publishing over, drained");
    let _ = phase_tx.send(Phase::Stop);
    let outcomes = join_all(&mut tasks).await;
    note(clock, &format!("{} user tasks finished", outcomes.len()));
    assemble(args, plan, k, &shared, &outcomes, rss_samples, (start, end))
}

/// Reads the server's RSS at the end of every interval of the window.
async fn sample_rss(
    args: &Args,
    shared: &Shared,
    start: Instant,
    end: Instant,
    intervals: usize,
    clock: Instant,
) -> Vec<Option<f64>> {
    let mut samples = Vec::with_capacity(intervals);
    for i in 1..=intervals {
        let at = (start + shared.interval * i as u32).min(end);
        tokio::time::sleep_until(at.into()).await;
        let rss = args
            .server_pid
            .and_then(|pid| rss::rss_kib(pid).ok())
            .map(|kib| kib as f64 / 1024.0);
        note(
            clock,
            &format!(
                "interval {i}/{intervals}: {} acked, {} reads, RSS {}",
                shared.acked.load(Ordering::Relaxed),
                shared.reads.load(Ordering::Relaxed),
                rss.map_or("-".into(), |m| format!("{m:.1} MiB"))
            ),
        );
        samples.push(rss);
    }
    tokio::time::sleep_until(end.into()).await;
    samples
}

fn spawn_users(
    args: &Args,
    plan: &Plan,
    setup: &Setup,
    k: usize,
    ctx: &Ctx,
    shared: &Arc<Shared>,
    rest: &reqwest::Client,
) -> JoinSet<Outcome> {
    let mut tasks = JoinSet::new();
    let publish_every = Duration::from_secs_f64(args.publish_every_s.max(0.01));
    let read_every = Duration::from_secs_f64(args.read_every_s.max(0.01));
    for i in 0..plan.subscribers {
        let user = User {
            i,
            token: setup.tokens[i % setup.tokens.len()].clone(),
            rooms: rooms_of_user(i, plan.rooms, k)
                .into_iter()
                .map(|r| (r, setup.rooms[r].clone()))
                .collect(),
            run_id: setup.run_id.clone(),
            publish_every,
            read_every,
            start_offset: offset(i, plan.subscribers, publish_every),
        };
        let reader = Reader {
            http: rest.clone(),
            base: args.http.trim_end_matches('/').to_owned(),
            busy: Arc::new(AtomicBool::new(false)),
        };
        tasks.spawn(run_user(ctx.clone(), shared.clone(), user, reader, k));
    }
    tasks
}

/// One user's REST side: one read at a time.
#[derive(Clone)]
struct Reader {
    http: reqwest::Client,
    base: String,
    busy: Arc<AtomicBool>,
}

impl Reader {
    /// Starts a history read unless the last one is still running.
    fn read(&self, shared: &Arc<Shared>, task: usize, token: &str, room: &str) {
        if self.busy.swap(true, Ordering::AcqRel) {
            shared.reads_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let url = format!("{}/api/v1/rooms/{room}/messages?limit=50", self.base);
        let request = self.http.get(url).bearer_auth(token);
        let (shared, busy) = (shared.clone(), self.busy.clone());
        tokio::spawn(async move {
            let sent = Instant::now();
            shared.reads.fetch_add(1, Ordering::Relaxed);
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    // The body is part of the cost a client waits for.
                    if response.bytes().await.is_ok() {
                        shared.reads_ok.fetch_add(1, Ordering::Relaxed);
                        let micros = sent.elapsed().as_micros() as u64;
                        shared.rest.record(task, shared.interval_of(sent), micros);
                    } else {
                        shared.error("REST body cut short".into());
                    }
                }
                Ok(response) => shared.error(format!("REST {}", response.status().as_u16())),
                Err(e) if e.is_timeout() => shared.error("REST timeout".into()),
                Err(_) => shared.error("REST connection error".into()),
            }
            busy.store(false, Ordering::Release);
        });
    }
}

async fn run_user(ctx: Ctx, shared: Arc<Shared>, user: User, reader: Reader, k: usize) -> Outcome {
    let ws = match open(&ctx, &user).await {
        Ok(opened) => {
            shared.ready.fetch_add(1, Ordering::AcqRel);
            opened
        }
        Err(e) => {
            shared.not_ready.fetch_add(1, Ordering::AcqRel);
            return Outcome {
                connect_error: Some(format!("{e:#}")),
                ..Outcome::default()
            };
        }
    };
    let mut me = Session {
        shared: &shared,
        user: &user,
        k,
        pending: HashMap::new(),
        next_ref: 0,
        next_room: 0,
        outcome: Outcome::default(),
        e2e: Vec::with_capacity(BATCH),
    };
    for (slot, (room, _)) in user.rooms.iter().enumerate() {
        let seq = ws.1[slot];
        shared.progress[user.i * k + slot].store(seq, Ordering::Release);
        me.outcome.trackers.push((*room, SeqTracker::new(seq)));
    }
    let mut ws = ws.0;
    let mut phase = ctx.phase.clone();
    // The clocks start when every user is connected; until then the
    // session still reads (presence of the others arrives meanwhile).
    let (mut publish_clock, mut read_clock) = (None, None);
    let mut reads = 0usize;
    loop {
        let publishing = *phase.borrow() == Phase::Publish;
        if publishing && publish_clock.is_none() {
            let began = tokio::time::Instant::now() + user.start_offset;
            publish_clock = Some(tokio::time::interval_at(began, user.publish_every));
            read_clock = Some(tokio::time::interval_at(
                began + user.read_every / 2,
                user.read_every,
            ));
        }
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Stop {
                    break;
                }
            }
            item = ws.next() => match item {
                Some(Ok(Message::Text(text))) => me.handle(&text),
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => {
                    me.outcome.ended_early = Some(task::ended(other));
                    break;
                }
            },
            _ = tick(&mut publish_clock), if publishing => {
                if me.publish(&mut ws).await.is_err() {
                    me.outcome.ended_early = Some("send failed".into());
                    break;
                }
            }
            _ = tick(&mut read_clock), if publishing => {
                let (_, room) = &user.rooms[reads % user.rooms.len()];
                reads += 1;
                reader.read(&shared, user.i, &user.token, room);
            }
        }
    }
    for slot in 0..k.min(user.rooms.len()) {
        shared.progress[user.i * k + slot].store(i64::MAX, Ordering::Release);
    }
    shared.end_to_end.record(user.i, &mut me.e2e);
    me.outcome.unanswered = me.pending.len() as u64;
    shared
        .in_flight
        .fetch_sub(me.pending.len() as i64, Ordering::AcqRel);
    if me.outcome.ended_early.is_none() {
        task::close(&mut ws).await;
    }
    me.outcome
}

/// The next tick of a clock that has started (the branch that calls this
/// runs only once it has).
async fn tick(clock: &mut Option<tokio::time::Interval>) {
    match clock {
        Some(clock) => {
            clock.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Connects user `i` and subscribes it to its rooms; the socket and each
/// room's seq at subscribe time.
async fn open(ctx: &Ctx, user: &User) -> anyhow::Result<(Ws, Vec<i64>)> {
    let (mut ws, _) = task::establish(ctx, user.i, Some(&user.token), None).await?;
    let mut seqs = Vec::with_capacity(user.rooms.len());
    for (_, room) in &user.rooms {
        let seq = tokio::time::timeout(ctx.open_timeout, connect::subscribe(&mut ws, room))
            .await
            .map_err(|_| {
                anyhow::anyhow!("subscribe not answered within {:?}", ctx.open_timeout)
            })??;
        seqs.push(seq);
    }
    Ok((ws, seqs))
}

struct Pending {
    sent: Instant,
    room: usize,
}

/// One user's WebSocket side while it runs.
struct Session<'a> {
    shared: &'a Shared,
    user: &'a User,
    k: usize,
    pending: HashMap<u64, Pending>,
    next_ref: u64,
    next_room: usize,
    outcome: Outcome,
    e2e: Vec<u64>,
}

impl Session<'_> {
    async fn publish(&mut self, ws: &mut Ws) -> anyhow::Result<()> {
        let slot = self.next_room % self.user.rooms.len();
        self.next_room += 1;
        let (room, id) = &self.user.rooms[slot];
        let reference = self.next_ref;
        self.next_ref += 1;
        let client_id = format!("{}-{}-{reference}", self.user.run_id, self.user.i);
        let body = timestamp_body(unix_nanos());
        let frame = ClientFrame::Publish {
            room: id,
            body: &body,
            client_id: &client_id,
            reference: &reference.to_string(),
        };
        self.pending.insert(
            reference,
            Pending {
                sent: Instant::now(),
                room: *room,
            },
        );
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        self.shared.published.fetch_add(1, Ordering::Relaxed);
        ws.send(Message::text(frame.encode()?)).await?;
        Ok(())
    }

    fn handle(&mut self, text: &str) {
        let Ok(frame) = Frame::parse(text) else {
            self.shared.error("unparseable frame".into());
            return;
        };
        match frame.kind.as_ref() {
            "message" => self.message(&frame),
            "ack" => self.answered(&frame, true),
            "error" => {
                self.shared
                    .error(format!("ws {}", frame.code.as_deref().unwrap_or("?")));
                self.answered(&frame, false);
            }
            _ => {} // presence, read, notifications: not measured
        }
    }

    fn answered(&mut self, frame: &Frame<'_>, acked: bool) {
        let Some(reference) = frame.reference.as_ref().and_then(|r| r.as_u64()) else {
            return;
        };
        let Some(pending) = self.pending.remove(&reference) else {
            return;
        };
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        if !acked {
            return;
        }
        self.shared.acked.fetch_add(1, Ordering::Relaxed);
        if let Some(seq) = frame.seq {
            self.shared.last_acked[pending.room].fetch_max(seq, Ordering::AcqRel);
        }
        let micros = pending.sent.elapsed().as_micros() as u64;
        let interval = self.shared.interval_of(pending.sent);
        self.shared.ack.record(self.user.i, interval, micros);
    }

    fn message(&mut self, frame: &Frame<'_>) {
        let received_at = unix_nanos();
        let Some(slot) = self
            .user
            .rooms
            .iter()
            .position(|(_, id)| frame.room.as_deref() == Some(id))
        else {
            return;
        };
        self.outcome.deliveries += 1;
        if let Some(seq) = frame.seq {
            let tracker = &mut self.outcome.trackers[slot].1;
            tracker.record(seq);
            self.shared.progress[self.user.i * self.k + slot]
                .store(tracker.max_seen(), Ordering::Release);
        }
        if !self.shared.in_window(Instant::now()) {
            return;
        }
        if let Some(sent) = frame.body.as_deref().and_then(body_timestamp) {
            self.e2e.push(received_at.saturating_sub(sent) / 1000);
            if self.e2e.len() >= BATCH {
                self.shared.end_to_end.record(self.user.i, &mut self.e2e);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    args: &Args,
    plan: &Plan,
    k: usize,
    shared: &Shared,
    outcomes: &[Outcome],
    rss_samples: Vec<Option<f64>>,
    (start, end): (Instant, Instant),
) -> anyhow::Result<UsersReport> {
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut lost, mut duplicated, mut out_of_order) = (0, 0, 0);
    let (mut deliveries, mut unanswered, mut ended_early) = (0, 0, 0);
    for o in outcomes {
        for reason in o.connect_error.iter().chain(&o.ended_early) {
            *reasons.entry(reason).or_default() += 1;
        }
        ended_early += usize::from(o.ended_early.is_some());
        deliveries += o.deliveries;
        unanswered += o.unanswered;
        for (room, tracker) in &o.trackers {
            let v = tracker.verdict(shared.last_acked[*room].load(Ordering::Acquire));
            lost += v.lost;
            duplicated += v.duplicated;
            out_of_order += v.out_of_order;
        }
    }
    let measured_s = (end - start).as_secs_f64();
    let intervals = rss_samples
        .into_iter()
        .enumerate()
        .map(|(i, rss_mib)| {
            let ack = shared.ack.intervals[i].summary()?;
            let rest = shared.rest.intervals[i].summary()?;
            anyhow::Ok(IntervalRow {
                at_s: (shared.interval.as_secs_f64() * (i + 1) as f64).min(measured_s),
                rss_mib,
                acks: ack.count,
                ack_p95_ms: ack.p95_ms,
                reads: rest.count,
                rest_p95_ms: rest.p95_ms,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let ack = shared.ack.total.summary()?;
    let rest = shared.rest.total.summary()?;
    let established = shared.ready.load(Ordering::Acquire);
    Ok(UsersReport {
        users: plan.subscribers,
        rooms: plan.rooms,
        rooms_per_user: k,
        publish_every_s: args.publish_every_s,
        read_every_s: args.read_every_s,
        duration_s: args.duration_s,
        warmup_s: args.warmup_s,
        measured_s,
        connections_established: established,
        connections_failed: plan.subscribers.saturating_sub(established),
        connections_ended_early: ended_early,
        reasons: reasons
            .into_iter()
            .take(5)
            .map(|(r, n)| format!("{n}× {r}"))
            .collect(),
        published: shared.published.load(Ordering::Acquire),
        acked: shared.acked.load(Ordering::Acquire),
        acked_per_s: ack.count as f64 / measured_s,
        unanswered,
        reads: shared.reads.load(Ordering::Acquire),
        reads_ok: shared.reads_ok.load(Ordering::Acquire),
        reads_per_s: rest.count as f64 / measured_s,
        reads_skipped: shared.reads_skipped.load(Ordering::Acquire),
        errors: shared
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        deliveries,
        ack,
        rest,
        end_to_end: shared.end_to_end.summary()?,
        lost,
        duplicated,
        out_of_order,
        intervals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_room_gets_the_same_number_of_subscribers() {
        let (users, rooms, k) = (10_000, 1_000, 3);
        let mut per_room = vec![0; rooms];
        for i in 0..users {
            let picked = rooms_of_user(i, rooms, k);
            assert_eq!(picked.len(), 3, "user {i}: {picked:?}");
            for r in picked {
                per_room[r] += 1;
            }
        }
        assert!(per_room.iter().all(|n| *n == 30), "{per_room:?}");
        assert_eq!(rooms_of_user(5, 1, 3), vec![0]);
    }

    #[test]
    fn start_offsets_spread_over_the_period() {
        let period = Duration::from_secs(30);
        let mut offsets: Vec<Duration> = (0..1000).map(|i| offset(i, 1000, period)).collect();
        offsets.sort();
        offsets.dedup();
        assert_eq!(offsets.len(), 1000);
        assert!(offsets.iter().all(|o| *o < period));
    }
}
