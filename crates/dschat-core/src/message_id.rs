//! Message ids: 64-bit, time-ordered, unique without coordination.
//!
//! **The problem.** Every message needs an id that sorts by time (so history pages and feed
//! resumption are range scans), that two nodes can mint at once without talking to each other,
//! and that never goes backwards, even when the machine's wall clock is stepped back by NTP or
//! by an operator.
//!
//! **The layout** (the "timestamp + machine + counter" design of the lecture on unique ids):
//!
//! ```text
//!  63  62 ............................ 22  21 ........ 12  11 ....... 0
//!   0  milliseconds since EPOCH_UNIX_MS    node (10 bits)   sequence (12 bits)
//! ```
//!
//! 41 bits of milliseconds last 69 years from 2025-01-01. The top bit stays 0 so the id also
//! fits a signed 64-bit integer.
//!
//! **Never backwards.** [`MessageIdGenerator`] remembers the last millisecond it used and
//! takes `max(now, last)`, so a clock stepping back only slows the millisecond part down; when
//! the 4,096 sequence numbers of one millisecond are used up it borrows the next millisecond.
//! Across restarts it relies on a *high-water mark*: before it hands out an id beyond the
//! persisted mark it asks its host (through [`NextId::persist_high_water_mark_ms`]) to durably
//! record a new mark a few seconds ahead; after a restart the generator starts from that mark.
//! The host writes one small file every few seconds, not one per id.
//!
//! The generator is pure: the current time is an argument.

use crate::ids::MessageId;

/// Start of the id epoch: 2025-01-01T00:00:00Z in Unix milliseconds.
pub const EPOCH_UNIX_MS: u64 = 1_735_689_600_000;
/// Bits of the node field: node ids 0..1024.
pub const NODE_BITS: u32 = 10;
/// Bits of the per-millisecond sequence: 4,096 ids per millisecond per node.
pub const SEQUENCE_BITS: u32 = 12;
/// Largest node number an id can carry.
pub const MAX_NODE: u64 = (1 << NODE_BITS) - 1;
const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;
const MAX_MILLIS: u64 = (1 << (63 - NODE_BITS - SEQUENCE_BITS)) - 1;

impl MessageId {
    /// Builds an id from its three fields. Fields are masked to their widths.
    pub fn from_parts(unix_ms: u64, node: u64, sequence: u64) -> MessageId {
        let millis = unix_ms.saturating_sub(EPOCH_UNIX_MS).min(MAX_MILLIS);
        MessageId(
            (millis << (NODE_BITS + SEQUENCE_BITS))
                | ((node & MAX_NODE) << SEQUENCE_BITS)
                | (sequence & MAX_SEQUENCE),
        )
    }

    /// The Unix time in milliseconds at which this id was minted.
    pub fn unix_ms(self) -> u64 {
        (self.0 >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_UNIX_MS
    }

    /// The node field of the id.
    pub fn node(self) -> u64 {
        (self.0 >> SEQUENCE_BITS) & MAX_NODE
    }
}

/// How far ahead of the current time a new high-water mark is placed, so the host persists one
/// mark per this many milliseconds of ids rather than one per id.
pub const HIGH_WATER_MARK_RESERVE_MS: u64 = 10_000;

/// The result of [`MessageIdGenerator::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextId {
    /// The new id: greater than every id this generator (or its predecessors before a restart
    /// from the persisted high-water mark) handed out.
    pub id: MessageId,
    /// When set, the host must durably record this high-water mark (Unix ms) **before** it lets
    /// `id` be seen by anyone; otherwise a crash and a clock stepped back could repeat ids.
    pub persist_high_water_mark_ms: Option<u64>,
}

/// Mints time-ordered, unique message ids for one node. See the module documentation.
#[derive(Clone, Debug)]
pub struct MessageIdGenerator {
    /// The node field of every id minted here.
    node: u64,
    /// The millisecond of the last id minted (Unix ms).
    last_unix_ms: u64,
    /// The sequence number of the last id minted within `last_unix_ms`.
    last_sequence: u64,
    /// Ids up to this millisecond (Unix ms) are covered by a durable high-water mark.
    reserved_until_unix_ms: u64,
}

impl MessageIdGenerator {
    /// A generator for `node` (must be at most [`MAX_NODE`]) that resumes after a restart from
    /// the last durable high-water mark (0 if there was none).
    pub fn new(node: u64, persisted_high_water_mark_ms: u64) -> MessageIdGenerator {
        assert!(
            node <= MAX_NODE,
            "node {node} does not fit the id's node field"
        );
        MessageIdGenerator {
            node,
            last_unix_ms: persisted_high_water_mark_ms,
            last_sequence: MAX_SEQUENCE,
            reserved_until_unix_ms: persisted_high_water_mark_ms,
        }
    }

