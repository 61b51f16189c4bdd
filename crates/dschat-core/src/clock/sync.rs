//! Clock synchronisation: estimating another node's clock offset from round trips, as NTP
//! does (Mills, "Internet time synchronization: the Network Time Protocol", 1991; RFC 5905).
//!
//! **The problem.** Physical clocks drift and are set wrong; a node cannot read another's
//! clock directly, only send it a message and get one back, and the network delay of each leg
//! is unknown.
//!
//! **How it works.** A probe records four times: `t1` when this node sends it, `t2` when the
//! peer receives it, `t3` when the peer answers, `t4` when the answer arrives (`t1`, `t4` on
//! this node's clock; `t2`, `t3` on the peer's). Assuming both legs take equally long, the
//! peer's clock is ahead of ours by `θ = ((t2 − t1) + (t3 − t4)) / 2` ([`sample`]), and the
//! round trip spent on the network is `δ = (t4 − t1) − (t3 − t2)`. Whatever the split between
//! the legs, the true offset lies within `θ ± δ/2`: that is the error bound. Since delay only
//! ever adds error, [`OffsetEstimator`] keeps the last [`MAX_SAMPLES`] samples and trusts the
//! one with the smallest round trip (NTP's clock filter).
//!
//! **Limitations.** No frequency (drift) estimation and no selection among several peers'
//! clocks; an asymmetric path biases the estimate by up to the error bound, which is why the
//! bound, not the estimate, is what a commit wait must use. Times are plain integers supplied
//! by the caller: this module reads no clock.

use std::collections::VecDeque;

/// Bound: samples kept per peer (the oldest is dropped): with one probe a second, a changed
/// offset shows within four seconds.
pub const MAX_SAMPLES: usize = 4;

/// One probe's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSample {
    /// How far the peer's clock is ahead of ours (negative: behind), in microseconds.
    pub offset_us: i64,
    /// Time spent on the network for the round trip, in microseconds.
    pub round_trip_us: u64,
}

/// The offset and round trip of one probe from its four times (microseconds): `t1` sent and
/// `t4` answer received on our clock, `t2` received and `t3` answered on the peer's.
pub fn sample(t1_us: u64, t2_us: u64, t3_us: u64, t4_us: u64) -> ClockSample {
    let (t1, t2, t3, t4) = (t1_us as i128, t2_us as i128, t3_us as i128, t4_us as i128);
    let offset = ((t2 - t1) + (t3 - t4)) / 2;
    let round_trip = ((t4 - t1) - (t3 - t2)).max(0);
    ClockSample {
        offset_us: offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        round_trip_us: round_trip.min(u64::MAX as i128) as u64,
    }
}

/// An offset estimate with its error bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEstimate {
    /// How far the peer's clock is ahead of ours, in microseconds.
    pub offset_us: i64,
    /// The true offset lies within `offset_us ± error_bound_us`.
    pub error_bound_us: u64,
}

/// The recent samples of one peer, and the estimate they support.
#[derive(Clone, Debug, Default)]
pub struct OffsetEstimator {
    samples: VecDeque<ClockSample>,
}

impl OffsetEstimator {
    /// Adds a sample, dropping the oldest beyond [`MAX_SAMPLES`].
    pub fn observe(&mut self, sample: ClockSample) {
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The estimate of the sample with the smallest round trip, if any.
    pub fn estimate(&self) -> Option<OffsetEstimate> {
        self.samples
            .iter()
            .min_by_key(|sample| sample.round_trip_us)
            .map(|best| OffsetEstimate {
                offset_us: best.offset_us,
                error_bound_us: best.round_trip_us.div_ceil(2),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_symmetric_path_gives_the_exact_offset() {
        // The peer is 5 000 µs ahead; each leg takes 300 µs; it answers after 100 µs.
        let t1 = 1_000_000;
        let t2 = t1 + 300 + 5_000;
        let t3 = t2 + 100;
        let t4 = t3 - 5_000 + 300;
        assert_eq!(
            sample(t1, t2, t3, t4),
            ClockSample {
                offset_us: 5_000,
                round_trip_us: 600
            }
        );
    }

    #[test]
    fn the_estimate_trusts_the_shortest_round_trip() {
        let mut estimator = OffsetEstimator::default();
        assert_eq!(estimator.estimate(), None);
        estimator.observe(ClockSample {
            offset_us: 900,
            round_trip_us: 4_000,
        });
        estimator.observe(ClockSample {
            offset_us: -20,
            round_trip_us: 101,
        });
        estimator.observe(ClockSample {
            offset_us: 300,
            round_trip_us: 2_000,
        });
        assert_eq!(
            estimator.estimate(),
            Some(OffsetEstimate {
                offset_us: -20,
                error_bound_us: 51
            })
        );
        for _ in 0..MAX_SAMPLES {
            estimator.observe(ClockSample {
                offset_us: 7,
                round_trip_us: 500,
            });
        }
        assert_eq!(
            estimator.estimate().unwrap().offset_us,
            7,
            "old samples age out"
        );
    }

    proptest! {
        /// Whatever the two legs' delays, the true offset lies within the error bound.
        #[test]
        fn the_true_offset_is_within_the_bound(
            offset in -10_000_000i64..10_000_000,
            out_leg in 0u64..1_000_000,
            back_leg in 0u64..1_000_000,
            think in 0u64..100_000,
        ) {
            let t1: u64 = 100_000_000;
            let t2 = (t1 as i64 + out_leg as i64 + offset) as u64;
            let t3 = t2 + think;
            let t4 = (t3 as i64 - offset + back_leg as i64) as u64;
            let mut estimator = OffsetEstimator::default();
            estimator.observe(sample(t1, t2, t3, t4));
            let estimate = estimator.estimate().unwrap();
            prop_assert!((estimate.offset_us - offset).unsigned_abs() <= estimate.error_bound_us);
            prop_assert_eq!(estimate.error_bound_us, (out_leg + back_leg).div_ceil(2));
        }
    }
}
