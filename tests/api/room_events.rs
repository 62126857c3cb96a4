//! Room events (contract 1.1, section 6.1) as a user notices them: edits,
//! deletes, reactions and replies over WebSocket and REST, acked with
//! their own seq and fanned out in the room's one gapless stream; retries
//! that change nothing; every refusal with its code; history in current
//! state; read cursors, receipts and unread counts; mentions added by an
//! edit and withdrawn by a delete; all of it across instances.

use crate::both_backends;
use crate::support::cluster::{Cluster, redis_url};
use crate::support::fixtures::reactions_of;
use crate::support::metrics::metric;
use crate::support::{Backend, TestApp, TestUser, WsClient, assert_problem, parts};
use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

both_backends!(
    edits_deletes_reactions_and_replies_are_acked_fanned_out_and_replayed_in_seq_order,
    a_retried_event_gets_the_original_ack_and_is_delivered_once,
    every_refusal_has_its_code_and_takes_no_seq,
    history_shows_each_message_in_its_current_state_and_pages_over_messages_only,
    a_read_reaches_every_session_of_the_reader_and_moves_unread_counts,
    receipts_are_shown_in_private_rooms_and_never_in_public_ones,
    an_edit_that_adds_a_mention_notifies_once_and_a_delete_withdraws_it,
    room_events_are_counted_by_kind_and_outcome,
    a_member_removed_from_a_private_room_keeps_no_badge_there_and_shows_no_receipt,
    an_emoji_with_reserved_characters_is_one_reaction_over_rest_and_websocket,
    concurrent_events_of_every_kind_take_gapless_seqs_and_a_replay_folds_to_the_history,
);

// --- Frames and requests ------------------------------------------------------

fn publish(room: &str, body: &str, client_id: &str) -> Value {
    json!({"type": "publish", "room": room, "body": body, "client_id": client_id})
}

fn reply(room: &str, body: &str, client_id: &str, reply_to: i64) -> Value {
    json!({"type": "publish", "room": room, "body": body, "client_id": client_id, "reply_to": reply_to})
}

fn edit(room: &str, target: i64, body: &str, client_id: &str) -> Value {
    json!({"type": "edit", "room": room, "target": target, "body": body, "client_id": client_id})
}

fn delete(room: &str, target: i64, client_id: &str) -> Value {
    json!({"type": "delete", "room": room, "target": target, "client_id": client_id})
}

fn react(room: &str, target: i64, emoji: &str, on: bool, client_id: &str) -> Value {
    json!({"type": "react", "room": room, "target": target, "emoji": emoji, "on": on, "client_id": client_id})
}

/// Sends `frame` with a `ref` of its own and returns the frame answering it
/// (`ack` or `error`); frames that arrive first are skipped.
async fn answer(ws: &mut WsClient, mut frame: Value) -> Value {
    let reference = format!(
        "{}-{}",
        frame["type"].as_str().unwrap(),
        frame["client_id"].as_str().unwrap_or("none")
    );
    frame["ref"] = json!(reference);
    ws.send(frame).await;
    loop {
        let got = ws.next().await;
        if got["ref"] == reference.as_str() {
            return got;
        }
    }
}

/// [`answer`], which must be an `ack` (with the `ref` it was sent with).
async fn acked(ws: &mut WsClient, frame: Value) -> Value {
    let got = answer(ws, frame.clone()).await;
    assert_eq!(got["type"], "ack", "{frame} -> {got}");
    got
}

/// [`answer`], which must be an `error`; returns its code.
async fn refused(ws: &mut WsClient, frame: Value) -> String {
    let got = answer(ws, frame.clone()).await;
    assert_eq!(got["type"], "error", "{frame} -> {got}");
    // A refusal is final: no hint to retry it.
    assert!(got.get("retry_after_ms").is_none(), "{frame} -> {got}");
    got["code"].as_str().unwrap().to_owned()
}

/// The next frame that is not `presence` or `typing`.
async fn next_event(ws: &mut WsClient) -> Value {
    loop {
        let frame = ws.next().await;
        if !matches!(frame["type"].as_str(), Some("presence" | "typing")) {
            return frame;
        }
    }
}

