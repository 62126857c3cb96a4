//! The one integration-test binary: parley started in-process on random
//! ports against the embedded store and a real PostgreSQL (a fresh database
//! per test). One module per feature; what they share is in `support`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod bad_input;
mod cache;
mod convergence;
mod db;
mod docs;
mod drain;
mod drain_under_load;
mod errors;
mod health;
mod layers;
mod log_sampling;
mod login_backoff;
mod logs;
mod metrics;
mod notifications;
mod postgres_outage;
mod posts;
mod push;
mod rate_limits;
mod redis_cluster;
mod retention;
mod revocation;
mod room_events;
mod rooms;
mod safety;
mod scale_out;
mod server_api;
mod static_files;
mod store_conformance;
mod tracing;
mod trusted_proxies;
mod unannounced;
mod users;
mod webhooks;
mod ws_access;
mod ws_caps;
mod ws_core;
mod ws_limits;
mod ws_origin;
mod ws_slow_consumer;
mod ws_ticket;
