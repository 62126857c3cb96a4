//! Starting parley in-process for a test and talking to it over HTTP.
//! Every HTTP call of the suite goes through [`TestApp`].

use parley::app::startup::Application;
use parley::config::Settings;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::num::NonZeroU32;
use std::time::Duration;

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
                    super::$name($crate::support::Backend::Memory).await
                }
                #[actix_web::test]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
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
        settings.database.url = Some(super::db::fresh_database_url().await);
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
