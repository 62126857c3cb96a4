//! Retention (contract 1.1, section 6.2): `PATCH /rooms/{id}` sets
//! `retention_days`; older events are purged; a replay from below the first
//! kept seq gets `truncated` first, and never a silent gap, even while a
//! purge and publishes run at once.
//!
//! Time is not shifted: the PostgreSQL tests backdate `created_at` in their
//! own database (or seed old rows with SQL) and run a pass through
//! `POST /admin/retention/purge`. The memory store's purge is covered by
//! the store conformance cases.

use crate::both_backends;
use crate::support::{Backend, TestApp, TestUser, WsClient, assert_problem, parts};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

both_backends!(
    owners_and_admins_set_retention_and_others_are_refused,
    retention_values_are_validated,
    new_rooms_start_with_the_server_default,
);

async fn patch(app: &TestApp, user: &TestUser, room: &str, body: Value) -> reqwest::Response {
    let path = format!("/api/v1/rooms/{room}");
    app.call(Method::PATCH, &path, Some(&user.access), Some(body))
        .await
}

async fn owners_and_admins_set_retention_and_others_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cat] = app.users(["ada", "bob", "cat"]).await;
    let room = app.create_room(&ada, "quiet", "private").await;
    app.add_member(&ada, &room, &bob.id).await;

    let (status, body) = parts(patch(&app, &ada, &room, json!({"retention_days": 30})).await).await;
    assert_eq!(
        (status, &body["retention_days"]),
        (StatusCode::OK, &json!(30))
    );
    let (_, fetched) = parts(app.get(&format!("/api/v1/rooms/{room}"), &ada.access).await).await;
    assert_eq!(fetched["retention_days"], 30);

    let refused = patch(&app, &bob, &room, json!({"retention_days": 1})).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let refused = patch(&app, &cat, &room, json!({"retention_days": 1})).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let unknown = format!("{}", uuid::Uuid::now_v7());
    let missing = patch(&app, &ada, &unknown, json!({"retention_days": 1})).await;
    assert_problem(missing, StatusCode::NOT_FOUND, "not_found").await;

    // An admin may; null keeps events forever again.
    let res = app
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            &ada.access,
            json!({"user_id": cat.id, "role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, body) =
        parts(patch(&app, &cat, &room, json!({"retention_days": null})).await).await;
    assert_eq!(
        (status, &body["retention_days"]),
        (StatusCode::OK, &Value::Null)
    );
}

async fn retention_values_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "lobby", "public").await;
    for bad in [
        json!({"retention_days": 0}),
        json!({"retention_days": -1}),
        json!({"retention_days": 36501}),
        json!({"retention_days": 1.5}),
        json!({"retention_days": "30"}),
        json!({"retention_days": 9_223_372_036_854_775_807_i64}),
        json!({}),
        json!({"retention_days": 3, "name": "renamed"}),
        json!([30]),
    ] {
        let res = patch(&app, &ada, &room, bad.clone()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let bad_id = patch(&app, &ada, "not-a-room", json!({"retention_days": 1})).await;
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    let (_, room_now) = parts(app.get(&format!("/api/v1/rooms/{room}"), &ada.access).await).await;
    assert_eq!(room_now["retention_days"], Value::Null, "nothing changed");
}

async fn new_rooms_start_with_the_server_default(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.retention.days = Some(14)).await;
    let ada = app.register("ada").await;
    let res = app
        .post(
            "/api/v1/rooms",
            &ada.access,
            json!({"name": "r", "kind": "public"}),
        )
        .await;
    let (status, room) = parts(res).await;
    assert_eq!(
        (status, &room["retention_days"]),
        (StatusCode::CREATED, &json!(14))
    );
}

/// A PostgreSQL app, its database for backdating rows, and one room.
struct Aged {
    app: TestApp,
    db: tokio_postgres::Client,
    owner: TestUser,
    room: String,
}

