//! State shared by the harness tasks: the run's phase, the measurement
//! window, per-room last acked seqs, per-subscriber progress (for the drain
//! wait) and the latency histograms.
//!
//! Histograms are sharded behind mutexes and fed in batches, so thousands
//! of tasks share a handful of histograms (one per connection would cost
//! hundreds of MiB at 10,000 connections) without contending on one lock.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

/// Where the run is; tasks watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Connect,
    Publish,
    Drain,
    Stop,
}

/// The part of the publishing phase after warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// Latency shards; a task picks one by its index.
const SHARDS: usize = 16;
/// Samples a task buffers before taking a shard's lock.
pub const BATCH: usize = 256;
/// Highest latency recorded, in microseconds (one hour); above saturates.
const MAX_MICROS: u64 = 3_600_000_000;

/// A sharded histogram of latencies in microseconds.
pub struct Latency {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latency {
    pub fn new() -> anyhow::Result<Self> {
        let mut shards = Vec::with_capacity(SHARDS);
        for _ in 0..SHARDS {
            shards.push(Mutex::new(Histogram::new_with_bounds(1, MAX_MICROS, 3)?));
        }
        Ok(Self { shards })
    }

    /// Records and clears `batch`.
    pub fn record(&self, task: usize, batch: &mut Vec<u64>) {
        if batch.is_empty() {
            return;
        }
        let mut h = self.shards[task % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for v in batch.drain(..) {
            h.saturating_record(v.max(1));
        }
    }

    pub fn summary(&self) -> anyhow::Result<LatencySummary> {
        let mut all = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3)?;
        for shard in &self.shards {
            all.add(&*shard.lock().unwrap_or_else(PoisonError::into_inner))?;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Ok(LatencySummary {
            count: all.len(),
            p50_ms: ms(all.value_at_quantile(0.50)),
            p95_ms: ms(all.value_at_quantile(0.95)),
            p99_ms: ms(all.value_at_quantile(0.99)),
            max_ms: ms(all.max()),
        })
    }
}

/// Percentiles of one latency, in milliseconds (0 with no samples).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    /// Absent from reports written before it was added.
    #[serde(default)]
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Everything the tasks share.
pub struct Shared {
    pub window: OnceLock<Window>,
    /// Publish → `message` at a subscriber (sent in the body).
    pub end_to_end: Latency,
    /// Publish → `ack` at the publisher.
    pub ack: Latency,
    /// Highest seq acked per room index (0 before the first).
    pub last_acked: Vec<AtomicI64>,
    /// Highest seq each subscriber received; `i64::MAX` once it ended, so
    /// the drain wait does not wait for it.
    pub progress: Vec<AtomicI64>,
    /// Publishes sent and not yet answered, over all publishers.
    pub in_flight: AtomicI64,
    /// Acks for publishes sent inside the window.
    pub acks_in_window: AtomicU64,
}

impl Shared {
    pub fn new(rooms: usize, subscribers: usize) -> anyhow::Result<Self> {
        Ok(Self {
            window: OnceLock::new(),
            end_to_end: Latency::new()?,
            ack: Latency::new()?,
            last_acked: (0..rooms).map(|_| AtomicI64::new(0)).collect(),
            progress: (0..subscribers).map(|_| AtomicI64::new(i64::MAX)).collect(),
            in_flight: AtomicI64::new(0),
            acks_in_window: AtomicU64::new(0),
        })
    }

    pub fn in_window(&self, t: Instant) -> bool {
        self.window.get().is_some_and(|w| w.contains(t))
    }

    /// Every subscriber has everything acked in its room, and no publish
    /// awaits its answer.
    pub fn drained(&self, room_of: impl Fn(usize) -> usize) -> bool {
        self.in_flight.load(Ordering::Acquire) <= 0
            && self.progress.iter().enumerate().all(|(i, p)| {
                p.load(Ordering::Acquire) >= self.last_acked[room_of(i)].load(Ordering::Acquire)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_from_many_tasks_merge_into_one_summary() {
        let l = Latency::new().unwrap();
        for task in 0..40 {
            let mut batch: Vec<u64> = (1..=100).map(|v| v * 1000).collect();
            l.record(task, &mut batch);
            assert!(batch.is_empty());
        }
        let s = l.summary().unwrap();
        assert_eq!(s.count, 4000);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
    }

    #[test]
    fn drained_waits_for_every_subscriber_and_every_ack() {
        let s = Shared::new(2, 2).unwrap();
        s.last_acked[1].store(5, Ordering::Release);
        s.progress[0].store(0, Ordering::Release);
        s.progress[1].store(4, Ordering::Release);
        assert!(!s.drained(|i| i % 2));
        s.progress[1].store(5, Ordering::Release);
        assert!(s.drained(|i| i % 2));
        s.in_flight.store(1, Ordering::Release);
        assert!(!s.drained(|i| i % 2));
    }
}
