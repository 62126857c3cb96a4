//! RS256 access tokens.
//!
//! Keys come from `PARLEY_JWT_KEYS_DIR` (every `*.pem` RSA private key, PKCS#8
//! or PKCS#1; the file whose name sorts last signs, all verify) or, when
//! unset, one key generated at start-up. A key's `kid` is its RFC 7638 JWK
//! thumbprint, so every instance sharing the folder agrees on it without
//! configuration, and renaming a file does not invalidate tokens.

use crate::config::AuthSettings;
use crate::domain::UserId;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// The claims of a parley access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: UserId,
    pub name: String,
    pub iss: String,
    /// `PARLEY_JWT_AUDIENCE`: which service the token is for.
    pub aud: String,
    /// Issued at; a token from the future is refused.
    pub iat: i64,
    /// Not before: the same instant as `iat`.
    pub nbf: i64,
    pub exp: i64,
    /// The login (refresh-token family, a UUIDv7) the token was issued
    /// for, so revoking the login refuses the token. Absent from tokens
    /// minted before it existed, which are judged by `iat` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
}

impl Claims {
    /// When the login behind the token began (Unix ms): its family's
    /// timestamp, or for a token without `sid` the start of its `iat`
    /// second (the earliest it can have been issued, so a revocation in
    /// that second refuses it).
    pub fn login_began_ms(&self) -> i64 {
        self.sid
            .and_then(|family| family.get_timestamp())
            .and_then(|ts| {
                let (secs, nanos) = ts.to_unix();
                let ms = i64::try_from(secs).ok()?.checked_mul(1000)?;
                Some(ms + i64::from(nanos / 1_000_000))
            })
            .unwrap_or_else(|| self.iat.saturating_mul(1000))
    }
}

/// The smallest RSA modulus parley signs or verifies with: NIST SP 800-131A
/// retired smaller keys, and tokens signed with one can be forged.
pub const MIN_RSA_BITS: usize = 2048;

/// Clock skew tolerated between instances, in seconds.
pub(crate) const LEEWAY_S: u64 = 5;

/// Why a token was refused (all of them are a 401 to the client).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token must be signed with RS256")]
    WrongAlgorithm,
    #[error("the token's key id is unknown")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token's signature or claims are invalid")]
    Invalid,
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// One public key as JWKS publishes it.
#[derive(Clone, Debug, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub usage: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub n: String,
    pub e: String,
}

/// The signing key, every verifying key, and the JWKS document.
pub struct JwtKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: Vec<Jwk>,
    issuer: String,
    audience: String,
    access_ttl_s: u64,
    /// Tokens already verified, by their SHA-256, with their claims. A
    /// client sends the same access token with every request, and the RSA
    /// signature check is most of the cost of an authenticated request
    /// (docs/benchmarks.md): it is done once per token and instance. Only
    /// tokens that verified get in, an entry outlives no token (time to
    /// live: the access-token lifetime), and the cache is bounded.
    verified: moka::sync::Cache<[u8; 32], Claims>,
}

/// Verified tokens remembered per instance: a few MiB at most.
const VERIFIED_CAPACITY: u64 = 20_000;

impl JwtKeys {
    /// Loads the key folder, or generates one key with a warning.
    pub fn load(settings: &AuthSettings) -> anyhow::Result<Self> {
        // Two backends could be linked by other crates; pick ours explicitly.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let keys = match &settings.keys_dir {
            Some(dir) => read_dir(dir)?,
            None => {
                tracing::warn!(
                    "PARLEY_JWT_KEYS_DIR is unset: generated a signing key; tokens will not survive a restart or work on other instances"
                );
                vec![
                    RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                        .context("generating an RSA key")?,
                ]
            }
        };
        Self::from_keys(keys, settings)
    }

    /// Signs with the last of `keys`, verifies with all (tests and the
    /// fuzz target `jwt` bring their own keys).
    pub fn from_keys(keys: Vec<RsaPrivateKey>, settings: &AuthSettings) -> anyhow::Result<Self> {
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut signing = None;
        for key in &keys {
            let jwk = jwk_of(&key.to_public_key());
            let decoding = DecodingKey::from_rsa_components(&jwk.n, &jwk.e)
                .context("building a verifying key")?;
            verifying.insert(jwk.kid.clone(), decoding);
            let pem = key.to_pkcs8_pem(LineEnding::LF).context("encoding a key")?;
            signing = Some((
                jwk.kid.clone(),
                EncodingKey::from_rsa_pem(pem.as_bytes()).context("loading a signing key")?,
            ));
            jwks.push(jwk);
        }
        let Some((signing_kid, signing)) = signing else {
            bail!("no RSA private key found");
        };
        Ok(Self {
            signing_kid,
            signing,
            verifying,
            jwks,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl_s: settings.access_ttl_s,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(std::time::Duration::from_secs(
                    settings.access_ttl_s + LEEWAY_S,
                ))
                .build(),
        })
    }

    /// Signs an access token for the login `family`; returns it with its
    /// lifetime in seconds.
    pub fn issue(
        &self,
        user: UserId,
        name: &str,
        family: uuid::Uuid,
    ) -> anyhow::Result<(String, u64)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            name: name.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + self.access_ttl_s as i64,
            sid: Some(family),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.signing_kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.signing).context("signing a token")?;
        Ok((token, self.access_ttl_s))
    }

    /// Checks algorithm, key id, signature, issuer, audience, expiry, and
    /// that the token is not from the future (`nbf`, `iat`). A token that
    /// verified before is only checked for expiry: nothing else about it
    /// can change while the keys stay the same.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            // As `jsonwebtoken` judges `exp`: expired once past it by more
            // than the leeway.
            if claims.exp + LEEWAY_S as i64 >= chrono::Utc::now().timestamp() {
                return Ok(claims);
            }
            self.verified.invalidate(&digest);
            return Err(TokenError::Expired);
        }
        let claims = self.verify_signature(token)?;
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }

    /// The full check of a token not seen before.
    fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = LEEWAY_S;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud", "iat", "nbf"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                _ => TokenError::Invalid,
            })?;
        // jsonwebtoken checks `nbf` but not `iat`: a token "issued" in the
        // future was minted with a wrong clock or to outlive its `exp` check.
        if claims.iat > chrono::Utc::now().timestamp() + LEEWAY_S as i64 {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.jwks })
    }
}

