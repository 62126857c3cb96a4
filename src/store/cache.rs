//! Cache-aside for the hot reads: user profiles (5 min), post details
//! (10 min) and the first feed page (5 min).
//!
//! Two tiers in front of the database:
//!
//! - a small in-process tier (moka: bounded, short-lived) that absorbs
//!   repeated reads on one instance and coalesces concurrent loads of a cold
//!   key into one database query;
//! - Redis (when configured), shared by every instance.
//!
//! The cache is never required: a miss, a Redis error or a timeout reads the
//! database, and without Redis only the in-process tier is used.
//!
//! Writes invalidate after they commit. The Redis entry is replaced by a
//! short-lived tombstone rather than deleted, and entries are only ever
//! added with `SET NX`: a reader that loaded the old row just before the
//! commit cannot put it back. The writing instance drops its own entry
//! before answering, and the bus tells every other instance to drop theirs.

use crate::domain::{PostId, UserId};
use crate::infra::redis::Redis;
use crate::observability::metrics::Metrics;
use crate::store::{Post, SharedStore, StoreError, User};
use fred::prelude::*;
use parley_actors::ports::{Bus, BusEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Entries each in-process tier holds at most.
const LOCAL_CAPACITY: u64 = 10_000;
/// How long an in-process entry lives: short, because the bus invalidation
/// that drops it on other instances is best effort.
const LOCAL_TTL: Duration = Duration::from_secs(10);
/// A Redis call slower than this counts as an error and the database answers.
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// What replaces an invalidated Redis entry, and for how long: longer than
/// any database read a racing reader could have started before the write.
const TOMBSTONE: &str = "~";
const TOMBSTONE_TTL_S: i64 = 5;

/// One kind of cached value.
struct Tier<T: Clone + Send + Sync + 'static> {
    /// The metric label and the key prefix.
    name: &'static str,
    redis_ttl_s: i64,
    local: moka::future::Cache<String, T>,
}

impl<T: Clone + Send + Sync + 'static> Tier<T> {
    fn new(name: &'static str, redis_ttl: Duration, metrics: &Arc<Metrics>) -> Self {
        let evictions = metrics.cache_evictions.with_label_values(&[name]);
        let local = moka::future::Cache::builder()
            .max_capacity(LOCAL_CAPACITY)
            .time_to_live(LOCAL_TTL)
            .eviction_listener(move |_, _, cause| {
                if cause.was_evicted() {
                    evictions.inc();
                }
            })
            .build();
        Self {
            name,
            redis_ttl_s: redis_ttl.as_secs() as i64,
            local,
        }
    }
}

/// Why a load produced no value to cache.
enum Miss {
    Absent,
    /// Taken by the first waiter that sees it (coalesced waiters share it).
    Failed(Mutex<Option<StoreError>>),
}

pub struct Cache {
    redis: Option<Arc<Redis>>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    users: Tier<User>,
    posts: Tier<Post>,
    feeds: Tier<Vec<Post>>,
}

impl Cache {
    pub fn new(redis: Option<Arc<Redis>>, bus: Arc<dyn Bus>, metrics: Arc<Metrics>) -> Self {
        Self {
            users: Tier::new("user", Duration::from_secs(300), &metrics),
            posts: Tier::new("post", Duration::from_secs(600), &metrics),
            feeds: Tier::new("feed", Duration::from_secs(300), &metrics),
            redis,
            bus,
            metrics,
        }
    }

    pub async fn user(&self, store: &SharedStore, id: UserId) -> Result<Option<User>, StoreError> {
        let load = async { store.user(id).await };
        self.get(&self.users, id.0.to_string(), load).await
    }

    pub async fn post(&self, store: &SharedStore, id: PostId) -> Result<Option<Post>, StoreError> {
        let load = async { store.post(id).await };
        self.get(&self.posts, id.0.to_string(), load).await
    }

    /// The first page of `user`'s feed at `limit` (overfetched) posts.
    pub async fn feed_head(
        &self,
        store: &SharedStore,
        user: UserId,
        limit: crate::domain::Limit,
    ) -> Result<Vec<Post>, StoreError> {
        let load = async { store.feed(user, None, limit).await.map(Some) };
        let key = format!("{}:{}", user.0, limit.get());
        Ok(self.get(&self.feeds, key, load).await?.unwrap_or_default())
    }

    pub async fn user_changed(&self, id: UserId) {
        self.invalidate(vec![format!("user:{}", id.0)]).await;
    }

    pub async fn post_deleted(&self, id: PostId) {
        self.invalidate(vec![format!("post:{}", id.0)]).await;
    }

    /// Feeds that show `author`'s posts: the author's and their followers'.
    pub async fn feeds_of_author_changed(&self, store: &SharedStore, author: UserId) {
        let mut users = match store.followers(author).await {
            Ok(f) => f,
            Err(error) => {
                // Cached pages then expire on their own (5 min).
                tracing::warn!(%error, "could not load followers to invalidate their feeds");
                Vec::new()
            }
        };
        users.push(author);
        self.feeds_changed(&users).await;
    }

