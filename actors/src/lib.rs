//! # parley-actors: the concurrency core of parley
//!
//! This crate knows nothing of HTTP, SQL, Redis or JSON frames. It owns the
//! vocabulary every layer shares (ids and the room message model) and the
//! ports ([`ports::MessageLog`]) that the application implements with
//! PostgreSQL or the embedded store.
//!
//! ## Actor map
//!
//! | module | owns | talks to |
//! |---|---|---|
//! | [`ids`] | identifier newtypes and their parsers | everyone |
//! | [`model`] | the stored room message | store, rooms, sessions |
//! | [`ports`] | the storage traits actors depend on | implemented in `src/store` |

pub mod ids;
pub mod model;
pub mod ports;
