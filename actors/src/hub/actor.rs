//! See [`super`].

use super::messages::{Broadcast, Connect, Disconnect, RevokeAccess, Revoked, SessionCount};
use crate::ids::{SessionId, UserId};
use crate::outbox::{Outbox, Outgoing};
use actix::{Actor, AsyncContext, Context, Handler, Recipient, Supervised};
use std::collections::HashMap;

struct Entry {
    user: UserId,
    outbox: Outbox,
    control: Recipient<Revoked>,
}

#[derive(Default)]
pub struct Hub {
    sessions: HashMap<SessionId, Entry>,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

/// After a restart the registry is empty; sessions that stay connected are
/// missed by a drain broadcast but still closed when the process exits.
impl Supervised for Hub {}

impl Handler<Connect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Self::Context) {
        let entry = Entry {
            user: msg.user,
            outbox: msg.outbox,
            control: msg.control,
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

impl Handler<Broadcast> for Hub {
    type Result = usize;

    fn handle(&mut self, msg: Broadcast, ctx: &mut Self::Context) -> usize {
        let outboxes: Vec<Outbox> = self.sessions.values().map(|e| e.outbox.clone()).collect();
        let told = outboxes.len();
        let step = msg
            .spread
            .checked_div(told.max(1) as u32)
            .unwrap_or_default();
        for (i, outbox) in outboxes.into_iter().enumerate() {
            let frame = msg.frame.clone();
            let close = msg.close;
            ctx.run_later(step * i as u32, move |_, _| {
                let _ = outbox.text(frame);
                if let Some(code) = close {
                    let _ = outbox.push(Outgoing::Close(code, "server restarting".into()));
                }
            });
        }
        told
    }
}

impl Handler<RevokeAccess> for Hub {
    type Result = ();

    fn handle(&mut self, msg: RevokeAccess, _: &mut Self::Context) {
        let revoked = Revoked { room: msg.room };
        for entry in self.sessions.values().filter(|e| e.user == msg.user) {
            entry.control.do_send(revoked);
        }
    }
}
