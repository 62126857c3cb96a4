//! The socket writer of one connection: drains the outbox into the
//! WebSocket in order, and closes with 1013 (Try Again Later,
//! [`CloseReason::SlowConsumer`]) as soon as the outbox reports a
//! slow consumer (the frames still queued are dropped: the client recovers
//! them with `since`). The 1013 close frame follows what was already
//! written, and the connection lingers until the client answers it (see
//! [`super::linger`]).

use super::linger::Linger;
use super::protocol::close_code;
use super::socket::FrameWriter;
use crate::observability::metrics::Metrics;
use actix_http::ws::CloseCode;
use parley_actors::outbox::{CloseReason, Closing, Inbox, Outgoing};
use std::sync::Arc;

/// Frames queued together are written with one system call, up to this
/// many bytes: a burst (a replay, a busy room) costs a write per batch, not
/// per frame, and the buffer stays small.
const BATCH_BYTES: usize = 16 * 1024;

fn reason(closing: Closing) -> actix_http::ws::CloseReason {
    actix_http::ws::CloseReason {
        code: CloseCode::from(close_code(closing.reason)),
        description: Some(closing.description),
    }
}

/// Runs until the outbox closes, a close is requested, or the socket
/// fails; then holds the socket while the connection lingers, and drops
/// the writer, which shuts the socket's write side down.
pub async fn run(
    mut socket: FrameWriter,
    mut inbox: Inbox,
    linger: Arc<Linger>,
    metrics: Arc<Metrics>,
) {
    loop {
        // The overflow is watched while a batch waits for room in the
        // socket too: a slow reader keeps that wait long.
        let item = tokio::select! {
            biased;
            () = inbox.overflow.wait() => break,
            item = inbox.rx.recv() => item,
        };
        let mut closed = encode(&mut socket, item, &metrics);
        while !closed && socket.pending() < BATCH_BYTES {
            let Ok(item) = inbox.rx.try_recv() else { break };
            closed = encode(&mut socket, Some(item), &metrics);
        }
        let written = tokio::select! {
            biased;
            () = inbox.overflow.wait() => break,
            written = socket.flush() => written,
        };
        if written.is_err() || closed {
            linger.wait().await;
            return;
        }
        if inbox.rx.is_empty() {
            socket.release();
        }
    }
    close_slow_consumer(socket, inbox, &linger, &metrics).await;
}

/// Encodes one outbox item; `true` once it was the close (or the outbox
/// closed: the session is gone), after which nothing more is written.
fn encode(socket: &mut FrameWriter, item: Option<Outgoing>, metrics: &Metrics) -> bool {
    match item {
        Some(Outgoing::Text(text)) => {
            metrics.count_frame_out(&text);
            socket.text(&text);
            false
        }
        Some(Outgoing::Ping) => {
            socket.ping();
            false
        }
        Some(Outgoing::Pong(payload)) => {
            socket.pong(&payload);
            false
        }
        Some(Outgoing::Close(closing)) => {
            socket.close(Some(reason(*closing)));
            true
        }
        None => {
            socket.close(None);
            true
        }
    }
}

/// Nothing more is queued: what is still in the outbox is dropped (the
/// client recovers it with `since`), what was already encoded goes out
/// whole, then the 1013 close frame, and the socket stays open for the
/// client's reply until the linger deadline.
async fn close_slow_consumer(
    mut socket: FrameWriter,
    mut inbox: Inbox,
    linger: &Linger,
    metrics: &Metrics,
) {
    let code = close_code(CloseReason::SlowConsumer);
    tracing::info!(close = code, "closing a slow consumer");
    metrics
        .ws_closes
        .with_label_values(&[&code.to_string()])
        .inc();
    inbox.rx.close();
    let deadline = linger.begin();
    let slow = Closing {
        reason: CloseReason::SlowConsumer,
        description: "slow consumer: reconnect and resubscribe with since".into(),
    };
    socket.close(Some(reason(slow)));
    let _ = tokio::time::timeout_at(deadline, socket.flush()).await;
    linger.wait().await;
}
