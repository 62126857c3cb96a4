//! Probes, version, security headers and the OpenAPI document.

use crate::both_backends;
use crate::support::{Backend, TestApp, eventually};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

both_backends!(probes_answer_on_both_listeners_and_readiness_reports_the_database);

async fn probes_answer_on_both_listeners_and_readiness_reports_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for base in [&app.base, &app.admin] {
        for path in ["/healthz", "/healthz/live", "/health/startup"] {
            let res = app
                .client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{base}{path}");
        }
        for path in ["/readyz", "/healthz/ready"] {
            let res = app
                .client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{base}{path}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["status"], "ok");
            assert_eq!(body["database"]["status"], "ok");
            let expected = if backend == Backend::Memory {
                "memory"
            } else {
                "postgres"
            };
            assert_eq!(body["database"]["backend"], expected);
            assert_eq!(body["redis"]["status"], "disabled");
            assert_eq!(body["instance"], "test-instance");
        }
    }
}

#[actix_web::test]
async fn version_names_the_build() {
    let app = TestApp::spawn(Backend::Memory).await;
    let body: Value = app.get_json("/health/version").await;
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["git_commit"].as_str().is_some_and(|c| !c.is_empty()));
    let built = body["build_time"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(built).is_ok(),
        "{built}"
    );
}

#[actix_web::test]
async fn every_response_carries_security_headers() {
    let app = TestApp::spawn(Backend::Memory).await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let headers = res.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.contains_key("content-security-policy"));
    assert!(headers.contains_key("referrer-policy"));
}

/// Every route of the wire contract (section 2) plus the probes.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/logout-all"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/api/v1/users/me"),
    ("patch", "/api/v1/users/me"),
    ("get", "/api/v1/users/{id}"),
    ("post", "/api/v1/users/{id}/follow"),
    ("delete", "/api/v1/users/{id}/follow"),
    ("post", "/api/v1/posts"),
    ("get", "/api/v1/posts/{id}"),
    ("delete", "/api/v1/posts/{id}"),
    ("get", "/api/v1/feed"),
    ("post", "/api/v1/rooms"),
    ("get", "/api/v1/rooms"),
    ("get", "/api/v1/rooms/{id}"),
    ("post", "/api/v1/rooms/{id}/members"),
    ("delete", "/api/v1/rooms/{id}/members/{user_id}"),
    ("get", "/api/v1/rooms/{id}/messages"),
    ("post", "/api/v1/rooms/{id}/messages"),
    ("get", "/api/v1/notifications"),
    ("get", "/api/v1/notifications/unread-count"),
    ("post", "/api/v1/notifications/{id}/read"),
    ("post", "/api/v1/notifications/read-all"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/health/startup"),
    ("get", "/health/version"),
    ("get", "/sdk/parley.js"),
    ("get", "/sdk/parley.d.ts"),
];

#[actix_web::test]
async fn openapi_lists_every_route_of_the_contract() {
    let app = TestApp::spawn(Backend::Memory).await;
    let doc: Value = app.get_json("/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing from /openapi.json"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[actix_web::test]
async fn cors_answers_only_the_configured_origins() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.http.cors_origins = vec!["https://chat.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/rooms"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://chat.example.com").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://chat.example.com"
    );
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let simple = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(!simple.headers().contains_key("access-control-allow-origin"));
}

/// The public listener tells each component's state; raw errors (which
/// name hosts and ports) and Redis's INFO are for the admin listener.
#[actix_web::test]
async fn public_probes_show_states_but_never_raw_errors_or_redis_info() {
    let down = TestApp::spawn_with(Backend::Memory, |s| {
        s.redis.url = Some("redis://127.0.0.1:1".into());
        s.health.check_interval_ms = 200;
    })
    .await;
    let public = eventually(
        "redis reported degraded",
        Duration::from_secs(15),
        || async {
            let body = down.get_json("/readyz").await;
            (body["redis"]["status"] == "degraded").then_some(body)
        },
    )
    .await;
    assert!(public["redis"].get("error").is_none(), "{public}");
    let admin = down.admin_json("/readyz").await;
    assert!(admin["redis"]["error"].is_string(), "{admin}");

    let up = TestApp::spawn_with(Backend::Memory, |s| {
        s.redis.url = Some(crate::support::cluster::redis_url());
        s.redis.prefix = crate::support::cluster::redis_prefix();
    })
    .await;
    let public = up.get_json("/health/redis-stats").await;
    assert_eq!(public["status"], "ok", "{public}");
    assert!(public.get("info").is_none(), "{public}");
    let admin = up.admin_json("/health/redis-stats").await;
    assert!(admin["info"].is_object(), "{admin}");
}
