//! The leader's side of log replication (paper §5.3) and commitment (§5.4.2).

use super::config::Bug;
use super::error::Error;
use super::message::{Entry, Envelope, Heartbeat, LogRequest, LogResponse, Message, Payload};
use super::output::Output;
use super::progress::ProgressState;
use super::role::Role;
use super::Node;
use crate::ids::{LogIndex, NodeId};

impl Node {
    /// Refuse a proposal unless we lead, are not transferring, and have room.
    pub(crate) fn check_can_propose(&self) -> Result<(), Error> {
        self.check_can_propose_many(1)
    }

    /// Refuse `count` proposals unless we lead, are not transferring, and have room for all.
    pub(crate) fn check_can_propose_many(&self, count: u64) -> Result<(), Error> {
        let Role::Leader(leader) = &self.role else {
            return Err(Error::NotLeader {
                leader_hint: self.leader(),
            });
        };
        if leader.transfer.is_some() {
            return Err(Error::TransferInProgress);
        }
        let uncommitted = self.log.last_index().0 - self.commit_index.0;
        if uncommitted + count > self.config.max_uncommitted_entries {
            return Err(Error::UncommittedQueueFull {
                limit: self.config.max_uncommitted_entries,
            });
        }
        Ok(())
    }

    /// Append a new entry of our term and start replicating it.
    pub(crate) fn append_as_leader(&mut self, payload: Payload) -> LogIndex {
        let index = self.append_without_sending(payload);
        self.replicate_to_all();
        index
    }

    /// Append a new entry of our term (replication is up to the caller).
    pub(crate) fn append_without_sending(&mut self, payload: Payload) -> LogIndex {
        let index = self.log.last_index().next();
        let entry = Entry {
            index,
            term: self.term(),
            payload,
        };
        self.membership.appended(&entry);
        self.log.append(entry.clone());
        self.stage_entry(entry);
        if self.membership.latest_change_index() == Some(index) {
            self.sync_progress_with_membership();
        }
        index
    }

    /// Send what each follower is ready for (idle followers that have not yet been told the
    /// commit index get an empty request carrying it).
    pub(crate) fn replicate_to_all(&mut self) {
        let Role::Leader(leader) = &self.role else {
            return;
        };
        // Walk the peers without collecting them: this runs on every proposal.
        let mut next = leader.progress.keys().next().copied();
        while let Some(peer) = next {
            self.send_append(peer);
            let Role::Leader(leader) = &self.role else {
                return;
            };
            next = leader
                .progress
                .range(NodeId(peer.0 + 1)..)
                .next()
                .map(|(&id, _)| id);
        }
    }

    /// Send log requests to `peer` as its progress state allows (probe: one; replicate: fill
    /// the pipeline); start a snapshot if it needs compacted entries.
    pub(crate) fn send_append(&mut self, peer: NodeId) {
        let needs_snapshot = {
            let Role::Leader(leader) = &self.role else {
                return;
            };
            let Some(progress) = leader.progress.get(&peer) else {
                return;
            };
            if !progress.can_send(self.config.max_inflight_requests) {
                return;
            }
            progress.next_index <= self.log.snapshot_index()
        };
        if needs_snapshot {
            self.start_snapshot_send(peer);
            return;
        }
        let mut sent_any = false;
        while self.send_one_log_request(peer, sent_any) {
            sent_any = true;
        }
    }