/// Every byte of `s` as `%XX`: an emoji as a client puts it in a path.
fn percent(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn message_path(room: &str, seq: impl std::fmt::Display) -> String {
    format!("/api/v1/rooms/{room}/messages/{seq}")
}

fn reaction_path(room: &str, seq: impl std::fmt::Display, emoji: &str) -> String {
    format!("{}/reactions/{}", message_path(room, seq), percent(emoji))
}

async fn rest_reply(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    body: &str,
    client_id: &str,
    reply_to: i64,
) -> Response {
    app.post(
        &format!("/api/v1/rooms/{room}/messages"),
        &user.access,
        json!({"body": body, "client_id": client_id, "reply_to": reply_to}),
    )
    .await
}

async fn rest_edit(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    seq: impl std::fmt::Display,
    body: &str,
    client_id: &str,
) -> Response {
    app.call(
        Method::PATCH,
        &message_path(room, seq),
        Some(&user.access),
        Some(json!({"body": body, "client_id": client_id})),
    )
    .await
}

async fn rest_delete(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    seq: impl std::fmt::Display,
) -> Response {
    app.delete(&message_path(room, seq), &user.access).await
}

async fn rest_react(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    seq: impl std::fmt::Display,
    emoji: &str,
    on: bool,
) -> Response {
    let method = if on { Method::PUT } else { Method::DELETE };
    let path = reaction_path(room, seq, emoji);
    app.call(method, &path, Some(&user.access), None).await
}

/// The ack of a REST call that must answer `status`.
async fn rest_ack(res: Response, status: StatusCode) -> Value {
    let (got, body) = parts(res).await;
    assert_eq!(got, status, "{body}");
    body
}

/// A message as `user` reads it in history.
async fn history_item(app: &TestApp, user: &TestUser, room: &str, seq: i64) -> Value {
    let items = app.whole_history(user, room).await;
    items
        .into_iter()
        .find(|m| m["seq"] == seq)
        .unwrap_or_else(|| panic!("no message {seq} in history"))
}

/// `room` as it appears in `user`'s `GET /rooms`.
async fn listed(app: &TestApp, user: &TestUser, room: &str) -> Value {
    let (status, page) = parts(app.get("/api/v1/rooms?limit=200", &user.access).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
        .unwrap_or_else(|| panic!("room {room} not listed: {page}"))
}

/// `(last_seq, read_seq, unread)` of `room` in `user`'s room list.
async fn position(app: &TestApp, user: &TestUser, room: &str) -> (i64, i64, i64) {
    let r = listed(app, user, room).await;
    (
        r["last_seq"].as_i64().unwrap(),
        r["read_seq"].as_i64().unwrap(),
        r["unread"].as_i64().unwrap(),
    )
}

async fn unread(app: &TestApp, user: &TestUser) -> Value {
    let (status, body) = parts(app.get("/api/v1/rooms/unread", &user.access).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn mark_read(app: &TestApp, user: &TestUser, room: &str, seq: i64) -> Value {
    let res = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &user.access,
            json!({ "seq": seq }),
        )
        .await;
    rest_ack(res, StatusCode::OK).await
}

async fn receipts(app: &TestApp, user: &TestUser, room: &str) -> BTreeMap<String, i64> {
    let path = format!("/api/v1/rooms/{room}/receipts");
    let body = rest_ack(app.get(&path, &user.access).await, StatusCode::OK).await;
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["user"].as_str().unwrap().to_owned(),
                r["seq"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn notification_count(app: &TestApp, user: &TestUser) -> i64 {
    let path = "/api/v1/notifications/unread-count";
    let body = rest_ack(app.get(path, &user.access).await, StatusCode::OK).await;
    body["count"].as_i64().unwrap()
}

// --- WebSocket: ack, fan-out, replay --------------------------------------------

async fn edits_deletes_reactions_and_replies_are_acked_fanned_out_and_replayed_in_seq_order(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut a = app.ws(&ada).await;
    let mut b = app.ws(&bob).await;
    b.subscribe(&room, None).await;

    let ack = acked(&mut a, publish(&room, "hello", "m1")).await;
    assert_eq!(
        (&ack["seq"], &ack["target"], &ack["ref"]),
        (&json!(1), &Value::Null, &json!("publish-m1"))
    );
    let m = next_event(&mut b).await;
    assert_eq!((&m["type"], &m["seq"]), (&json!("message"), &json!(1)));
    assert!(m.get("reply_to").is_none(), "no reply_to unless set: {m}");

    let ack = acked(&mut a, reply(&room, "a reply", "m2", 1)).await;
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(2), &Value::Null));
    let m = next_event(&mut b).await;
    assert_eq!(
        (&m["type"], &m["seq"], &m["reply_to"], &m["body"]),
        (&json!("message"), &json!(2), &json!(1), &json!("a reply"))
    );

    let ack = acked(&mut a, edit(&room, 1, "hello, edited", "e1")).await;
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(3), &json!(1)));
    let e = next_event(&mut b).await;
    assert_eq!(e["type"], "edit", "{e}");
    assert_eq!(
        (&e["seq"], &e["target"], &e["body"], &e["author"]),
        (
            &json!(3),
            &json!(1),
            &json!("hello, edited"),
            &json!(ada.id)
        )
    );

    // On twice is one reaction; off removes it.
    for (i, (on, seq)) in [(true, 4), (true, 5), (false, 6)].into_iter().enumerate() {
        let ack = acked(&mut a, react(&room, 1, "👍", on, &format!("r{i}"))).await;
        assert_eq!((&ack["seq"], &ack["target"]), (&json!(seq), &json!(1)));
        let r = next_event(&mut b).await;
        assert_eq!(r["type"], "reaction", "{r}");
        assert_eq!(
            (&r["seq"], &r["target"], &r["emoji"], &r["user"], &r["on"]),
            (
                &json!(seq),
                &json!(1),
                &json!("👍"),
                &json!(ada.id),
                &json!(on)
            )
        );
        let expected = if on {
            BTreeMap::from([("👍".to_owned(), (1, false))])
        } else {
            BTreeMap::new()
        };
        let seen_by_bob = history_item(&app, &bob, &room, 1).await;
        assert_eq!(reactions_of(&seen_by_bob), expected, "after seq {seq}");
    }

    // The reply is edited, then deleted: nothing of what it said stays.
    let ack = acked(&mut a, edit(&room, 2, "a secret", "e2")).await;
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(7), &json!(2)));
    assert_eq!(next_event(&mut b).await["body"], "a secret");
    let ack = acked(&mut a, delete(&room, 2, "d1")).await;
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(8), &json!(2)));
    let d = next_event(&mut b).await;
    assert_eq!(d["type"], "delete", "{d}");
    assert_eq!(
        (&d["seq"], &d["target"], &d["by"]),
        (&json!(8), &json!(2), &json!(ada.id))
    );

    // A device that was away replays every kind, in seq order, no gap;
    // the deleted message's body and its edit's are gone from storage.
    let mut late = app.ws(&bob).await;
    assert_eq!(late.subscribe(&room, Some(0)).await["seq"], 8);
    let mut kinds = Vec::new();
    for seq in 1..=8 {
        let f = next_event(&mut late).await;
        assert_eq!(f["seq"], seq, "{f}");
        kinds.push(f["type"].as_str().unwrap().to_owned());
        match seq {
            2 => assert_eq!((&f["body"], &f["reply_to"]), (&json!(""), &json!(1))),
            3 => assert_eq!(
                (&f["target"], &f["body"]),
                (&json!(1), &json!("hello, edited"))
            ),
            7 => assert_eq!((&f["target"], &f["body"]), (&json!(2), &json!(""))),
            8 => assert_eq!((&f["target"], &f["by"]), (&json!(2), &json!(ada.id))),
            _ => {}
        }
    }
    let expected = [
        "message", "message", "edit", "reaction", "reaction", "reaction", "edit", "delete",
    ];
    assert_eq!(kinds, expected);
    // From the middle: only what came after.
    let mut later = app.ws(&bob).await;
    later.subscribe(&room, Some(6)).await;
    let (f7, f8) = (next_event(&mut later).await, next_event(&mut later).await);
    assert_eq!(
        (&f7["seq"], &f7["type"], &f8["seq"], &f8["type"]),
        (&json!(7), &json!("edit"), &json!(8), &json!("delete"))
    );
}

// --- Idempotent retries -----------------------------------------------------------

