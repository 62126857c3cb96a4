//! `PARLEY_TRUSTED_PROXIES` with CIDR ranges: behind a proxy inside a
//! trusted range, per-IP limits key on the forwarded client address; a bad
//! entry stops start-up with a message naming the setting.

use crate::support::{Backend, PASSWORD, TestApp, test_settings};
use parley::config::Settings;
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn behind_a_trusted_proxy_range_each_forwarded_client_has_its_own_auth_limit() {
    let from_env = Settings::from_env(vec![
        (
            "PARLEY_TRUSTED_PROXIES".into(),
            "10.0.0.0/8, 127.0.0.0/8".into(),
        ),
        ("PARLEY_RATE_AUTH_PER_MIN".into(), "2".into()),
    ])
    .unwrap();
    let mut settings = test_settings(Backend::Memory).await;
    settings.http.trusted_proxies = from_env.http.trusted_proxies;
    settings.rate.auth_per_min = from_env.rate.auth_per_min;
    let app = TestApp::start(settings).await;
    let login = |forwarded_for: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"username": "nobody", "password": PASSWORD}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            login("203.0.113.1").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A made-up left-most entry does not buy a fresh budget: the proxy
    // appended the real address, and that is the one counted.
    assert_eq!(
        login("198.51.100.99, 203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy range has its own.
    assert_eq!(
        login("203.0.113.2").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn a_bad_trusted_proxy_entry_stops_start_up_naming_the_setting() {
    for bad in ["10.0.0.0/33", "ingress", "10.0.0.1-10.0.0.9"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
            .env_clear()
            .env("PARLEY_HTTP_ADDR", "127.0.0.1:0")
            .env("PARLEY_ADMIN_ADDR", "127.0.0.1:0")
            .env("PARLEY_TRUSTED_PROXIES", format!("10.0.0.0/8,{bad}"))
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), out)
            .await
            .expect("parley exits at once")
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("PARLEY_TRUSTED_PROXIES") && stderr.contains(bad),
            "{stderr}"
        );
    }
}