    /// Send `peer` its next log request if it has one coming (new entries, a probe, or, once,
    /// news of the commit index); returns whether another may follow at once (pipelining).
    fn send_one_log_request(&mut self, peer: NodeId, sent_any: bool) -> bool {
        let Role::Leader(leader) = &mut self.role else {
            return false;
        };
        let Some(progress) = leader.progress.get_mut(&peer) else {
            return false;
        };
        let entries = self.log.batch(
            progress.next_index,
            self.config.max_batch_entries,
            self.config.max_batch_bytes,
        );
        let (probing, idle) = match &progress.state {
            ProgressState::Probe { .. } => (true, false),
            ProgressState::Replicate { inflight } => (false, inflight.is_empty()),
            ProgressState::Snapshot { .. } => return false,
        };
        let commit_news = progress.commit_sent < self.commit_index;
        if entries.is_empty() && !probing && !(commit_news && idle && !sent_any) {
            return false;
        }
        let previous_index = progress.next_index.previous();
        let previous_term = self
            .log
            .term_at(previous_index)
            .expect("next_index is past the snapshot");
        let last = entries.last().map(|e| e.index);
        progress.commit_sent = self.commit_index;
        let request = LogRequest {
            previous_index,
            previous_term,
            entries,
            leader_commit: self.commit_index,
        };
        self.outputs.push(Output::Send(Envelope {
            from: self.id,
            to: peer,
            term: self.hard_state.term,
            message: Message::LogRequest(request),
        }));
        match &mut progress.state {
            ProgressState::Replicate { inflight } => {
                let Some(last) = last else { return false };
                progress.next_index = last.next();
                inflight.push_back(last);
                inflight.len() < self.config.max_inflight_requests
            }
            ProgressState::Probe { waiting } => {
                *waiting = true;
                false
            }
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// A tick for the leader: heartbeats, check-quorum, transfer timeout.
    pub(crate) fn tick_leader(&mut self) {
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        leader.heartbeat_elapsed_ticks += 1;
        leader.check_quorum_elapsed_ticks += 1;
        let heartbeat_due = leader.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks;
        let quorum_check_due =
            leader.check_quorum_elapsed_ticks >= self.config.election_timeout_min_ticks;
        if let Some(transfer) = &mut leader.transfer {
            transfer.elapsed_ticks += 1;
            if transfer.elapsed_ticks >= self.config.election_timeout_min_ticks {
                leader.transfer = None; // abandoned: the target did not win in time
            }
        }
        if quorum_check_due {
            leader.check_quorum_elapsed_ticks = 0;
            if self.config.check_quorum && !self.quorum_recently_active() {
                self.become_follower(self.term(), None);
                return;
            }
        }
        if heartbeat_due {
            self.broadcast_heartbeat();
        }
    }

    /// Whether a majority of voters (counting ourselves) answered since the last check, and
    /// reset the marks.
    fn quorum_recently_active(&mut self) -> bool {
        let Role::Leader(leader) = &mut self.role else {
            return false;
        };
        let configuration = self.membership.current();
        let active = configuration
            .voters
            .iter()
            .filter(|&&v| v == self.id || leader.progress.get(&v).is_some_and(|p| p.recent_active))
            .count();
        for progress in leader.progress.values_mut() {
            progress.recent_active = false;
        }
        active >= configuration.quorum()
    }

    /// Send a heartbeat with a new read round to every follower, and start watching whether
    /// replication to each makes progress before its answer comes back.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        let round = self.next_read_round();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        leader.heartbeat_elapsed_ticks = 0;
        let mut messages = Vec::with_capacity(leader.progress.len());
        for (&peer, progress) in leader.progress.iter_mut() {
            progress.made_progress = false;
            let leader_commit = self.commit_index.min(progress.match_index);
            messages.push((
                peer,
                Message::Heartbeat(Heartbeat {
                    leader_commit,
                    read_round: round,
                }),
            ));
        }
        for (peer, message) in messages {
            self.send(peer, message);
        }
    }

    /// A follower answered a log request.
    pub(crate) fn handle_log_response(&mut self, from: NodeId, response: LogResponse) {
        let last_index = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        match response {
            LogResponse::Accepted { match_index } => {
                if match_index > last_index || !progress.accepted(match_index) {
                    return;
                }
                self.maybe_commit();
                self.send_append(from);
                self.maybe_send_timeout_now(from);
            }
            LogResponse::Rejected {
                previous_index,
                hint,
            } => {
                if previous_index < progress.match_index
                    || matches!(progress.state, ProgressState::Snapshot { .. })
                {
                    return; // stale: answers a request older than what we know
                }
                let next = match hint.conflict_term {
                    Some(term) => match self.log.last_index_of_term(term, previous_index) {
                        Some(index) => index.next(),
                        None => hint.first_index,
                    },
                    None => hint.first_index,
                };
                progress.state = ProgressState::Probe { waiting: false };
                progress.next_index = next.min(previous_index).max(progress.match_index.next());
                self.send_append(from);
            }
        }
    }

    /// Commit the highest index a majority of voters stores durably, if it is of our term
    /// (paper §5.4.2: earlier terms' entries commit only with it).
    pub(crate) fn maybe_commit(&mut self) {
        let Role::Leader(leader) = &self.role else {
            return;
        };
        let durable = self.durability.durable_index;
        let own = self.id;
        let Some(candidate) = self.membership.current().quorum_index(|voter| {
            if voter == own {
                durable
            } else {
                leader
                    .progress
                    .get(&voter)
                    .map_or(LogIndex(0), |p| p.match_index)
            }
        }) else {
            return;
        };
        if candidate <= self.commit_index {
            return;
        }
        let own_term = self.log.term_at(candidate) == Some(self.term());
        if own_term || self.config.bug(Bug::CommitEarlierTermByCounting) {
            self.commit_index = candidate;
            self.on_leader_commit_advanced();
        }
    }

    fn on_leader_commit_advanced(&mut self) {
        if let Role::Leader(leader) = &mut self.role {
            if !leader.term_committed
                && self.log.term_at(self.commit_index) == Some(self.hard_state.term)
            {
                leader.term_committed = true;
            }
        }
        self.assign_read_indexes();
        self.emit_applies();
        if let Role::Leader(leader) = &self.role {
            let current = self.membership.current();
            if leader.progress.keys().any(|node| !current.contains(*node)) {
                self.sync_progress_with_membership(); // a removal committed
            }
        }
        self.replicate_to_all();
        self.maybe_step_down_after_removal();
    }

    /// More of our own log became durable: it may complete a majority.
    pub(crate) fn on_durable_index_advanced(&mut self) {
        if matches!(self.role, Role::Leader(_)) {
            self.maybe_commit();
        }
        self.emit_applies();
    }

    /// Hand committed, locally durable entries to the state machine, then serve reads and ask
    /// for a snapshot if the log has grown long.
    pub(crate) fn emit_applies(&mut self) {
        let limit = self.commit_index.min(self.durability.durable_index);
        if limit > self.applied_index {
            let entries = self.log.range(self.applied_index.next(), limit).to_vec();
            self.applied_index = limit;
            self.outputs.push(Output::Apply(entries));
        }
        self.serve_ready_reads();
        self.maybe_want_snapshot();
    }
}
