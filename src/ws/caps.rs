//! Caps on concurrent WebSockets per user (`PARLEY_WS_CONNS_PER_USER`) and
//! per client IP (`PARLEY_WS_CONNS_PER_IP`), checked at the upgrade.
//!
//! With Redis the caps hold across instances: each user and each IP has a
//! sorted set of session ids scored by expiry. An upgrade prunes the
//! expired entries and adds its own in one script (atomic, so two instances
//! cannot both take the last slot); every instance re-scores its live
//! sessions every [`REFRESH`], and a closed connection removes its entry at
//! once. A crashed instance stops refreshing, so its entries expire after
//! [`TTL`]. While Redis is unreachable the caps are counted per instance
//! (never open, never refusing everything), as the rate limits are.
//!
//! A granted slot is a [`Slot`]: the session holds it, and dropping it
//! gives the slot back.
//!
//! The per-user sets are also who is connected anywhere: Web Push asks
//! [`ConnCaps::user_connected`] before pushing (`service::push::Presence`).

use crate::infra::redis::Redis;
use crate::observability::metrics::Metrics;
use fred::prelude::*;
use fred::types::scripts::Script;
use parley_actors::ids::{SessionId, UserId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// An entry not refreshed for this long belongs to a dead instance.
const TTL: Duration = Duration::from_secs(30);
/// How often an instance re-scores its live sessions.
const REFRESH: Duration = Duration::from_secs(10);
/// A refused upgrade is told to try again after this long.
pub const RETRY_AFTER_S: u64 = 5;
/// The longest an upgrade waits on Redis before counting locally.
const REDIS_DEADLINE: Duration = Duration::from_millis(500);

/// Prunes expired entries of KEYS[1]; adds ARGV[1] unless the set already
/// holds ARGV[3] live entries. ARGV[2]: TTL in ms. Returns 1 if added. The
/// clock is Redis's, so instances with skewed clocks agree.
const ACQUIRE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return 1
"#;

/// Counts the live entries of KEYS[1] by Redis's clock (expired entries
/// of a crashed instance do not count).
const COUNT_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"#;

/// Which cap refused an upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    PerUser,
    PerIp,
}

impl Refused {
    /// The `parley_rate_limit_rejections_total{kind}` label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::PerUser => "ws_conns_user",
            Refused::PerIp => "ws_conns_ip",
        }
    }
}

/// The caps of one instance; shared by all workers.
pub struct ConnCaps {
    per_user: u32,
    per_ip: u32,
    /// Live sessions of this instance by cap key (`user:ID`, `ip:ADDR`):
    /// the fallback count, and what the refresh task re-scores.
    local: Mutex<HashMap<String, Vec<SessionId>>>,
    redis: Option<(Arc<Redis>, Script)>,
    /// [`COUNT_LUA`].
    count: Script,
    metrics: Arc<Metrics>,
}

/// One granted connection; gives its slots back when dropped.
pub struct Slot {
    caps: Arc<ConnCaps>,
    session: SessionId,
    keys: Vec<String>,
}

impl ConnCaps {
    /// Starts the refresh task when Redis is configured.
    pub fn new(
        per_user: u32,
        per_ip: u32,
        redis: Option<Arc<Redis>>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let shared = redis.map(|r| (r, Script::from_lua(ACQUIRE_LUA)));
        let caps = Arc::new(Self {
            per_user,
            per_ip,
            local: Mutex::new(HashMap::new()),
            redis: shared,
            count: Script::from_lua(COUNT_LUA),
            metrics,
        });
        if caps.redis.is_some() {
            tokio::spawn(refresh_loop(Arc::downgrade(&caps)));
        }
        caps
    }

    /// A slot for `session` of `user` from `ip`, or which cap is full.
    pub async fn acquire(
        self: &Arc<Self>,
        session: SessionId,
        user: UserId,
        ip: Option<IpAddr>,
    ) -> Result<Slot, Refused> {
        let mut wanted = vec![(format!("user:{}", user.0), self.per_user, Refused::PerUser)];
        if let Some(ip) = ip {
            wanted.push((format!("ip:{ip}"), self.per_ip, Refused::PerIp));
        }
        let mut slot = Slot {
            caps: self.clone(),
            session,
            keys: Vec::new(),
        };
        for (key, limit, refusal) in wanted {
            // On refusal `slot` drops, giving back what it already took.
            if !self.take(&key, limit, session).await {
                self.metrics
                    .rate_limit_rejections
                    .with_label_values(&[refusal.label()])
                    .inc();
                return Err(refusal);
            }
            slot.keys.push(key);
        }
        Ok(slot)
    }

