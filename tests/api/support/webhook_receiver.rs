//! A real webhook endpoint for the tests: an actix-web server on
//! 127.0.0.1:0 that verifies each delivery's Standard Webhooks signature
//! with the reference `standardwebhooks` crate, records every attempt, and
//! answers as the test says (2xx, a failure status, or not for a long time).

use super::TestApp;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub webhook_id: String,
    pub body: Value,
    /// The signature checked out under the endpoint's secret.
    pub verified: bool,
    /// What the receiver answered (None: it was still hanging).
    pub answered: Option<u16>,
}

/// How the receiver answers.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ok,
    /// This status, `n` more times, then 200.
    Fail {
        status: u16,
        times: u32,
    },
    /// This status, always.
    AlwaysFail(u16),
    /// Holds the request this long before answering 200.
    Hang(Duration),
}

#[derive(Default)]
struct State {
    secret: Mutex<Option<String>>,
    answer: Mutex<Option<Answer>>,
    received: Mutex<Vec<Received>>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<State>,
}

impl Receiver {
    pub async fn start(answer: Answer) -> Self {
        let state = Arc::new(State::default());
        *state.answer.lock().unwrap() = Some(answer);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shared = state.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(actix_web::web::Data::from(shared.clone()))
                .default_service(actix_web::web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        Self { url, state }
    }

    /// Verifies deliveries with `secret` from now on.
    pub fn set_secret(&self, secret: &str) {
        *self.state.secret.lock().unwrap() = Some(secret.to_owned());
    }

    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The deliveries answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        let all = self.received();
        all.into_iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .collect()
    }

    /// Waits until `check` holds of what was received (polling, bounded).
    pub async fn until<T>(&self, what: &str, check: impl Fn(&[Received]) -> Option<T>) -> T {
        super::eventually(what, Duration::from_secs(30), || {
            let found = check(&self.received());
            async move { found }
        })
        .await
    }

    /// The ids of deliveries answered 2xx, each once.
    pub fn delivered_ids(&self) -> BTreeSet<String> {
        self.delivered().into_iter().map(|r| r.webhook_id).collect()
    }
}

async fn receive(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    state: actix_web::web::Data<State>,
) -> actix_web::HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let verified = state
        .secret
        .lock()
        .unwrap()
        .as_deref()
        .is_some_and(|secret| {
            let mut headers = http::HeaderMap::new();
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                headers.insert(name, header(name).parse().unwrap());
            }
            standardwebhooks::Webhook::new(secret)
                .and_then(|hook| hook.verify(&body, &headers))
                .is_ok()
        });
    let answer = {
        let mut answer = state.answer.lock().unwrap();
        let now = answer.unwrap_or(Answer::Ok);
        if let Answer::Fail { status, times } = now {
            *answer = Some(if times <= 1 {
                Answer::Ok
            } else {
                Answer::Fail {
                    status,
                    times: times - 1,
                }
            });
        }
        now
    };
    let index = {
        let mut received = state.received.lock().unwrap();
        received.push(Received {
            webhook_id: header("webhook-id"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            verified,
            answered: None,
        });
        received.len() - 1
    };
    let status = match answer {
        Answer::Ok => 200,
        Answer::Fail { status, .. } | Answer::AlwaysFail(status) => status,
        Answer::Hang(period) => {
            tokio::time::sleep(period).await;
            200
        }
    };
    state.received.lock().unwrap()[index].answered = Some(status);
    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

// --- the admin listener's webhook and API key routes ---------------------------

impl TestApp {
    /// `POST` on the admin listener; status and JSON body.
    pub async fn admin_post(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.admin))
            .json(&body)
            .send()
            .await
            .expect("request reaches parley");
        super::parts(res).await
    }

    /// `DELETE` on the admin listener; the status.
    pub async fn admin_delete(&self, path: &str) -> reqwest::StatusCode {
        let res = self.client.delete(format!("{}{path}", self.admin)).send();
        res.await.expect("request reaches parley").status()
    }

    /// Creates an endpoint for `receiver` and teaches it the secret; the id.
    pub async fn webhook(&self, receiver: &Receiver, events: &[&str]) -> String {
        let (status, created) = self
            .admin_post(
                "/admin/webhooks",
                json!({"url": receiver.url, "events": events}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        receiver.set_secret(created["secret"].as_str().unwrap());
        created["id"].as_str().unwrap().to_owned()
    }

    /// A new API key with `scopes`: (id, key).
    pub async fn api_key(&self, scopes: &[&str]) -> (String, String) {
        let (status, created) = self
            .admin_post(
                "/admin/api-keys",
                json!({"name": "backend", "scopes": scopes}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        (
            created["id"].as_str().unwrap().to_owned(),
            created["key"].as_str().unwrap().to_owned(),
        )
    }
}
