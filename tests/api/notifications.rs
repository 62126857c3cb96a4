//! `/api/v1/notifications`: which events notify whom (new posts, follows,
//! mentions, direct messages), the unread filter and count, paging, and
//! marking notifications read.

use crate::both_backends;
use crate::support::{Backend, TestApp, TestUser, assert_problem, parts};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    followers_are_notified_of_a_new_post_and_nobody_else_is,
    the_followed_user_is_notified_of_the_follow_once,
    unfollowing_and_following_again_notifies_once_a_day,
    a_mention_in_a_public_room_notifies_the_mentioned_user_once,
    a_mention_of_a_non_member_in_a_private_room_notifies_nobody,
    a_direct_message_notifies_the_other_member_once,
    the_unread_filter_and_count_drop_as_notifications_are_read,
    notifications_page_newest_first_through_a_cursor,
    marking_someone_elses_or_an_unknown_notification_read_is_not_found,
    read_all_reports_how_many_were_unread_and_clears_the_count,
    every_notification_route_refuses_a_missing_token,
);

async fn followers_are_notified_of_a_new_post_and_nobody_else_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    app.follow(&ada, &bob).await;

    let (_, post) = app.create_post(&bob, "fresh thoughts").await;

    let items = app.notifications(&ada, "").await;
    assert_eq!(kinds(&items), ["new_post"]);
    let payload = &items[0]["payload"];
    assert_eq!(
        (&payload["post_id"], payload["author"].as_str()),
        (&post["id"], Some(bob.id.as_str()))
    );
    assert_eq!(
        (
            payload["author_username"].as_str(),
            payload["excerpt"].as_str()
        ),
        (Some(bob.username.as_str()), Some("fresh thoughts"))
    );
    assert_eq!(items[0]["read"], false);
    assert!(
        items[0]["id"].is_string() && items[0]["ts"].is_string(),
        "{}",
        items[0]
    );

    assert_eq!(
        kinds(&app.notifications(&bob, "").await),
        ["follow"],
        "the author is not told of their own post"
    );
    assert!(app.notifications(&cyd, "").await.is_empty());
}

async fn the_followed_user_is_notified_of_the_follow_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;

    app.follow(&ada, &bob).await;
    app.follow(&ada, &bob).await;

    let items = app.notifications(&bob, "").await;
    assert_eq!(kinds(&items), ["follow"], "following twice notifies once");
    assert_eq!(items[0]["payload"]["follower"], ada.id.as_str());
    assert_eq!(
        items[0]["payload"]["follower_username"],
        ada.username.as_str()
    );
    assert!(
        app.notifications(&ada, "").await.is_empty(),
        "the follower is not notified"
    );
}

async fn unfollowing_and_following_again_notifies_once_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    for _ in 0..5 {
        app.follow(&ada, &bob).await;
        let res = app
            .delete(&format!("/api/v1/users/{}/follow", bob.id), &ada.access)
            .await;
        assert!(res.status().is_success(), "{}", res.status());
    }
    app.follow(&cyd, &bob).await;
    let items = app.notifications(&bob, "").await;
    assert_eq!(
        kinds(&items),
        ["follow", "follow"],
        "one per follower: {items:?}"
    );
    assert_eq!(items[0]["payload"]["follower"], cyd.id.as_str());
    assert_eq!(items[1]["payload"]["follower"], ada.id.as_str());
}

async fn a_mention_in_a_public_room_notifies_the_mentioned_user_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    let room = app.create_room(&ada, "lobby", "public").await;

    let (_, ack) = app
        .post_message(
            &ada,
            &room,
            "@bob, @ada and @nobody: look. Thanks @bob.",
            "m1",
        )
        .await;
    app.post_message(&ada, &room, "repeat", "m1").await; // a repeated client_id notifies nobody again

    let items = app.notifications(&bob, "").await;
    assert_eq!(
        kinds(&items),
        ["mention"],
        "a reader of a public room need not be a member"
    );
    let payload = &items[0]["payload"];
    assert_eq!(
        (payload["room"].as_str(), &payload["seq"]),
        (Some(room.as_str()), &ack["seq"])
    );
    assert_eq!(
        (payload["author"].as_str(), payload["room_name"].as_str()),
        (Some(ada.id.as_str()), Some("lobby"))
    );
    assert!(
        app.notifications(&ada, "").await.is_empty(),
        "mentioning yourself notifies nobody"
    );
    assert!(app.notifications(&cyd, "").await.is_empty());
}