/// Every `*.pem` in `dir`, sorted by file name.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<RsaPrivateKey>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("PARLEY_JWT_KEYS_DIR: reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("PARLEY_JWT_KEYS_DIR: no *.pem files in {}", dir.display());
    }
    paths
        .iter()
        .map(|path| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let key = RsaPrivateKey::from_pkcs8_pem(&pem)
                .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
                .with_context(|| format!("{} is not an RSA private key in PEM", path.display()))?;
            let bits = key.size() * 8;
            if bits < MIN_RSA_BITS {
                bail!(
                    "PARLEY_JWT_KEYS_DIR: {} holds an RSA key of {bits} bits; keys must have at least {MIN_RSA_BITS} bits",
                    path.display()
                );
            }
            Ok(key)
        })
        .collect()
}

/// The JWK of a public key, with its RFC 7638 thumbprint as `kid`.
fn jwk_of(key: &RsaPublicKey) -> Jwk {
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    // RFC 7638: the required members, in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    Jwk {
        kty: "RSA",
        usage: "sig",
        alg: "RS256",
        kid,
        n,
        e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), MIN_RSA_BITS).unwrap();
        JwtKeys::from_keys(vec![key], &AuthSettings::default()).unwrap()
    }

    #[test]
    fn a_token_verifies_the_same_the_second_time_from_the_cache() {
        let keys = keys();
        let user = UserId::new();
        let (token, _) = keys.issue(user, "ada", uuid::Uuid::now_v7()).unwrap();
        let first = keys.verify(&token).unwrap();
        assert_eq!(keys.verified.iter().count(), 1);
        let again = keys.verify(&token).unwrap();
        assert_eq!((first.sub, first.exp), (again.sub, again.exp));
        assert_eq!(again.sub, user);
    }

    #[test]
    fn a_cached_token_is_refused_once_it_expires() {
        let keys = keys();
        let (token, _) = keys
            .issue(UserId::new(), "ada", uuid::Uuid::now_v7())
            .unwrap();
        let mut claims = keys.verify(&token).unwrap();
        // The token's lifetime passed since it was verified and cached.
        claims.exp = chrono::Utc::now().timestamp() - LEEWAY_S as i64 - 1;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        keys.verified.insert(digest, claims);
        assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));
        assert!(keys.verified.get(&digest).is_none());
    }

    #[test]
    fn a_token_names_its_login_and_when_it_began() {
        let keys = keys();
        let family = uuid::Uuid::now_v7();
        let (token, _) = keys.issue(UserId::new(), "ada", family).unwrap();
        let mut claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sid, Some(family));
        let (secs, nanos) = family.get_timestamp().unwrap().to_unix();
        let began = secs as i64 * 1000 + i64::from(nanos / 1_000_000);
        assert_eq!(claims.login_began_ms(), began);
        // A token minted before `sid` existed: the start of its `iat` second.
        claims.sid = None;
        assert_eq!(claims.login_began_ms(), claims.iat * 1000);
    }

    #[test]
    fn a_token_that_fails_verification_is_never_cached() {
        let keys = keys();
        let (token, _) = keys
            .issue(UserId::new(), "ada", uuid::Uuid::now_v7())
            .unwrap();
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(keys.verify(&forged).is_err());
        assert!(keys.verify(&forged).is_err());
        assert_eq!(keys.verified.iter().count(), 0);
    }
}
