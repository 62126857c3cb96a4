//! What the tests share: one home for each helper.
//!
//! - [`app`]: parley started in-process ([`TestApp`]), HTTP calls, problem
//!   assertions, the admin listener, [`eventually`].
//! - [`fixtures`]: users, members, posts and history set up over the API.
//! - [`ws`]: the WebSocket client ([`WsClient`]).
//! - [`metrics`]: reading Prometheus' text format.
//! - [`jwt`]: RSA keys and tokens signed outside the server.
//! - [`process`]: the `parley` binary as a separate process.
//! - [`db`]: fresh PostgreSQL databases; [`store`]: rows made straight
//!   through a store.
//! - [`cluster`]: several processes behind haproxy, private Redis and
//!   Sentinel.
//! - [`redis_cluster`]: a private Redis Cluster (three masters, three
//!   replicas) to fail over and reshard.
//! - [`webhook_receiver`]: a real webhook endpoint that verifies signatures
//!   and records deliveries; the admin calls for endpoints and API keys.
//! - [`push_service`]: a Web Push service that decrypts like a browser.

pub mod app;
pub mod cluster;
pub mod db;
pub mod fixtures;
pub mod jwt;
pub mod metrics;
pub mod process;
pub mod push_service;
pub mod redis_cluster;
pub mod store;
pub mod webhook_receiver;
pub mod ws;

pub use app::{
    Backend, PASSWORD, TestApp, TestUser, assert_problem, eventually, parts, test_settings,
};
pub use jwt::TestKey;
pub use metrics::metric;
pub use process::ServerProcess;
pub use ws::{FRAME_TIMEOUT, UPGRADE_HEADERS, WsClient};
