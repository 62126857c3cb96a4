//! Implementations of the engine's [`Bus`](parley_actors::ports::Bus) port:
//! [`RedisBus`] bridges instances over Redis pub/sub;
//! [`LocalBus`](parley_actors::ports::LocalBus) is the single-instance no-op.
//! On a Redis Cluster the bus uses sharded pub/sub ([`shards`] keeps its
//! subscriptions on the slots' owners).

mod envelope;
mod redis;
mod shards;

pub use self::redis::RedisBus;
