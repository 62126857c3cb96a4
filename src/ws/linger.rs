//! A connection the server is closing: its client's frames are discarded.
//!
//! Once the socket writer (`super::pump`) has begun writing a close frame
//! (the session's own close, a room's 1013 for a slow subscriber, the
//! writer's 1013 for a full outbox), nothing the client sends is acted on:
//! the session reads and discards it until the writer tells it the socket
//! is done. Reading on matters for a slow reader: a client blocked sending
//! to a server that stopped reading may never get to read the close frame.
//! The socket itself is ended by `super::socket::shut_down`, which waits
//! (at most [`DEADLINE`]) for the client to close its side.
//!
//! The other way round, the session tells the writer when it has ended
//! ([`Linger::end_session`]): nothing more will be queued, so a writer
//! stuck on a client that stopped reading may give up after [`DEADLINE`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest a closing connection waits for its client: to take the
/// close frame and the frames before it, and to close its side.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Whether the server is closing the connection, and whether its session
/// has ended.
#[derive(Debug, Default)]
pub struct Linger {
    closing: AtomicBool,
    ended: AtomicBool,
    ended_notify: Notify,
}

impl Linger {
    /// The server is closing: the client's frames are discarded from now.
    pub fn begin(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Whether the connection is closing: client frames are discarded.
    pub fn is_lingering(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The session has ended: nothing more will be queued for the socket.
    pub fn end_session(&self) {
        self.ended.store(true, Ordering::Release);
        self.ended_notify.notify_waiters();
    }

    /// Resolves once the session has ended (at once if it has).
    pub async fn session_ended(&self) {
        loop {
            let notified = self.ended_notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so an end in between
            // still wakes this wait.
            notified.as_mut().enable();
            if self.ended.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}
