//! The bus over Redis pub/sub.
//!
//! Channels, all under the key prefix: `room:{id}` (messages, typing,
//! presence), `user:{id}` (notifications) and `all` (revocations, cache
//! invalidation). An instance subscribes to a room's channel while it has a
//! room actor for it and to a user's channel while the user has a session
//! here, so traffic follows interest. Each payload is a versioned JSON
//! envelope ([`super::envelope`], the bus wire format) with the origin
//! instance, so an instance ignores its own events (it already
//! delivered them locally) and never delivers twice.
//!
//! Publishing goes through one bounded queue and one task that pipelines
//! what has accumulated: callers never wait on Redis, and a full queue
//! drops (counted; rooms refill dropped messages from the database).
//!
//! Subscriptions are counted here, not trusted to the client: after a
//! reconnect every watched channel is subscribed again and every room is
//! told to check the log for what the outage lost.
//!
//! On a Redis Cluster (`redis-cluster://`) room and user channels use
//! sharded pub/sub (SPUBLISH / SSUBSCRIBE), so each channel lives on the
//! shard owning its hash slot instead of being broadcast to every node;
//! [`super::shards`] keeps them subscribed on their owners through
//! failovers and slot migrations. The `all` channel stays classic: it is
//! small and every instance listens to it. `PARLEY_REDIS_CLUSTER_PUBSUB=
//! classic` keeps every channel classic on a cluster too (to measure the
//! difference, or for a cluster without sharded pub/sub); the cluster then
//! broadcasts each PUBLISH to every node, and a subscription follows its
//! connection, not a slot, so there is no slot map to watch.

use super::envelope;
use super::shards;
use crate::config::ClusterPubSub;
use crate::infra::redis::Redis;
use crate::observability::metrics::Metrics;
use async_trait::async_trait;
use fred::clients::Pipeline;
use fred::prelude::*;
use parley_actors::bus::BusInbox;
use parley_actors::ids::{RoomId, UserId};
use parley_actors::ports::{Bus, BusEvent, BusScope, RemotePresence};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc};

/// Events waiting to be published before new ones are dropped.
const QUEUE: usize = 50_000;
/// Events sent in one pipeline.
const PIPELINE: usize = 256;
/// A presence entry lives this long without a refresh: three room ticks.
const PRESENCE_TTL: Duration = Duration::from_secs(15);

pub struct RedisBus {
    redis: Arc<Redis>,
    instance: String,
    outgoing: mpsc::Sender<BusEvent>,
    /// Channel → number of watchers; the lock also orders SUBSCRIBE and
    /// UNSUBSCRIBE of one channel.
    watched: Mutex<HashMap<String, usize>>,
    inbox: OnceLock<BusInbox>,
    metrics: Arc<Metrics>,
    this: Weak<RedisBus>,
    /// Room and user channels are shard channels (the URL names a cluster
    /// and `cluster_pubsub` is `sharded`).
    sharded: bool,
    /// Wakes the cluster's topology watch at once (a reconnect) instead of
    /// at its next tick.
    topology_changed: Arc<tokio::sync::Notify>,
}

