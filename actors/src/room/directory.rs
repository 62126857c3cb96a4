//! Finds or starts the actor of a room.
//!
//! A shared map rather than an actor: every session and writer looks rooms
//! up on the hot path, and a lookup must not queue behind a mailbox. Room
//! actors are started round-robin on a fixed pool of arbiters.

use super::RoomActor;
use crate::ids::RoomId;
use crate::ports::{FrameEncoder, MessageLog};
use actix::{Actor, Addr, ArbiterHandle};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct RoomDirectory {
    rooms: Mutex<HashMap<RoomId, Addr<RoomActor>>>,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
    log: Arc<dyn MessageLog>,
    encoder: Arc<dyn FrameEncoder>,
}

impl RoomDirectory {
    pub fn new(
        arbiters: Vec<ArbiterHandle>,
        log: Arc<dyn MessageLog>,
        encoder: Arc<dyn FrameEncoder>,
    ) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            arbiters,
            next: AtomicUsize::new(0),
            log,
            encoder,
        }
    }

    /// The room's actor, started if it is not running.
    pub fn get_or_start(&self, room: RoomId) -> Addr<RoomActor> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addr) = rooms.get(&room).filter(|a| a.connected()) {
            return addr.clone();
        }
        let actor = RoomActor::new(room, self.log.clone(), self.encoder.clone());
        let addr = match self.pick_arbiter() {
            Some(arbiter) => RoomActor::start_in_arbiter(&arbiter, |_| actor),
            None => actor.start(),
        };
        rooms.insert(room, addr.clone());
        addr
    }

    /// The room's actor if one is running (nobody subscribed otherwise).
    pub fn get(&self, room: RoomId) -> Option<Addr<RoomActor>> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.get(&room).filter(|a| a.connected()).cloned()
    }

    /// Every running room actor (drain, metrics).
    pub fn all(&self) -> Vec<Addr<RoomActor>> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.values().cloned().collect()
    }

    fn pick_arbiter(&self) -> Option<ArbiterHandle> {
        if self.arbiters.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        Some(self.arbiters[i].clone())
    }
}
