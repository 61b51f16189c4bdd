//! Leader election (paper §5.2), with pre-vote and the check-quorum lease (thesis §9.6).

use std::collections::BTreeMap;

use super::config::Bug;
use super::message::{Envelope, Message, Payload, VoteRequest, VoteResponse};
use super::output::Output;
use super::progress::Progress;
use super::role::{Candidate, Follower, Role};
use super::Node;
use crate::ids::{NodeId, Term};

impl Node {
    /// A tick for a follower or (pre-)candidate: start an election when the timer fires.
    pub(crate) fn tick_election(&mut self) {
        let fired = match &mut self.role {
            Role::Follower(follower) => {
                follower.ticks_since_leader = follower.ticks_since_leader.saturating_add(1);
                follower.election_elapsed_ticks += 1;
                follower.election_elapsed_ticks >= follower.election_timeout_ticks
            }
            Role::PreCandidate(candidate) | Role::Candidate(candidate) => {
                candidate.election_elapsed_ticks += 1;
                candidate.election_elapsed_ticks >= candidate.election_timeout_ticks
            }
            Role::Leader(_) => false,
        };
        if fired {
            if self.is_voter() {
                self.start_campaign(false);
            } else if let Role::Follower(follower) = &mut self.role {
                follower.election_elapsed_ticks = 0;
            }
        }
    }

    /// Start campaigning: with a pre-vote round first, unless disabled or asked to by the
    /// leader (`transfer`).
    pub(crate) fn start_campaign(&mut self, transfer: bool) {
        if self.config.pre_vote && !transfer {
            self.start_pre_vote();
        } else {
            self.start_election(transfer);
        }
    }

    fn start_pre_vote(&mut self) {
        let timeout = self.random_election_timeout();
        let role = std::mem::replace(&mut self.role, Role::Follower(Follower::default()));
        let mut candidate = match role {
            Role::Follower(follower) => follower.campaign(timeout),
            _ => Candidate::new(timeout),
        };
        candidate.votes.insert(self.id, true);
        self.role = Role::PreCandidate(candidate);
        self.announce_role();
        let request = self.own_vote_request(false);
        let next_term = self.term().next();
        for voter in self.other_voters() {
            let message = Message::PreVoteRequest(request);
            self.outputs.push(Output::Send(Envelope {
                from: self.id,
                to: voter,
                term: next_term,
                message,
            }));
        }
        self.tally_votes(true);
    }

    fn start_election(&mut self, transfer: bool) {
        let timeout = self.random_election_timeout();
        self.hard_state.term = self.term().next();
        self.hard_state.voted_for = Some(self.id);
        self.stage_hard_state();
        let role = std::mem::replace(&mut self.role, Role::Follower(Follower::default()));
        let candidate = match role {
            Role::Follower(follower) => follower.campaign(timeout),
            _ => Candidate::new(timeout),
        };
        self.role = Role::Candidate(candidate);
        self.announce_role();
        let request = self.own_vote_request(transfer);
        // Our own vote counts only once it is durable, like any other vote.
        let own_vote = Message::VoteResponse(VoteResponse { granted: true });
        self.send_when_durable(Envelope {
            from: self.id,
            to: self.id,
            term: self.term(),
            message: own_vote,
        });
        for voter in self.other_voters() {
            let envelope = Envelope {
                from: self.id,
                to: voter,
                term: self.term(),
                message: Message::VoteRequest(request),
            };
            self.send_when_durable(envelope);
        }
    }

    fn own_vote_request(&self, leadership_transfer: bool) -> VoteRequest {
        VoteRequest {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leadership_transfer,
        }
    }

