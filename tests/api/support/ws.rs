//! The one WebSocket client of the suite, speaking parley's protocol.
//!
//! Most tests use the asserting methods ([`WsClient::next`],
//! [`WsClient::publish`], ...), which fail the test on anything unexpected
//! and wait at most [`FRAME_TIMEOUT`]. Load tests that must report what
//! went wrong rather than panic in one of a thousand tasks use the `try_`
//! methods, which return every failure as an `Err` and wait as long as the
//! server takes.

use super::app::{TestApp, TestUser};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How long any single wait for a frame may take before the test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The headers of a WebSocket upgrade request, for [`TestApp::raw_exchange`].
pub const UPGRADE_HEADERS: &str = "connection: upgrade\r\nupgrade: websocket\r\n\
    sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An upgrade request for `url` (`ws://.../ws`) with a bearer token and
/// an `Origin` if given.
pub fn ws_request(url: &str, token: Option<&str>, origin: Option<&str>) -> Request {
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    if let Some(token) = token {
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(origin) = origin {
        headers.insert("origin", origin.parse().unwrap());
    }
    request
}

/// A WebSocket client of the parley protocol.
pub struct WsClient {
    socket: Socket,
    /// The `hello` frame.
    pub hello: Value,
}

impl TestApp {
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    /// Connects with `Authorization: Bearer` and reads `hello`.
    pub async fn ws(&self, user: &TestUser) -> WsClient {
        let request = self.ws_request(Some(&user.access), None);
        WsClient::open(request).await.expect("WebSocket upgrade")
    }

    /// An upgrade request with a bearer token and an `Origin` if given.
    pub fn ws_request(&self, token: Option<&str>, origin: Option<&str>) -> Request {
        ws_request(&self.ws_url(), token, origin)
    }

    /// Sends `request` as it is on a new connection and reads until the
    /// server closes it: for requests no HTTP library would send.
    pub async fn raw_exchange(&self, request: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(FRAME_TIMEOUT, socket.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection after answering")
            .unwrap();
        String::from_utf8(answer).unwrap()
    }

    /// A WebSocket for `token` as a bare TCP socket, just past the 101:
    /// for frames and timings no WebSocket library would produce.
    pub async fn raw_upgrade(&self, token: &str) -> tokio::net::TcpStream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /ws HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n{UPGRADE_HEADERS}\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        // Byte by byte: nothing after the head may be consumed here.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = tokio::time::timeout(FRAME_TIMEOUT, socket.read_u8())
                .await
                .expect("the upgrade is answered")
                .expect("the connection stays open");
            head.push(byte);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        socket
    }

    /// A ticket from `POST /api/v1/ws-ticket` for `user`.
    pub async fn ws_ticket(&self, user: &TestUser) -> String {
        let res = self
            .post("/api/v1/ws-ticket", &user.access, json!({}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["ticket"].as_str().unwrap().to_owned()
    }

    /// The HTTP response (status and problem body) of a refused upgrade.
    pub async fn ws_refusal(&self, request: Request) -> (u16, Option<u64>, Value) {
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse().unwrap());
                let body = response
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                (response.status().as_u16(), retry_after, body)
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the upgrade was accepted"),
        }
    }

    /// The HTTP status of a refused upgrade.
    pub async fn ws_refused(&self, request: Request) -> u16 {
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the upgrade was accepted"),
        }
    }
}

