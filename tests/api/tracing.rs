//! OpenTelemetry traces: the real binary exports over OTLP/HTTP to a tiny
//! receiver inside the test, continuing the caller's W3C `traceparent`,
//! with database and WebSocket publish spans, and its request log line
//! carries the same trace id.
//!
//! The binary, not an in-process app: the OTel layer belongs to the global
//! tracing subscriber, which one test process can install only once.

use crate::support::ServerProcess;
use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Received = Arc<Mutex<Vec<Span>>>;

/// Accepts `POST /v1/traces` (protobuf) on a random port; returns its base
/// URL and every span received so far.
fn otlp_receiver() -> (String, Received) {
    let spans: Received = Arc::default();
    let sink = web::Data::new(spans.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new().app_data(sink.clone()).route(
            "/v1/traces",
            web::post().to(|body: web::Bytes, sink: web::Data<Received>| async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let mut spans = sink.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
                HttpResponse::Ok()
                    .content_type("application/x-protobuf")
                    .finish()
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            _ => None,
        })
}

#[actix_web::test]
async fn a_request_with_a_traceparent_is_exported_with_its_database_spans_and_logged_with_its_trace_id()
 {
    let (endpoint, received) = otlp_receiver();
    let database = crate::support::db::fresh_database_url().await;
    let server = ServerProcess::start(&[
        ("DATABASE_URL", database.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        // parley's default sampler (parent-based ratio) at 100 %.
        ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let app = &server.app;
    let user = app.register("traced").await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let res = app
        .client
        .get(app.url("/api/v1/users/me"))
        .bearer_auth(&user.access)
        .header("traceparent", format!("00-{trace_id}-{parent_span}-01"))
        .header("x-request-id", "trace-check-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Spans are batched every 100 ms: wait for the request's to arrive.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (http, db) = loop {
        let spans: Vec<Span> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        let http = spans
            .iter()
            .find(|s| attribute(s, "http.route").as_deref() == Some("/api/v1/users/me"))
            .cloned();
        let db = spans
            .iter()
            .find(|s| attribute(s, "db.system").as_deref() == Some("postgresql"))
            .cloned();
        if let (Some(http), Some(db)) = (http, db) {
            break (http, db);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no HTTP and database spans of trace {trace_id}; received: {:?}",
            received
                .lock()
                .unwrap()
                .iter()
                .map(|s| (s.name.clone(), hex(&s.trace_id)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(http.name, "GET /api/v1/users/me");
    assert_eq!(
        hex(&http.parent_span_id),
        parent_span,
        "the caller's span is the parent"
    );
    assert_eq!(attribute(&http, "http.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(&db, "db.operation").as_deref(), Some("user"));

    // A WebSocket publish is a span of its own, up to the durable ack.
    let room = app.create_room(&user, "traced", "public").await;
    let mut ws = app.ws(&user).await;
    let (ack, _) = ws.publish(&room, "hello", "c1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Its commit links to it (one commit serves many publishes), and the
    // database append nests in the commit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let spans = received.lock().unwrap().clone();
        let publish = spans
            .iter()
            .find(|s| s.name == "ws publish" && attribute(s, "outcome").as_deref() == Some("new"));
        let commit = publish.and_then(|publish| {
            spans.iter().find(|s| {
                s.name == "writer commit" && s.links.iter().any(|l| l.span_id == publish.span_id)
            })
        });
        let append = commit.and_then(|commit| {
            spans.iter().find(|s| {
                attribute(s, "db.operation").as_deref() == Some("append")
                    && s.parent_span_id == commit.span_id
            })
        });
        if append.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ws publish → writer commit → append spans: {:?}",
            spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The request's log line carries the same trace id and the HTTP span's id.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        let found = server
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["span"]["request_id"] == "trace-check-1" && e["message"] == "request");
        if let Some(line) = found {
            break line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request is logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(line["span"]["trace_id"], trace_id, "{line}");
    assert_eq!(line["span"]["span_id"], hex(&http.span_id), "{line}");
}
