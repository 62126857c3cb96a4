//! Probes for load balancers and Kubernetes, served on both listeners.
//!
//! Liveness says the process serves; readiness says it should get traffic
//! (dependencies usable, not draining); startup says migrations ran and
//! actors are up. Dependencies are asked through their actors
//! (`parley_actors::dependency`): checks are bounded, so a hung database
//! never hangs a probe, and shared, so probes never pile queries on it.

use crate::infra::redis::{ClusterInfo, Redis};
use crate::observability::lifecycle::Lifecycle;
use crate::observability::version;
use crate::service::Services;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// What the probes read beside the services: this instance's lifecycle
/// flags and the Redis connection (for `INFO`).
pub struct Probes {
    pub lifecycle: Arc<Lifecycle>,
    pub redis: Option<Arc<Redis>>,
}

/// How long one dependency check may take before it counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A dependency check this recent answers a probe without a new one.
const FRESH: Duration = Duration::from_secs(1);

/// Which listener a probe is answered on. The public one is reachable by
/// anyone: it tells each component's state, never raw errors (which name
/// hosts and ports) or Redis's `INFO` (versions, memory, clients); the
/// admin listener tells all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    Public,
    Admin,
}

impl Exposure {
    /// The listener `req` came in on; public when unsure.
    fn of(req: &HttpRequest) -> Self {
        req.app_data::<Exposure>()
            .copied()
            .unwrap_or(Exposure::Public)
    }

    /// What this listener may show of `error`.
    fn error(self, error: Option<String>) -> Option<String> {
        match self {
            Exposure::Admin => error,
            Exposure::Public => None,
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig, exposure: Exposure) {
    cfg.app_data(exposure)
        .route("/healthz", web::get().to(live))
        .route("/healthz/live", web::get().to(live))
        .route("/readyz", web::get().to(ready))
        .route("/healthz/ready", web::get().to(ready))
        .route("/health/startup", web::get().to(startup))
        .route("/health/version", web::get().to(version_info))
        .route("/health/db-stats", web::get().to(db_stats))
        .route("/health/redis-stats", web::get().to(redis_stats));
}

#[derive(Serialize, ToSchema)]
pub struct Liveness {
    pub status: &'static str,
    pub instance: String,
}

/// One dependency's state: `ok`, `degraded` (usable, impaired), `down` or `disabled`.
#[derive(Serialize, ToSchema)]
pub struct Component {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub instance: String,
    pub draining: bool,
    pub database: Component,
    pub redis: Component,
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Liveness)))]
pub async fn live(state: web::Data<Services>) -> HttpResponse {
    HttpResponse::Ok().json(Liveness {
        status: "ok",
        instance: state.instance_id.to_string(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, description = "a required dependency is down, or the instance is draining", body = Readiness)))]
pub async fn ready(
    req: HttpRequest,
    state: web::Data<Services>,
    probes: web::Data<Probes>,
) -> HttpResponse {
    let exposure = Exposure::of(&req);
    let database = check_database(&state, exposure).await;
    let redis = check_redis(&state, exposure).await;
    let draining = probes.lifecycle.draining();
    let is_ready = !draining && database.status == "ok" && probes.lifecycle.started();
    let body = Readiness {
        status: if is_ready { "ok" } else { "unavailable" },
        instance: state.instance_id.to_string(),
        draining,
        database,
        redis,
    };
    if is_ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// From the database actor: a check younger than [`FRESH`] is reused, so
/// probes from several load balancers cost the database one query.
async fn check_database(state: &Services, exposure: Exposure) -> Component {
    let Some(database) = state.engine.dependency("database") else {
        // The embedded store lives in this process: up while it is.
        return Component {
            status: "ok",
            backend: Some(state.store.backend()),
            latency_ms: Some(0.0),
            error: None,
        };
    };
    let health = database.check(FRESH).await;
    Component {
        status: if health.is_up() { "ok" } else { "down" },
        backend: Some(state.store.backend()),
        latency_ms: Some(health.latency.as_secs_f64() * 1000.0),
        error: exposure.error(health.error),
    }
}

#[utoipa::path(get, path = "/health/startup", tag = "health",
    responses((status = 200, body = Liveness), (status = 503, body = Liveness)))]
pub async fn startup(state: web::Data<Services>, probes: web::Data<Probes>) -> HttpResponse {
    let body = |status| Liveness {
        status,
        instance: state.instance_id.to_string(),
    };
    if probes.lifecycle.started() {
        HttpResponse::Ok().json(body("ok"))
    } else {
        HttpResponse::ServiceUnavailable().json(body("starting"))
    }
}

#[utoipa::path(get, path = "/health/version", tag = "health",
    responses((status = 200, body = version::VersionInfo)))]
pub async fn version_info() -> HttpResponse {
    HttpResponse::Ok().json(version::current())
}

/// The store's backend and, for PostgreSQL, its pool.
#[derive(Serialize, ToSchema)]
pub struct DbStats {
    pub backend: &'static str,
    pub pool: Option<crate::store::PoolStats>,
}

#[utoipa::path(get, path = "/health/db-stats", tag = "health", responses((status = 200, body = DbStats)))]
pub async fn db_stats(state: web::Data<Services>) -> HttpResponse {
    HttpResponse::Ok().json(DbStats {
        backend: state.store.backend(),
        pool: state.store.pool_stats(),
    })
}

/// Redis (when configured) is never required: unreachable is `degraded`,
/// and the instance stays ready (local fan-out, per-instance limits).
async fn check_redis(state: &Services, exposure: Exposure) -> Component {
    let Some(cache) = state.engine.dependency("cache") else {
        return Component {
            status: "disabled",
            backend: None,
            latency_ms: None,
            error: None,
        };
    };
    let health = cache.check(FRESH).await;
    Component {
        status: if health.is_up() { "ok" } else { "degraded" },
        backend: Some("redis"),
        latency_ms: Some(health.latency.as_secs_f64() * 1000.0),
        error: exposure.error(health.error),
    }
}

/// Redis's state and, on the admin listener only, a few `INFO` fields;
/// `disabled` without `REDIS_URL`.
#[derive(Serialize, ToSchema)]
pub struct RedisStats {
    #[serde(flatten)]
    pub component: Component,
    /// `INFO` fields (version, role, clients, memory, hits, channels), on
    /// the admin listener only; absent when Redis is disabled or did not
    /// answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub info: Option<serde_json::Value>,
    /// On a Redis Cluster (`redis-cluster://`), on the admin listener only:
    /// its state, slots served, nodes, and this instance's masters and
    /// shard channels; absent otherwise or when no node answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
}

#[utoipa::path(get, path = "/health/redis-stats", tag = "health", responses((status = 200, body = RedisStats)))]
pub async fn redis_stats(
    req: HttpRequest,
    state: web::Data<Services>,
    probes: web::Data<Probes>,
) -> HttpResponse {
    let exposure = Exposure::of(&req);
    let component = check_redis(&state, exposure).await;
    let (info, cluster) = match (&probes.redis, exposure) {
        (Some(redis), Exposure::Admin) => {
            (redis.stats().await.ok(), redis.cluster_info().await.ok())
        }
        _ => (None, None),
    };
    HttpResponse::Ok().json(RedisStats {
        component,
        info,
        cluster,
    })
}
