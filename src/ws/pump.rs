//! The socket writer of one connection: drains the outbox into the
//! WebSocket in order, and closes with 1013 as soon as the outbox reports a
//! slow consumer (the frames still queued are dropped: the client recovers
//! them with `since`).

use crate::metrics::Metrics;
use actix_ws::{CloseCode as WsCloseCode, CloseReason, Session};
use parley_actors::outbox::{CloseCode, Closing, Inbox, Outgoing};
use std::sync::Arc;

fn reason(closing: Closing) -> CloseReason {
    CloseReason {
        code: WsCloseCode::from(closing.code.code()),
        description: Some(closing.reason),
    }
}

/// Runs until the outbox closes, a close is requested, or the socket fails.
pub async fn run(mut session: Session, mut inbox: Inbox, metrics: Arc<Metrics>) {
    loop {
        let item = tokio::select! {
            biased;
            () = inbox.overflow.wait() => {
                tracing::info!(close = 1013, "closing a slow consumer");
                metrics.ws_closes.with_label_values(&["1013"]).inc();
                let slow = Closing { code: CloseCode::TryAgainLater, reason: "slow consumer: reconnect and resubscribe with since".into() };
                let _ = session.close(Some(reason(slow))).await;
                return;
            }
            item = inbox.rx.recv() => item,
        };
        let sent = match item {
            None => {
                let _ = session.close(None).await;
                return;
            }
            Some(Outgoing::Text(text)) => {
                crate::metrics::count_frame_out(&metrics, &text);
                session.text(&*text).await
            }
            Some(Outgoing::Ping) => session.ping(b"").await,
            Some(Outgoing::Pong(payload)) => session.pong(&payload).await,
            Some(Outgoing::Close(closing)) => {
                let _ = session.close(Some(reason(*closing))).await;
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
