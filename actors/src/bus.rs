//! Where events from other instances enter the engine.
//!
//! The [`Bus`](crate::ports::Bus) implementation hands every event it
//! receives to [`BusInbox::deliver`], which routes it to the same actors a
//! local event would reach. Nothing here trusts arrival order: rooms
//! re-sequence messages themselves (see [`crate::room`]).

use crate::hub::Hub;
use crate::hub::messages::{EndSessions, Ended, RecheckAccess};
use crate::hub::revoke_room_access;
use crate::ids::UserId;
use crate::notify::Notifier;
use crate::notify::messages::Push;
use crate::ports::BusEvent;
use crate::room::RoomDirectory;
use crate::room::messages::{Committed, Receipt, RemotePresenceChanged, Resync, Typing};
use actix::Addr;
use std::sync::Arc;

/// Invalidation of cached values is the application's business; it
/// registers what to call here.
pub type Invalidator = Arc<dyn Fn(&str) + Send + Sync>;

/// Revoked credentials are the application's to refuse (the engine only
/// ends the sessions opened with them); it registers what to call here.
pub type RevocationSink = Arc<dyn Fn(UserId, Ended) + Send + Sync>;

#[derive(Clone)]
pub struct BusInbox {
    pub rooms: Arc<RoomDirectory>,
    pub hub: Addr<Hub>,
    pub notifier: Addr<Notifier>,
    pub invalidate: Option<Invalidator>,
    /// Told of every [`BusEvent::EndSessions`], before the hub ends them.
    pub revoked: Option<RevocationSink>,
}

impl BusInbox {
    /// Registers where revoked credentials go (see [`RevocationSink`]).
    pub fn on_revoked(mut self, sink: RevocationSink) -> Self {
        self.revoked = Some(sink);
        self
    }

    /// Events may have been lost (the bus reconnected or fell behind):
    /// every room compares its stream with the log and fills what is missing.
    pub fn resync_rooms(&self) {
        for room in self.rooms.all() {
            room.do_send(Resync);
        }
    }

    /// Routes one event from instance `origin` (never this one).
    ///
    /// Async for one reason: a revocation is finished (the hub has told
    /// every session to forget the access, the room has been asked to
    /// evict) before the caller hands over the next event, so a message
    /// committed after a ban and received after it can never reach the
    /// banned user's sessions ahead of the eviction. Every other event is
    /// only queued on an actor's mailbox, in arrival order.
    pub async fn deliver(&self, origin: &str, event: BusEvent) {
        match event {
            BusEvent::Committed { room, messages } => {
                // Nobody here subscribes to the room: nothing to do.
                if let Some(addr) = self.rooms.get(room) {
                    addr.do_send(Committed { messages });
                }
            }
            BusEvent::Receipt { room, user, seq } => {
                if let Some(addr) = self.rooms.get(room) {
                    addr.do_send(Receipt { user, seq });
                }
            }
            BusEvent::Typing { room, user } => {
                if let Some(addr) = self.rooms.get(room) {
                    addr.do_send(Typing {
                        session: None,
                        user,
                    });
                }
            }
            BusEvent::Presence { room, user, online } => {
                if let Some(addr) = self.rooms.get(room) {
                    addr.do_send(RemotePresenceChanged {
                        instance: origin.to_owned(),
                        user,
                        online,
                    });
                }
            }
            BusEvent::Notification { user, frame } => {
                self.notifier.do_send(Push {
                    user,
                    frame: frame.into(),
                });
            }
            BusEvent::Revoke { room, user, reason } => {
                revoke_room_access(&self.hub, &self.rooms, user, room, reason).await;
            }
            BusEvent::Recheck { user, room } => {
                self.hub.do_send(RecheckAccess { user, room });
            }
            BusEvent::Invalidate { key } => {
                if let Some(invalidate) = &self.invalidate {
                    invalidate(&key);
                }
            }
            BusEvent::EndSessions { user, ended } => {
                // Refused first, so a client that reconnects at once after
                // its close cannot come back in with the revoked token.
                if let Some(revoked) = &self.revoked {
                    revoked(user, ended);
                }
                self.hub.do_send(EndSessions { user, ended });
            }
        }
    }
}
