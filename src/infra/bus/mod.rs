//! Implementations of the engine's [`Bus`](parley_actors::ports::Bus) port:
//! [`RedisBus`] bridges instances over Redis pub/sub;
//! [`LocalBus`](parley_actors::ports::LocalBus) is the single-instance no-op.

mod envelope;
mod redis;

pub use self::redis::RedisBus;
