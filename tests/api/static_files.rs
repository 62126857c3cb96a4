//! The browser client, embedded in the binary and served at `/`, without
//! shadowing the API's own answers.

use crate::support::{Backend, TestApp, assert_problem};
use reqwest::StatusCode;

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn the_root_serves_the_client_page_under_the_content_security_policy() {
    let app = TestApp::spawn(Backend::Memory).await;
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8");
    let csp = header(&res, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert_eq!(header(&res, "cache-control"), "no-cache");
    let etag = header(&res, "etag");
    let page = res.text().await.unwrap();
    assert!(
        page.contains(r#"<script type="module" src="js/main.js"></script>"#),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script under the CSP");

    let again = app
        .client
        .get(app.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[actix_web::test]
async fn assets_are_served_with_their_content_types() {
    let app = TestApp::spawn(Backend::Memory).await;
    for (path, expected) in [
        ("/js/main.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&res, "content-type"), expected, "{path}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    }
}

#[actix_web::test]
async fn unknown_paths_still_answer_problem_json_not_the_client_page() {
    let app = TestApp::spawn(Backend::Memory).await;
    for path in ["/api/v1/no-such-route", "/no-such-file.js", "/js/"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    // The client answers GET and HEAD only; other methods fall through too.
    let res = app.client.post(app.url("/")).send().await.unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(header(&health, "content-type"), "application/json");
}

#[actix_web::test]
async fn the_sdk_and_its_declarations_are_served_with_etags_that_revalidate() {
    let app = TestApp::spawn(Backend::Memory).await;
    for (path, expected, marker) in [
        (
            "/sdk/parley.js",
            "text/javascript; charset=utf-8",
            "export function createClient",
        ),
        (
            "/sdk/parley.d.ts",
            "application/typescript; charset=utf-8",
            "export declare function createClient",
        ),
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&res, "content-type"), expected, "{path}");
        assert_eq!(header(&res, "cache-control"), "no-cache", "{path}");
        let etag = header(&res, "etag");
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "a strong ETag: {etag}"
        );
        let body = res.text().await.unwrap();
        assert!(body.contains(marker), "{path} lacks {marker}");
        assert!(body.contains("version"), "{path} has a version");
        if path.ends_with(".js") {
            // Versioned with the server that serves it.
            let version = format!("export const version = '{}';", env!("CARGO_PKG_VERSION"));
            assert!(body.contains(&version), "{path} lacks {version}");
        }

        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header(&again, "etag"), etag);
        assert!(again.text().await.unwrap().is_empty());

        let stale = app
            .client
            .get(app.url(path))
            .header("if-none-match", "\"0000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::OK, "{path} with a stale ETag");
    }
}
