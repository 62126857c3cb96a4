//! The per-subscriber delivery check. A subscriber that was told
//! `subscribed {seq: s}` expects every seq from `s + 1` up to the last seq
//! acked to any publisher of its room, once each and in increasing order
//! (the contract: "strictly increasing seq with no gaps"). Every seq at or
//! after the first one received is therefore covered, and so is a gap at
//! the start.
//!
//! Seqs received are kept as a bitset from `s + 1`, so memory is one bit
//! per message of the room.

/// Seqs tracked past the start, at most (8 MiB of bits).
const MAX_SPAN: u64 = 1 << 26;

/// What one subscriber saw.
#[derive(Debug)]
pub struct SeqTracker {
    /// The first seq expected: `subscribed.seq + 1`.
    start: i64,
    bits: Vec<u64>,
    /// Highest seq received so far (`start - 1` before the first).
    max_seen: i64,
    pub received: u64,
    pub duplicated: u64,
    /// Received after a higher seq, or outside the expected range (below
    /// the start, or beyond [`MAX_SPAN`]).
    pub out_of_order: u64,
}

/// The verdict once the room's last acked seq is known.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub expected: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

impl SeqTracker {
    pub fn new(subscribed_seq: i64) -> Self {
        Self {
            start: subscribed_seq + 1,
            bits: Vec::new(),
            max_seen: subscribed_seq,
            received: 0,
            duplicated: 0,
            out_of_order: 0,
        }
    }

    /// Highest seq received so far.
    pub fn max_seen(&self) -> i64 {
        self.max_seen
    }

    pub fn record(&mut self, seq: i64) {
        self.received += 1;
        let Some(offset) = u64::try_from(seq - self.start)
            .ok()
            .filter(|o| *o < MAX_SPAN)
        else {
            self.out_of_order += 1;
            return;
        };
        let (word, bit) = (index(offset / 64), 1u64 << (offset % 64));
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & bit != 0 {
            self.duplicated += 1;
            return;
        }
        self.bits[word] |= bit;
        if seq < self.max_seen {
            self.out_of_order += 1;
        } else {
            self.max_seen = seq;
        }
    }

    /// Counts the seqs from the start to `last_acked` never received.
    pub fn verdict(&self, last_acked: i64) -> Verdict {
        let expected = u64::try_from(last_acked - self.start + 1)
            .unwrap_or(0)
            .min(MAX_SPAN);
        let full_words = index(expected / 64);
        let mut present: u64 = self
            .bits
            .iter()
            .take(full_words)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let tail = expected % 64;
        if tail > 0
            && let Some(w) = self.bits.get(full_words)
        {
            present += u64::from((w & ((1u64 << tail) - 1)).count_ones());
        }
        Verdict {
            expected,
            lost: expected - present,
            duplicated: self.duplicated,
            out_of_order: self.out_of_order,
        }
    }
}

fn index(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_order_stream_is_clean() {
        let mut t = SeqTracker::new(5);
        for s in 6..=200 {
            t.record(s);
        }
        assert_eq!(
            t.verdict(200),
            Verdict {
                expected: 195,
                ..Verdict::default()
            }
        );
        assert_eq!(t.max_seen(), 200);
    }

    #[test]
    fn gaps_duplicates_and_reordering_are_each_counted() {
        let mut t = SeqTracker::new(0);
        for s in [1, 2, 4, 3, 3, 7, 0] {
            t.record(s);
        }
        let v = t.verdict(8);
        assert_eq!(v.expected, 8);
        assert_eq!(v.lost, 3, "5, 6 and 8");
        assert_eq!(v.duplicated, 1);
        assert_eq!(v.out_of_order, 2, "3 after 4, and 0 before the start");
    }

    #[test]
    fn a_missing_start_is_lost_and_nothing_is_expected_before_an_ack() {
        let mut t = SeqTracker::new(10);
        t.record(12);
        assert_eq!(t.verdict(12).lost, 1);
        assert_eq!(SeqTracker::new(10).verdict(10).expected, 0);
        assert_eq!(SeqTracker::new(10).verdict(-1).expected, 0);
    }

    #[test]
    fn word_boundaries_are_counted_exactly() {
        for last in [63, 64, 65, 127, 128, 129] {
            let mut t = SeqTracker::new(0);
            for s in 1..=last {
                t.record(s);
            }
            assert_eq!(t.verdict(last).lost, 0, "last {last}");
            assert_eq!(t.verdict(last + 1).lost, 1, "last {last}");
        }
    }
}
