//! Settings: defaults < optional TOML file < environment.
//!
//! The file is `parley.toml` in the working directory, or the path in
//! `PARLEY_CONFIG`; unknown keys in it are rejected. Environment variables use
//! the fixed names of the wire contract (section 5), listed in [`ENV_VARS`],
//! and `docs/configuration.md` documents each one (a test keeps the two in
//! step). A wrong value stops start-up with a message that names the setting
//! and what it accepts.

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;

/// Every setting of one parley process.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `[http]`: the two listeners and request handling.
    pub http: HttpSettings,
    /// `[database]`: PostgreSQL, or the embedded store when unset.
    pub database: DatabaseSettings,
    /// `[redis]`: bridges instances when set (see `infra::bus`).
    pub redis: RedisSettings,
    /// `[auth]`: signing keys and token lifetimes.
    pub auth: AuthSettings,
    /// `[log]`: log format and filter.
    pub log: LogSettings,
    /// `[rate]`: REST and WebSocket rate limits.
    pub rate: RateSettings,
    /// `[ws]`: per-connection WebSocket limits and allowed origins.
    pub ws: WsSettings,
    /// `[drain]`: how a shutdown waits for in-flight work.
    pub drain: DrainSettings,
    /// `[breaker]`: when the circuit breakers around dependencies open.
    pub breaker: BreakerSettings,
    /// `[health]`: how the database and cache actors watch their services.
    pub health: HealthSettings,
    /// `[retention]`: how long new rooms keep their events, and the purge.
    pub retention: RetentionSettings,
    /// `[webhooks]`: how webhook deliveries are sent, retried and given up on.
    pub webhooks: WebhookSettings,
    /// `[push]`: Web Push to users with no open WebSocket.
    pub push: PushSettings,
    /// `PARLEY_INSTANCE_ID`: shown in `hello`, logs and metrics. Default: the
    /// host name plus a random suffix.
    pub instance_id: Option<String>,
}

/// `[http]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `PARLEY_HTTP_ADDR`: public listener (REST, WebSocket, health).
    pub addr: SocketAddr,
    /// `PARLEY_ADMIN_ADDR`: admin listener (`/metrics`, `/admin/*`, health).
    pub admin_addr: SocketAddr,
    /// `PARLEY_HTTP_WORKERS`: HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// `PARLEY_TRUSTED_PROXIES`: comma-separated peer addresses or CIDR
    /// ranges (`10.0.0.0/8`, `fd00::/8`) whose `X-Forwarded-For` is believed
    /// when finding the client IP. Default: none.
    pub trusted_proxies: Vec<ProxyRange>,
    /// `PARLEY_MAX_BODY_BYTES`: largest JSON request body accepted (at least
    /// 1024; larger bodies are `413`). Default: 64 KiB.
    pub max_body_bytes: usize,
    /// `PARLEY_CORS_ORIGINS`: comma-separated browser origins allowed to call
    /// the REST API cross-origin; empty allows none (same-origin only).
    pub cors_origins: Vec<String>,
    /// `PARLEY_HTTP_SEND_BUFFER_BYTES`: the kernel send buffer of each public
    /// connection (`SO_SNDBUF`; Linux doubles it), so a slow WebSocket
    /// reader has little in flight and gets its 1013 close frame in time;
    /// 0 leaves it to the kernel's autotuning. Default: 64 KiB.
    pub send_buffer_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            workers: 0,
            trusted_proxies: Vec::new(),
            max_body_bytes: 64 * 1024,
            cors_origins: Vec::new(),
            send_buffer_bytes: 64 * 1024,
        }
    }
}

/// One entry of `PARLEY_TRUSTED_PROXIES`: a CIDR range, or one address
/// (a range of one). Parsed by `ipnet`, so `10.0.0.0/8` and `10.1.2.3` are
/// both accepted and anything else fails start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyRange(ipnet::IpNet);

impl ProxyRange {
    /// Whether `ip` is inside the range. An IPv4 address seen as IPv6
    /// (`::ffff:10.0.0.1`, a dual-stack listener) counts as itself.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for ProxyRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(Self(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|ip| Self(ipnet::IpNet::from(ip.to_canonical())))
            .map_err(|_| {
                format!("`{s}` is neither an IP address nor a CIDR range such as 10.0.0.0/8")
            })
    }
}

impl TryFrom<String> for ProxyRange {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ProxyRange> for String {
    fn from(range: ProxyRange) -> String {
        range.0.to_string()
    }
}

/// `[database]` in `parley.toml`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`: PostgreSQL URL (`postgres://` or `postgresql://`; may
    /// hold a password, so it is never logged). Unset: the embedded
    /// in-process store, which loses everything on restart.
    pub url: Option<String>,
    /// `PARLEY_DB_POOL_SIZE`: maximum pooled connections (at least 1). Default: 16.
    pub pool_size: usize,
    /// `PARLEY_DB_CONNECT_TIMEOUT_S`: how long start-up keeps retrying until
    /// the database answers. Default: 30 s.
    pub connect_timeout_s: u64,
    /// `PARLEY_DB_POOL_TIMEOUT_MS`: how long one new connection, one wait
    /// for a pooled connection or one recycle check may take before the
    /// operation fails as unavailable (at least 100). Default: 5000.
    pub pool_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
            connect_timeout_s: 30,
            pool_timeout_ms: 5_000,
        }
    }
}

/// The URL holds a password: print only where it points.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_s", &self.connect_timeout_s)
            .field("pool_timeout_ms", &self.pool_timeout_ms)
            .finish()
    }
}

