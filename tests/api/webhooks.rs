//! Webhooks (contract 6.3): every event type reaches a real receiver,
//! signed (verified with the reference `standardwebhooks` crate); a failing
//! receiver gets retries under the same `webhook-id`; one that keeps
//! failing is disabled and resumes when enabled again; a slow one never
//! delays WebSocket delivery; a killed instance's pending deliveries are
//! delivered by another (at least once, same `webhook-id`).

use crate::both_backends;
use crate::support::app::eventually;
use crate::support::cluster::{Cluster, redis_url};
use crate::support::webhook_receiver::{Answer, Received, Receiver};
use crate::support::{Backend, TestApp, metric};
use parley::config::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

both_backends!(
    every_event_type_is_delivered_signed_and_verifiable,
    a_failing_receiver_gets_retries_with_the_same_webhook_id,
    an_endpoint_failing_repeatedly_is_disabled_and_resumes_when_enabled,
    a_slow_receiver_does_not_delay_websocket_delivery,
    events_no_endpoint_subscribes_to_are_not_sent,
    a_bad_endpoint_is_refused_with_a_clear_problem,
    a_member_banned_removed_or_leaving_is_reported_once_with_why,
);

/// Short pauses, so retries happen within a test (never slept on: tests
/// await the receiver's records).
fn quick(settings: &mut Settings) {
    let hooks = &mut settings.webhooks;
    hooks.poll_ms = 50;
    hooks.retry_base_ms = 50;
    hooks.retry_max_ms = 200;
    hooks.refresh_ms = 200;
    hooks.timeout_ms = 2_000;
    hooks.lease_ms = 5_000;
}

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, quick).await
}

const ALL: [&str; 8] = [
    "message.created",
    "message.edited",
    "message.deleted",
    "member.added",
    "member.removed",
    "user.online",
    "user.offline",
    "notification.created",
];

/// The first delivered event of `kind`.
fn event<'a>(
    received: &'a [crate::support::webhook_receiver::Received],
    kind: &str,
) -> Option<&'a Value> {
    received
        .iter()
        .map(|r| &r.body)
        .find(|body| body["type"] == kind)
}

async fn every_event_type_is_delivered_signed_and_verifiable(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(Answer::Ok).await;
    app.webhook(&receiver, &ALL).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "ops", "private").await;
    app.add_member(&ada, &room, &bob.id).await;
    let socket = app.ws(&ada).await;
    let (status, ack) = app.post_message(&ada, &room, "hello @bob", "c1").await;
    assert_eq!(status, StatusCode::CREATED, "{ack}");
    let seq = ack["seq"].as_i64().unwrap();
    let path = format!("/api/v1/rooms/{room}/messages/{seq}");
    let edit = json!({"body": "hello again @bob", "client_id": "c2"});
    let res = app
        .call(Method::PATCH, &path, Some(&ada.access), Some(edit))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&path, &ada.access).await.status(),
        StatusCode::OK
    );
    let members = format!("/api/v1/rooms/{room}/members/{}", bob.id);
    assert_eq!(
        app.delete(&members, &ada.access).await.status(),
        StatusCode::NO_CONTENT
    );
    socket.close().await;

    let received = receiver
        .until("one delivery of every event type", |received| {
            let seen: BTreeSet<&str> = received
                .iter()
                .filter_map(|r| r.body["type"].as_str())
                .collect();
            ALL.iter()
                .all(|kind| seen.contains(kind))
                .then(|| received.to_vec())
        })
        .await;
    assert!(
        received.iter().all(|r| r.verified),
        "every signature verifies: {received:?}"
    );
    assert!(received.iter().all(|r| r.webhook_id.starts_with("msg_")));

    let created = event(&received, "message.created").unwrap();
    assert_eq!(created["data"]["room"], room.as_str());
    assert_eq!(created["data"]["seq"], seq);
    assert_eq!(created["data"]["author"], ada.id.as_str());
    assert_eq!(created["data"]["body"], "hello @bob");
    assert!(created["timestamp"].is_string(), "{created}");
    let edited = event(&received, "message.edited").unwrap();
    assert_eq!(
        (&edited["data"]["target"], &edited["data"]["body"]),
        (&json!(seq), &json!("hello again @bob"))
    );
    assert_eq!(
        event(&received, "message.deleted").unwrap()["data"]["target"],
        seq
    );
    let added = event(&received, "member.added").unwrap();
    assert_eq!(
        (
            added["data"]["room"].as_str(),
            added["data"]["user"].as_str()
        ),
        (Some(room.as_str()), Some(bob.id.as_str()))
    );
    assert_eq!(
        event(&received, "member.removed").unwrap()["data"]["user"],
        bob.id.as_str()
    );
    assert_eq!(
        event(&received, "user.online").unwrap()["data"]["user"],
        ada.id.as_str()
    );
    assert_eq!(
        event(&received, "user.offline").unwrap()["data"]["user"],
        ada.id.as_str()
    );
    let notified = event(&received, "notification.created").unwrap();
    assert_eq!(
        (
            notified["data"]["user"].as_str(),
            notified["data"]["kind"].as_str()
        ),
        (Some(bob.id.as_str()), Some("mention"))
    );
}

