//! Every Prometheus metric parley exports, in one registry owned by the
//! application (never a global, so each test's instance counts alone).
//! Names follow Prometheus conventions (`parley_` prefix, `_total`,
//! `_seconds`); labels are low-cardinality: route templates, status codes,
//! frame types, close codes — never a user or room id.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    /// Process metrics keep their standard unprefixed names (`process_*`).
    process: Registry,
    /// `parley_http_requests_total{method, route, status}`
    pub http_requests: IntCounterVec,
    /// `parley_http_request_duration_seconds{method, route}`
    pub http_duration: HistogramVec,
    /// `parley_ws_connections`: open WebSocket connections.
    pub ws_connections: IntGauge,
    /// `parley_ws_frames_in_total{type}`: client frames by type (`invalid` for unparsable).
    pub ws_frames_in: IntCounterVec,
    /// `parley_ws_closes_total{code}`: connections closed by the server, by close code.
    pub ws_closes: IntCounterVec,
    /// `parley_ws_rate_limited_total`: client frames dropped by the per-connection rate limit.
    pub ws_rate_limited: IntCounter,
    /// `parley_publish_ack_seconds`: publish received → ack sent (durable).
    pub publish_ack: Histogram,
    /// `parley_messages_total{outcome}`: publishes by outcome (`new`, `duplicate`, `error`).
    pub messages: IntCounterVec,
    /// `parley_posts_created_total`
    pub posts_created: IntCounter,
    /// `parley_notifications_total{kind}`: notifications stored and pushed.
    pub notifications: IntCounterVec,
    /// `parley_rate_limit_rejections_total{limit}`: REST requests refused (`api`, `auth`).
    pub rate_limit_rejections: IntCounterVec,
    /// `parley_db_pool_connections{state}`: pool connections (`size`, `available`, `waiting`), PostgreSQL only.
    pub db_pool: IntGaugeVec,
    /// `parley_draining`: 1 while the instance drains.
    pub draining: IntGauge,
}

impl Metrics {
    pub fn new(instance: &str) -> anyhow::Result<Self> {
        let labels =
            std::collections::HashMap::from([("instance_id".to_owned(), instance.to_owned())]);
        let registry = Registry::new_custom(Some("parley".into()), Some(labels))?;
        let m = Self {
            http_requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by method, route template and status",
                ),
                &["method", "route", "status"],
            )?,
            http_duration: HistogramVec::new(
                HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["method", "route"],
            )?,
            ws_connections: IntGauge::new("ws_connections", "Open WebSocket connections")?,
            ws_frames_in: IntCounterVec::new(
                Opts::new("ws_frames_in_total", "Client frames by type"),
                &["type"],
            )?,
            ws_closes: IntCounterVec::new(
                Opts::new("ws_closes_total", "Server-initiated closes by code"),
                &["code"],
            )?,
            ws_rate_limited: IntCounter::new(
                "ws_rate_limited_total",
                "Client frames dropped by the rate limit",
            )?,
            publish_ack: Histogram::with_opts(
                HistogramOpts::new("publish_ack_seconds", "Publish received to durable ack")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
            messages: IntCounterVec::new(
                Opts::new("messages_total", "Publishes by outcome"),
                &["outcome"],
            )?,
            posts_created: IntCounter::new("posts_created_total", "Posts created")?,
            notifications: IntCounterVec::new(
                Opts::new("notifications_total", "Notifications sent by kind"),
                &["kind"],
            )?,
            rate_limit_rejections: IntCounterVec::new(
                Opts::new(
                    "rate_limit_rejections_total",
                    "REST requests refused by a rate limit",
                ),
                &["limit"],
            )?,
            db_pool: IntGaugeVec::new(
                Opts::new("db_pool_connections", "Database pool connections by state"),
                &["state"],
            )?,
            draining: IntGauge::new("draining", "1 while the instance drains")?,
            registry,
            process: Registry::new(),
        };
        m.register()?;
        Ok(m)
    }

    fn register(&self) -> prometheus::Result<()> {
        let r = &self.registry;
        r.register(Box::new(self.http_requests.clone()))?;
        r.register(Box::new(self.http_duration.clone()))?;
        r.register(Box::new(self.ws_connections.clone()))?;
        r.register(Box::new(self.ws_frames_in.clone()))?;
        r.register(Box::new(self.ws_closes.clone()))?;
        r.register(Box::new(self.ws_rate_limited.clone()))?;
        r.register(Box::new(self.publish_ack.clone()))?;
        r.register(Box::new(self.messages.clone()))?;
        r.register(Box::new(self.posts_created.clone()))?;
        r.register(Box::new(self.notifications.clone()))?;
        r.register(Box::new(self.rate_limit_rejections.clone()))?;
        r.register(Box::new(self.db_pool.clone()))?;
        r.register(Box::new(self.draining.clone()))?;
        #[cfg(target_os = "linux")]
        self.process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(())
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Records every HTTP request by method, route template and status, and
/// logs one line for it.
pub async fn middleware(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let metrics = req
        .app_data::<actix_web::web::Data<crate::http::AppState>>()
        .map(|s| s.metrics.clone());
    let started = std::time::Instant::now();
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        let method = res.request().method().as_str().to_owned();
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let status = res.status().as_u16().to_string();
        metrics
            .http_requests
            .with_label_values(&[&method, &route, &status])
            .inc();
        let latency = started.elapsed();
        metrics
            .http_duration
            .with_label_values(&[&method, &route])
            .observe(latency.as_secs_f64());
        let latency_ms = latency.as_secs_f64() * 1000.0;
        // One line per request, inside the request span (request_id, user_id).
        if res.status().is_server_error() {
            tracing::warn!(%method, %route, %status, latency_ms, "request");
        } else {
            tracing::info!(%method, %route, %status, latency_ms, "request");
        }
    }
    Ok(res)
}
