//! The application server's VAPID identity (RFC 8292): a P-256 key pair
//! whose public half browsers subscribe with, and the signed JWT each push
//! request carries. jsonwebtoken signs (ES256), as it does parley's own
//! access tokens (RS256); this module only states the claims.
//!
//! A token names a push service's origin, not a subscription, so one is
//! signed per origin and reused (RFC 8292 section 2 lets a token be reused
//! while it is valid) until less than half its life is left: a signature
//! per origin every few hours, not one per push.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const TOKEN_TTL_S: i64 = 12 * 3600;
/// Origins whose token is kept. Push services are a handful (FCM,
/// Mozilla's, Apple's, ...); when users' endpoints name more, the cache
/// starts over rather than grow.
const CACHE_MAX: usize = 1024;

/// A signed `Authorization` value and when its token expires.
struct Signed {
    header: String,
    exp: i64,
}

/// The VAPID key pair and contact of this deployment.
pub struct Vapid {
    signing: EncodingKey,
    /// Uncompressed P-256 point, base64url: the `k` of the header and what
    /// `GET /push/vapid-public-key` answers.
    public: String,
    /// `sub`: `mailto:` or `https:` (`PARLEY_PUSH_VAPID_SUBJECT`).
    subject: String,
    /// Tokens by origin, reused while more than half their life is left.
    signed: Mutex<HashMap<String, Signed>>,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: i64,
    sub: &'a str,
}

impl Vapid {
    /// From `PARLEY_PUSH_VAPID_PRIVATE_KEY` (base64url 32-byte scalar), or
    /// a new key with a warning when unset.
    pub fn load(settings: &crate::config::PushSettings) -> anyhow::Result<Self> {
        let secret = match settings.vapid_key() {
            Some(raw) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(raw.trim_end_matches('='))
                    .context("PARLEY_PUSH_VAPID_PRIVATE_KEY: not base64url")?;
                p256::SecretKey::from_slice(&bytes)
                    .context("PARLEY_PUSH_VAPID_PRIVATE_KEY: not a P-256 private key")?
            }
            None => {
                tracing::warn!(
                    "PARLEY_PUSH_VAPID_PRIVATE_KEY is unset: generated a VAPID key for this process; \
                     browsers subscribed now stop getting pushes after a restart, and instances \
                     that do not share one key cannot push to each other's subscriptions"
                );
                p256::SecretKey::random(&mut rand::rngs::OsRng)
            }
        };
        Self::from_secret(&secret, &settings.vapid_subject)
    }

    fn from_secret(secret: &p256::SecretKey, subject: &str) -> anyhow::Result<Self> {
        let der = secret
            .to_pkcs8_der()
            .context("encoding the VAPID key as PKCS#8")?;
        let point = secret.public_key().to_encoded_point(false);
        Ok(Self {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            public: URL_SAFE_NO_PAD.encode(point.as_bytes()),
            subject: subject.to_owned(),
            signed: Mutex::default(),
        })
    }

    /// The public key, base64url of the uncompressed point: the
    /// `applicationServerKey` browsers subscribe with.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header value for a push to `origin` (the
    /// endpoint's `scheme://host[:port]`, RFC 8292 section 2): the token
    /// signed for it earlier while more than half its life is left, else a
    /// new one.
    pub fn authorization(&self, origin: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let fresh = |s: &Signed| s.exp - now > TOKEN_TTL_S / 2;
        if let Some(signed) = self.tokens().get(origin).filter(|s| fresh(s)) {
            return Ok(signed.header.clone());
        }
        let exp = now + TOKEN_TTL_S;
        let header = self.sign(origin, exp)?;
        let mut tokens = self.tokens();
        if tokens.len() >= CACHE_MAX {
            tokens.clear();
        }
        let signed = Signed {
            header: header.clone(),
            exp,
        };
        tokens.insert(origin.to_owned(), signed);
        Ok(header)
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, Signed>> {
        // A panic while holding it left a map that is still whole.
        self.signed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sign(&self, origin: &str, exp: i64) -> anyhow::Result<String> {
        let claims = Claims {
            aud: origin,
            exp,
            sub: &self.subject,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)
            .context("signing a VAPID token")?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_verifies_against_the_public_key_and_names_the_origin() {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let vapid = Vapid::from_secret(&secret, "mailto:ops@example.com").unwrap();
        let header = vapid.authorization("https://push.example.com").unwrap();
        let token = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split(", k=").next())
            .unwrap();
        let point = URL_SAFE_NO_PAD.decode(vapid.public_key()).unwrap();
        let (x, y) = (&point[1..33], &point[33..]);
        let key = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(x),
            &URL_SAFE_NO_PAD.encode(y),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://push.example.com"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "mailto:ops@example.com");
    }

    #[test]
    fn a_token_is_signed_once_per_origin_and_reused() {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let vapid = Vapid::from_secret(&secret, "mailto:ops@example.com").unwrap();
        let first = vapid.authorization("https://push.example.com").unwrap();
        let again = vapid.authorization("https://push.example.com").unwrap();
        let other = vapid.authorization("https://fcm.example.com").unwrap();
        assert_eq!(first, again);
        assert_ne!(first, other);
    }
}
