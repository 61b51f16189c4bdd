//! Cluster membership: who votes, who only learns, and how it changes one server at a time.
//!
//! A change (`ConfigChange`) is a log entry and, as in the Raft thesis (§4.1), takes effect on
//! a server as soon as it is in that server's log, committed or not. Changing one server at a
//! time keeps every majority of the old configuration overlapping every majority of the new
//! one, so two leaders can never be elected for one term by disjoint majorities. The rules that
//! make this safe are enforced by the leader (see `Node::check_membership_change_allowed`):
//! at most one uncommitted change, and none before the leader has committed an entry of its
//! own term (the fix for the single-server-change bug Ongaro published in 2015).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::message::{Entry, Payload};
use crate::ids::{LogIndex, NodeId};

/// The servers of a cluster at one point of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    /// Servers that vote and count towards majorities.
    pub voters: BTreeSet<NodeId>,
    /// Servers that receive the log but do not vote (new servers catching up).
    pub learners: BTreeSet<NodeId>,
}

/// A change of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigChange {
    /// Add a server as a learner.
    AddLearner(NodeId),
    /// Make a learner a voter.
    PromoteLearner(NodeId),
    /// Remove a server (voter or learner).
    Remove(NodeId),
}

impl Configuration {
    /// A configuration of the given voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Configuration {
        Configuration {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    /// How many voters make a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether `node` votes.
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains(&node)
    }

    /// Whether `node` is a voter or a learner.
    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.learners.contains(&node)
    }

    /// Every member, voters and learners, in id order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.voters.union(&self.learners).copied().collect()
    }

    /// The configuration after `change`.
    pub fn apply(&self, change: ConfigChange) -> Configuration {
        let mut next = self.clone();
        match change {
            ConfigChange::AddLearner(node) => {
                if !next.voters.contains(&node) {
                    next.learners.insert(node);
                }
            }
            ConfigChange::PromoteLearner(node) => {
                next.learners.remove(&node);
                next.voters.insert(node);
            }
            ConfigChange::Remove(node) => {
                next.voters.remove(&node);
                next.learners.remove(&node);
            }
        }
        next
    }

    /// The largest index that a majority of voters has reached, given each voter's index
    /// (voters missing from `index_of` count as 0). `None` without voters.
    pub fn quorum_index(&self, index_of: impl Fn(NodeId) -> LogIndex) -> Option<LogIndex> {
        if self.voters.is_empty() {
            return None;
        }
        let mut indexes: Vec<LogIndex> = self.voters.iter().map(|&v| index_of(v)).collect();
        indexes.sort_unstable_by(|a, b| b.cmp(a));
        Some(indexes[self.quorum() - 1])
    }
}

/// The configurations along the log: the one at the log's start (from the snapshot) and one
/// for every membership entry still in the log. The last one is in force.
#[derive(Clone, Debug)]
pub(crate) struct MembershipHistory {
    base: Configuration,
    changes: Vec<(LogIndex, Configuration)>,
}

impl MembershipHistory {
    pub(crate) fn new(base: Configuration, entries: &[Entry]) -> MembershipHistory {
        let mut history = MembershipHistory {
            base,
            changes: Vec::new(),
        };
        for entry in entries {
            history.appended(entry);
        }
        history
    }

    /// The configuration in force (the latest in the log).
    pub(crate) fn current(&self) -> &Configuration {
        self.changes.last().map(|(_, c)| c).unwrap_or(&self.base)
    }

    /// The index of the latest membership entry, if one is still in the log.
    pub(crate) fn latest_change_index(&self) -> Option<LogIndex> {
        self.changes.last().map(|(index, _)| *index)
    }

    /// The configuration in force at `index`.
    pub(crate) fn at(&self, index: LogIndex) -> &Configuration {
        self.changes
            .iter()
            .rev()
            .find(|(at, _)| *at <= index)
            .map(|(_, c)| c)
            .unwrap_or(&self.base)
    }

    /// Record an appended entry.
    pub(crate) fn appended(&mut self, entry: &Entry) {
        match &entry.payload {
            Payload::Membership(change) => {
                let next = self.current().apply(*change);
                self.changes.push((entry.index, next));
            }
            Payload::InitialConfiguration(configuration) => {
                self.changes.push((entry.index, configuration.clone()));
            }
            Payload::Noop | Payload::Command(_) => {}
        }
    }

    /// Forget changes at or after `index` (the log was truncated there).
    pub(crate) fn truncated(&mut self, index: LogIndex) {
        self.changes.retain(|(at, _)| *at < index);
    }

    /// The log was compacted through `index`: the configuration there becomes the base.
    pub(crate) fn compacted(&mut self, index: LogIndex) {
        self.base = self.at(index).clone();
        self.changes.retain(|(at, _)| *at > index);
    }

    /// Replace everything by a snapshot's configuration followed by `entries`.
    pub(crate) fn reset(&mut self, base: Configuration, entries: &[Entry]) {
        *self = MembershipHistory::new(base, entries);
    }

    pub(crate) fn change_indexes(&self) -> impl Iterator<Item = LogIndex> + '_ {
        self.changes.iter().map(|(index, _)| *index)
    }
}

use super::config::Bug;
use super::error::Error;
use super::output::Proposed;
use super::progress::Progress;
use super::role::Role;
use super::Node;

