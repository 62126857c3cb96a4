//! The root span of every HTTP request (`tracing-actix-web`), joined to the
//! caller's trace when a W3C `traceparent` came in and OTLP export is on.

use crate::observability::telemetry;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The root span of every HTTP request, carrying parley's request id (the
/// one in `X-Request-Id`) and the user once authenticated, so every log
/// line of the request carries both.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id = request
            .extensions()
            .get::<super::request_id::RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let span = tracing::info_span!(
            "http_request",
            otel.name = %format!("{} {}", request.method(), route),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.method = %request.method(),
            http.route = %route,
            http.status_code = tracing::field::Empty,
            request_id = %request_id,
            user_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        if telemetry::exporting() {
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&HeaderCarrier(request.headers()))
            });
            // Fails only when the span is already started, which it is not.
            let _ = span.set_parent(parent);
            if let Some((trace_id, span_id)) = telemetry::otel_ids(&span) {
                span.record("trace_id", trace_id.as_str());
                span.record("span_id", span_id.as_str());
            }
        }
        span
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        if let Ok(response) = outcome {
            let status = response.status();
            span.record("http.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        // The request line itself is logged by `metrics::middleware`, which
        // knows the latency; here only failures that never became a response.
        if let Err(error) = outcome {
            let _entered = span.enter();
            tracing::warn!(error = %error, "request failed before a response");
        }
    }
}

/// Request headers as the OpenTelemetry propagator reads them.
struct HeaderCarrier<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
