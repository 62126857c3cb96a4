//! A client's bad input is that client's own 4xx: never an outage, never a
//! failure of anyone else's work. Text PostgreSQL cannot store (NUL) is
//! refused at parse time with the field named, and a refusal that does
//! reach the database never counts against its circuit breaker.

use crate::both_backends;
use crate::support::{Backend, PASSWORD, TestApp, assert_problem};
use parley::store::StoreError;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(nul_in_any_text_field_is_a_bad_request_naming_the_field,);

/// The names of the fields a problem says were wrong.
fn bad_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn nul_in_any_text_field_is_a_bad_request_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    let nul = "a\u{0}b";

    // (method, path, token, body, the field the problem must name)
    let cases: Vec<(&str, String, Option<&str>, Value, &str)> = vec![
        (
            "POST",
            "/api/v1/auth/register".into(),
            None,
            json!({"username": "bob", "email": format!("bob{nul}@example.com"), "password": PASSWORD}),
            "email",
        ),
        (
            "POST",
            "/api/v1/auth/register".into(),
            None,
            json!({"username": "bob", "email": "bob@example.com", "password": format!("{PASSWORD}{nul}")}),
            "password",
        ),
        (
            "POST",
            "/api/v1/auth/login".into(),
            None,
            json!({"username": format!("ada{nul}"), "password": PASSWORD}),
            "username",
        ),
        (
            "POST",
            "/api/v1/auth/login".into(),
            None,
            json!({"email": format!("ada{nul}@example.com"), "password": PASSWORD}),
            "email",
        ),
        (
            "POST",
            "/api/v1/posts".into(),
            Some(&ada.access),
            json!({"body": nul}),
            "body",
        ),
        (
            "PATCH",
            "/api/v1/users/me".into(),
            Some(&ada.access),
            json!({"bio": nul}),
            "bio",
        ),
        (
            "PATCH",
            "/api/v1/users/me".into(),
            Some(&ada.access),
            json!({"display_name": nul}),
            "display_name",
        ),
        (
            "POST",
            "/api/v1/rooms".into(),
            Some(&ada.access),
            json!({"name": nul, "kind": "public"}),
            "name",
        ),
        (
            "POST",
            format!("/api/v1/rooms/{room}/messages"),
            Some(&ada.access),
            json!({"body": nul, "client_id": "c1"}),
            "body",
        ),
        (
            "POST",
            format!("/api/v1/rooms/{room}/bans"),
            Some(&ada.access),
            json!({"user_id": ada.id, "reason": nul}),
            "reason",
        ),
        (
            "POST",
            format!("/api/v1/rooms/{room}/mutes"),
            Some(&ada.access),
            json!({"user_id": ada.id, "until": nul}),
            "until",
        ),
        (
            "POST",
            "/api/v1/reports".into(),
            Some(&ada.access),
            json!({"kind": "user", "user_id": ada.id, "reason": nul}),
            "reason",
        ),
        (
            "POST",
            "/api/v1/reports".into(),
            Some(&ada.access),
            json!({"kind": nul, "reason": "spam"}),
            "kind",
        ),
    ];
    for (method, path, token, body, field) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = app.client.request(method, app.url(&path)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let problem = assert_problem(
            req.send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert_eq!(bad_fields(&problem), [field], "{path}: {problem}");
    }

    // The same over the WebSocket: an error for that frame, the socket open.
    let mut ws = app.ws(&ada).await;
    ws.subscribe(&room, None).await;
    ws.send(json!({"type": "publish", "room": room, "body": nul, "client_id": "w1", "ref": "r1"}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(error["code"], "bad_request", "{error}");
    assert_eq!(error["ref"], "r1");
    let (ack, _) = ws.publish(&room, "still here", "w2").await;
    assert_eq!(ack["seq"], 1, "{ack}");

    // Nobody else was hurt: the database is as healthy as before, and a
    // clean login works.
    if backend == Backend::Postgres {
        assert_eq!(app.breaker("postgres").await["state"], "closed");
        assert_eq!(app.breaker("postgres").await["recent_failures"], 0);
    }
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Below the parsers: a value PostgreSQL itself refuses is the caller's
/// failure (`InvalidData`), not an outage, however often it is sent.
#[actix_web::test]
async fn a_value_postgresql_refuses_is_not_an_outage_and_never_trips_the_breaker() {
    let store = crate::support::db::fresh_pg_store().await;
    for _ in 0..10 {
        let err = store.user_by_username("a\u{0}b").await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidData(_)), "{err:?}");
    }
    // The same store still serves: no breaker opened, no retry storm.
    assert!(store.user_by_username("nobody").await.unwrap().is_none());
}
