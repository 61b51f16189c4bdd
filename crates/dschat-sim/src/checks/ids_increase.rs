//! # ids-increase: a room's ids follow its order
//!
//! **The property.** Along every answered final read, message ids strictly increase.
//!
//! **Why.** dschat promises that message ids order a room: a feed resumes "after id 40" and
//! history pages "before id 90", which is only meaningful if a larger id means a later
//! message. Ids are minted from the hybrid clock, so skewed, drifting or backward-jumping
//! clocks threaten exactly this (TESTING.md row 18: hybrid clocks monotonic; ids never
//! repeat); the state machine's rule that an event gets `max(proposed id, last id + 1)` is
//! what keeps ids in log order, and this checker is what would notice that rule being broken.
//! A repeated id is also "not increasing", so this overlaps with
//! [`no_duplicates`](super::no_duplicates) there.
//!
//! **How.** Each final read is scanned once; every adjacent pair whose later id is not larger
//! is one problem. `checked` counts the final reads examined.
//!
//! **Limits.** Only final reads are scanned: history reads are checked to be prefixes of the
//! final order by [`linearizable_history_reads`](super::linearizable_history_reads), and feed
//! polls to be segments of it by [`feeds_gap_free`](super::feeds_gap_free), so with those
//! passing they inherit the property. Nothing says ids must be dense or start at 1.

use super::chat_history::{ChatHistory, ReadKind};
use super::CheckReport;

/// The checker's name.
pub const NAME: &str = "ids-increase";
/// What it checks.
pub const PROPERTY: &str = "In every final read, message ids strictly increase along the order.";

/// Checks `history`; see the module documentation.
pub fn check(history: &ChatHistory) -> CheckReport {
    let mut report = CheckReport::new(NAME, PROPERTY);
    for read in history
        .reads()
        .iter()
        .filter(|read| read.kind == ReadKind::Final)
    {
        report.checked += 1;
        for (index, pair) in read.messages.windows(2).enumerate() {
            let (before, after) = (&pair[0], &pair[1]);
            if after.id <= before.id {
                report.problem(format!(
                    "{read} has {after} at index {} after {before} at index {index}: ids must \
                     strictly increase",
                    index + 1
                ));
            }
        }
    }
    report
}
