//! The drain: `POST /admin/drain` (Kubernetes `preStop`) and `SIGTERM` on
//! a real process.

use crate::support::{Backend, ServerProcess, TestApp, assert_problem};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

#[actix_web::test]
async fn admin_drain_tells_clients_to_reconnect_refuses_new_work_and_turns_readiness_off() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.drain.grace_ms = 0;
        s.drain.timeout_s = 10;
    })
    .await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut ws = app.ws(&ada).await;
    ws.subscribe(&room, None).await;

    let client = app.client.clone();
    let admin = app.admin.clone();
    let drain = actix_web::rt::spawn(async move {
        let res = client
            .post(format!("{admin}/admin/drain"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()
    });

    let reconnect = ws.next_of("reconnect").await;
    assert_eq!(reconnect["reason"], "draining");
    let wait = reconnect["retry_after_ms"].as_u64().unwrap();
    assert!((500..3000).contains(&wait), "{reconnect}");
    let close = ws.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1012);

    let report = drain.await.unwrap();
    assert_eq!(report["completed"], true, "{report}");
    assert_eq!(report["sessions_told"], 1);
    assert_eq!(report["sessions_left"], 0);

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json::<Value>().await.unwrap()["draining"], true);
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        live.status(),
        StatusCode::OK,
        "liveness stays up during a drain"
    );

    let res = app.get("/api/v1/users/me", &ada.access).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let mut upgrade =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url(),
        )
        .unwrap();
    upgrade.headers_mut().insert(
        "authorization",
        format!("Bearer {}", ada.access).parse().unwrap(),
    );
    assert_eq!(app.ws_refused(upgrade).await, 503);

    // A second preStop call waits for the same drain and reports it.
    let again: Value = app
        .client
        .post(format!("{}/admin/drain", app.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["sessions_told"], 1);
}

#[actix_web::test]
async fn sigterm_drains_websocket_clients_and_the_process_exits_zero() {
    let mut server = ServerProcess::start(&[
        ("PARLEY_DRAIN_GRACE_MS", "0"),
        ("PARLEY_DRAIN_TIMEOUT_S", "10"),
    ])
    .await;
    let ada = server.app.register("ada").await;
    let mut ws = server.app.ws(&ada).await;

    server.signal("TERM");
    assert_eq!(ws.next_of("reconnect").await["reason"], "draining");
    assert_eq!(
        u16::from(ws.closed().await.expect("a close frame").code),
        1012
    );
    let exit = server.exit_status(Duration::from_secs(60)).await;
    assert!(exit.success(), "exit status {exit}");
    let logs = server.log_text();
    for step in [
        "drain: started",
        "drain: WebSocket sessions closed",
        "drain: writers flushed",
        "parley stopped",
    ] {
        assert!(logs.contains(step), "the drain logs {step:?}");
    }
}