async fn a_retried_event_gets_the_original_ack_and_is_delivered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut a = app.ws(&ada).await;
    let mut b = app.ws(&bob).await;
    b.subscribe(&room, None).await;

    let frames = [
        publish(&room, "first", "m1"),
        reply(&room, "second", "m2", 1),
        edit(&room, 1, "first, edited", "e1"),
        react(&room, 1, "🎉", true, "r1"),
        delete(&room, 2, "d1"),
    ];
    let mut originals = Vec::new();
    for frame in &frames {
        originals.push(acked(&mut a, frame.clone()).await);
    }
    for (frame, original) in frames.iter().zip(&originals) {
        let again = acked(&mut a, frame.clone()).await;
        assert_eq!(
            (&again["seq"], &again["id"], &again["target"]),
            (&original["seq"], &original["id"], &original["target"]),
            "a retry of {frame}"
        );
    }
    // The same keys over REST answer the same.
    let res = rest_edit(&app, &ada, &room, 1, "first, edited", "e1").await;
    assert_eq!(
        rest_ack(res, StatusCode::OK).await["seq"],
        originals[2]["seq"]
    );
    let res = rest_reply(&app, &ada, &room, "second", "m2", 1).await;
    assert_eq!(
        rest_ack(res, StatusCode::OK).await["seq"],
        originals[1]["seq"]
    );

    // The retried react is one reaction.
    let first = history_item(&app, &ada, &room, 1).await;
    assert_eq!(
        reactions_of(&first),
        BTreeMap::from([("🎉".into(), (1, true))])
    );

    // A repeated REST delete by the author is one delete.
    let first = rest_ack(rest_delete(&app, &ada, &room, 1).await, StatusCode::OK).await;
    let again = rest_ack(rest_delete(&app, &ada, &room, 1).await, StatusCode::OK).await;
    assert_eq!(first["seq"], 6);
    assert_eq!(
        (&again["seq"], &again["id"], &again["target"]),
        (&first["seq"], &first["id"], &json!(1))
    );

    // bob saw each event once, in order: the next after them is seq 7.
    acked(&mut a, publish(&room, "last", "m3")).await;
    let seen: Vec<(i64, String)> = {
        let mut seen = Vec::new();
        for _ in 1..=7 {
            let f = next_event(&mut b).await;
            seen.push((
                f["seq"].as_i64().unwrap(),
                f["type"].as_str().unwrap().to_owned(),
            ));
        }
        seen
    };
    let expected: Vec<(i64, String)> = [
        "message", "message", "edit", "reaction", "delete", "delete", "message",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| (i as i64 + 1, (*k).to_owned()))
    .collect();
    assert_eq!(seen, expected);
    let (items, _) = app.history(&bob, &room, "").await;
    let state: Vec<(&Value, &Value)> = items.iter().map(|m| (&m["seq"], &m["deleted"])).collect();
    assert_eq!(
        state,
        [
            (&json!(1), &json!(true)),
            (&json!(2), &json!(true)),
            (&json!(7), &json!(false))
        ],
        "three messages, whatever the retries"
    );
}

// --- Refusals -------------------------------------------------------------------------

