//! People and safety (contract 1.1, section 6.2) as users notice it: a ban
//! ends a session's subscription at once and refuses every retry, over
//! REST and WebSocket, on every instance; a mute silences without
//! unsubscribing; a block stops follows, direct messages and
//! notifications; reports reach the operators.

use crate::both_backends;
use crate::support::cluster::{Cluster, redis_url};
use crate::support::metrics::metric;
use crate::support::{Backend, TestApp, TestUser, WsClient, assert_problem, eventually, parts};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

both_backends!(
    a_ban_unsubscribes_the_open_session_and_refuses_every_retry,
    only_managers_ban_and_nobody_bans_the_owner_or_themselves,
    a_ban_with_an_end_lifts_by_itself,
    a_mute_refuses_publishing_at_once_but_not_reading_until_lifted,
    a_block_stops_follows_direct_messages_and_notifications,
    reports_of_messages_and_users_reach_the_admin_listener,
);

// --- Requests -----------------------------------------------------------------

async fn ban(app: &TestApp, caller: &TestUser, room: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/rooms/{room}/bans"), &caller.access, body)
        .await
}

async fn banned(app: &TestApp, caller: &TestUser, room: &str, user: &TestUser) -> Value {
    let body = json!({"user_id": user.id, "reason": "spam"});
    let (status, ban) = parts(ban(app, caller, room, body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{ban}");
    ban
}

async fn mute(app: &TestApp, caller: &TestUser, room: &str, user: &TestUser) {
    let path = format!("/api/v1/rooms/{room}/mutes");
    let res = app
        .post(&path, &caller.access, json!({"user_id": user.id}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

async fn block(app: &TestApp, blocker: &TestUser, blocked: &str) -> reqwest::Response {
    let path = format!("/api/v1/users/{blocked}/block");
    app.post(&path, &blocker.access, json!({})).await
}

async fn rest_publish(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    client_id: &str,
) -> reqwest::Response {
    app.post(
        &format!("/api/v1/rooms/{room}/messages"),
        &user.access,
        json!({"body": "hello", "client_id": client_id}),
    )
    .await
}

/// Sends `frame` with a `ref` and returns the frame answering it,
/// skipping others.
async fn answer(ws: &mut WsClient, mut frame: Value, reference: &str) -> Value {
    frame["ref"] = json!(reference);
    ws.send(frame).await;
    loop {
        let got = ws.next().await;
        if got["ref"] == reference {
            return got;
        }
    }
}

async fn ws_publish(ws: &mut WsClient, room: &str, client_id: &str) -> Value {
    let frame = json!({"type": "publish", "room": room, "body": "hi", "client_id": client_id});
    answer(ws, frame, client_id).await
}

/// A `403` problem with code `forbidden` (which the response must be).
async fn forbidden(res: reqwest::Response) -> Value {
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await
}

/// The code of an `error` frame (which must be one).
fn refusal(frame: &Value) -> &str {
    assert_eq!(frame["type"], "error", "{frame}");
    assert!(frame.get("retry_after_ms").is_none(), "final: {frame}");
    frame["code"].as_str().unwrap()
}

/// The next frame of type `kind`, skipping any other (the session's own
/// messages may come before or after their acks).
async fn next_of(ws: &mut WsClient, kind: &str) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// The next `message` frame whose body is `body`.
async fn message_saying(ws: &mut WsClient, body: &str) -> Value {
    loop {
        let frame = next_of(ws, "message").await;
        if frame["body"] == body {
            return frame;
        }
    }
}

// --- Bans ---------------------------------------------------------------------

async fn a_ban_unsubscribes_the_open_session_and_refuses_every_retry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let lobby = app.create_room(&ada, "lobby", "public").await;
    app.add_member(&bob, &lobby, &bob.id).await;
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.subscribe(&lobby, None).await;
    assert_eq!(
        ws_publish(&mut bob_ws, &lobby, "before").await["type"],
        "ack"
    );

    let ban = banned(&app, &ada, &lobby, &bob).await;
    assert_eq!(
        (ban["user_id"].as_str(), ban["reason"].as_str()),
        (Some(&*bob.id), Some("spam"))
    );
    assert_eq!(ban["until"], Value::Null);
    let frame = next_of(&mut bob_ws, "unsubscribed").await;
    assert_eq!(
        frame,
        json!({"type": "unsubscribed", "room": lobby, "ref": null, "reason": "banned"})
    );

    // Every way back in is refused: publish, re-subscribe with `since`,
    // REST reads and writes, joining, being re-added.
    assert_eq!(
        refusal(&ws_publish(&mut bob_ws, &lobby, "after").await),
        "forbidden"
    );
    let resubscribe = json!({"type": "subscribe", "room": lobby, "since": 0});
    assert_eq!(
        refusal(&answer(&mut bob_ws, resubscribe, "s").await),
        "forbidden"
    );
    let mut fresh = app.ws(&bob).await;
    let subscribe = json!({"type": "subscribe", "room": lobby});
    assert_eq!(
        refusal(&answer(&mut fresh, subscribe, "s2").await),
        "forbidden"
    );
    forbidden(rest_publish(&app, &bob, &lobby, "rest").await).await;
    let history = format!("/api/v1/rooms/{lobby}/messages");
    forbidden(app.get(&history, &bob.access).await).await;
    forbidden(app.post_member(&bob, &lobby, &bob.id).await).await;
    let readd = forbidden(app.post_member(&ada, &lobby, &bob.id).await).await;
    assert!(
        readd["detail"].as_str().unwrap().contains("banned"),
        "{readd}"
    );
    let room = app
        .get(&format!("/api/v1/rooms/{lobby}"), &ada.access)
        .await;
    let (_, room) = parts(room).await;
    let members: Vec<&str> = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert!(
        !members.contains(&bob.id.as_str()),
        "the ban removed him: {room}"
    );

    // The room's managers see the ban; lifting it lets him join again.
    let (status, bans) = parts(
        app.get(&format!("/api/v1/rooms/{lobby}/bans"), &ada.access)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bans["items"].as_array().unwrap().len(), 1, "{bans}");
    assert_eq!(bans["items"][0]["user_id"], bob.id.as_str());
    let lift = format!("/api/v1/rooms/{lobby}/bans/{}", bob.id);
    assert_eq!(
        app.delete(&lift, &ada.access).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.delete(&lift, &ada.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.add_member(&bob, &lobby, &bob.id).await;
    fresh.subscribe(&lobby, Some(0)).await;

    let text = app.metrics_text().await;
    assert_eq!(
        metric(
            &text,
            "parley_moderation_actions_total",
            &["action=\"ban\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "parley_moderation_actions_total",
            &["action=\"unban\""]
        ),
        Some(1.0)
    );
}

async fn only_managers_ban_and_nobody_bans_the_owner_or_themselves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cat, dan] = app.users(["ada", "bob", "cat", "dan"]).await;
    let team = app.create_room(&ada, "team", "private").await;
    app.add_member(&ada, &team, &cat.id).await;
    app.add_member(&ada, &team, &dan.id).await;
    let res = app
        .post(
            &format!("/api/v1/rooms/{team}/members"),
            &ada.access,
            json!({"user_id": bob.id, "role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let body = |user: &TestUser| json!({"user_id": user.id});
    // A plain member bans nobody and sees no bans.
    forbidden(ban(&app, &cat, &team, body(&dan)).await).await;
    let bans = format!("/api/v1/rooms/{team}/bans");
    forbidden(app.get(&bans, &cat.access).await).await;
    // Nobody bans the owner; an admin does not ban an admin; nobody bans themselves.
    forbidden(ban(&app, &bob, &team, body(&ada)).await).await;
    assert_problem(
        ban(&app, &ada, &team, body(&ada)).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    // An admin bans a member.
    assert_eq!(
        ban(&app, &bob, &team, body(&cat)).await.status(),
        StatusCode::CREATED
    );
    // Bad input is named field by field.
    let bad = json!({"user_id": "nope", "reason": "x".repeat(1001), "until": "yesterday"});
    let problem = assert_problem(
        ban(&app, &ada, &team, bad).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["user_id", "reason", "until"], "{problem}");
    let past = json!({"user_id": dan.id, "until": "2001-01-01T00:00:00Z"});
    assert_problem(
        ban(&app, &ada, &team, past).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let unknown = json!({"user_id": uuid::Uuid::now_v7()});
    assert_problem(
        ban(&app, &ada, &team, unknown).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let nowhere = format!("/api/v1/rooms/{}/bans", uuid::Uuid::now_v7());
    assert_problem(
        app.post(&nowhere, &ada.access, body(&dan)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn a_ban_with_an_end_lifts_by_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let lobby = app.create_room(&ada, "lobby", "public").await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(1);
    let body = json!({"user_id": bob.id, "until": until.to_rfc3339()});
    let (status, ban) = parts(ban(&app, &ada, &lobby, body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{ban}");
    assert!(ban["until"].is_string());
    let history = format!("/api/v1/rooms/{lobby}/messages");
    assert_eq!(
        app.get(&history, &bob.access).await.status(),
        StatusCode::FORBIDDEN
    );
    // No job and no restart: the end is checked where the ban is read.
    eventually("the ban ends", Duration::from_secs(10), || async {
        (app.get(&history, &bob.access).await.status() == StatusCode::OK).then_some(())
    })
    .await;
    app.add_member(&bob, &lobby, &bob.id).await;
    let bans = app
        .get(&format!("/api/v1/rooms/{lobby}/bans"), &ada.access)
        .await;
    assert_eq!(parts(bans).await.1["items"], json!([]));
}

// --- Mutes --------------------------------------------------------------------

async fn a_mute_refuses_publishing_at_once_but_not_reading_until_lifted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let team = app.create_room(&ada, "team", "private").await;
    app.add_member(&ada, &team, &bob.id).await;
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.subscribe(&team, None).await;
    // His session has checked (and cached) his access by now.
    let own = ws_publish(&mut bob_ws, &team, "m1").await;
    assert_eq!(own["type"], "ack");

    mute(&app, &ada, &team, &bob).await;
    assert_eq!(
        refusal(&ws_publish(&mut bob_ws, &team, "m2").await),
        "forbidden"
    );
    let react = json!({"type": "react", "room": team, "target": 1, "emoji": "👍", "on": true, "client_id": "r1"});
    assert_eq!(
        refusal(&answer(&mut bob_ws, react, "r1").await),
        "forbidden"
    );
    forbidden(rest_publish(&app, &bob, &team, "m3").await).await;
    // He still reads, and may take back what he said.
    app.post_message(&ada, &team, "you are muted", "a1").await;
    message_saying(&mut bob_ws, "you are muted").await;
    let delete = json!({"type": "delete", "room": team, "target": 1, "client_id": "d1"});
    assert_eq!(answer(&mut bob_ws, delete, "d1").await["type"], "ack");
    let mutes = app
        .get(&format!("/api/v1/rooms/{team}/mutes"), &ada.access)
        .await;
    assert_eq!(parts(mutes).await.1["items"][0]["user_id"], bob.id.as_str());

    let lift = format!("/api/v1/rooms/{team}/mutes/{}", bob.id);
    assert_eq!(
        app.delete(&lift, &ada.access).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(ws_publish(&mut bob_ws, &team, "m4").await["type"], "ack");
}

// --- Blocks -------------------------------------------------------------------

async fn a_block_stops_follows_direct_messages_and_notifications(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    app.follow(&bob, &ada).await;
    app.follow(&ada, &bob).await;
    let dm = app.create_room(&ada, "ada+bob", "direct").await;
    app.add_member(&ada, &dm, &bob.id).await;
    let lobby = app.create_room(&ada, "lobby", "public").await;
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.subscribe(&dm, None).await;
    assert_eq!(ws_publish(&mut bob_ws, &dm, "hi").await["type"], "ack");

    assert_eq!(
        block(&app, &ada, &bob.id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        block(&app, &ada, &bob.id).await.status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );

    // He cannot write to her, follow her, or reach her by mention or post.
    assert_eq!(
        refusal(&ws_publish(&mut bob_ws, &dm, "again").await),
        "forbidden"
    );
    let dm_rest = forbidden(rest_publish(&app, &bob, &dm, "rest").await).await;
    assert!(
        dm_rest["detail"].as_str().unwrap().contains("blocked"),
        "{dm_rest}"
    );
    let follow = format!("/api/v1/users/{}/follow", ada.id);
    forbidden(app.post(&follow, &bob.access, json!({})).await).await;
    // The block ended both follows; she may follow him again, he still cannot notify her.
    app.follow(&ada, &bob).await;
    app.post_message(&bob, &lobby, "hey @ada", "mention").await;
    app.new_post(&bob, "a post ada must not hear of").await;
    // Her own message in the DM still reaches him: the block is hers to use.
    app.post_message(&ada, &dm, "bye", "bye").await;
    message_saying(&mut bob_ws, "bye").await;
    let after = app.notifications(&ada, "").await;
    let from_the_block = |n: &&Value| {
        n["kind"] == "new_post" || n["payload"]["excerpt"].as_str() == Some("hey @ada")
    };
    assert!(!after.iter().any(|n| from_the_block(&n)), "{after:?}");

    let (status, blocks) = parts(app.get("/api/v1/users/me/blocks", &ada.access).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        blocks["items"][0]["user"]["id"],
        bob.id.as_str(),
        "{blocks}"
    );
    assert!(blocks["items"][0]["blocked_at"].is_string());

    let unblock = format!("/api/v1/users/{}/block", bob.id);
    assert_eq!(
        app.delete(&unblock, &ada.access).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(ws_publish(&mut bob_ws, &dm, "friends").await["type"], "ack");
    let (_, blocks) = parts(app.get("/api/v1/users/me/blocks", &ada.access).await).await;
    assert_eq!(blocks["items"], json!([]));
    // Unblocked, his mention reaches her again: the silence was the block.
    app.post_message(&bob, &lobby, "hello again @ada", "mention2")
        .await;
    let notified = app.notifications(&ada, "").await;
    let mention = notified.iter().find(|n| n["kind"] == "mention");
    assert_eq!(mention.unwrap()["payload"]["excerpt"], "hello again @ada");

    assert_problem(
        block(&app, &ada, &ada.id).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let stranger = uuid::Uuid::now_v7().to_string();
    assert_problem(
        block(&app, &ada, &stranger).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        block(&app, &ada, "not-a-user").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
}

// --- Reports ------------------------------------------------------------------

async fn reports_of_messages_and_users_reach_the_admin_listener(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let lobby = app.create_room(&ada, "lobby", "public").await;
    let team = app.create_room(&ada, "team", "private").await;
    app.post_message(&ada, &lobby, "buy now", "m1").await;
    app.post_message(&ada, &team, "secret", "t1").await;
    let report = |body: Value| app.post("/api/v1/reports", &bob.access, body);

    let (status, first) =
        parts(report(json!({"kind": "message", "room": lobby, "seq": 1, "reason": "spam"})).await)
            .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (first["kind"].as_str(), first["seq"].as_i64()),
        (Some("message"), Some(1))
    );
    let (status, second) =
        parts(report(json!({"kind": "user", "user_id": ada.id, "reason": "rude"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");

    // Only what he can see, and only what exists.
    let hidden = json!({"kind": "message", "room": team, "seq": 1, "reason": "?"});
    assert_problem(report(hidden).await, StatusCode::FORBIDDEN, "forbidden").await;
    let missing = json!({"kind": "message", "room": lobby, "seq": 9, "reason": "?"});
    assert_problem(report(missing).await, StatusCode::NOT_FOUND, "not_found").await;
    let nobody = json!({"kind": "user", "user_id": uuid::Uuid::now_v7(), "reason": "?"});
    assert_problem(report(nobody).await, StatusCode::NOT_FOUND, "not_found").await;
    let incomplete = json!({"kind": "message", "room": lobby, "reason": " "});
    let problem = assert_problem(
        report(incomplete).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["reason", "seq"], "{problem}");
    let odd = json!({"kind": "post", "reason": "x"});
    assert_problem(report(odd).await, StatusCode::BAD_REQUEST, "bad_request").await;

    let listed = app.admin_json("/admin/reports?limit=1").await;
    assert_eq!(
        listed["items"][0]["id"], second["id"],
        "newest first: {listed}"
    );
    let cursor = listed["next_cursor"].as_str().unwrap().to_owned();
    let older = app
        .admin_json(&format!("/admin/reports?cursor={cursor}"))
        .await;
    assert_eq!(older["items"][0]["id"], first["id"]);
    assert_eq!(older["next_cursor"], Value::Null);
}

// --- Across instances ----------------------------------------------------------

/// A ban and a mute made on one instance reach the user's sessions on
/// another through Redis.
#[actix_web::test]
async fn a_ban_and_a_mute_reach_sessions_on_the_other_instance() {
    let cluster = Cluster::start(2, &redis_url(), &[]).await;
    let (one, two) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let ada = one.register("ada").await;
    let bob = two.register("bob").await;
    let team = one.create_room(&ada, "team", "private").await;
    let lobby = one.create_room(&ada, "lobby", "public").await;
    one.add_member(&ada, &team, &bob.id).await;
    let mut bob_ws = two.ws(&bob).await;
    bob_ws.subscribe(&team, None).await;
    bob_ws.subscribe(&lobby, None).await;
    assert_eq!(ws_publish(&mut bob_ws, &lobby, "warm").await["type"], "ack");

    // The mute, on instance one, silences his session on instance two.
    mute(one, &ada, &lobby, &bob).await;
    // It travels through Redis: a publish racing it may still land.
    let deadline = Instant::now() + Duration::from_secs(5);
    for attempt in 0.. {
        let got = ws_publish(&mut bob_ws, &lobby, &format!("try{attempt}")).await;
        if got["type"] == "error" {
            assert_eq!(refusal(&got), "forbidden");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mute did not reach instance two"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = Instant::now();
    banned(one, &ada, &team, &bob).await;
    let frame = next_of(&mut bob_ws, "unsubscribed").await;
    println!("ban reached the other instance in {:?}", started.elapsed());
    assert_eq!(frame["room"], team.as_str());
    assert_eq!(frame["reason"], "banned");
    let resubscribe = json!({"type": "subscribe", "room": team, "since": 0});
    assert_eq!(
        refusal(&answer(&mut bob_ws, resubscribe, "s").await),
        "forbidden"
    );
}
