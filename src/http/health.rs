//! Probes for load balancers and Kubernetes, served on both listeners.
//!
//! Liveness says the process serves; readiness says it should get traffic
//! (dependencies usable, not draining); startup says migrations ran and
//! actors are up. Dependency checks have short timeouts so a hung database
//! never hangs a probe.

use crate::http::AppState;
use crate::version;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// How long readiness waits for a dependency before calling it down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(live))
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
pub async fn live(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Liveness {
        status: "ok",
        instance: state.instance_id.to_string(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, description = "a required dependency is down, or the instance is draining", body = Readiness)))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = check_database(&state).await;
    let redis = check_redis(&state).await;
    let draining = state.lifecycle.draining();
    let is_ready = !draining && database.status == "ok" && state.lifecycle.started();
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

async fn check_database(state: &AppState) -> Component {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await;
    let latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let (status, error) = match outcome {
        Ok(Ok(())) => ("ok", None),
        Ok(Err(e)) => ("down", Some(store_error(&e))),
        Err(_) => ("down", Some(format!("no answer within {CHECK_TIMEOUT:?}"))),
    };
    if state.store.backend() == "postgres" {
        state
            .metrics
            .dependency_up
            .with_label_values(&["postgres"])
            .set(i64::from(status == "ok"));
    }
    Component {
        status,
        backend: Some(state.store.backend()),
        latency_ms,
        error,
    }
}

/// The cause chain, for the operator reading the probe (the store's errors
/// never hold the URL or its password).
fn store_error(e: &crate::store::StoreError) -> String {
    match e {
        crate::store::StoreError::Unavailable(source) => format!("{source:#}"),
        other => other.to_string(),
    }
}

#[utoipa::path(get, path = "/health/startup", tag = "health",
    responses((status = 200, body = Liveness), (status = 503, body = Liveness)))]
pub async fn startup(state: web::Data<AppState>) -> HttpResponse {
    let body = |status| Liveness {
        status,
        instance: state.instance_id.to_string(),
    };
    if state.lifecycle.started() {
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
pub async fn db_stats(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(DbStats {
        backend: state.store.backend(),
        pool: state.store.pool_stats(),
    })
}

/// Redis (when configured) is never required: unreachable is `degraded`,
/// and the instance stays ready (local fan-out, per-instance limits).
async fn check_redis(state: &AppState) -> Component {
    let Some(redis) = &state.redis else {
        return Component {
            status: "disabled",
            backend: None,
            latency_ms: None,
            error: None,
        };
    };
    let health = redis.health().await;
    state
        .metrics
        .dependency_up
        .with_label_values(&["redis"])
        .set(i64::from(health.connected));
    Component {
        status: if health.connected { "ok" } else { "degraded" },
        backend: Some("redis"),
        latency_ms: Some(health.latency.as_secs_f64() * 1000.0),
        error: health.error.or_else(|| {
            (!health.connected).then(|| "the pub/sub connection is down; reconnecting".into())
        }),
    }
}

/// Redis's state and a few `INFO` fields; `disabled` without `REDIS_URL`.
#[derive(Serialize, ToSchema)]
pub struct RedisStats {
    #[serde(flatten)]
    pub component: Component,
    /// `INFO` fields (version, role, clients, memory, hits, channels).
    #[schema(value_type = Object)]
    pub info: Option<serde_json::Value>,
}

#[utoipa::path(get, path = "/health/redis-stats", tag = "health", responses((status = 200, body = RedisStats)))]
pub async fn redis_stats(state: web::Data<AppState>) -> HttpResponse {
    let component = check_redis(&state).await;
    let info = match &state.redis {
        Some(redis) => redis.stats().await.ok(),
        None => None,
    };
    HttpResponse::Ok().json(RedisStats { component, info })
}
