//! Shared infrastructure below the services: the Redis connections
//! ([`redis`]), the engine's bus over Redis pub/sub ([`bus`]), request
//! limits held across instances ([`limiter`]) and circuit breakers
//! ([`breaker`]), and Web Push requests to browsers' push services
//! ([`webpush`]).

pub mod breaker;
pub mod bus;
pub mod limiter;
pub mod redis;
pub mod webpush;
