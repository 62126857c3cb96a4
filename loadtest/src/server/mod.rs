//! `reference-server`: the same WebSocket frames as parley with nothing
//! behind them (no auth, no persistence, no idempotency, no rate limit, no
//! heartbeat), on bare tokio + tokio-tungstenite. It is the yardstick: what
//! this machine can do for the protocol, so parley's numbers can be read as
//! a fraction of it.
//!
//! Any path upgrades; rooms are arbitrary strings created on first use.

mod conn;
mod frames;
mod rooms;

use anyhow::Context;
use clap::Parser;
use rooms::Rooms;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Command line of `reference-server`.
#[derive(Debug, Parser)]
#[command(name = "reference-server", version, about)]
pub struct Args {
    /// Address to listen on (keep it on 127.0.0.0/8).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub addr: SocketAddr,
    /// Frames queued per connection before it counts as a slow consumer
    /// (parley's `PARLEY_WS_OUTBOX` default).
    #[arg(long, default_value_t = 256)]
    pub outbox: usize,
    /// Connections served at once; more are closed on accept.
    #[arg(long, default_value_t = 200_000)]
    pub max_connections: usize,
    /// Distinct rooms kept; publishes and subscribes to more are refused.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_rooms: usize,
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.outbox > 0, "--outbox must be at least 1");
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    eprintln!(
        "reference-server listening on ws://{}",
        listener.local_addr()?
    );
    let rooms = Arc::new(Rooms::new(args.max_rooms));
    let permits = Arc::new(Semaphore::new(args.max_connections));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut next_conn: u64 = 0;
    let mut refused: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Usually EMFILE: back off rather than spin.
                        eprintln!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    refused += 1;
                    continue;
                };
                next_conn += 1;
                let rooms = rooms.clone();
                let outbox = args.outbox;
                let conn = next_conn;
                tokio::spawn(async move {
                    conn::serve(stream, conn, rooms, outbox).await;
                    drop(permit);
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    eprintln!(
        "reference-server stopping: {next_conn} connections served, {refused} refused at the cap, {} slow consumers closed",
        rooms.slow_consumers.load(Ordering::Relaxed)
    );
    Ok(())
}
