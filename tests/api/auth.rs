//! Registration, login, refresh rotation, logout, and the token attacks an
//! API must refuse.

use crate::both_backends;
use crate::support::jwt::{key_with_bits, keys_dir, new_key, pem, server_kids, sign};
use crate::support::{Backend, PASSWORD, TestApp, assert_problem, parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

both_backends!(
    register_returns_a_working_token_pair,
    register_reports_every_invalid_field_at_once,
    register_refuses_a_taken_username_ignoring_case_and_a_taken_email,
    login_works_by_username_or_email_and_refuses_wrong_passwords_alike,
    refresh_rotates_and_a_replayed_token_revokes_its_whole_family,
    a_refresh_retried_within_the_grace_window_keeps_the_login,
    logout_revokes_the_refresh_token,
);

async fn register_returns_a_working_token_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = parts(
        auth_call(
            &app,
            "register",
            json!({"username": "ada", "email": "Ada@Example.com", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["username"], "ada");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert!(body["user"].get("password_hash").is_none());
    let token = body["access_token"].as_str().unwrap();
    let (status, me) = parts(app.get("/api/v1/users/me", token).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], body["user"]["id"]);
}

async fn register_reports_every_invalid_field_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = auth_call(
        &app,
        "register",
        json!({"username": "a b", "email": "nope", "password": "short"}),
    )
    .await;
    let body = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["username", "email", "password"]);
    let res = auth_call(&app, "register", json!({"username": "ada"})).await;
    let body = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(body["detail"].as_str().unwrap().contains("email"), "{body}");
}

async fn register_refuses_a_taken_username_ignoring_case_and_a_taken_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("grace").await;
    let res = auth_call(
        &app,
        "register",
        json!({"username": "GRACE", "email": "other@example.com", "password": PASSWORD}),
    )
    .await;
    let body = assert_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(body["errors"][0]["field"], "username");
    let res = auth_call(
        &app,
        "register",
        json!({"username": "hopper", "email": "grace@example.com", "password": PASSWORD}),
    )
    .await;
    let body = assert_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(body["errors"][0]["field"], "email");
}

