//! Ends the sender's rows in groups: every row that finished (sent,
//! skipped, given up) while the last `DELETE` ran goes into the next one,
//! as the writers commit messages (group commit). One statement and one
//! commit per group instead of one per push: at 1,000 pushes a second that
//! was a commit a millisecond, most of what a push cost the database.
//!
//! Exactly once is unchanged: each row is deleted only with the lease of
//! the claim that sent it ([`PushStore::finish_pushes`]), and a row not yet
//! deleted is still leased, so no claim takes it. The window for a second
//! send is still a crash between the push service's answer and the
//! `DELETE`, which is now the row's wait for its group (at most one
//! statement's time) plus its own.

use crate::observability::metrics::Metrics;
use crate::store::SharedStore;
use crate::store::push::{FINISH_MAX, PushId};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Rows waiting for a group: a full queue makes a send's task wait (and
/// keep its slot) rather than grow a buffer.
const QUEUE: usize = 1024;

/// A row to end, and what became of its push (the metric's outcome).
struct Finished {
    id: PushId,
    lease: uuid::Uuid,
    outcome: &'static str,
}

/// The handle sends end their rows through.
#[derive(Clone)]
pub struct Finisher {
    queue: mpsc::Sender<Finished>,
}

impl Finisher {
    /// Starts the group loop on the current runtime; it ends when every
    /// handle is dropped.
    pub fn spawn(store: SharedStore, metrics: Arc<Metrics>) -> Self {
        let (queue, rows) = mpsc::channel(QUEUE);
        actix_web::rt::spawn(run(store, metrics, rows));
        Self { queue }
    }

    /// Queues row `id` of claim `lease` for deletion, counting `outcome`
    /// once it is deleted (`lost_claim` if the claim no longer held it).
    pub async fn finish(&self, id: PushId, lease: uuid::Uuid, outcome: &'static str) {
        let row = Finished { id, lease, outcome };
        if self.queue.send(row).await.is_err() {
            // Only at shutdown: the row's lease ends and it is sent again.
            tracing::warn!(
                push = id.0,
                "the push finisher has stopped; row left to its lease"
            );
        }
    }
}

/// Takes what is queued (at most [`FINISH_MAX`]), deletes it in one
/// statement, counts the outcomes; until the queue closes. A failed
/// `DELETE` leaves its rows claimed: their leases end and they are sent
/// again, as when an instance dies.
async fn run(store: SharedStore, metrics: Arc<Metrics>, mut rows: mpsc::Receiver<Finished>) {
    let mut group = Vec::with_capacity(FINISH_MAX);
    while rows.recv_many(&mut group, FINISH_MAX).await > 0 {
        let keys: Vec<(PushId, uuid::Uuid)> = group.iter().map(|r| (r.id, r.lease)).collect();
        match store.finish_pushes(&keys).await {
            Ok(done) => count(&metrics, &group, &done),
            Err(error) => tracing::warn!(
                error = %error.describe(), rows = group.len(),
                "could not finish pushes; they are sent again once their lease ends"
            ),
        }
        group.clear();
    }
}

fn count(metrics: &Metrics, group: &[Finished], done: &[PushId]) {
    let done: std::collections::HashSet<PushId> = done.iter().copied().collect();
    for row in group {
        let outcome = if done.contains(&row.id) {
            row.outcome
        } else {
            tracing::warn!(
                push = row.id.0,
                outcome = row.outcome,
                "a push outlived its lease; another instance may send it again"
            );
            "lost_claim"
        };
        metrics.push.sends.with_label_values(&[outcome]).inc();
    }
}
