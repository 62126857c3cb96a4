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
    /// Read buffer per connection in bytes. tungstenite allocates it up
    /// front (default 128 KiB); frames are small, so 4 KiB keeps idle
    /// connections cheap.
    #[arg(long, default_value_t = 4096)]
    pub read_buffer: usize,
    /// Connections served at once; more are closed on accept.
    #[arg(long, default_value_t = 200_000)]
    pub max_connections: usize,
    /// Distinct rooms kept; publishes and subscribes to more are refused.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_rooms: usize,
}

/// A bound reference server, not yet serving.
pub struct Server {
    listener: TcpListener,
    limits: conn::Limits,
    rooms: Arc<Rooms>,
    permits: Arc<Semaphore>,
}

impl Server {
    /// Checks the arguments and binds the listener (port 0 picks a free one).
    pub async fn bind(args: &Args) -> anyhow::Result<Self> {
        anyhow::ensure!(args.outbox > 0, "--outbox must be at least 1");
        anyhow::ensure!(
            args.read_buffer >= 512,
            "--read-buffer must be at least 512"
        );
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        Ok(Self {
            listener,
            limits: conn::Limits {
                outbox: args.outbox,
                read_buffer: args.read_buffer,
            },
            rooms: Arc::new(Rooms::new(args.max_rooms)),
            permits: Arc::new(Semaphore::new(args.max_connections)),
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Accepts connections until `stop` completes. A loop that must not
    /// die: accept errors (usually EMFILE) back off and go on.
    pub async fn run_until(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut next_conn: u64 = 0;
        let mut refused: u64 = 0;
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            eprintln!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                        refused += 1;
                        continue;
                    };
                    next_conn += 1;
                    let (rooms, limits, conn) = (self.rooms.clone(), self.limits, next_conn);
                    tokio::spawn(async move {
                        conn::serve(stream, conn, rooms, limits).await;
                        drop(permit);
                    });
                }
                () = &mut stop => break,
            }
        }
        eprintln!(
            "reference-server stopping: {next_conn} connections served, {refused} refused at the cap, {} slow consumers closed",
            self.rooms.slow_consumers.load(Ordering::Relaxed)
        );
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let server = Server::bind(&args).await?;
    eprintln!(
        "reference-server listening on ws://{}",
        server.local_addr()?
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    server
        .run_until(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await;
    Ok(())
}
