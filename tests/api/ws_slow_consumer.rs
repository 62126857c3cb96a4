//! A slow consumer is told why it was dropped: a client that reads at
//! 64 KB/s through a small receive buffer, while its room floods, gets the
//! frames already in flight and then the 1013 close frame, not a reset.

use crate::support::{Backend, FRAME_TIMEOUT, TestApp, metric};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Bytes per second the slow client reads.
const RATE: usize = 64 * 1024;
/// Reads are spread over this many slices per second.
const SLICES: u32 = 16;

/// A TCP stream whose reads are limited to [`RATE`]; writes pass through.
struct Throttled {
    inner: TcpStream,
    budget: usize,
    next: Pin<Box<tokio::time::Sleep>>,
    scratch: Vec<u8>,
}

impl AsyncRead for Throttled {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.budget == 0 {
            ready!(self.next.as_mut().poll(cx));
            let slice = Duration::from_secs(1) / SLICES;
            let at = tokio::time::Instant::now() + slice;
            self.next.as_mut().reset(at);
            self.budget = RATE / SLICES as usize;
        }
        let take = self.budget.min(buf.remaining());
        let this = &mut *self;
        this.scratch.resize(take, 0);
        let mut limited = ReadBuf::new(&mut this.scratch);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.put_slice(limited.filled());
        this.budget -= n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Throttled {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Opens `/ws` as `token` over a 16 KiB receive buffer read at [`RATE`].
async fn slow_client(app: &TestApp, token: &str) -> tokio_tungstenite::WebSocketStream<Throttled> {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let throttled = Throttled {
        inner: stream,
        budget: RATE / SLICES as usize,
        next: Box::pin(tokio::time::sleep(Duration::ZERO)),
        scratch: Vec::new(),
    };
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::client_async(request, throttled)
        .await
        .unwrap();
    ws
}

/// What the slow client saw before its connection ended.
#[derive(Debug, Default)]
struct Seen {
    messages: usize,
    close: Option<u16>,
    error: Option<String>,
}

/// Reads until the connection ends; the close frame's code, if one came.
async fn read_to_the_end(mut ws: tokio_tungstenite::WebSocketStream<Throttled>) -> Seen {
    let mut seen = Seen::default();
    while let Some(next) = ws.next().await {
        match next {
            Ok(Message::Text(_)) => seen.messages += 1,
            Ok(Message::Close(frame)) => seen.close = frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(e) => {
                seen.error = Some(e.to_string());
                break;
            }
        }
    }
    seen
}

#[actix_web::test]
async fn a_slow_reader_receives_its_1013_close_frame_after_the_frames_in_flight() {
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.outbox = 64).await;
    let ada = app.register("ada").await;
    let cyd = app.register("cyd").await;
    let room = app.create_room(&ada, "firehose", "public").await;
    let mut slow = slow_client(&app, &cyd.access).await;
    slow.send(Message::text(
        json!({"type": "subscribe", "room": room, "ref": "s"}).to_string(),
    ))
    .await
    .unwrap();
    let reading = actix_web::rt::spawn(read_to_the_end(slow));

    // Flood the room until the server gives up on the slow reader.
    let mut publisher = app.ws(&ada).await;
    let body = "x".repeat(7_000);
    let mut i = 0;
    loop {
        i += 1;
        assert!(i <= 3_000, "the slow reader was never dropped");
        let (ack, _) = publisher.publish(&room, &body, &format!("c{i}")).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        if i % 20 == 0 {
            let metrics = app.metrics_text().await;
            if metric(&metrics, "parley_ws_closes_total", &["code=\"1013\""]).unwrap_or(0.0) >= 1.0
            {
                break;
            }
        }
    }
    // Within the server's 10 s linger, plus the test's own margin.
    let seen = tokio::time::timeout(FRAME_TIMEOUT * 2, reading)
        .await
        .expect("the slow reader's connection ends")
        .unwrap();
    assert_eq!(seen.close, Some(1013), "{seen:?}");
    assert!(seen.messages > 0, "{seen:?}");
    // After the client answered the close, the server shut the socket down
    // cleanly: the stream ended without a reset.
    assert_eq!(seen.error, None, "{seen:?}");
}

/// A client that stops reading altogether (a suspended phone: its receive
/// window shuts) while frames are on their way. Its heartbeat runs out and
/// the session ends with a close queued behind frames the socket cannot
/// take. The server lets the socket go within the linger deadline (10 s),
/// not when the client's kernel stops answering, which may be never.
#[actix_web::test]
async fn a_client_that_stops_reading_is_let_go_after_its_heartbeat_runs_out() {
    use crate::support::eventually;
    use crate::support::metrics::sample;
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.ws.heartbeat_ms = 200;
        s.http.send_buffer_bytes = 4096;
    })
    .await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;

    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", bob.access).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let subscribe = json!({"type": "subscribe", "room": room, "ref": "s"});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    loop {
        let frame = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("subscribed in time")
            .expect("open")
            .unwrap();
        if frame.to_text().unwrap_or("").contains("\"subscribed\"") {
            break;
        }
    }
    // From here bob reads nothing. 12 messages of 8,000 characters are
    // far more than the two kernels' buffers hold.
    for i in 0..12 {
        let (status, body) = app
            .post_message(&ada, &room, &"x".repeat(8000), &format!("m{i}"))
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
    let let_go = |text: &str| {
        sample(text, "parley_ws_connections") == 0.0 && sample(text, "parley_ws_sockets") == 0.0
    };
    eventually("bob's socket let go", Duration::from_secs(20), || async {
        let_go(&app.metrics_text().await).then_some(())
    })
    .await;
    drop(ws);
}
