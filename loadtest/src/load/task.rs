//! What every connection task shares ([`Ctx`]), how it connects under the
//! concurrency and time bounds ([`establish`]), and what it hands back at
//! the end ([`Outcome`]).

use super::connect::{self, Endpoint, Ws};
use super::seq::SeqTracker;
use super::stats::{Phase, Shared};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for one connection (handshake, hello, subscribe).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing a connection politely may take at the end.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Handed to every connection task.
#[derive(Clone)]
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub endpoint: Endpoint,
    pub phase: watch::Receiver<Phase>,
    /// Bounds connections being opened at once.
    pub opening: Arc<Semaphore>,
    /// Bound on opening one connection (handshake, hello, subscribe).
    pub open_timeout: Duration,
    pub connected: Arc<AtomicUsize>,
    pub failed: Arc<AtomicUsize>,
}

impl Ctx {
    /// The context of a run's connection tasks, in the connect phase until
    /// `phase` moves on. Opening one connection is bounded by `OPEN_TIMEOUT`
    /// and never by more than the whole connect phase.
    pub fn new(
        shared: Arc<Shared>,
        endpoint: Endpoint,
        phase: watch::Receiver<Phase>,
        args: &super::cli::Args,
    ) -> Self {
        Self {
            shared,
            endpoint,
            phase,
            opening: Arc::new(Semaphore::new(args.connect_concurrency)),
            open_timeout: OPEN_TIMEOUT.min(Duration::from_secs(args.connect_timeout_s.max(1))),
            connected: Arc::new(AtomicUsize::new(0)),
            failed: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// One connection's account of the run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub connect_error: Option<String>,
    /// Why the connection ended before the run stopped it.
    pub ended_early: Option<String>,
    /// `error` frames received, by code.
    pub errors: BTreeMap<String, u64>,
    /// Subscribers: the room index and what arrived.
    pub subscription: Option<(usize, SeqTracker)>,
    pub deliveries: u64,
    pub deliveries_in_window: u64,
    /// Publishers.
    pub published: u64,
    pub acked: u64,
    /// Not sent because [`super::publisher::MAX_IN_FLIGHT`] were unanswered.
    pub skipped: u64,
    /// Sent and never answered by the end.
    pub unanswered: u64,
}

impl Outcome {
    pub fn failed(error: anyhow::Error) -> Self {
        Self {
            connect_error: Some(format!("{error:#}")),
            ..Self::default()
        }
    }

    pub fn count_error(&mut self, code: Option<&str>) {
        *self
            .errors
            .entry(code.unwrap_or("unknown").to_owned())
            .or_default() += 1;
    }
}

/// Opens connection `i` (and subscribes it to `room`), counting the result.
pub async fn establish(
    ctx: &Ctx,
    i: usize,
    token: Option<&str>,
    room: Option<&str>,
) -> anyhow::Result<(Ws, Option<i64>)> {
    let result = async {
        let _permit = ctx.opening.acquire().await?;
        tokio::time::timeout(ctx.open_timeout, async {
            let mut ws = connect::open(&ctx.endpoint, i, token).await?;
            let seq = match room {
                Some(room) => Some(connect::subscribe(&mut ws, room).await?),
                None => None,
            };
            anyhow::Ok((ws, seq))
        })
        .await
        .map_err(|_| anyhow::anyhow!("not open within {:?}", ctx.open_timeout))?
    }
    .await;
    let counter = if result.is_ok() {
        &ctx.connected
    } else {
        &ctx.failed
    };
    counter.fetch_add(1, Ordering::AcqRel);
    result
}

/// Sends a close frame and waits briefly for the server's; the run is over
/// either way.
pub async fn close(ws: &mut Ws) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        use futures_util::{SinkExt, StreamExt};
        if ws.send(Message::Close(None)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// Describes how a stream ended, for [`Outcome::ended_early`].
pub fn ended(item: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> String {
    match item {
        Some(Ok(Message::Close(Some(close)))) => {
            format!(
                "closed by the server: {} {}",
                u16::from(close.code),
                close.reason
            )
        }
        Some(Ok(Message::Close(None))) => "closed by the server".into(),
        Some(Err(e)) => format!("socket error: {e}"),
        None => "connection ended".into(),
        Some(Ok(_)) => "unexpected frame".into(),
    }
}