async fn a_mention_of_a_non_member_in_a_private_room_notifies_nobody(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    let room = app.create_room(&ada, "ada's", "private").await;
    app.add_member(&ada, &room, &bob.id).await;

    let (status, _) = app.post_message(&ada, &room, "@bob and @cyd", "m1").await;
    assert_eq!(status, StatusCode::CREATED);

    assert_eq!(kinds(&app.notifications(&bob, "").await), ["mention"]);
    assert!(
        app.notifications(&cyd, "").await.is_empty(),
        "cyd cannot read the room"
    );
    assert_eq!(unread_count(&app, &cyd).await, 0);
}

async fn a_direct_message_notifies_the_other_member_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "ada and bob", "direct").await;
    app.add_member(&ada, &room, &bob.id).await;

    let (_, ack) = app.post_message(&ada, &room, "psst @bob", "d1").await;

    let items = app.notifications(&bob, "").await;
    assert_eq!(
        kinds(&items),
        ["direct_message"],
        "a mention in a direct message is not a second notification"
    );
    assert_eq!(
        (
            &items[0]["payload"]["message_id"],
            items[0]["payload"]["excerpt"].as_str()
        ),
        (&ack["id"], Some("psst @bob"))
    );
    assert!(
        app.notifications(&ada, "").await.is_empty(),
        "the sender is not notified"
    );
}

