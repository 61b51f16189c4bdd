//! Hybrid logical clocks (HLC).
//!
//! **The problem.** Wall clocks on different machines disagree and can jump backwards, so
//! stamping messages with the wall clock can put a reply before the message it answers.
//! Lamport clocks fix the order but lose all connection to real time.
//!
//! **The guarantee.** An HLC timestamp is a pair (wall milliseconds, logical counter), ordered
//! lexicographically. If event *a* happened before event *b* (Lamport's happens-before),
//! then `stamp(a) < stamp(b)`; and the wall part never runs ahead of the largest physical
//! time any node has seen, so it stays close to real time.
//!
//! **How it works.** [`HybridClock::now`] takes the physical time as an argument and returns
//! `max(last.wall, physical)`, bumping the counter when the wall part did not move.
//! [`HybridClock::update`] merges a timestamp received from another node the same way, so the
//! next local stamp exceeds it. A received timestamp further ahead of our physical clock than
//! `max_offset_ms` is refused ([`ClockError::TooFarAhead`]), so one node with a wild clock
//! cannot drag every other clock into the future.
//!
//! Reference: S. Kulkarni, M. Demirbas et al., "Logical Physical Clocks and Consistent
//! Snapshots in Globally Distributed Databases", 2014 (algorithm 2).

use serde::{Deserialize, Serialize};

/// A hybrid logical clock timestamp.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HybridTimestamp {
    /// Wall-clock part, Unix milliseconds.
    pub wall_ms: u64,
    /// Logical counter that orders events within one `wall_ms`.
    pub logical: u32,
}

/// Why a received timestamp was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The remote timestamp is further ahead of our physical clock than the allowed offset.
    #[error("remote clock is {ahead_ms} ms ahead of ours (limit {max_offset_ms} ms)")]
    TooFarAhead {
        /// How far ahead it was.
        ahead_ms: u64,
        /// The configured limit.
        max_offset_ms: u64,
    },
}

/// One node's hybrid logical clock. Pure: physical time is passed in.
#[derive(Clone, Debug)]
pub struct HybridClock {
    /// The last timestamp handed out or merged.
    last: HybridTimestamp,
    /// Largest accepted distance of a remote timestamp ahead of the local physical clock.
    max_offset_ms: u64,
}

impl HybridClock {
    /// A clock starting at `last` (for example the largest timestamp found in the log after a
    /// restart) that refuses remote timestamps more than `max_offset_ms` ahead.
    pub fn new(last: HybridTimestamp, max_offset_ms: u64) -> HybridClock {
        HybridClock {
            last,
            max_offset_ms,
        }
    }

    /// A timestamp for a local event (or for sending a message) at physical time `physical_ms`.
    pub fn now(&mut self, physical_ms: u64) -> HybridTimestamp {
        if physical_ms > self.last.wall_ms {
            self.last = HybridTimestamp {
                wall_ms: physical_ms,
                logical: 0,
            };
        } else {
            self.advance_logical();
        }
        self.last
    }

    /// Merges a timestamp received from another node at physical time `physical_ms`, and
    /// returns the timestamp of the receive event (greater than both `remote` and every earlier
    /// local stamp).
    pub fn update(
        &mut self,
        remote: HybridTimestamp,
        physical_ms: u64,
    ) -> Result<HybridTimestamp, ClockError> {
        if remote.wall_ms > physical_ms + self.max_offset_ms {
            return Err(ClockError::TooFarAhead {
                ahead_ms: remote.wall_ms - physical_ms,
                max_offset_ms: self.max_offset_ms,
            });
        }
        let wall_ms = self.last.wall_ms.max(remote.wall_ms).max(physical_ms);
        let logical = match (wall_ms == self.last.wall_ms, wall_ms == remote.wall_ms) {
            (true, true) => self.last.logical.max(remote.logical),
            (true, false) => self.last.logical,
            (false, true) => remote.logical,
            (false, false) => {
                self.last = HybridTimestamp {
                    wall_ms,
                    logical: 0,
                };
                return Ok(self.last);
            }
        };
        self.last = HybridTimestamp { wall_ms, logical };
        self.advance_logical();
        Ok(self.last)
    }

    /// The last timestamp handed out or merged.
    pub fn last(&self) -> HybridTimestamp {
        self.last
    }

    fn advance_logical(&mut self) {
        match self.last.logical.checked_add(1) {
            Some(logical) => self.last.logical = logical,
            // 4 billion events in one millisecond: move the wall part instead of wrapping.
            None => {
                self.last = HybridTimestamp {
                    wall_ms: self.last.wall_ms + 1,
                    logical: 0,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn follows_physical_time_when_it_moves_forward() {
        let mut clock = HybridClock::new(HybridTimestamp::default(), 1_000);
        assert_eq!(
            clock.now(100),
            HybridTimestamp {
                wall_ms: 100,
                logical: 0
            }
        );
        assert_eq!(
            clock.now(105),
            HybridTimestamp {
                wall_ms: 105,
                logical: 0
            }
        );
    }

    #[test]
    fn clock_stepping_back_only_bumps_the_counter() {
        let mut clock = HybridClock::new(HybridTimestamp::default(), 1_000);
        clock.now(1_000);
        assert_eq!(
            clock.now(400),
            HybridTimestamp {
                wall_ms: 1_000,
                logical: 1
            }
        );
    }

    #[test]
    fn a_reply_is_stamped_after_the_message_it_answers() {
        // Node a's clock runs 300 ms ahead of node b's.
        let mut a = HybridClock::new(HybridTimestamp::default(), 1_000);
        let mut b = HybridClock::new(HybridTimestamp::default(), 1_000);
        let question = a.now(10_300);
        let received = b.update(question, 10_000).unwrap();
        let reply = b.now(10_001);
        assert!(question < received && received < reply);
    }

    #[test]
    fn refuses_a_remote_clock_too_far_ahead() {
        let mut clock = HybridClock::new(HybridTimestamp::default(), 500);
        let wild = HybridTimestamp {
            wall_ms: 10_000,
            logical: 0,
        };
        assert!(matches!(
            clock.update(wild, 1_000),
            Err(ClockError::TooFarAhead { .. })
        ));
        assert_eq!(clock.last(), HybridTimestamp::default());
    }

    proptest! {
        /// Random local events and message receptions between three clocks with skewed,
        /// jumping physical clocks: every node's stamps strictly grow, and every receive event
        /// is stamped after the send it answers (happens-before implies timestamp order).
        #[test]
        fn hybrid_clock_respects_happens_before(
            steps in proptest::collection::vec((0usize..3, 0usize..3, -50i64..80, any::<bool>()), 1..300)
        ) {
            let mut clocks: Vec<HybridClock> =
                (0..3).map(|_| HybridClock::new(HybridTimestamp::default(), u64::MAX / 4)).collect();
            let mut physical = [1_000i64, 1_200, 900];
            let mut last_stamp = [HybridTimestamp::default(); 3];
            for (from, to, delta, is_message) in steps {
                physical[from] = (physical[from] + delta).max(0);
                let sent = clocks[from].now(physical[from] as u64);
                prop_assert!(sent > last_stamp[from]);
                last_stamp[from] = sent;
                if is_message && from != to {
                    let received = clocks[to].update(sent, physical[to] as u64).unwrap();
                    prop_assert!(received > sent);
                    prop_assert!(received > last_stamp[to]);
                    last_stamp[to] = received;
                }
            }
        }
    }
}
