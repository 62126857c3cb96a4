//! `/api/v1/rooms`: creating and listing rooms, membership and who may
//! change it, REST publishing (acks, idempotent `client_id`, gapless seqs
//! under concurrency) and paging through history in both directions.

use crate::both_backends;
use crate::support::{Backend, TestApp, TestUser, assert_problem, parts};
use futures_util::future::join_all;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

both_backends!(
    rooms_of_every_kind_are_created_with_the_caller_as_owner,
    a_room_with_a_bad_kind_or_a_blank_name_is_refused_naming_the_fields,
    the_room_list_shows_public_rooms_and_own_private_rooms_only,
    the_room_list_pages_through_every_visible_room_exactly_once,
    a_private_room_is_forbidden_to_non_members_and_an_unknown_room_is_not_found,
    the_owner_adds_members_and_ordinary_members_may_not,
    anyone_may_join_a_public_room_but_not_a_private_one,
    a_direct_room_refuses_a_third_member,
    concurrent_adds_never_overfill_a_direct_room,
    adding_an_unknown_user_or_to_an_unknown_room_is_not_found,
    a_member_removed_by_the_owner_can_no_longer_read_a_private_room,
    a_member_may_leave_but_may_not_remove_others_and_the_owner_stays,
    removing_someone_who_is_not_a_member_is_not_found,
    posted_messages_are_acked_with_consecutive_seqs,
    a_repeated_client_id_returns_the_original_ack_and_is_stored_once,
    invalid_messages_are_refused_naming_the_field,
    non_members_may_neither_post_to_nor_read_a_private_room,
    history_with_after_seq_pages_forward,
    history_without_after_seq_pages_backward_from_the_newest,
    history_refuses_negative_seqs_and_limits_out_of_range,
    fifty_concurrent_posts_get_seqs_one_to_fifty_without_gaps_or_duplicates,
);

async fn rooms_of_every_kind_are_created_with_the_caller_as_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    for kind in ["public", "private", "direct"] {
        let res = app
            .post(
                "/api/v1/rooms",
                &ada.access,
                json!({"name": format!("  {kind} room "), "kind": kind}),
            )
            .await;
        let (status, created) = parts(res).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(
            (created["kind"].as_str(), created["name"].as_str()),
            (Some(kind), Some(&*format!("{kind} room")))
        );
        assert_eq!(created["created_by"], ada.id.as_str());

        let room = room_of(&app, &ada, created["id"].as_str().unwrap()).await;
        assert_eq!(room["name"], created["name"]);
        assert_eq!(members(&room), [(ada.id.clone(), "owner".to_owned())]);
    }
}

async fn a_room_with_a_bad_kind_or_a_blank_name_is_refused_naming_the_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    for (body, fields) in [
        (json!({"name": "lounge", "kind": "secret"}), vec!["kind"]),
        (json!({"name": "  ", "kind": "public"}), vec!["name"]),
        (json!({"name": "", "kind": "Public"}), vec!["name", "kind"]),
    ] {
        let res = app.post("/api/v1/rooms", &ada.access, body.clone()).await;
        let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        let named: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}");
    }
    assert!(
        list_rooms(&app, &ada, "").await.0.is_empty(),
        "no room was created"
    );
}

async fn the_room_list_shows_public_rooms_and_own_private_rooms_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let lobby = app.create_room(&ada, "lobby", "public").await;
    let ada_private = app.create_room(&ada, "ada's", "private").await;
    let bob_private = app.create_room(&bob, "bob's", "private").await;
    let bob_public = app.create_room(&bob, "bob's lounge", "public").await;

    let (ids, next) = list_rooms(&app, &ada, "").await;
    assert_eq!(
        ids,
        [lobby.clone(), ada_private.clone(), bob_public.clone()],
        "oldest first"
    );
    assert_eq!(next, Value::Null);
    assert_eq!(
        list_rooms(&app, &bob, "").await.0,
        [lobby, bob_private, bob_public]
    );

    app.add_member(&ada, &ada_private, &bob.id).await;
    assert!(
        list_rooms(&app, &bob, "").await.0.contains(&ada_private),
        "a new member sees the room"
    );
}

