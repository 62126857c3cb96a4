//! Session revocations of the embedded store.

use super::State;
use crate::store::{RecordedRevocation, Revocation, StoreError};
use chrono::{DateTime, Utc};

impl State {
    /// Revokes the refresh tokens `revocation` covers and records it, at
    /// `now` or just after the last record, so `recorded_at` only grows and
    /// a poller's cursor never skips one.
    pub(super) fn revoke_sessions(
        &mut self,
        revocation: &Revocation,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !self.users.contains_key(&revocation.user) {
            return Err(StoreError::NotFound);
        }
        self.refresh_tokens
            .values_mut()
            .filter(|token| {
                token.user == revocation.user
                    && revocation
                        .family
                        .is_none_or(|family| token.family == family)
            })
            .for_each(|token| token.revoked = true);
        // Pollers only ask for the last minutes; a day bounds the memory.
        self.revocations
            .retain(|r| r.recorded_at > now - chrono::Duration::days(1));
        let last = self.revocations.last().map(|r| r.recorded_at);
        let recorded_at = last.map_or(now, |last| {
            now.max(last + chrono::Duration::microseconds(1))
        });
        self.revocations.push(RecordedRevocation {
            revocation: revocation.clone(),
            recorded_at,
        });
        Ok(())
    }

    pub(super) fn revocations_since(
        &self,
        after: DateTime<Utc>,
        limit: u32,
    ) -> Vec<RecordedRevocation> {
        let first = self.revocations.partition_point(|r| r.recorded_at <= after);
        self.revocations[first..]
            .iter()
            .take(limit as usize)
            .cloned()
            .collect()
    }
}
