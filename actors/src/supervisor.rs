//! Starts the actor system and hands out the [`Engine`] handle.
//!
//! Restart policy: the writers, the hub, the notifier and the dependency
//! actors run under `actix::Supervisor`, which restarts an actor that stops;
//! their `Supervised::restarting` hooks reset what cannot be trusted, then
//! wait out the backoff of [`crate::restart::Restarts`] (the one place the
//! policy lives). Room actors are restarted on demand by the
//! [`RoomDirectory`] when their address is found dead. Actix does not catch
//! panics, so actors are written not to panic (clippy denies
//! `unwrap`/`expect`).

use crate::bus::{BusInbox, Invalidator};
use crate::dependency::{CheckTiming, DependencyHandle};
use crate::hub::Hub;
use crate::notify::Notifier;
#[cfg(doc)]
use crate::ports::NoObserver;
use crate::ports::{Bus, Dependency, FrameEncoder, MessageLog, Observer, OpenWriterLog};
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
    /// The database and cache actors, in the order they close.
    pub dependencies: Arc<[DependencyHandle]>,
    /// Keeps the arbiters' threads alive as long as the engine.
    _arbiters: Arc<Vec<Arbiter>>,
}

impl Engine {
    /// Starts one arbiter per core for rooms and writers, then the actors.
    /// Must run inside an actix `System`.
    pub fn start(parts: EngineParts) -> Self {
        let EngineParts {
            log,
            writer_log,
            encoder,
            bus,
            observer,
            dependencies,
            check_timing,
        } = parts;
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 16);
        let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
        let handles: Vec<ArbiterHandle> = arbiters.iter().map(Arbiter::handle).collect();
        let rooms =
            RoomDirectory::new(handles.clone(), log.clone(), encoder, bus.clone(), observer);
        let writers = WriterPool::start(&handles, &writer_log, rooms.clone(), bus.clone());
        let hub = actix::Supervisor::start(|_| Hub::default());
        let notifier = actix::Supervisor::start(move |_| Notifier::new(bus));
        let dependencies = dependencies
            .into_iter()
            .map(|(name, dependency)| DependencyHandle::start(name, dependency, check_timing))
            .collect();
        tracing::info!(threads, "actor engine started");
        Self {
            rooms,
            writers,
            hub,
            notifier,
            dependencies,
            _arbiters: Arc::new(arbiters),
        }
    }
}

/// What the engine is started with: the application's ports.
pub struct EngineParts {
    /// What rooms read (replays, gap fills).
    pub log: Arc<dyn MessageLog>,
    /// What each arbiter's writers append through.
    pub writer_log: OpenWriterLog,
    pub encoder: Arc<dyn FrameEncoder>,
    pub bus: Arc<dyn Bus>,
    /// Where rooms and writers report for metrics ([`NoObserver`] for none).
    pub observer: Arc<dyn Observer>,
    /// The services to watch, by name (`database`, `cache`), in the order
    /// they close at the end of the drain.
    pub dependencies: Vec<(&'static str, Arc<dyn Dependency>)>,
    pub check_timing: CheckTiming,
}

impl Engine {
    /// The dependency actor called `name`, if that service is configured.
    pub fn dependency(&self, name: &str) -> Option<&DependencyHandle> {
        self.dependencies.iter().find(|d| d.name == name)
    }

    /// Closes every dependency's connections, in order (the last step of
    /// the drain).
    pub async fn close_dependencies(&self) {
        for dependency in self.dependencies.iter() {
            dependency.close().await;
        }
    }

    /// Where the bus hands in the other instances' events.
    pub fn inbox(&self, invalidate: Option<Invalidator>) -> BusInbox {
        BusInbox {
            rooms: self.rooms.clone(),
            hub: self.hub.clone(),
            notifier: self.notifier.clone(),
            invalidate,
            revoked: None,
        }
    }
}

/// Keeps the type public for tests that start single actors.
pub fn start_local<A: Actor<Context = actix::Context<A>>>(actor: A) -> Addr<A> {
    actor.start()
}
