//! The admin listener's own routes (`PARLEY_ADMIN_ADDR`, never public);
//! `POST /admin/drain` is the composition root's (`app::drain`).

use crate::http::error::ApiError;
use crate::http::health::Probes;
use crate::infra::breaker::Breakers;
use crate::service::Services;
use actix_web::{HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/circuit-breakers", web::get().to(circuit_breakers))
        .route(
            "/admin/circuit-breakers/{name}/reset",
            web::post().to(reset_circuit_breaker),
        )
        .route("/admin/reports", web::get().to(super::reports::admin_list))
        .route("/admin/retention/purge", web::post().to(purge_now))
        .configure(super::webhooks::configure)
        .configure(super::api_keys::configure)
        .route("/metrics", web::get().to(metrics));
}

/// Runs a retention purge pass now, on this instance, and answers what it
/// did (`{rooms, events}`): after lowering a room's retention, rather than
/// waiting for the next interval. Counted like a scheduled pass.
pub async fn purge_now(state: web::Data<Services>) -> Result<HttpResponse, ApiError> {
    let report = crate::service::retention::run_pass(
        state.store.as_ref(),
        &state.metrics.retention,
        crate::service::retention::Pace::from_settings(&state.settings.retention),
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Every circuit breaker: state, recent failures, trips, time left open.
pub async fn circuit_breakers(breakers: web::Data<Breakers>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "breakers": breakers.snapshots() }))
}

/// Closes a breaker by hand, e.g. once an operator knows the dependency is
/// back and does not want to wait for the recovery probe.
pub async fn reset_circuit_breaker(
    breakers: web::Data<Breakers>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let breaker = breakers
        .get(&name)
        .ok_or_else(|| ApiError::not_found("circuit breaker"))?;
    breaker.reset();
    Ok(HttpResponse::Ok().json(breaker.snapshot()))
}

/// Prometheus text format.
pub async fn metrics(state: web::Data<Services>, probes: web::Data<Probes>) -> HttpResponse {
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
        .set(i64::from(probes.lifecycle.draining()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
