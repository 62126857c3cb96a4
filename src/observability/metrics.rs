//! Every Prometheus metric parley exports, in one registry owned by the
//! application (never a global, so each test's instance counts alone).
//! Names follow Prometheus conventions (`parley_` prefix, `_total`,
//! `_seconds`); labels are low-cardinality: route templates, status codes,
//! frame types, close codes — never a user or room id.

use parley_actors::dependency::DependencyHandle;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
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
    /// `parley_ws_sockets`: WebSocket sockets still held, closing ones
    /// included (a session has ended; its socket waits for its client).
    pub ws_sockets: IntGauge,
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
    /// `parley_room_events_total{kind,outcome}`: room events (`message`,
    /// `edit`, `delete`, `reaction`) by outcome (`new`, `duplicate`,
    /// `refused`, `error`).
    pub room_events: IntCounterVec,
    /// `parley_read_cursor_moves_total`: read cursors set by `read` frames and `POST /rooms/{id}/read`.
    pub read_cursor_moves: IntCounter,
    /// `parley_moderation_actions_total{action}`: `ban`, `unban`, `mute`,
    /// `unmute`, `block`, `unblock`, `report`.
    pub moderation_actions: IntCounterVec,
    /// `parley_posts_created_total`
    pub posts_created: IntCounter,
    /// `parley_notifications_total{kind}`: notifications stored and pushed.
    pub notifications: IntCounterVec,
    /// `parley_rate_limit_rejections_total{limit}`: requests refused by a
    /// limit: REST (`api`, `auth`), WebSocket upgrades over a cap
    /// (`ws_conns_user`, `ws_conns_ip`) and publishes over the per-user
    /// quota (`ws_user_publish`).
    pub rate_limit_rejections: IntCounterVec,
    /// `parley_db_pool_connections{state}`: pool connections (`size`, `available`, `waiting`), PostgreSQL only.
    pub db_pool: IntGaugeVec,
    /// `parley_draining`: 1 while the instance drains.
    pub draining: IntGauge,
    /// `parley_circuit_breaker_state{breaker}`: 0 closed, 1 half-open, 2 open.
    pub breaker_state: IntGaugeVec,
    /// `parley_circuit_breaker_trips_total{breaker}`: times a breaker opened.
    pub breaker_trips: IntCounterVec,
    /// `parley_dependency_up{dependency}`: 1 when the last check passed.
    pub dependency_up: IntGaugeVec,
    /// `parley_db_query_duration_seconds{op}`: one store operation (pool wait included).
    pub db_query_duration: HistogramVec,
    /// `parley_errors_total{kind}`: errors answered to clients, by error code.
    pub errors: IntCounterVec,
    /// `parley_ws_frames_out_total{type}`: server frames by type.
    pub ws_frames_out: IntCounterVec,
    /// One child of `ws_frames_out` per entry of `frame_types`, then
    /// `other`: looked up once here, because every frame sent counts one
    /// and `with_label_values` hashes and locks on each call.
    frames_out_by_type: Vec<IntCounter>,
    /// The label of each of `frames_out_by_type` but the last (`other`).
    frame_types: &'static [&'static str],
    /// `parley_room_deliveries_total`: message frames rooms handed to local subscribers.
    pub room_deliveries: IntCounter,
    /// `parley_fanout_seconds`: a room handing committed messages to all its local subscribers.
    pub fanout: Histogram,
    /// `parley_writer_batch_size`: publishes per writer commit.
    pub writer_batch_size: Histogram,
    /// `parley_writer_queue_depth`: publishes queued in the writers, not yet taken into a commit.
    pub writer_queue_depth: IntGauge,
    /// Successful requests not logged since the last one that was
    /// (`PARLEY_LOG_SAMPLE_SUCCESS`); per application, like the metrics.
    unlogged_successes: std::sync::atomic::AtomicU64,
    /// `parley_bridge_messages_total{direction}`: bus events `in` from other
    /// instances, `out` to them, `dropped` (not sent) and `lost` (missed).
    pub bridge_messages: IntCounterVec,
    /// `parley_redis_cluster_masters`: masters owning slots, as the bus last
    /// read the Redis Cluster's slot map (0 off a cluster).
    pub redis_cluster_masters: IntGauge,
    /// `parley_bus_shard_channels`: shard channels the bus watches on a
    /// Redis Cluster.
    pub bus_shard_channels: IntGauge,
    /// `parley_bus_resubscribes_total{reason}`: times the bus subscribed its
    /// channels again on a Redis Cluster: `slots_moved` (a failover or a
    /// migration changed slot owners) or `reconnect`.
    pub bus_resubscribes: IntCounterVec,
    /// `parley_cache_requests_total{cache,result}`: hit, miss or error.
    pub cache_requests: IntCounterVec,
    /// `parley_cache_evictions_total{cache}`: in-process entries evicted.
    pub cache_evictions: IntCounterVec,
    /// `parley_rate_limit_local_fallback`: 1 while Redis-backed limits fell
    /// back to per-instance counting.
    pub rate_limit_local_fallback: IntGauge,
    /// `parley_revocations_applied_total{kind,source}`: revoked logins this
    /// instance started refusing, by kind (`user`: log out everywhere;
    /// `family`: refresh-token reuse) and by where it heard of them first
    /// (`local`, `bus`, `poll`).
    pub revocations_applied: IntCounterVec,
    /// `parley_revocation_sessions_closed_total`: WebSockets closed because
    /// the login they were opened with was revoked.
    pub revocation_closes: IntCounter,
    /// The retention purge's series.
    pub retention: RetentionMetrics,
    /// The webhook delivery worker's series.
    pub webhooks: WebhookMetrics,
    /// Web Push's series.
    pub push: PushMetrics,
}

