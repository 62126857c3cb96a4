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
use std::ops::Deref;

/// A pooled connection that may hold an open transaction.
pub(super) struct PipelinedTx {
    conn: Option<Object>,
    open: bool,
}

impl PipelinedTx {
    pub(super) async fn take(pool: &Pool) -> Result<Self, deadpool_postgres::PoolError> {
        Ok(Self {
            conn: Some(pool.get().await?),
            open: false,
        })
    }

    /// `BEGIN`, to be joined with the transaction's first statements (and
    /// polled before them).
    pub(super) async fn begin(&self) -> Result<(), tokio_postgres::Error> {
        self.client().batch_execute("BEGIN").await
    }

    /// `COMMIT`, to be joined with the transaction's last statements (and
    /// polled after them).
    pub(super) async fn commit(&self) -> Result<(), tokio_postgres::Error> {
        self.client().batch_execute("COMMIT").await
    }

    /// Marks the transaction open; call before sending [`Self::begin`].
    pub(super) fn opened(&mut self) {
        self.open = true;
    }

    /// Marks the transaction over: its `COMMIT` or `ROLLBACK` was answered.
    pub(super) fn closed(&mut self) {
        self.open = false;
    }

    /// Ends the transaction after a failure between the two pipelines.
    pub(super) async fn rollback(&mut self) {
        if self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.open = false;
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
        if self.open
            && let Some(conn) = self.conn.take()
        {
            tracing::warn!("closing a connection dropped inside its transaction");
            // Detached from the pool and dropped: the socket closes and the
            // server rolls the transaction back.
            drop(Object::take(conn));
        }
    }
}
