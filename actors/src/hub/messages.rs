//! Messages the [`super::Hub`] handles, and the [`Control`] it forwards to
//! sessions.

use crate::ids::{RoomId, SessionId, UserId};
use crate::outbox::Outbox;
use actix::{Message, Recipient};
use std::time::Duration;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub user: UserId,
    pub outbox: Outbox,
    /// Where the session hears [`Control`] messages.
    pub control: Recipient<Control>,
    /// What the session was opened with, for [`EndSessions`].
    pub credential: Credential,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub session: SessionId,
}

/// Local sessions now.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SessionCount;

/// `user` lost access to `room` (removed from it): every session of the
/// user forgets its cached access and its subscription.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevokeAccess {
    pub user: UserId,
    pub room: RoomId,
}

/// `user`'s standing in `room` (or in every room, `None`) changed without
/// their losing access (muted, unmuted, blocked by a peer): their sessions
/// forget the cached access and check it again at the next publish.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecheckAccess {
    pub user: UserId,
    pub room: Option<RoomId>,
}

/// Tells every session to drain ([`Control::Drain`]), spread evenly over
/// `spread` so clients do not reconnect all at once. Answers how many
/// sessions were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DrainAll {
    pub spread: Duration,
}

/// The credential a session was opened with, in the engine's terms: the
/// application decides what a login and its family are (for parley, the
/// refresh family of the access token); the engine only matches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential {
    /// When the login behind the credential began (Unix milliseconds).
    pub began_ms: i64,
    /// The login's family, opaque to the engine; `None` when unknown.
    pub family: Option<uuid::Uuid>,
}

/// Which of a user's sessions [`EndSessions`] ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every session whose credential began strictly before this instant
    /// (Unix milliseconds): a login made at the instant itself or later
    /// survives.
    BeganBefore(i64),
    /// Every session whose credential belongs to this family.
    Family(uuid::Uuid),
}

impl Credential {
    /// Whether `ended` covers a session opened with this credential.
    pub fn is_ended_by(&self, ended: Ended) -> bool {
        match ended {
            Ended::BeganBefore(instant) => self.began_ms < instant,
            Ended::Family(family) => self.family == Some(family),
        }
    }
}

/// The user's credentials matching `ended` were revoked: each matching
/// local session is told [`Control::SignedOut`]. Idempotent: a session
/// already gone is not there to match, and one opened later with a newer
/// credential does not match.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct EndSessions {
    pub user: UserId,
    pub ended: Ended,
}

/// What the hub tells a session.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub enum Control {
    /// The session no longer has access to `room`.
    Revoked { room: RoomId },
    /// Check access to `room` (every room: `None`) again before the next
    /// publish; the subscription stays.
    Recheck { room: Option<RoomId> },
    /// The instance is draining: finish in-flight publishes, send
    /// `reconnect`, close ([`crate::outbox::CloseReason::Restart`]).
    Drain,
    /// The credential the session was opened with was revoked: the session
    /// tells its client and closes.
    SignedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_ended_by_an_instant_after_its_login_or_by_its_family() {
        let family = uuid::Uuid::now_v7();
        let credential = Credential {
            began_ms: 1_000,
            family: Some(family),
        };
        assert!(credential.is_ended_by(Ended::BeganBefore(1_001)));
        // A login made at the revocation's instant came after it.
        assert!(!credential.is_ended_by(Ended::BeganBefore(1_000)));
        assert!(credential.is_ended_by(Ended::Family(family)));
        assert!(!credential.is_ended_by(Ended::Family(uuid::Uuid::now_v7())));
        let unknown = Credential {
            family: None,
            ..credential
        };
        assert!(!unknown.is_ended_by(Ended::Family(family)));
    }
}
