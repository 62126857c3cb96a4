//! The Redis connections, when `REDIS_URL` is set.
//!
//! Two fred clients: one for commands (publish, presence, rate limits,
//! cache) and one subscriber for the bus. Both reconnect by themselves with
//! exponential backoff and jitter, forever; commands fail fast while Redis is
//! unreachable instead of queueing, so every caller can fall back (local
//! fan-out, per-instance rate limits, the database for cached reads). Redis
//! is never required: parley starts, serves and stays ready without it, and
//! reports it `degraded`.
//!
//! `REDIS_URL` schemes are fred's: `redis://`, `redis-cluster://` and
//! `redis-sentinel://HOST:PORT/DB?sentinelServiceName=NAME&node=HOST2:PORT2`.

use crate::config::RedisSettings;
use crate::infra::breaker::Breaker;
use anyhow::Context as _;
use fred::clients::SubscriberClient;
use fred::interfaces::ClusterInterface as _;
use fred::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long start-up waits for the first connection before going on
/// degraded (the clients keep trying in the background).
const STARTUP_WAIT: Duration = Duration::from_secs(3);
/// A command not answered in this time fails; callers fall back.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1000);
/// The health probe's own, shorter deadline.
const PING_TIMEOUT: Duration = Duration::from_millis(500);

pub struct Redis {
    pub client: Client,
    pub subscriber: SubscriberClient,
    prefix: String,
    /// Guards the request path's calls (cache, rate limits): after repeated
    /// failures they stop waiting on Redis and fall back at once.
    breaker: Arc<Breaker>,
}

/// What the health probe reports about Redis.
pub struct RedisHealth {
    pub connected: bool,
    pub latency: Duration,
    pub error: Option<String>,
}

/// A Redis Cluster as `/health/redis-stats` reports it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ClusterInfo {
    /// `cluster_state`: `ok`, or `fail` while some slot has no master.
    pub state: String,
    /// Slots served (16384 when every slot has a master).
    pub slots_ok: u32,
    /// Nodes the answering node knows, masters and replicas.
    pub known_nodes: u32,
    /// Masters owning slots in this instance's routing table.
    pub masters: usize,
    /// Shard channels this instance's bus subscribes to.
    pub shard_channels: usize,
}