/// `[redis]` in `parley.toml`: the bridge between instances (pub/sub,
/// presence, shared rate limits).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `REDIS_URL`: `redis://`, `rediss://`, `redis-cluster://` or
    /// `redis-sentinel://` (may hold a password, so it is never logged).
    /// Unset means single-instance mode.
    pub url: Option<String>,
    /// `PARLEY_REDIS_PREFIX`: prefix of every key and channel, so several
    /// deployments (or test runs) can share one Redis.
    pub prefix: String,
    /// `PARLEY_BUS_RESYNC_S`: how often every room with subscribers on
    /// this instance compares its stream with the log and fills what the
    /// bus did not bring (an instance that died between its commit and its
    /// publish, a message Redis dropped). 0: only after a bus reconnect.
    pub resync_s: u64,
    /// `PARLEY_REDIS_CLUSTER_PUBSUB`: with a `redis-cluster://` URL, how
    /// room and user channels travel: `sharded` (SPUBLISH / SSUBSCRIBE, each
    /// channel on its slot's master) or `classic` (PUBLISH, broadcast to
    /// every node), for measuring the difference and for clusters that
    /// cannot run Redis 7's sharded pub/sub. Ignored off a cluster.
    pub cluster_pubsub: ClusterPubSub,
}

/// How the bus uses pub/sub on a Redis Cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterPubSub {
    /// SPUBLISH / SSUBSCRIBE: a channel lives on the master owning its slot.
    #[default]
    Sharded,
    /// PUBLISH / SUBSCRIBE: every message is broadcast to every node.
    Classic,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            prefix: String::new(),
            resync_s: 30,
            cluster_pubsub: ClusterPubSub::Sharded,
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("resync_s", &self.resync_s)
            .field("cluster_pubsub", &self.cluster_pubsub)
            .finish()
    }
}

/// `[auth]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `PARLEY_JWT_KEYS_DIR`: folder of PEM RSA private keys; the file whose
    /// name sorts last signs, all verify. Unset: one key generated at start.
    pub keys_dir: Option<PathBuf>,
    /// `PARLEY_ACCESS_TTL_S`: access-token lifetime in seconds, positive and
    /// shorter than the refresh-token lifetime. Default: 15 minutes.
    pub access_ttl_s: u64,
    /// `PARLEY_REFRESH_TTL_S`: refresh-token lifetime in seconds. Default: 30 days.
    pub refresh_ttl_s: u64,
    /// `PARLEY_JWT_ISSUER`: the `iss` claim written and required. Default: `parley`.
    pub issuer: String,
    /// `PARLEY_JWT_AUDIENCE`: the `aud` claim written and required, so a
    /// token minted for another service by the same issuer is refused.
    /// Default: `parley`.
    pub audience: String,
    /// `PARLEY_REFRESH_FAMILY_MAX_AGE_S`: how long one login's refresh
    /// tokens may be rotated before the user must log in again, however
    /// active. Default: 90 days.
    pub refresh_family_max_age_s: u64,
    /// `PARLEY_REFRESH_REUSE_GRACE_S`: how long after a refresh token is
    /// spent the same token is answered with another new pair instead of
    /// being treated as stolen: the first answer may never have reached the
    /// client (a page reloaded mid-request, two tabs refreshing at once).
    /// At most 60. Default: 0, the contract's strict single use (any reuse
    /// revokes the family); browser applications want about 10.
    pub refresh_reuse_grace_s: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            keys_dir: None,
            access_ttl_s: 15 * 60,
            refresh_ttl_s: 30 * 24 * 3600,
            issuer: "parley".into(),
            audience: "parley".into(),
            refresh_family_max_age_s: 90 * 24 * 3600,
            refresh_reuse_grace_s: 0,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `[log]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `PARLEY_LOG_FORMAT`: `pretty` or `json`; default `pretty` on a terminal, `json` otherwise.
    pub format: Option<LogFormat>,
    /// `PARLEY_LOG`: a tracing filter such as `info` or `parley=debug,info`
    /// (span field values match as text, see [`log_filter`]); one that does
    /// not parse falls back to `info`. Default: `info`.
    pub filter: String,
    /// `PARLEY_LOG_SAMPLE_SUCCESS`: log one in this many successful (below
    /// 400) request lines; 1 logs every one. Failures are always logged.
    /// Default: 10.
    pub sample_success: u64,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: None,
            filter: "info".into(),
            sample_success: 10,
        }
    }
}

/// `[rate]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateSettings {
    /// `PARLEY_RATE_API_PER_MIN`: REST requests per minute per user (per
    /// client IP without a valid token). Default: 100.
    pub api_per_min: NonZeroU32,
    /// `PARLEY_RATE_AUTH_PER_MIN`: requests per minute per client IP on
    /// `/api/v1/auth/*`. Default: 5.
    pub auth_per_min: NonZeroU32,
    /// `PARLEY_WS_MSGS_PER_S`: WebSocket frames per second per connection;
    /// refusing more than twice this many within 5 s closes with 1008. Default: 50.
    pub ws_msgs_per_s: NonZeroU32,
    /// `PARLEY_WS_USER_MSGS_PER_S`: WebSocket publishes per second per user,
    /// over all of the user's connections (and instances, with Redis); a
    /// publish over it is answered `error` `rate_limited`. Default: 100.
    pub ws_user_msgs_per_s: NonZeroU32,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            api_per_min: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            auth_per_min: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            ws_msgs_per_s: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            ws_user_msgs_per_s: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// `[ws]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsSettings {
    /// `PARLEY_WS_MAX_FRAME_BYTES`: larger frames close the connection with
    /// 1009 (at least 1024). Default: 64 KiB.
    pub max_frame_bytes: usize,
    /// `PARLEY_WS_HEARTBEAT_MS`: server ping interval, announced in `hello`;
    /// three silent intervals close (at least 100). Default: 15 s.
    pub heartbeat_ms: u64,
    /// `PARLEY_WS_OUTBOX`: frames queued per connection before it counts as a
    /// slow consumer and is closed with 1013 (at least 1). Default: 256.
    pub outbox: usize,
    /// `PARLEY_WS_ALLOWED_ORIGINS`: comma-separated `Origin`s allowed to
    /// upgrade besides the deployment's own (same-origin and
    /// `PARLEY_CORS_ORIGINS`); `*` allows any. Requests without `Origin`
    /// (not browsers) are always allowed. Default: none besides those.
    pub allowed_origins: Vec<String>,
    /// `PARLEY_WS_CONNS_PER_USER`: concurrent WebSockets per user (over all
    /// instances with Redis); over it the upgrade is `429`. Default: 100.
    pub conns_per_user: NonZeroU32,
    /// `PARLEY_WS_CONNS_PER_IP`: concurrent WebSockets per client IP (the
    /// forwarded address behind trusted proxies); over it the upgrade is
    /// `429`. Default: 1000.
    pub conns_per_ip: NonZeroU32,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            heartbeat_ms: 15_000,
            outbox: 256,
            allowed_origins: Vec::new(),
            conns_per_user: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            conns_per_ip: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// `[drain]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainSettings {
    /// `PARLEY_DRAIN_TIMEOUT_S`: how long a drain waits for in-flight work.
    pub timeout_s: u64,
    /// `PARLEY_DRAIN_GRACE_MS`: after readiness turns 503, how long new
    /// requests are still served while load balancers notice.
    pub grace_ms: u64,
}

