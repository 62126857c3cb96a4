//! A clean close for a connection the server gives up on (a slow
//! consumer): its 1013 close frame must reach the client.
//!
//! actix-ws ends the response body right after the close frame, and actix
//! then closes the socket about a second after its last write reached the
//! kernel. A slow reader still has frames (and the close frame) in flight
//! at that moment; whatever it sends next (a pong, its own close) hits a
//! closed socket, the kernel answers with a reset, and the reset makes the
//! client's kernel discard everything not yet read, close frame included.
//!
//! So, after the close frame, the response body is held open: the session
//! actor keeps reading the client's frames, discards them, and releases the
//! connection when the client's own close frame arrives (it has read ours)
//! or its input ends, or at [`DEADLINE`] at the latest. Only then does the
//! body end and actix shut the socket down. [`Linger`] is the state the
//! socket writer, the session and the body share; [`LingeringBody`] is the
//! body.

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
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
    async fn wait(&self) {
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

/// The WebSocket response body: actix-ws's, held open after it ends while
/// the connection lingers.
pub struct LingeringBody<B> {
    inner: B,
    linger: std::sync::Arc<Linger>,
    waiting: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl<B> LingeringBody<B> {
    pub fn new(inner: B, linger: std::sync::Arc<Linger>) -> Self {
        Self {
            inner,
            linger,
            waiting: None,
        }
    }
}

impl<B: MessageBody + Unpin> MessageBody for LingeringBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.waiting.is_none() {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(None) => {
                    let linger = this.linger.clone();
                    this.waiting = Some(Box::pin(async move { linger.wait().await }));
                }
                other => return other,
            }
        }
        match this.waiting.as_mut() {
            Some(waiting) => waiting.as_mut().poll(cx).map(|()| None),
            None => Poll::Ready(None),
        }
    }
}
