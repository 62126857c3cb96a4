//! Room actors: one per room with local subscribers, spread over a pool of
//! arbiters (threads) so rooms do not share one mailbox. The
//! [`RoomDirectory`] finds or starts a room's actor.

pub mod actor;
pub mod directory;
pub mod messages;
pub mod presence;
pub mod sequence;

pub use actor::RoomActor;
pub use directory::RoomDirectory;

#[cfg(test)]
mod tests;
