//! See [`super`].

use super::messages::{Push, PushMany, Register, Unregister};
use crate::ids::{SessionId, UserId};
use crate::outbox::Outbox;
use crate::ports::{Bus, BusScope};
use crate::restart::Restarts;
use actix::{Actor, Context, Handler, Supervised};
use std::collections::HashMap;
use std::sync::Arc;

pub struct Notifier {
    users: HashMap<UserId, HashMap<SessionId, Outbox>>,
    /// A user's notifications from other instances arrive on their bus
    /// channel, watched while they have a session here.
    bus: Arc<dyn Bus>,
    restarts: Restarts,
}

impl Notifier {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self {
            users: HashMap::new(),
            bus,
            restarts: Restarts::default(),
        }
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

/// A restarted notifier lost its map; sessions re-register on reconnect.
/// Every watched channel is released so the counts stay balanced.
impl Supervised for Notifier {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        for user in self.users.drain().map(|(user, _)| user) {
            self.bus.unwatch(BusScope::User(user));
        }
        self.restarts.pause(ctx, "notifier");
    }
}

impl Handler<Register> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Self::Context) {
        let sessions = self.users.entry(msg.user).or_default();
        if sessions.is_empty() {
            let bus = self.bus.clone();
            let user = msg.user;
            actix::spawn(async move { bus.watch(BusScope::User(user)).await });
        }
        sessions.insert(msg.session, msg.outbox);
    }
}

impl Handler<Unregister> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) {
        if let Some(sessions) = self.users.get_mut(&msg.user) {
            sessions.remove(&msg.session);
            if sessions.is_empty() {
                self.users.remove(&msg.user);
                self.bus.unwatch(BusScope::User(msg.user));
            }
        }
    }
}

impl Notifier {
    fn push(&self, msg: Push) {
        let Some(sessions) = self.users.get(&msg.user) else {
            return;
        };
        // A slow session closes itself (its outbox is marked) and
        // unregisters, which keeps the bus watch count balanced.
        for outbox in sessions.values() {
            let _ = outbox.text(msg.frame.clone());
        }
    }
}

impl Handler<Push> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Push, _: &mut Self::Context) {
        self.push(msg);
    }
}

impl Handler<PushMany> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: PushMany, _: &mut Self::Context) {
        for push in msg.pushes {
            self.push(push);
        }
    }
}