    /// Mints the next id at wall-clock time `now_unix_ms`.
    pub fn next(&mut self, now_unix_ms: u64) -> NextId {
        let now = now_unix_ms.max(EPOCH_UNIX_MS);
        if now > self.last_unix_ms {
            self.last_unix_ms = now;
            self.last_sequence = 0;
        } else if self.last_sequence < MAX_SEQUENCE {
            self.last_sequence += 1;
        } else {
            // This millisecond is used up (or the clock went back): borrow the next one.
            self.last_unix_ms += 1;
            self.last_sequence = 0;
        }
        let mut persist_high_water_mark_ms = None;
        if self.last_unix_ms >= self.reserved_until_unix_ms {
            self.reserved_until_unix_ms = self.last_unix_ms + HIGH_WATER_MARK_RESERVE_MS;
            persist_high_water_mark_ms = Some(self.reserved_until_unix_ms);
        }
        NextId {
            id: MessageId::from_parts(self.last_unix_ms, self.node, self.last_sequence),
            persist_high_water_mark_ms,
        }
    }

    /// Tells the generator that the host could not persist the high-water mark it asked for:
    /// the id that came with the request must not be used, and the next call asks again.
    pub fn retract_reservation(&mut self) {
        self.reserved_until_unix_ms = self.last_unix_ms;
    }

    /// Makes every later id greater than `id` (for example the last id found in the log).
    pub fn observe(&mut self, id: MessageId) {
        let unix_ms = id.unix_ms();
        if unix_ms > self.last_unix_ms {
            self.last_unix_ms = unix_ms;
            self.last_sequence = MAX_SEQUENCE;
        } else if unix_ms == self.last_unix_ms {
            self.last_sequence = MAX_SEQUENCE;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = EPOCH_UNIX_MS + 1_000_000;

    #[test]
    fn fields_round_trip() {
        let id = MessageId::from_parts(T0, 7, 42);
        assert_eq!(id.unix_ms(), T0);
        assert_eq!(id.node(), 7);
        assert_eq!(id.0 & MAX_SEQUENCE, 42);
        assert!(id.0 < (1 << 63));
    }

    #[test]
    fn first_id_asks_for_a_high_water_mark() {
        let mut generator = MessageIdGenerator::new(1, 0);
        let next = generator.next(T0);
        assert_eq!(
            next.persist_high_water_mark_ms,
            Some(T0 + HIGH_WATER_MARK_RESERVE_MS)
        );
        assert_eq!(generator.next(T0 + 1).persist_high_water_mark_ms, None);
    }

    #[test]
    fn restart_after_clock_step_back_continues_above_the_mark() {
        let mut generator = MessageIdGenerator::new(1, 0);
        let mut mark = 0;
        let mut last = MessageId(0);
        for step in 0..100 {
            let next = generator.next(T0 + step * 500);
            mark = next.persist_high_water_mark_ms.unwrap_or(mark);
            last = next.id;
        }
        // Crash, then restart with the wall clock an hour behind.
        let mut restarted = MessageIdGenerator::new(1, mark);
        let next = restarted.next(T0 - 3_600_000);
        assert!(next.id > last, "{:?} must exceed {:?}", next.id, last);
    }

    #[test]
    fn a_reservation_the_host_could_not_persist_is_asked_for_again() {
        let mut generator = MessageIdGenerator::new(1, 0);
        assert!(generator.next(T0).persist_high_water_mark_ms.is_some());
        generator.retract_reservation();
        assert!(generator.next(T0).persist_high_water_mark_ms.is_some());
        assert!(generator.next(T0).persist_high_water_mark_ms.is_none());
    }

    #[test]
    fn sequence_overflow_borrows_the_next_millisecond() {
        let mut generator = MessageIdGenerator::new(3, 0);
        let ids: Vec<MessageId> = (0..10_000).map(|_| generator.next(T0).id).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(ids[4096].unix_ms(), T0 + 1);
    }

    #[test]
    fn observe_moves_past_a_foreign_id() {
        let mut generator = MessageIdGenerator::new(1, 0);
        let foreign = MessageId::from_parts(T0 + 50, 9, 4095);
        generator.observe(foreign);
        assert!(generator.next(T0).id > foreign);
    }

    proptest! {
        /// Whatever the wall clock does (jumps back, stalls, leaps ahead), ids strictly grow.
        #[test]
        fn ids_strictly_increase_under_any_clock(steps in proptest::collection::vec(-5_000i64..5_000, 1..400)) {
            let mut generator = MessageIdGenerator::new(5, 0);
            let mut now = T0 as i64;
            let mut last = MessageId(0);
            for step in steps {
                now += step;
                let id = generator.next(now as u64).id;
                prop_assert!(id > last);
                last = id;
            }
        }
    }
}
