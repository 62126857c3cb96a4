//! The socket writer of one connection: drains the outbox into the
//! WebSocket in order, and closes with 1013 (Try Again Later,
//! [`CloseReason::SlowConsumer`]) as soon as the outbox reports a
//! slow consumer (the frames still queued are dropped: the client recovers
//! them with `since`). The 1013 close frame follows what was already
//! written. After any close frame the writer tells the session it is done
//! and ends the socket once the client closed its side, or at
//! [`DEADLINE`] (see [`super::linger`] and [`super::socket::shut_down`]).

use super::linger::{DEADLINE, Linger};
use super::protocol::close_code;
use super::session::SocketClosed;
use super::socket::FrameWriter;
use crate::observability::metrics::Metrics;
use actix::WeakRecipient;
use actix_http::ws::CloseCode;
use parley_actors::outbox::{CloseReason, Closing, Inbox, Outgoing};
use std::sync::Arc;
use tokio::time::Instant;

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

/// The session this writer serves, and what it shares with it.
pub struct Session {
    pub linger: Arc<Linger>,
    /// Weak: the writer must not keep the session alive.
    pub closed: WeakRecipient<SocketClosed>,
}

impl Session {
    fn socket_done(&self) {
        if let Some(session) = self.closed.upgrade() {
            session.do_send(SocketClosed);
        }
    }
}

/// Runs until the outbox closes, a close is requested, or the socket
/// fails; then ends the session and, after a close frame, the socket.
///
/// The task lives as long as the connection and is allocated at the size
/// of its largest await point, so the rare paths (closing, a bounded
/// flush) are boxed: their timers and buffers cost memory only while they
/// run, not on every idle connection.
pub async fn run(
    mut socket: FrameWriter,
    mut inbox: Inbox,
    session: Session,
    metrics: Arc<Metrics>,
) {
    // When the writer first found the session ended with bytes unwritten.
    let mut ended: Option<Instant> = None;
    loop {
        // The overflow is watched while a batch waits for room in the
        // socket too: a slow reader keeps that wait long.
        let item = tokio::select! {
            biased;
            () = inbox.overflow.wait() => break,
            item = inbox.rx.recv() => item,
        };
        let mut closed = encode(&mut socket, item, &session, &metrics);
        while !closed && socket.pending() < BATCH_BYTES {
            let Ok(item) = inbox.rx.try_recv() else { break };
            closed = encode(&mut socket, Some(item), &session, &metrics);
        }
        if closed {
            return Box::pin(close(socket, &session)).await;
        }
        let written = tokio::select! {
            biased;
            () = inbox.overflow.wait() => break,
            written = socket.flush() => written,
            // A client that stopped reading (a suspended phone: its window
            // is shut) would hold this flush, and the session's close
            // queued behind it, for as long as its kernel answers. Once
            // the session has ended, the rest gets [`DEADLINE`] in all.
            () = session.linger.session_ended() => {
                let until = *ended.get_or_insert_with(|| Instant::now() + DEADLINE);
                Box::pin(tokio::time::timeout_at(until, socket.flush()))
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
            }
        };
        if written.is_err() {
            // The client is gone, or stopped reading past the deadline
            // after its session ended: a close frame would not get out.
            session.socket_done();
            return;
        }
        if inbox.rx.is_empty() {
            socket.release();
        }
    }
    Box::pin(close_slow_consumer(socket, inbox, &session, &metrics)).await;
}

/// A close frame is encoded: write it, within [`DEADLINE`], after what
/// was encoded before it; end the session; end the socket.
async fn close(mut socket: FrameWriter, session: &Session) {
    let deadline = Instant::now() + DEADLINE;
    let _ = tokio::time::timeout_at(deadline, socket.flush()).await;
    session.socket_done();
    socket.shut_down(deadline).await;
}

/// Encodes one outbox item; `true` once it was the close (or the outbox
/// closed: the session is gone), after which nothing more is written.
fn encode(
    socket: &mut FrameWriter,
    item: Option<Outgoing>,
    session: &Session,
    metrics: &Metrics,
) -> bool {
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
            session.linger.begin();
            socket.close(Some(reason(*closing)));
            true
        }
        None => {
            session.linger.begin();
            socket.close(None);
            true
        }
    }
}

/// Nothing more is queued: what is still in the outbox is dropped (the
/// client recovers it with `since`), what was already encoded goes out
/// whole, then the 1013 close frame.
async fn close_slow_consumer(
    mut socket: FrameWriter,
    mut inbox: Inbox,
    session: &Session,
    metrics: &Metrics,
) {
    let code = close_code(CloseReason::SlowConsumer);
    tracing::info!(close = code, "closing a slow consumer");
    metrics
        .ws_closes
        .with_label_values(&[&code.to_string()])
        .inc();
    inbox.rx.close();
    session.linger.begin();
    let slow = Closing {
        reason: CloseReason::SlowConsumer,
        description: "slow consumer: reconnect and resubscribe with since".into(),
    };
    socket.close(Some(reason(slow)));
    close(socket, session).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::socket::FrameWriter;
    use parley_actors::outbox::Outbox;

    /// The writer's task lives as long as its connection, and a spawned
    /// future is allocated at the size of its largest await point: a
    /// buffer held across an await (say in the close path) would cost every
    /// idle connection its size (a 4 KiB one once did, 6.0 → 11.3 KiB per
    /// connection in `loadtest/run.sh idle`).
    struct Nobody;
    impl actix::Actor for Nobody {
        type Context = actix::Context<Self>;
    }
    impl actix::Handler<SocketClosed> for Nobody {
        type Result = ();
        fn handle(&mut self, _: SocketClosed, _: &mut Self::Context) {}
    }

    #[actix_web::test]
    async fn the_writer_task_of_an_idle_connection_stays_small() {
        use actix::Actor as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (server, _client) = tokio::join!(listener.accept(), client);
        let socket = Arc::new(server.unwrap().0);
        let (_outbox, inbox) = Outbox::channel(4);
        let metrics = Arc::new(Metrics::new("test", &[]).unwrap());
        let session = Session {
            linger: Arc::default(),
            closed: Nobody.start().recipient().downgrade(),
        };
        let task = run(FrameWriter::new(socket), inbox, session, metrics);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 768, "the writer's future is {size} bytes");
    }
}
