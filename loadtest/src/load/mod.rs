//! `parley-load`: one load run against parley or the reference server.
//!
//! A run goes through fixed phases, each bounded in time:
//!
//! 1. set-up: for parley, register users and create public rooms over REST
//!    (`--setup-timeout-s`); read the server's idle RSS;
//! 2. connect: every subscriber and publisher connects (at most
//!    `--connect-concurrency` at once, `--connect-timeout-s` in all),
//!    waits for `hello`, and subscribers subscribe;
//! 3. publish for `--duration-s`; the first `--warmup-s` are left out of
//!    rates and latencies;
//! 4. drain: publishers stop; wait (at most `--drain-s`) until every
//!    publish is answered and every subscriber holds its room's last
//!    acked seq; read the server's RSS;
//! 5. stop: close every connection, gather what each task saw, report.
//!
//! Subscriber `i` joins room `i % rooms`; publisher `p` publishes to rooms
//! `p, p + P, p + 2P, ...` in turn. Connections after the subscribers are
//! publishers; none does both.

mod cli;
mod connect;
mod cpu;
mod publisher;
mod report;
mod rss;
mod seq;
pub(crate) mod setup;
mod stats;
mod subscriber;
mod task;
mod users;

pub use cli::{Args, Plan, Scenario, Target};
pub use report::Report;

use anyhow::Context;
use connect::Endpoint;
use report::{Connections, Correctness, Cpu, Deliveries, Publishes, Rss, Shape};
use stats::{Phase, Shared, Window};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use task::{Ctx, Outcome};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long the tasks get to finish once told to stop.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the connect and drain waits look at the counters.
const POLL: Duration = Duration::from_millis(50);
/// Distinct failure reasons kept in the report.
const MAX_REASONS: usize = 5;

/// Runs (or, with `--compare`, compares) and prints; the exit status.
pub async fn main_with(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(paths) = &args.compare {
        let read = |i: usize| -> anyhow::Result<Report> {
            let path = &paths[i];
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        };
        print!("{}", report::compare(&read(0)?, &read(1)?));
        return Ok(ExitCode::SUCCESS);
    }
    let plan = Plan::from_args(&args)?;
    if args.scenario == Scenario::Users {
        let report = bounded(&args, users::run(&args, &plan)).await?;
        let clean = report.clean();
        return finish(&args, &report, report.table(), clean);
    }
    let report = bounded(&args, run(&args, &plan)).await?;
    let failed = report.connections.failed > 0 || report.connections.ended_early > 0;
    let clean = !failed && report.correctness.clean();
    finish(&args, &report, report.table(), clean)
}

/// Runs `work` within the run's bound: every phase's own bound, added up.
async fn bounded<T>(
    args: &Args,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let bound = Duration::from_secs(
        args.setup_timeout_s + args.connect_timeout_s + args.duration_s + args.drain_s,
    ) + task::OPEN_TIMEOUT
        + JOIN_TIMEOUT;
    tokio::time::timeout(bound, work)
        .await
        .map_err(|_| anyhow::anyhow!("the run exceeded its bound of {bound:?}"))?
}

