//! Finds or starts the actor of a room.
//!
//! A shared map rather than an actor: every session and writer looks rooms
//! up on the hot path, and a lookup must not queue behind a mailbox. Room
//! actors are started round-robin on a fixed pool of arbiters.

use super::RoomActor;
use crate::ids::RoomId;
use crate::ports::{Bus, FrameEncoder, MessageLog, Observer};
use actix::{Actor, Addr, ArbiterHandle};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub struct RoomDirectory {
    rooms: Mutex<HashMap<RoomId, Addr<RoomActor>>>,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
    log: Arc<dyn MessageLog>,
    encoder: Arc<dyn FrameEncoder>,
    bus: Arc<dyn Bus>,
    /// Handed to room actors, which remove themselves when idle.
    this: Weak<RoomDirectory>,
    /// Rooms and writers report through it.
    observer: Arc<dyn Observer>,
}

impl RoomDirectory {
    pub fn new(
        arbiters: Vec<ArbiterHandle>,
        log: Arc<dyn MessageLog>,
        encoder: Arc<dyn FrameEncoder>,
        bus: Arc<dyn Bus>,
        observer: Arc<dyn Observer>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            rooms: Mutex::new(HashMap::new()),
            arbiters,
            next: AtomicUsize::new(0),
            log,
            encoder,
            bus,
            this: this.clone(),
            observer,
        })
    }

    /// The metrics observer of rooms and writers.
    pub fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// The room's actor, started if it is not running.
    pub fn get_or_start(&self, room: RoomId) -> Addr<RoomActor> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addr) = rooms.get(&room).filter(|a| a.connected()) {
            return addr.clone();
        }
        let actor = RoomActor::new(
            room,
            self.log.clone(),
            self.encoder.clone(),
            self.bus.clone(),
            self.this.clone(),
        );
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

    /// Forgets `room`'s actor if it is still `addr` (an idle room stopping;
    /// a newer actor for the room stays).
    pub fn remove_if_same(&self, room: RoomId, addr: &Addr<RoomActor>) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.get(&room).is_some_and(|a| a == addr) {
            rooms.remove(&room);
        }
    }

    /// Running room actors (metrics).
    pub fn len(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
