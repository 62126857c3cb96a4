//! Sending Web Push requests (RFC 8030) to browsers' push services: the
//! payload encrypted for the subscription (RFC 8291 `aes128gcm`, by the
//! `web-push-native` crate), signed with the deployment's VAPID key
//! ([`vapid`]), sent with reqwest to public addresses only ([`address`]),
//! and the push service's answer sorted into a [`SendOutcome`]. What to
//! send when, and what an outcome means for the outbox, is
//! `service::push`'s.

pub mod address;
pub mod vapid;

use crate::domain::push::PushEndpoint;
use anyhow::Context;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

pub use vapid::Vapid;

/// How urgent a push is (RFC 8030 section 5.3): push services may hold
/// back `normal` ones on a device saving battery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    High,
}

impl Urgency {
    fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// What the push service made of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// `201`/`202`: accepted; it delivers from here.
    Delivered,
    /// `5xx`, `429` or no answer: try again, after `after` if it said.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// `404`/`410`: the subscription is gone for good.
    Gone,
    /// Any other answer, or an endpoint or key parley cannot use: this push
    /// will never be accepted.
    Rejected(String),
}

/// A subscription's keys as stored: the browser's public point and secret.
pub struct Recipient<'a> {
    pub endpoint: &'a PushEndpoint,
    pub p256dh: &'a [u8],
    pub auth: &'a [u8],
}

/// Sends pushes; one per instance, shared by its sender tasks.
pub struct WebPush {
    vapid: Arc<Vapid>,
    /// For endpoints not on the allow-list: resolves public addresses only.
    public: reqwest::Client,
    /// For allow-listed `host:port`s: any address.
    allowed: reqwest::Client,
    /// The `TTL` header.
    ttl_s: u32,
}

impl WebPush {
    /// `timeout` bounds one request, connection included: it must end well
    /// within the claim's lease.
    pub fn new(vapid: Arc<Vapid>, ttl_s: u32, timeout: Duration) -> anyhow::Result<Self> {
        let builder = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                // A redirect would leave the checked host.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("parley/", env!("CARGO_PKG_VERSION")))
        };
        Ok(Self {
            vapid,
            public: builder()
                .dns_resolver(Arc::new(address::PublicOnly))
                .build()
                .context("building the push HTTP client")?,
            allowed: builder().build().context("building the push HTTP client")?,
            ttl_s,
        })
    }

    pub fn vapid(&self) -> &Vapid {
        &self.vapid
    }

    /// Encrypts `message` for `to` and posts it to its push service.
    pub async fn send(&self, to: &Recipient<'_>, message: &[u8], urgency: Urgency) -> SendOutcome {
        let body = match encrypt(to, message) {
            Ok(body) => body,
            Err(error) => return SendOutcome::Rejected(format!("{error:#}")),
        };
        let authorization = match self.vapid.authorization(&to.endpoint.origin()) {
            Ok(value) => value,
            Err(error) => {
                return SendOutcome::Retry {
                    reason: format!("{error:#}"),
                    after: None,
                };
            }
        };
        let client = if to.endpoint.allowed() {
            &self.allowed
        } else {
            &self.public
        };
        let request = client
            .post(to.endpoint.url().clone())
            .header("TTL", self.ttl_s)
            .header("Urgency", urgency.as_str())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body);
        match request.send().await {
            Ok(response) => classify(response.status(), response.headers()),
            Err(error) => SendOutcome::Retry {
                reason: format!("{:#}", anyhow::Error::new(error)),
                after: None,
            },
        }
    }
}

fn encrypt(to: &Recipient<'_>, message: &[u8]) -> anyhow::Result<Vec<u8>> {
    let public = web_push_native::p256::PublicKey::from_sec1_bytes(to.p256dh)
        .context("the subscription's p256dh is not a P-256 point")?;
    let auth: [u8; 16] = to
        .auth
        .try_into()
        .context("the subscription's auth secret is not 16 bytes")?;
    let auth = web_push_native::Auth::from(auth);
    web_push_native::encrypt(message.to_vec(), &public, &auth)
        .map_err(|e| anyhow::anyhow!("encrypting the push payload: {e}"))
}

/// Sorts a push service's answer (RFC 8030 section 5, RFC 8292 section 4).
pub fn classify(status: StatusCode, headers: &reqwest::header::HeaderMap) -> SendOutcome {
    match status.as_u16() {
        200..=299 => SendOutcome::Delivered,
        404 | 410 => SendOutcome::Gone,
        429 | 500..=599 => SendOutcome::Retry {
            reason: format!("push service answered {status}"),
            after: retry_after(headers),
        },
        _ => SendOutcome::Rejected(format!("push service answered {status}")),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn answers_sort_into_outcomes() {
        let none = HeaderMap::new();
        assert_eq!(classify(StatusCode::CREATED, &none), SendOutcome::Delivered);
        assert_eq!(classify(StatusCode::GONE, &none), SendOutcome::Gone);
        assert_eq!(classify(StatusCode::NOT_FOUND, &none), SendOutcome::Gone);
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &none),
            SendOutcome::Rejected(_)
        ));
        let mut later = HeaderMap::new();
        later.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &later),
            SendOutcome::Retry {
                reason: "push service answered 429 Too Many Requests".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, &none),
            SendOutcome::Retry { after: None, .. }
        ));
    }
}
