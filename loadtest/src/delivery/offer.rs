//! `delivery-offer`: calls one of parley's server API routes at a fixed
//! rate with an API key, open loop (request `i` starts at `i / rate`
//! whatever the answers before it), at most `--in-flight` at once.
//!
//! - `notifications`: `POST /api/v1/server/notifications` for the users of
//!   `--ids` in turn (kind `mention`, payload `{"n": i}`).
//! - `messages`: `POST /api/v1/server/rooms/{id}/messages` into the rooms
//!   of `--ids` in turn, as `--author`, `client_id` `{label}-{i}`.
//!
//! Reports the answers by status and their latency (request to answer: for
//! a message, publish → ack). Bounded: `rate × duration` requests, each
//! with a timeout.

use super::Lags;
use crate::load::setup::loopback_addr;
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Which route to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Notifications,
    Messages,
}

/// Command line of `delivery-offer`.
#[derive(Debug, Parser)]
#[command(
    name = "delivery-offer",
    about = "Calls parley's server API at a fixed rate"
)]
pub struct Args {
    #[arg(long, value_enum)]
    pub what: What,
    /// parley's public base URL (127.0.0.0/8 only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API key (`psk_...`) with the route's scope.
    #[arg(long)]
    pub key: String,
    /// A file of ids, one a line: users (notifications) or rooms (messages).
    #[arg(long)]
    pub ids: PathBuf,
    /// The author of every message.
    #[arg(long)]
    pub author: Option<String>,
    /// Makes `client_id`s unique to this run.
    #[arg(long, default_value = "offer")]
    pub label: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    #[arg(long, default_value_t = 15)]
    pub duration_s: u32,
    /// Most requests unanswered at once; a request due while all are out
    /// waits for one (and is counted in `waited_for_a_slot`).
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// The report (JSON) also goes here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What one run offered and what came back.
#[derive(Debug, Serialize)]
pub struct Report {
    pub what: What,
    pub started_at: DateTime<Utc>,
    pub offered: u64,
    /// From the first request's start to the last one's.
    pub offered_in_s: f64,
    pub waited_for_a_slot: u64,
    /// Answers by status; `error` when there was none.
    pub statuses: BTreeMap<String, u64>,
    /// Request to answer, for every request answered.
    pub answer_ms: Lags,
}

#[derive(Default)]
struct Answers {
    statuses: BTreeMap<String, u64>,
    latencies: Vec<f64>,
}

pub async fn run(args: Args) -> anyhow::Result<Report> {
    loopback_addr(&args.url).await?;
    let ids: Vec<String> = std::fs::read_to_string(&args.ids)
        .with_context(|| format!("reading {}", args.ids.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!ids.is_empty(), "{} holds no ids", args.ids.display());
    anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
    if args.what == What::Messages {
        anyhow::ensure!(args.author.is_some(), "messages need --author");
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.in_flight)
        .build()?;
    let total = u64::from(args.rate) * u64::from(args.duration_s);
    let period = Duration::from_secs(1) / args.rate;
    let slots = Arc::new(Semaphore::new(args.in_flight));
    let answers = Arc::new(Mutex::new(Answers::default()));
    let mut tasks = tokio::task::JoinSet::new();
    let mut waited = 0;
    let started_at = Utc::now();
    let start = tokio::time::Instant::now();
    for i in 0..total {
        tokio::time::sleep_until(start + period * u32::try_from(i)?).await;
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                waited += 1;
                slots.clone().acquire_owned().await?
            }
        };
        let request = request(&client, &args, &ids, i);
        let answers = answers.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let status = match request.send().await {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            let mut answers = answers.lock().unwrap_or_else(|p| p.into_inner());
            *answers.statuses.entry(status).or_default() += 1;
            answers.latencies.push(ms);
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
    let offered_in_s = start.elapsed().as_secs_f64() - period.as_secs_f64();
    while tasks.join_next().await.is_some() {}
    let answers = std::mem::take(&mut *answers.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Report {
        what: args.what,
        started_at,
        offered: total,
        offered_in_s,
        waited_for_a_slot: waited,
        statuses: answers.statuses,
        answer_ms: Lags::of(answers.latencies),
    })
}

/// Request `i`: the next user or room in turn.
fn request(
    client: &reqwest::Client,
    args: &Args,
    ids: &[String],
    i: u64,
) -> reqwest::RequestBuilder {
    let id = &ids[(i % ids.len() as u64) as usize];
    let base = args.url.trim_end_matches('/');
    let (url, body) = match args.what {
        What::Notifications => (
            format!("{base}/api/v1/server/notifications"),
            json!({"user_id": id, "kind": "mention", "payload": {"n": i}}),
        ),
        What::Messages => (
            format!("{base}/api/v1/server/rooms/{id}/messages"),
            json!({"body": format!("message {i}"), "client_id": format!("{}-{i}", args.label),
                   "author": args.author}),
        ),
    };
    client.post(url).bearer_auth(&args.key).json(&body)
}
