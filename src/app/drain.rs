//! The drain: how an instance leaves service without losing anything.
//!
//! One sequence, run at most once, whoever asks first (`SIGTERM`, `SIGINT`
//! or `POST /admin/drain`); later callers wait for the same outcome:
//!
//! 1. readiness turns 503 (liveness stays 200), so the load balancer stops
//!    sending new work; after `PARLEY_DRAIN_GRACE_MS` for that to propagate,
//! 2. new requests and WebSocket upgrades are refused with 503 +
//!    `Retry-After` (`http::middleware::drain_gate`);
//! 3. every WebSocket session answers the publishes it has in flight, then
//!    sends `reconnect` with a jittered `retry_after_ms` and closes with
//!    1012; sessions are told over a few seconds so the other instances are
//!    not stampeded;
//! 4. the writers finish: every received publish is committed and acked,
//!    or answered with an error.
//!
//! The listeners then stop (in-flight HTTP requests complete) and the
//! process exits; see `startup::Application::run_until_stopped`.
//!
//! The flags the probes read are `observability::Lifecycle`; this module
//! owns the sequence and its one report.

use super::AppState;
use actix_web::{HttpResponse, web};
use parley_actors::hub::messages::{DrainAll, SessionCount};
use serde::Serialize;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// What a finished drain reports (`POST /admin/drain` answers it).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DrainReport {
    /// WebSocket sessions told to reconnect.
    pub sessions_told: usize,
    /// Sessions still open when the drain ended (0 unless the deadline hit).
    pub sessions_left: usize,
    /// Whether every step finished before `PARLEY_DRAIN_TIMEOUT_S`.
    pub completed: bool,
    pub took_ms: u64,
}

/// Runs the drain once; concurrent and later callers get the same report.
pub async fn drain(state: &AppState) -> DrainReport {
    state
        .drained
        .get_or_init(|| run(state.clone()))
        .await
        .clone()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/drain", web::post().to(start_drain));
}

/// Begins the drain and answers when it finished or its deadline passed:
/// a Kubernetes `preStop` hook. Calling it again waits for the same drain.
#[utoipa::path(post, path = "/admin/drain", tag = "admin",
    responses((status = 200, description = "the drain finished (or hit PARLEY_DRAIN_TIMEOUT_S; see `completed`)", body = DrainReport)))]
pub async fn start_drain(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(drain(&state).await)
}

async fn run(state: AppState) -> DrainReport {
    let started = Instant::now();
    let deadline = Duration::from_secs(state.services.settings.drain.timeout_s);
    tracing::info!(
        timeout_s = deadline.as_secs(),
        "drain: started; readiness is now 503"
    );
    state.lifecycle().begin_drain();
    let grace = Duration::from_millis(state.services.settings.drain.grace_ms);
    tokio::time::sleep(grace).await;
    state.lifecycle().refuse_new_work();
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        "drain: refusing new requests"
    );

    let steps = async {
        let sessions_told = tell_sessions(&state).await;
        let step = Instant::now();
        wait_for_sessions(&state).await;
        tracing::info!(
            sessions_told,
            took_ms = step.elapsed().as_millis() as u64,
            "drain: WebSocket sessions closed"
        );
        let step = Instant::now();
        state.services.engine.writers.when_idle().await;
        tracing::info!(
            took_ms = step.elapsed().as_millis() as u64,
            "drain: writers flushed"
        );
        sessions_told
    };
    let outcome = tokio::time::timeout(deadline.saturating_sub(grace), steps).await;
    let sessions_left = state
        .services
        .engine
        .hub
        .send(SessionCount)
        .await
        .unwrap_or(0);
    let report = DrainReport {
        sessions_told: *outcome.as_ref().unwrap_or(&sessions_left),
        sessions_left,
        completed: outcome.is_ok(),
        took_ms: started.elapsed().as_millis() as u64,
    };
    if report.completed {
        tracing::info!(took_ms = report.took_ms, "drain: finished");
    } else {
        tracing::warn!(
            took_ms = report.took_ms,
            sessions_left,
            "drain: deadline passed before every step finished"
        );
    }
    report
}

/// Tells every session to drain, spread over up to 5 s: each one answers
/// its in-flight publishes, then sends `reconnect` with its own jittered
/// `retry_after_ms` and closes with 1012.
async fn tell_sessions(state: &AppState) -> usize {
    let spread = Duration::from_secs(state.services.settings.drain.timeout_s / 6)
        .min(Duration::from_secs(5));
    state
        .services
        .engine
        .hub
        .send(DrainAll { spread })
        .await
        .unwrap_or(0)
}

/// Waits until the hub has no sessions left (they disconnect as their
/// closes go out).
async fn wait_for_sessions(state: &AppState) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if state
            .services
            .engine
            .hub
            .send(SessionCount)
            .await
            .unwrap_or(0)
            == 0
        {
            return;
        }
    }
}