async fn every_refusal_has_its_code_and_takes_no_seq(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd, dan, eve] = app.users(["ada", "bob", "cyd", "dan", "eve"]).await;
    let room = app.create_room(&ada, "team", "private").await;
    app.add_member(&ada, &room, &bob.id).await;
    app.add_member(&ada, &room, &dan.id).await;
    let res = app
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            &ada.access,
            json!({"user_id": cyd.id, "role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for (user, i) in [(&ada, 1), (&bob, 2), (&bob, 3), (&bob, 4)] {
        let (status, ack) = app.post_message(user, &room, "hi", &format!("m{i}")).await;
        assert_eq!((status, &ack["seq"]), (StatusCode::CREATED, &json!(i)));
    }
    let mut accepted = 4;
    let mut b = app.ws(&bob).await;
    let mut d = app.ws(&dan).await;

    // Only the author edits: not another member, not even the owner.
    assert_eq!(
        refused(&mut b, edit(&room, 1, "mine now", "x1")).await,
        "forbidden"
    );
    for who in [&bob, &cyd] {
        let res = rest_edit(&app, who, &room, 1, "mine now", "x2").await;
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = rest_edit(&app, &ada, &room, 2, "yours", "x3").await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    // A plain member deletes only their own; the owner and an admin any.
    assert_eq!(refused(&mut d, delete(&room, 2, "x4")).await, "forbidden");
    let res = rest_delete(&app, &dan, &room, 2).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let by_owner = rest_ack(rest_delete(&app, &ada, &room, 2).await, StatusCode::OK).await;
    let by_admin = rest_ack(rest_delete(&app, &cyd, &room, 3).await, StatusCode::OK).await;
    accepted += 2;
    assert_eq!(
        (&by_owner["target"], &by_admin["target"], &by_admin["seq"]),
        (&json!(2), &json!(3), &json!(accepted))
    );
    assert_eq!(history_item(&app, &bob, &room, 3).await["deleted"], true);

    // Nothing more happens to a deleted message.
    assert_eq!(
        refused(&mut b, edit(&room, 2, "back", "x5")).await,
        "conflict"
    );
    assert_eq!(
        refused(&mut d, react(&room, 2, "👍", true, "x6")).await,
        "conflict"
    );
    let res = rest_edit(&app, &bob, &room, 2, "back", "x7").await;
    assert_problem(res, StatusCode::CONFLICT, "conflict").await;
    let res = rest_react(&app, &dan, &room, 3, "👍", true).await;
    assert_problem(res, StatusCode::CONFLICT, "conflict").await;

    // A seq that is not a message: an edit's, a delete's, one not there yet.
    let ack = acked(&mut b, edit(&room, 4, "edited", "e4")).await;
    accepted += 1;
    let edit_seq = ack["seq"].as_i64().unwrap();
    assert_eq!(edit_seq, accepted);
    for target in [edit_seq, by_owner["seq"].as_i64().unwrap(), 999] {
        assert_eq!(
            refused(&mut b, edit(&room, target, "?", "x8")).await,
            "not_found"
        );
        assert_eq!(
            refused(&mut d, react(&room, target, "👍", true, "x9")).await,
            "not_found"
        );
        let res = rest_edit(&app, &bob, &room, target, "?", "x10").await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let res = rest_react(&app, &dan, &room, target, "👍", true).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let res = rest_delete(&app, &ada, &room, target).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        // Nor may a reply point at it.
        let res = rest_reply(&app, &bob, &room, "re", "x11", target).await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(
            refused(&mut b, reply(&room, "re", "x12", target)).await,
            "not_found"
        );
    }

    // Someone who is not a member of the private room may do nothing.
    let mut e = app.ws(&eve).await;
    assert_eq!(
        refused(&mut e, edit(&room, 1, "?", "x13")).await,
        "forbidden"
    );
    assert_eq!(
        refused(&mut e, react(&room, 1, "👍", true, "x14")).await,
        "forbidden"
    );
    let forbidden = [
        rest_edit(&app, &eve, &room, 1, "?", "x15").await,
        rest_delete(&app, &eve, &room, 1).await,
        rest_react(&app, &eve, &room, 1, "👍", true).await,
        rest_react(&app, &eve, &room, 1, "👍", false).await,
        rest_reply(&app, &eve, &room, "re", "x16", 1).await,
        app.post(
            &format!("/api/v1/rooms/{room}/read"),
            &eve.access,
            json!({"seq": 1}),
        )
        .await,
        app.get(&format!("/api/v1/rooms/{room}/receipts"), &eve.access)
            .await,
    ];
    for res in forbidden {
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }

    let read = json!({"type": "read", "room": room, "seq": 1});
    assert_eq!(refused(&mut e, read).await, "forbidden");

    // Bad input: an emoji too long or with a space, a seq that is no seq.
    let long = "x".repeat(33);
    for emoji in [long.as_str(), "thumbs up"] {
        let res = rest_react(&app, &bob, &room, 1, emoji, true).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(
            refused(&mut b, react(&room, 1, emoji, true, "x17")).await,
            "bad_request"
        );
    }
    let ok = "y".repeat(32);
    rest_ack(
        rest_react(&app, &bob, &room, 1, &ok, true).await,
        StatusCode::OK,
    )
    .await;
    accepted += 1;
    for seq in ["0", "-1", "abc", "1.5"] {
        let res = rest_edit(&app, &ada, &room, seq, "?", "x18").await;
        assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        let res = rest_delete(&app, &ada, &room, seq).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        let res = rest_react(&app, &ada, &room, seq, "👍", true).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(
        refused(&mut b, edit(&room, 0, "?", "x19")).await,
        "bad_request"
    );
    let read = json!({"type": "read", "room": room, "seq": -1});
    assert_eq!(refused(&mut b, read).await, "bad_request");
    let res = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.access,
            json!({"seq": -1}),
        )
        .await;
    assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;

    // None of the refusals took a seq: the stream goes on from the last
    // accepted event.
    assert_eq!(position(&app, &ada, &room).await.0, accepted);
    let ack = acked(&mut b, publish(&room, "still here", "m5")).await;
    assert_eq!(ack["seq"], accepted + 1);
}

// --- History ------------------------------------------------------------------------------

async fn history_shows_each_message_in_its_current_state_and_pages_over_messages_only(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    let thumbs = "👍";
    assert_eq!(percent(thumbs), "%F0%9F%91%8D");

    let (status, _) = app.post_message(&ada, &room, "first", "m1").await; // 1
    assert_eq!(status, StatusCode::CREATED);
    let res = rest_reply(&app, &bob, &room, "reply one", "m2", 1).await; // 2
    let ack = rest_ack(res, StatusCode::CREATED).await;
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(2), &Value::Null));
    let ack = rest_ack(
        rest_edit(&app, &ada, &room, 1, "first, edited", "e1").await, // 3
        StatusCode::OK,
    )
    .await;
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(3), &json!(1)));
    let ack = rest_ack(
        rest_react(&app, &ada, &room, 1, thumbs, true).await, // 4
        StatusCode::OK,
    )
    .await;
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(4), &json!(1)));
    rest_ack(
        rest_reply(&app, &ada, &room, "reply two", "m3", 1).await,
        StatusCode::CREATED,
    )
    .await; // 5
    rest_ack(
        rest_react(&app, &bob, &room, 1, "🎉", true).await,
        StatusCode::OK,
    )
    .await; // 6
    app.post_message(&ada, &room, "doomed", "m4").await; // 7
    rest_ack(
        rest_react(&app, &bob, &room, 7, thumbs, true).await,
        StatusCode::OK,
    )
    .await; // 8
    let ack = rest_ack(rest_delete(&app, &ada, &room, 7).await, StatusCode::OK).await; // 9
    assert_eq!((&ack["seq"], &ack["target"]), (&json!(9), &json!(7)));
    rest_ack(
        rest_react(&app, &bob, &room, 1, thumbs, true).await,
        StatusCode::OK,
    )
    .await; // 10
    rest_ack(
        rest_react(&app, &ada, &room, 1, thumbs, true).await,
        StatusCode::OK,
    )
    .await; // 11
    app.post_message(&bob, &room, "last", "m5").await; // 12
    // A reaction taken back is gone from the count.
    rest_ack(
        rest_react(&app, &bob, &room, 12, "🎉", true).await,
        StatusCode::OK,
    )
    .await; // 13
    rest_ack(
        rest_react(&app, &bob, &room, 12, "🎉", false).await,
        StatusCode::OK,
    )
    .await; // 14

    // Only messages, each in its current state.
    let (items, next) = app.history(&ada, &room, "").await;
    assert_eq!(next, Value::Null);
    let seqs: Vec<i64> = items.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 5, 7, 12], "no edit, delete or reaction seqs");
    let by_seq: BTreeMap<i64, &Value> = seqs.iter().copied().zip(&items).collect();

    let first = by_seq[&1];
    assert_eq!(first["body"], "first, edited");
    assert!(first["edited_at"].is_string(), "{first}");
    assert_eq!(
        (&first["deleted"], &first["reply_to"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(
        reactions_of(first),
        BTreeMap::from([("👍".into(), (2, true)), ("🎉".into(), (1, false))]),
        "ada's own 👍 counts once, however often she put it"
    );
    let reply = by_seq[&2];
    assert_eq!(
        (&reply["body"], &reply["reply_to"], &reply["edited_at"]),
        (&json!("reply one"), &json!(1), &Value::Null)
    );
    assert_eq!(reply["author"], bob.id.as_str());
    let doomed = by_seq[&7];
    assert_eq!(
        (&doomed["deleted"], &doomed["body"]),
        (&json!(true), &json!(""))
    );
    assert!(
        reactions_of(doomed).is_empty(),
        "a delete drops the reactions"
    );
    assert!(reactions_of(by_seq[&12]).is_empty(), "off removes it");

    // `me` is the caller's own.
    let seen_by_bob = history_item(&app, &bob, &room, 1).await;
    assert_eq!(
        reactions_of(&seen_by_bob),
        BTreeMap::from([("👍".into(), (2, true)), ("🎉".into(), (1, true))])
    );
    let cyd = app.register("cyd").await;
    let seen_by_cyd = history_item(&app, &cyd, &room, 1).await;
    assert_eq!(
        reactions_of(&seen_by_cyd),
        BTreeMap::from([("👍".into(), (2, false)), ("🎉".into(), (1, false))])
    );

    // A thread.
    let (thread, _) = app.history_seqs(&bob, &room, "?reply_to=1").await;
    assert_eq!(thread, [2, 5]);
    assert!(
        app.history_seqs(&bob, &room, "?reply_to=2")
            .await
            .0
            .is_empty()
    );
    let threads = [
        ("?reply_to=1&limit=1", vec![5], json!("5")),
        ("?reply_to=1&limit=1&before_seq=5", vec![2], Value::Null),
        ("?reply_to=1&limit=1&after_seq=0", vec![2], json!("2")),
        ("?reply_to=1&limit=1&after_seq=2", vec![5], Value::Null),
    ];
    for (query, seqs, next) in threads {
        assert_eq!(
            app.history_seqs(&bob, &room, query).await,
            (seqs, next),
            "{query}"
        );
    }

    // Pages, both ways, over messages only.
    let pages = [
        ("?after_seq=0&limit=2", vec![1, 2], json!("2")),
        ("?after_seq=2&limit=2", vec![5, 7], json!("7")),
        ("?after_seq=7&limit=2", vec![12], Value::Null),
        ("?limit=2", vec![7, 12], json!("7")),
        ("?before_seq=7&limit=2", vec![2, 5], json!("2")),
        ("?before_seq=2&limit=2", vec![1], Value::Null),
    ];
    for (query, seqs, next) in pages {
        assert_eq!(
            app.history_seqs(&bob, &room, query).await,
            (seqs, next),
            "{query}"
        );
    }
}

// --- Read state -------------------------------------------------------------------------

async fn a_read_reaches_every_session_of_the_reader_and_moves_unread_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "pair", "private").await;
    app.add_member(&ada, &room, &bob.id).await;
    let lobby = app.create_room(&ada, "lobby", "public").await;
    app.add_member(&bob, &lobby, &bob.id).await;
    for i in 1..=3 {
        app.post_message(&ada, &room, "for bob", &format!("m{i}"))
            .await;
    }
    app.post_message(&ada, &lobby, "hello all", "l1").await;
    assert_eq!(position(&app, &bob, &room).await, (3, 0, 3));
    assert_eq!(
        position(&app, &ada, &room).await,
        (3, 3, 0),
        "own publishes"
    );
    // The order of the rooms is not part of the contract.
    let mut badge = unread(&app, &bob).await;
    badge["items"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|i| i["room"] != room.as_str());
    assert_eq!(
        badge,
        json!({"total": 4, "items": [
            {"room": room, "unread": 3, "read_seq": 0, "last_seq": 3},
            {"room": lobby, "unread": 1, "read_seq": 0, "last_seq": 1},
        ]})
    );

    // A `read` from the phone clears the badge on the laptop too.
    let mut phone = app.ws(&bob).await;
    let mut laptop = app.ws(&bob).await;
    phone
        .send(json!({"type": "read", "room": room, "seq": 2}))
        .await;
    for session in [&mut phone, &mut laptop] {
        assert_eq!(
            next_event(session).await,
            json!({"type": "read", "room": room, "seq": 2})
        );
    }
    assert_eq!(position(&app, &bob, &room).await, (3, 2, 1));

    // Over REST: the same frames, and the cursor is clamped to the newest.
    let answer = mark_read(&app, &bob, &room, 100).await;
    assert_eq!(answer, json!({"room": room, "seq": 3}));
    for session in [&mut phone, &mut laptop] {
        assert_eq!(
            next_event(session).await,
            json!({"type": "read", "room": room, "seq": 3})
        );
    }
    assert_eq!(position(&app, &bob, &room).await, (3, 3, 0));
    // Never back (and still answered, with the cursor as it is).
    assert_eq!(mark_read(&app, &bob, &room, 1).await["seq"], 3);
    for session in [&mut phone, &mut laptop] {
        assert_eq!(
            next_event(session).await,
            json!({"type": "read", "room": room, "seq": 3})
        );
    }
    assert_eq!(position(&app, &bob, &room).await, (3, 3, 0));
    assert_eq!(
        unread(&app, &bob).await,
        json!({"total": 1, "items": [{"room": lobby, "unread": 1, "read_seq": 0, "last_seq": 1}]})
    );
    mark_read(&app, &bob, &lobby, 1).await;

    // Own publish moves the own cursor; edits, deletes and reactions are
    // not unread, nor is a deleted message.
    app.post_message(&bob, &room, "me too", "b1").await; // 4
    assert_eq!(position(&app, &bob, &room).await, (4, 4, 0));
    app.post_message(&ada, &room, "keep", "m5").await; // 5
    app.post_message(&ada, &room, "oops", "m6").await; // 6
    assert_eq!(position(&app, &bob, &room).await, (6, 4, 2));
    rest_ack(rest_delete(&app, &ada, &room, 6).await, StatusCode::OK).await; // 7
    rest_ack(
        rest_edit(&app, &ada, &room, 5, "kept", "e5").await,
        StatusCode::OK,
    )
    .await; // 8
    rest_ack(
        rest_react(&app, &ada, &room, 4, "👍", true).await,
        StatusCode::OK,
    )
    .await; // 9
    assert_eq!(position(&app, &bob, &room).await, (9, 4, 1));
    let badge = unread(&app, &bob).await;
    assert_eq!(badge["total"], 1, "the lobby is read: {badge}");
    // Reading up to the last message leaves nothing unread.
    mark_read(&app, &bob, &room, 5).await;
    assert_eq!(position(&app, &bob, &room).await, (9, 5, 0));
}

