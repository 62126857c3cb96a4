//! The frame `type`s of parley's WebSocket contract, client then server.
//!
//! The harness's own copy (it shares no code with parley on purpose). It
//! depends on nothing, so parley's tests include this file and check that
//! it equals the server's list (`tests/api/docs.rs`); the harness's and
//! the reference server's frames are checked against it here.

/// Every frame `type` a client may send.
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "publish",
    "edit",
    "delete",
    "react",
    "read",
    "typing",
    "ping",
];

/// Every frame `type` the server sends.
pub const SERVER_FRAME_TYPES: &[&str] = &[
    "hello",
    "subscribed",
    "unsubscribed",
    "truncated",
    "message",
    "edit",
    "delete",
    "reaction",
    "read",
    "receipt",
    "ack",
    "typing",
    "presence",
    "notification",
    "pong",
    "error",
    "reconnect",
];
