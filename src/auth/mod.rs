//! Authentication: who is calling.
//!
//! - [`password`]: argon2id hashing (OWASP parameters), off the async threads.
//! - [`jwt`]: RS256 access tokens signed by the newest of several keys, each
//!   with a `kid`, all published as JWKS so keys rotate without logouts.
//! - [`refresh`]: opaque refresh tokens, stored hashed, rotated on every use;
//!   replaying a spent one revokes its whole family.
//! - [`extract`]: the [`extract::AuthUser`] extractor handlers take.

pub mod extract;
pub mod jwt;
pub mod password;
pub mod refresh;

pub use extract::AuthUser;
pub use jwt::{Claims, JwtKeys};
