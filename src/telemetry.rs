//! The tracing subscriber: pretty lines on a terminal, JSON lines otherwise
//! (`PARLEY_LOG_FORMAT` overrides), filtered by `PARLEY_LOG`.

use crate::config::{LogFormat, LogSettings};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. A second call (tests) is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let format = settings
        .format
        .unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        });
    let registry = tracing_subscriber::registry().with(filter);
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
        tracing::info_span!(
            "http_request",
            http.method = %request.method(),
            http.route = %route,
            request_id = %request_id,
            user_id = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        // The request line itself is logged by `metrics::middleware`, which
        // knows the latency; here only failures that never became a response.
        if let Err(error) = outcome {
            let _entered = span.enter();
            tracing::warn!(error = %error, "request failed before a response");
        }
    }
}
