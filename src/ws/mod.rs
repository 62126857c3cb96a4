//! The WebSocket edge (`GET /ws`): the wire contract ([`protocol`]), the
//! authenticated upgrade ([`upgrade`]), one actor per connection
//! ([`session`]) and the socket writer that drains its outbox ([`pump`]).

pub mod caps;
pub mod linger;
pub mod origin;
pub mod protocol;
pub mod pump;
pub mod quota;
pub mod session;
pub mod ticket;
pub mod upgrade;
