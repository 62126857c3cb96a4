//! Starts the actor system and hands out the [`Engine`] handle.
//!
//! Restart policy, in one place: the writers, the hub and the notifier run
//! under `actix::Supervisor`, which restarts an actor that stops (their
//! `Supervised::restarting` hooks reset what cannot be trusted); room
//! actors are restarted on demand by the [`RoomDirectory`] when their
//! address is found dead. Actix does not catch panics, so actors are written
//! not to panic (clippy denies `unwrap`/`expect`).

use crate::bus::{BusInbox, Invalidator};
use crate::hub::Hub;
use crate::notify::Notifier;
use crate::ports::{Bus, FrameEncoder, MessageLog};
use crate::room::RoomDirectory;
use crate::writer::WriterPool;
use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use std::sync::Arc;

/// What the application holds to talk to the actors.
#[derive(Clone)]
pub struct Engine {
    pub rooms: Arc<RoomDirectory>,
    pub writers: WriterPool,
    pub hub: Addr<Hub>,
    pub notifier: Addr<Notifier>,
    /// Keeps the arbiters' threads alive as long as the engine.
    _arbiters: Arc<Vec<Arbiter>>,
}

impl Engine {
    /// Starts one arbiter per core for rooms and writers, then the actors.
    /// Must run inside an actix `System`.
    pub fn start(
        log: Arc<dyn MessageLog>,
        encoder: Arc<dyn FrameEncoder>,
        bus: Arc<dyn Bus>,
    ) -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 16);
        let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
        let handles: Vec<ArbiterHandle> = arbiters.iter().map(Arbiter::handle).collect();
        let rooms = RoomDirectory::new(handles.clone(), log.clone(), encoder, bus.clone());
        let writers = WriterPool::start(&handles, log, rooms.clone(), bus.clone());
        let hub = actix::Supervisor::start(|_| Hub::default());
        let notifier = actix::Supervisor::start(move |_| Notifier::new(bus));
        tracing::info!(threads, "actor engine started");
        Self {
            rooms,
            writers,
            hub,
            notifier,
            _arbiters: Arc::new(arbiters),
        }
    }
}

impl Engine {
    /// Where the bus hands in the other instances' events.
    pub fn inbox(&self, invalidate: Option<Invalidator>) -> BusInbox {
        BusInbox {
            rooms: self.rooms.clone(),
            hub: self.hub.clone(),
            notifier: self.notifier.clone(),
            invalidate,
        }
    }
}

/// Keeps the type public for tests that start single actors.
pub fn start_local<A: Actor<Context = actix::Context<A>>>(actor: A) -> Addr<A> {
    actor.start()
}