/// Batch sizes from 1 to the writers' cap.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The caches of `store::cache`, by label. Label values known in advance
/// (these, the error codes, the frame types) are set up front so every
/// family is in the first scrape (at 0) instead of appearing with the first
/// event.
const CACHES: &[&str] = &["user", "post", "feed"];

impl Metrics {
    /// The registry of one application. `frame_types` are the server frame
    /// types (`ws::protocol::SERVER_FRAME_TYPES`), each counted as a label
    /// from the first scrape on.
    pub fn new(instance: &str, frame_types: &'static [&'static str]) -> anyhow::Result<Self> {
        let labels =
            std::collections::HashMap::from([("instance_id".to_owned(), instance.to_owned())]);
        let registry = Registry::new_custom(Some("parley".into()), Some(labels))?;
        let ws_frames_out = IntCounterVec::new(
            Opts::new("ws_frames_out_total", "Server frames by type"),
            &["type"],
        )?;
        let frames_out_by_type = frame_types
            .iter()
            .chain(&["other"])
            .map(|kind| ws_frames_out.with_label_values(&[kind]))
            .collect();
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
            ws_sockets: IntGauge::new(
                "ws_sockets",
                "WebSocket sockets held open, including those closing",
            )?,
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
            room_events: IntCounterVec::new(
                Opts::new("room_events_total", "Room events by kind and outcome"),
                &["kind", "outcome"],
            )?,
            read_cursor_moves: IntCounter::new(
                "read_cursor_moves_total",
                "Read cursors set by clients",
            )?,
            moderation_actions: IntCounterVec::new(
                Opts::new(
                    "moderation_actions_total",
                    "Bans, mutes, blocks (and their lifting) and reports, by action",
                ),
                &["action"],
            )?,
            posts_created: IntCounter::new("posts_created_total", "Posts created")?,
            notifications: IntCounterVec::new(
                Opts::new("notifications_total", "Notifications sent by kind"),
                &["kind"],
            )?,
            rate_limit_rejections: IntCounterVec::new(
                Opts::new(
                    "rate_limit_rejections_total",
                    "Requests refused by a rate limit or WebSocket cap, by limit",
                ),
                &["limit"],
            )?,
            db_pool: IntGaugeVec::new(
                Opts::new("db_pool_connections", "Database pool connections by state"),
                &["state"],
            )?,
            draining: IntGauge::new("draining", "1 while the instance drains")?,
            breaker_state: IntGaugeVec::new(
                Opts::new(
                    "circuit_breaker_state",
                    "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                ),
                &["breaker"],
            )?,
            breaker_trips: IntCounterVec::new(
                Opts::new(
                    "circuit_breaker_trips_total",
                    "Times a circuit breaker opened",
                ),
                &["breaker"],
            )?,
            dependency_up: IntGaugeVec::new(
                Opts::new(
                    "dependency_up",
                    "1 when the dependency's last check passed, else 0",
                ),
                &["dependency"],
            )?,
            db_query_duration: HistogramVec::new(
                HistogramOpts::new(
                    "db_query_duration_seconds",
                    "Database operation latency, pool wait included",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["op"],
            )?,
            errors: IntCounterVec::new(
                Opts::new("errors_total", "Errors answered to clients, by kind"),
                &["kind"],
            )?,
            ws_frames_out,
            frames_out_by_type,
            frame_types,
            room_deliveries: IntCounter::new(
                "room_deliveries_total",
                "Message frames rooms handed to their local subscribers",
            )?,
            fanout: Histogram::with_opts(
                HistogramOpts::new(
                    "fanout_seconds",
                    "Time a room takes to hand committed messages to all its local subscribers",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
            writer_batch_size: Histogram::with_opts(
                HistogramOpts::new("writer_batch_size", "Publishes per writer commit")
                    .buckets(BATCH_BUCKETS.to_vec()),
            )?,
            writer_queue_depth: IntGauge::new(
                "writer_queue_depth",
                "Publishes waiting in the writers",
            )?,
            bridge_messages: IntCounterVec::new(
                Opts::new(
                    "bridge_messages_total",
                    "Bus events between instances by direction (in, out, dropped, lost)",
                ),
                &["direction"],
            )?,
            redis_cluster_masters: IntGauge::new(
                "redis_cluster_masters",
                "Masters owning slots in the Redis Cluster's slot map (0 off a cluster)",
            )?,
            bus_shard_channels: IntGauge::new(
                "bus_shard_channels",
                "Shard channels the bus watches on a Redis Cluster",
            )?,
            bus_resubscribes: IntCounterVec::new(
                Opts::new(
                    "bus_resubscribes_total",
                    "Times the bus subscribed its channels again on a Redis Cluster, by reason",
                ),
                &["reason"],
            )?,
            cache_requests: IntCounterVec::new(
                Opts::new("cache_requests_total", "Cache lookups by cache and result"),
                &["cache", "result"],
            )?,
            cache_evictions: IntCounterVec::new(
                Opts::new(
                    "cache_evictions_total",
                    "In-process cache entries evicted or invalidated",
                ),
                &["cache"],
            )?,
            rate_limit_local_fallback: IntGauge::new(
                "rate_limit_local_fallback",
                "1 while Redis-backed rate limits fell back to per-instance counting",
            )?,
            revocations_applied: IntCounterVec::new(
                Opts::new(
                    "revocations_applied_total",
                    "Revoked logins this instance started refusing, by kind and source",
                ),
                &["kind", "source"],
            )?,
            revocation_closes: IntCounter::new(
                "revocation_sessions_closed_total",
                "WebSockets closed because their login was revoked",
            )?,
            unlogged_successes: std::sync::atomic::AtomicU64::new(0),
            registry,
            process: Registry::new(),
            retention: RetentionMetrics::new()?,
            webhooks: WebhookMetrics::new()?,
            push: PushMetrics::new()?,
        };
        m.register()?;
        m.retention.register(&m.registry)?;

        m.webhooks.register(&m.registry)?;
        m.push.register(&m.registry)?;
        Ok(m)
    }

    fn register(&self) -> prometheus::Result<()> {
        let r = &self.registry;
        r.register(Box::new(self.http_requests.clone()))?;
        r.register(Box::new(self.http_duration.clone()))?;
        r.register(Box::new(self.ws_connections.clone()))?;
        r.register(Box::new(self.ws_sockets.clone()))?;
        r.register(Box::new(self.ws_frames_in.clone()))?;
        r.register(Box::new(self.ws_closes.clone()))?;
        r.register(Box::new(self.ws_rate_limited.clone()))?;
        r.register(Box::new(self.publish_ack.clone()))?;
        r.register(Box::new(self.messages.clone()))?;
        r.register(Box::new(self.room_events.clone()))?;
        r.register(Box::new(self.read_cursor_moves.clone()))?;
        r.register(Box::new(self.moderation_actions.clone()))?;
        r.register(Box::new(self.posts_created.clone()))?;
        r.register(Box::new(self.notifications.clone()))?;
        r.register(Box::new(self.rate_limit_rejections.clone()))?;
        r.register(Box::new(self.db_pool.clone()))?;
        r.register(Box::new(self.draining.clone()))?;
        r.register(Box::new(self.breaker_state.clone()))?;
        r.register(Box::new(self.breaker_trips.clone()))?;
        r.register(Box::new(self.dependency_up.clone()))?;
        r.register(Box::new(self.db_query_duration.clone()))?;
        r.register(Box::new(self.errors.clone()))?;
        r.register(Box::new(self.ws_frames_out.clone()))?;
        r.register(Box::new(self.room_deliveries.clone()))?;
        r.register(Box::new(self.fanout.clone()))?;
        r.register(Box::new(self.writer_batch_size.clone()))?;
        r.register(Box::new(self.writer_queue_depth.clone()))?;
        r.register(Box::new(self.bridge_messages.clone()))?;
        r.register(Box::new(self.redis_cluster_masters.clone()))?;
        r.register(Box::new(self.bus_shard_channels.clone()))?;
        r.register(Box::new(self.bus_resubscribes.clone()))?;
        for reason in ["slots_moved", "reconnect"] {
            self.bus_resubscribes.with_label_values(&[reason]);
        }
        r.register(Box::new(self.cache_requests.clone()))?;
        r.register(Box::new(self.cache_evictions.clone()))?;
        r.register(Box::new(self.rate_limit_local_fallback.clone()))?;
        r.register(Box::new(self.revocations_applied.clone()))?;
        r.register(Box::new(self.revocation_closes.clone()))?;
        for kind in ["user", "family"] {
            for source in ["local", "bus", "poll"] {
                self.revocations_applied.with_label_values(&[kind, source]);
            }
        }
        for direction in ["in", "out", "dropped", "lost"] {
            self.bridge_messages.with_label_values(&[direction]);
        }
        // Every action exported at 0 from the start: a dashboard's rate()
        // of a burst of bans or reports needs the series before the burst.
        for action in [
            "ban", "unban", "mute", "unmute", "block", "unblock", "report",
        ] {
            self.moderation_actions.with_label_values(&[action]);
        }
        for cache in CACHES {
            self.cache_evictions.with_label_values(&[cache]);
            for result in ["hit", "miss", "error"] {
                self.cache_requests.with_label_values(&[cache, result]);
            }
        }
        for code in crate::domain::Code::ALL {
            self.errors.with_label_values(&[code.metric_label()]);
        }
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

/// What the retention purge (`service::retention`) reports.
pub struct RetentionMetrics {
    /// `parley_retention_purged_events_total`: events deleted by retention.
    pub purged_events: IntCounter,
    /// `parley_retention_purge_runs_total{outcome}`: purge passes by outcome
    /// (`ok`, `error`).
    pub runs: IntCounterVec,
    /// `parley_retention_purge_seconds`: one purge pass over every room
    /// with a retention.
    pub duration: Histogram,
}

impl RetentionMetrics {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            purged_events: IntCounter::new(
                "retention_purged_events_total",
                "Room events deleted by retention",
            )?,
            runs: IntCounterVec::new(
                Opts::new(
                    "retention_purge_runs_total",
                    "Retention purge passes by outcome",
                ),
                &["outcome"],
            )?,
            duration: Histogram::with_opts(
                HistogramOpts::new(
                    "retention_purge_seconds",
                    "One retention purge pass over every room with a retention",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.purged_events.clone()))?;
        registry.register(Box::new(self.runs.clone()))?;
        registry.register(Box::new(self.duration.clone()))?;
        for outcome in ["ok", "error"] {
            self.runs.with_label_values(&[outcome]);
        }
        Ok(())
    }
}

/// What the webhook delivery worker (`webhooks::worker`) reports.
pub struct WebhookMetrics {
    /// `parley_webhook_deliveries_total{outcome}`: attempts by outcome
    /// (`delivered`, `failed`: a non-2xx answer, `error`: no answer).
    pub deliveries: IntCounterVec,
    /// `parley_webhook_outbox_lag_seconds`: age of the oldest row waiting
    /// for an enabled endpoint (0 when none), as this instance last read it.
    pub outbox_lag: Gauge,
    /// `parley_webhook_endpoints_disabled_total`: endpoints this instance
    /// disabled after repeated failure.
    pub endpoints_disabled: IntCounter,
    /// `parley_webhook_delivery_seconds`: one attempt, answer or not.
    pub duration: Histogram,
}

impl WebhookMetrics {
    pub const OUTCOMES: [&'static str; 3] = ["delivered", "failed", "error"];

    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            deliveries: IntCounterVec::new(
                Opts::new(
                    "webhook_deliveries_total",
                    "Webhook delivery attempts by outcome",
                ),
                &["outcome"],
            )?,
            outbox_lag: Gauge::new(
                "webhook_outbox_lag_seconds",
                "Age of the oldest webhook delivery waiting for an enabled endpoint",
            )?,
            endpoints_disabled: IntCounter::new(
                "webhook_endpoints_disabled_total",
                "Webhook endpoints disabled after repeated failure",
            )?,
            duration: Histogram::with_opts(
                HistogramOpts::new("webhook_delivery_seconds", "One webhook delivery attempt")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.deliveries.clone()))?;
        registry.register(Box::new(self.outbox_lag.clone()))?;
        registry.register(Box::new(self.endpoints_disabled.clone()))?;
        registry.register(Box::new(self.duration.clone()))?;
        for outcome in Self::OUTCOMES {
            self.deliveries.with_label_values(&[outcome]);
        }
        Ok(())
    }
}

/// What Web Push (`service::push`) reports.
pub struct PushMetrics {
    /// `parley_push_sends_total{outcome}`: claimed pushes by what became of
    /// them: `delivered`, `retried`, `gone` (subscription removed),
    /// `rejected` (another 4xx, or an unusable endpoint), `gave_up` (out of
    /// attempts), `skipped_read`, `skipped_online`, `lost_claim` (the
    /// lease ran out before the send ended; another instance may send it
    /// too).
    pub sends: IntCounterVec,
    /// `parley_push_outbox_lag_seconds`: how late the last claim picked up
    /// its oldest row (0 when it found none due).
    pub lag: prometheus::Gauge,
    /// `parley_push_send_seconds`: one request to a push service.
    pub send_duration: Histogram,
    /// `parley_push_sends_in_flight`: requests to push services under way.
    pub in_flight: IntGauge,
    /// `parley_push_subscriptions_removed_total{reason}`: `gone` (the push
    /// service said `404`/`410`), `unsubscribed` (the user).
    pub subscriptions_removed: IntCounterVec,
}

impl PushMetrics {
    pub const OUTCOMES: [&'static str; 8] = [
        "delivered",
        "retried",
        "gone",
        "rejected",
        "gave_up",
        "skipped_read",
        "skipped_online",
        "lost_claim",
    ];

    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            sends: IntCounterVec::new(
                Opts::new("push_sends_total", "Claimed Web Pushes by outcome"),
                &["outcome"],
            )?,
            lag: prometheus::Gauge::new(
                "push_outbox_lag_seconds",
                "How late the last claim picked up its oldest due push",
            )?,
            send_duration: Histogram::with_opts(
                HistogramOpts::new("push_send_seconds", "One request to a push service")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
            in_flight: IntGauge::new(
                "push_sends_in_flight",
                "Requests to push services under way",
            )?,
            subscriptions_removed: IntCounterVec::new(
                Opts::new(
                    "push_subscriptions_removed_total",
                    "Push subscriptions removed, by reason",
                ),
                &["reason"],
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.sends.clone()))?;
        registry.register(Box::new(self.lag.clone()))?;
        registry.register(Box::new(self.send_duration.clone()))?;
        registry.register(Box::new(self.in_flight.clone()))?;
        registry.register(Box::new(self.subscriptions_removed.clone()))?;
        for outcome in Self::OUTCOMES {
            self.sends.with_label_values(&[outcome]);
        }
        for reason in ["gone", "unsubscribed"] {
            self.subscriptions_removed.with_label_values(&[reason]);
        }
        Ok(())
    }
}

/// The engine's [`Observer`](parley_actors::ports::Observer): room
/// deliveries, fan-out time, writer batches and queue depth.
pub struct EngineMetrics(pub std::sync::Arc<Metrics>);

impl parley_actors::ports::Observer for EngineMetrics {
    fn delivered(&self, frames: u64) {
        self.0.room_deliveries.inc_by(frames);
    }

    fn fanned_out(&self, took: std::time::Duration) {
        self.0.fanout.observe(took.as_secs_f64());
    }

    fn committed(&self, size: usize) {
        self.0.writer_batch_size.observe(size as f64);
    }

    fn queued(&self, delta: i64) {
        self.0.writer_queue_depth.add(delta);
    }
}

/// Keeps `parley_dependency_up{dependency}` equal to what the dependency
/// actor last found, as it finds it (not only when a probe asks). The
/// label is the service (`postgres`, `redis`), the actor's name its role.
pub fn follow_dependency(metrics: &std::sync::Arc<Metrics>, dependency: &DependencyHandle) {
    let label = match dependency.name {
        "database" => "postgres",
        "cache" => "redis",
        other => other,
    };
    let gauge = metrics.dependency_up.with_label_values(&[label]);
    let mut health = dependency.subscribe();
    actix_web::rt::spawn(async move {
        loop {
            gauge.set(i64::from(health.borrow_and_update().is_up()));
            if health.changed().await.is_err() {
                return;
            }
        }
    });
}

impl Metrics {
    /// Whether this success is the `every`-th since the last one logged
    /// (`PARLEY_LOG_SAMPLE_SUCCESS`). Counted without a lock: workers racing
    /// here each get their own number.
    pub fn sample_success(&self, every: u64) -> bool {
        let seen = self
            .unlogged_successes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1);
        seen.is_multiple_of(every.max(1))
    }

    /// `parley_ws_frames_out_total{type}` for one server frame. Every frame
    /// is serialised with its `type` first, so the label is read off the
    /// front of the text instead of parsing it again.
    pub fn count_frame_out(&self, text: &str) {
        let index = text
            .strip_prefix(r#"{"type":""#)
            .and_then(|rest| rest.split('"').next())
            .and_then(|kind| self.frame_types.iter().position(|known| *known == kind))
            .unwrap_or(self.frame_types.len());
        if let Some(counter) = self.frames_out_by_type.get(index) {
            counter.inc();
        }
    }
}