    pub async fn feeds_changed(&self, users: &[UserId]) {
        let keys = users
            .iter()
            .flat_map(|u| feed_limits().map(move |limit| format!("feed:{}:{limit}", u.0)))
            .collect();
        self.invalidate(keys).await;
    }

    /// Drops this instance's copy of `key` (another instance wrote it).
    pub fn drop_local(self: &Arc<Self>, key: &str) {
        let (cache, key) = (self.clone(), key.to_owned());
        tokio::spawn(async move { cache.drop_local_now(&key).await });
    }

    async fn drop_local_now(&self, key: &str) {
        let Some((kind, rest)) = key.split_once(':') else {
            return;
        };
        let rest = rest.to_owned();
        match kind {
            "user" => self.users.local.invalidate(&rest).await,
            "post" => self.posts.local.invalidate(&rest).await,
            "feed" => self.feeds.local.invalidate(&rest).await,
            _ => {}
        }
    }

    async fn get<T, F>(&self, tier: &Tier<T>, id: String, load: F) -> Result<Option<T>, StoreError>
    where
        T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Future<Output = Result<Option<T>, StoreError>>,
    {
        if let Some(value) = tier.local.get(&id).await {
            self.count(tier.name, "hit");
            return Ok(Some(value));
        }
        let shared = format!("{}:{id}", tier.name);
        let outcome = tier
            .local
            .try_get_with(id, self.load_through_redis(tier, shared, load))
            .await;
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(miss) => match &*miss {
                Miss::Absent => Ok(None),
                Miss::Failed(error) => Err(error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_else(|| {
                        StoreError::Unavailable(anyhow::anyhow!("a concurrent load failed"))
                    })),
            },
        }
    }

    /// Redis, else the database (then Redis is filled unless fenced).
    async fn load_through_redis<T, F>(
        &self,
        tier: &Tier<T>,
        key: String,
        load: F,
    ) -> Result<T, Miss>
    where
        T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Future<Output = Result<Option<T>, StoreError>>,
    {
        let mut fenced = false;
        if let Some(redis) = &self.redis {
            let read = redis
                .client
                .get::<Option<String>, _>(redis.key(&cache_key(&key)));
            match redis.call(REDIS_TIMEOUT, read).await {
                Ok(Some(text)) if text == TOMBSTONE => fenced = true,
                Ok(Some(text)) => match serde_json::from_str(&text) {
                    Ok(value) => {
                        self.count(tier.name, "hit");
                        return Ok(value);
                    }
                    Err(error) => tracing::warn!(%error, key, "unreadable cache entry"),
                },
                Ok(None) => {}
                // Not filled either: a failing Redis is not asked twice.
                Err(_) => {
                    self.count(tier.name, "error");
                    fenced = true;
                }
            }
        }
        self.count(tier.name, "miss");
        let value = match load.await {
            Ok(Some(value)) => value,
            Ok(None) => return Err(Miss::Absent),
            Err(e) => return Err(Miss::Failed(Mutex::new(Some(e)))),
        };
        if let (Some(redis), false) = (&self.redis, fenced)
            && let Ok(text) = serde_json::to_string(&value)
        {
            let write = redis.client.set::<(), _, _>(
                redis.key(&cache_key(&key)),
                text,
                Some(Expiration::EX(tier.redis_ttl_s)),
                Some(SetOptions::NX),
                false,
            );
            if redis.call(REDIS_TIMEOUT, write).await.is_err() {
                self.count(tier.name, "error");
            }
        }
        Ok(value)
    }

    /// Fences the Redis entries, drops this instance's copies and tells
    /// the other instances to drop theirs.
    async fn invalidate(&self, keys: Vec<String>) {
        if let Some(redis) = &self.redis {
            let pipeline = redis.client.pipeline();
            for key in &keys {
                let _: Result<(), _> = pipeline
                    .set(
                        redis.key(&cache_key(key)),
                        TOMBSTONE,
                        Some(Expiration::EX(TOMBSTONE_TTL_S)),
                        None,
                        false,
                    )
                    .await;
            }
            // Not through the breaker: an invalidation is always attempted.
            let sent = tokio::time::timeout(REDIS_TIMEOUT, pipeline.all::<Vec<Value>>()).await;
            if !matches!(sent, Ok(Ok(_))) {
                // The entries then live until their TTL: say so.
                tracing::warn!(
                    keys = keys.len(),
                    "could not invalidate cached entries in Redis"
                );
            }
        }
        for key in keys {
            self.drop_local_now(&key).await;
            self.bus.publish(BusEvent::Invalidate { key });
        }
    }

    fn count(&self, cache: &str, result: &str) {
        self.metrics
            .cache_requests
            .with_label_values(&[cache, result])
            .inc();
    }
}

fn cache_key(key: &str) -> String {
    format!("cache:{key}")
}

/// The page sizes a feed's first page is cached at: the default, as the
/// overfetched limit the store is asked for.
fn feed_limits() -> impl Iterator<Item = u32> {
    let default = crate::domain::Limit::parse(None)
        .map_or(crate::domain::Limit::DEFAULT, |l| l.overfetch().get());
    std::iter::once(default)
}
