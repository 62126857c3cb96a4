//! The socket writer of one connection: drains the outbox into the
//! WebSocket in order, and closes with 1013 (Try Again Later,
//! [`CloseReason::SlowConsumer`]) as soon as the outbox reports a
//! slow consumer (the frames still queued are dropped: the client recovers
//! them with `since`). The 1013 close frame follows what was already
//! written, and the connection lingers until the client answers it (see
//! [`super::linger`]).

use super::linger::Linger;
use super::protocol::close_code;
use crate::observability::metrics::Metrics;
use actix_ws::{CloseCode, Session};
use parley_actors::outbox::{CloseReason, Closing, Inbox, Outgoing};
use std::sync::Arc;

fn reason(closing: Closing) -> actix_ws::CloseReason {
    actix_ws::CloseReason {
        code: CloseCode::from(close_code(closing.reason)),
        description: Some(closing.description),
    }
}

/// Runs until the outbox closes, a close is requested, or the socket fails.
pub async fn run(
    mut session: Session,
    mut inbox: Inbox,
    linger: Arc<Linger>,
    metrics: Arc<Metrics>,
) {
    loop {
        // The overflow is watched while a frame waits for room in the
        // socket too: a slow reader keeps that wait long.
        let item = tokio::select! {
            biased;
            () = inbox.overflow.wait() => break,
            item = inbox.rx.recv() => item,
        };
        let item = match item {
            Some(Outgoing::Close(closing)) => {
                let _ = session.close(Some(reason(*closing))).await;
                return;
            }
            Some(item) => item,
            None => {
                let _ = session.close(None).await;
                return;
            }
        };
        let sent = tokio::select! {
            biased;
            () = inbox.overflow.wait() => break,
            sent = send(&mut session, item, &metrics) => sent,
        };
        if sent.is_err() {
            return;
        }
    }
    close_slow_consumer(session, inbox, &linger, &metrics).await;
}

/// One frame (not a close) into the socket, waiting for room.
async fn send(
    session: &mut Session,
    item: Outgoing,
    metrics: &Metrics,
) -> Result<(), actix_ws::Closed> {
    match item {
        Outgoing::Text(text) => {
            metrics.count_frame_out(&text);
            session.text(&*text).await
        }
        Outgoing::Ping => session.ping(b"").await,
        Outgoing::Pong(payload) => session.pong(&payload).await,
        // Needs the session by value; `run` closes before it gets here.
        Outgoing::Close(_) => Ok(()),
    }
}

/// Nothing more is queued: what is still in the outbox is dropped (the
/// client recovers it with `since`), what was already handed to the socket
/// goes out, then the 1013 close frame, and the socket stays open for the
/// client's reply until the linger deadline.
async fn close_slow_consumer(
    session: Session,
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
    let _ = tokio::time::timeout_at(deadline, session.close(Some(reason(slow)))).await;
}
