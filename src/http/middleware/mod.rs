//! The middleware of the HTTP listeners, outermost first: [`request_id`]
//! (and the root span), metrics, security headers, problem+json for the
//! framework's own errors, CORS, the drain gate; on `/api/v1`, [`authn`]
//! (verifies the bearer token once) then [`limits`] (GCRA per user or IP).

pub mod authn;
pub mod drain_gate;
pub mod limits;
pub mod metrics;
pub mod problem;
pub mod request_id;
pub mod request_span;
pub mod security;
