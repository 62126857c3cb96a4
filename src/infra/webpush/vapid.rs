//! The application server's VAPID identity (RFC 8292): a P-256 key pair
//! whose public half browsers subscribe with, and the signed JWT each push
//! request carries. jsonwebtoken signs (ES256), as it does parley's own
//! access tokens (RS256); this module only states the claims.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;

/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const TOKEN_TTL_S: i64 = 12 * 3600;

/// The VAPID key pair and contact of this deployment.
pub struct Vapid {
    signing: EncodingKey,
    /// Uncompressed P-256 point, base64url: the `k` of the header and what
    /// `GET /push/vapid-public-key` answers.
    public: String,
    /// `sub`: `mailto:` or `https:` (`PARLEY_PUSH_VAPID_SUBJECT`).
    subject: String,
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
        })
    }

    /// The public key, base64url of the uncompressed point: the
    /// `applicationServerKey` browsers subscribe with.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header value for a push to `origin` (the
    /// endpoint's `scheme://host[:port]`, RFC 8292 section 2).
    pub fn authorization(&self, origin: &str) -> anyhow::Result<String> {
        let claims = Claims {
            aud: origin,
            exp: chrono::Utc::now().timestamp() + TOKEN_TTL_S,
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
}
