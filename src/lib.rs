//! # parley: a realtime chat and notification server
//!
//! ## Layout
//!
//! This crate is the application: it wires HTTP, configuration, auth and
//! storage to the actor engine in the `parley-actors` crate
//! (`actors/`), which knows nothing of any of them.
//!
//! The top-level modules are layers: each uses only the ones below it
//! (`tests/api/layers.rs` fails the build's tests otherwise), so a module
//! can be read knowing only what is beneath it.
//!
//! | layer (top first) | owns |
//! |---|---|
//! | `app/` | the composition root: `startup` (`Application::build`, `run_until_stopped`), `state` (`AppState`, every part), `routes` (what each listener serves), `openapi` (`GET /openapi.json`), `drain` (the drain sequence, `POST /admin/drain`) |
//! | `ws/` | the WebSocket edge: `protocol` (the two frame enums), `upgrade`, `session` (one actor per connection), `pump`, tickets, connection caps, the publish quota, `live` (notification frames) |
//! | `http/` | the HTTP edge: one module per REST resource, `health`, `admin`, `error` (`ApiError`, problem+json), `page` (`PageQuery`, `Page`), `middleware/` (request id and span, authn, limits, metrics, drain gate, CORS and security headers, problem+json) |
//! | `service/` | the policies both edges call, each once: `rooms` (who may read, write, manage), `publish` (store, answer, count, notify), `notify` (who is notified of what) |
//! | `webhooks/` | the webhook outbox's door (`emit`, presence counts), Standard Webhooks signing, the delivery worker |
//! | `auth/` | RS256 access tokens with rotating keys, refresh-token families, argon2id, login backoff; no actix |
//! | `store/` | the `Store` trait, its PostgreSQL and embedded implementations, and the cache in front of it |
//! | `infra/` | the Redis connections, the engine's bus over Redis pub/sub, request limits across instances, circuit breakers |
//! | `observability/` | every Prometheus metric, logs and traces, the build's version, the lifecycle flags the probes report |
//! | `config` | `Settings`: defaults < `parley.toml` < environment |
//! | `domain/` | parsed newtypes (the only way client input gets in), `Invalid` (why a value was refused), `Code` (the one error-code table) |
//! | `fuzz` | (tests and cargo-fuzz only) the parsers untrusted bytes reach, as fuzzing entry points |

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
#[cfg(any(test, fuzzing))]
pub mod fuzz;
pub mod http;
pub mod infra;
pub mod observability;
pub mod service;
pub mod store;
pub mod webhooks;
pub mod ws;
