//! Server API keys (contract 6.3): 32 random bytes shown once as
//! `psk_` + base64url, stored as their SHA-256 (see
//! `migrations/V2026120603__api_keys.sql` for why a fast hash suffices).
//! The `psk_` prefix keeps keys and JWTs apart: a JWT never starts with it,
//! and a key never verifies as a JWT.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "psk_";

/// Characters of a key kept for display: the prefix and 8 more.
const SHOWN: usize = PREFIX.len() + 8;

/// A new key, its hash and its display prefix.
pub struct Minted {
    pub key: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

pub fn mint() -> Minted {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    Minted {
        hash: hash(&key),
        prefix: key[..SHOWN].to_owned(),
        key,
    }
}

/// What a presented key is looked up by.
pub fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Whether a bearer token is shaped like an API key (not a JWT).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_key_is_found_by_its_hash_and_shows_only_its_prefix() {
        let minted = mint();
        assert!(looks_like_key(&minted.key));
        assert_eq!(hash(&minted.key), minted.hash);
        assert!(minted.key.starts_with(&minted.prefix));
        assert!(minted.prefix.len() < minted.key.len() / 2);
    }
}