impl Default for DrainSettings {
    fn default() -> Self {
        Self {
            timeout_s: 30,
            grace_ms: 1_000,
        }
    }
}

/// `[breaker]` in `parley.toml`: the same thresholds for every breaker.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// `PARLEY_BREAKER_FAILURES`: failures within the window that open a
    /// breaker (at least 1). Default: 5.
    pub failures: u32,
    /// `PARLEY_BREAKER_WINDOW_S`: the window failures are counted in (at
    /// least 1). Default: 10 s.
    pub window_s: u64,
    /// `PARLEY_BREAKER_RECOVERY_S`: how long an open breaker fails calls
    /// fast before one probe call may try the dependency (at least 1).
    /// Default: 30 s.
    pub recovery_s: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            window_s: 10,
            recovery_s: 30,
        }
    }
}

/// `[health]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// `PARLEY_HEALTH_CHECK_INTERVAL_MS`: how often the database and cache
    /// actors check their service while it is up, and the longest pause
    /// between retries while it is down (at least 100). Default: 5000.
    pub check_interval_ms: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            check_interval_ms: 5_000,
        }
    }
}

/// `[retention]` in `parley.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// `PARLEY_RETENTION_DAYS`: the retention a new room starts with, in
    /// days (1 to 36500). Default: unset, rooms keep their events forever.
    pub days: Option<u32>,
    /// `PARLEY_RETENTION_PURGE_INTERVAL_S`: how often each instance purges
    /// expired events (at least 1). Default: 300.
    pub purge_interval_s: u64,
    /// `PARLEY_RETENTION_PURGE_BATCH`: events deleted per statement, each
    /// its own short transaction (1 to 100000). Default: 1000.
    pub purge_batch: u32,
    /// `PARLEY_RETENTION_PURGE_PAUSE_MS`: the pause after each batch, which
    /// bounds the purge's share of the database (and of its WAL flushes,
    /// which publishes wait for). Default: 50.
    pub purge_pause_ms: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            days: None,
            purge_interval_s: 300,
            purge_batch: 1_000,
            purge_pause_ms: 50,
        }
    }
}

/// `[webhooks]` in `parley.toml` (see `docs/webhooks.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// `PARLEY_WEBHOOK_TIMEOUT_MS`: how long one delivery waits for the
    /// endpoint's answer (at least 100). Default: 10000.
    pub timeout_ms: u64,
    /// `PARLEY_WEBHOOK_CONCURRENCY`: deliveries in flight per instance
    /// (1 to 1000). Default: 64 (16 kept up with 1,000 events a second only
    /// at about 930/s; docs/benchmarks.md).
    pub concurrency: u32,
    /// `PARLEY_WEBHOOK_LEASE_MS`: how long a claimed delivery is held by
    /// its instance before another may take it (after a crash); more than
    /// the timeout. Default: 60000.
    pub lease_ms: u64,
    /// `PARLEY_WEBHOOK_POLL_MS`: how often the worker looks for due
    /// deliveries when nothing woke it (at least 10). Default: 1000.
    pub poll_ms: u64,
    /// `PARLEY_WEBHOOK_RETRY_BASE_MS`: the pause after a first failed
    /// attempt, doubled after each further one, with jitter (at least 10).
    /// Default: 1000.
    pub retry_base_ms: u64,
    /// `PARLEY_WEBHOOK_RETRY_MAX_MS`: the longest pause between attempts
    /// (at least the base). Default: 3600000 (an hour).
    pub retry_max_ms: u64,
    /// `PARLEY_WEBHOOK_DISABLE_AFTER`: consecutive failed attempts after
    /// which an endpoint is disabled (at least 1), once the first of them is
    /// `PARLEY_WEBHOOK_DISABLE_WINDOW_S` old. Default: 20.
    pub disable_after: u32,
    /// `PARLEY_WEBHOOK_DISABLE_WINDOW_S`: how long an endpoint must have been
    /// failing before it is disabled (0: at once). Default: 86400 (a day).
    pub disable_window_s: u64,
    /// `PARLEY_WEBHOOK_REFRESH_MS`: how often each instance re-reads which
    /// event types enabled endpoints subscribe to (endpoints created on
    /// another instance start receiving events after at most this), the
    /// outbox lag metric with it (at least 100). Default: 5000.
    pub refresh_ms: u64,
    /// `PARLEY_WEBHOOK_LOG_DAYS`: how long delivery log lines are kept
    /// (at least 1). Default: 7.
    pub log_days: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            concurrency: 64,
            lease_ms: 60_000,
            poll_ms: 1_000,
            retry_base_ms: 1_000,
            retry_max_ms: 3_600_000,
            disable_after: 20,
            disable_window_s: 86_400,
            refresh_ms: 5_000,
            log_days: 7,
        }
    }
}