impl RedisBus {
    /// Starts the publishing and receiving tasks. Incoming events wait until
    /// [`RedisBus::attach`] names the engine they go to.
    /// Every `resync` (unless zero) each room with subscribers here checks
    /// the log for events the bus did not bring. On a cluster, `pubsub`
    /// chooses sharded or classic channels.
    pub fn start(
        redis: Arc<Redis>,
        instance: &str,
        metrics: Arc<Metrics>,
        resync: std::time::Duration,
        pubsub: ClusterPubSub,
    ) -> Arc<Self> {
        let (outgoing, queue) = mpsc::channel(QUEUE);
        let sharded = redis.is_cluster() && pubsub == ClusterPubSub::Sharded;
        let bus = Arc::new_cyclic(|this| Self {
            redis,
            instance: instance.to_owned(),
            outgoing,
            watched: Mutex::new(HashMap::new()),
            inbox: OnceLock::new(),
            metrics,
            this: this.clone(),
            sharded,
            topology_changed: Arc::new(tokio::sync::Notify::new()),
        });
        tokio::spawn(publish_loop(bus.clone(), queue));
        tokio::spawn(receive_loop(bus.clone()));
        if !resync.is_zero() {
            tokio::spawn(resync_loop(bus.clone(), resync));
        }
        if bus.sharded {
            tokio::spawn(shards::watch_topology(bus.clone()));
        }
        let on_reconnect = bus.clone();
        bus.redis.subscriber.on_reconnect(move |_| {
            let bus = on_reconnect.clone();
            async move {
                if bus.sharded {
                    // A cluster reconnects node by node: the topology watch
                    // resubscribes once for the lot.
                    bus.topology_changed.notify_one();
                } else {
                    // Its own task: the listener must not wait on Redis calls.
                    tokio::spawn(async move { bus.resubscribe().await });
                }
                Ok(())
            }
        });
        bus
    }

    /// Connects the bus to the engine and subscribes to the `all` channel.
    pub async fn attach(&self, inbox: BusInbox) {
        let _ = self.inbox.set(inbox);
        self.watch(BusScope::All).await;
    }

    fn channel(&self, scope: BusScope) -> String {
        match scope {
            BusScope::Room(RoomId(id)) => self.redis.key(&format!("room:{id}")),
            BusScope::User(UserId(id)) => self.redis.key(&format!("user:{id}")),
            BusScope::All => self.redis.key("all"),
        }
    }

    /// Whether `channel` is a shard channel (room and user channels on a
    /// cluster).
    fn is_sharded(&self, channel: &str) -> bool {
        self.sharded && channel != self.channel(BusScope::All)
    }

    /// One channel at a time: fred 10.1 matches a multi-channel SSUBSCRIBE's
    /// confirmations to the wrong commands.
    async fn subscribe(&self, channel: String) -> Result<(), Error> {
        if self.is_sharded(&channel) {
            self.redis.subscriber.ssubscribe(channel).await
        } else {
            self.redis.subscriber.subscribe(channel).await
        }
    }

    async fn unsubscribe(&self, channel: String) -> Result<(), Error> {
        if self.is_sharded(&channel) {
            self.redis.subscriber.sunsubscribe(channel).await
        } else {
            self.redis.subscriber.unsubscribe(channel).await
        }
    }

    /// Shard channels this instance watches (0 off a cluster).
    pub fn shard_channels(&self) -> usize {
        self.redis.subscriber.tracked_shard_channels().len()
    }

    pub(super) fn topology_changed(&self) -> &tokio::sync::Notify {
        &self.topology_changed
    }