async fn aged(tweak: impl FnOnce(&mut parley::config::Settings)) -> Aged {
    let mut url = String::new();
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        url = s.database.url.clone().unwrap();
        tweak(s);
    })
    .await;
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(connection);
    let owner = app.register("owner").await;
    let room = app.create_room(&owner, "aged", "public").await;
    Aged {
        app,
        db,
        owner,
        room,
    }
}

impl Aged {
    /// Makes the room's events up to `seq` ten days old.
    async fn backdate(&self, seq: i64) {
        let room = uuid::Uuid::parse_str(&self.room).unwrap();
        self.db
            .execute(
                "UPDATE room_messages SET created_at = now() - interval '10 days' \
                 WHERE room_id = $1 AND seq <= $2",
                &[&room, &seq],
            )
            .await
            .unwrap();
    }

    async fn keep_for_a_day(&self) {
        let res = patch(
            &self.app,
            &self.owner,
            &self.room,
            json!({"retention_days": 1}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// Runs a purge pass now; its `{rooms, events}`.
    async fn purge(&self) -> Value {
        let url = format!("{}/admin/retention/purge", self.app.admin);
        let res = self.app.client.post(url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }
}

#[actix_web::test]
async fn a_replay_from_below_the_horizon_is_told_truncated_then_replays_from_first_seq() {
    let aged = aged(|_| {}).await;
    let (app, room) = (&aged.app, aged.room.as_str());
    let bob = app.register("bob").await;
    for i in 1..=5 {
        let (status, _) = app
            .post_message(&aged.owner, room, &format!("m{i}"), &format!("c{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    aged.backdate(3).await;
    aged.keep_for_a_day().await;

    assert_eq!(aged.purge().await, json!({"rooms": 1, "events": 3}));
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("parley_retention_purged_events_total{instance_id=\"test-instance\"} 3"),
        "{metrics}"
    );

    let mut ws = app.ws(&bob).await;
    ws.subscribe(room, Some(0)).await;
    assert_eq!(
        ws.next_of("truncated").await,
        json!({"type": "truncated", "room": room, "first_seq": 4})
    );
    assert_eq!(ws.next_of("message").await["seq"], 4);
    assert_eq!(ws.next_of("message").await["seq"], 5);

    // From at or above the horizon: a complete replay, no `truncated`.
    let mut ws = app.ws(&bob).await;
    ws.subscribe(room, Some(3)).await;
    assert_eq!(ws.next_of("message").await["seq"], 4);
    assert_eq!(ws.next_of("message").await["seq"], 5);

    let (history, _) = app.history(&bob, room, "").await;
    let seqs: Vec<&Value> = history.iter().map(|m| &m["seq"]).collect();
    assert_eq!(seqs, [&json!(4), &json!(5)]);
    let (_, listed) = parts(app.get(&format!("/api/v1/rooms/{room}"), &bob.access).await).await;
    assert_eq!(
        (&listed["unread"], &listed["last_seq"]),
        (&json!(2), &json!(5))
    );
    // A purged message is gone for edits and reactions too.
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/rooms/{room}/messages/2/reactions/👍"),
            Some(&bob.access),
            None,
        )
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

/// Reads one subscriber's stream from `since` until it has seen `last`:
/// every message must follow the one before it, or follow a `truncated`
/// that says where the kept events start. Answers whether it was told
/// `truncated`, and fires `reached` once it has seen that seq.
async fn read_without_gaps(
    mut ws: WsClient,
    room: String,
    since: i64,
    last: i64,
    mut reached: Option<(i64, tokio::sync::oneshot::Sender<()>)>,
) -> (bool, i64) {
    ws.subscribe(&room, Some(since)).await;
    let (mut expected, mut truncated) = (since + 1, false);
    while expected <= last {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("truncated") => {
                let first = frame["first_seq"].as_i64().unwrap();
                assert!(
                    first >= expected,
                    "truncated moved back: {frame}, expected {expected}"
                );
                (expected, truncated) = (first, true);
            }
            Some("message") => {
                let seq = frame["seq"].as_i64().unwrap();
                assert_eq!(seq, expected, "a gap without truncated");
                expected += 1;
                if reached.as_ref().is_some_and(|(at, _)| seq >= *at)
                    && let Some((_, tell)) = reached.take()
                {
                    let _ = tell.send(());
                }
            }
            _ => {}
        }
    }
    (truncated, expected - 1)
}

/// Publishes go on while a purge deletes thousands of old events, and
/// subscribers replay from 0 before, during and after it: each sees every
/// message in order, or `truncated` and then every kept one, never a hole.
/// The first is well into its replay of the old events when the purge
/// starts, so it learns of the purge in the middle of its stream.
#[actix_web::test]
async fn no_subscriber_sees_a_gap_while_a_purge_and_publishes_run_together() {
    const OLD: i64 = 20_000;
    const NEW: i64 = 100;
    let aged = Arc::new(
        aged(|s| {
            s.retention.purge_batch = 100;
            s.retention.purge_pause_ms = 0;
        })
        .await,
    );
    let room_id = uuid::Uuid::parse_str(&aged.room).unwrap();
    let author = uuid::Uuid::parse_str(&aged.owner.id).unwrap();
    aged.db
        .execute(
            "INSERT INTO room_messages (room_id, seq, id, author, body, client_id, created_at) \
             SELECT $1, g, gen_random_uuid(), $2, 'old ' || g, 'seed-' || g, \
                    now() - interval '10 days' FROM generate_series(1, $3::bigint) AS g",
            &[&room_id, &author, &OLD],
        )
        .await
        .unwrap();
    aged.db
        .execute(
            "UPDATE rooms SET last_seq = $2 WHERE id = $1",
            &[&room_id, &OLD],
        )
        .await
        .unwrap();
    aged.keep_for_a_day().await;
    let reader = aged.app.register("reader").await;

    let (acked, mut acks) = tokio::sync::watch::channel(0_i64);
    let publisher = {
        let (aged, mut ws) = (aged.clone(), aged.app.ws(&aged.owner).await);
        actix_web::rt::spawn(async move {
            for i in 0..NEW {
                let (ack, _) = ws.publish(&aged.room, "new", &format!("new-{i}")).await;
                assert_eq!(ack["type"], "ack", "{ack}");
                acked.send_replace(i + 1);
            }
        })
    };
    let (midway, replaying) = tokio::sync::oneshot::channel();
    let early = aged.app.ws(&reader).await;
    let mut readers = vec![actix_web::rt::spawn(read_without_gaps(
        early,
        aged.room.clone(),
        0,
        OLD + NEW,
        Some((1_000, midway)),
    ))];
    replaying.await.unwrap();
    let purge = {
        let aged = aged.clone();
        actix_web::rt::spawn(async move { aged.purge().await })
    };
    for start in [0, 10, 40, 70] {
        acks.wait_for(|n| *n >= start).await.unwrap();
        let ws = aged.app.ws(&reader).await;
        readers.push(actix_web::rt::spawn(read_without_gaps(
            ws,
            aged.room.clone(),
            0,
            OLD + NEW,
            None,
        )));
    }
    publisher.await.unwrap();
    let report = purge.await.unwrap();
    assert_eq!(report["events"], OLD);
    let mut outcomes = Vec::new();
    for reader in readers {
        outcomes.push(reader.await.unwrap());
    }
    assert!(outcomes.iter().all(|&(_, last)| last == OLD + NEW));
    // The early one had 19,000 old events to go when the horizon moved (the
    // purge's first write): it was told in the middle of its replay.
    assert!(outcomes[0].0, "the early replay was told truncated");
    // Once the purge is done, a replay from 0 starts at the horizon.
    let ws = aged.app.ws(&reader).await;
    let (truncated, _) = read_without_gaps(ws, aged.room.clone(), 0, OLD + NEW, None).await;
    assert!(truncated);
}