/// `[push]` in `parley.toml`: Web Push (docs/push.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// `PARLEY_PUSH_DELAY_MS`: how long after a notification its push is
    /// sent, if the user has no open WebSocket then and has not read it.
    /// Default: 2000.
    pub delay_ms: u64,
    /// `PARLEY_PUSH_ALLOW_HOSTS`: comma-separated `host:port` pairs whose
    /// endpoints are admitted on any address, plain `http` included (tests,
    /// private push services). Default: none (`https` on public addresses
    /// only).
    pub allow_hosts: Vec<String>,
    /// `PARLEY_PUSH_VAPID_PRIVATE_KEY`: the VAPID private key (RFC 8292),
    /// the base64url 32-byte P-256 scalar. Unset or empty: one is generated at start
    /// (with a warning), and subscriptions made with it stop working at the
    /// next restart. Every instance must share one.
    pub vapid_private_key: Option<String>,
    /// `PARLEY_PUSH_VAPID_SUBJECT`: the contact push services see
    /// (`mailto:` or `https:`). Change the default.
    pub vapid_subject: String,
    /// `PARLEY_PUSH_LEASE_MS`: how long a claimed push is an instance's to
    /// send (at least 200); a crashed instance's claims are retried after
    /// it. A send is abandoned well within it. Default: 30000.
    pub lease_ms: u64,
    /// `PARLEY_PUSH_RETRY_BASE_MS`: the first retry's wait after a `5xx`,
    /// `429` without `Retry-After` or a network error; doubled per attempt,
    /// at most an hour. Default: 1000.
    pub retry_base_ms: u64,
    /// `PARLEY_PUSH_POLL_MS`: how often each instance looks for due pushes
    /// (at least 10). Default: 250.
    pub poll_ms: u64,
    /// `PARLEY_PUSH_TTL_S`: how long a push service keeps a push for an
    /// offline device (the `TTL` header). Default: 86400.
    pub ttl_s: u32,
}

impl PushSettings {
    /// `PARLEY_PUSH_VAPID_PRIVATE_KEY` when set and not blank (compose
    /// passes an unset variable through as empty).
    pub fn vapid_key(&self) -> Option<&str> {
        self.vapid_private_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            delay_ms: 2_000,
            allow_hosts: Vec::new(),
            vapid_private_key: None,
            vapid_subject: "mailto:change-me@example.com".into(),
            lease_ms: 30_000,
            retry_base_ms: 1_000,
            poll_ms: 250,
            ttl_s: 86_400,
        }
    }
}

impl WebhookSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |var: &str, what: &str| Err(ConfigError(format!("{var}: {what}")));
        if self.timeout_ms < 100 {
            return fail("PARLEY_WEBHOOK_TIMEOUT_MS", "must be at least 100");
        }
        if !(1..=1_000).contains(&self.concurrency) {
            return fail("PARLEY_WEBHOOK_CONCURRENCY", "must be 1 to 1000");
        }
        if self.lease_ms <= self.timeout_ms {
            return fail(
                "PARLEY_WEBHOOK_LEASE_MS",
                "must be more than PARLEY_WEBHOOK_TIMEOUT_MS",
            );
        }
        if self.poll_ms < 10 {
            return fail("PARLEY_WEBHOOK_POLL_MS", "must be at least 10");
        }
        if self.retry_base_ms < 10 || self.retry_max_ms < self.retry_base_ms {
            return fail(
                "PARLEY_WEBHOOK_RETRY_*",
                "base at least 10 ms, max at least the base",
            );
        }
        if self.disable_after == 0 {
            return fail("PARLEY_WEBHOOK_DISABLE_AFTER", "must be at least 1");
        }
        if self.refresh_ms < 100 {
            return fail("PARLEY_WEBHOOK_REFRESH_MS", "must be at least 100");
        }
        if self.log_days == 0 {
            return fail("PARLEY_WEBHOOK_LOG_DAYS", "must be at least 1");
        }
        Ok(())
    }
}

