//! The tracing subscriber: pretty lines on a terminal, JSON lines otherwise
//! (`PARLEY_LOG_FORMAT` overrides), filtered by `PARLEY_LOG`; and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, every
//! span exported as OpenTelemetry traces over OTLP/HTTP (protobuf).
//!
//! The standard `OTEL_*` variables are read by the OpenTelemetry SDK itself
//! (endpoint, headers, timeout, batch delays, service name, resource
//! attributes, sampler). The one default parley changes is the sampler:
//! parent-based, 10 % of new traces, because exporting every request of a
//! busy chat server costs more than the traces are worth;
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` override it.

use crate::config::{LogFormat, LogSettings};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The share of new traces sampled when `OTEL_TRACES_SAMPLER` is unset.
const DEFAULT_SAMPLE_RATIO: f64 = 0.1;

/// The provider behind the global OTel layer, kept so [`shutdown`] can
/// flush the spans still batched when the process ends.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber. A second call (tests) is a no-op.
pub fn init(settings: &LogSettings) {
    let filter =
        crate::config::log_filter(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let format = settings
        .format
        .unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        });
    let (otel, otel_error) = match otlp_provider() {
        Ok(Some(provider)) => {
            let tracer = provider.tracer("parley");
            // Only the first init installs a subscriber; a later provider
            // would export nothing, so it is not kept.
            let _ = PROVIDER.set(provider);
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                None,
            )
        }
        Ok(None) => (None, None),
        Err(e) => (None, Some(e)),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
    if let Some(e) = otel_error {
        tracing::error!(error = %format!("{e:#}"), "OTLP trace export is configured but could not start; no traces will be exported");
    }
}

/// The OTLP/HTTP trace pipeline, when an endpoint is configured.
fn otlp_provider() -> anyhow::Result<Option<SdkTracerProvider>> {
    let configured = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if !configured("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    {
        return Ok(None);
    }
    // W3C `traceparent` in, on every request (see `RequestSpan`).
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let exporter = {
        use opentelemetry_otlp::WithExportConfig;
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()?
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !configured("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("parley");
    }
    let mut builder = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build());
    if !configured("OTEL_TRACES_SAMPLER") {
        let ratio = std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|arg| arg.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(DEFAULT_SAMPLE_RATIO);
        builder = builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))));
    }
    Ok(Some(builder.build()))
}

/// Exports the spans still batched. Called once the listeners stopped, so
/// the drain's own spans are in the last batch.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "flushing traces at shutdown");
    }
}

/// The OpenTelemetry trace and span ids of `span` (lower-case hex, as in
/// `traceparent`), when it is being traced.
fn otel_ids(span: &tracing::Span) -> Option<(String, String)> {
    let context = span.context();
    let otel_span = context.span();
    let ids = otel_span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// The root span of every HTTP request, carrying parley's request id (the
/// one in `X-Request-Id`) and the user once authenticated, so every log
/// line of the request carries both.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id = request
            .extensions()
            .get::<crate::http::request_id::RequestId>()
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
        if PROVIDER.get().is_some() {
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&HeaderCarrier(request.headers()))
            });
            // Fails only when the span is already started, which it is not.
            let _ = span.set_parent(parent);
            if let Some((trace_id, span_id)) = otel_ids(&span) {
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
