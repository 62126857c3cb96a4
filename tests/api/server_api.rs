//! The server API (contract 6.3): a backend with an API key posts into
//! rooms (idempotent by `client_id`, seen by subscribers like any message)
//! and notifies users; scopes, revocation, and keys and user tokens kept
//! apart.

use crate::both_backends;
use crate::support::{Backend, TestApp, assert_problem, parts};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    a_message_posted_with_a_key_reaches_a_subscriber_once_however_often_it_is_retried,
    a_key_without_the_scope_is_forbidden,
    a_revoked_key_is_refused_and_listed_as_revoked_without_its_secret,
    a_key_is_not_a_user_token_nor_a_user_token_a_key,
    a_notification_sent_with_a_key_reaches_the_users_socket,
    a_message_needs_an_author_who_may_post_there,
);

async fn server_post(app: &TestApp, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
    parts(app.call(Method::POST, path, Some(key), Some(body)).await).await
}

async fn a_message_posted_with_a_key_reaches_a_subscriber_once_however_often_it_is_retried(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.api_key(&["rooms:write"]).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "alerts", "public").await;
    let mut socket = app.ws(&bob).await;
    socket.subscribe(&room, None).await;

    let path = format!("/api/v1/server/rooms/{room}/messages");
    let message = json!({"body": "deploy finished", "client_id": "deploy-42", "author": ada.id});
    let (status, ack) = server_post(&app, &key, &path, message.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{ack}");
    let frame = socket.next_of("message").await;
    assert_eq!(
        (&frame["body"], &frame["author"]),
        (&json!("deploy finished"), &json!(ada.id))
    );
    assert_eq!(frame["seq"], ack["seq"]);

    let (status, again) = server_post(&app, &key, &path, message).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (&again["seq"], &again["id"], &again["created"]),
        (&ack["seq"], &ack["id"], &json!(false))
    );
    let history = app.whole_history(&bob, &room).await;
    assert_eq!(
        history.len(),
        1,
        "one message for two posts of one client_id"
    );
}

async fn a_key_without_the_scope_is_forbidden(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.api_key(&["notifications:write"]).await;
    let [ada] = app.users(["ada"]).await;
    let room = app.create_room(&ada, "alerts", "public").await;
    let path = format!("/api/v1/server/rooms/{room}/messages");
    let res = app
        .call(
            Method::POST,
            &path,
            Some(&key),
            Some(json!({"body": "x", "client_id": "c", "author": ada.id})),
        )
        .await;
    let problem = assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("rooms:write"),
        "{problem}"
    );
}

async fn a_revoked_key_is_refused_and_listed_as_revoked_without_its_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, key) = app.api_key(&["notifications:write"]).await;
    let [ada] = app.users(["ada"]).await;
    let body = json!({"user_id": ada.id, "kind": "ping", "payload": {}});
    let (status, _) = server_post(&app, &key, "/api/v1/server/notifications", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);

    assert_eq!(
        app.admin_delete(&format!("/admin/api-keys/{id}")).await,
        StatusCode::NO_CONTENT
    );
    let res = app
        .call(
            Method::POST,
            "/api/v1/server/notifications",
            Some(&key),
            Some(body),
        )
        .await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let listed = app.admin_json("/admin/api-keys").await;
    let listed = &listed["items"][0];
    assert_eq!(listed["id"], id.as_str());
    assert!(listed["revoked_at"].is_string(), "{listed}");
    assert!(key.starts_with(listed["prefix"].as_str().unwrap()));
    assert!(
        !listed.to_string().contains(&key),
        "the key is never shown again"
    );
    let unknown = format!("/admin/api-keys/{}", uuid::Uuid::now_v7());
    assert_eq!(app.admin_delete(&unknown).await, StatusCode::NOT_FOUND);
}

async fn a_key_is_not_a_user_token_nor_a_user_token_a_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.api_key(&["rooms:write", "notifications:write"]).await;
    let [ada] = app.users(["ada"]).await;
    assert_problem(
        app.get("/api/v1/users/me", &key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let body = json!({"user_id": ada.id, "kind": "ping", "payload": {}});
    let res = app
        .call(
            Method::POST,
            "/api/v1/server/notifications",
            Some(&ada.access),
            Some(body.clone()),
        )
        .await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/server/notifications",
            None,
            Some(body),
        )
        .await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let forged = format!("{}x", &key[..key.len() - 1]);
    let res = app
        .call(
            Method::POST,
            "/api/v1/server/notifications",
            Some(&forged),
            Some(json!({"user_id": ada.id, "kind": "k", "payload": {}})),
        )
        .await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn a_notification_sent_with_a_key_reaches_the_users_socket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.api_key(&["notifications:write"]).await;
    let [ada] = app.users(["ada"]).await;
    let mut socket = app.ws(&ada).await;
    let body =
        json!({"user_id": ada.id, "kind": "billing.invoice_paid", "payload": {"amount": 42}});
    let (status, stored) = server_post(&app, &key, "/api/v1/server/notifications", body).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");

    let live = socket.next_of("notification").await;
    assert_eq!(live["id"], stored["id"]);
    assert_eq!(
        (&live["kind"], &live["payload"]["amount"]),
        (&json!("billing.invoice_paid"), &json!(42))
    );
    let listed = app.notifications(&ada, "").await;
    assert_eq!(listed[0]["id"], stored["id"]);

    let bad = json!({"user_id": ada.id, "kind": "Not A Kind", "payload": [1]});
    let res = app
        .call(
            Method::POST,
            "/api/v1/server/notifications",
            Some(&key),
            Some(bad),
        )
        .await;
    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
    let nobody = json!({"user_id": uuid::Uuid::now_v7(), "kind": "k", "payload": {}});
    let res = app
        .call(
            Method::POST,
            "/api/v1/server/notifications",
            Some(&key),
            Some(nobody),
        )
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

async fn a_message_needs_an_author_who_may_post_there(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.api_key(&["rooms:write"]).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "private", "private").await;
    let path = format!("/api/v1/server/rooms/{room}/messages");
    let res = app
        .call(
            Method::POST,
            &path,
            Some(&key),
            Some(json!({"body": "x", "client_id": "c"})),
        )
        .await;
    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(problem["errors"][0]["field"], "author", "{problem}");
    let outsider = json!({"body": "x", "client_id": "c", "author": bob.id});
    let res = app
        .call(Method::POST, &path, Some(&key), Some(outsider))
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}