async fn receipts_are_shown_in_private_rooms_and_never_in_public_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let private = app.create_room(&ada, "pair", "private").await;
    app.add_member(&ada, &private, &bob.id).await;
    let public = app.create_room(&ada, "lobby", "public").await;
    for room in [&private, &public] {
        for i in 1..=2 {
            app.post_message(&ada, room, "hi", &format!("m{i}")).await;
        }
    }
    let mut a = app.ws(&ada).await;
    a.subscribe(&private, None).await;
    a.subscribe(&public, None).await;
    let mut b = app.ws(&bob).await;
    b.subscribe(&private, None).await;
    b.subscribe(&public, None).await;

    // Over WebSocket in the private room: ada sees bob's cursor.
    b.send(json!({"type": "read", "room": private, "seq": 1}))
        .await;
    assert_eq!(next_event(&mut b).await["type"], "read");
    assert_eq!(
        next_event(&mut a).await,
        json!({"type": "receipt", "room": private, "user": bob.id, "seq": 1})
    );
    // In the public room nobody learns it, nor of a read that moves no
    // cursor; the next receipt ada gets is bob's next move in the private
    // room.
    assert_eq!(mark_read(&app, &bob, &public, 2).await["seq"], 2);
    assert_eq!(mark_read(&app, &bob, &private, 1).await["seq"], 1);
    assert_eq!(mark_read(&app, &bob, &private, 2).await["seq"], 2);
    assert_eq!(
        next_event(&mut a).await,
        json!({"type": "receipt", "room": private, "user": bob.id, "seq": 2})
    );
    // bob's own sessions get `read` for every read (moved or not), never a
    // receipt of himself.
    for (room, seq) in [(&public, 2), (&private, 1), (&private, 2)] {
        assert_eq!(
            next_event(&mut b).await,
            json!({"type": "read", "room": room, "seq": seq})
        );
    }

    let seen = receipts(&app, &ada, &private).await;
    assert_eq!(seen.get(&bob.id), Some(&2), "{seen:?}");
    assert!(receipts(&app, &ada, &public).await.is_empty());

    // A direct room shows receipts too.
    let direct = app.create_room(&ada, "ada and bob", "direct").await;
    app.add_member(&ada, &direct, &bob.id).await;
    app.post_message(&ada, &direct, "psst", "d1").await;
    a.subscribe(&direct, None).await;
    assert_eq!(mark_read(&app, &bob, &direct, 1).await["seq"], 1);
    assert_eq!(
        next_event(&mut a).await,
        json!({"type": "receipt", "room": direct, "user": bob.id, "seq": 1})
    );
    assert_eq!(receipts(&app, &ada, &direct).await.get(&bob.id), Some(&1));
}