async fn the_room_list_pages_through_every_visible_room_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let mut visible = Vec::new();
    for i in 0..5 {
        visible.push(app.create_room(&ada, &format!("room {i}"), "public").await);
        app.create_room(&bob, &format!("hidden {i}"), "private")
            .await;
    }

    let (mut seen, mut query, mut pages) = (Vec::new(), "?limit=2".to_owned(), 0);
    loop {
        let (ids, next) = list_rooms(&app, &ada, &query).await;
        assert!(ids.len() <= 2);
        seen.extend(ids);
        pages += 1;
        match next.as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 5, "the list never reached its last page");
    }
    assert_eq!((pages, seen), (3, visible));

    for query in ["limit=0", "limit=201", "cursor=room-3"] {
        let res = app
            .get(&format!("/api/v1/rooms?{query}"), &ada.access)
            .await;
        assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    }
}

async fn a_private_room_is_forbidden_to_non_members_and_an_unknown_room_is_not_found(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let private = app.create_room(&ada, "ada's", "private").await;
    let public = app.create_room(&ada, "lobby", "public").await;

    assert_problem(
        app.get(&room_path(&private), &bob.access).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        room_of(&app, &bob, &public).await["id"],
        public.as_str(),
        "a public room is open to all"
    );
    let unknown = room_path(&uuid::Uuid::now_v7().to_string());
    assert_problem(
        app.get(&unknown, &bob.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let problem = assert_problem(
        app.get("/api/v1/rooms/lobby", &bob.access).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "id");
}

async fn the_owner_adds_members_and_ordinary_members_may_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    let room = app.create_room(&ada, "ada's", "private").await;

    app.add_member(&ada, &room, &bob.id).await;
    app.add_member(&ada, &room, &bob.id).await; // idempotent
    let found = room_of(&app, &bob, &room).await;
    assert!(members(&found).contains(&(bob.id.clone(), "member".to_owned())));

    let res = app.post_member(&bob, &room, &cyd.id).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(members(&room_of(&app, &ada, &room).await).len(), 2);
}

async fn anyone_may_join_a_public_room_but_not_a_private_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let public = app.create_room(&ada, "lobby", "public").await;
    let private = app.create_room(&ada, "ada's", "private").await;

    app.add_member(&bob, &public, &bob.id).await;
    assert!(
        members(&room_of(&app, &ada, &public).await)
            .contains(&(bob.id.clone(), "member".to_owned()))
    );

    let res = app.post_member(&bob, &private, &bob.id).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn a_direct_room_refuses_a_third_member(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    let direct = app.create_room(&ada, "ada and bob", "direct").await;
    app.add_member(&ada, &direct, &bob.id).await;

    assert_problem(
        app.post_member(&ada, &direct, &cyd.id).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    app.add_member(&ada, &direct, &bob.id).await; // re-adding a member is still fine
    assert_eq!(members(&room_of(&app, &ada, &direct).await).len(), 2);
}

async fn adding_an_unknown_user_or_to_an_unknown_room_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "lobby", "public").await;
    let nobody = uuid::Uuid::now_v7().to_string();

    assert_problem(
        app.post_member(&ada, &room, &nobody).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.post_member(&ada, &nobody, &bob.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let problem = assert_problem(
        app.post_member(&ada, &room, "bob").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "user_id");
}

async fn a_member_removed_by_the_owner_can_no_longer_read_a_private_room(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "ada's", "private").await;
    app.add_member(&ada, &room, &bob.id).await;
    assert_eq!(app.history_seqs(&bob, &room, "").await.0, Vec::<i64>::new());

    assert_eq!(
        remove_member(&app, &ada, &room, &bob.id).await.status(),
        StatusCode::NO_CONTENT
    );

    let res = app
        .get(&format!("{}/messages", room_path(&room)), &bob.access)
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(members(&room_of(&app, &ada, &room).await).len(), 1);
}

async fn a_member_may_leave_but_may_not_remove_others_and_the_owner_stays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    let room = app.create_room(&ada, "ada's", "private").await;
    app.add_member(&ada, &room, &bob.id).await;
    app.add_member(&ada, &room, &cyd.id).await;

    assert_problem(
        remove_member(&app, &bob, &room, &cyd.id).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        remove_member(&app, &bob, &room, &ada.id).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        remove_member(&app, &bob, &room, &bob.id).await.status(),
        StatusCode::NO_CONTENT
    );

    let left = members(&room_of(&app, &ada, &room).await);
    assert_eq!(left.len(), 2);
    assert!(!left.iter().any(|(id, _)| *id == bob.id));

    // The owner stays: a room always keeps someone who can manage it.
    assert_problem(
        remove_member(&app, &ada, &room, &ada.id).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
}

async fn removing_someone_who_is_not_a_member_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "lobby", "public").await;

    assert_problem(
        remove_member(&app, &ada, &room, &bob.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        remove_member(&app, &bob, &room, &bob.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let nowhere = uuid::Uuid::now_v7().to_string();
    assert_problem(
        remove_member(&app, &ada, &nowhere, &ada.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn posted_messages_are_acked_with_consecutive_seqs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "lobby", "public").await;

    for (seq, (user, client_id)) in (1..).zip([(&ada, "a-1"), (&bob, "b-1"), (&ada, "a-2")]) {
        let (status, ack) = app
            .post_message(user, &room, &format!("hello {client_id}"), client_id)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ack}");
        assert_eq!(ack["room"], room.as_str());
        assert_eq!(ack["seq"], seq);
        assert_eq!(ack["client_id"], client_id);
        assert!(
            ack["id"]
                .as_str()
                .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
            "{ack}"
        );
    }

    let (page, _) = app.history(&bob, &room, "").await;
    let second = &page[1];
    assert_eq!(
        (second["seq"].as_i64(), second["author"].as_str()),
        (Some(2), Some(bob.id.as_str()))
    );
    assert_eq!(
        (second["body"].as_str(), second["client_id"].as_str()),
        (Some("hello b-1"), Some("b-1"))
    );
    assert!(
        second["id"].is_string() && second["ts"].is_string(),
        "{second}"
    );
}

async fn a_repeated_client_id_returns_the_original_ack_and_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "lobby", "public").await;

    let (_, first) = app.post_message(&ada, &room, "once", "retry-me").await;
    app.post_message(&ada, &room, "between", "other").await;
    let (status, repeat) = app
        .post_message(&ada, &room, "once, again", "retry-me")
        .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&repeat["seq"], &repeat["id"]),
        (&first["seq"], &first["id"])
    );
    assert_eq!(repeat["seq"], 1);
    let (page, _) = app.history(&ada, &room, "").await;
    let bodies: Vec<&str> = page.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["once", "between"]);
}

