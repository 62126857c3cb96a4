//! A push service of the tests' own (RFC 8030), on 127.0.0.1: it plays
//! the browser too. Each [`TestSubscription`] has a fresh P-256 key pair
//! and auth secret; every request is decrypted with them as a browser
//! would (RFC 8291 `aes128gcm`), and its VAPID token (RFC 8292) verified
//! against the server's public key, before it counts as delivered. Answers
//! are `201` unless scripted ([`Answer`]).

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the push service answers one request with.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A status, with `Retry-After` seconds if given.
    Status(u16, Option<u64>),
    /// No answer for a minute: the request is never accepted.
    Hang,
}

/// A browser's subscription: what it would post to parley, and its keys.
pub struct TestSubscription {
    /// The id in the endpoint's path.
    pub id: String,
    pub endpoint: String,
    /// `{endpoint, keys: {p256dh, auth}}`, as `PushSubscription.toJSON()`.
    pub body: Value,
}

/// One accepted push, decrypted and verified.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub subscription: String,
    /// The decrypted message (`{id, kind, payload, ts, unread}`).
    pub message: Value,
    pub ttl: String,
    pub urgency: String,
}

struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

#[derive(Default)]
struct Inner {
    browsers: HashMap<String, Browser>,
    scripts: HashMap<String, VecDeque<Answer>>,
    /// Requests received, by subscription (answered or not).
    requests: HashMap<String, u32>,
    delivered: Vec<Delivery>,
    /// Requests that failed decryption or VAPID checks: a test fails on any.
    problems: Vec<String>,
    /// The server's VAPID public key (base64url), once known.
    vapid_key: Option<String>,
}

pub struct PushService {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    server: actix_web::dev::ServerHandle,
}

impl PushService {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let data = web::Data::new(inner.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024))
                .route("/push/{id}", web::post().to(receive))
        })
        .workers(2)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.disable_signals().run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            port,
            inner,
            server: handle,
        }
    }

    /// `PARLEY_PUSH_ALLOW_HOSTS` for this service.
    pub fn allow_host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Tokens are verified against `key` (the server's VAPID public key).
    pub fn trust(&self, key: &str) {
        self.inner.lock().unwrap().vapid_key = Some(key.to_owned());
    }

    /// A new browser subscription on this service.
    pub fn subscription(&self) -> TestSubscription {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let auth: [u8; 16] = rand::random();
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let id = uuid::Uuid::new_v4().simple().to_string();
        let endpoint = format!("http://127.0.0.1:{}/push/{id}", self.port);
        let body = json!({
            "endpoint": endpoint,
            "keys": {"p256dh": URL_SAFE_NO_PAD.encode(point.as_bytes()), "auth": URL_SAFE_NO_PAD.encode(auth)},
        });
        let browser = Browser { secret, auth };
        self.inner
            .lock()
            .unwrap()
            .browsers
            .insert(id.clone(), browser);
        TestSubscription { id, endpoint, body }
    }

    /// The next requests for `subscription` get these answers, in order.
    pub fn script(&self, subscription: &TestSubscription, answers: &[Answer]) {
        let mut inner = self.inner.lock().unwrap();
        let queue = inner.scripts.entry(subscription.id.clone()).or_default();
        queue.extend(answers.iter().cloned());
    }

    /// Requests received for `subscription`, whatever was answered.
    pub fn requests(&self, subscription: &TestSubscription) -> u32 {
        let inner = self.inner.lock().unwrap();
        inner.requests.get(&subscription.id).copied().unwrap_or(0)
    }

    /// Every request for any subscription.
    pub fn all_requests(&self) -> u32 {
        self.inner.lock().unwrap().requests.values().sum()
    }

    /// The pushes accepted (`201`) for `subscription`, in order.
    pub fn delivered(&self, subscription: &TestSubscription) -> Vec<Delivery> {
        let inner = self.inner.lock().unwrap();
        assert!(inner.problems.is_empty(), "{:?}", inner.problems);
        inner
            .delivered
            .iter()
            .filter(|d| d.subscription == subscription.id)
            .cloned()
            .collect()
    }

    /// Waits until `subscription` has `n` accepted pushes (at most 20 s).
    pub async fn await_delivered(
        &self,
        subscription: &TestSubscription,
        n: usize,
    ) -> Vec<Delivery> {
        super::eventually("pushes delivered", Duration::from_secs(20), || async {
            let delivered = self.delivered(subscription);
            (delivered.len() >= n).then_some(delivered)
        })
        .await
    }

    /// Waits until `subscription` got `n` requests (at most 20 s).
    pub async fn await_requests(&self, subscription: &TestSubscription, n: u32) {
        super::eventually("push requests", Duration::from_secs(20), || async {
            (self.requests(subscription) >= n).then_some(())
        })
        .await
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let server = self.server.clone();
        actix_web::rt::spawn(async move { server.stop(false).await });
    }
}