    fn other_voters(&self) -> Vec<NodeId> {
        self.membership
            .current()
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.id)
            .collect()
    }

    /// Whether a leader is known to be alive: then vote requests are ignored (check-quorum).
    pub(crate) fn in_leader_lease(&self) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        match &self.role {
            Role::Leader(_) => true,
            Role::Follower(follower) => {
                follower.leader.is_some()
                    && follower.ticks_since_leader < self.config.election_timeout_min_ticks
            }
            _ => false,
        }
    }

    /// Answer a (pre-)vote request whose term is at least ours.
    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        request: VoteRequest,
        pre: bool,
    ) {
        let up_to_date = self
            .log
            .is_up_to_date(request.last_log_index, request.last_log_term);
        let lease = self.in_leader_lease() && !request.leadership_transfer;
        let may_vote = self.membership.current().is_voter(self.id) || !pre;
        if pre {
            let granted = term > self.term() && up_to_date && !lease && may_vote;
            let reply_term = if granted { term } else { self.term() };
            let message = Message::PreVoteResponse(VoteResponse { granted });
            self.outputs.push(Output::Send(Envelope {
                from: self.id,
                to: from,
                term: reply_term,
                message,
            }));
            return;
        }
        let free = self.hard_state.voted_for.is_none_or(|v| v == from);
        let granted = free && up_to_date && self.membership.current().is_voter(self.id);
        if granted {
            self.hard_state.voted_for = Some(from);
            self.stage_hard_state();
            if let Role::Follower(follower) = &mut self.role {
                follower.election_elapsed_ticks = 0;
            }
        }
        let envelope = Envelope {
            from: self.id,
            to: from,
            term: self.term(),
            message: Message::VoteResponse(VoteResponse { granted }),
        };
        if granted && !self.config.bug(Bug::VoteWithoutPersist) {
            self.send_when_durable(envelope);
        } else {
            self.outputs.push(Output::Send(envelope));
        }
    }

    /// Count a (pre-)vote.
    pub(crate) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        response: VoteResponse,
        pre: bool,
    ) {
        let expected_term = if pre { self.term().next() } else { self.term() };
        if term != expected_term || !self.membership.current().is_voter(from) {
            return;
        }
        match (&mut self.role, pre) {
            (Role::PreCandidate(candidate), true) | (Role::Candidate(candidate), false) => {
                candidate.votes.entry(from).or_insert(response.granted);
            }
            _ => return,
        }
        self.tally_votes(pre);
    }

    fn tally_votes(&mut self, pre: bool) {
        let (Role::PreCandidate(candidate) | Role::Candidate(candidate)) = &self.role else {
            return;
        };
        let granted = candidate.votes.values().filter(|&&g| g).count();
        if granted < self.membership.current().quorum() {
            return;
        }
        if pre {
            self.start_election(false);
        } else {
            self.become_leader();
        }
    }

    /// Become a follower in `term` (raising our term if it is higher).
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term() {
            self.hard_state.term = term;
            self.hard_state.voted_for = None;
            self.stage_hard_state();
        }
        let timeout = self.random_election_timeout();
        let role = std::mem::replace(
            &mut self.role,
            Role::Follower(Follower::new(leader, timeout)),
        );
        if let Role::Leader(leader_state) = role {
            let (follower, reads) = leader_state.step_down(leader, timeout);
            self.role = Role::Follower(follower);
            for read in reads.into_ids() {
                self.outputs.push(Output::ReadFailed {
                    read_id: read,
                    leader_hint: leader,
                });
            }
        }
        self.announce_role();
    }

    fn become_leader(&mut self) {
        let role = std::mem::replace(&mut self.role, Role::Follower(Follower::default()));
        let Role::Candidate(candidate) = role else {
            self.role = role;
            return;
        };
        let next = self.log.last_index().next();
        let progress: BTreeMap<NodeId, Progress> = self
            .replication_targets()
            .into_iter()
            .map(|m| (m, Progress::new(next)))
            .collect();
        self.role = Role::Leader(Box::new(candidate.win(progress)));
        self.announce_role();
        self.append_as_leader(Payload::Noop);
    }

    /// Tell the host the role, term and leader.
    pub(crate) fn announce_role(&mut self) {
        let announcement = Output::RoleChanged {
            role: self.role.kind(),
            term: self.term(),
            leader: self.leader(),
        };
        self.outputs.push(announcement);
    }
}
