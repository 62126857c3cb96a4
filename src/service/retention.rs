//! Retention: who may set how long a room keeps its events, and the purge
//! that deletes older ones.
//!
//! A purge of one room first moves its horizon (the first kept seq) past
//! every expired event, in a short write of its own, then deletes the
//! events below it a batch at a time ([`crate::store::Store::advance_horizon`],
//! [`crate::store::Store::purge_below_horizon`]). Every reader filters on
//! the horizon, so from the moment it moves the events below are gone for
//! everyone, whether deleted yet or not: a replay that starts below it is
//! told `truncated` (the room actor's `run_replay`), never handed a hole.
//!
//! Each instance runs a pass every `PARLEY_RETENTION_PURGE_INTERVAL_S`
//! ([`spawn_purger`]); passes on several instances at once are harmless
//! (the horizon only moves forward; a row is deleted once).

use super::Services;
use super::rooms::RoomError;
use crate::domain::{RetentionDays, RoomId, UserId};
use crate::observability::lifecycle::Lifecycle;
use crate::observability::metrics::RetentionMetrics;
use crate::store::{Room, SharedStore, Store, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rooms read per page of a pass.
const ROOMS_PAGE: u32 = 100;

/// Sets `room`'s retention (`None`: forever), if `caller` is its owner or
/// an admin.
pub async fn set(
    services: &Services,
    caller: UserId,
    room: RoomId,
    days: Option<RetentionDays>,
) -> Result<Room, RoomError> {
    super::rooms::manager_role(
        services,
        room,
        caller,
        "only the room's owner or admins may change its retention",
    )
    .await?;
    services
        .store
        .set_retention(room, days)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RoomError::NotFound("room"),
            other => other.into(),
        })
}

/// The retention a new room starts with (`PARLEY_RETENTION_DAYS`), applied
/// to `room` just created; the room unchanged when there is none.
pub async fn apply_default(services: &Services, room: Room) -> Result<Room, StoreError> {
    let days = services
        .settings
        .retention
        .days
        .and_then(|d| RetentionDays::parse(i64::from(d)).ok());
    match days {
        Some(days) => services.store.set_retention(room.id, Some(days)).await,
        None => Ok(room),
    }
}

/// How a pass deletes: events per statement, and the pause after each.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub batch: u32,
    pub pause: Duration,
}

impl Pace {
    /// `PARLEY_RETENTION_PURGE_BATCH` and `PARLEY_RETENTION_PURGE_PAUSE_MS`.
    pub fn from_settings(settings: &crate::config::RetentionSettings) -> Self {
        Self {
            batch: settings.purge_batch,
            pause: Duration::from_millis(settings.purge_pause_ms),
        }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Rooms with a retention visited.
    pub rooms: u64,
    /// Events deleted.
    pub events: u64,
}

/// Purges one room as of `now`: moves its horizon, then deletes below it
/// a batch per statement, pausing after each, until none is left. Returns
/// how many.
pub async fn purge_room(
    store: &dyn Store,
    room: RoomId,
    days: RetentionDays,
    now: DateTime<Utc>,
    pace: Pace,
) -> Result<u64, StoreError> {
    store.advance_horizon(room, days.cutoff(now)).await?;
    let mut purged = 0;
    loop {
        let deleted = store.purge_below_horizon(room, pace.batch).await?;
        purged += deleted;
        if deleted < u64::from(pace.batch) {
            return Ok(purged);
        }
        // Unpaced, a purge runs flat out and its WAL flushes delay every
        // publish's commit (docs/benchmarks.md); the pause caps its share.
        if pace.pause.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(pace.pause).await;
        }
    }
}

/// One pass over every room with a retention, as of `now`.
pub async fn purge_pass(
    store: &dyn Store,
    now: DateTime<Utc>,
    pace: Pace,
) -> Result<PurgeReport, StoreError> {
    let mut report = PurgeReport::default();
    let mut after = None;
    loop {
        let page = store.rooms_with_retention(after, ROOMS_PAGE).await?;
        for &(room, days) in &page {
            report.events += purge_room(store, room, days, now, pace).await?;
            report.rooms += 1;
        }
        match page.last() {
            Some(&(last, _)) if page.len() == ROOMS_PAGE as usize => after = Some(last),
            _ => return Ok(report),
        }
    }
}

/// [`purge_pass`] now, counted in the metrics and logged.
pub async fn run_pass(
    store: &dyn Store,
    metrics: &RetentionMetrics,
    pace: Pace,
) -> Result<PurgeReport, StoreError> {
    let started = Instant::now();
    let outcome = purge_pass(store, Utc::now(), pace).await;
    metrics.duration.observe(started.elapsed().as_secs_f64());
    match &outcome {
        Ok(report) => {
            metrics.runs.with_label_values(&["ok"]).inc();
            metrics.purged_events.inc_by(report.events);
            if report.events > 0 {
                tracing::info!(
                    rooms = report.rooms,
                    events = report.events,
                    took_ms = started.elapsed().as_millis() as u64,
                    "purged expired room events"
                );
            }
        }
        Err(error) => {
            metrics.runs.with_label_values(&["error"]).inc();
            tracing::warn!(error = %error.describe(), "retention purge failed; retrying next interval");
        }
    }
    outcome
}

/// Runs a pass every `PARLEY_RETENTION_PURGE_INTERVAL_S` until the instance
/// drains. Never dies of a failed pass (the next one retries; a failure
/// is counted and logged). The first pass waits a random part of an
/// interval, so instances started together do not purge in step.
pub fn spawn_purger(services: &Services, lifecycle: Arc<Lifecycle>) {
    let store: SharedStore = services.store.clone();
    let metrics = services.metrics.clone();
    let settings = &services.settings.retention;
    let interval = Duration::from_secs(settings.purge_interval_s);
    let pace = Pace::from_settings(settings);
    actix_web::rt::spawn(async move {
        let jitter = interval.mul_f64(rand::random::<f64>());
        tokio::time::sleep(jitter).await;
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if lifecycle.draining() {
                return;
            }
            let _ = run_pass(store.as_ref(), &metrics.retention, pace).await;
        }
    });
}
