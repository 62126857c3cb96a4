//! Authentication: who is calling.
//!
//! - [`password`]: argon2id hashing (OWASP parameters), off the async threads.
//! - [`jwt`]: RS256 access tokens signed by the newest of several keys, each
//!   with a `kid`, all published as JWKS so keys rotate without logouts.
//! - [`refresh`]: opaque refresh tokens, stored hashed, rotated on every use;
//!   replaying a spent one revokes its whole family.
//! - [`login_backoff`]: exponential backoff per account after failed logins.
//! - [`api_key`]: the server API's keys: minted, shown once, stored hashed.
//! - [`revocation`]: the revoked logins whose access tokens are refused
//!   (log out everywhere, refresh-token reuse).

pub mod api_key;
pub mod jwt;
pub mod login_backoff;
pub mod password;
pub mod refresh;
pub mod revocation;

pub use jwt::{Claims, JwtKeys};
pub use revocation::Revocations;
