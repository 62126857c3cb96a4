//! Who may open `/ws` from a browser: by default the deployment's own
//! origin and its CORS origins; others are refused `403` before the
//! upgrade; `*` opts out; clients without `Origin` are always let in.

use crate::support::{Backend, TestApp, WsClient};

#[actix_web::test]
async fn by_default_only_the_sites_own_origin_and_cors_origins_may_open_a_websocket() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.http.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    let ada = app.register("ada").await;
    let token = Some(ada.access.as_str());

    // A page of another site using a visitor's credentials.
    let evil = app.ws_request(token, Some("https://evil.example"));
    let (status, _, _) = app.ws_refusal(evil).await;
    assert_eq!(status, 403);
    let refused = app
        .client
        .get(app.ws_url().replacen("ws", "http", 1))
        .bearer_auth(&ada.access)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    crate::support::assert_problem(refused, reqwest::StatusCode::FORBIDDEN, "forbidden").await;

    // The page parley serves itself: the same scheme and host.
    let own = app.base.clone();
    for origin in [own.as_str(), "https://app.example", "HTTPS://APP.EXAMPLE"] {
        let ws = WsClient::open(app.ws_request(token, Some(origin)))
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert_eq!(ws.hello["user"], ada.id.as_str());
    }
    // The same host on another scheme or port is another origin.
    let other_port = format!("{}1", app.base);
    for origin in [own.replacen("http", "https", 1), other_port] {
        let (status, _, _) = app.ws_refusal(app.ws_request(token, Some(&origin))).await;
        assert_eq!(status, 403, "{origin}");
    }
    // Non-browser clients send no Origin at all.
    let ws = WsClient::open(app.ws_request(token, None)).await.unwrap();
    assert_eq!(ws.hello["user"], ada.id.as_str());
}

#[actix_web::test]
async fn listed_origins_are_allowed_and_a_star_allows_any() {
    let listed = TestApp::spawn_with(Backend::Memory, |s| {
        s.ws.allowed_origins = vec!["https://chat.example".into()];
    })
    .await;
    let ada = listed.register("ada").await;
    let token = Some(ada.access.as_str());
    WsClient::open(listed.ws_request(token, Some("https://chat.example")))
        .await
        .unwrap();
    let (status, _, _) = listed
        .ws_refusal(listed.ws_request(token, Some("https://evil.example")))
        .await;
    assert_eq!(status, 403);

    let open =
        TestApp::spawn_with(Backend::Memory, |s| s.ws.allowed_origins = vec!["*".into()]).await;
    let bob = open.register("bob").await;
    WsClient::open(open.ws_request(Some(&bob.access), Some("https://evil.example")))
        .await
        .unwrap();
}

#[actix_web::test]
async fn a_request_without_a_host_is_not_of_the_sites_own_origin() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    // HTTP/1.0 needs no Host; actix would fill in its own default host,
    // which must not count as the page's origin.
    let answer = app
        .raw_exchange(format!(
            "GET /ws HTTP/1.0\r\norigin: http://localhost:8080\r\n\
             authorization: Bearer {}\r\n{}\r\n",
            ada.access,
            crate::support::UPGRADE_HEADERS
        ))
        .await;
    assert_eq!(answer.split_whitespace().nth(1), Some("403"), "{answer}");
}
