//! Puts a room's messages back in `seq` order.
//!
//! Messages reach a room from this instance's writers and, through the bus,
//! from every other instance. Pub/sub may reorder them (two publishers) or
//! lose them (a subscriber reconnecting), so the room does not trust arrival
//! order: it delivers a message only when every lower `seq` was delivered,
//! holds early arrivals (bounded), and asks for a gap to be filled from the
//! log when it does not close by itself. Seqs are allocated in the commit
//! transaction, so a message above a gap proves the gap is committed.

use crate::ids::Seq;
use crate::model::StoredEvent;
use std::collections::BTreeMap;

/// Early arrivals held at most; beyond this the highest are dropped and
/// fetched from the log once the lower ones are delivered.
pub const MAX_PENDING: usize = 10_000;

#[derive(Default)]
pub struct Sequencer {
    /// Every message up to this one was delivered; `None` until the room
    /// knows where its stream starts.
    delivered: Option<Seq>,
    pending: BTreeMap<Seq, StoredEvent>,
    /// Messages above `pending` were dropped for lack of room.
    truncated: bool,
    /// The log is known to hold every seq up to this one (its head, read
    /// by a resync or a replay), though not all of them have arrived.
    expected: Option<Seq>,
}

/// Messages to fetch from the log: `after < seq < before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub after: Seq,
    pub before: Option<Seq>,
}

impl Sequencer {
    pub fn delivered(&self) -> Option<Seq> {
        self.delivered
    }

    /// Starts the stream after `head` (the log's last `seq` when the room
    /// began listening). Returns what is now deliverable.
    pub fn start_after(&mut self, head: Seq) -> Vec<StoredEvent> {
        if self.delivered.is_none() {
            self.delivered = Some(head);
        }
        self.take_ready()
    }

    /// The common case, without copying: nothing is held and `messages`
    /// (ascending) continue the stream exactly. Then they count as
    /// delivered and the caller sends them as they are; otherwise nothing
    /// changes and the caller goes through [`Sequencer::accept`].
    pub fn continues(&mut self, messages: &[StoredEvent]) -> bool {
        let Some(delivered) = self.delivered else {
            return false;
        };
        let contiguous = self.pending.is_empty()
            && messages
                .iter()
                .zip(1..)
                .all(|(m, i)| m.seq.0 == delivered.0 + i);
        if contiguous && let Some(last) = messages.last() {
            self.delivered = Some(last.seq);
        }
        contiguous
    }

