//! Tokens signed outside the server: the one JWT signer of the suite, and
//! the RSA keys and key folders it signs with.

use super::app::TestApp;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::Value;
use std::path::PathBuf;

/// A fresh 2048-bit RSA key (the least parley accepts).
pub fn new_key() -> RsaPrivateKey {
    key_with_bits(2048)
}

/// A fresh RSA key of `bits` bits.
pub fn key_with_bits(bits: usize) -> RsaPrivateKey {
    RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap()
}

/// `key` as PKCS#8 PEM, as parley reads it from its key folder.
pub fn pem(key: &RsaPrivateKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// A fresh key folder holding `keys` under the given file names.
pub fn keys_dir(keys: &[(&str, &RsaPrivateKey)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parley-keys-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, key) in keys {
        std::fs::write(dir.join(name), pem(key).as_bytes()).unwrap();
    }
    dir
}

/// Signs `claims` RS256 with `key`, naming `kid`.
pub fn sign(key: &RsaPrivateKey, kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem(key).as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// The `kid` of every key `app` publishes, each an RS256 RSA key.
pub async fn server_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["kty"], "RSA");
            assert_eq!(k["alg"], "RS256");
            k["kid"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// An RSA key in a key folder of its own: start parley with
/// `settings.auth.keys_dir = Some(key.dir.clone())` and the test can sign
/// tokens the server trusts (expired ones, say).
pub struct TestKey {
    key: RsaPrivateKey,
    pub dir: PathBuf,
}

impl TestKey {
    pub fn new() -> Self {
        let key = new_key();
        let dir = keys_dir(&[("key.pem", &key)]);
        Self { key, dir }
    }

    /// Signs `claims` RS256 under the `kid` that `app` publishes for this key.
    pub async fn sign(&self, app: &TestApp, claims: &Value) -> String {
        let kid = server_kids(app).await.remove(0);
        sign(&self.key, &kid, claims)
    }
}