async fn the_unread_filter_and_count_drop_as_notifications_are_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd, dan] = app.users(["ada", "bob", "cyd", "dan"]).await;
    for follower in [&bob, &cyd, &dan] {
        app.follow(follower, &ada).await;
    }
    assert_eq!(unread_count(&app, &ada).await, 3);
    let newest = app.notifications(&ada, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .post(
            &format!("/api/v1/notifications/{newest}/read"),
            &ada.access,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    assert_eq!(unread_count(&app, &ada).await, 2);
    let unread = app.notifications(&ada, "?unread=true").await;
    assert_eq!(unread.len(), 2);
    assert!(
        unread
            .iter()
            .all(|n| n["read"] == false && n["id"] != newest.as_str())
    );
    let all = app.notifications(&ada, "?unread=false").await;
    let read: Vec<bool> = all.iter().map(|n| n["read"].as_bool().unwrap()).collect();
    assert_eq!(read, [true, false, false]);

    let res = app
        .post(
            &format!("/api/v1/notifications/{newest}/read"),
            &ada.access,
            json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "reading again is harmless"
    );
    assert_eq!(unread_count(&app, &ada).await, 2);
}

async fn notifications_page_newest_first_through_a_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    app.follow(&ada, &bob).await;
    for i in 1..=5 {
        app.new_post(&bob, &format!("post {i}")).await;
    }

    let (mut seen, mut query, mut pages) = (Vec::new(), "?limit=2".to_owned(), 0);
    loop {
        let (status, page) = parts(
            app.get(&format!("/api/v1/notifications{query}"), &ada.access)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|n| n["payload"]["excerpt"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 5, "the list never reached its last page");
    }
    assert_eq!(
        (pages, seen),
        (
            3,
            ["post 5", "post 4", "post 3", "post 2", "post 1"]
                .map(String::from)
                .to_vec()
        )
    );

    for query in ["limit=0", "limit=201", "cursor=latest", "unread=maybe"] {
        let res = app
            .get(&format!("/api/v1/notifications?{query}"), &ada.access)
            .await;
        assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    }
}

async fn marking_someone_elses_or_an_unknown_notification_read_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    app.follow(&ada, &bob).await;
    let bobs = app.notifications(&bob, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .post(
            &format!("/api/v1/notifications/{bobs}/read"),
            &ada.access,
            json!({}),
        )
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        unread_count(&app, &bob).await,
        1,
        "bob's notification stays unread"
    );

    let unknown = format!("/api/v1/notifications/{}/read", uuid::Uuid::now_v7());
    assert_problem(
        app.post(&unknown, &ada.access, json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .post("/api/v1/notifications/first/read", &ada.access, json!({}))
        .await;
    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(problem["errors"][0]["field"], "id");
}

async fn read_all_reports_how_many_were_unread_and_clears_the_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [ada, bob, cyd, dan] = app.users(["ada", "bob", "cyd", "dan"]).await;
    for follower in [&bob, &cyd, &dan] {
        app.follow(follower, &ada).await;
    }
    app.follow(&ada, &bob).await;
    let first = app.notifications(&ada, "").await[2]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post(
            &format!("/api/v1/notifications/{first}/read"),
            &ada.access,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    assert_eq!(read_all(&app, &ada).await, 2);
    assert_eq!(unread_count(&app, &ada).await, 0);
    assert!(app.notifications(&ada, "?unread=true").await.is_empty());
    assert_eq!(
        app.notifications(&ada, "").await.len(),
        3,
        "read notifications are kept"
    );
    assert_eq!(read_all(&app, &ada).await, 0);
    assert_eq!(
        unread_count(&app, &bob).await,
        1,
        "other users' notifications are untouched"
    );
}

async fn every_notification_route_refuses_a_missing_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::GET, "/api/v1/notifications".to_owned()),
        (Method::GET, "/api/v1/notifications/unread-count".to_owned()),
        (Method::POST, format!("/api/v1/notifications/{id}/read")),
        (Method::POST, "/api/v1/notifications/read-all".to_owned()),
    ] {
        let res = app.call(method, &path, None, None).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

/// A post by an author with more followers than one write takes (1,000 per
/// statement) reaches every follower: each has it stored exactly once, and
/// a follower who is online gets it live, once. The followers are inserted
/// with SQL: registering 2,500 users through the API would time argon2.
#[actix_web::test]
async fn a_post_notifies_each_of_thousands_of_followers_once() {
    let mut database_url = String::new();
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        database_url = s.database.url.clone().unwrap();
    })
    .await;
    let [star, fan] = app.users(["star", "fan"]).await;
    app.follow(&fan, &star).await;
    let (db, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(connection);
    db.batch_execute(&format!(
        "INSERT INTO users (id, username, email, password_hash) \
         SELECT gen_random_uuid(), 'bulk' || i, 'bulk' || i || '@example.com', 'x' \
         FROM generate_series(1, 2499) AS i; \
         INSERT INTO follows (follower, followee) \
         SELECT id, '{}' FROM users WHERE username LIKE 'bulk%'",
        star.id
    ))
    .await
    .unwrap();
    let mut ws = app.ws(&fan).await;

    app.new_post(&star, "to all 2,500").await;

    let live = ws.next_of("notification").await;
    assert_eq!(live["kind"], "new_post", "{live}");
    assert_eq!(live["payload"]["excerpt"], "to all 2,500", "{live}");
    let counts = db
        .query_one(
            "SELECT count(*), count(DISTINCT user_id) FROM notifications WHERE kind = 'new_post'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (counts.get::<_, i64>(0), counts.get::<_, i64>(1)),
        (2500, 2500)
    );
    assert_eq!(kinds(&app.notifications(&fan, "").await), ["new_post"]);
    // Nothing more arrives for the fan: no second copy of the push.
    ws.read_for(std::time::Duration::from_millis(300)).await;
}

// --- helpers -----------------------------------------------------------------

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().map(|n| n["kind"].as_str().unwrap()).collect()
}

async fn unread_count(app: &TestApp, user: &TestUser) -> i64 {
    let (status, body) = parts(
        app.get("/api/v1/notifications/unread-count", &user.access)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["count"].as_i64().unwrap()
}

async fn read_all(app: &TestApp, user: &TestUser) -> i64 {
    let (status, body) = parts(
        app.post("/api/v1/notifications/read-all", &user.access, json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["count"].as_i64().unwrap()
}
