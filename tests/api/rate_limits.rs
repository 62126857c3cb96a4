//! The REST rate limits of the wire contract on one instance.

use crate::support::{Backend, PASSWORD, TestApp, assert_problem};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::num::NonZeroU32;

fn header(res: &reqwest::Response, name: &str) -> u64 {
    res.headers()[name].to_str().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn auth_routes_are_limited_per_client_ip_with_headers_and_retry_after() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.rate.auth_per_min = NonZeroU32::new(3).unwrap()
    })
    .await;
    let login = || {
        app.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": PASSWORD})),
        )
    };
    for remaining in [2, 1, 0] {
        let res = login().await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&res, "x-ratelimit-limit"), 3);
        assert_eq!(header(&res, "x-ratelimit-remaining"), remaining);
        assert!(header(&res, "x-ratelimit-reset") <= 60);
    }
    let res = login().await;
    let retry_after = header(&res, "retry-after");
    assert!((1..=20).contains(&retry_after), "retry-after {retry_after}");
    assert_eq!(header(&res, "x-ratelimit-remaining"), 0);
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[actix_web::test]
async fn the_api_limit_is_per_user() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.rate.api_per_min = NonZeroU32::new(5).unwrap()
    })
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/v1/users/me", &alice.access).await.status(),
            StatusCode::OK
        );
    }
    let refused = app.get("/api/v1/users/me", &alice.access).await;
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let res = app.get("/api/v1/users/me", &bob.access).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "another user has their own budget"
    );
    assert_eq!(header(&res, "x-ratelimit-remaining"), 4);
}

#[actix_web::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let limited = |trusted: bool| {
        TestApp::spawn_with(Backend::Memory, move |s| {
            s.rate.auth_per_min = NonZeroU32::new(1).unwrap();
            if trusted {
                s.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            }
        })
    };
    let login_from = |app: &TestApp, ip: &str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"username": "nobody", "password": PASSWORD}))
            .send()
    };
    let untrusted = limited(false).await;
    assert_eq!(
        login_from(&untrusted, "203.0.113.1")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&untrusted, "203.0.113.2")
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a client cannot dodge the limit by forging X-Forwarded-For"
    );
    let trusted = limited(true).await;
    assert_eq!(
        login_from(&trusted, "203.0.113.1").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&trusted, "203.0.113.2").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&trusted, "203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Once the auth limit refuses a client, no spelling of the same route gets
/// it another password check: every variant is either limited or not a
/// route at all.
#[actix_web::test]
async fn the_auth_limit_cannot_be_sidestepped_by_spelling_the_path_differently() {
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.rate.auth_per_min = NonZeroU32::new(2).unwrap()
    })
    .await;
    let login = |path: &'static str| {
        app.call(
            Method::POST,
            path,
            None,
            Some(json!({"username": "nobody", "password": PASSWORD})),
        )
    };
    for _ in 0..2 {
        assert_eq!(
            login("/api/v1/auth/login").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("/api/v1/auth/login").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    for path in [
        "/api/v1/%61uth/login",
        "/api/v1/auth/%6Cogin",
        "/api/v1/%61%75%74%68/login",
        "/api/v1//auth/login",
        "/api/v1/auth//login",
        "/api/v1/auth/login/",
        "/api/v1/AUTH/login",
        "/api/v1/auth/LOGIN",
        "/api/%761/auth/login",
    ] {
        let status = login(path).await.status();
        assert!(
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::NOT_FOUND,
            "{path} answered {status}: a password check past the limit"
        );
    }
}
