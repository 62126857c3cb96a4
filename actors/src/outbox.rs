//! A connection's bounded outbound queue.
//!
//! Producers (room actors, the notifier, the session itself) never wait on a
//! slow client: [`Outbox::push`] either queues the frame or, when the queue is
//! full, marks the connection as a slow consumer. The connection's socket
//! writer sees that mark and closes it ([`CloseReason::SlowConsumer`]); the
//! client recovers with `subscribe` + `since`. Nothing buffers without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, mpsc};

/// Why a connection is closed, in the engine's terms. The application maps
/// each to what its protocol sends (`src/ws/protocol.rs`: a WebSocket close
/// code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The session ended normally (logout, heartbeat timeout).
    Normal,
    /// Sustained abuse (rate limit) or an expired credential.
    Policy,
    /// A frame larger than the limit.
    TooBig,
    /// The client broke the WebSocket framing rules (an unmasked frame, a
    /// continuation with nothing to continue, a reserved opcode).
    ProtocolViolation,
    /// A text message that was not UTF-8.
    InvalidText,
    /// The server failed.
    Failure,
    /// The instance is draining; reconnect elsewhere.
    Restart,
    /// The connection could not keep up with its frames; reconnect and
    /// resubscribe with `since`.
    SlowConsumer,
}

/// What the socket writer sends, in order.
///
/// Every connection's queue preallocates slots of this size, so the rare
/// variants are boxed to keep a slot at the size of the common one
/// (`Text`: a shared pointer and a length).
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// A serialised server frame, shared by every recipient.
    Text(Arc<str>),
    Ping,
    Pong(Box<[u8]>),
    Close(Box<Closing>),
}

/// A close: why, and a description for the client's logs.
#[derive(Clone, Debug)]
pub struct Closing {
    pub reason: CloseReason,
    pub description: String,
}

impl Outgoing {
    pub fn close(reason: CloseReason, description: impl Into<String>) -> Outgoing {
        Outgoing::Close(Box::new(Closing {
            reason,
            description: description.into(),
        }))
    }
}

const _: () = assert!(
    std::mem::size_of::<Outgoing>() <= 24,
    "an outbox slot grew: box the new variant"
);

/// The sending half, cloned into every actor that writes to the connection.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    overflow: Arc<Overflow>,
}

/// Set once the queue overflowed; the writer closes the connection.
#[derive(Debug, Default)]
pub struct Overflow {
    flag: AtomicBool,
    notify: Notify,
}

impl Overflow {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Resolves once the queue overflowed.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// The receiving half, owned by the connection's socket writer.
pub struct Inbox {
    pub rx: mpsc::Receiver<Outgoing>,
    pub overflow: Arc<Overflow>,
}

/// The frame was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the connection is a slow consumer")]
    Full,
    #[error("the connection is closed")]
    Closed,
}

impl Outbox {
    /// A queue of `capacity` frames.
    pub fn channel(capacity: usize) -> (Outbox, Inbox) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflow = Arc::new(Overflow::default());
        (
            Outbox {
                tx,
                overflow: overflow.clone(),
            },
            Inbox { rx, overflow },
        )
    }

    /// Queues without waiting; a full queue condemns the connection.
    pub fn push(&self, item: Outgoing) -> Result<(), PushError> {
        if self.overflow.is_set() {
            return Err(PushError::Full);
        }
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.flag.store(true, Ordering::Release);
                self.overflow.notify.notify_one();
                Err(PushError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PushError::Closed),
        }
    }

    /// Queues a text frame.
    pub fn text(&self, frame: Arc<str>) -> Result<(), PushError> {
        self.push(Outgoing::Text(frame))
    }

    /// Waits for room in the queue: only for bulk replay, which must not be
    /// lost to its own burst, and is bounded by the caller's timeout.
    pub async fn send_waiting(&self, frame: Arc<str>) -> Result<(), PushError> {
        if self.overflow.is_set() {
            return Err(PushError::Full);
        }
        self.tx
            .send(Outgoing::Text(frame))
            .await
            .map_err(|_| PushError::Closed)
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// How many more frames the queue takes now.
    pub fn room(&self) -> usize {
        self.tx.capacity()
    }

    /// The most frames the queue holds: a burst larger than this cannot be
    /// queued at once however fast the client reads.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_outbox_marks_the_connection_instead_of_buffering() {
        let (outbox, inbox) = Outbox::channel(2);
        outbox.text("a".into()).unwrap();
        outbox.text("b".into()).unwrap();
        assert_eq!(outbox.text("c".into()), Err(PushError::Full));
        assert!(inbox.overflow.is_set());
        inbox.overflow.wait().await;
        assert_eq!(
            outbox.text("d".into()),
            Err(PushError::Full),
            "stays condemned"
        );
    }
}
