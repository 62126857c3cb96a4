//! Keeping shard channels subscribed on a Redis Cluster whose slots move.
//!
//! A shard channel lives on the master owning its hash slot. When that
//! master dies and its replica takes over, or when the slot migrates to
//! another master, the subscription is gone: the dead node took it along,
//! or the old owner pushed an unsolicited `sunsubscribe`, which fred 10.1
//! drops without a word. Nothing then reaches the channel's subscribers,
//! and no reconnect event says so.
//!
//! So the bus watches the slot map itself: every [`CHECK`] the subscriber
//! re-reads `CLUSTER SLOTS` (fred's `sync_cluster`, which also connects to
//! new masters and drops removed ones), and when the owners changed, or
//! the subscriber reconnected, or the last attempt failed, every watched
//! channel is subscribed again (SSUBSCRIBE is idempotent on a channel's
//! owner and goes to the new owner otherwise) and every room checks the log
//! for what the gap lost (the same path as after a Redis restart).
//! `docs/decisions.md` says why this and not fred's `on_cluster_change`.

use super::RedisBus;
use fred::interfaces::ClusterInterface as _;
use std::sync::Arc;
use std::time::Duration;

/// How often the slot map is read: one `CLUSTER SLOTS` per instance. It
/// bounds how long a moved channel stays silent (plus the failover itself);
/// what it published meanwhile comes back from the log.
const CHECK: Duration = Duration::from_secs(1);

/// Who owns which slots: `(first, last, master address)` per range.
type SlotMap = Vec<(u16, u16, String)>;

/// Runs for the life of the bus, on a cluster only. Never returns: a failed
/// read of the slot map is retried at the next tick.
pub(super) async fn watch_topology(bus: Arc<RedisBus>) {
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut known: Option<SlotMap> = None;
    let mut stale = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = bus.topology_changed().notified() => stale = true,
        }
        let Some(now) = slot_map(&bus).await else {
            // No node answered: the subscriber is reconnecting, and says so.
            continue;
        };
        bus.metrics()
            .redis_cluster_masters
            .set(distinct_masters(&now) as i64);
        let moved = known.as_ref().is_some_and(|old| *old != now);
        if moved {
            tracing::info!("the Redis Cluster's slot owners changed; resubscribing");
        }
        if moved || stale {
            bus.metrics()
                .bus_resubscribes
                .with_label_values(&[if moved { "slots_moved" } else { "reconnect" }])
                .inc();
            stale = !bus.resubscribe().await;
        }
        bus.metrics()
            .bus_shard_channels
            .set(bus.shard_channels() as i64);
        known = Some(now);
    }
}

/// The slot map as a node sees it now, through the subscriber's own
/// routing table, or `None` when no node answered.
async fn slot_map(bus: &RedisBus) -> Option<SlotMap> {
    let subscriber = &bus.redis().subscriber;
    if let Err(error) = subscriber.sync_cluster().await {
        tracing::debug!(%error, "reading the Redis Cluster's slot map failed");
        return None;
    }
    let routing = subscriber.cached_cluster_state()?;
    Some(
        routing
            .slots()
            .iter()
            .map(|range| (range.start, range.end, range.primary.to_string()))
            .collect(),
    )
}

fn distinct_masters(map: &SlotMap) -> usize {
    let masters: std::collections::BTreeSet<&str> =
        map.iter().map(|(_, _, master)| master.as_str()).collect();
    masters.len()
}