    pub(super) fn redis(&self) -> &Redis {
        &self.redis
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn presence_key(&self, room: RoomId) -> String {
        self.redis.key(&format!("presence:{}", room.0))
    }

    fn member(&self, user: UserId) -> String {
        format!("{}|{}", self.instance, user.0)
    }

    /// After a reconnect (or, on a cluster, a change of slot owners):
    /// every watched channel again, then every room checks the log for
    /// messages published while the link was down. False when a channel
    /// could not be subscribed (the caller tries again).
    pub(super) async fn resubscribe(&self) -> bool {
        let channels: Vec<String> = self.watched.lock().await.keys().cloned().collect();
        let (sharded, classic): (Vec<String>, Vec<String>) =
            channels.into_iter().partition(|c| self.is_sharded(c));
        tracing::info!(
            channels = classic.len(),
            shard_channels = sharded.len(),
            "Redis reconnected; resubscribing"
        );
        let mut done = true;
        if !classic.is_empty()
            && let Err(error) = self.redis.subscriber.subscribe(classic).await
        {
            tracing::warn!(%error, "resubscribing after a Redis reconnect failed");
            done = false;
        }
        // Idempotent: a channel still subscribed on its owner stays so.
        // Under the lock, one channel at a time, so a channel released
        // meanwhile is not subscribed again after its SUNSUBSCRIBE.
        for channel in sharded {
            let watched = self.watched.lock().await;
            if !watched.contains_key(&channel) {
                continue;
            }
            if let Err(error) = self.redis.subscriber.ssubscribe(channel).await {
                tracing::debug!(%error, "resubscribing a shard channel failed; retried");
                done = false;
            }
            drop(watched);
        }
        if let Some(inbox) = self.inbox.get() {
            inbox.resync_rooms();
        }
        done
    }

    async fn receive(&self, channel: &str, payload: &str) {
        // A payload this version cannot read (a newer instance's, during a
        // rolling deploy) is dropped: rooms refill messages from the log.
        let received = match envelope::decode(payload) {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(%error, channel, "ignoring an unreadable bus message");
                return;
            }
        };
        if received.origin == self.instance {
            return;
        }
        self.metrics
            .bridge_messages
            .with_label_values(&["in"])
            .inc();
        if let Some(inbox) = self.inbox.get() {
            inbox.deliver(&received.origin, received.event).await;
        }
    }

