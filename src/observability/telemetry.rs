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
    // W3C `traceparent` in, on every request (see `http::middleware::request_span`).
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
pub fn otel_ids(span: &tracing::Span) -> Option<(String, String)> {
    let context = span.context();
    let otel_span = context.span();
    let ids = otel_span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// Whether spans are exported (OTLP configured and started).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}
