//! Starting parley for a test and talking to it. Every HTTP call of the
//! suite goes through here.

use parley::app::startup::Application;
use parley::config::Settings;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::num::NonZeroU32;

/// Which store the application under test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Postgres,
}

/// Runs the test body once per backend: `both_backends!(test_fn, ...)`
/// makes `test_fn::memory` and `test_fn::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn memory() {
                    super::$name($crate::helpers::Backend::Memory).await
                }
                #[actix_web::test]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

pub const PASSWORD: &str = "correct horse battery";

/// A running parley on random ports.
pub struct TestApp {
    /// `http://127.0.0.1:PORT` of the public listener.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub admin: String,
    pub client: reqwest::Client,
}

/// A registered user with a live token pair.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub access: String,
    pub refresh: String,
}

/// Settings every test starts from: random local ports, generous rate
/// limits (tests of the limits lower them), one worker.
pub async fn test_settings(backend: Backend) -> Settings {
    let mut settings = Settings::from_env(Vec::new()).expect("default settings");
    settings.http.addr = "127.0.0.1:0".parse().unwrap();
    settings.http.admin_addr = "127.0.0.1:0".parse().unwrap();
    settings.http.workers = 2;
    settings.rate.api_per_min = NonZeroU32::new(100_000).unwrap();
    settings.rate.auth_per_min = NonZeroU32::new(100_000).unwrap();
    settings.rate.ws_msgs_per_s = NonZeroU32::new(100_000).unwrap();
    settings.rate.ws_user_msgs_per_s = NonZeroU32::new(100_000).unwrap();
    settings.ws.conns_per_user = NonZeroU32::new(100_000).unwrap();
    settings.ws.conns_per_ip = NonZeroU32::new(100_000).unwrap();
    settings.instance_id = Some("test-instance".into());
    if backend == Backend::Postgres {
        settings.database.url = Some(crate::db::fresh_database_url().await);
        settings.database.pool_size = 4;
    }
    settings
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts parley with test settings changed by `tweak`.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings(backend).await;
        tweak(&mut settings);
        Self::start(settings).await
    }

    pub async fn start(settings: Settings) -> Self {
        let app = Application::build(settings).await.expect("parley builds");
        let base = format!("http://{}", app.public_addr());
        let admin = format!("http://{}", app.admin_addr());
        actix_web::rt::spawn(app.run_until_stopped());
        Self {
            base,
            admin,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any request; `token` becomes `Authorization: Bearer`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request reaches parley")
    }

    /// The JSON body of an unauthenticated `GET`.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches parley");
        res.json().await.expect("a JSON body")
    }

    /// The JSON body of a `GET` on the admin listener.
    pub async fn admin_json(&self, path: &str) -> Value {
        let res = self.client.get(format!("{}{path}", self.admin));
        let res = res.send().await.expect("request reaches parley");
        res.json().await.expect("a JSON body")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Registers `username` (e-mail `username@example.com`).
    pub async fn register(&self, username: &str) -> TestUser {
        let res = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "registering {username}");
        let body: Value = res.json().await.unwrap();
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            username: username.to_owned(),
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a room owned by `owner`; returns its id.
    pub async fn create_room(&self, owner: &TestUser, name: &str, kind: &str) -> String {
        let res = self
            .post(
                "/api/v1/rooms",
                &owner.access,
                json!({"name": name, "kind": kind}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Posts a room message over REST; returns the status and body.
    pub async fn post_message(
        &self,
        user: &TestUser,
        room: &str,
        body: &str,
        client_id: &str,
    ) -> (StatusCode, Value) {
        let res = self
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                &user.access,
                json!({"body": body, "client_id": client_id}),
            )
            .await;
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// Status and JSON body of a response.
pub async fn parts(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Asserts a problem+json error with the given status and code.
pub async fn assert_problem(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:parley:problem:{code}"));
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty() && id != "none"),
        "{body}"
    );
    body
}

// --- WebSocket ---------------------------------------------------------------

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How long any single wait for a frame may take before the test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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
        let mut request = self.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", user.access).parse().unwrap(),
        );
        WsClient::open(request).await.expect("WebSocket upgrade")
    }

    /// An upgrade request with a bearer token and an `Origin` if given.
    pub fn ws_request(
        &self,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let mut request = self.ws_url().into_client_request().unwrap();
        let headers = request.headers_mut();
        if let Some(token) = token {
            headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        if let Some(origin) = origin {
            headers.insert("origin", origin.parse().unwrap());
        }
        request
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
    pub async fn ws_refusal(
        &self,
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> (u16, Option<u64>, Value) {
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
    pub async fn ws_refused(
        &self,
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> u16 {
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
    pub async fn open(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
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

// --- The admin listener -----------------------------------------------------

impl TestApp {
    /// `GET /metrics` on the admin listener.
    pub async fn metrics_text(&self) -> String {
        let res = self.client.get(format!("{}/metrics", self.admin));
        res.send().await.unwrap().text().await.unwrap()
    }

    /// One circuit breaker as `GET /admin/circuit-breakers` shows it
    /// (`Null` when there is none of that name).
    pub async fn breaker(&self, name: &str) -> Value {
        let res = self
            .client
            .get(format!("{}/admin/circuit-breakers", self.admin));
        let body: Value = res.send().await.unwrap().json().await.unwrap();
        body["breakers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .cloned()
            .unwrap_or_default()
    }
}

/// The sum of `family`'s samples whose labels include every one of
/// `labels` (each `key="value"`); `None` when no sample matches.
pub fn metric(text: &str, family: &str, labels: &[&str]) -> Option<f64> {
    let prefix = format!("{family}{{");
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&prefix) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

// --- Tokens signed outside the server -----------------------------------------

/// An RSA key in a key folder of its own: start parley with
/// `settings.auth.keys_dir = Some(key.dir.clone())` and the test can sign
/// tokens the server trusts (expired ones, say).
pub struct TestKey {
    key: rsa::RsaPrivateKey,
    pub dir: std::path::PathBuf,
}

impl TestKey {
    pub fn new() -> Self {
        Self::with_bits(2048)
    }

    /// A key of `bits` bits (parley refuses fewer than 2048).
    pub fn with_bits(bits: usize) -> Self {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
        let dir = std::env::temp_dir().join(format!("parley-keys-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        std::fs::write(dir.join("key.pem"), pem.as_bytes()).unwrap();
        Self { key, dir }
    }

    /// Signs `claims` RS256 under the `kid` that `app` publishes for this key.
    pub async fn sign(&self, app: &TestApp, claims: &Value) -> String {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let jwks: Value = app.get_json("/.well-known/jwks.json").await;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = jwks["keys"][0]["kid"].as_str().map(str::to_owned);
        let pem = self.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

// --- parley as a separate process ------------------------------------------------

/// The `parley` binary running as its own process with JSON logs, for tests
/// of signals, exit codes and log output.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub app: TestApp,
    /// Every log line so far.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The tasks copying stdout and stderr into `logs`: done at the
    /// process's end of output.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts the binary with `env` (plus random local ports and JSON logs)
    /// and waits for its "parley is up" line.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"));
        command
            .env_clear()
            .env("PARLEY_HTTP_ADDR", "127.0.0.1:0")
            .env("PARLEY_ADMIN_ADDR", "127.0.0.1:0")
            .env("PARLEY_LOG_FORMAT", "json")
            .env("PARLEY_RATE_AUTH_PER_MIN", "1000")
            // Every request line, so tests can find the one they look for.
            .env("PARLEY_LOG_SAMPLE_SUCCESS", "1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the parley binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // stderr holds what is not a log line (a panic): kept with the logs.
        let mut readers = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let sink = logs.clone();
            readers.push(actix_web::rt::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            }));
        }
        let (public, admin) = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                logs.lock().unwrap().push(line.clone());
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let (Some(public), Some(admin)) =
                    (event["public_addr"].as_str(), event["admin_addr"].as_str())
                {
                    return (public.to_owned(), admin.to_owned());
                }
            }
            panic!("parley exited before reporting its address");
        })
        .await
        .expect("parley reports its address");
        let sink = logs.clone();
        // Keep reading so the pipe never fills; keep every line for the test.
        readers.push(actix_web::rt::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        }));
        let app = TestApp {
            base: format!("http://{public}"),
            admin: format!("http://{admin}"),
            client: reqwest::Client::new(),
        };
        Self {
            child,
            app,
            logs,
            readers,
        }
    }

    /// Sends `signal` (e.g. `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`), then for its last
    /// output to be read, so `log_text` holds every line it wrote.
    pub async fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("parley exits in time")
            .unwrap();
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        status
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

/// Polls `check` every 100 ms until it returns `Some`, at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
