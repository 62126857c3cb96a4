//! `delivery-sink`: the far end of parley's deliveries, on 127.0.0.0/8.
//!
//! - `POST /push/{n}`: a push service with `--subscriptions` browsers. The
//!   body is decrypted with browser `n`'s private key and auth secret (RFC
//!   8291, the `web-push-native` crate, as the tests' push service does),
//!   so only a push parley really encrypted for that browser counts; the
//!   notification id and time come from the decrypted message. `201`.
//! - `POST /webhook`: a webhook receiver; the id is the `webhook-id`
//!   header, the time the body's `timestamp`. `204`. Signatures are not
//!   checked here (the tests check them); this end only counts and times.
//! - `GET /report`: the [`Report`] so far; it is also written to
//!   `--report` when the sink stops (SIGTERM or SIGINT).
//!
//! Lag is arrival minus when the delivery was due: a push is due
//! `--push-delay-ms` (parley's `PARLEY_PUSH_DELAY_MS`) after its
//! notification was stored; a webhook when its event happened. Both ends
//! read one clock.

use super::Lags;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Parser;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use web_push_native::p256;

/// Problems kept verbatim in the report; the rest are only counted.
const PROBLEMS_KEPT: usize = 20;

/// Command line of `delivery-sink`.
#[derive(Debug, Parser)]
#[command(
    name = "delivery-sink",
    about = "Receives parley's pushes and webhooks and times them"
)]
pub struct Args {
    /// Where to listen (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.3:19300")]
    pub addr: SocketAddr,
    /// Browsers (push subscriptions) to make up.
    #[arg(long, default_value_t = 1000)]
    pub subscriptions: usize,
    /// Writes them here as CSV `n,endpoint,p256dh,auth` (bytea hex) for
    /// PostgreSQL's `\copy`.
    #[arg(long)]
    pub subscriptions_csv: PathBuf,
    /// parley's `PARLEY_PUSH_DELAY_MS`: a push is due this long after its
    /// notification.
    #[arg(long, default_value_t = 2000)]
    pub push_delay_ms: i64,
    /// Where the report goes when the sink stops.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// A browser: the private half of one subscription.
struct Browser {
    secret: p256::SecretKey,
    auth: web_push_native::Auth,
}

/// Everything received of one kind.
#[derive(Default)]
struct Arrivals {
    received: u64,
    ids: HashSet<String>,
    duplicates: u64,
    /// Lag of each first arrival of an id, ms.
    lags: Vec<f64>,
    /// Time of each first arrival of an id.
    firsts: Vec<DateTime<Utc>>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    /// Distinct client `ip:port`s: the connections parley opened.
    peers: HashSet<SocketAddr>,
    problems: u64,
    problems_kept: Vec<String>,
}

/// What the report says of one kind.
#[derive(Debug, Serialize)]
pub struct KindReport {
    pub received: u64,
    pub distinct: usize,
    pub duplicates: u64,
    pub problems: u64,
    pub problems_kept: Vec<String>,
    pub connections: usize,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    /// Distinct ids per second from the first arrival to the last.
    pub rate_per_s: f64,
    /// Distinct ids by whole second since the first arrival: a backlog
    /// shows as a long tail.
    pub per_second: BTreeMap<i64, u64>,
    pub lag_ms: Lags,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub push_delay_ms: i64,
    pub push: KindReport,
    pub webhook: KindReport,
}

impl Arrivals {
    fn record(&mut self, peer: Option<SocketAddr>, at: DateTime<Utc>, id: String, lag_ms: f64) {
        self.received += 1;
        self.peers.extend(peer);
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
        if self.ids.insert(id) {
            self.lags.push(lag_ms);
            self.firsts.push(at);
        } else {
            self.duplicates += 1;
        }
    }

    fn problem(&mut self, what: String) {
        self.received += 1;
        self.problems += 1;
        if self.problems_kept.len() < PROBLEMS_KEPT {
            self.problems_kept.push(what);
        }
    }

