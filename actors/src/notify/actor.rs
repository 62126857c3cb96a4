//! See [`super`].

use super::messages::{Push, Register, Unregister};
use crate::ids::{SessionId, UserId};
use crate::outbox::Outbox;
use actix::{Actor, Context, Handler, Supervised};
use std::collections::HashMap;

#[derive(Default)]
pub struct Notifier {
    users: HashMap<UserId, HashMap<SessionId, Outbox>>,
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Supervised for Notifier {}

impl Handler<Register> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Self::Context) {
        self.users
            .entry(msg.user)
            .or_default()
            .insert(msg.session, msg.outbox);
    }
}

impl Handler<Unregister> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) {
        if let Some(sessions) = self.users.get_mut(&msg.user) {
            sessions.remove(&msg.session);
            if sessions.is_empty() {
                self.users.remove(&msg.user);
            }
        }
    }
}

impl Handler<Push> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Push, _: &mut Self::Context) {
        let Some(sessions) = self.users.get_mut(&msg.user) else {
            return;
        };
        // A slow session closes itself (its outbox is marked); forget it here.
        sessions.retain(|_, outbox| outbox.text(msg.frame.clone()).is_ok());
    }
}