    /// Takes one slot of `key`: in Redis when it answers, else locally.
    async fn take(&self, key: &str, limit: u32, session: SessionId) -> bool {
        let shared = match &self.redis {
            Some((redis, script)) => {
                let call = script.evalsha_with_reload::<i64, _, _>(
                    &redis.client,
                    redis.key(&format!("conns:{key}")),
                    vec![
                        session.to_string(),
                        TTL.as_millis().to_string(),
                        limit.to_string(),
                    ],
                );
                match redis.call(REDIS_DEADLINE, call).await {
                    Ok(added) => Some(added == 1),
                    Err(error) => {
                        tracing::debug!(%error, "connection caps: Redis failed; counting locally");
                        None
                    }
                }
            }
            None => None,
        };
        let Ok(mut local) = self.local.lock() else {
            return true; // poisoned by a panic elsewhere: never refuse everyone
        };
        let sessions = local.entry(key.to_owned()).or_default();
        let allowed = shared.unwrap_or(sessions.len() < limit as usize);
        if allowed {
            sessions.push(session);
        }
        allowed
    }

    /// Whether `user` has an open WebSocket on any instance: in Redis when
    /// it answers, else on this instance only.
    pub async fn user_connected(&self, user: UserId) -> bool {
        let key = format!("user:{}", user.0);
        let here = self
            .local
            .lock()
            .is_ok_and(|local| local.get(&key).is_some_and(|s| !s.is_empty()));
        let Some((redis, _)) = &self.redis else {
            return here;
        };
        if here {
            return true;
        }
        let call = self.count.evalsha_with_reload::<i64, _, _>(
            &redis.client,
            redis.key(&format!("conns:{key}")),
            Vec::<String>::new(),
        );
        match redis.call(REDIS_DEADLINE, call).await {
            Ok(live) => live > 0,
            Err(error) => {
                tracing::debug!(%error, "presence: Redis failed; asking this instance only");
                false
            }
        }
    }

    fn release(&self, session: SessionId, keys: &[String]) {
        if let Ok(mut local) = self.local.lock() {
            for key in keys {
                if let Some(sessions) = local.get_mut(key) {
                    sessions.retain(|s| *s != session);
                    if sessions.is_empty() {
                        local.remove(key);
                    }
                }
            }
        }
        let Some((redis, _)) = &self.redis else {
            return;
        };
        let (redis, member) = (redis.clone(), session.to_string());
        let keys: Vec<String> = keys
            .iter()
            .map(|k| redis.key(&format!("conns:{k}")))
            .collect();
        // Best effort: an entry not removed expires after TTL.
        tokio::spawn(async move {
            for key in keys {
                let zrem = redis.client.zrem::<i64, _, _>(key, member.clone());
                let _ = redis.call(REDIS_DEADLINE, zrem).await;
            }
        });
    }

    /// Re-scores every live session of this instance, one `ZADD XX` per key.
    async fn refresh(&self, redis: &Redis) {
        let entries: Vec<(String, Vec<SessionId>)> = match self.local.lock() {
            Ok(local) => local.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return,
        };
        let expiry = now_ms() + TTL.as_millis() as f64;
        let pipeline = redis.client.pipeline();
        for (key, sessions) in entries {
            let members: Vec<(f64, String)> =
                sessions.iter().map(|s| (expiry, s.to_string())).collect();
            let key = redis.key(&format!("conns:{key}"));
            let _: Result<(), _> = pipeline.zadd(&key, None, None, false, false, members).await;
            let _: Result<(), _> = pipeline
                .pexpire(&key, (TTL.as_millis() * 2) as i64, None)
                .await;
        }
        if let Err(error) = pipeline.all::<Vec<Value>>().await {
            tracing::debug!(%error, "connection caps: refresh failed; entries may expire");
        }
    }
}

#[async_trait::async_trait]
impl crate::service::push::Presence for ConnCaps {
    async fn is_online(&self, user: crate::domain::UserId) -> bool {
        self.user_connected(user).await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.caps.release(self.session, &self.keys);
    }
}

/// Runs until the caps are dropped (the application stopped).
async fn refresh_loop(caps: Weak<ConnCaps>) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(caps) = caps.upgrade() else {
            return;
        };
        if let Some((redis, _)) = &caps.redis {
            caps.refresh(redis).await;
        }
    }
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or_default()
}
