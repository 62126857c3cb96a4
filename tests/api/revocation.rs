//! Log out everywhere and refresh-token reuse end access at once (contract
//! 6.2): the revoked logins' access tokens are refused on REST and at the
//! WebSocket upgrade (bearer, `?access_token=` and tickets), their refresh
//! tokens are refused, and their open WebSockets get `error`
//! `unauthorized` and close 1008, on every instance, also when the bus lost
//! the news (Redis down) or the instance restarted.

use crate::both_backends;
use crate::support::cluster::{Cluster, PrivateRedis, redis_url};
use crate::support::ws::ws_request;
use crate::support::{
    Backend, PASSWORD, TestApp, TestUser, WsClient, assert_problem, eventually, metric,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

both_backends!(
    logging_out_everywhere_ends_every_login_and_a_new_login_works_at_once,
    a_reused_refresh_token_ends_its_login_and_no_other,
    logging_out_ends_that_login_and_no_other,
    logging_out_everywhere_needs_a_valid_token,
);

/// A second login of `user`: a new refresh family.
async fn login(app: &TestApp, user: &TestUser) -> TestUser {
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": user.username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    TestUser {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    }
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": token})),
        )
        .await;
    crate::support::parts(res).await
}

async fn logout_all(app: &TestApp, user: &TestUser) {
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/logout-all",
            Some(&user.access),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/users/me", token).await.status()
}

/// The socket is told `unauthorized`, then closed with 1008.
async fn assert_signed_out(ws: &mut WsClient) {
    let frame = ws.next_or_closed().await.expect("an error frame first");
    assert_eq!(
        (frame["type"].as_str(), frame["code"].as_str()),
        (Some("error"), Some("unauthorized")),
        "{frame}"
    );
    let close = ws.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
}

/// The socket is still served.
async fn assert_open(ws: &mut WsClient) {
    ws.send(json!({"type": "ping", "ref": "still"})).await;
    let pong = ws.next_of("pong").await;
    assert_eq!(pong["ref"], "still");
}

async fn logging_out_everywhere_ends_every_login_and_a_new_login_works_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let phone = login(&app, &ada).await;
    let bob = app.register("bob").await;
    let mut ada_ws = app.ws(&ada).await;
    let mut phone_ws = app.ws(&phone).await;
    let mut bob_ws = app.ws(&bob).await;
    // A ticket issued before the revocation must not open a socket after it.
    let ticket = app.ws_ticket(&phone).await;

    logout_all(&app, &ada).await;

    assert_signed_out(&mut ada_ws).await;
    assert_signed_out(&mut phone_ws).await;
    for old in [&ada, &phone] {
        let res = app.get("/api/v1/users/me", &old.access).await;
        let problem = assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert!(
            problem["detail"].as_str().unwrap().contains("signed out"),
            "{problem}"
        );
        assert_eq!(
            app.ws_refused(app.ws_request(Some(&old.access), None))
                .await,
            401
        );
        let url = format!("{}?access_token={}", app.ws_url(), old.access);
        assert_eq!(app.ws_refused(ws_request(&url, None, None)).await, 401);
        assert_eq!(
            refresh(&app, &old.refresh).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let url = format!("{}?ticket={ticket}", app.ws_url());
    assert_eq!(app.ws_refused(ws_request(&url, None, None)).await, 401);

    // The next login works at once, on REST and WebSocket.
    let again = login(&app, &ada).await;
    assert_eq!(me_status(&app, &again.access).await, StatusCode::OK);
    let mut again_ws = app.ws(&again).await;
    assert_open(&mut again_ws).await;
    let (status, _) = refresh(&app, &again.refresh).await;
    assert_eq!(status, StatusCode::OK);

    // Someone else is untouched.
    assert_eq!(me_status(&app, &bob.access).await, StatusCode::OK);
    assert_open(&mut bob_ws).await;
    let metrics = app.metrics_text().await;
    let applied = metric(
        &metrics,
        "parley_revocations_applied_total",
        &["kind=\"user\"", "source=\"local\""],
    );
    assert_eq!(applied, Some(1.0), "{metrics}");
    let closed = metric(&metrics, "parley_revocation_sessions_closed_total", &[]);
    assert_eq!(closed, Some(2.0));
}

async fn a_reused_refresh_token_ends_its_login_and_no_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let laptop = login(&app, &ada).await;
    let mut stolen_ws = app.ws(&ada).await;
    let mut laptop_ws = app.ws(&laptop).await;

    let (status, rotated) = refresh(&app, &ada.refresh).await;
    assert_eq!(status, StatusCode::OK);
    let rotated_access = rotated["access_token"].as_str().unwrap();
    // The spent token presented again: its family is revoked.
    assert_eq!(
        refresh(&app, &ada.refresh).await.0,
        StatusCode::UNAUTHORIZED
    );

    assert_signed_out(&mut stolen_ws).await;
    assert_eq!(me_status(&app, &ada.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me_status(&app, rotated_access).await,
        StatusCode::UNAUTHORIZED
    );
    let rotated_refresh = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&app, rotated_refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.ws_refused(app.ws_request(Some(rotated_access), None))
            .await,
        401
    );

    // The other login of the same user goes on.
    assert_eq!(me_status(&app, &laptop.access).await, StatusCode::OK);
    assert_open(&mut laptop_ws).await;
    assert_eq!(refresh(&app, &laptop.refresh).await.0, StatusCode::OK);
}

