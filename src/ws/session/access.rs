//! The rooms a session was granted, trusted for [`ACCESS_TTL`] so a busy
//! publisher is not checked against the store on every frame. Refusals are
//! never cached: a user added to a room a moment later must not wait out
//! the TTL. A revocation (`Control::Revoked`) forgets the room at once; a
//! change of standing (`Control::Recheck`: a mute, a block) forgets it or
//! every room, so the next publish is checked again.

use crate::domain::{RoomId, RoomRole};
use crate::service::rooms::{Access, Silenced};
use crate::store::Room;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a checked room access is trusted before it is checked again.
pub const ACCESS_TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct AccessCache {
    granted: HashMap<RoomId, Grant>,
}

/// One checked access.
struct Grant {
    at: Instant,
    /// Shared with every notification task of this room's publishes.
    room: Arc<Room>,
    role: Option<RoomRole>,
    silenced: Option<Silenced>,
}

impl AccessCache {
    /// Whether access to `room` was granted less than [`ACCESS_TTL`] ago.
    pub fn is_fresh(&self, room: RoomId) -> bool {
        self.granted
            .get(&room)
            .is_some_and(|g| g.at.elapsed() < ACCESS_TTL)
    }

    /// Access to the room of `access`, with the user's standing there.
    pub fn grant(&mut self, access: Access) {
        let grant = Grant {
            at: Instant::now(),
            room: Arc::new(access.room),
            role: access.role,
            silenced: access.silenced,
        };
        self.granted.insert(grant.room.id, grant);
    }

    /// The room as loaded by the last grant, fresh or not.
    pub fn room(&self, room: RoomId) -> Option<Arc<Room>> {
        self.granted.get(&room).map(|g| g.room.clone())
    }

    /// The user's role in `room` as of the last grant.
    pub fn role(&self, room: RoomId) -> Option<RoomRole> {
        self.granted.get(&room).and_then(|g| g.role)
    }

    /// Why the user may not publish in `room`, as of the last grant.
    pub fn silenced(&self, room: RoomId) -> Option<Silenced> {
        self.granted.get(&room).and_then(|g| g.silenced)
    }

    pub fn forget(&mut self, room: RoomId) {
        self.granted.remove(&room);
    }

    pub fn forget_all(&mut self) {
        self.granted.clear();
    }
}