async fn a_failing_receiver_gets_retries_with_the_same_webhook_id(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(Answer::Fail {
        status: 500,
        times: 2,
    })
    .await;
    let endpoint = app.webhook(&receiver, &["message.created"]).await;
    let [ada] = app.users(["ada"]).await;
    let room = app.create_room(&ada, "ops", "public").await;
    app.post_message(&ada, &room, "retry me", "c1").await;

    let received = receiver
        .until("a delivery after two failures", |received| {
            received
                .iter()
                .any(|r| r.answered == Some(200))
                .then(|| received.to_vec())
        })
        .await;
    let answers: Vec<Option<u16>> = received.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [Some(500), Some(500), Some(200)]);
    let ids: BTreeSet<&str> = received.iter().map(|r| r.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one webhook-id across retries: {ids:?}");
    assert!(
        received
            .iter()
            .all(|r| r.verified && r.body == received[0].body)
    );

    let log = app
        .admin_json(&format!("/admin/webhooks/{endpoint}/deliveries"))
        .await;
    let outcomes: Vec<(&str, i64)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["outcome"].as_str().unwrap(),
                d["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("delivered", 3), ("failed", 2), ("failed", 1)],
        "newest first"
    );
    assert_eq!(
        log["items"][0]["webhook_id"],
        received[0].webhook_id.as_str()
    );
    let metrics = app.metrics_text().await;
    let failed = metric(
        &metrics,
        "parley_webhook_deliveries_total",
        &["outcome=\"failed\""],
    );
    assert_eq!(failed, Some(2.0));
}

async fn an_endpoint_failing_repeatedly_is_disabled_and_resumes_when_enabled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        quick(s);
        s.webhooks.disable_after = 3;
        s.webhooks.disable_window_s = 0;
    })
    .await;
    let receiver = Receiver::start(Answer::AlwaysFail(503)).await;
    let endpoint = app.webhook(&receiver, &["message.created"]).await;
    let [ada] = app.users(["ada"]).await;
    let room = app.create_room(&ada, "ops", "public").await;
    app.post_message(&ada, &room, "nobody hears", "c1").await;

    let path = format!("/admin/webhooks/{endpoint}");
    crate::support::eventually(
        "the endpoint is disabled",
        Duration::from_secs(30),
        || async {
            let endpoint = app.admin_json(&path).await;
            (endpoint["enabled"] == false).then_some(endpoint)
        },
    )
    .await;
    assert_eq!(
        receiver.received().len(),
        3,
        "no attempt after the third failure"
    );
    let metrics = app.metrics_text().await;
    assert_eq!(
        metric(&metrics, "parley_webhook_endpoints_disabled_total", &[]),
        Some(1.0)
    );

    receiver.answer(Answer::Ok);
    let (status, enabled) = app.admin_post(&format!("{path}/enable"), json!({})).await;
    assert_eq!(
        (status, &enabled["enabled"], &enabled["failures"]),
        (StatusCode::OK, &json!(true), &json!(0))
    );
    receiver
        .until("the pending delivery after re-enabling", |received| {
            received
                .iter()
                .any(|r| r.answered == Some(200))
                .then_some(())
        })
        .await;
}

