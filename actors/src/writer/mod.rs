//! Writers persist publishes with group commit, then ack them and hand the
//! new messages to their rooms.
//!
//! Several writers run, each on its own arbiter; a room always maps to the
//! same writer ([`WriterPool::for_room`]), which keeps each room's commits,
//! and so its deliveries, in `seq` order while different rooms commit in
//! parallel.

pub mod actor;
pub mod messages;

pub use actor::{WRITERS_PER_ARBITER, Writer, WriterPool};
pub use messages::{Publish, PublishError, WhenIdle};
