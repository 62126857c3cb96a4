//! The notifier pushes notification frames to every local session of a
//! user. The notification is stored before it gets here; a user with no
//! session reads it over REST.

pub mod actor;
pub mod messages;

pub use actor::Notifier;