async fn login_works_by_username_or_email_and_refuses_wrong_passwords_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("linus").await;
    for credentials in [
        json!({"username": "linus", "password": PASSWORD}),
        json!({"username": "LINUS", "password": PASSWORD}),
        json!({"email": "linus@example.com", "password": PASSWORD}),
    ] {
        let (status, body) = parts(
            app.call(Method::POST, "/api/v1/auth/login", None, Some(credentials))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user"]["id"], user.id.as_str());
        assert!(body["access_token"].as_str().is_some());
    }
    let wrong = auth_call(
        &app,
        "login",
        json!({"username": "linus", "password": "wrong password"}),
    )
    .await;
    let wrong = assert_problem(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let unknown = auth_call(
        &app,
        "login",
        json!({"username": "nobody", "password": PASSWORD}),
    )
    .await;
    let unknown = assert_problem(unknown, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(
        wrong["detail"], unknown["detail"],
        "the answer must not reveal which accounts exist"
    );
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    parts(auth_call(app, "refresh", json!({"refresh_token": token})).await).await
}

async fn refresh_rotates_and_a_replayed_token_revokes_its_whole_family(backend: Backend) {
    // The default, strict single use: the first replay is caught (the
    // opt-in grace window is tested below).
    let app = TestApp::spawn(backend).await;
    let user = app.register("margaret").await;
    let (status, first) = refresh(&app, &user.refresh).await;
    assert_eq!(status, StatusCode::OK);
    let rotated = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, user.refresh);
    assert_eq!(
        app.get("/api/v1/users/me", first["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // A second login is another family and must survive the revocation below.
    let (_, other_login) = parts(
        auth_call(
            &app,
            "login",
            json!({"username": "margaret", "password": PASSWORD}),
        )
        .await,
    )
    .await;

    // The spent token comes back: a thief or a replay. The family dies.
    let (status, _) = refresh(&app, &user.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&app, &rotated).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the rotated descendant is revoked too"
    );
    let (status, _) = refresh(&app, other_login["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another login's family is untouched"
    );

    let (status, _) = refresh(&app, "never-issued").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A client whose refresh was answered but never heard the answer (a page
/// reloaded mid-request, two tabs refreshing at once) presents the same
/// token again within seconds: it gets a pair of its own, the login goes
/// on, and both descendants work. A logout closes the window.
async fn a_refresh_retried_within_the_grace_window_keeps_the_login(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.auth.refresh_reuse_grace_s = 10).await;
    let user = app.register("grace").await;
    let ((first, a), (second, b)) =
        tokio::join!(refresh(&app, &user.refresh), refresh(&app, &user.refresh));
    assert_eq!((first, second), (StatusCode::OK, StatusCode::OK), "{a} {b}");
    let (status, c) = refresh(&app, &user.refresh).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let pairs = [&a, &b, &c];
    for pair in pairs {
        let access = pair["access_token"].as_str().unwrap();
        assert_eq!(
            app.get("/api/v1/users/me", access).await.status(),
            StatusCode::OK
        );
    }
    let refreshes: std::collections::HashSet<&str> = pairs
        .iter()
        .map(|p| p["refresh_token"].as_str().unwrap())
        .collect();
    assert_eq!(refreshes.len(), 3, "each answer is a new token");
    let (status, _) = refresh(&app, c["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "a descendant rotates on");

    let res = app
        .post(
            "/api/v1/auth/logout",
            a["access_token"].as_str().unwrap(),
            json!({"refresh_token": user.refresh}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _) = refresh(&app, &user.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logged out: no window");
}

async fn logout_revokes_the_refresh_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("barbara").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": user.refresh})),
        )
        .await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .post(
            "/api/v1/auth/logout",
            &user.access,
            json!({"refresh_token": user.refresh}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _) = refresh(&app, &user.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// --- token attacks and key rotation (independent of the store) ------------

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let res = app.get("/api/v1/users/me", token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{why}");
}

#[actix_web::test]
async fn tokens_with_another_algorithm_key_signature_or_expiry_are_refused() {
    let key = new_key();
    let dir = keys_dir(&[("a.pem", &key)]);
    let app = TestApp::spawn_with(Backend::Memory, |s| s.auth.keys_dir = Some(dir)).await;
    let user = app.register("mallory").await;
    let kid = server_kids(&app).await.remove(0);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": user.id, "name": "mallory", "iss": "parley", "aud": "parley",
                        "iat": now, "nbf": now, "exp": now + 600});

    let good = sign(&key, &kid, &claims);
    assert_eq!(
        app.get("/api/v1/users/me", &good).await.status(),
        StatusCode::OK
    );

    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&claims)
    );
    assert_refused(&app, &unsigned, "alg none").await;

    let hs = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(kid.as_bytes()),
        )
        .unwrap()
    };
    assert_refused(&app, &hs, "HS256 with a public value as secret").await;

    assert_refused(
        &app,
        &sign(&new_key(), &kid, &claims),
        "another key claiming our kid",
    )
    .await;
    assert_refused(&app, &sign(&key, "unknown-kid", &claims), "unknown kid").await;

    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_refused(&app, &tampered, "bad signature").await;

    let expired = json!({"sub": user.id, "name": "mallory", "iss": "parley", "aud": "parley",
                         "iat": now - 1000, "nbf": now - 1000, "exp": now - 60});
    let res = app
        .get("/api/v1/users/me", &sign(&key, &kid, &expired))
        .await;
    let body = assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    let with = |field: &str, value: Value| {
        let mut changed = claims.clone();
        changed[field] = value;
        sign(&key, &kid, &changed)
    };
    assert_refused(&app, &with("iss", json!("evil")), "wrong issuer").await;
    assert_refused(&app, &with("aud", json!("billing")), "another audience").await;
    assert_refused(
        &app,
        &with("nbf", json!(now + 600)),
        "not valid before 10 min",
    )
    .await;
    assert_refused(&app, &with("iat", json!(now + 600)), "issued in 10 min").await;
    for claim in ["aud", "iat", "nbf"] {
        let mut missing = claims.clone();
        missing.as_object_mut().unwrap().remove(claim);
        assert_refused(&app, &sign(&key, &kid, &missing), claim).await;
    }
    assert_refused(&app, "not-a-jwt", "garbage").await;
}

#[actix_web::test]
async fn a_signing_key_under_2048_bits_fails_start_up_naming_the_file() {
    let weak = key_with_bits(1024);
    let dir = keys_dir(&[("a.pem", &new_key()), ("weak.pem", &weak)]);
    let mut settings = crate::support::test_settings(Backend::Memory).await;
    settings.auth.keys_dir = Some(dir);
    let error = match parley::app::startup::Application::build(settings).await {
        Ok(_) => panic!("parley started with a 1024-bit key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("weak.pem") && error.contains("2048"),
        "{error}"
    );
}

both_backends!(
    weak_or_breached_passwords_are_refused_at_registration_saying_why,
    token_responses_are_never_cached,
    a_login_stops_refreshing_at_its_family_lifetime_however_active,
);

/// Refreshing keeps a session going, but never past the family's absolute
/// lifetime from the login that began it.
async fn a_login_stops_refreshing_at_its_family_lifetime_however_active(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.auth.refresh_family_max_age_s = 2).await;
    let ada = app.register("ada").await;
    // The family began before register answered, so its deadline is at
    // most 2 s from here.
    let began = std::time::Instant::now();
    let (status, body) = refresh(&app, &ada.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["refresh_token"].as_str().unwrap().to_owned();
    // Time itself is the event here: the family's deadline must pass.
    tokio::time::sleep(Duration::from_millis(2_300).saturating_sub(began.elapsed())).await;
    let (status, body) = refresh(&app, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A fresh login starts a new family.
    let res = auth_call(
        &app,
        "login",
        json!({"username": "ada", "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Register, login and refresh answer with tokens: no cache may keep them.
async fn token_responses_are_never_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let login = auth_call(
        &app,
        "login",
        json!({"username": "ada", "password": PASSWORD}),
    )
    .await;
    let refreshed = auth_call(&app, "refresh", json!({"refresh_token": ada.refresh})).await;
    let register = auth_call(
        &app,
        "register",
        json!({"username": "bob", "email": "bob@example.com", "password": PASSWORD}),
    )
    .await;
    for res in [login, refreshed, register] {
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.headers()["pragma"], "no-cache");
    }
}

#[actix_web::test]
async fn keys_rotate_without_logging_anyone_out() {
    let old = new_key();
    let dir = keys_dir(&[("2026-01-01.pem", &old)]);
    let before =
        TestApp::spawn_with(Backend::Memory, |s| s.auth.keys_dir = Some(dir.clone())).await;
    let user = before.register("rotator").await;
    let old_kids = server_kids(&before).await;
    assert_eq!(old_kids.len(), 1);

    // A new key is added to the folder; the instance restarts (or another starts).
    let new = new_key();
    std::fs::write(dir.join("2026-06-01.pem"), pem(&new)).unwrap();
    let after = TestApp::spawn_with(Backend::Memory, |s| s.auth.keys_dir = Some(dir.clone())).await;
    let kids = server_kids(&after).await;
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old_kids[0]));

    // The token signed by the old key still works on the new instance.
    assert_eq!(
        after.get("/api/v1/feed", &user.access).await.status(),
        StatusCode::OK
    );
    // New tokens are signed by the newest key.
    let fresh = after.register("rotator2").await;
    let header = jsonwebtoken::decode_header(&fresh.access).unwrap();
    let new_kid = kids.iter().find(|k| **k != old_kids[0]).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(
        before.get("/api/v1/feed", &fresh.access).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old instance does not know the new key"
    );
}

async fn weak_or_breached_passwords_are_refused_at_registration_saying_why(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for weak in ["password123", "qwerty123456", "grace-hopper1"] {
        let res = auth_call(
            &app,
            "register",
            json!({"username": "grace-hopper", "email": "grace@example.com", "password": weak}),
        )
        .await;
        let body = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(body["errors"][0]["field"], "password", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("is too weak: "), "{weak}: {message}");
    }
    // Nothing was created: the name is still free.
    app.register("grace-hopper").await;
}

/// `POST /api/v1/auth/{route}` with `body`, no token.
async fn auth_call(app: &TestApp, route: &str, body: Value) -> reqwest::Response {
    let path = format!("/api/v1/auth/{route}");
    app.call(Method::POST, &path, None, Some(body)).await
}
