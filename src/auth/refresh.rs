//! Opaque refresh tokens: 256 random bits, base64url. Only their SHA-256 is
//! stored, so a leaked database cannot mint sessions.
//!
//! Every token rotated from one login shares a family id, a UUIDv7 made at
//! that login: its timestamp is when the family began, so the family's
//! absolute deadline ([`family_deadline`]) needs no column of its own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new token and the hash to store for it.
pub fn generate() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a presented token.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// When a family begun at its id's timestamp must stop rotating: rotation
/// slides a token's own expiry, never past this. `None` for an id without a
/// timestamp (never minted by parley), which is then treated as expired.
pub fn family_deadline(
    family: uuid::Uuid,
    max_age_s: u64,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let (secs, nanos) = family.get_timestamp()?.to_unix();
    let began = chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)?;
    began.checked_add_signed(chrono::Duration::seconds(i64::try_from(max_age_s).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_ends_its_max_age_after_the_login_that_began_it() {
        let began = chrono::Utc::now();
        let family = uuid::Uuid::now_v7();
        let deadline = family_deadline(family, 90 * 24 * 3600).unwrap();
        let age = deadline - began;
        assert!(
            (age - chrono::Duration::days(90)).num_seconds().abs() <= 1,
            "{age}"
        );
        assert_eq!(family_deadline(uuid::Uuid::new_v4(), 60), None);
    }
}
