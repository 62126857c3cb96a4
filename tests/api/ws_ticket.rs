//! Single-use WebSocket tickets (`POST /api/v1/ws-ticket`, `GET
//! /ws?ticket=`): valid once, on any instance, and, like the
//! `access_token` query parameter, never written to a log.

use crate::support::cluster::{redis_prefix, redis_url};
use crate::support::{Backend, ServerProcess, TestApp, TestUser, WsClient, test_settings};
use reqwest::{Method, StatusCode};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn with_ticket(
    app: &TestApp,
    ticket: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    format!("{}?ticket={ticket}", app.ws_url())
        .into_client_request()
        .unwrap()
}

async fn assert_opens_as(app: &TestApp, ticket: &str, user: &TestUser) {
    let ws = WsClient::open(with_ticket(app, ticket)).await.unwrap();
    assert_eq!(ws.hello["user"], user.id.as_str());
}

#[actix_web::test]
async fn a_ticket_opens_one_websocket_once() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;

    let res = app
        .post("/api/v1/ws-ticket", &ada.access, serde_json::json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 30);
    let ticket = body["ticket"].as_str().unwrap();
    assert!(ticket.len() >= 40, "{ticket}");

    assert_opens_as(&app, ticket, &ada).await;
    assert_eq!(
        app.ws_refused(with_ticket(&app, ticket)).await,
        401,
        "spent"
    );
    assert_eq!(app.ws_refused(with_ticket(&app, "made-up")).await, 401);
    // Only a signed-in user gets one.
    let anonymous = app
        .call(Method::POST, "/api/v1/ws-ticket", None, None)
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_ticket_from_one_instance_opens_a_websocket_on_another_once() {
    let key = crate::support::TestKey::new();
    let mut settings = test_settings(Backend::Memory).await;
    settings.redis.url = Some(redis_url());
    settings.redis.prefix = redis_prefix();
    settings.auth.keys_dir = Some(key.dir.clone());
    let one = TestApp::start(settings.clone()).await;
    let two = TestApp::start(settings).await;
    let ada = one.register("ada").await;

    let ticket = one.ws_ticket(&ada).await;
    assert_opens_as(&two, &ticket, &ada).await;
    assert_eq!(one.ws_refused(with_ticket(&one, &ticket)).await, 401);
    assert_eq!(two.ws_refused(with_ticket(&two, &ticket)).await, 401);
}

#[actix_web::test]
async fn tokens_and_tickets_in_the_websocket_url_are_never_logged() {
    let server = ServerProcess::start(&[("PARLEY_LOG", "debug")]).await;
    let app = &server.app;
    let ada = app.register("ada").await;
    let spent = app.ws_ticket(&ada).await;
    assert_opens_as(app, &spent, &ada).await;
    assert_eq!(app.ws_refused(with_ticket(app, &spent)).await, 401);
    let by_token = format!("{}?access_token={}", app.ws_url(), ada.access);
    let ws = WsClient::open(by_token.into_client_request().unwrap())
        .await
        .unwrap();
    ws.close().await;
    let forged = format!("{}?access_token={}x", app.ws_url(), ada.access);
    assert_eq!(
        app.ws_refused(forged.into_client_request().unwrap()).await,
        401
    );

    let logs = server.log_text();
    assert!(logs.contains("/ws"), "the upgrades are logged");
    for secret in [spent.as_str(), ada.access.as_str()] {
        assert!(!logs.contains(secret), "a log line contains {secret:?}");
    }
    assert!(!logs.contains("access_token="));
    assert!(!logs.contains("ticket="));
}

#[actix_web::test]
async fn a_ticket_does_not_outlive_the_token_it_stands_for() {
    let key = crate::support::TestKey::new();
    let dir = key.dir.clone();
    let app = TestApp::spawn_with(Backend::Memory, |s| s.auth.keys_dir = Some(dir)).await;
    let ada = app.register("ada").await;
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"sub": ada.id, "name": "ada", "iss": "parley", "aud": "parley",
                                    "iat": now, "nbf": now, "exp": now + 2});
    let short = TestUser {
        access: key.sign(&app, &claims).await,
        ..ada.clone()
    };
    let ticket = app.ws_ticket(&short).await;
    // The time passing is the event: the token expires under the ticket.
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    assert_eq!(app.ws_refused(with_ticket(&app, &ticket)).await, 401);
}