    /// Takes messages in any order and returns those now deliverable, in
    /// ascending `seq`. Duplicates and already-delivered ones are ignored.
    pub fn accept(&mut self, messages: impl IntoIterator<Item = StoredEvent>) -> Vec<StoredEvent> {
        for message in messages {
            if self.delivered.is_some_and(|d| message.seq <= d) {
                continue;
            }
            self.pending.insert(message.seq, message);
        }
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_last();
            self.truncated = true;
        }
        self.take_ready()
    }

    /// The missing range blocking delivery, if any.
    pub fn gap(&self) -> Option<Gap> {
        let after = self.delivered?;
        match self.pending.first_key_value() {
            Some((first, _)) => Some(Gap {
                after,
                before: Some(*first),
            }),
            None if self.truncated => Some(Gap {
                after,
                before: None,
            }),
            // Bounded: a fill stops at the head that was read, rather than
            // polling on behind a busy room's live traffic.
            None => self.expected.filter(|head| *head > after).map(|head| Gap {
                after,
                before: Some(head.next()),
            }),
        }
    }

    fn take_ready(&mut self) -> Vec<StoredEvent> {
        let Some(mut delivered) = self.delivered else {
            return Vec::new();
        };
        let mut ready = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let seq = *entry.key();
            if seq <= delivered {
                entry.remove();
            } else if seq == delivered.next() {
                ready.push(entry.remove());
                delivered = seq;
            } else {
                break;
            }
        }
        self.delivered = Some(delivered);
        if self.expected.is_some_and(|head| head <= delivered) {
            self.expected = None;
        }
        ready
    }

    /// The log's head is `head`: anything up to it above what was
    /// delivered is missing and must be fetched.
    pub fn expect_up_to(&mut self, head: Seq) {
        if self.delivered.is_some_and(|d| head > d) {
            self.expected = self.expected.max(Some(head));
        }
    }

    /// Gives up on the gap (the log does not have it) and returns what
    /// that releases.
    pub fn skip_gap(&mut self) -> Vec<StoredEvent> {
        if let Some(Gap {
            before: Some(before),
            ..
        }) = self.gap()
        {
            self.delivered = Some(Seq(before.0 - 1));
        }
        self.take_ready()
    }

    /// A fill from the log came back with nothing above `delivered`: what
    /// was dropped has been fetched (or never existed).
    pub fn fill_exhausted(&mut self) {
        if self.pending.is_empty() {
            self.truncated = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{MessageId, RoomId, UserId};

    fn msg(seq: i64) -> StoredEvent {
        StoredEvent {
            room: RoomId(uuid::Uuid::nil()),
            seq: Seq(seq),
            id: MessageId(uuid::Uuid::now_v7()),
            author: UserId(uuid::Uuid::nil()),
            ts: chrono::Utc::now(),
            client_id: format!("c{seq}"),
            data: crate::model::EventData::Message {
                body: format!("m{seq}"),
                reply_to: None,
            },
        }
    }

    fn seqs(ms: &[StoredEvent]) -> Vec<i64> {
        ms.iter().map(|m| m.seq.0).collect()
    }

    #[test]
    fn holds_early_arrivals_until_the_gap_closes() {
        let mut s = Sequencer::default();
        assert!(s.start_after(Seq(4)).is_empty());
        assert!(s.accept([msg(7), msg(6)]).is_empty());
        assert_eq!(
            s.gap(),
            Some(Gap {
                after: Seq(4),
                before: Some(Seq(6))
            })
        );
        assert_eq!(seqs(&s.accept([msg(5)])), vec![5, 6, 7]);
        assert_eq!(s.gap(), None);
    }

    #[test]
    fn an_in_order_batch_passes_straight_through() {
        let mut s = Sequencer::default();
        assert!(!s.continues(&[msg(1)]), "no start yet");
        s.start_after(Seq(0));
        assert!(s.continues(&[msg(1), msg(2)]));
        assert_eq!(s.delivered(), Some(Seq(2)));
        assert!(!s.continues(&[msg(4)]), "a gap goes through accept");
        assert!(s.accept([msg(4)]).is_empty());
        assert!(!s.continues(&[msg(3)]), "held messages go through accept");
        assert_eq!(seqs(&s.accept([msg(3)])), vec![3, 4]);
    }

    #[test]
    fn ignores_duplicates_and_what_was_delivered() {
        let mut s = Sequencer::default();
        s.start_after(Seq(0));
        assert_eq!(seqs(&s.accept([msg(1), msg(2)])), vec![1, 2]);
        assert!(s.accept([msg(2), msg(1)]).is_empty());
        assert_eq!(seqs(&s.accept([msg(4), msg(3), msg(4)])), vec![3, 4]);
    }

    #[test]
    fn buffers_until_the_start_is_known() {
        let mut s = Sequencer::default();
        assert!(s.accept([msg(3), msg(4)]).is_empty());
        assert_eq!(s.gap(), None, "no start, no gap to fill");
        // Head 3: 3 was covered by the replay, 4 is new.
        assert_eq!(seqs(&s.start_after(Seq(3))), vec![4]);
    }

    #[test]
    fn a_head_read_from_the_log_is_filled_up_to_and_no_further() {
        let mut s = Sequencer::default();
        s.start_after(Seq(4));
        s.expect_up_to(Seq(3));
        assert_eq!(s.gap(), None, "a head already delivered asks for nothing");
        s.expect_up_to(Seq(6));
        let gap = Some(Gap {
            after: Seq(4),
            before: Some(Seq(7)),
        });
        assert_eq!(s.gap(), gap);
        // Live traffic beyond the head arrives meanwhile: the fill still
        // asks only for what is below it.
        assert!(s.accept([msg(8)]).is_empty());
        assert_eq!(
            s.gap(),
            Some(Gap {
                after: Seq(4),
                before: Some(Seq(8))
            })
        );
        assert_eq!(seqs(&s.accept([msg(5), msg(6), msg(7)])), [5, 6, 7, 8]);
        assert_eq!(s.gap(), None, "done once the head is delivered");
    }

    #[test]
    fn a_head_the_log_cannot_fill_is_skipped() {
        let mut s = Sequencer::default();
        s.start_after(Seq(4));
        s.expect_up_to(Seq(6));
        assert!(s.skip_gap().is_empty());
        assert_eq!(s.delivered(), Some(Seq(6)));
        assert_eq!(s.gap(), None);
    }

    #[test]
    fn a_truncated_buffer_asks_for_the_rest() {
        let mut s = Sequencer::default();
        s.start_after(Seq(0));
        let flood: Vec<_> = (2..=(MAX_PENDING as i64 + 11)).map(msg).collect();
        assert!(s.accept(flood).is_empty());
        let ready = s.accept([msg(1)]);
        // Never more than MAX_PENDING held, even for a moment.
        assert_eq!(ready.len(), MAX_PENDING);
        let after = Seq(MAX_PENDING as i64);
        assert_eq!(
            s.gap(),
            Some(Gap {
                after,
                before: None
            })
        );
        s.fill_exhausted();
        assert_eq!(s.gap(), None);
    }
}