async fn logging_out_ends_that_login_and_no_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let laptop = login(&app, &ada).await;
    let mut ada_ws = app.ws(&ada).await;
    let mut laptop_ws = app.ws(&laptop).await;

    let body = json!({"refresh_token": ada.refresh});
    let res = app.post("/api/v1/auth/logout", &ada.access, body).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    assert_signed_out(&mut ada_ws).await;
    assert_eq!(me_status(&app, &ada.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &laptop.access).await, StatusCode::OK);
    assert_open(&mut laptop_ws).await;
}

async fn logging_out_everywhere_needs_a_valid_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for token in [None, Some("not-a-jwt")] {
        let res = app
            .call(Method::POST, "/api/v1/auth/logout-all", token, None)
            .await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // A body is not needed, and one is ignored rather than refused.
    let ada = app.register("ada").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/logout-all",
            Some(&ada.access),
            Some(json!({"unexpected": true})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// Reads until the socket is signed out; how long that took.
async fn signed_out_within(ws: &mut WsClient, since: Instant) -> Duration {
    assert_signed_out(ws).await;
    since.elapsed()
}

#[actix_web::test]
async fn logging_out_everywhere_on_one_instance_closes_sockets_on_another() {
    let cluster = Cluster::start(2, &redis_url(), &[]).await;
    let (a, b) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let ada = a.register("ada").await;
    let mut on_b = b.ws(&ada).await;
    assert_eq!(on_b.hello["instance"], "node-1");
    assert_eq!(me_status(b, &ada.access).await, StatusCode::OK);

    let started = Instant::now();
    logout_all(a, &ada).await;
    let took = signed_out_within(&mut on_b, started).await;
    eprintln!("logout-all on node-0 closed the socket on node-1 in {took:?}");

    assert_eq!(me_status(b, &ada.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b.ws_refused(b.ws_request(Some(&ada.access), None)).await,
        401
    );
    let again = login(&cluster.lb, &ada).await;
    assert_eq!(me_status(b, &again.access).await, StatusCode::OK);
}

#[actix_web::test]
async fn a_revocation_made_while_redis_is_down_reaches_every_instance_through_the_store() {
    let mut redis = PrivateRedis::start().await;
    let mut cluster = Cluster::start(2, &redis.url(), &[]).await;
    let (a, b) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let ada = a.register("ada").await;
    // node-1 has verified (and cached) the token before the revocation.
    assert_eq!(me_status(b, &ada.access).await, StatusCode::OK);
    let mut on_b = b.ws(&ada).await;

    redis.stop().await;
    let started = Instant::now();
    logout_all(a, &ada).await;
    let took = signed_out_within(&mut on_b, started).await;
    eprintln!("with Redis down, node-1 closed the socket after {took:?} (poll)");
    assert_eq!(me_status(b, &ada.access).await, StatusCode::UNAUTHORIZED);

    // Still refused once Redis is back (empty), and after node-1 restarts
    // with nothing in memory: it loads the recent revocations at start-up.
    redis.restart().await;
    assert_eq!(me_status(b, &ada.access).await, StatusCode::UNAUTHORIZED);
    cluster.kill(1).await;
    cluster.restart(1).await;
    let b = &cluster.nodes[1].app;
    assert_eq!(me_status(b, &ada.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b.ws_refused(b.ws_request(Some(&ada.access), None)).await,
        401
    );
    let again = login(b, &ada).await;
    eventually(
        "a fresh login works on both",
        Duration::from_secs(10),
        || async {
            let a = &cluster.nodes[0].app;
            (me_status(a, &again.access).await == StatusCode::OK
                && me_status(b, &again.access).await == StatusCode::OK)
                .then_some(())
        },
    )
    .await;
}