impl Node {
    /// Propose a one-server membership change, enforcing its safety rules.
    pub(crate) fn change_membership(&mut self, change: ConfigChange) -> Result<Proposed, Error> {
        self.check_can_propose()?;
        self.check_membership_change_allowed(change)?;
        let index = self.append_as_leader(Payload::Membership(change));
        Ok(Proposed {
            index,
            term: self.term(),
            outputs: self.finish(),
        })
    }

    /// At most one uncommitted change; none before an entry of this term is committed
    /// (thesis §4.1 and its 2015 erratum); learners promoted only once caught up.
    fn check_membership_change_allowed(&self, change: ConfigChange) -> Result<(), Error> {
        let Role::Leader(leader) = &self.role else {
            return Err(Error::NotLeader {
                leader_hint: self.leader(),
            });
        };
        if !leader.term_committed {
            return Err(Error::LeaderTermNotCommitted);
        }
        if !self.config.bug(Bug::AllowOverlappingMembershipChanges)
            && self
                .membership
                .latest_change_index()
                .is_some_and(|index| index > self.commit_index)
        {
            return Err(Error::MembershipChangePending);
        }
        let configuration = self.membership.current();
        let invalid = |reason: String| Err(Error::InvalidMembershipChange(reason));
        match change {
            ConfigChange::AddLearner(node) if configuration.contains(node) => {
                invalid(format!("{node} is already a member"))
            }
            ConfigChange::PromoteLearner(node) if !configuration.learners.contains(&node) => {
                invalid(format!("{node} is not a learner"))
            }
            ConfigChange::PromoteLearner(node) => {
                let caught_up = leader
                    .progress
                    .get(&node)
                    .is_some_and(|p| p.match_index >= self.commit_index);
                if caught_up {
                    Ok(())
                } else {
                    Err(Error::LearnerBehind { node })
                }
            }
            ConfigChange::Remove(node) if !configuration.contains(node) => {
                invalid(format!("{node} is not a member"))
            }
            ConfigChange::Remove(node)
                if configuration.voters.len() == 1 && configuration.is_voter(node) =>
            {
                invalid("cannot remove the last voter".to_string())
            }
            _ => Ok(()),
        }
    }

    /// The servers a leader replicates to: the other members of the configuration in force,
    /// plus any server whose removal is not yet committed, so that it receives its removal
    /// and stops campaigning instead of waiting for a log that never comes.
    pub(crate) fn replication_targets(&self) -> BTreeSet<NodeId> {
        let mut targets = self.membership.current().members();
        targets.extend(self.membership.at(self.commit_index).members());
        targets.remove(&self.id);
        targets
    }

    /// The configuration (or the commit index) changed on the leader: track exactly the
    /// replication targets.
    pub(crate) fn sync_progress_with_membership(&mut self) {
        let targets = self.replication_targets();
        let next = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        leader.progress.retain(|node, _| targets.contains(node));
        for &target in &targets {
            leader
                .progress
                .entry(target)
                .or_insert_with(|| Progress::new(next));
        }
    }

    /// A leader whose own removal has committed steps down, and asks the most up-to-date
    /// voter to campaign at once so the cluster is not leaderless for an election timeout.
    pub(crate) fn maybe_step_down_after_removal(&mut self) {
        let removed = !self.membership.current().is_voter(self.id)
            && self
                .membership
                .latest_change_index()
                .is_some_and(|i| i <= self.commit_index);
        let Role::Leader(leader) = &self.role else {
            return;
        };
        if !removed {
            return;
        }
        let voters = &self.membership.current().voters;
        let successor = leader
            .progress
            .iter()
            .filter(|(node, _)| voters.contains(node))
            .max_by_key(|(node, p)| (p.match_index, std::cmp::Reverse(**node)))
            .map(|(node, p)| (*node, p.match_index));
        let last_index = self.log.last_index();
        self.become_follower(self.term(), None);
        if let Some((successor, match_index)) = successor {
            if match_index == last_index {
                let envelope_term = self.term();
                self.outputs
                    .push(super::output::Output::Send(super::message::Envelope {
                        from: self.id,
                        to: successor,
                        term: envelope_term,
                        message: super::message::Message::TimeoutNow,
                    }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_index_is_what_a_majority_has_reached() {
        let configuration = Configuration::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
        let index = configuration.quorum_index(|n| LogIndex([0, 7, 5, 2][n.0 as usize]));
        assert_eq!(index, Some(LogIndex(5)));
        assert_eq!(Configuration::default().quorum_index(|_| LogIndex(9)), None);
    }

    #[test]
    fn changes_apply_one_server_at_a_time() {
        let base = Configuration::with_voters([NodeId(1)]);
        let added = base.apply(ConfigChange::AddLearner(NodeId(2)));
        assert!(added.learners.contains(&NodeId(2)) && !added.is_voter(NodeId(2)));
        let promoted = added.apply(ConfigChange::PromoteLearner(NodeId(2)));
        assert!(promoted.is_voter(NodeId(2)) && promoted.learners.is_empty());
        assert_eq!(promoted.quorum(), 2);
        assert_eq!(
            promoted.apply(ConfigChange::Remove(NodeId(1))).voters.len(),
            1
        );
    }
}
