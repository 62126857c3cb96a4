//! Single-use WebSocket tickets: `POST /api/v1/ws-ticket` trades the bearer
//! token for a random ticket that `GET /ws?ticket=` redeems once within
//! [`TTL`], so browsers (which cannot set headers on a WebSocket) keep the
//! token itself out of URLs and access logs.
//!
//! With Redis a ticket is `SET .. EX 30` and redeemed with `GETDEL`, so any
//! instance redeems it and only once. Without Redis (or while it fails) it
//! lives in a bounded map of this instance.

use crate::auth::Claims;
use crate::infra::redis::Redis;
use base64::Engine as _;
use fred::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a ticket may wait to be redeemed.
pub const TTL: Duration = Duration::from_secs(30);
/// Tickets held in process at most; issuing more is refused until some expire.
const LOCAL_MAX: usize = 10_000;
/// The longest a ticket call waits on Redis before using the local map.
const REDIS_DEADLINE: Duration = Duration::from_millis(500);

/// No room for another ticket in process (Redis down and many outstanding).
#[derive(Debug, thiserror::Error)]
#[error("too many outstanding WebSocket tickets; retry shortly")]
pub struct Full;

pub struct Tickets {
    redis: Option<Arc<Redis>>,
    local: Mutex<HashMap<String, (Instant, Claims)>>,
}

impl Tickets {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Self {
            redis,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh ticket standing for `claims` (the caller's verified token).
    pub async fn issue(&self, claims: &Claims) -> Result<String, Full> {
        let ticket = new_ticket();
        if let Some(redis) = &self.redis
            && let Ok(value) = serde_json::to_string(claims)
        {
            let set = redis.client.set::<(), _, _>(
                redis.key(&format!("ws-ticket:{ticket}")),
                value,
                Some(Expiration::EX(TTL.as_secs() as i64)),
                None,
                false,
            );
            match redis.call(REDIS_DEADLINE, set).await {
                Ok(()) => return Ok(ticket),
                Err(error) => {
                    tracing::debug!(%error, "ws ticket: Redis failed; keeping it in process");
                }
            }
        }
        let Ok(mut local) = self.local.lock() else {
            return Err(Full);
        };
        let now = Instant::now();
        if local.len() >= LOCAL_MAX {
            local.retain(|_, (until, _)| *until > now);
        }
        if local.len() >= LOCAL_MAX {
            return Err(Full);
        }
        local.insert(ticket.clone(), (now + TTL, claims.clone()));
        Ok(ticket)
    }

    /// The claims behind `ticket`, once; `None` when unknown, spent or old.
    pub async fn redeem(&self, ticket: &str) -> Option<Claims> {
        if let Some(redis) = &self.redis {
            let getdel = redis
                .client
                .getdel::<Option<String>, _>(redis.key(&format!("ws-ticket:{ticket}")));
            if let Ok(Some(value)) = redis.call(REDIS_DEADLINE, getdel).await
                && let Ok(claims) = serde_json::from_str(&value)
            {
                return Some(claims);
            }
        }
        let (until, claims) = self.local.lock().ok()?.remove(ticket)?;
        (until > Instant::now()).then_some(claims)
    }
}

/// 32 random bytes, base64url: unguessable, and safe in a query string.
fn new_ticket() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
