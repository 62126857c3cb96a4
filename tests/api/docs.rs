//! The documentation in `docs/` cannot fall behind the code: every setting,
//! every REST operation of the OpenAPI document and every WebSocket frame
//! type must be described there. Plain tests: no server, no database.

use parley::app::openapi::ApiDoc;
use parley::config::ENV_VARS;
use parley::ws::protocol::{CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES};
use std::path::Path;
use utoipa::OpenApi;

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn configuration_reference_lists_every_variable() {
    let doc = doc("configuration.md");
    let mut missing = Vec::new();
    for (var, key) in ENV_VARS {
        for name in [var, key] {
            if !doc.contains(&format!("`{name}`")) {
                missing.push(*name);
            }
        }
        // The reference table pairs each variable with its key on one row.
        let paired = doc
            .lines()
            .any(|line| line.contains(&format!("`{var}`")) && line.contains(&format!("`{key}`")));
        if !paired {
            missing.push(var);
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "docs/configuration.md must describe these settings (in backticks, variable and TOML key on one table row): {missing:?}"
    );
}

#[test]
fn api_reference_lists_every_route_in_openapi() {
    let doc = doc("api.md");
    let openapi = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    let paths = openapi["paths"]
        .as_object()
        .expect("the OpenAPI document has paths");
    assert!(!paths.is_empty(), "the OpenAPI document lists no paths");
    let mut missing = Vec::new();
    for (path, item) in paths {
        for method in HTTP_METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let route = format!("{} {path}", method.to_uppercase());
            if !doc.contains(&route) {
                missing.push(route);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/api.md does not describe these operations of /openapi.json: {missing:?}"
    );
}

#[test]
fn api_reference_describes_every_websocket_frame_type() {
    let doc = doc("api.md");
    let missing: Vec<String> = CLIENT_FRAME_TYPES
        .iter()
        .chain(SERVER_FRAME_TYPES)
        .map(|t| format!("\"type\": \"{t}\""))
        .filter(|example| !doc.contains(example))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md needs an example frame with each of: {missing:?}"
    );
}

/// The load-test harness keeps its own copy of the frame types (it shares
/// no code with parley on purpose); the file depends on nothing, so it is
/// compiled in here to check the copy against the server's list.
#[path = "../../loadtest/src/frame_types.rs"]
mod loadtest_frame_types;

#[test]
fn the_load_test_harness_knows_every_frame_type() {
    assert_eq!(loadtest_frame_types::CLIENT_FRAME_TYPES, CLIENT_FRAME_TYPES);
    assert_eq!(loadtest_frame_types::SERVER_FRAME_TYPES, SERVER_FRAME_TYPES);
}

/// Every problem the server can answer is in the document, as
/// `application/problem+json`: the ones from a route's shape (extractors,
/// authentication, rate limits, the drain) as well as the handlers' own.
/// `scripts/test/check-schemathesis.sh` checks the same against a live server.
#[test]
fn openapi_lists_every_problem_as_problem_json() {
    let openapi = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    let shared = &openapi["components"]["responses"];
    let mut wrong = Vec::new();
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for method in HTTP_METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = &item[*method];
            let route = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().expect("responses");
            let mut expected = Vec::new();
            if path.starts_with("/api/v1/") {
                expected.extend(["429", "503"]);
            }
            if op
                .get("security")
                .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()))
            {
                expected.push("401");
            }
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415"]);
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                expected.extend(["400", "404"]);
            }
            for status in expected {
                if !responses.contains_key(status) {
                    wrong.push(format!("{route}: no {status}"));
                }
            }
            for (status, response) in responses {
                let response = match response["$ref"].as_str() {
                    Some(r) => &shared[r.trim_start_matches("#/components/responses/")],
                    None => response,
                };
                let problem = response["content"]["application/problem+json"]["schema"]["$ref"]
                    == "#/components/schemas/Problem";
                let plain_problem = response["content"]["application/json"]["schema"]["$ref"]
                    == "#/components/schemas/Problem";
                // Readiness and startup answer 503 with their own JSON body.
                let health = path.starts_with("/health") || path == "/readyz";
                if plain_problem || (status.as_str() >= "400" && !health && !problem) {
                    wrong.push(format!("{route}: {status} is not a problem+json Problem"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
