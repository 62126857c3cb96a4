//! One reference-server connection: a reader that answers frames and a
//! writer task that drains the connection's bounded channel into the
//! socket, batching whatever is queued into one flush.
//!
//! Replies and room messages share the channel, so a connection sees its
//! `ack` and the room's `message` in the order they were produced. When the
//! channel is full the connection is closed with 1013 (Try Again Later).

use super::frames::ServerFrame;
use super::rooms::{Peer, Rooms};
use crate::wire::Frame;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

/// Frames written per flush, at most.
const WRITE_BATCH: usize = 64;
/// How long a closing connection may take to flush what it has queued.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest frame accepted, as parley's default `PARLEY_WS_MAX_FRAME_BYTES`.
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Per-connection sizes, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Frames queued before the connection counts as a slow consumer.
    pub outbox: usize,
    /// Bytes of the socket read buffer, allocated up front per connection.
    pub read_buffer: usize,
}

type Sink = futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>;

/// Serves one accepted socket until either side closes.
pub async fn serve(stream: TcpStream, conn: u64, rooms: Arc<Rooms>, limits: Limits) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (sink, mut source) = ws.split();
    let (tx, rx) = mpsc::channel(limits.outbox);
    let peer = Peer {
        tx,
        kill: Arc::new(Notify::new()),
    };
    let mut writer = tokio::spawn(write_loop(sink, rx, peer.kill.clone()));
    let mut session = Session {
        conn,
        peer,
        rooms,
        joined: HashSet::new(),
    };
    session.hello();
    let mut writer_done = false;
    loop {
        tokio::select! {
            item = source.next() => match item {
                Some(Ok(Message::Text(text))) => {
                    if !session.handle(&text) {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    if !session.error("bad_request", "binary frames are not supported; send JSON text frames", None) {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {} // ping/pong are answered by tungstenite
            },
            _ = &mut writer => {
                writer_done = true;
                break;
            }
        }
    }
    session.leave_all();
    drop(session);
    if !writer_done {
        // Every sender is gone, so the writer flushes, closes and ends,
        // unless the peer stopped reading: then it is cut off.
        if tokio::time::timeout(CLOSE_GRACE, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
}

/// The reader side's state.
struct Session {
    conn: u64,
    peer: Peer,
    rooms: Arc<Rooms>,
    joined: HashSet<String>,
}

impl Session {
    fn hello(&self) {
        let frame = ServerFrame::Hello {
            session: Uuid::new_v4(),
            instance: "reference",
            user: Uuid::nil(),
            heartbeat_ms: 0,
        };
        self.peer.offer(frame.encode());
    }

    /// Answers one text frame; `false` when the connection must close.
    fn handle(&mut self, text: &str) -> bool {
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(e) => return self.error("bad_request", &format!("invalid frame: {e}"), None),
        };
        let reference = frame.reference.as_ref().map(|r| r.to_text());
        let r = reference.as_deref();
        let room = frame.room.as_deref();
        let reply = match (frame.kind.as_ref(), room) {
            ("ping", _) => ServerFrame::Pong { reference: r }.encode(),
            ("subscribe", Some(room)) => {
                let Some(seq) = self.rooms.subscribe(room, self.conn, self.peer.clone()) else {
                    return self.error("unavailable", "room limit reached", r);
                };
                self.joined.insert(room.to_owned());
                ServerFrame::Subscribed {
                    room,
                    seq,
                    reference: r,
                }
                .encode()
            }
            ("unsubscribe", Some(room)) => {
                self.rooms.unsubscribe(room, self.conn);
                self.joined.remove(room);
                ServerFrame::Unsubscribed { room, reference: r }.encode()
            }
            ("publish", Some(room)) => {
                let (Some(body), Some(client_id)) =
                    (frame.body.as_deref(), frame.client_id.as_deref())
                else {
                    return self.error("bad_request", "publish needs `body` and `client_id`", r);
                };
                let Some(done) = self.rooms.publish(room, body, client_id) else {
                    return self.error("unavailable", "room limit reached", r);
                };
                ServerFrame::Ack {
                    room,
                    seq: done.seq,
                    id: done.id,
                    client_id,
                    reference: r,
                }
                .encode()
            }
            ("subscribe" | "unsubscribe" | "publish", None) => {
                return self.error("bad_request", "missing field `room`", r);
            }
            (other, _) => {
                let message = format!("unknown frame type `{other}`");
                return self.error("bad_request", &message, r);
            }
        };
        self.peer.offer(reply)
    }

    fn error(&self, code: &str, message: &str, reference: Option<&str>) -> bool {
        let frame = ServerFrame::Error {
            code,
            message,
            reference,
        };
        self.peer.offer(frame.encode())
    }

    fn leave_all(&mut self) {
        for room in self.joined.drain() {
            self.rooms.unsubscribe(&room, self.conn);
        }
    }
}

/// Writes queued frames until every sender is gone (normal close) or the
/// connection is told it is a slow consumer (1013).
async fn write_loop(mut sink: Sink, mut rx: mpsc::Receiver<Utf8Bytes>, kill: Arc<Notify>) {
    loop {
        tokio::select! {
            biased;
            () = kill.notified() => {
                let close = CloseFrame { code: CloseCode::Again, reason: "slow consumer".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
                return;
            }
            item = rx.recv() => {
                let Some(first) = item else {
                    let _ = sink.close().await;
                    return;
                };
                if write_batch(&mut sink, &mut rx, first).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn write_batch(
    sink: &mut Sink,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    first: Utf8Bytes,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    sink.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        match rx.try_recv() {
            Ok(next) => sink.feed(Message::Text(next)).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}