async fn a_member_removed_from_a_private_room_keeps_no_badge_there_and_shows_no_receipt(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "team", "private").await;
    app.add_member(&ada, &room, &bob.id).await;
    let lobby = app.create_room(&ada, "lobby", "public").await;
    for i in 1..=2 {
        app.post_message(&ada, &room, "hi", &format!("m{i}")).await;
    }
    mark_read(&app, &bob, &room, 1).await;
    // bob reads the lobby without joining it: it becomes one of his.
    mark_read(&app, &bob, &lobby, 0).await;
    assert_eq!(receipts(&app, &ada, &room).await.get(&bob.id), Some(&1));

    let res = app
        .delete(
            &format!("/api/v1/rooms/{room}/members/{}", bob.id),
            &ada.access,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.post_message(&ada, &room, "after bob left", "m3").await;
    app.post_message(&ada, &lobby, "in the lobby", "l1").await;

    // bob can no longer read the room, so it is not on his badge (he could
    // never clear it) and he learns nothing of what goes on in it ...
    let res = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.access,
            json!({"seq": 3}),
        )
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        unread(&app, &bob).await,
        json!({"total": 1, "items": [{"room": lobby, "unread": 1, "read_seq": 0, "last_seq": 1}]})
    );
    // ... and the room no longer shows where he had read to.
    assert!(!receipts(&app, &ada, &room).await.contains_key(&bob.id));
}

async fn an_emoji_with_reserved_characters_is_one_reaction_over_rest_and_websocket(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    app.post_message(&ada, &room, "hello", "m1").await;
    let mut a = app.ws(&ada).await;
    let names = ["+1", "100%", "a/b", "a?b#c", "👍🏽"];
    for (i, emoji) in names.iter().enumerate() {
        acked(&mut a, react(&room, 1, emoji, true, &format!("r{i}"))).await;
        let res = rest_react(&app, &bob, &room, 1, emoji, true).await;
        rest_ack(res, StatusCode::OK).await;
    }
    let seen = reactions_of(&history_item(&app, &bob, &room, 1).await);
    let expected: BTreeMap<String, (i64, bool)> =
        names.iter().map(|e| ((*e).to_owned(), (2, true))).collect();
    assert_eq!(seen, expected);
    for emoji in names {
        let res = rest_react(&app, &bob, &room, 1, emoji, false).await;
        rest_ack(res, StatusCode::OK).await;
    }
    let seen = reactions_of(&history_item(&app, &ada, &room, 1).await);
    let expected: BTreeMap<String, (i64, bool)> =
        names.iter().map(|e| ((*e).to_owned(), (1, true))).collect();
    assert_eq!(seen, expected);
}

/// A message as a client folds it from the stream: body, deleted, and
/// who holds which emoji.
#[derive(Debug, Default, PartialEq)]
struct Folded {
    body: String,
    deleted: bool,
    reactions: BTreeMap<String, BTreeSet<String>>,
}

/// The contract's folding rule, applied to `frame`.
fn fold(timeline: &mut BTreeMap<i64, Folded>, frame: &Value) {
    let target = frame["target"].as_i64().unwrap_or_default();
    match frame["type"].as_str().unwrap() {
        "message" => {
            let body = frame["body"].as_str().unwrap().to_owned();
            let seq = frame["seq"].as_i64().unwrap();
            timeline.insert(
                seq,
                Folded {
                    body,
                    ..Folded::default()
                },
            );
        }
        "edit" => {
            timeline.get_mut(&target).unwrap().body = frame["body"].as_str().unwrap().into();
        }
        "delete" => {
            let message = timeline.get_mut(&target).unwrap();
            (message.body, message.deleted) = (String::new(), true);
            message.reactions.clear();
        }
        "reaction" => {
            let message = timeline.get_mut(&target).unwrap();
            let emoji = frame["emoji"].as_str().unwrap().to_owned();
            let user = frame["user"].as_str().unwrap().to_owned();
            let users = message.reactions.entry(emoji.clone()).or_default();
            if frame["on"] == true {
                users.insert(user);
            } else {
                users.remove(&user);
                if users.is_empty() {
                    message.reactions.remove(&emoji);
                }
            }
        }
        other => panic!("not an event frame: {other}"),
    }
}