/// Environment variables and the setting (`section.key` in `parley.toml`)
/// each one sets. `docs/configuration.md` documents every pair; the test
/// `docs::configuration_reference_lists_every_variable` keeps it complete.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PARLEY_HTTP_ADDR", "http.addr"),
    ("PARLEY_ADMIN_ADDR", "http.admin_addr"),
    ("PARLEY_HTTP_WORKERS", "http.workers"),
    ("PARLEY_TRUSTED_PROXIES", "http.trusted_proxies"),
    ("PARLEY_MAX_BODY_BYTES", "http.max_body_bytes"),
    ("PARLEY_CORS_ORIGINS", "http.cors_origins"),
    ("PARLEY_HTTP_SEND_BUFFER_BYTES", "http.send_buffer_bytes"),
    ("DATABASE_URL", "database.url"),
    ("PARLEY_DB_POOL_SIZE", "database.pool_size"),
    ("PARLEY_DB_CONNECT_TIMEOUT_S", "database.connect_timeout_s"),
    ("PARLEY_DB_POOL_TIMEOUT_MS", "database.pool_timeout_ms"),
    ("PARLEY_BREAKER_FAILURES", "breaker.failures"),
    ("PARLEY_BREAKER_WINDOW_S", "breaker.window_s"),
    ("PARLEY_BREAKER_RECOVERY_S", "breaker.recovery_s"),
    (
        "PARLEY_HEALTH_CHECK_INTERVAL_MS",
        "health.check_interval_ms",
    ),
    ("REDIS_URL", "redis.url"),
    ("PARLEY_REDIS_PREFIX", "redis.prefix"),
    ("PARLEY_BUS_RESYNC_S", "redis.resync_s"),
    ("PARLEY_REDIS_CLUSTER_PUBSUB", "redis.cluster_pubsub"),
    ("PARLEY_JWT_KEYS_DIR", "auth.keys_dir"),
    ("PARLEY_ACCESS_TTL_S", "auth.access_ttl_s"),
    ("PARLEY_REFRESH_TTL_S", "auth.refresh_ttl_s"),
    ("PARLEY_JWT_ISSUER", "auth.issuer"),
    ("PARLEY_JWT_AUDIENCE", "auth.audience"),
    (
        "PARLEY_REFRESH_FAMILY_MAX_AGE_S",
        "auth.refresh_family_max_age_s",
    ),
    ("PARLEY_REFRESH_REUSE_GRACE_S", "auth.refresh_reuse_grace_s"),
    ("PARLEY_LOG_FORMAT", "log.format"),
    ("PARLEY_LOG", "log.filter"),
    ("PARLEY_LOG_SAMPLE_SUCCESS", "log.sample_success"),
    ("PARLEY_RATE_API_PER_MIN", "rate.api_per_min"),
    ("PARLEY_RATE_AUTH_PER_MIN", "rate.auth_per_min"),
    ("PARLEY_WS_MSGS_PER_S", "rate.ws_msgs_per_s"),
    ("PARLEY_WS_USER_MSGS_PER_S", "rate.ws_user_msgs_per_s"),
    ("PARLEY_WS_MAX_FRAME_BYTES", "ws.max_frame_bytes"),
    ("PARLEY_WS_HEARTBEAT_MS", "ws.heartbeat_ms"),
    ("PARLEY_WS_OUTBOX", "ws.outbox"),
    ("PARLEY_WS_ALLOWED_ORIGINS", "ws.allowed_origins"),
    ("PARLEY_WS_CONNS_PER_USER", "ws.conns_per_user"),
    ("PARLEY_WS_CONNS_PER_IP", "ws.conns_per_ip"),
    ("PARLEY_DRAIN_TIMEOUT_S", "drain.timeout_s"),
    ("PARLEY_DRAIN_GRACE_MS", "drain.grace_ms"),
    ("PARLEY_RETENTION_DAYS", "retention.days"),
    (
        "PARLEY_RETENTION_PURGE_INTERVAL_S",
        "retention.purge_interval_s",
    ),
    ("PARLEY_RETENTION_PURGE_BATCH", "retention.purge_batch"),
    (
        "PARLEY_RETENTION_PURGE_PAUSE_MS",
        "retention.purge_pause_ms",
    ),
    ("PARLEY_WEBHOOK_TIMEOUT_MS", "webhooks.timeout_ms"),
    ("PARLEY_WEBHOOK_CONCURRENCY", "webhooks.concurrency"),
    ("PARLEY_WEBHOOK_LEASE_MS", "webhooks.lease_ms"),
    ("PARLEY_WEBHOOK_POLL_MS", "webhooks.poll_ms"),
    ("PARLEY_WEBHOOK_RETRY_BASE_MS", "webhooks.retry_base_ms"),
    ("PARLEY_WEBHOOK_RETRY_MAX_MS", "webhooks.retry_max_ms"),
    ("PARLEY_WEBHOOK_DISABLE_AFTER", "webhooks.disable_after"),
    (
        "PARLEY_WEBHOOK_DISABLE_WINDOW_S",
        "webhooks.disable_window_s",
    ),
    ("PARLEY_WEBHOOK_REFRESH_MS", "webhooks.refresh_ms"),
    ("PARLEY_WEBHOOK_LOG_DAYS", "webhooks.log_days"),
    ("PARLEY_PUSH_DELAY_MS", "push.delay_ms"),
    ("PARLEY_PUSH_ALLOW_HOSTS", "push.allow_hosts"),
    ("PARLEY_PUSH_VAPID_PRIVATE_KEY", "push.vapid_private_key"),
    ("PARLEY_PUSH_VAPID_SUBJECT", "push.vapid_subject"),
    ("PARLEY_PUSH_LEASE_MS", "push.lease_ms"),
    ("PARLEY_PUSH_RETRY_BASE_MS", "push.retry_base_ms"),
    ("PARLEY_PUSH_POLL_MS", "push.poll_ms"),
    ("PARLEY_PUSH_TTL_S", "push.ttl_s"),
    ("PARLEY_INSTANCE_ID", "instance_id"),
];

/// Variables whose value is text even when it looks like a number.
const TEXT_VARS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "PARLEY_REDIS_PREFIX",
    "PARLEY_JWT_KEYS_DIR",
    "PARLEY_JWT_ISSUER",
    "PARLEY_JWT_AUDIENCE",
    "PARLEY_LOG",
    "PARLEY_LOG_FORMAT",
    "PARLEY_REDIS_CLUSTER_PUBSUB",
    "PARLEY_INSTANCE_ID",
    "PARLEY_PUSH_VAPID_PRIVATE_KEY",
    "PARLEY_PUSH_VAPID_SUBJECT",
];

/// Variables whose value is a comma-separated list.
const LIST_VARS: &[&str] = &[
    "PARLEY_TRUSTED_PROXIES",
    "PARLEY_WS_ALLOWED_ORIGINS",
    "PARLEY_CORS_ORIGINS",
    "PARLEY_PUSH_ALLOW_HOSTS",
];