impl WsClient {
    pub async fn open(request: Request) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        let mut client = Self {
            socket,
            hello: Value::Null,
        };
        client.hello = client.next().await;
        assert_eq!(client.hello["type"], "hello", "{}", client.hello);
        Ok(client)
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.unwrap();
    }

    /// Writes `bytes` to the socket as they are, beneath the WebSocket
    /// library: for what no well-behaved client sends.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = self.socket.get_mut() else {
            panic!("the tests speak plain TCP");
        };
        tcp.write_all(bytes).await.unwrap();
    }

    /// The next server frame (pings are answered by the library and skipped).
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
                .await
                .expect("a frame within the timeout")
                .expect("the connection is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next frame of type `kind`, skipping `presence` and `typing`
    /// frames only (anything else unexpected fails the test).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
            let skippable = matches!(frame["type"].as_str(), Some("presence" | "typing"));
            assert!(skippable, "expected {kind}, got {frame}");
        }
    }

    /// Waits for the server to close; returns the close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
                .await
                .expect("the server closes within the timeout");
            match next {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn subscribe(&mut self, room: &str, since: Option<i64>) -> Value {
        let mut frame = json!({"type": "subscribe", "room": room, "ref": "sub"});
        if let Some(since) = since {
            frame["since"] = json!(since);
        }
        self.send(frame).await;
        self.next_of("subscribed").await
    }

    /// Publishes and returns the `ack` (or `error`) answering it; frames of
    /// other types that arrive first are returned in `other`.
    pub async fn publish(
        &mut self,
        room: &str,
        body: &str,
        client_id: &str,
    ) -> (Value, Vec<Value>) {
        let reference = format!("pub-{client_id}");
        self.send(json!({"type": "publish", "room": room, "body": body, "client_id": client_id, "ref": reference}))
            .await;
        let mut other = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["ref"] == reference.as_str() {
                return (frame, other);
            }
            other.push(frame);
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

// --- WebSocket: raw frames, closing, time passing -----------------------------

impl WsClient {
    /// The next message as the library delivers it, pings included (each
    /// is answered as it is read); `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Message> {
        let next = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
            .await
            .expect("a message within the timeout");
        next.and_then(Result::ok)
    }

    /// The next server frame, or `Err` with the close frame (if any) when
    /// the server ends the connection instead.
    pub async fn next_or_closed(&mut self) -> Result<Value, Option<CloseFrame>> {
        loop {
            match self.recv().await {
                Some(Message::Text(text)) => return Ok(serde_json::from_str(&text).unwrap()),
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                Some(Message::Close(frame)) => return Err(frame),
                Some(other) => panic!("unexpected frame {other:?}"),
                None => return Err(None),
            }
        }
    }

    /// Keeps reading (and so answering the server's pings) for `period`;
    /// returns how many pings arrived. A text frame fails the test.
    pub async fn read_for(&mut self, period: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + period;
        let mut pings = 0;
        while let Ok(next) = tokio::time::timeout_at(deadline, self.socket.next()).await {
            match next {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Pong(_))) => {}
                other => panic!("expected only pings, got {other:?}"),
            }
        }
        pings
    }
}

// --- WebSocket: failures as values, for load tests ----------------------------

/// What [`WsClient::try_next`] read.
pub enum Incoming {
    Frame(Value),
    /// The server ended the connection; the close code, if it sent one.
    Closed(Option<u16>),
}

/// Why [`WsClient::try_open`] has no client.
pub enum OpenError {
    /// The upgrade was answered with this HTTP response instead of 101.
    Refused(Response),
    /// Anything else, said in words: the connection failed, or the first
    /// frame was not `hello`.
    Failed(String),
}

impl WsClient {
    /// Opens the connection and reads `hello`, returning every failure.
    pub async fn try_open(request: Request) -> Result<Self, OpenError> {
        let socket = match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => socket,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                return Err(OpenError::Refused(response));
            }
            Err(e) => return Err(OpenError::Failed(format!("upgrade failed: {e}"))),
        };
        let mut client = Self {
            socket,
            hello: Value::Null,
        };
        client.hello = match client.try_next().await.map_err(OpenError::Failed)? {
            Incoming::Frame(hello) if hello["type"] == "hello" => hello,
            Incoming::Frame(other) => {
                return Err(OpenError::Failed(format!("expected hello, got {other}")));
            }
            Incoming::Closed(code) => {
                return Err(OpenError::Failed(format!("closed ({code:?}) before hello")));
            }
        };
        Ok(client)
    }

    /// The next text frame or the end of the connection, however long it
    /// takes (pings are answered by the library as it reads).
    pub async fn try_next(&mut self) -> Result<Incoming, String> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text)
                        .map(Incoming::Frame)
                        .map_err(|e| format!("a frame that is not JSON: {e}: {text}"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Incoming::Closed(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(Message::Binary(_))) => return Err("a binary frame".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("the connection failed: {e}")),
                None => return Ok(Incoming::Closed(None)),
            }
        }
    }

    pub async fn try_send(&mut self, frame: Value) -> Result<(), String> {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| format!("sending {frame}: {e}"))
    }
}
