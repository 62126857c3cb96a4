//! # parley: a realtime chat and notification server
//!
//! ## Layout
//!
//! This crate is the application: it wires HTTP, configuration, auth and
//! storage to the actor engine in the `parley-actors` crate
//! (`actors/`), which knows nothing of any of them.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | `Settings`: defaults < `parley.toml` < environment |
//! | [`startup`] | `Application::build` (binds listeners, opens the store) and `run_until_stopped` |
//! | [`drain`] | the drain sequence (SIGTERM, SIGINT, `POST /admin/drain`) |
//! | [`metrics`] | every Prometheus metric, one registry per application |
//! | [`telemetry`] | the tracing subscriber (pretty or JSON), OTLP trace export when `OTEL_*` is set |
//! | [`breaker`] | circuit breakers around dependencies (PostgreSQL; Redis) |
//! | [`error`] | the one table mapping every error to HTTP status and problem type |
//! | [`domain`] | parsed newtypes: the only way client input gets in |
//! | [`auth`] | RS256 access tokens with rotating keys, refresh-token families, argon2id |
//! | [`store`] | the `Store` trait, PostgreSQL and embedded implementations |
//! | [`rate_limit`] | per-user and per-IP request limits (GCRA), in process or in Redis |
//! | [`login_backoff`] | exponential backoff per account after failed logins |
//! | [`redis`] | the Redis connections (fred): reconnect, health, stats |
//! | [`cache`] | cache-aside for profiles, posts and feed heads: in-process tier, then Redis, then the store |
//! | [`bus`] | the engine's bus over Redis pub/sub: rooms, users, presence across instances |
//! | [`http`] | one module per REST resource, health probes, OpenAPI |
//! | [`ws`] | `GET /ws`: the wire protocol, the upgrade, one actor per connection |
//! | [`notify`] | which events notify whom; stores, then pushes live |
//! | `fuzz` | (tests and cargo-fuzz only) the parsers untrusted bytes reach, as fuzzing entry points |

pub mod auth;
pub mod breaker;
pub mod bus;
pub mod cache;
pub mod config;
pub mod domain;
pub mod drain;
pub mod error;
#[cfg(any(test, fuzzing))]
pub mod fuzz;
pub mod http;
pub mod login_backoff;
pub mod metrics;
pub mod notify;
pub mod rate_limit;
pub mod redis;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod version;
pub mod ws;