/// Writes and prints the report; with `--strict`, exit status 2 unless `clean`.
fn finish(
    args: &Args,
    report: &impl serde::Serialize,
    table: String,
    clean: bool,
) -> anyhow::Result<ExitCode> {
    let json = serde_json::to_string_pretty(report)?;
    if let Some(path) = &args.out {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{table}");
    }
    if args.strict && !clean {
        eprintln!("parley-load: --strict: errors, failed connections or correctness counters");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// One run through all phases.
pub async fn run(args: &Args, plan: &Plan) -> anyhow::Result<Report> {
    let addr = setup::loopback_addr(&args.ws).await?;
    let clock = Instant::now();
    let setup = tokio::time::timeout(
        Duration::from_secs(args.setup_timeout_s),
        setup::prepare(args, plan),
    )
    .await
    .context("set-up exceeded --setup-timeout-s")??;
    note(
        clock,
        &format!(
            "set-up done: {} users, {} rooms",
            setup.tokens.len(),
            setup.rooms.len()
        ),
    );
    let rss_idle = args.server_pid.map(rss::rss_kib).transpose()?;

    let shared = Arc::new(Shared::new(plan.rooms, plan.subscribers)?);
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let endpoint = Endpoint {
        addr,
        url: args.ws.clone(),
        source_ips: args.source_ips,
    };
    let ctx = Ctx::new(shared.clone(), endpoint, phase_rx, args);
    let mut tasks = spawn_all(&ctx, plan, &setup);
    let total = plan.subscribers + plan.publishers;
    wait_until(Duration::from_secs(args.connect_timeout_s), || {
        ctx.connected.load(Ordering::Acquire) + ctx.failed.load(Ordering::Acquire) >= total
    })
    .await;
    note(
        clock,
        &format!(
            "connected {}/{total} ({} failed)",
            ctx.connected.load(Ordering::Acquire),
            ctx.failed.load(Ordering::Acquire)
        ),
    );

    let start = Instant::now();
    let window = Window {
        start: start + Duration::from_secs(args.warmup_s),
        end: start + Duration::from_secs(args.duration_s),
    };
    let _ = shared.window.set(window);
    let _ = phase_tx.send(Phase::Publish);
    // The server's CPU over the measurement window only.
    tokio::time::sleep_until(window.start.into()).await;
    let cpu_start = args.server_pid.map(cpu::cpu_seconds).transpose()?;
    tokio::time::sleep_until(window.end.into()).await;
    let cpu_end = args.server_pid.map(cpu::cpu_seconds).transpose()?;
    let _ = phase_tx.send(Phase::Drain);
    wait_until(Duration::from_secs(args.drain_s), || {
        shared.drained(|i| plan.room_of_subscriber(i))
    })
    .await;
    note(clock, "publishing over, drained");
    let rss_end = args.server_pid.map(rss::rss_kib).transpose()?;
    let _ = phase_tx.send(Phase::Stop);
    let outcomes = join_all(&mut tasks).await;
    note(
        clock,
        &format!("{} connection tasks finished", outcomes.len()),
    );

    let measured_s = (window.end - window.start).as_secs_f64();
    let established = ctx.connected.load(Ordering::Acquire);
    let rss = Rss {
        idle_kib: rss_idle,
        end_kib: rss_end,
        per_connection_kib: match (rss_idle, rss_end) {
            (Some(idle), Some(end)) if established > 0 => {
                Some((end as f64 - idle as f64) / established as f64)
            }
            _ => None,
        },
    };
    Ok(assemble(
        args,
        plan,
        &shared,
        &outcomes,
        established,
        measured_s,
        ServerUse {
            rss,
            cpu_s: cpu_start.zip(cpu_end).map(|(a, b)| b - a),
        },
    ))
}

fn spawn_all(ctx: &Ctx, plan: &Plan, setup: &setup::Setup) -> JoinSet<Outcome> {
    let token = |i: usize| setup.tokens.get(i % setup.tokens.len().max(1)).cloned();
    let mut tasks = JoinSet::new();
    for i in 0..plan.subscribers {
        let room = plan.room_of_subscriber(i);
        tasks.spawn(subscriber::run(
            ctx.clone(),
            i,
            room,
            setup.rooms[room].clone(),
            token(i),
        ));
    }
    let per_second = if plan.publishers > 0 {
        plan.rate / plan.publishers as f64
    } else {
        0.0
    };
    for p in 0..plan.publishers {
        let conn = plan.subscribers + p;
        let rooms = plan
            .rooms_of_publisher(p)
            .into_iter()
            .map(|r| (r, setup.rooms[r].clone()))
            .collect();
        tasks.spawn(publisher::run(
            ctx.clone(),
            publisher::Assignment {
                p,
                conn,
                rooms,
                per_second,
                shift: p as f64 / plan.publishers as f64,
                token: token(conn),
                run_id: setup.run_id.clone(),
            },
        ));
    }
    tasks
}

/// Polls `done` until it holds or `limit` has passed (the connect and drain
/// phases watch counters the tasks keep, so there is no event to await).
async fn wait_until(limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

/// Waits (bounded) for every task; the ones still running are aborted.
async fn join_all<T: 'static>(tasks: &mut JoinSet<T>) -> Vec<T> {
    let mut outcomes = Vec::with_capacity(tasks.len());
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        if let Ok(outcome) = joined {
            outcomes.push(outcome);
        }
    }
    tasks.abort_all();
    outcomes
}

/// What the server used: memory, and CPU seconds over the window.
struct ServerUse {
    rss: Rss,
    cpu_s: Option<f64>,
}

fn assemble(
    args: &Args,
    plan: &Plan,
    shared: &Shared,
    outcomes: &[Outcome],
    established: usize,
    measured_s: f64,
    server: ServerUse,
) -> Report {
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut publishes = Publishes::default();
    let mut deliveries = Deliveries::default();
    let mut correctness = Correctness::default();
    let mut ended_early = 0;
    for o in outcomes {
        for reason in o.connect_error.iter().chain(&o.ended_early) {
            *reasons.entry(reason).or_default() += 1;
        }
        ended_early += usize::from(o.ended_early.is_some());
        publishes.sent += o.published;
        publishes.acked += o.acked;
        publishes.skipped += o.skipped;
        publishes.unanswered += o.unanswered;
        for (code, n) in &o.errors {
            *publishes.errors.entry(code.clone()).or_default() += n;
        }
        deliveries.total += o.deliveries;
        deliveries.per_s += o.deliveries_in_window as f64;
        if let Some((room, tracker)) = &o.subscription {
            let v = tracker.verdict(shared.last_acked[*room].load(Ordering::Acquire));
            deliveries.expected += v.expected;
            correctness.lost += v.lost;
            correctness.duplicated += v.duplicated;
            correctness.out_of_order += v.out_of_order;
        }
    }
    let deliveries_in_window = deliveries.per_s;
    deliveries.per_s /= measured_s;
    publishes.acked_per_s = shared.acks_in_window.load(Ordering::Acquire) as f64 / measured_s;
    let total = plan.subscribers + plan.publishers;
    let mut reasons: Vec<(&str, usize)> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    Report {
        label: args
            .label
            .clone()
            .unwrap_or_else(|| format!("{:?}", args.target).to_lowercase()),
        target: args.target,
        scenario: args.scenario,
        shape: Shape {
            subscribers: plan.subscribers,
            publishers: plan.publishers,
            rooms: plan.rooms,
            users: if args.target == Target::Parley {
                plan.users
            } else {
                0
            },
            rate_target: plan.rate,
            duration_s: args.duration_s,
            warmup_s: args.warmup_s,
            measured_s,
        },
        connections: Connections {
            requested: total,
            established,
            failed: total.saturating_sub(established),
            ended_early,
            reasons: reasons
                .into_iter()
                .take(MAX_REASONS)
                .map(|(r, n)| format!("{n}× {r}"))
                .collect(),
        },
        publishes,
        deliveries,
        end_to_end: shared.end_to_end.summary().unwrap_or_default(),
        ack: shared.ack.summary().unwrap_or_default(),
        correctness,
        rss: server.rss,
        cpu: Cpu::new(server.cpu_s, measured_s, deliveries_in_window),
    }
}

/// Progress on stderr, so stdout stays the report.
fn note(clock: Instant, what: &str) {
    eprintln!("[{:7.1} s] {what}", clock.elapsed().as_secs_f64());
}