async fn a_slow_receiver_does_not_delay_websocket_delivery(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        quick(s);
        s.webhooks.timeout_ms = 60_000;
        s.webhooks.lease_ms = 120_000;
        s.webhooks.concurrency = 1;
    })
    .await;
    // Holds every delivery far longer than a frame may take to arrive.
    let receiver = Receiver::start(Answer::Hang(Duration::from_secs(120))).await;
    app.webhook(&receiver, &["message.created"]).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "ops", "public").await;
    let mut socket = app.ws(&bob).await;
    socket.subscribe(&room, None).await;
    app.post_message(&ada, &room, "first", "c0").await;
    assert_eq!(socket.next_of("message").await["body"], "first");
    receiver
        .until("the first delivery is in flight", |received| {
            (!received.is_empty()).then_some(())
        })
        .await;

    for i in 1..=5 {
        let (status, _) = app
            .post_message(&ada, &room, &format!("m{i}"), &format!("c{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        // Within the socket's frame timeout, while the endpoint holds the worker.
        assert_eq!(socket.next_of("message").await["body"], format!("m{i}"));
    }
    assert!(
        receiver.delivered().is_empty(),
        "the receiver is still holding its first request"
    );
}

async fn events_no_endpoint_subscribes_to_are_not_sent(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(Answer::Ok).await;
    app.webhook(&receiver, &["member.added"]).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "ops", "private").await;
    app.post_message(&ada, &room, "not for the hook", "c1")
        .await;
    app.add_member(&ada, &room, &bob.id).await;
    let received = receiver
        .until("the member.added delivery", |received| {
            (!received.is_empty()).then(|| received.to_vec())
        })
        .await;
    // The message came first; had it been queued it would be due first.
    let types: Vec<&str> = received
        .iter()
        .filter_map(|r| r.body["type"].as_str())
        .collect();
    assert_eq!(types, ["member.added"]);
}

