//! Password hashing with argon2id.
//!
//! The `argon2` crate's default parameters are OWASP's recommendation
//! (argon2id, 19 MiB, 2 passes, 1 lane). Hashing takes tens of milliseconds
//! of CPU and 19 MiB, so both functions run on the blocking pool, at most
//! one per core at a time.

use crate::domain::Password;
use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// Verified against when the user does not exist, so a login for an unknown
/// name takes as long as one with a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"parley-dummy-password", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// Hashes running at once. Each one holds 19 MiB and a core for tens of
/// milliseconds: a login flood must queue here, not multiply memory.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Semaphore::new(cores)
});

/// The PHC string of a new password hash.
pub async fn hash(password: Password) -> anyhow::Result<String> {
    let _permit = HASHING
        .acquire()
        .await
        .context("password hashing is shut down")?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Whether `password` matches `stored`; with `stored = None` it spends the
/// same time and answers `false`.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    let _permit = HASHING
        .acquire()
        .await
        .context("password hashing is shut down")?;
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
    .context("password verification task")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash(Password::parse("correct horse battery").unwrap())
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("wrong horse battery".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