    fn report(&self) -> KindReport {
        let span = match (self.first, self.last) {
            (Some(first), Some(last)) => (last - first).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        let mut per_second = BTreeMap::new();
        if let Some(first) = self.first {
            for at in &self.firsts {
                *per_second.entry((*at - first).num_seconds()).or_default() += 1;
            }
        }
        KindReport {
            received: self.received,
            distinct: self.ids.len(),
            duplicates: self.duplicates,
            problems: self.problems,
            problems_kept: self.problems_kept.clone(),
            connections: self.peers.len(),
            first_at: self.first,
            last_at: self.last,
            rate_per_s: if span > 0.0 {
                self.ids.len() as f64 / span
            } else {
                0.0
            },
            per_second,
            lag_ms: Lags::of(self.lags.clone()),
        }
    }
}

/// The sink's state, shared by its handlers.
struct Sink {
    browsers: Vec<Browser>,
    push_delay: chrono::Duration,
    push: Mutex<Arrivals>,
    webhook: Mutex<Arrivals>,
}

impl Sink {
    fn report(&self) -> Report {
        let report = |m: &Mutex<Arrivals>| m.lock().unwrap_or_else(|p| p.into_inner()).report();
        Report {
            push_delay_ms: self.push_delay.num_milliseconds(),
            push: report(&self.push),
            webhook: report(&self.webhook),
        }
    }
}

/// Records what `opened` found and answers `ok`, or `400` for a request
/// that could not be read (parley drops such a push as rejected).
fn answer(
    arrivals: &Mutex<Arrivals>,
    request: &HttpRequest,
    at: DateTime<Utc>,
    opened: Result<(String, f64), String>,
    ok: StatusCode,
) -> HttpResponse {
    let mut arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner());
    match opened {
        Ok((id, lag)) => {
            arrivals.record(request.peer_addr(), at, id, lag);
            HttpResponse::new(ok)
        }
        Err(problem) => {
            arrivals.problem(problem);
            HttpResponse::BadRequest().finish()
        }
    }
}

async fn push(
    sink: web::Data<Sink>,
    request: HttpRequest,
    n: web::Path<usize>,
    body: web::Bytes,
) -> HttpResponse {
    let at = Utc::now();
    let opened = open_push(&sink, *n, &request, body.to_vec(), at);
    answer(&sink.push, &request, at, opened, StatusCode::CREATED)
}

/// The notification id and its lag from due, if browser `n` can read it.
fn open_push(
    sink: &Sink,
    n: usize,
    request: &HttpRequest,
    body: Vec<u8>,
    at: DateTime<Utc>,
) -> Result<(String, f64), String> {
    let encoding = request.headers().get("content-encoding");
    if encoding.and_then(|v| v.to_str().ok()) != Some("aes128gcm") {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    let browser = sink.browsers.get(n).ok_or(format!("no browser {n}"))?;
    let plain = web_push_native::decrypt(body, &browser.secret, &browser.auth)
        .map_err(|e| format!("browser {n} cannot decrypt: {e}"))?;
    let message: Value = serde_json::from_slice(&plain).map_err(|e| format!("not JSON: {e}"))?;
    let id = message["id"].as_str().ok_or("no id")?.to_owned();
    let ts: DateTime<Utc> = message["ts"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or("no ts")?;
    let lag = at - (ts + sink.push_delay);
    Ok((
        id,
        lag.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0,
    ))
}

async fn webhook(sink: web::Data<Sink>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let at = Utc::now();
    let opened = open_webhook(&request, &body, at);
    answer(&sink.webhook, &request, at, opened, StatusCode::NO_CONTENT)
}

/// The `webhook-id` and the lag from the event's `timestamp`.
fn open_webhook(
    request: &HttpRequest,
    body: &[u8],
    at: DateTime<Utc>,
) -> Result<(String, f64), String> {
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .ok_or("no webhook-id")?
        .to_owned();
    let event: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let happened: DateTime<Utc> = event["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or("no timestamp")?;
    let lag = at - happened;
    Ok((
        id,
        lag.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0,
    ))
}

async fn report(sink: web::Data<Sink>) -> HttpResponse {
    HttpResponse::Ok().json(sink.report())
}

/// Makes the browsers and writes their public halves as CSV.
fn browsers(args: &Args) -> anyhow::Result<Vec<Browser>> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let mut csv = std::io::BufWriter::new(
        std::fs::File::create(&args.subscriptions_csv)
            .with_context(|| format!("creating {}", args.subscriptions_csv.display()))?,
    );
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut browsers = Vec::with_capacity(args.subscriptions);
    for n in 0..args.subscriptions {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let auth: [u8; 16] = rand::random();
        let point = secret.public_key().to_encoded_point(false);
        writeln!(
            csv,
            "{n},http://{}/push/{n},\\x{},\\x{}",
            args.addr,
            hex(point.as_bytes()),
            hex(&auth)
        )?;
        browsers.push(Browser {
            secret,
            auth: web_push_native::Auth::from(auth),
        });
    }
    csv.flush()?;
    Ok(browsers)
}

/// Serves until SIGTERM or SIGINT, then writes the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.addr.ip().is_loopback(),
        "listen on 127.0.0.0/8 only, not {}",
        args.addr
    );
    let sink = web::Data::new(Sink {
        browsers: browsers(&args)?,
        push_delay: chrono::Duration::milliseconds(args.push_delay_ms),
        push: Mutex::default(),
        webhook: Mutex::default(),
    });
    let data = sink.clone();
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/push/{n}", web::post().to(push))
            .route("/webhook", web::post().to(webhook))
            .route("/report", web::get().to(report))
    })
    .workers(1)
    .bind(args.addr)?
    .run()
    .await?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&sink.report())?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