/// Every way of stopping being a member is `member.removed`, with why; a
/// ban of someone who was not a member removes nobody and says nothing.
async fn a_member_banned_removed_or_leaving_is_reported_once_with_why(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start(Answer::Ok).await;
    app.webhook(&receiver, &["member.removed"]).await;
    let [ada, bob, cat, dan, eve] = app.users(["ada", "bob", "cat", "dan", "eve"]).await;
    let room = app.create_room(&ada, "ops", "private").await;
    for user in [&bob, &cat, &dan] {
        app.add_member(&ada, &room, &user.id).await;
    }
    let ban = |user: &str| json!({"user_id": user, "reason": "spam"});
    let bans = format!("/api/v1/rooms/{room}/bans");
    let res = app.post(&bans, &ada.access, ban(&eve.id)).await;
    assert_eq!(res.status(), StatusCode::CREATED, "eve was never a member");
    let res = app.post(&bans, &ada.access, ban(&bob.id)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let remove = |user: &str| format!("/api/v1/rooms/{room}/members/{user}");
    let res = app.delete(&remove(&cat.id), &ada.access).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.delete(&remove(&dan.id), &dan.access).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Dan's leaving is the last change; eve's ban, had it been reported,
    // was queued before it.
    let received = receiver
        .until("dan's member.removed", |received| {
            received
                .iter()
                .any(|r| r.body["data"]["user"] == dan.id.as_str())
                .then(|| received.to_vec())
        })
        .await;
    let mut removed: Vec<(String, String, String)> = received
        .iter()
        .map(|r| {
            let data = &r.body["data"];
            let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
            (field("user"), field("reason"), field("by"))
        })
        .collect();
    removed.sort();
    let mut expected = vec![
        (bob.id.clone(), "banned".to_owned(), ada.id.clone()),
        (cat.id.clone(), "removed".to_owned(), ada.id.clone()),
        (dan.id.clone(), "left".to_owned(), dan.id.clone()),
    ];
    expected.sort();
    assert_eq!(removed, expected);
}

async fn a_bad_endpoint_is_refused_with_a_clear_problem(backend: Backend) {
    let app = spawn(backend).await;
    let (status, problem) = app
        .admin_post(
            "/admin/webhooks",
            json!({"url": "ftp://example.com/x", "events": ["message.reacted"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, BTreeSet::from(["url", "events"]));
    let unknown = format!("/admin/webhooks/{}", uuid::Uuid::now_v7());
    assert_eq!(app.admin_delete(&unknown).await, StatusCode::NOT_FOUND);
    let (status, _) = app
        .admin_post(&format!("{unknown}/enable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// kill -9 of the instance that holds claimed deliveries: once its leases
/// run out another instance delivers every one, under the same ids.
#[actix_web::test]
async fn deliveries_pending_on_a_killed_instance_are_delivered_by_another() {
    let env = [
        ("PARLEY_WEBHOOK_POLL_MS", "50"),
        ("PARLEY_WEBHOOK_RETRY_BASE_MS", "100"),
        ("PARLEY_WEBHOOK_RETRY_MAX_MS", "300"),
        ("PARLEY_WEBHOOK_TIMEOUT_MS", "1000"),
        ("PARLEY_WEBHOOK_LEASE_MS", "2000"),
        ("PARLEY_WEBHOOK_REFRESH_MS", "200"),
    ];
    let mut cluster = Cluster::start(2, &redis_url(), &env).await;
    let first = &cluster.nodes[0].app;
    let receiver = Receiver::start(Answer::AlwaysFail(500)).await;
    first.webhook(&receiver, &["message.created"]).await;
    let ada = first.register("ada").await;
    let room = first.create_room(&ada, "ops", "public").await;
    for i in 0..5 {
        let (status, _) = first
            .post_message(&ada, &room, &format!("m{i}"), &format!("c{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let pending: BTreeSet<String> = receiver
        .until("an attempt at each of the five events", |received| {
            let ids: BTreeSet<String> = received.iter().map(|r| r.webhook_id.clone()).collect();
            (ids.len() == 5).then_some(ids)
        })
        .await;

    cluster.kill(0).await;
    receiver.answer(Answer::Ok);
    let delivered = receiver
        .until("every pending event delivered by the survivor", |_| {
            let ids = receiver.delivered_ids();
            (ids.len() == 5).then_some(ids)
        })
        .await;
    assert_eq!(delivered, pending, "the same webhook-ids, none lost");
    assert!(receiver.received().iter().all(|r| r.verified));
}

/// Presence is the user's, not an instance's: a user connected to two
/// instances is `user.online` once, when the first socket opens anywhere,
/// and `user.offline` once, when the last one closes.
#[actix_web::test]
async fn a_user_on_two_instances_is_online_once_and_offline_once() {
    let env = [
        ("PARLEY_WEBHOOK_POLL_MS", "50"),
        ("PARLEY_WEBHOOK_REFRESH_MS", "100"),
    ];
    let cluster = Cluster::start(2, &redis_url(), &env).await;
    let (a, b) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let receiver = Receiver::start(Answer::Ok).await;
    let kinds = ["user.online", "user.offline", "member.added"];
    a.webhook(&receiver, &kinds).await;
    let [ada, bob] = a.users(["ada", "bob"]).await;
    // The endpoint was created on the first instance; the second learns of
    // it at its next refresh, seen when one of its events arrives.
    eventually(
        "the second instance sending webhooks",
        Duration::from_secs(10),
        || async {
            let room = b.create_room(&ada, "probe", "private").await;
            b.add_member(&ada, &room, &bob.id).await;
            receiver
                .received()
                .iter()
                .any(|r| r.body["type"] == "member.added")
                .then_some(())
        },
    )
    .await;
    let presence = |received: &[Received]| {
        let mut kinds: Vec<String> = received
            .iter()
            .filter_map(|r| r.body["type"].as_str())
            .filter(|kind| kind.starts_with("user."))
            .map(str::to_owned)
            .collect();
        kinds.sort();
        kinds
    };

    let on_a = a.ws(&ada).await;
    let on_b = b.ws(&ada).await;
    on_a.close().await;
    on_b.close().await;
    let seen = receiver
        .until("ada's user.offline", |received| {
            received
                .iter()
                .any(|r| r.body["type"] == "user.offline")
                .then(|| presence(received))
        })
        .await;
    assert_eq!(seen, ["user.offline", "user.online"]);

    // Back on the first instance alone: online again, and nothing else
    // came from the first round in the meantime.
    let again = a.ws(&ada).await;
    let seen = receiver
        .until("ada's second user.online", |received| {
            let seen = presence(received);
            (seen.len() >= 3).then_some(seen)
        })
        .await;
    assert_eq!(seen, ["user.offline", "user.online", "user.online"]);
    again.close().await;
}
