//! Logs: JSON lines that carry the request id and user, and never personal
//! data or secrets (e-mail addresses, passwords, tokens, `Authorization`).

use crate::support::{PASSWORD, ServerProcess};
use reqwest::Method;
use serde_json::{Value, json};

#[actix_web::test]
async fn logs_carry_request_ids_but_never_emails_passwords_or_tokens() {
    // Debug level: the most a misconfigured production could print.
    let server = ServerProcess::start(&[("PARLEY_LOG", "debug")]).await;
    let app = &server.app;
    let user = app.register("privacy").await;
    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "privacy@example.com", "password": PASSWORD})),
        )
        .await;
    let tokens: Value = login.json().await.unwrap();
    app.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "privacy", "password": "wrong-password-123"})),
    )
    .await;
    app.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": user.refresh})),
    )
    .await;
    // Reuse of the spent token is logged as an event: it must not print the token.
    app.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": user.refresh})),
    )
    .await;
    // The reuse revoked the registration's login: the second login goes on.
    let login = crate::support::TestUser {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    };
    app.client
        .get(app.url("/api/v1/users/me"))
        .bearer_auth(&login.access)
        .header("x-request-id", "pii-check-1")
        .send()
        .await
        .unwrap();
    let mut ws = app.ws(&login).await;
    ws.send(json!({"type": "ping", "ref": "p"})).await;
    ws.next_of("pong").await;

    let logs = server.log_text();
    let secrets = [
        "privacy@example.com",
        PASSWORD,
        "wrong-password-123",
        user.access.as_str(),
        user.refresh.as_str(),
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "a log line contains {secret:?}");
    }
    assert!(
        !logs.to_lowercase().contains("bearer "),
        "an Authorization header was logged"
    );
    let request_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["span"]["request_id"] == "pii-check-1" && e["message"] == "request")
        .expect("the request is logged with its id");
    assert_eq!(request_line["span"]["user_id"], user.id.as_str());
    assert_eq!(request_line["status"], "200");
    assert!(request_line["latency_ms"].as_f64().is_some());
}
