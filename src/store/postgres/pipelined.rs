//! A transaction whose `BEGIN` and `COMMIT` cost no round trip of their own.
//!
//! tokio-postgres pipelines: statements issued concurrently on one
//! connection go out back to back, in the order their futures are first
//! polled, and are answered in that order. [`tokio_postgres::Transaction`]
//! awaits its `BEGIN` and its `COMMIT` alone, two of the four round trips
//! of an append. Here `BEGIN` goes out in front of the first statements and
//! `COMMIT` behind the last ones, in the same `join!`.
//!
//! Why this is safe:
//! - Each statement of the pipeline is its own extended-protocol message
//!   with its own `Sync`, so one that fails does not swallow the rest: they
//!   fail with "current transaction is aborted", and the `COMMIT` of an
//!   aborted transaction rolls it back (answering `ROLLBACK`, not an error).
//!   The caller sees the first statement's error; nothing was written.
//! - Statements must be prepared before the pipeline is sent (a
//!   `prepare_cached` that misses would send its statement only after a
//!   round trip, behind the `COMMIT`): the callers prepare first.
//! - `join!`, not `try_join!`: every future is polled, so the `COMMIT` is
//!   always sent, even if an earlier statement fails while being encoded.
//! - A connection dropped while its transaction is open (the caller's future
//!   cancelled between the two pipelines, or an error in between that could
//!   not be rolled back) is taken out of the pool and closed, so the server
//!   rolls back and releases the transaction's locks; it never goes back to
//!   the pool mid-transaction.

use deadpool_postgres::{ClientWrapper, Object, Pool};
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

/// A pooled connection that may hold an open transaction.
pub(super) struct PipelinedTx {
    conn: Option<Object>,
    /// From [`Self::begin`] until a `COMMIT` or `ROLLBACK` is answered. An
    /// atomic only because the statements joined with `BEGIN` and `COMMIT`
    /// borrow the transaction too.
    open: AtomicBool,
}

impl PipelinedTx {
    pub(super) async fn take(pool: &Pool) -> Result<Self, deadpool_postgres::PoolError> {
        Ok(Self {
            conn: Some(pool.get().await?),
            open: AtomicBool::new(false),
        })
    }

    /// `BEGIN`, to be joined with the transaction's first statements (and
    /// polled before them). The transaction counts as open from this call.
    pub(super) fn begin(&self) -> impl Future<Output = Result<(), tokio_postgres::Error>> + '_ {
        self.open.store(true, Ordering::Relaxed);
        self.client().batch_execute("BEGIN")
    }

    /// `COMMIT`, to be joined with the transaction's last statements (and
    /// polled after them). Answered, the transaction is over: committed, or
    /// rolled back because a statement before it failed.
    pub(super) async fn commit(&self) -> Result<(), tokio_postgres::Error> {
        let answered = self.client().batch_execute("COMMIT").await;
        self.open.store(false, Ordering::Relaxed);
        answered
    }

    /// Ends the transaction after a failure between the two pipelines.
    pub(super) async fn rollback(&self) {
        if self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.open.store(false, Ordering::Relaxed);
        }
        // Otherwise `Drop` closes the connection, which rolls back.
    }

    fn client(&self) -> &ClientWrapper {
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("the connection is taken out only in drop"),
        }
    }
}

impl Deref for PipelinedTx {
    type Target = ClientWrapper;

    fn deref(&self) -> &ClientWrapper {
        self.client()
    }
}

impl Drop for PipelinedTx {
    fn drop(&mut self) {
        if *self.open.get_mut()
            && let Some(conn) = self.conn.take()
        {
            tracing::warn!("closing a connection dropped inside its transaction");
            // Detached from the pool and dropped: the socket closes and the
            // server rolls the transaction back.
            drop(Object::take(conn));
        }
    }
}
