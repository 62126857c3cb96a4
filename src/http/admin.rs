//! The admin listener's own routes (`PARLEY_ADMIN_ADDR`, never public).

use crate::drain::{self, DrainReport};
use crate::error::ApiError;
use crate::http::AppState;
use actix_web::{HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/drain", web::post().to(start_drain))
        .route("/admin/circuit-breakers", web::get().to(circuit_breakers))
        .route(
            "/admin/circuit-breakers/{name}/reset",
            web::post().to(reset_circuit_breaker),
        )
        .route("/metrics", web::get().to(metrics));
}

/// Begins the drain and answers when it finished or its deadline passed:
/// a Kubernetes `preStop` hook. Calling it again waits for the same drain.
#[utoipa::path(post, path = "/admin/drain", tag = "admin",
    responses((status = 200, description = "the drain finished (or hit PARLEY_DRAIN_TIMEOUT_S; see `completed`)", body = DrainReport)))]
pub async fn start_drain(state: web::Data<AppState>) -> HttpResponse {
    let report = drain::drain(&state).await;
    HttpResponse::Ok().json(report)
}

/// Every circuit breaker: state, recent failures, trips, time left open.
pub async fn circuit_breakers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "breakers": state.breakers.snapshots() }))
}

/// Closes a breaker by hand, e.g. once an operator knows the dependency is
/// back and does not want to wait for the recovery probe.
pub async fn reset_circuit_breaker(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let breaker = state
        .breakers
        .get(&name)
        .ok_or_else(|| ApiError::not_found("circuit breaker"))?;
    breaker.reset();
    Ok(HttpResponse::Ok().json(breaker.snapshot()))
}

/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Some(pool) = state.store.pool_stats() {
        let gauges = &state.metrics.db_pool;
        gauges.with_label_values(&["size"]).set(pool.size as i64);
        gauges
            .with_label_values(&["available"])
            .set(pool.available as i64);
        gauges
            .with_label_values(&["waiting"])
            .set(pool.waiting as i64);
    }
    state
        .metrics
        .draining
        .set(i64::from(state.lifecycle.draining()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
