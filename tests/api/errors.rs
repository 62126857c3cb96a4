//! Bad input gets a clear problem+json answer, and every response carries
//! a request id.

use crate::both_backends;
use crate::support::{Backend, TestApp, assert_problem};
use reqwest::StatusCode;

both_backends!(
    malformed_json_wrong_content_type_and_oversized_bodies_get_clear_errors,
    request_ids_are_echoed_or_generated_and_appear_in_problems,
);

async fn malformed_json_wrong_content_type_and_oversized_bodies_get_clear_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("tester").await;
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(app.url("/api/v1/posts"))
            .bearer_auth(&user.access)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = post("{\"body\": ".into(), "application/json")
        .await
        .unwrap();
    let body = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(body["detail"].as_str().unwrap().contains("JSON"), "{body}");

    let res = post("{\"body\": 5}".into(), "application/json")
        .await
        .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;

    let res = post("body=x".into(), "application/x-www-form-urlencoded")
        .await
        .unwrap();
    let body = assert_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("Content-Type"),
        "{body}"
    );

    let huge = format!("{{\"body\": \"{}\"}}", "x".repeat(70 * 1024));
    let res = post(huge, "application/json").await.unwrap();
    assert_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;

    let res = app.get("/api/v1/no-such-route", &user.access).await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;

    // A known path with another method (the scope's default service answers
    // for it), and a path parameter that is not an id.
    let res = app
        .client
        .put(app.url("/api/v1/posts"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get("/api/v1/posts/not-an-id", &user.access).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;

    // Nothing was stored by any of it.
    let feed: serde_json::Value = app
        .get("/api/v1/feed", &user.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed["items"].as_array().unwrap().len(), 0);
}

async fn request_ids_are_echoed_or_generated_and_appear_in_problems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let body = assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(body["request_id"], "trace-me-42");

    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok());

    // A forged id with a newline (log injection) is replaced, not echoed.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "evil id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "evil id with spaces");
}
