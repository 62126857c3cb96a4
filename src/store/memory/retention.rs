//! Retention in the embedded store: each room's horizon (`first_seq`), and
//! purging the events below it.
//!
//! The log stays indexed by seq (seq n at index n - 1), so a purged event
//! keeps a slot: its text, folded state and idempotency key are dropped,
//! and every reader skips seqs below the horizon, as the PostgreSQL store's
//! queries do.

use super::{RoomRow, State};
use crate::domain::{RetentionDays, RoomId, Seq};
use crate::store::{Room, StoreError};
use chrono::{DateTime, Utc};
use parley_actors::model::EventData;
use std::ops::Bound;

impl RoomRow {
    /// Whether the event at `seq` is still held (not below the horizon).
    pub(super) fn holds(&self, seq: Seq) -> bool {
        seq >= self.first_seq
    }

    /// Drops what the event at `seq` carried but its slot.
    fn erase(&mut self, seq: Seq) {
        let Some(event) = usize::try_from(seq.0 - 1)
            .ok()
            .and_then(|i| self.log.get_mut(i))
        else {
            return;
        };
        match &mut event.data {
            EventData::Message { body, .. } | EventData::Edit { body, .. } => body.clear(),
            EventData::Reaction { emoji, .. } => emoji.clear(),
            EventData::Delete { .. } => {}
        }
        let key = (event.author, std::mem::take(&mut event.client_id));
        self.client_ids.remove(&key);
        self.folded.remove(&seq);
    }
}

impl State {
    pub(super) fn set_retention(
        &mut self,
        room: RoomId,
        days: Option<RetentionDays>,
    ) -> Result<Room, StoreError> {
        let row = self.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        row.room.retention_days = days;
        Ok(row.room.clone())
    }

    pub(super) fn rooms_with_retention(
        &self,
        after: Option<RoomId>,
        limit: u32,
    ) -> Vec<(RoomId, RetentionDays)> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.rooms
            .range((lower, Bound::Unbounded))
            .filter_map(|(id, row)| Some((*id, row.room.retention_days?)))
            .take(limit as usize)
            .collect()
    }

    /// The first event from the horizon on that is not older than
    /// `cutoff`, or the next seq when all are.
    pub(super) fn advance_horizon(
        &mut self,
        room: RoomId,
        cutoff: DateTime<Utc>,
    ) -> Result<Seq, StoreError> {
        let row = self.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        let from = usize::try_from(row.first_seq.0 - 1).unwrap_or(0);
        let kept = row.log[from.min(row.log.len())..]
            .iter()
            .find(|e| e.ts >= cutoff)
            .map_or(Seq(row.log.len() as i64 + 1), |e| e.seq);
        row.first_seq = row.first_seq.max(kept);
        Ok(row.first_seq)
    }

    pub(super) fn purge_below_horizon(
        &mut self,
        room: RoomId,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let row = self.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        let mut purged = 0;
        while purged < u64::from(batch) && row.erased.0 + 1 < row.first_seq.0 {
            row.erased = row.erased.next();
            let seq = row.erased;
            row.erase(seq);
            purged += 1;
        }
        Ok(purged)
    }
}
