//! Request metrics and the request log line: `parley_http_requests_total`,
//! `parley_http_request_duration_seconds`, `parley_errors_total{kind}`, and
//! one log line per request (successes sampled by `PARLEY_LOG_SAMPLE_SUCCESS`).

use crate::config::Settings;
use crate::domain::Code;
use crate::observability::metrics::Metrics;
use actix_web::web;

/// The `method` label: the standard methods by name, anything else as
/// `OTHER`. A client may send any token as a method; naming it in a label
/// would let it grow `/metrics` and memory without bound.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |(_, label)| label)
}

/// Records every HTTP request by method, route template and status, and
/// logs one line for it. Every label is from a closed set: the method by
/// [`method_label`], the route as the matched pattern or `unmatched`, the
/// status as a three-digit code.
pub async fn middleware(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let sample = req
        .app_data::<web::Data<Settings>>()
        .map_or(1, |settings| settings.log.sample_success.max(1));
    let started = std::time::Instant::now();
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        let method = method_label(res.request().method());
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let status = res.status().as_u16().to_string();
        metrics
            .http_requests
            .with_label_values(&[method, &route, &status])
            .inc();
        if let Some(code) = res.response().extensions().get::<Code>() {
            metrics
                .errors
                .with_label_values(&[code.metric_label()])
                .inc();
        }
        let latency = started.elapsed();
        metrics
            .http_duration
            .with_label_values(&[method, &route])
            .observe(latency.as_secs_f64());
        let latency_ms = latency.as_secs_f64() * 1000.0;
        // One line per request, inside the request span (request_id,
        // user_id, trace_id). Successes are the bulk of a busy server's
        // lines and say little one by one: only one in `sample` is written,
        // carrying how many it stands for. Failures are always written.
        if res.status().is_server_error() {
            tracing::warn!(%method, %route, %status, latency_ms, "request");
        } else if res.status().is_client_error() {
            tracing::info!(%method, %route, %status, latency_ms, "request");
        } else if metrics.sample_success(sample) {
            tracing::info!(%method, %route, %status, latency_ms, sampled = sample, "request");
        }
    }
    Ok(res)
}
