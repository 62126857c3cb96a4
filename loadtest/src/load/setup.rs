//! Everything before the first WebSocket: checking that both URLs point at
//! 127.0.0.0/8, and for parley registering users and creating public rooms
//! over REST (for the reference server, rooms are fresh UUID strings).
//!
//! parley limits `/api/v1/auth/*` per client IP and the API per user; the
//! server must be started with `PARLEY_RATE_AUTH_PER_MIN` and
//! `PARLEY_RATE_API_PER_MIN` raised (see the README). A `429` is retried a
//! few times after its `Retry-After`, then reported with that advice.

use super::cli::{Args, Plan, Target};
use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Room creations in flight at once.
const ROOM_CONCURRENCY: usize = 8;
/// Attempts per REST call when the server answers 429.
const ATTEMPTS: u32 = 5;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Tokens (parley only) and room names for the run.
pub struct Setup {
    pub tokens: Vec<String>,
    pub rooms: Vec<String>,
    /// Short random id that makes names and client ids unique to this run.
    pub run_id: String,
}

/// Resolves `host:port` of `url` and insists on 127.0.0.0/8.
pub async fn loopback_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    let host = parsed.host_str().context("the URL has no host")?.to_owned();
    let port = parsed
        .port_or_known_default()
        .context("the URL has no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| matches!(a.ip(), IpAddr::V4(ip) if ip.is_loopback()))
        .copied();
    match addr {
        Some(addr) => Ok(addr),
        None => {
            bail!("{url} does not resolve to 127.0.0.0/8; this harness only loads local servers")
        }
    }
}

pub async fn prepare(args: &Args, plan: &Plan) -> anyhow::Result<Setup> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    if args.target == Target::Reference {
        let rooms = (0..plan.rooms)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        return Ok(Setup {
            tokens: Vec::new(),
            rooms,
            run_id,
        });
    }
    loopback_addr(&args.http).await?;
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: args.http.trim_end_matches('/').to_owned(),
    };
    let tokens: Vec<String> = stream::iter(0..plan.users)
        .map(|i| api.register(&run_id, i))
        .buffered(args.register_concurrency.max(1))
        .try_collect()
        .await?;
    let rooms: Vec<String> = stream::iter(0..plan.rooms)
        .map(|i| api.create_room(&run_id, i, &tokens[i % tokens.len()]))
        .buffered(ROOM_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Setup {
        tokens,
        rooms,
        run_id,
    })
}

struct Api {
    client: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl Api {
    async fn register(&self, run_id: &str, i: usize) -> anyhow::Result<String> {
        let username = format!("lt{run_id}u{i}");
        let body = json!({
            "username": username,
            "email": format!("{username}@loadtest.example"),
            "password": "loadtest-password",
        });
        let url = format!("{}/api/v1/auth/register", self.base);
        let tokens: Tokens = self
            .post(&url, None, &body, "PARLEY_RATE_AUTH_PER_MIN")
            .await?;
        Ok(tokens.access_token)
    }

    async fn create_room(&self, run_id: &str, i: usize, token: &str) -> anyhow::Result<String> {
        let body = json!({ "name": format!("loadtest {run_id} {i}"), "kind": "public" });
        let url = format!("{}/api/v1/rooms", self.base);
        let room: Created = self
            .post(&url, Some(token), &body, "PARLEY_RATE_API_PER_MIN")
            .await?;
        Ok(room.id)
    }

    /// POSTs JSON, retrying a `429` after its `Retry-After` a few times.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        token: Option<&str>,
        body: &serde_json::Value,
        limit_var: &str,
    ) -> anyhow::Result<T> {
        for _ in 0..ATTEMPTS {
            let mut request = self.client.post(url).json(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .map_or(Duration::from_secs(1), Duration::from_secs);
                tokio::time::sleep(wait.min(MAX_RETRY_AFTER)).await;
                continue;
            }
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                bail!("POST {url} answered {status}: {text}");
            }
            return response
                .json()
                .await
                .with_context(|| format!("reading the answer to POST {url}"));
        }
        bail!("POST {url} stayed rate limited (429); start parley with {limit_var} raised")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_targets_are_accepted() {
        assert_eq!(
            loopback_addr("ws://127.0.0.1:9100/ws").await.unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert_eq!(loopback_addr("http://127.0.0.3").await.unwrap().port(), 80);
        assert!(loopback_addr("ws://10.0.0.1:80/ws").await.is_err());
        assert!(loopback_addr("ws://[::1]:80/ws").await.is_err());
        assert!(loopback_addr("not a url").await.is_err());
    }
}