/// A setting that could not be loaded, with the reason in words.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads defaults, then the config file, then the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_env(std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (tests use this).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let file = vars
            .iter()
            .find(|(k, _)| k == "PARLEY_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let file = match &file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "PARLEY_CONFIG names {}, which does not exist",
                    path.display()
                )));
            }
            Some(path) => Toml::file(path),
            None => Toml::file("parley.toml"),
        };
        Self::layered(file, &vars)
    }

    /// Defaults < `toml` (the text of a config file) < `vars`: what
    /// [`Settings::from_env`] does once it has read the file, without any
    /// I/O. The fuzz target `config` and the property tests call it.
    pub fn from_toml_and_env(toml: &str, vars: &[(String, String)]) -> Result<Self, ConfigError> {
        Self::layered(Toml::string(toml), vars)
    }

    fn layered(
        file: figment::providers::Data<Toml>,
        vars: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default())).merge(file);
        for (var, key) in ENV_VARS {
            let Some((_, raw)) = vars.iter().find(|(k, _)| k == var) else {
                continue;
            };
            figment = figment.merge(Serialized::global(key, env_value(var, raw)));
        }
        let settings: Settings = figment.extract().map_err(|e| ConfigError(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |var: &str, what: &str| Err(ConfigError(format!("{var}: {what}")));
        if self.http.max_body_bytes < 1024 {
            return fail("PARLEY_MAX_BODY_BYTES", "must be at least 1024");
        }
        if self.http.send_buffer_bytes != 0 && self.http.send_buffer_bytes < 4096 {
            return fail(
                "PARLEY_HTTP_SEND_BUFFER_BYTES",
                "must be 0 (the kernel's choice) or at least 4096",
            );
        }
        if log_filter(&self.log.filter).is_err() {
            return fail(
                "PARLEY_LOG",
                "must be a tracing filter such as `info` or `parley=debug,info`",
            );
        }
        if self
            .retention
            .days
            .is_some_and(|d| crate::domain::RetentionDays::parse(i64::from(d)).is_err())
        {
            return fail("PARLEY_RETENTION_DAYS", "must be 1 to 36500 days, or unset");
        }
        if self.retention.purge_interval_s == 0
            || !(1..=100_000).contains(&self.retention.purge_batch)
        {
            return fail(
                "PARLEY_RETENTION_PURGE_*",
                "interval at least 1 second, batch 1 to 100000 events",
            );
        }
        self.webhooks.validate()?;
        self.validate_push()?;
        if self.database.pool_size == 0 {
            return fail("PARLEY_DB_POOL_SIZE", "must be at least 1");
        }
        if self.log.sample_success == 0 {
            return fail("PARLEY_LOG_SAMPLE_SUCCESS", "must be at least 1");
        }
        if self.database.pool_timeout_ms < 100 {
            return fail("PARLEY_DB_POOL_TIMEOUT_MS", "must be at least 100");
        }
        if self.health.check_interval_ms < 100 {
            return fail("PARLEY_HEALTH_CHECK_INTERVAL_MS", "must be at least 100");
        }
        if self.breaker.failures == 0 || self.breaker.window_s == 0 || self.breaker.recovery_s == 0
        {
            return fail(
                "PARLEY_BREAKER_*",
                "failures, window and recovery must each be at least 1",
            );
        }
        if self.auth.access_ttl_s == 0 || self.auth.refresh_ttl_s <= self.auth.access_ttl_s {
            return fail(
                "PARLEY_ACCESS_TTL_S / PARLEY_REFRESH_TTL_S",
                "access TTL must be positive and shorter than the refresh TTL",
            );
        }
        if self.auth.refresh_family_max_age_s == 0 {
            return fail(
                "PARLEY_REFRESH_FAMILY_MAX_AGE_S",
                "a login's refresh tokens must live at least 1 second",
            );
        }
        if self.auth.refresh_reuse_grace_s > 60 {
            return fail(
                "PARLEY_REFRESH_REUSE_GRACE_S",
                "at most 60 seconds: within it a stolen refresh token goes unnoticed",
            );
        }
        if self.ws.max_frame_bytes < 1024 || self.ws.heartbeat_ms < 100 || self.ws.outbox == 0 {
            return fail(
                "PARLEY_WS_*",
                "max frame at least 1024 bytes, heartbeat at least 100 ms, outbox at least 1",
            );
        }
        let origins = [
            (
                "PARLEY_WS_ALLOWED_ORIGINS",
                &self.ws.allowed_origins,
                "; `*` allows any",
            ),
            ("PARLEY_CORS_ORIGINS", &self.http.cors_origins, ""),
        ];
        for (var, list, star) in origins {
            let may_be_any = !star.is_empty();
            if let Some(bad) = list
                .iter()
                .find(|o| !(is_origin(o) || (o.as_str() == "*" && may_be_any)))
            {
                return fail(
                    var,
                    &format!(
                        "`{bad}` is not an origin: write scheme://host[:port] with no path, \
                         as in `https://chat.example.com`{star}"
                    ),
                );
            }
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return fail(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            );
        }
        if let Some(url) = &self.redis.url {
            let schemes = [
                "redis://",
                "rediss://",
                "redis-cluster://",
                "redis-sentinel://",
            ];
            if !schemes.iter().any(|s| url.starts_with(s)) {
                return fail(
                    "REDIS_URL",
                    "must start with redis://, rediss://, redis-cluster:// or redis-sentinel://",
                );
            }
        }
        Ok(())
    }

    /// `[push]`: timings within bounds, a VAPID key of the right form, a
    /// subject push services accept, `host:port` allow-list entries.
    fn validate_push(&self) -> Result<(), ConfigError> {
        let fail = |var: &str, what: &str| Err(ConfigError(format!("{var}: {what}")));
        let push = &self.push;
        if push.lease_ms < 200 || push.poll_ms < 10 || push.retry_base_ms == 0 {
            return fail(
                "PARLEY_PUSH_*",
                "lease at least 200 ms, poll at least 10 ms, retry base at least 1 ms",
            );
        }
        if push.ttl_s == 0 || push.delay_ms > 86_400_000 {
            return fail(
                "PARLEY_PUSH_TTL_S / PARLEY_PUSH_DELAY_MS",
                "TTL at least 1 second, delay at most a day",
            );
        }
        if let Some(key) = push.vapid_key() {
            use base64::Engine;
            let decoded =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key.trim_end_matches('='));
            if decoded.map(|k| k.len()) != Ok(32) {
                return fail(
                    "PARLEY_PUSH_VAPID_PRIVATE_KEY",
                    "must be the base64url of a 32-byte P-256 private key (docs/push.md shows how to make one)",
                );
            }
        }
        let subject = &push.vapid_subject;
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return fail(
                "PARLEY_PUSH_VAPID_SUBJECT",
                "must be a mailto: or https: URL push services can reach you at",
            );
        }
        if let Some(bad) = push.allow_hosts.iter().find(|h| {
            h.rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        }) {
            return fail(
                "PARLEY_PUSH_ALLOW_HOSTS",
                &format!("`{bad}` is not host:port, as in `push.internal:8443`"),
            );
        }
        Ok(())
    }
}

