//! # Membership changes during faults
//!
//! **The problem.** Adding and removing servers is where Raft implementations have broken
//! most often (TESTING.md row 8): a change is a log entry that takes effect as soon as it is
//! appended, so a leader that lets a second change start before the first commits can leave
//! the old configuration's majorities and the newest one's disjoint, and a partition then lets
//! both sides commit. Ongaro's single-server change is safe only with one change pending at a
//! time, and only once the leader has committed an entry of its own term.
//!
//! **The guarantee.** [`FaultKind::MembershipChange`] changes the membership through the same
//! [`Replica`](dschat_replica::Replica) calls the real cluster's `dschat cluster add/remove`
//! uses (`add_learner`, `promote_learner`, `remove_node`), at the leader, while other faults
//! go on. Each strike does one of:
//! - restore: a node missing from the leader's configuration is added back as a learner, or a
//!   learner is promoted to voter once the leader lets it (caught up);
//! - remove the leader itself (it steps down once its removal commits), if at least
//!   [`MIN_VOTERS_TO_REMOVE`] vote;
//! - two overlapping removals: the leader and one follower `x` are first cut off from the
//!   others, then the leader is asked to remove two other followers `a` and `b` one right
//!   after the other, and the cut lasts [`OVERLAP_CUT`]. A correct leader refuses the second
//!   change while the first is uncommitted, so its side (two of four voters) cannot commit,
//!   and the other side, which never heard of either change, elects a leader under the old
//!   configuration: one history. A leader that accepts both is left with three voters of which
//!   its side holds two, a majority, and goes on committing while the other side's three of
//!   five also commit: the state-machine-safety invariant fails.
//!
//! Nodes removed stay up, outside the cluster, with their disks, until a later strike adds
//! them back. The convergence check and the final reads cover only the members of the
//! leader's configuration at the end.
//!
//! **Limitations.** Servers are only removed and re-added; no brand-new server joins (every
//! node of the run starts as a voter).

use std::collections::BTreeSet;

use dschat_core::ids::NodeId;
use dschat_core::raft::{self, ConfigChange};
use dschat_replica::Effects;
use rand::seq::SliceRandom;
use rand::Rng;

#[cfg(doc)]
use super::config::FaultKind;
use super::config::{Micros, SECOND};
use super::world::World;

/// How long the overlapping-removals cut lasts: uniform in this range.
pub const OVERLAP_CUT: std::ops::Range<Micros> = SECOND..3 * SECOND;
/// Nothing is removed from a configuration of fewer voters than this, so that after one
/// removal a majority survives the one node whose disk may be damaged for good.
pub const MIN_VOTERS_TO_REMOVE: usize = 4;
/// The share of strikes (when nothing needs restoring) that remove the leader itself.
pub const REMOVE_LEADER_PROBABILITY: f64 = 0.3;

impl World {
    /// One membership strike (see the module documentation).
    pub(super) fn change_membership(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let Ok(replica) = self.nodes[leader].replica.as_ref() else {
            return;
        };
        let configuration = replica.status().configuration;
        let everyone: Vec<NodeId> = self.nodes.iter().map(|n| NodeId(n.id)).collect();
        if let Some(&learner) = configuration.learners.iter().next() {
            self.propose_change(leader, ConfigChange::PromoteLearner(learner));
        } else if let Some(&missing) = everyone.iter().find(|n| !configuration.contains(**n)) {
            self.propose_change(leader, ConfigChange::AddLearner(missing));
        } else if configuration.voters.len() < MIN_VOTERS_TO_REMOVE {
            // A removal now could leave too few voters to outlast one damaged node.
        } else if self.rng.gen_bool(REMOVE_LEADER_PROBABILITY) {
            self.propose_change(leader, ConfigChange::Remove(NodeId(leader as u64 + 1)));
        } else {
            self.overlapping_removals(leader, &configuration.voters);
        }
    }

    /// Cuts the leader and one follower off, then asks the leader for two removals in a row.
    fn overlapping_removals(&mut self, leader: usize, voters: &BTreeSet<NodeId>) {
        let mut followers: Vec<NodeId> = voters
            .iter()
            .copied()
            .filter(|n| n.0 != leader as u64 + 1)
            .collect();
        if followers.len() < 4 {
            return;
        }
        followers.shuffle(&mut self.rng);
        let (kept, first, second) = (followers[0], followers[1], followers[2]);
        let side = BTreeSet::from([leader as u64 + 1, kept.0]);
        let length = self.rng.gen_range(OVERLAP_CUT);
        self.cut_off(
            &side,
            length,
            &format!("overlapping removals of {first} and {second}: the leader and one follower"),
        );
        if self.propose_change(leader, ConfigChange::Remove(first)) {
            self.propose_change(leader, ConfigChange::Remove(second));
        }
    }

    /// Asks `leader` for `change`; whether it accepted. A refusal is noted, not a failure.
    fn propose_change(&mut self, leader: usize, change: ConfigChange) -> bool {
        let mut refusal: Option<raft::Error> = None;
        self.call_replica(leader, |replica, _| {
            let result = match change {
                ConfigChange::AddLearner(node) => replica.add_learner(node)?,
                ConfigChange::PromoteLearner(node) => replica.promote_learner(node)?,
                ConfigChange::Remove(node) => replica.remove_node(node)?,
            };
            Ok(result.unwrap_or_else(|error| {
                refusal = Some(error);
                Effects::default()
            }))
        });
        let text = match &refusal {
            None => format!("membership change proposed: {change:?}"),
            Some(error) => format!("membership change {change:?} refused: {error}"),
        };
        self.recorder.note(self.now, leader, text);
        refusal.is_none()
    }

    /// The nodes the convergence check and the final reads cover: the members of the
    /// leader's configuration (every node when no leader is known).
    pub fn members(&self) -> BTreeSet<usize> {
        let configuration = self
            .leader()
            .and_then(|leader| self.nodes[leader].replica.as_ref().ok())
            .map(|replica| replica.status().configuration);
        (0..self.nodes.len())
            .filter(|&node| {
                configuration
                    .as_ref()
                    .is_none_or(|c| c.contains(NodeId(node as u64 + 1)))
            })
            .collect()
    }
}
