//! `/api/v1/posts` and `/api/v1/feed`: writing, reading and deleting posts,
//! and the feed of the caller's own and followed authors' posts with its
//! keyset pagination.

use crate::both_backends;
use crate::support::{Backend, TestApp, TestUser, assert_problem, parts};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_created_post_can_be_read_back_by_anyone,
    blank_or_too_long_posts_are_refused_naming_the_body,
    an_unknown_or_malformed_post_id_is_refused,
    only_the_author_may_delete_a_post_and_it_is_gone_afterwards,
    the_feed_shows_own_and_followed_posts_newest_first_and_nothing_else,
    the_feed_pages_through_every_post_exactly_once,
    the_feed_refuses_a_limit_out_of_range_or_a_bad_cursor,
);

async fn a_created_post_can_be_read_back_by_anyone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;

    let (status, created) = app.create_post(&ada, "hello, world").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (created["author"].as_str(), created["body"].as_str()),
        (Some(ada.id.as_str()), Some("hello, world"))
    );

    let id = created["id"].as_str().unwrap();
    let (status, fetched) = parts(app.get(&format!("/api/v1/posts/{id}"), &bob.access).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);
}

async fn blank_or_too_long_posts_are_refused_naming_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    for body in ["".to_owned(), "  \n\t ".to_owned(), "x".repeat(5_001)] {
        let res = app
            .post("/api/v1/posts", &ada.access, json!({ "body": body }))
            .await;
        let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    }
    let (status, _) = app.create_post(&ada, &"x".repeat(5_000)).await;
    assert_eq!(status, StatusCode::CREATED, "the limit itself is accepted");
    assert_eq!(
        feed_page(&app, &ada, "").await.0.len(),
        1,
        "only the valid post was stored"
    );
}

async fn an_unknown_or_malformed_post_id_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let unknown = format!("/api/v1/posts/{}", uuid::Uuid::now_v7());
    assert_problem(
        app.get(&unknown, &ada.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.delete(&unknown, &ada.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app.get("/api/v1/posts/42", &ada.access).await;
    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(problem["errors"][0]["field"], "id", "{problem}");
}

async fn only_the_author_may_delete_a_post_and_it_is_gone_afterwards(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let (_, post) = app.create_post(&ada, "mine").await;
    let path = format!("/api/v1/posts/{}", post["id"].as_str().unwrap());

    assert_problem(
        app.delete(&path, &bob.access).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        app.get(&path, &bob.access).await.status(),
        StatusCode::OK,
        "a refused delete changes nothing"
    );

    assert_eq!(
        app.delete(&path, &ada.access).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.get(&path, &ada.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.delete(&path, &ada.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(feed_page(&app, &ada, "").await.0.is_empty());
}

async fn the_feed_shows_own_and_followed_posts_newest_first_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let cyd = app.register("cyd").await;
    let dan = app.register("dan").await;
    for user in [&bob, &cyd] {
        app.follow(&ada, user).await;
    }
    let res = app
        .delete(&format!("/api/v1/users/{}/follow", cyd.id), &ada.access)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    for (user, body) in [
        (&ada, "ada 1"),
        (&bob, "bob 1"),
        (&cyd, "cyd 1"),
        (&dan, "dan 1"),
        (&bob, "bob 2"),
        (&ada, "ada 2"),
    ] {
        assert_eq!(app.create_post(user, body).await.0, StatusCode::CREATED);
    }

    let (items, next) = feed_page(&app, &ada, "").await;
    assert_eq!(bodies(&items), ["ada 2", "bob 2", "bob 1", "ada 1"]);
    assert_eq!(next, Value::Null);
    let (items, _) = feed_page(&app, &dan, "").await;
    assert_eq!(
        bodies(&items),
        ["dan 1"],
        "a stranger's feed holds only their own posts"
    );
}

async fn the_feed_pages_through_every_post_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    for i in 1..=5 {
        assert_eq!(
            app.create_post(&ada, &format!("post {i}")).await.0,
            StatusCode::CREATED
        );
    }

    let mut seen = Vec::new();
    let mut cursor = None::<String>;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".to_owned(),
        };
        let (items, next) = feed_page(&app, &ada, &query).await;
        pages += 1;
        assert!(items.len() <= 2);
        seen.extend(bodies(&items).into_iter().map(str::to_owned));
        match next.as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 5, "the feed never reached its last page");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["post 5", "post 4", "post 3", "post 2", "post 1"]);
}

async fn the_feed_refuses_a_limit_out_of_range_or_a_bad_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=yesterday", "cursor"),
    ] {
        let res = app.get(&format!("/api/v1/feed?{query}"), &ada.access).await;
        let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    let res = app.get("/api/v1/feed?limit=many", &ada.access).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(
        app.get("/api/v1/feed?limit=200", &ada.access)
            .await
            .status(),
        StatusCode::OK
    );
}

/// One page of `user`'s feed: its items and `next_cursor`.
async fn feed_page(app: &TestApp, user: &TestUser, query: &str) -> (Vec<Value>, Value) {
    let (status, page) = parts(app.get(&format!("/api/v1/feed{query}"), &user.access).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    (
        page["items"].as_array().unwrap().clone(),
        page["next_cursor"].clone(),
    )
}

fn bodies(items: &[Value]) -> Vec<&str> {
    items.iter().map(|p| p["body"].as_str().unwrap()).collect()
}