/// `scheme://host[:port]` as browsers send it in `Origin`: http or https,
/// a host, no path, no trailing slash.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', ' ', '@'])
}

/// Parses `PARLEY_LOG` as the subscriber uses it. Field values are matched
/// as plain text, never compiled as regexes: a value's regex becomes a DFA
/// whose size can explode (the `config` fuzz target found a 120-byte filter
/// that took more than 10 s to parse), and no parley span field needs one.
pub fn log_filter(
    filter: &str,
) -> Result<tracing_subscriber::EnvFilter, tracing_subscriber::filter::ParseError> {
    tracing_subscriber::EnvFilter::builder()
        .with_regex(false)
        .parse(filter)
}

/// Turns a raw variable into a typed figment value: lists split on commas,
/// everything else parsed as TOML where it can be (numbers, booleans) and
/// kept as a string otherwise.
fn env_value(var: &str, raw: &str) -> figment::value::Value {
    use figment::value::Value;
    if LIST_VARS.contains(&var) {
        let items: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        return Value::from(items);
    }
    // figment unescapes quoted strings by character index used as a byte
    // index, and panics on a backslash after a non-ASCII character; no
    // number, boolean or quoted setting needs more than ASCII, so
    // non-ASCII text is taken as it is.
    if TEXT_VARS.contains(&var) || !raw.is_ascii() {
        return Value::from(raw.to_owned());
    }
    raw.parse::<figment::value::Value>()
        .ok()
        .filter(|v| !matches!(v, Value::Dict(..) | Value::Array(..)))
        .unwrap_or_else(|| Value::from(raw.to_owned()))
}

