//! `/api/v1/users`: the caller's own profile, other users' public profiles,
//! profile edits, follows, and the 401 every route gives a caller without a
//! valid access token.

use crate::both_backends;
use crate::support::{Backend, TestApp, TestUser, assert_problem, parts};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

both_backends!(
    own_profile_includes_the_email,
    another_users_profile_hides_the_email,
    an_unknown_user_is_not_found,
    a_user_id_that_is_not_a_uuid_is_a_bad_request_naming_the_id,
    profile_edits_change_only_the_fields_sent_and_are_visible_to_others,
    profile_edits_that_are_too_long_name_every_bad_field,
    profile_edits_with_an_unknown_field_are_refused,
    following_and_unfollowing_are_idempotent,
    following_an_unknown_user_is_not_found,
    following_yourself_is_a_bad_request,
    every_user_route_refuses_a_missing_or_garbage_token,
    people_are_found_by_the_start_of_their_name_page_by_page_without_emails,
    a_search_needs_two_characters,
);

async fn own_profile_includes_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let (status, me) = parts(app.get("/api/v1/users/me", &ada.access).await).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], ada.id.as_str());
    assert_eq!(me["username"], ada.username.as_str());
    assert_eq!(me["email"], "ada@example.com");
    assert!(me["created_at"].is_string(), "{me}");
}

async fn another_users_profile_hides_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;

    let (status, profile) = parts(
        app.get(&format!("/api/v1/users/{}", bob.id), &ada.access)
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["id"], bob.id.as_str());
    assert_eq!(profile["username"], bob.username.as_str());
    assert!(profile.get("email").is_none(), "{profile}");
}

async fn an_unknown_user_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let res = app
        .get(
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            &ada.access,
        )
        .await;

    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

async fn a_user_id_that_is_not_a_uuid_is_a_bad_request_naming_the_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let res = app.get("/api/v1/users/not-a-uuid", &ada.access).await;

    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(field_names(&problem), ["id"]);
}

async fn profile_edits_change_only_the_fields_sent_and_are_visible_to_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;

    let (status, me) = parts(
        patch_me(
            &app,
            &ada,
            json!({"display_name": "Ada L.", "bio": "engines"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["display_name"].as_str(), me["bio"].as_str()),
        (Some("Ada L."), Some("engines"))
    );
    assert_eq!(me["email"], "ada@example.com");

    let (status, me) =
        parts(patch_me(&app, &ada, json!({"bio": "notes on the engine"})).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me["display_name"], "Ada L.",
        "a field that was not sent keeps its value"
    );
    assert_eq!(me["bio"], "notes on the engine");

    let (_, seen) = parts(
        app.get(&format!("/api/v1/users/{}", ada.id), &bob.access)
            .await,
    )
    .await;
    assert_eq!(
        (seen["display_name"].as_str(), seen["bio"].as_str()),
        (Some("Ada L."), Some("notes on the engine"))
    );
}

async fn profile_edits_that_are_too_long_name_every_bad_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let res = patch_me(
        &app,
        &ada,
        json!({"display_name": "d".repeat(65), "bio": "b".repeat(501)}),
    )
    .await;
    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(field_names(&problem), ["display_name", "bio"]);

    // Nothing was applied, and the limits themselves are accepted.
    let (_, me) = parts(app.get("/api/v1/users/me", &ada.access).await).await;
    assert_eq!(me["bio"], "");
    let res = patch_me(
        &app,
        &ada,
        json!({"display_name": "d".repeat(64), "bio": "b".repeat(500)}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn profile_edits_with_an_unknown_field_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let res = patch_me(&app, &ada, json!({"username": "root"})).await;

    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("username"),
        "{problem}"
    );
    let (_, me) = parts(app.get("/api/v1/users/me", &ada.access).await).await;
    assert_eq!(me["username"], "ada");
}

async fn following_and_unfollowing_are_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let follow = format!("/api/v1/users/{}/follow", bob.id);

    for _ in 0..2 {
        assert_eq!(
            app.post(&follow, &ada.access, json!({})).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    for _ in 0..2 {
        assert_eq!(
            app.delete(&follow, &ada.access).await.status(),
            StatusCode::NO_CONTENT
        );
    }
}

async fn following_an_unknown_user_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let path = format!("/api/v1/users/{}/follow", uuid::Uuid::now_v7());
    let res = app.post(&path, &ada.access, json!({})).await;

    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

async fn following_yourself_is_a_bad_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;

    let res = app
        .post(
            &format!("/api/v1/users/{}/follow", ada.id),
            &ada.access,
            json!({}),
        )
        .await;

    assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
}

async fn every_user_route_refuses_a_missing_or_garbage_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bob = app.register("bob").await;
    let follow = format!("/api/v1/users/{}/follow", bob.id);
    let routes = [
        (Method::GET, "/api/v1/users/me".to_owned(), None),
        (
            Method::PATCH,
            "/api/v1/users/me".to_owned(),
            Some(json!({"bio": "x"})),
        ),
        (Method::GET, format!("/api/v1/users/{}", bob.id), None),
        (Method::POST, follow.clone(), None),
        (Method::DELETE, follow, None),
    ];
    for (method, path, body) in routes {
        for token in [None, Some("garbage.not.a-jwt")] {
            let res = app.call(method.clone(), &path, token, body.clone()).await;
            assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
    }
}

async fn patch_me(app: &TestApp, user: &TestUser, body: Value) -> Response {
    app.call(
        Method::PATCH,
        "/api/v1/users/me",
        Some(&user.access),
        Some(body),
    )
    .await
}

/// The `field` of each entry of a problem's `errors`, in order.
fn field_names(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default()
}

async fn people_are_found_by_the_start_of_their_name_page_by_page_without_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let caller = app.register("caller").await;
    for name in ["Marta", "martin", "marek", "bob"] {
        app.register(name).await;
    }
    let bob = app.register("bobby").await;
    let rename = json!({"display_name": "Mario Rossi"});
    let res = app
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&bob.access),
            Some(rename),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let (status, page) = parts(app.get("/api/v1/users?q=MAR&limit=2", &caller.access).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let names = |page: &Value| -> Vec<String> {
        let items = page["items"].as_array().unwrap();
        items
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&page),
        ["bobby", "marek"],
        "display names match too; ordered by username"
    );
    assert!(page["items"][0].get("email").is_none(), "{page}");
    assert_eq!(page["items"][0]["display_name"], "Mario Rossi");
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, rest) = parts(
        app.get(
            &format!("/api/v1/users?q=mar&limit=2&cursor={cursor}"),
            &caller.access,
        )
        .await,
    )
    .await;
    assert_eq!(names(&rest), ["Marta", "martin"]);
    assert!(rest["next_cursor"].is_null(), "{rest}");
}

async fn a_search_needs_two_characters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let caller = app.register("caller").await;
    for query in ["q=m", "q=%20m%20", ""] {
        let res = app
            .get(&format!("/api/v1/users?{query}"), &caller.access)
            .await;
        let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(problem["errors"][0]["field"], "q", "{problem}");
    }
}
