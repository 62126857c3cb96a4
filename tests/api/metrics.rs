//! `/metrics` on the admin listener: the families exist, move with
//! traffic, and pass `promtool check metrics`.

use crate::both_backends;
use crate::support::metrics::{labelled, sample, samples};
use crate::support::{Backend, TestApp};
use reqwest::StatusCode;
use std::io::Write;
use std::process::{Command, Stdio};

both_backends!(
    made_up_methods_and_paths_do_not_grow_the_metrics,
    metrics_move_with_traffic_and_pass_promtool,
    rest_and_websocket_publishes_are_counted_alike,
);

async fn rest_and_websocket_publishes_are_counted_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    let (status, _) = app.post_message(&ada, &room, "over rest", "r1").await;
    assert_eq!(status, 201);
    let (status, _) = app.post_message(&ada, &room, "over rest", "r1").await;
    assert_eq!(status, 200, "a repeated client_id is a duplicate");
    let mut ws = app.ws(&ada).await;
    for _ in 0..2 {
        let (ack, _) = ws.publish(&room, "over ws", "w1").await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }

    let text = app.metrics_text().await;
    let messages = "parley_messages_total";
    assert_eq!(labelled(&text, messages, r#"outcome="new""#), 2.0);
    assert_eq!(labelled(&text, messages, r#"outcome="duplicate""#), 2.0);
    assert_eq!(sample(&text, "parley_publish_ack_seconds_count{"), 4.0);
}

async fn metrics_move_with_traffic_and_pass_promtool(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        public.status(),
        StatusCode::NOT_FOUND,
        "metrics are never public"
    );

    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut ws = app.ws(&ada).await;
    ws.subscribe(&room, None).await;
    let (ack, _) = ws.publish(&room, "hello", "c1").await;
    assert_eq!(ack["type"], "ack");
    app.post(
        "/api/v1/posts",
        &ada.access,
        serde_json::json!({"body": "a post"}),
    )
    .await;

    let text = app.metrics_text().await;
    assert!(sample(&text, "parley_http_requests_total{") >= 1.0);
    assert!(
        text.contains(r#"route="/api/v1/rooms""#),
        "route templates label requests"
    );
    assert!(!text.contains(&room), "no room id leaks into labels");
    assert_eq!(sample(&text, "parley_ws_connections{"), 1.0);
    assert_eq!(sample(&text, "parley_messages_total{"), 1.0);
    assert_eq!(sample(&text, "parley_publish_ack_seconds_count{"), 1.0);
    assert_eq!(sample(&text, "parley_posts_created_total{"), 1.0);
    assert!(text.contains("parley_ws_frames_in_total{"));
    assert!(text.contains("process_resident_memory_bytes"));
    if backend == Backend::Postgres {
        assert!(sample(&text, "parley_db_pool_connections{") >= 0.0);
    }

    // The engine's and the error families move with the same traffic.
    assert!(sample(&text, r#"parley_ws_frames_out_total{type="hello""#) >= 1.0);
    assert!(sample(&text, r#"parley_ws_frames_out_total{type="ack""#) >= 1.0);
    assert!(sample(&text, r#"parley_ws_frames_out_total{type="message""#) >= 1.0);
    assert!(sample(&text, "parley_room_deliveries_total{") >= 1.0);
    assert!(sample(&text, "parley_fanout_seconds_count{") >= 1.0);
    assert!(sample(&text, "parley_writer_batch_size_count{") >= 1.0);
    assert_eq!(sample(&text, "parley_writer_queue_depth{"), 0.0);
    // Known label values are there before their first event.
    assert_eq!(sample(&text, r#"parley_errors_total{kind="internal""#), 0.0);
    let missing = app
        .get(
            "/api/v1/rooms/00000000-0000-7000-8000-000000000000",
            &ada.access,
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let text = app.metrics_text().await;
    assert!(sample(&text, r#"parley_errors_total{kind="not_found""#) >= 1.0);
    if backend == Backend::Postgres {
        assert!(
            sample(
                &text,
                r#"parley_db_query_duration_seconds_count{op="append""#
            ) >= 1.0
        );
        assert_eq!(
            sample(&text, r#"parley_circuit_breaker_state{breaker="postgres""#),
            0.0
        );
        assert_eq!(
            sample(
                &text,
                r#"parley_circuit_breaker_trips_total{breaker="postgres""#
            ),
            0.0
        );
        assert_eq!(
            sample(&text, r#"parley_dependency_up{dependency="postgres""#),
            1.0
        );
    }

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test/test.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every label comes from a closed set: a client sending a thousand made-up
/// methods and paths adds one `OTHER` method and one `unmatched` route, not
/// a series each.
async fn made_up_methods_and_paths_do_not_grow_the_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = request_series(&app.metrics_text().await);
    for i in 0..200 {
        let method = reqwest::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let res = app
            .client
            .request(method, app.url(&format!("/healthz?x={i}")))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
        let res = app
            .client
            .get(app.url(&format!("/no/such/path/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let text = app.metrics_text().await;
    assert!(
        !text.contains("method=\"FOO"),
        "a made-up method became a label"
    );
    assert!(!text.contains("/no/such/path"), "a raw path became a label");
    assert!(labelled(&text, "parley_http_requests_total", "method=\"OTHER\"") >= 200.0);
    // A few new series (OTHER, unmatched, their statuses), not hundreds.
    // Counted per series rather than in bytes: other families (the pool's,
    // the store's) may gain series of their own while the test runs.
    let after = request_series(&text);
    assert!(
        after <= before + 8,
        "the request families grew from {before} to {after} series:\n{text}"
    );
}

/// How many series the two per-request families hold: one counter sample
/// and one histogram `_count` sample per series.
fn request_series(text: &str) -> usize {
    samples(text)
        .filter(|(series, _)| {
            series.starts_with("parley_http_requests_total{")
                || series.starts_with("parley_http_request_duration_seconds_count{")
        })
        .count()
}