/// Names the environment variable behind a failing key, so the message
/// says `PARLEY_RATE_API_PER_MIN` rather than `rate.api_per_min`.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            // A list item's path ends in its index: `http.trusted_proxies.0`.
            let setting = e
                .path
                .iter()
                .take_while(|segment| segment.parse::<usize>().is_err())
                .cloned()
                .collect::<Vec<_>>()
                .join(".");
            let var = ENV_VARS
                .iter()
                .find(|(_, k)| *k == setting)
                .map(|(v, _)| *v)
                .unwrap_or("");
            let kind = e.kind.to_string();
            if var.is_empty() {
                format!("{key}: {kind}")
            } else {
                format!("{var} ({key}): {kind}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    /// Why the settings `pairs` make are refused.
    fn refused(pairs: &[(&str, &str)]) -> String {
        match Settings::from_env(env(pairs)) {
            Ok(_) => panic!("{pairs:?} were accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_match_the_wire_contract() {
        let s = Settings::from_env(env(&[])).unwrap();
        assert_eq!(s.http.addr.to_string(), "0.0.0.0:8080");
        assert_eq!(s.http.admin_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(s.rate.api_per_min.get(), 100);
        assert_eq!(s.rate.auth_per_min.get(), 5);
        assert_eq!(s.rate.ws_msgs_per_s.get(), 50);
        assert_eq!(s.rate.ws_user_msgs_per_s.get(), 100);
        assert_eq!(s.ws.conns_per_user.get(), 100);
        assert_eq!(s.ws.conns_per_ip.get(), 1000);
        assert_eq!(s.drain.timeout_s, 30);
        assert_eq!(s.redis.cluster_pubsub, ClusterPubSub::Sharded);
        assert!(s.database.url.is_none());
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::from_env(env(&[
            ("PARLEY_HTTP_ADDR", "127.0.0.1:0"),
            ("PARLEY_RATE_API_PER_MIN", "7"),
            ("PARLEY_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            ("PARLEY_LOG_FORMAT", "json"),
            ("PARLEY_INSTANCE_ID", "12345"),
            ("PARLEY_REDIS_CLUSTER_PUBSUB", "classic"),
        ]))
        .unwrap();
        assert_eq!(s.http.addr.port(), 0);
        assert_eq!(s.rate.api_per_min.get(), 7);
        assert_eq!(s.http.trusted_proxies.len(), 2);
        assert_eq!(s.log.format, Some(LogFormat::Json));
        assert_eq!(s.instance_id.as_deref(), Some("12345"));
        assert_eq!(s.redis.cluster_pubsub, ClusterPubSub::Classic);
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = refused(&[("PARLEY_RATE_API_PER_MIN", "lots")]);
        assert!(err.contains("PARLEY_RATE_API_PER_MIN"), "{err}");
        let err = refused(&[("PARLEY_RATE_API_PER_MIN", "0")]);
        assert!(err.contains("nonzero"), "{err}");
        let err = refused(&[("PARLEY_LOG_FORMAT", "xml")]);
        assert!(
            err.contains("PARLEY_LOG_FORMAT") && err.contains("json"),
            "{err}"
        );
        let err = refused(&[("PARLEY_REDIS_CLUSTER_PUBSUB", "spublish")]);
        assert!(
            err.contains("PARLEY_REDIS_CLUSTER_PUBSUB") && err.contains("sharded"),
            "{err}"
        );
        let err = refused(&[("PARLEY_TRUSTED_PROXIES", "10.0.0.1,nope")]);
        assert!(err.contains("PARLEY_TRUSTED_PROXIES"), "{err}");
        let err = refused(&[("PARLEY_LOG", "parley=loud")]);
        assert!(err.contains("PARLEY_LOG"), "{err}");
        let err = refused(&[("DATABASE_URL", "mysql://x")]);
        assert!(err.contains("DATABASE_URL"), "{err}");
        let err = refused(&[("PARLEY_REFRESH_REUSE_GRACE_S", "61")]);
        assert!(err.contains("PARLEY_REFRESH_REUSE_GRACE_S"), "{err}");
    }

    #[test]
    fn trusted_proxies_take_addresses_and_cidr_ranges() {
        let s = Settings::from_env(env(&[(
            "PARLEY_TRUSTED_PROXIES",
            "10.0.0.0/8, 192.168.1.7, fd00::/8, 172.16.5.9/12",
        )]))
        .unwrap();
        let trusted = &s.http.trusted_proxies;
        let has = |ip: &str| trusted.iter().any(|r| r.contains(ip.parse().unwrap()));
        assert!(has("10.200.3.4") && has("192.168.1.7") && has("fd12::1"));
        assert!(has("172.31.0.1"), "host bits are ignored: 172.16.0.0/12");
        assert!(has("::ffff:10.0.0.1"), "IPv4 seen as IPv6");
        assert!(!has("192.168.1.8") && !has("11.0.0.1") && !has("fe80::1"));
        for bad in [
            "10.0.0.0/33",
            "ingress-nginx",
            "10.0.0.1-10.0.0.9",
            "10.0.0/8",
        ] {
            let err = refused(&[("PARLEY_TRUSTED_PROXIES", bad)]);
            assert!(
                err.contains("PARLEY_TRUSTED_PROXIES") && err.contains(bad),
                "{err}"
            );
        }
    }

    #[test]
    fn origins_must_be_origins() {
        let ok = Settings::from_env(env(&[
            ("PARLEY_WS_ALLOWED_ORIGINS", "*,https://a.example:8443"),
            ("PARLEY_CORS_ORIGINS", "http://localhost:3000"),
        ]));
        assert!(ok.is_ok(), "{ok:?}");
        for (var, bad) in [
            ("PARLEY_WS_ALLOWED_ORIGINS", "https://a.example/"),
            ("PARLEY_WS_ALLOWED_ORIGINS", "a.example"),
            ("PARLEY_CORS_ORIGINS", "*"),
        ] {
            let err = refused(&[(var, bad)]);
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let s = Settings::from_env(env(&[("DATABASE_URL", "postgres://u:hunter2@db/p")])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn push_settings_are_checked_and_name_their_variable() {
        let s = Settings::from_env(Vec::new()).unwrap();
        assert_eq!((s.push.delay_ms, s.push.vapid_key()), (2000, None));
        let key = "4fV9Jr8W4X1Z2QbXo1q3dZ6yqgYbR7y2kq8m3tB6Zx0";
        let s = Settings::from_env(env(&[
            ("PARLEY_PUSH_VAPID_PRIVATE_KEY", key),
            ("PARLEY_PUSH_ALLOW_HOSTS", "push.internal:8443, 127.0.0.1:9"),
        ]))
        .unwrap();
        assert_eq!(s.push.vapid_key(), Some(key));
        assert_eq!(s.push.allow_hosts, ["push.internal:8443", "127.0.0.1:9"]);
        // Empty is unset (compose passes an unset variable as empty).
        let s = Settings::from_env(env(&[("PARLEY_PUSH_VAPID_PRIVATE_KEY", "")])).unwrap();
        assert_eq!(s.push.vapid_key(), None);
        for (var, value) in [
            ("PARLEY_PUSH_VAPID_PRIVATE_KEY", "c2hvcnQ"),
            ("PARLEY_PUSH_ALLOW_HOSTS", "push.internal"),
            ("PARLEY_PUSH_VAPID_SUBJECT", "ops@example.com"),
            ("PARLEY_PUSH_LEASE_MS", "10"),
        ] {
            let err = refused(&[(var, value)]);
            assert!(err.contains("PARLEY_PUSH_"), "{var}: {err}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let dir = std::env::temp_dir().join(format!("parley-cfg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("parley.toml");
        std::fs::write(&path, "[http]\nadr = \"127.0.0.1:1\"\n").unwrap();
        let err = refused(&[("PARLEY_CONFIG", path.to_str().unwrap())]);
        assert!(err.contains("adr"), "{err}");
        std::fs::write(&path, "[rate]\napi_per_min = 9\n").unwrap();
        let s = Settings::from_env(env(&[("PARLEY_CONFIG", path.to_str().unwrap())])).unwrap();
        assert_eq!(s.rate.api_per_min.get(), 9);
    }
}
