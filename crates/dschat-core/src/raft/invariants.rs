//! The invariants a node must hold after every call; `Node::validate` asserts them and tests
//! (and the simulator) call it after every step.

use super::progress::ProgressState;
use super::role::Role;
use super::Node;

impl Node {
    /// Check the node's invariants; `Err` describes the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_log_invariants()?;
        self.check_role_invariants()
    }

    fn check_log_invariants(&self) -> Result<(), String> {
        let fail = |what: String| Err(what);
        let log = &self.log;
        if self.applied_index > self.commit_index {
            return fail(format!(
                "applied {} > commit {}",
                self.applied_index, self.commit_index
            ));
        }
        if self.commit_index > log.last_index() {
            return fail(format!(
                "commit {} > last index {}",
                self.commit_index,
                log.last_index()
            ));
        }
        if self.applied_index < log.snapshot_index() {
            return fail(format!(
                "applied {} < snapshot {}",
                self.applied_index,
                log.snapshot_index()
            ));
        }
        if self.durability.durable_index > log.last_index() {
            return fail(format!(
                "durable {} > last {}",
                self.durability.durable_index,
                log.last_index()
            ));
        }
        let mut previous = (log.snapshot_index(), log.snapshot_term());
        for entry in log.entries() {
            if entry.index != previous.0.next() || entry.term < previous.1 {
                return fail(format!(
                    "entry {}@{} does not follow {}@{}",
                    entry.index, entry.term, previous.0, previous.1
                ));
            }
            if entry.term > self.hard_state.term {
                return fail(format!(
                    "entry {} has term {} > current term",
                    entry.index, entry.term
                ));
            }
            previous = (entry.index, entry.term);
        }
        for index in self.membership.change_indexes() {
            if index <= log.snapshot_index() || index > log.last_index() {
                return fail(format!("membership change at {index} outside the log"));
            }
        }
        Ok(())
    }

    fn check_role_invariants(&self) -> Result<(), String> {
        match &self.role {
            Role::Leader(leader) => {
                if self.hard_state.voted_for != Some(self.id) {
                    return Err("leader did not vote for itself".into());
                }
                if self.log.last_term() != self.hard_state.term {
                    return Err("leader's last entry is not of its term".into());
                }
                for (node, progress) in &leader.progress {
                    if progress.match_index >= progress.next_index {
                        return Err(format!(
                            "progress of {node}: match {} >= next {}",
                            progress.match_index, progress.next_index
                        ));
                    }
                    if progress.match_index > self.log.last_index() {
                        return Err(format!("progress of {node}: match beyond our log"));
                    }
                    if let ProgressState::Replicate { inflight } = &progress.state {
                        if inflight.len() > self.config.max_inflight_requests {
                            return Err(format!("progress of {node}: too many requests in flight"));
                        }
                    }
                    if !self.replication_targets().contains(node) {
                        return Err(format!("progress kept for non-member {node}"));
                    }
                }
            }
            Role::Candidate(_) => {
                if self.hard_state.voted_for != Some(self.id) {
                    return Err("candidate did not vote for itself".into());
                }
            }
            Role::Follower(_) | Role::PreCandidate(_) => {}
        }
        Ok(())
    }
}
