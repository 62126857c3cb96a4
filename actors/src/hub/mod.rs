//! The hub knows every local session: who is connected, and how to reach
//! each one. It counts connections, at drain tells every session to
//! reconnect elsewhere, and ends the sessions whose credential was revoked
//! ([`messages::EndSessions`]).

pub mod actor;
pub mod messages;

pub use actor::Hub;
