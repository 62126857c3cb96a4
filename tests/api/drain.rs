//! The drain: `POST /admin/drain` (Kubernetes `preStop`) and `SIGTERM` on
//! a real process.

use crate::helpers::{Backend, TestApp, assert_problem};
use reqwest::StatusCode;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

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
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .env_clear()
        .env("PARLEY_HTTP_ADDR", "127.0.0.1:0")
        .env("PARLEY_ADMIN_ADDR", "127.0.0.1:0")
        .env("PARLEY_LOG_FORMAT", "json")
        .env("PARLEY_DRAIN_GRACE_MS", "0")
        .env("PARLEY_DRAIN_TIMEOUT_S", "10")
        .env("PARLEY_RATE_AUTH_PER_MIN", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the parley binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let public_addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(addr) = event["public_addr"].as_str() {
                return addr.to_owned();
            }
        }
        panic!("parley exited before reporting its address");
    })
    .await
    .expect("parley reports its address");
    // Keep reading logs so the pipe never fills.
    actix_web::rt::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let app = TestApp {
        base: format!("http://{public_addr}"),
        admin: String::new(),
        client: reqwest::Client::new(),
    };
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    assert_eq!(ws.next_of("reconnect").await["reason"], "draining");
    assert_eq!(
        u16::from(ws.closed().await.expect("a close frame").code),
        1012
    );
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("parley exits within 60 s")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}
