//! The WebSockets this process still has open, counted from the hand-off
//! to the moment the socket writer lets the socket go.
//!
//! After the hand-off actix-server no longer knows these connections, so
//! its graceful stop would not wait for them: the drain ends every session,
//! but the writers may still be sending the sessions' last frames (the
//! `reconnect` frame, the 1012 close) and lingering for the clients'
//! replies. Shutdown waits for this count to reach zero, within a bound.
//! The count is also `parley_ws_sockets`: above `parley_ws_connections`
//! by the sockets that are closing.

use prometheus::IntGauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
pub struct OpenSockets {
    count: AtomicUsize,
    all_closed: Notify,
    gauge: IntGauge,
}

/// One open socket; dropping it counts the socket closed.
#[derive(Debug)]
pub struct Held(Arc<OpenSockets>);

impl OpenSockets {
    /// `gauge` follows the count (`parley_ws_sockets`).
    pub fn new(gauge: IntGauge) -> Self {
        Self {
            count: AtomicUsize::new(0),
            all_closed: Notify::new(),
            gauge,
        }
    }

    pub fn hold(self: &Arc<Self>) -> Held {
        self.count.fetch_add(1, Ordering::AcqRel);
        self.gauge.inc();
        Held(self.clone())
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once no socket is open, or at `deadline`; returns how many
    /// are still open.
    pub async fn closed(&self, deadline: Instant) -> usize {
        loop {
            let notified = self.all_closed.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so a close in between
            // still wakes this wait.
            notified.as_mut().enable();
            if self.count() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count();
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.gauge.dec();
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_for_the_last_socket_and_no_longer_than_the_deadline() {
        let open = Arc::new(OpenSockets::new(
            IntGauge::new("sockets", "sockets").unwrap(),
        ));
        let (a, b) = (open.hold(), open.hold());
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(open.closed(soon).await, 2, "the deadline bounds the wait");
        drop(a);
        let waiter = tokio::spawn({
            let open = open.clone();
            async move { open.closed(Instant::now() + Duration::from_secs(30)).await }
        });
        drop(b);
        assert_eq!(waiter.await.unwrap(), 0);
    }
}
