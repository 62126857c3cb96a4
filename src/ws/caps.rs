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
//! [`ConnCaps::user_connected`] before pushing (`service::push::Presence`),
//! and a slot knows whether it was its user's first anywhere
//! ([`Slot::first_anywhere`]) and, when given back, whether it was the last
//! ([`Slot::release`]): the edges webhooks report as `user.online` and
//! `user.offline`, decided in the same atomic scripts, so two instances
//! never both report one edge. Entries of a crashed instance expire
//! unreported: its users' next connection is `user.online` again.

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
/// holds ARGV[3] live entries. ARGV[2]: TTL in ms. Returns 0 if refused, 2
/// if added to an empty set (the first live entry), 1 if added to others.
/// The clock is Redis's, so instances with skewed clocks agree.
const ACQUIRE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZCARD', KEYS[1])
if live >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
if live == 0 then
  return 2
end
return 1
"#;

/// Removes ARGV[1] from KEYS[1]; returns how many live entries are left
/// (0: it was the last anywhere), expired ones pruned first.
const RELEASE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
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
    /// [`RELEASE_LUA`].
    release: Script,
    metrics: Arc<Metrics>,
}

/// One granted connection; gives its slots back when dropped, or, telling
/// whether it was its user's last, through [`Slot::release`].
pub struct Slot {
    caps: Arc<ConnCaps>,
    session: SessionId,
    user: UserId,
    keys: Vec<String>,
    first_anywhere: bool,
    released: bool,
}

/// What taking one cap's slot came to.
enum Took {
    Refused,
    /// `first`: no other live entry held the key (on every instance, or
    /// on this one while Redis is unreachable).
    Granted {
        first: bool,
    },
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
            release: Script::from_lua(RELEASE_LUA),
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
            user,
            keys: Vec::new(),
            first_anywhere: false,
            released: false,
        };
        for (key, limit, refusal) in wanted {
            // On refusal `slot` drops, giving back what it already took.
            match self.take(&key, limit, session).await {
                Took::Refused => {
                    self.metrics
                        .rate_limit_rejections
                        .with_label_values(&[refusal.label()])
                        .inc();
                    return Err(refusal);
                }
                Took::Granted { first } => {
                    if refusal == Refused::PerUser {
                        slot.first_anywhere = first;
                    }
                }
            }
            slot.keys.push(key);
        }
        Ok(slot)
    }

    /// Takes one slot of `key`: in Redis when it answers, else locally.
    async fn take(&self, key: &str, limit: u32, session: SessionId) -> Took {
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
                    Ok(0) => Some(Took::Refused),
                    Ok(added) => Some(Took::Granted { first: added == 2 }),
                    Err(error) => {
                        tracing::debug!(%error, "connection caps: Redis failed; counting locally");
                        None
                    }
                }
            }
            None => None,
        };
        let Ok(mut local) = self.local.lock() else {
            // Poisoned by a panic elsewhere: never refuse everyone.
            return Took::Granted { first: false };
        };
        let sessions = local.entry(key.to_owned()).or_default();
        let took = shared.unwrap_or(if sessions.len() < limit as usize {
            Took::Granted {
                first: sessions.is_empty(),
            }
        } else {
            Took::Refused
        });
        if let Took::Granted { .. } = took {
            sessions.push(session);
        }
        took
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

    /// Gives `session`'s slots back; whether it was `user_key`'s last live
    /// entry anywhere (on this instance only, while Redis is unreachable).
    async fn give_back(&self, session: SessionId, keys: &[String], user_key: &str) -> bool {
        let last_here = self.forget_locally(session, keys, user_key);
        let Some((redis, _)) = &self.redis else {
            return last_here;
        };
        let member = session.to_string();
        let mut last = last_here;
        for key in keys {
            let call = self.release.evalsha_with_reload::<i64, _, _>(
                &redis.client,
                redis.key(&format!("conns:{key}")),
                vec![member.clone()],
            );
            // An entry not removed expires after TTL.
            match redis.call(REDIS_DEADLINE, call).await {
                Ok(left) if key == user_key => last = left == 0,
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "connection caps: Redis failed; entry left to expire");
                }
            }
        }
        last
    }

    /// Removes `session` from this instance's counts; whether it was
    /// `user_key`'s last here.
    fn forget_locally(&self, session: SessionId, keys: &[String], user_key: &str) -> bool {
        let Ok(mut local) = self.local.lock() else {
            return false;
        };
        let mut last = false;
        for key in keys {
            if let Some(sessions) = local.get_mut(key) {
                sessions.retain(|s| *s != session);
                if sessions.is_empty() {
                    local.remove(key);
                    last |= key == user_key;
                }
            }
        }
        last
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

impl Slot {
    /// Whether no other connection of this user was open on any instance
    /// when this one was granted.
    pub fn first_anywhere(&self) -> bool {
        self.first_anywhere
    }

    /// Gives the slots back; whether this was the user's last connection
    /// on any instance.
    pub async fn release(mut self) -> bool {
        self.released = true;
        let user_key = format!("user:{}", self.user.0);
        self.caps
            .give_back(self.session, &self.keys, &user_key)
            .await
    }
}

impl Drop for Slot {
    /// A slot dropped without [`Slot::release`] (a refused or failed
    /// upgrade) is given back in the background.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (caps, session, keys) = (
            self.caps.clone(),
            self.session,
            std::mem::take(&mut self.keys),
        );
        let user_key = format!("user:{}", self.user.0);
        tokio::spawn(async move {
            caps.give_back(session, &keys, &user_key).await;
        });
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