async fn concurrent_events_of_every_kind_take_gapless_seqs_and_a_replay_folds_to_the_history(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "busy", "public").await;
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(app.register(&format!("user{i}")).await);
    }
    app.post_message(&ada, &room, "topic", "m0").await; // 1
    for (i, user) in users.iter().enumerate() {
        app.post_message(user, &room, "mine", &format!("m{i}"))
            .await; // 2..=7
    }
    let mut live = app.ws(&ada).await;
    live.subscribe(&room, None).await;

    // Everyone at once: a reaction on the topic, a reply to it, an edit of
    // their own message, the first three a reaction taken back, the last
    // two their message deleted; ada edits the topic meanwhile.
    let work = users.iter().enumerate().map(|(i, user)| {
        let (app, room) = (&app, &room);
        async move {
            let own = i as i64 + 2;
            let mut acks = Vec::new();
            let res = rest_react(app, user, room, 1, "👍", true).await;
            acks.push(rest_ack(res, StatusCode::OK).await);
            let res = rest_reply(app, user, room, "+1", &format!("re{i}"), 1).await;
            acks.push(rest_ack(res, StatusCode::CREATED).await);
            let res = rest_edit(app, user, room, own, &format!("mine, {i}"), "e").await;
            acks.push(rest_ack(res, StatusCode::OK).await);
            if i < 3 {
                let res = rest_react(app, user, room, 1, "👍", false).await;
                acks.push(rest_ack(res, StatusCode::OK).await);
            }
            if i >= 4 {
                acks.push(rest_ack(rest_delete(app, user, room, own).await, StatusCode::OK).await);
            }
            acks
        }
    });
    let topic_edits = (0..4).map(|i| {
        let (app, room, ada) = (&app, &room, &ada);
        async move {
            let res = rest_edit(app, ada, room, 1, &format!("topic v{i}"), &format!("t{i}")).await;
            vec![rest_ack(res, StatusCode::OK).await]
        }
    });
    let (mut acks, topic): (Vec<Vec<Value>>, Vec<Vec<Value>>) =
        futures_util::join!(join_all(work), join_all(topic_edits));
    acks.extend(topic);
    let mut seqs: Vec<i64> = acks
        .iter()
        .flatten()
        .map(|a| a["seq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    let last = 7 + seqs.len() as i64;
    assert_eq!(seqs, (8..=last).collect::<Vec<_>>(), "one seq each, no gap");

    // The topic holds the body of its latest edit and three 👍.
    let (items, _) = app.history(&ada, &room, "?after_seq=0&limit=100").await;
    let topic = &items[0];
    let latest_edit = acks
        .iter()
        .flatten()
        .filter(|a| a["target"] == 1 && a["client_id"].as_str().unwrap().starts_with('t'))
        .max_by_key(|a| a["seq"].as_i64().unwrap())
        .unwrap();
    let v = latest_edit["client_id"]
        .as_str()
        .unwrap()
        .trim_start_matches('t');
    assert_eq!(topic["body"], format!("topic v{v}"));
    assert_eq!(
        reactions_of(topic),
        BTreeMap::from([("👍".into(), (3, false))])
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?reply_to=1").await.0.len(),
        6
    );

    // The live subscriber and a late one replaying from 0 both fold the
    // stream into exactly what history shows.
    let mut late = app.ws(&ada).await;
    late.subscribe(&room, Some(0)).await;
    let mut from_live = BTreeMap::new();
    let mut from_replay = BTreeMap::new();
    for seq in 1..=last {
        let f = next_event(&mut late).await;
        assert_eq!(f["seq"], seq, "replayed, in order: {f}");
        fold(&mut from_replay, &f);
        if seq <= 7 {
            // The live subscriber joined after these: it has them from
            // history, as a client would.
            fold(&mut from_live, &f);
        } else {
            let f = next_event(&mut live).await;
            assert_eq!(f["seq"], seq, "live, in order: {f}");
            fold(&mut from_live, &f);
        }
    }
    let mut from_history = BTreeMap::new();
    for m in &items {
        let mut folded = Folded {
            body: m["body"].as_str().unwrap().to_owned(),
            deleted: m["deleted"].as_bool().unwrap(),
            ..Folded::default()
        };
        // History counts; the stream names users: compare the counts.
        for (emoji, (count, _)) in reactions_of(m) {
            let users: BTreeSet<String> = (0..count).map(|n| n.to_string()).collect();
            folded.reactions.insert(emoji, users);
        }
        from_history.insert(m["seq"].as_i64().unwrap(), folded);
    }
    let counted = |timeline: BTreeMap<i64, Folded>| -> BTreeMap<i64, Folded> {
        timeline
            .into_iter()
            .map(|(seq, mut m)| {
                for users in m.reactions.values_mut() {
                    *users = (0..users.len()).map(|n| n.to_string()).collect();
                }
                (seq, m)
            })
            .collect()
    };
    assert_eq!(counted(from_replay), from_history);
    assert_eq!(counted(from_live), from_history);
}

// --- Notifications -------------------------------------------------------------------

async fn an_edit_that_adds_a_mention_notifies_once_and_a_delete_withdraws_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut b = app.ws(&bob).await;

    app.post_message(&ada, &room, "hello", "m1").await; // 1
    rest_ack(
        rest_edit(&app, &ada, &room, 1, "hello @bob", "e1").await,
        StatusCode::OK,
    )
    .await;
    let n = b.next_of("notification").await;
    assert_eq!(
        (&n["kind"], &n["payload"]["seq"], &n["payload"]["room"]),
        (&json!("mention"), &json!(1), &json!(room))
    );
    // Edited again, still mentioning bob: no second notification. The next
    // one bob gets is for a new message.
    let mut w = app.ws(&ada).await;
    acked(&mut w, edit(&room, 1, "hello again @bob", "e2")).await;
    rest_ack(
        rest_edit(&app, &ada, &room, 1, "hi @bob!", "e3").await,
        StatusCode::OK,
    )
    .await;
    app.post_message(&ada, &room, "ping @bob", "m2").await; // 5
    let n = b.next_of("notification").await;
    assert_eq!(
        (&n["kind"], &n["payload"]["seq"]),
        (&json!("mention"), &json!(5))
    );
    // A message that mentioned bob from the start, edited still
    // mentioning him: no second notification either.
    rest_ack(
        rest_edit(&app, &ada, &room, 5, "pong @bob", "e4").await,
        StatusCode::OK,
    )
    .await; // 6
    app.post_message(&ada, &room, "third @bob", "m3").await; // 7
    let n = b.next_of("notification").await;
    assert_eq!(n["payload"]["seq"], 7, "{n}");
    let mut per_message: BTreeMap<i64, usize> = BTreeMap::new();
    for n in app.notifications(&bob, "").await {
        *per_message
            .entry(n["payload"]["seq"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_message, BTreeMap::from([(1, 1), (5, 1), (7, 1)]));
    assert_eq!(notification_count(&app, &bob).await, 3);

    // Deleting a message withdraws its mention, whether the mention came
    // with the message or with an edit.
    rest_ack(rest_delete(&app, &ada, &room, 5).await, StatusCode::OK).await;
    assert_eq!(notification_count(&app, &bob).await, 2);
    rest_ack(rest_delete(&app, &ada, &room, 1).await, StatusCode::OK).await;
    assert_eq!(notification_count(&app, &bob).await, 1);
    // Deleting a message that mentioned nobody changes nothing.
    app.post_message(&ada, &room, "nobody", "m4").await; // 10
    rest_ack(rest_delete(&app, &ada, &room, 10).await, StatusCode::OK).await;
    assert_eq!(notification_count(&app, &bob).await, 1);
}

// --- Metrics ---------------------------------------------------------------------------

async fn room_events_are_counted_by_kind_and_outcome(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    let family = "parley_room_events_total";
    let count = |text: &str, kind: &str, outcome: &str| {
        let (kind, outcome) = (format!("kind=\"{kind}\""), format!("outcome=\"{outcome}\""));
        metric(text, family, &[kind.as_str(), outcome.as_str()]).unwrap_or(0.0)
    };
    let before = app.metrics_text().await;
    assert_eq!(count(&before, "edit", "new"), 0.0);

    let mut a = app.ws(&ada).await;
    acked(&mut a, publish(&room, "hello", "m1")).await;
    acked(&mut a, edit(&room, 1, "hello!", "e1")).await;
    acked(&mut a, edit(&room, 1, "hello!", "e1")).await;
    rest_ack(
        rest_edit(&app, &ada, &room, 1, "hello!!", "e2").await,
        StatusCode::OK,
    )
    .await;
    let res = rest_edit(&app, &bob, &room, 1, "not yours", "e3").await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    rest_ack(
        rest_react(&app, &bob, &room, 1, "👍", true).await,
        StatusCode::OK,
    )
    .await;

    let after = app.metrics_text().await;
    assert_eq!(count(&after, "edit", "new"), 2.0);
    assert_eq!(count(&after, "edit", "duplicate"), 1.0);
    assert_eq!(count(&after, "edit", "refused"), 1.0);
    assert_eq!(count(&after, "reaction", "new"), 1.0);
    assert_eq!(count(&after, "message", "new"), 1.0);
}

// --- Across instances ------------------------------------------------------------------

#[actix_web::test]
async fn room_events_reads_and_receipts_cross_instances() {
    let cluster = Cluster::start(2, &redis_url(), &[]).await;
    let (one, two) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let ada = one.register("ada").await;
    let bob = two.register("bob").await;
    let room = one.create_room(&ada, "pair", "private").await;
    one.add_member(&ada, &room, &bob.id).await;

    let mut ada_one = one.ws(&ada).await;
    let mut bob_two = two.ws(&bob).await;
    let mut bob_one = one.ws(&bob).await;
    assert_ne!(ada_one.hello["instance"], bob_two.hello["instance"]);
    assert_eq!(ada_one.hello["instance"], bob_one.hello["instance"]);
    ada_one.subscribe(&room, None).await;
    bob_two.subscribe(&room, None).await;

    // Events published on instance one reach bob on instance two, in order.
    acked(&mut ada_one, publish(&room, "hello", "m1")).await;
    acked(&mut ada_one, reply(&room, "and", "m2", 1)).await;
    acked(&mut ada_one, edit(&room, 1, "hello!", "e1")).await;
    acked(&mut ada_one, react(&room, 1, "👍", true, "r1")).await;
    acked(&mut ada_one, delete(&room, 2, "d1")).await;
    // bob, on instance two, answers over REST: ada hears it on instance one.
    let res = rest_react(two, &bob, &room, 1, "🎉", true).await;
    assert_eq!(rest_ack(res, StatusCode::OK).await["seq"], 6);
    let expected = [
        json!({"type": "message", "seq": 1, "body": "hello", "author": ada.id}),
        json!({"type": "message", "seq": 2, "body": "and", "reply_to": 1}),
        json!({"type": "edit", "seq": 3, "target": 1, "body": "hello!", "author": ada.id}),
        json!({"type": "reaction", "seq": 4, "target": 1, "emoji": "👍", "on": true, "user": ada.id}),
        json!({"type": "delete", "seq": 5, "target": 2, "by": ada.id}),
        json!({"type": "reaction", "seq": 6, "target": 1, "emoji": "🎉", "on": true, "user": bob.id}),
    ];
    for want in &expected {
        let got = next_event(&mut bob_two).await;
        for (field, value) in want.as_object().unwrap() {
            assert_eq!(&got[field], value, "{field} of {got}");
        }
        assert_eq!(got["room"], room.as_str());
    }
    // ada, on instance one, gets bob's reaction after her own events
    // (some of which came before their acks).
    let reaction = loop {
        let f = next_event(&mut ada_one).await;
        if f["seq"] == 6 {
            break f;
        }
        assert!(f["seq"].as_i64().is_some_and(|s| s < 6), "{f}");
    };
    assert_eq!(
        (&reaction["type"], &reaction["user"], &reaction["emoji"]),
        (&json!("reaction"), &json!(bob.id), &json!("🎉"))
    );

    // bob reads on instance two: his session on instance one hears of it,
    // and so does ada, on instance one, as a receipt.
    bob_two
        .send(json!({"type": "read", "room": room, "seq": 4}))
        .await;
    assert_eq!(
        next_event(&mut bob_two).await,
        json!({"type": "read", "room": room, "seq": 4})
    );
    assert_eq!(
        next_event(&mut bob_one).await,
        json!({"type": "read", "room": room, "seq": 4})
    );
    assert_eq!(
        next_event(&mut ada_one).await,
        json!({"type": "receipt", "room": room, "user": bob.id, "seq": 4})
    );
    // Over REST on instance one, the same the other way round.
    assert_eq!(mark_read(one, &bob, &room, 6).await["seq"], 6);
    for session in [&mut bob_two, &mut bob_one] {
        assert_eq!(
            next_event(session).await,
            json!({"type": "read", "room": room, "seq": 6})
        );
    }
    assert_eq!(
        next_event(&mut ada_one).await,
        json!({"type": "receipt", "room": room, "user": bob.id, "seq": 6})
    );
    assert_eq!(position(two, &bob, &room).await, (6, 6, 0));
    assert_eq!(receipts(one, &ada, &room).await.get(&bob.id), Some(&6));
}