    /// Keeps the shared presence registry in step with a local presence
    /// change, so snapshots agree with events: queued on the pipeline that
    /// publishes the event, so it costs no round trip of its own.
    async fn record_presence(
        &self,
        pipeline: &Pipeline<Client>,
        room: RoomId,
        user: UserId,
        online: bool,
    ) {
        let key = self.presence_key(room);
        let member = self.member(user);
        let queued: Result<(), Error> = if online {
            let expiry = now_ms() + PRESENCE_TTL.as_millis() as f64;
            pipeline
                .zadd(&key, None, None, false, false, (expiry, member))
                .await
        } else {
            pipeline.zrem(&key, member).await
        };
        if let Err(error) = queued {
            tracing::debug!(%error, "could not record presence in Redis");
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn publish(&self, event: BusEvent) {
        if self.outgoing.try_send(event).is_err() {
            self.metrics
                .bridge_messages
                .with_label_values(&["dropped"])
                .inc();
        }
    }

    async fn watch(&self, scope: BusScope) {
        let channel = self.channel(scope);
        let mut watched = self.watched.lock().await;
        let count = watched.entry(channel.clone()).or_default();
        *count += 1;
        if *count == 1 {
            // Counted even if this fails: the reconnect handler subscribes
            // every watched channel again.
            if let Err(error) = self.subscribe(channel).await {
                tracing::debug!(%error, "subscribe failed; retried on reconnect");
            }
        }
    }

    fn unwatch(&self, scope: BusScope) {
        let channel = self.channel(scope);
        let Some(bus) = self.this.upgrade() else {
            return;
        };
        // Actors call this from synchronous code; the count is released in
        // a task, under the same lock as `watch`.
        tokio::spawn(async move {
            let mut watched = bus.watched.lock().await;
            if release(&mut watched, &channel) {
                let _ = bus.unsubscribe(channel).await;
            }
        });
    }

    async fn presence(&self, room: RoomId, local: Vec<UserId>) -> Option<RemotePresence> {
        let key = self.presence_key(room);
        let now = now_ms();
        let expiry = now + PRESENCE_TTL.as_millis() as f64;
        let pipeline = self.redis.client.pipeline();
        if !local.is_empty() {
            let entries: Vec<(f64, String)> =
                local.iter().map(|u| (expiry, self.member(*u))).collect();
            let _: () = pipeline
                .zadd(&key, None, None, false, false, entries)
                .await
                .ok()?;
        }
        let _: () = pipeline
            .zremrangebyscore(&key, f64::NEG_INFINITY, now)
            .await
            .ok()?;
        let _: () = pipeline
            .zrangebyscore(&key, now, f64::INFINITY, false, None)
            .await
            .ok()?;
        // The key outlives its last entry by a little, not forever.
        let _: () = pipeline
            .expire(&key, (PRESENCE_TTL.as_secs() * 4) as i64, None)
            .await
            .ok()?;
        let results: Vec<Value> = match pipeline.all().await {
            Ok(r) => r,
            Err(error) => {
                tracing::debug!(%error, "presence snapshot failed");
                return None;
            }
        };
        let members: Vec<String> = results
            .get(results.len().checked_sub(2)?)?
            .clone()
            .convert()
            .ok()?;
        let prefix = format!("{}|", self.instance);
        Some(
            members
                .iter()
                .filter(|m| !m.starts_with(&prefix))
                .filter_map(|m| {
                    let (instance, user) = m.rsplit_once('|')?;
                    let user = uuid::Uuid::parse_str(user).ok()?;
                    Some((instance.to_owned(), UserId(user)))
                })
                .collect(),
        )
    }
}

/// Decrements a channel's watch count; true when it reached zero.
fn release(watched: &mut HashMap<String, usize>, channel: &str) -> bool {
    let Some(count) = watched.get_mut(channel) else {
        return false;
    };
    *count -= 1;
    if *count == 0 {
        watched.remove(channel);
        return true;
    }
    false
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

async fn publish_loop(bus: Arc<RedisBus>, mut queue: mpsc::Receiver<BusEvent>) {
    let mut batch = Vec::with_capacity(PIPELINE);
    while queue.recv_many(&mut batch, PIPELINE).await > 0 {
        let pipeline = bus.redis.client.pipeline();
        let mut sent = 0u64;
        for event in batch.drain(..) {
            if let BusEvent::Presence { room, user, online } = &event {
                bus.record_presence(&pipeline, *room, *user, *online).await;
            }
            let channel = bus.channel(event.scope());
            let Ok(payload) = envelope::encode(&bus.instance, &event) else {
                continue;
            };
            let queued: Result<(), Error> = if bus.is_sharded(&channel) {
                pipeline.spublish(channel, payload).await
            } else {
                pipeline.publish(channel, payload).await
            };
            if queued.is_ok() {
                sent += 1;
            }
        }
        match pipeline.all::<Vec<Value>>().await {
            Ok(_) => bus
                .metrics
                .bridge_messages
                .with_label_values(&["out"])
                .inc_by(sent),
            Err(error) => {
                bus.metrics
                    .bridge_messages
                    .with_label_values(&["dropped"])
                    .inc_by(sent);
                tracing::debug!(%error, events = sent, "publishing to Redis failed");
            }
        }
    }
}

/// A commit whose instance died before publishing it (or whose message
/// Redis dropped) leaves no gap another instance can see until the room's
/// next event, which may never come: each room asks the log for its head
/// now and then instead (one primary-key read per room with subscribers).
async fn resync_loop(bus: Arc<RedisBus>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        if let Some(inbox) = bus.inbox.get() {
            inbox.resync_rooms();
        }
    }
}

async fn receive_loop(bus: Arc<RedisBus>) {
    let mut messages = bus.redis.subscriber.message_rx();
    loop {
        match messages.recv().await {
            Ok(message) => {
                let channel = message.channel.to_string();
                match message.value.as_str() {
                    Some(payload) => bus.receive(&channel, &payload).await,
                    None => tracing::warn!(channel, "ignoring a non-text bus message"),
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(lost)) => {
                // The rooms' gap fill recovers lost messages; typing and
                // presence heal at the next event or snapshot.
                tracing::warn!(
                    lost,
                    "the bus receiver fell behind; rooms refill from the log"
                );
                bus.metrics
                    .bridge_messages
                    .with_label_values(&["lost"])
                    .inc_by(lost);
                if let Some(inbox) = bus.inbox.get() {
                    inbox.resync_rooms();
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
