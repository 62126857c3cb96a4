//! See [`super`].

use super::messages::{
    Connect, Control, Credential, Disconnect, DrainAll, EndSessions, RecheckAccess, RevokeAccess,
    SessionCount,
};
use crate::ids::{SessionId, UserId};
use crate::restart::Restarts;
use actix::{Actor, AsyncContext, Context, Handler, Recipient, Supervised};
use std::collections::HashMap;

struct Entry {
    user: UserId,
    control: Recipient<Control>,
    credential: Credential,
}

#[derive(Default)]
pub struct Hub {
    sessions: HashMap<SessionId, Entry>,
    restarts: Restarts,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

/// A restarted hub keeps its registry: actix keeps the actor's struct, and
/// the sessions in it are still connected (each disconnects itself).
impl Supervised for Hub {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.restarts.pause(ctx, "hub");
    }
}

impl Handler<Connect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Self::Context) {
        let entry = Entry {
            user: msg.user,
            control: msg.control,
            credential: msg.credential,
        };
        self.sessions.insert(msg.session, entry);
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Self::Context) {
        self.sessions.remove(&msg.session);
    }
}

impl Handler<SessionCount> for Hub {
    type Result = usize;

    fn handle(&mut self, _: SessionCount, _: &mut Self::Context) -> usize {
        self.sessions.len()
    }
}

impl Handler<DrainAll> for Hub {
    type Result = usize;

    fn handle(&mut self, msg: DrainAll, ctx: &mut Self::Context) -> usize {
        let controls: Vec<Recipient<Control>> =
            self.sessions.values().map(|e| e.control.clone()).collect();
        let told = controls.len();
        let step = msg
            .spread
            .checked_div(told.max(1) as u32)
            .unwrap_or_default();
        for (i, control) in controls.into_iter().enumerate() {
            ctx.run_later(step * i as u32, move |_, _| control.do_send(Control::Drain));
        }
        told
    }
}

impl Handler<RecheckAccess> for Hub {
    type Result = ();

    fn handle(&mut self, msg: RecheckAccess, _: &mut Self::Context) {
        let recheck = Control::Recheck { room: msg.room };
        for entry in self.sessions.values().filter(|e| e.user == msg.user) {
            entry.control.do_send(recheck);
        }
    }
}

impl Handler<RevokeAccess> for Hub {
    type Result = ();

    fn handle(&mut self, msg: RevokeAccess, _: &mut Self::Context) {
        let revoked = Control::Revoked { room: msg.room };
        for entry in self.sessions.values().filter(|e| e.user == msg.user) {
            entry.control.do_send(revoked);
        }
    }
}

impl Handler<EndSessions> for Hub {
    type Result = ();

    fn handle(&mut self, msg: EndSessions, _: &mut Self::Context) {
        let ended = self
            .sessions
            .values()
            .filter(|e| e.user == msg.user && e.credential.is_ended_by(msg.ended));
        for entry in ended {
            entry.control.do_send(Control::SignedOut);
        }
    }
}