async fn invalid_messages_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "lobby", "public").await;
    let path = format!("{}/messages", room_path(&room));

    for (body, field) in [
        (json!({"body": " \n ", "client_id": "c1"}), "body"),
        (
            json!({"body": "x".repeat(8_001), "client_id": "c1"}),
            "body",
        ),
        (
            json!({"body": "hi", "client_id": "c".repeat(65)}),
            "client_id",
        ),
        (json!({"body": "hi", "client_id": ""}), "client_id"),
    ] {
        let problem = assert_problem(
            app.post(&path, &ada.access, body).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let res = app.post(&path, &ada.access, json!({"body": "hi"})).await;
    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("client_id"),
        "{problem}"
    );

    let (status, ack) = app.post_message(&ada, &room, "hi", &"c".repeat(64)).await;
    assert_eq!(
        (status, &ack["seq"]),
        (StatusCode::CREATED, &json!(1)),
        "nothing refused took a seq"
    );
}

async fn non_members_may_neither_post_to_nor_read_a_private_room(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "ada's", "private").await;
    app.post_message(&ada, &room, "secret", "s1").await;

    let (status, problem) = app.post_message(&bob, &room, "let me in", "b1").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let res = app
        .get(&format!("{}/messages", room_path(&room)), &bob.access)
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.history_seqs(&ada, &room, "").await.0, [1]);

    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, _) = app.post_message(&ada, &unknown, "anyone?", "u1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn history_with_after_seq_pages_forward(backend: Backend) {
    let (app, ada, room) = room_with_messages(backend, 5).await;

    assert_eq!(
        app.history_seqs(&ada, &room, "?after_seq=0&limit=2").await,
        (vec![1, 2], json!("2"))
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?after_seq=2&limit=2").await,
        (vec![3, 4], json!("4"))
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?after_seq=4&limit=2").await,
        (vec![5], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?after_seq=3&limit=2").await,
        (vec![4, 5], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?after_seq=5").await,
        (vec![], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?after_seq=99").await,
        (vec![], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?after_seq=1&before_seq=4")
            .await,
        (vec![2, 3], Value::Null)
    );
}

async fn history_without_after_seq_pages_backward_from_the_newest(backend: Backend) {
    let (app, ada, room) = room_with_messages(backend, 5).await;

    assert_eq!(
        app.history_seqs(&ada, &room, "").await,
        (vec![1, 2, 3, 4, 5], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?limit=2").await,
        (vec![4, 5], json!("4"))
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?before_seq=4&limit=2").await,
        (vec![2, 3], json!("2"))
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?before_seq=2&limit=2").await,
        (vec![1], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?before_seq=3&limit=2").await,
        (vec![1, 2], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?before_seq=1").await,
        (vec![], Value::Null)
    );
    assert_eq!(
        app.history_seqs(&ada, &room, "?before_seq=99&limit=1")
            .await,
        (vec![5], json!("5"))
    );
}

async fn history_refuses_negative_seqs_and_limits_out_of_range(backend: Backend) {
    let (app, ada, room) = room_with_messages(backend, 1).await;
    let path = format!("{}/messages", room_path(&room));

    for (query, field) in [
        ("after_seq=-1", "after_seq"),
        ("before_seq=-5", "before_seq"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
    ] {
        let res = app.get(&format!("{path}?{query}"), &ada.access).await;
        let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    assert_problem(
        app.get(&format!("{path}?after_seq=first"), &ada.access)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(app.history_seqs(&ada, &room, "?limit=200").await.0, [1]);
}

async fn fifty_concurrent_posts_get_seqs_one_to_fifty_without_gaps_or_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "busy", "public").await;

    let posts = (0..50).map(|i| {
        let user = if i % 2 == 0 { &ada } else { &bob };
        let client_id = format!("burst-{i}");
        let (app, room) = (&app, &room);
        async move {
            app.post_message(user, room, &format!("message {i}"), &client_id)
                .await
        }
    });
    let mut acked: Vec<(i64, String)> = join_all(posts)
        .await
        .into_iter()
        .map(|(status, ack)| {
            assert_eq!(status, StatusCode::CREATED, "{ack}");
            (
                ack["seq"].as_i64().unwrap(),
                ack["client_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    acked.sort();
    assert_eq!(
        acked.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<i64>>()
    );

    let (page, next) = app.history(&bob, &room, "?after_seq=0&limit=200").await;
    assert_eq!(next, Value::Null);
    let stored: Vec<(i64, String)> = page
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["client_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stored, acked,
        "history holds each acked message at its acked seq, in order"
    );
}

// --- helpers -----------------------------------------------------------------

fn room_path(room: &str) -> String {
    format!("/api/v1/rooms/{room}")
}

/// A public room of `ada`'s holding `count` messages, seqs `1..=count`.
async fn room_with_messages(backend: Backend, count: usize) -> (TestApp, TestUser, String) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "lobby", "public").await;
    for i in 1..=count {
        let (status, _) = app
            .post_message(&ada, &room, &format!("message {i}"), &format!("m{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    (app, ada, room)
}

/// `GET /rooms/{id}`, which must succeed.
async fn room_of(app: &TestApp, user: &TestUser, room: &str) -> Value {
    let (status, body) = parts(app.get(&room_path(room), &user.access).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// `(user_id, role)` of each member of a fetched room.
fn members(room: &Value) -> Vec<(String, String)> {
    room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The ids of one page of `GET /rooms` and its `next_cursor`.
async fn list_rooms(app: &TestApp, user: &TestUser, query: &str) -> (Vec<String>, Value) {
    let (status, page) = parts(
        app.get(&format!("/api/v1/rooms{query}"), &user.access)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, page["next_cursor"].clone())
}

async fn remove_member(app: &TestApp, caller: &TestUser, room: &str, user_id: &str) -> Response {
    app.delete(
        &format!("{}/members/{user_id}", room_path(room)),
        &caller.access,
    )
    .await
}

/// Ten owners' adds racing into one direct room: one gets in, nine are
/// refused, and the room ends with exactly two members.
async fn concurrent_adds_never_overfill_a_direct_room(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let direct = app.create_room(&ada, "ada and someone", "direct").await;
    let mut others = Vec::new();
    for i in 0..10 {
        others.push(app.register(&format!("user{i}")).await);
    }
    let adds = others
        .iter()
        .map(|other| app.post_member(&ada, &direct, &other.id));
    let statuses: Vec<StatusCode> = join_all(adds).await.iter().map(|r| r.status()).collect();
    let added = statuses
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((added, refused), (1, 9), "{statuses:?}");
    let room: Value = app
        .get(&room_path(&direct), &ada.access)
        .await
        .json()
        .await
        .unwrap();
    let count = room["members"].as_array().map(Vec::len);
    assert_eq!(count, Some(2), "{room}");
}
