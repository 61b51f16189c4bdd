//! The follower's side of log replication (paper §5.3): the consistency check, repairing a
//! conflicting log, and learning the commit index.

use super::config::Bug;
use super::message::{Envelope, Heartbeat, HeartbeatResponse, LogRequest, LogResponse, Message};
use super::role::Role;
use super::Node;
use crate::ids::{LogIndex, NodeId};

impl Node {
    /// A message from the leader of our term arrived: follow it and reset the election timer.
    pub(crate) fn heard_from_leader(&mut self, leader: NodeId) {
        match &mut self.role {
            Role::Follower(follower) => {
                let changed = follower.leader != Some(leader);
                follower.leader = Some(leader);
                follower.election_elapsed_ticks = 0;
                follower.ticks_since_leader = 0;
                if changed {
                    self.announce_role();
                }
            }
            Role::PreCandidate(_) | Role::Candidate(_) => {
                self.become_follower(self.term(), Some(leader))
            }
            Role::Leader(_) => {} // impossible in a correct cluster: one leader per term
        }
    }

    fn reply_log_response(&mut self, to: NodeId, response: LogResponse, durable: bool) {
        let envelope = Envelope {
            from: self.id,
            to,
            term: self.term(),
            message: Message::LogResponse(response),
        };
        if durable {
            self.send_when_durable(envelope);
        } else {
            self.send(to, envelope.message);
        }
    }

    /// A log request (AppendEntries) from the leader of our term.
    pub(crate) fn handle_log_request(&mut self, from: NodeId, request: LogRequest) {
        if matches!(self.role, Role::Leader(_)) {
            return;
        }
        self.heard_from_leader(from);
        let previous_index = request.previous_index;
        if self.config.bug(Bug::TruncateOnStaleAppend) {
            self.buggy_truncating_append(from, request);
            return;
        }
        if previous_index < self.commit_index {
            // Everything through our commit index matches the leader's log already.
            let match_index = self.append_from_leader(request.entries, self.commit_index);
            self.reply_log_response(from, LogResponse::Accepted { match_index }, true);
            self.learn_commit(request.leader_commit, match_index);
            return;
        }
        if self.log.term_at(previous_index) != Some(request.previous_term) {
            let hint = self.log.conflict_hint(previous_index);
            self.reply_log_response(
                from,
                LogResponse::Rejected {
                    previous_index,
                    hint,
                },
                false,
            );
            return;
        }
        let match_index = self.append_from_leader(request.entries, previous_index);
        self.reply_log_response(from, LogResponse::Accepted { match_index }, true);
        self.learn_commit(request.leader_commit, match_index);
    }

    /// The bug behind `BugSwitches::truncate_on_stale_append`: after appending, drop every
    /// entry past the request's last one, even when the request is stale.
    fn buggy_truncating_append(&mut self, from: NodeId, request: LogRequest) {
        let previous_index = request.previous_index;
        if self.log.term_at(previous_index) != Some(request.previous_term) {
            let hint = self.log.conflict_hint(previous_index);
            self.reply_log_response(
                from,
                LogResponse::Rejected {
                    previous_index,
                    hint,
                },
                false,
            );
            return;
        }
        let end = LogIndex(previous_index.0 + request.entries.len() as u64);
        let match_index = self.append_from_leader(request.entries, previous_index);
        if self.log.last_index() > end && end >= self.log.snapshot_index() {
            self.truncate_log(end.next());
        }
        self.reply_log_response(from, LogResponse::Accepted { match_index }, true);
        self.learn_commit(request.leader_commit, match_index);
    }

    /// Append the leader's entries after `verified` (an index known to match): entries we
    /// already hold are skipped, the first conflicting one truncates our log from there (never
    /// a matching suffix: a stale request must not remove entries). Returns the last index now
    /// known to match the leader.
    fn append_from_leader(
        &mut self,
        entries: Vec<crate::raft::Entry>,
        verified: LogIndex,
    ) -> LogIndex {
        let mut match_index = verified;
        for entry in entries {
            if entry.index <= verified {
                continue;
            }
            match_index = entry.index;
            match self.log.term_at(entry.index) {
                Some(term) if term == entry.term => {}
                Some(_) => {
                    self.truncate_log(entry.index);
                    self.append_entry(entry);
                }
                None => self.append_entry(entry),
            }
        }
        match_index
    }

    fn truncate_log(&mut self, from: LogIndex) {
        self.log.truncate_from(from);
        self.membership.truncated(from);
        self.stage_truncate(from);
    }

    fn append_entry(&mut self, entry: crate::raft::Entry) {
        self.membership.appended(&entry);
        self.log.append(entry.clone());
        self.stage_entry(entry);
    }

    /// Learn the leader's commit index, but never past what is known to match it.
    fn learn_commit(&mut self, leader_commit: LogIndex, match_index: LogIndex) {
        let commit = leader_commit.min(match_index);
        if commit > self.commit_index {
            self.commit_index = commit;
            self.emit_applies();
        }
    }

    /// A heartbeat from the leader of our term.
    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, heartbeat: Heartbeat) {
        if matches!(self.role, Role::Leader(_)) {
            return;
        }
        self.heard_from_leader(from);
        let known = heartbeat.leader_commit.min(self.log.last_index());
        self.learn_commit(heartbeat.leader_commit, known);
        let response = HeartbeatResponse {
            read_round: heartbeat.read_round,
        };
        self.send(from, Message::HeartbeatResponse(response));
    }
}
