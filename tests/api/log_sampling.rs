//! Log volume: successful request lines are sampled
//! (`PARLEY_LOG_SAMPLE_SUCCESS`), failures never are; and HSTS is sent only
//! when a trusted proxy says the request came over TLS.

use crate::support::{Backend, ServerProcess, TestApp};
use serde_json::Value;
use std::time::Duration;

fn request_lines(server: &ServerProcess, route: &str) -> Vec<Value> {
    server
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["message"] == "request" && e["route"] == route)
        .collect()
}

#[actix_web::test]
async fn one_in_n_successes_is_logged_and_every_failure() {
    let server = ServerProcess::start(&[("PARLEY_LOG_SAMPLE_SUCCESS", "5")]).await;
    let app = &server.app;
    for _ in 0..10 {
        let res = app
            .client
            .get(app.url("/healthz/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    for _ in 0..3 {
        let res = app
            .client
            .get(app.url("/api/v1/users/me"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    // Lines are written in order: once the last failure's is in, every
    // earlier one is too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while request_lines(&server, "/api/v1/users/me").len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "failures not logged:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let successes = request_lines(&server, "/healthz/live");
    assert_eq!(successes.len(), 2, "{successes:?}");
    for line in &successes {
        assert_eq!(line["sampled"], 5, "a line says how many it stands for");
    }
    assert_eq!(request_lines(&server, "/api/v1/users/me").len(), 3);
}

#[actix_web::test]
async fn hsts_only_when_a_trusted_proxy_says_https() {
    let hsts = |res: &reqwest::Response| res.headers().get("strict-transport-security").cloned();
    let behind_proxy = TestApp::spawn_with(Backend::Memory, |s| {
        s.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let over_tls = behind_proxy
        .client
        .get(behind_proxy.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let value = hsts(&over_tls).expect("HSTS over TLS");
    assert!(value.to_str().unwrap().starts_with("max-age="), "{value:?}");
    let plain = behind_proxy
        .client
        .get(behind_proxy.url("/healthz"))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    assert!(hsts(&plain).is_none(), "no HSTS over plain HTTP");

    // The same header from a peer that is not a trusted proxy is not believed.
    let direct = TestApp::spawn(Backend::Memory).await;
    let spoofed = direct
        .client
        .get(direct.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        hsts(&spoofed).is_none(),
        "an untrusted X-Forwarded-Proto is ignored"
    );
}