async fn receive(
    inner: web::Data<Arc<Mutex<Inner>>>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let answer = {
        let mut inner = inner.lock().unwrap();
        *inner.requests.entry(id.clone()).or_default() += 1;
        let scripted = inner
            .scripts
            .get_mut(id.as_str())
            .and_then(VecDeque::pop_front);
        scripted.unwrap_or(Answer::Status(201, None))
    };
    let status = match answer {
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return HttpResponse::RequestTimeout().finish();
        }
        Answer::Status(status, retry_after) if status != 201 => {
            let mut response =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            if let Some(seconds) = retry_after {
                response.insert_header(("Retry-After", seconds.to_string()));
            }
            return response.finish();
        }
        Answer::Status(status, _) => status,
    };
    // Decrypted outside the lock: requests are checked in parallel.
    let (browser, key) = {
        let inner = inner.lock().unwrap();
        let browser = inner
            .browsers
            .get(id.as_str())
            .map(|b| (b.secret.clone(), b.auth));
        (browser, inner.vapid_key.clone())
    };
    let opened = open(browser, key.as_deref(), &id, &request, &body);
    let mut inner = inner.lock().unwrap();
    match opened {
        Ok(delivery) => {
            inner.delivered.push(delivery);
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
        }
        Err(problem) => {
            inner.problems.push(problem.clone());
            HttpResponse::BadRequest().body(problem)
        }
    }
}

/// Checks the headers and the VAPID token, then decrypts the body.
fn open(
    browser: Option<(p256::SecretKey, [u8; 16])>,
    vapid_key: Option<&str>,
    id: &str,
    request: &HttpRequest,
    body: &[u8],
) -> Result<Delivery, String> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("no {name} header"))
    };
    if header("content-encoding")? != "aes128gcm" {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    let host = header("host")?;
    verify_vapid(
        vapid_key,
        &header("authorization")?,
        &format!("http://{host}"),
    )?;
    let (secret, auth) = browser.ok_or("unknown subscription")?;
    let auth = web_push_native::Auth::from(auth);
    let plain = web_push_native::decrypt(body.to_vec(), &secret, &auth)
        .map_err(|e| format!("cannot decrypt: {e}"))?;
    let message = serde_json::from_slice(&plain).map_err(|e| format!("not JSON: {e}"))?;
    Ok(Delivery {
        subscription: id.to_owned(),
        message,
        ttl: header("ttl")?,
        urgency: header("urgency")?,
    })
}

/// `vapid t=<ES256 JWT>, k=<key>`: `k` is the server's key, the token is
/// signed by it, names this origin and a contact, and expires within a day.
fn verify_vapid(vapid_key: Option<&str>, value: &str, origin: &str) -> Result<(), String> {
    let expected = vapid_key.ok_or("the test never trusted a VAPID key")?;
    let rest = value
        .strip_prefix("vapid t=")
        .ok_or("not a vapid Authorization")?;
    let (token, key) = rest.split_once(", k=").ok_or("no k= in Authorization")?;
    if key != expected {
        return Err(format!("k={key} is not the server's key"));
    }
    let point = URL_SAFE_NO_PAD.decode(key).map_err(|e| e.to_string())?;
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .map_err(|e| format!("VAPID token refused: {e}"))?
        .claims;
    let exp = claims["exp"].as_i64().unwrap_or_default();
    if exp > chrono::Utc::now().timestamp() + 24 * 3600 {
        return Err("VAPID token valid for more than 24 hours".into());
    }
    if !claims["sub"]
        .as_str()
        .is_some_and(|s| s.starts_with("mailto:") || s.starts_with("https:"))
    {
        return Err("VAPID sub is not a contact".into());
    }
    Ok(())
}
