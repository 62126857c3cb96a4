//! Exponential backoff per account identifier after failed logins:
//! independent of the per-IP limit, the same for identifiers that name no
//! account, and shared by every instance through Redis.

use crate::both_backends;
use crate::support::cluster::{Cluster, redis_url};
use crate::support::{Backend, PASSWORD, TestApp, assert_problem};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

both_backends!(failed_logins_lock_an_identifier_whether_or_not_it_names_an_account,);

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

/// Five free failures, then each one locks the identifier: the statuses a
/// client sees for `username`, ending with an attempt with the right password.
async fn failures_then_right_password(app: &TestApp, username: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            login(app, username, "wrong password!")
                .await
                .status()
                .as_u16(),
        );
    }
    let locked = login(app, username, PASSWORD).await;
    statuses.push(locked.status().as_u16());
    if locked.status() == StatusCode::TOO_MANY_REQUESTS {
        assert_eq!(locked.headers()["retry-after"], "1");
        assert_problem(locked, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    statuses
}

async fn failed_logins_lock_an_identifier_whether_or_not_it_names_an_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada").await;
    let expected = [401, 401, 401, 401, 401, 401, 429];
    assert_eq!(failures_then_right_password(&app, "ada").await, expected);
    // Indistinguishable for a name with no account behind it.
    assert_eq!(failures_then_right_password(&app, "nobody").await, expected);
    // Other accounts are untouched.
    app.register("bob").await;
    assert_eq!(login(&app, "bob", PASSWORD).await.status(), StatusCode::OK);

    // The lock is time itself: once it passes, the right password works
    // and clears the count.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(login(&app, "ADA", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        login(&app, "ada", "wrong password!").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// haproxy spreads the attempts over both instances: only a count shared
/// through Redis locks after the sixth failure.
#[actix_web::test]
async fn the_login_backoff_holds_across_instances() {
    let cluster = Cluster::start(2, &redis_url(), &[("PARLEY_RATE_AUTH_PER_MIN", "100000")]).await;
    cluster.lb.register("ada").await;
    assert_eq!(
        failures_then_right_password(&cluster.lb, "ada").await,
        [401, 401, 401, 401, 401, 401, 429]
    );
}
