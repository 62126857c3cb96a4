//! A clean close for a connection the server gives up on (a slow
//! consumer): its 1013 close frame must reach the client.
//!
//! A slow reader still has frames (and the close frame) in flight when the
//! server has written its close. Were the socket closed then, whatever the
//! client sends next (a pong, its own close) would hit a closed socket, the
//! kernel would answer with a reset, and the reset makes the client's
//! kernel discard everything not yet read, close frame included.
//!
//! So, after the close frame, the socket is held open: the session actor
//! keeps reading the client's frames, discards them, and releases the
//! connection when the client's own close frame arrives (it has read ours)
//! or its input ends, or at [`DEADLINE`] at the latest. Only then does the
//! socket writer (`super::pump`) let the socket go. [`Linger`] is the state
//! the writer and the session share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest a closed connection waits for the client's close frame.
pub const DEADLINE: Duration = Duration::from_secs(10);

const OPEN: u8 = 0;
const LINGERING: u8 = 1;
const RELEASED: u8 = 2;

/// Whether a connection is closing and waiting for its client.
#[derive(Debug)]
pub struct Linger {
    state: AtomicU8,
    released: Notify,
    /// Set by [`Linger::begin`].
    deadline: Mutex<Option<Instant>>,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(OPEN),
            released: Notify::new(),
            deadline: Mutex::new(None),
        }
    }
}

impl Linger {
    /// The server is closing: hold the socket open until [`Linger::release`]
    /// or [`DEADLINE`]. Returns the deadline.
    pub fn begin(&self) -> Instant {
        let deadline = Instant::now() + DEADLINE;
        if let Ok(mut slot) = self.deadline.lock() {
            *slot = Some(deadline);
        }
        let _ = self
            .state
            .compare_exchange(OPEN, LINGERING, Ordering::AcqRel, Ordering::Acquire);
        deadline
    }

    /// Whether the connection is closing: client frames are discarded.
    pub fn is_lingering(&self) -> bool {
        self.state.load(Ordering::Acquire) == LINGERING
    }

    /// The client closed (or went away): the socket may shut down now.
    pub fn release(&self) {
        if self.state.swap(RELEASED, Ordering::AcqRel) == LINGERING {
            self.released.notify_waiters();
        }
    }

    /// Resolves once released, or at the deadline; at once if never begun.
    pub async fn wait(&self) {
        let deadline = self
            .deadline
            .lock()
            .ok()
            .and_then(|d| *d)
            .unwrap_or_else(Instant::now);
        let released = self.released.notified();
        if self.state.load(Ordering::Acquire) != LINGERING {
            return;
        }
        let _ = tokio::time::timeout_at(deadline, released).await;
    }
}
