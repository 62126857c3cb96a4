//! The rooms a session was granted, trusted for [`ACCESS_TTL`] so a busy
//! publisher is not checked against the store on every frame. Refusals are
//! never cached: a user added to a room a moment later must not wait out
//! the TTL. A revocation (`Control::Revoked`) forgets the room at once.

use crate::domain::{RoomId, RoomRole};
use crate::store::Room;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a checked room access is trusted before it is checked again.
pub const ACCESS_TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct AccessCache {
    granted: HashMap<RoomId, (Instant, Arc<Room>, Option<RoomRole>)>,
}

impl AccessCache {
    /// Whether access to `room` was granted less than [`ACCESS_TTL`] ago.
    pub fn is_fresh(&self, room: RoomId) -> bool {
        self.granted
            .get(&room)
            .is_some_and(|(at, _, _)| at.elapsed() < ACCESS_TTL)
    }

    /// Access to `room`, where the user holds `role` (none in a public
    /// room they have not joined).
    pub fn grant(&mut self, room: Room, role: Option<RoomRole>) {
        self.granted
            .insert(room.id, (Instant::now(), Arc::new(room), role));
    }

    /// The room as loaded by the last grant, fresh or not.
    pub fn room(&self, room: RoomId) -> Option<Arc<Room>> {
        self.granted.get(&room).map(|(_, found, _)| found.clone())
    }

    /// The user's role in `room` as of the last grant.
    pub fn role(&self, room: RoomId) -> Option<RoomRole> {
        self.granted.get(&room).and_then(|(_, _, role)| *role)
    }

    pub fn forget(&mut self, room: RoomId) {
        self.granted.remove(&room);
    }
}
