//! The hub knows every local session: who is connected, and how to reach
//! each one. It counts connections and, at drain, tells every session to
//! reconnect elsewhere.

pub mod actor;
pub mod messages;

pub use actor::Hub;