impl Redis {
    /// Builds both clients and starts connecting. Returns once connected, or
    /// after [`STARTUP_WAIT`] with the clients still retrying.
    pub async fn connect(
        url: &str,
        settings: &RedisSettings,
        breaker: Arc<Breaker>,
    ) -> anyhow::Result<Arc<Self>> {
        let mut config =
            Config::from_url(url).context("REDIS_URL: not a Redis URL fred accepts")?;
        config.fail_fast = true;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
                c.max_command_attempts = 2;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
                // Bus messages wait here between the socket and the router
                // task; a lagging router loses messages, which rooms refill
                // from the database.
                p.broadcast_channel_capacity = 16_384;
            })
            // Unlimited attempts, 100 ms doubling to 2 s; fred adds jitter.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        let client = builder.build().context("building the Redis client")?;
        let subscriber = builder
            .build_subscriber_client()
            .context("building the Redis subscriber")?;
        client.connect();
        subscriber.connect();
        let both = async {
            client.wait_for_connect().await?;
            subscriber.wait_for_connect().await
        };
        match tokio::time::timeout(STARTUP_WAIT, both).await {
            Ok(Ok(())) => tracing::info!("connected to Redis"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Redis is not reachable yet; serving degraded and retrying")
            }
            Err(_) => tracing::warn!(
                wait = ?STARTUP_WAIT,
                "Redis did not answer in time; serving degraded and retrying"
            ),
        }
        Ok(Arc::new(Self {
            client,
            subscriber,
            prefix: settings.prefix.clone(),
            breaker,
        }))
    }

    /// `prefix` + `name`: every key and channel goes through here, so
    /// deployments and test runs sharing one Redis never collide.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs one request-path call through the circuit breaker with a
    /// deadline. `Err` (described) when the breaker is open, the call fails
    /// or it is late: the caller falls back.
    pub async fn call<T, E: std::fmt::Display>(
        &self,
        deadline: Duration,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        let permit = self.breaker.acquire().map_err(|open| open.to_string())?;
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
            Ok(Err(e)) => {
                let why = e.to_string();
                permit.failure(&why);
                Err(why)
            }
            Err(_) => {
                let why = format!("no answer within {deadline:?}");
                permit.failure(&why);
                Err(why)
            }
        }
    }

    pub async fn health(&self) -> RedisHealth {
        let started = Instant::now();
        let ping = tokio::time::timeout(PING_TIMEOUT, self.client.ping::<String>(None)).await;
        let mut error = match ping {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {PING_TIMEOUT:?}")),
        };
        // A cluster answering PING may still have slots no master serves.
        if error.is_none() && self.is_cluster() {
            error = match self.cluster_info().await {
                Ok(info) if info.state == "ok" => None,
                Ok(info) => Some(format!("cluster_state:{}", info.state)),
                Err(e) => Some(e),
            };
        }
        RedisHealth {
            connected: error.is_none() && self.subscriber.is_connected(),
            latency: started.elapsed(),
            error,
        }
    }

    /// Whether `REDIS_URL` names a Redis Cluster (`redis-cluster://`).
    pub fn is_cluster(&self) -> bool {
        self.client.is_clustered()
    }

    /// A few `INFO` fields an operator looks at first.
    pub async fn stats(&self) -> Result<serde_json::Value, String> {
        let info: String = tokio::time::timeout(PING_TIMEOUT, self.client.info(None))
            .await
            .map_err(|_| "no answer".to_owned())?
            .map_err(|e| e.to_string())?;
        const FIELDS: &[&str] = &[
            "redis_version",
            "role",
            "connected_clients",
            "used_memory",
            "used_memory_peak",
            "maxmemory",
            "evicted_keys",
            "keyspace_hits",
            "keyspace_misses",
            "pubsub_channels",
            "instantaneous_ops_per_sec",
            "uptime_in_seconds",
        ];
        let map: serde_json::Map<String, serde_json::Value> = info
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(k, _)| FIELDS.contains(k))
            .map(|(k, v)| {
                let value = v
                    .trim()
                    .parse::<i64>()
                    .map_or_else(|_| v.trim().into(), serde_json::Value::from);
                (k.to_owned(), value)
            })
            .collect();
        Ok(map.into())
    }

    /// `CLUSTER INFO` as one node sees it, with the masters and shard
    /// channels of this instance's subscriber. `Err` off a cluster too.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, String> {
        if !self.is_cluster() {
            return Err("not a Redis Cluster".into());
        }
        let info: String = tokio::time::timeout(PING_TIMEOUT, self.client.cluster_info())
            .await
            .map_err(|_| "no answer".to_owned())?
            .map_err(|e| e.to_string())?;
        let field = |name: &str| {
            info.lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        Ok(ClusterInfo {
            state: field("cluster_state"),
            slots_ok: field("cluster_slots_ok").parse().unwrap_or(0),
            known_nodes: field("cluster_known_nodes").parse().unwrap_or(0),
            masters: self.subscriber.num_primary_cluster_nodes(),
            shard_channels: self.subscriber.tracked_shard_channels().len(),
        })
    }

    /// Closes both connections (end of drain).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(PING_TIMEOUT, self.subscriber.quit()).await;
        let _ = tokio::time::timeout(PING_TIMEOUT, self.client.quit()).await;
    }
}

/// Redis as its cache actor sees it: up when a `PING` answers and the
/// pub/sub connection is open. fred reconnects both clients by itself; the
/// actor's checks tell when that worked.
#[async_trait::async_trait]
impl parley_actors::ports::Dependency for Redis {
    async fn check(&self) -> Result<(), String> {
        let health = self.health().await;
        match health.error {
            Some(error) => Err(error),
            None if !health.connected => Err("the pub/sub connection is down; reconnecting".into()),
            None => Ok(()),
        }
    }

    async fn close(&self) {
        Redis::close(self).await;
    }
}
