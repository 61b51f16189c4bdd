//! Linearizable reads by read index (thesis §6.4), and lease reads behind a clock-drift bound
//! (thesis §6.4.1).
//!
//! A read arriving at the leader records the commit index as its *read index* (once the leader
//! has committed an entry of its term, so that the commit index is up to date) and starts a
//! heartbeat *round*. Once a majority of voters has echoed a round at least as recent, no
//! other leader can have been elected before the read arrived, so reading the state machine
//! once it has applied the read index is linearizable. Without that confirmation a deposed
//! leader, cut off in a minority, would serve stale data.

use std::collections::VecDeque;

use super::config::Bug;
use super::error::Error;
use super::message::HeartbeatResponse;
use super::output::{Output, ReadId};
use super::progress::ProgressState;
use super::role::Role;
use super::Node;
use crate::ids::{LogIndex, NodeId};

/// Bound on remembered round start times (only the latest rounds can still be confirmed).
const MAX_REMEMBERED_ROUNDS: usize = 64;

/// One read waiting at the leader.
#[derive(Debug, Clone, Copy)]
struct PendingRead {
    read_id: ReadId,
    /// The read index, once the leader has committed an entry of its term.
    index: Option<LogIndex>,
    /// The heartbeat round that must be confirmed.
    round: u64,
    confirmed: bool,
}

/// The leader's pending reads, in arrival order (bounded by `Config::max_pending_reads`).
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    pending: VecDeque<PendingRead>,
    round: u64,
    round_started_at: VecDeque<(u64, u64)>,
    lease_until_tick: u64,
    /// Set when a leadership transfer starts: voters may then elect the target despite our
    /// lease, so no lease read is served again in this term.
    pub(crate) lease_revoked: bool,
}

impl ReadQueue {
    /// The ids of all pending reads (to fail them when leadership is lost).
    pub(crate) fn into_ids(self) -> Vec<ReadId> {
        self.pending.into_iter().map(|r| r.read_id).collect()
    }
}

impl Node {
    /// Start a new heartbeat round and return its number.
    pub(crate) fn next_read_round(&mut self) -> u64 {
        let now = self.now_ticks;
        let Role::Leader(leader) = &mut self.role else {
            return 0;
        };
        let reads = &mut leader.reads;
        reads.round += 1;
        reads.round_started_at.push_back((reads.round, now));
        if reads.round_started_at.len() > MAX_REMEMBERED_ROUNDS {
            reads.round_started_at.pop_front();
        }
        reads.round
    }

    /// Register a read at the leader and start confirming leadership for it.
    pub(crate) fn start_read(&mut self, read_id: ReadId) -> Result<(), Error> {
        let lease_valid = self.lease_valid();
        let commit_index = self.commit_index;
        let single_voter = self.membership.current().voters.len() == 1;
        let Role::Leader(leader) = &mut self.role else {
            return Err(Error::NotLeader {
                leader_hint: self.leader(),
            });
        };
        if leader.transfer.is_some() {
            return Err(Error::TransferInProgress);
        }
        if leader.reads.pending.len() >= self.config.max_pending_reads {
            return Err(Error::ReadQueueFull {
                limit: self.config.max_pending_reads,
            });
        }
        let index = leader.term_committed.then_some(commit_index);
        let skip_round =
            lease_valid || single_voter || self.config.bug(Bug::ReadWithoutConfirmation);
        let round = if skip_round {
            leader.reads.round
        } else {
            leader.reads.round + 1
        };
        leader.reads.pending.push_back(PendingRead {
            read_id,
            index,
            round,
            confirmed: skip_round,
        });
        if !skip_round {
            self.broadcast_heartbeat();
        }
        self.serve_ready_reads();
        Ok(())
    }

    fn lease_valid(&self) -> bool {
        let Role::Leader(leader) = &self.role else {
            return false;
        };
        self.config.lease_reads.is_some()
            && !leader.reads.lease_revoked
            && self.now_ticks < leader.reads.lease_until_tick
    }

    /// Reads that arrived before the leader committed an entry of its term get the commit
    /// index from when it did.
    pub(crate) fn assign_read_indexes(&mut self) {
        let commit_index = self.commit_index;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        if !leader.term_committed {
            return;
        }
        for read in leader
            .reads
            .pending
            .iter_mut()
            .filter(|r| r.index.is_none())
        {
            read.index = Some(commit_index);
        }
    }

    /// A follower echoed a heartbeat round. If it is behind and nothing it was sent since the
    /// heartbeat went out has been answered, what was sent was probably lost: start again
    /// from what it is known to hold (duplicates are harmless).
    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, response: HeartbeatResponse) {
        let last_index = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        progress.read_round = progress.read_round.max(response.read_round);
        let stalled = progress.match_index < last_index && !progress.made_progress;
        let mut resend_snapshot = false;
        let ignore_stall = self.config.bug(Bug::IgnoreStalledReplication);
        match &mut progress.state {
            _ if ignore_stall => {}
            ProgressState::Probe { waiting } => *waiting = false,
            ProgressState::Replicate { .. } if stalled => progress.become_probe(),
            ProgressState::Snapshot { .. } => resend_snapshot = stalled,
            ProgressState::Replicate { .. } => {}
        }
        let behind = progress.match_index < last_index;
        self.confirm_reads();
        if resend_snapshot {
            self.send_snapshot_chunk(from);
        } else if behind {
            self.send_append(from);
        }
    }

    /// Mark reads whose round a majority has echoed, renew the lease, serve what is ready.
    fn confirm_reads(&mut self) {
        let own = self.id;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let own_round = leader.reads.round;
        let confirmed_round = self.membership.current().quorum_index(|voter| {
            let round = if voter == own {
                own_round
            } else {
                leader.progress.get(&voter).map_or(0, |p| p.read_round)
            };
            LogIndex(round)
        });
        let Some(LogIndex(confirmed_round)) = confirmed_round else {
            return;
        };
        for read in leader.reads.pending.iter_mut() {
            if read.round <= confirmed_round {
                read.confirmed = true;
            }
        }
        if let Some(lease) = self.config.lease_reads {
            let started = leader
                .reads
                .round_started_at
                .iter()
                .find(|(r, _)| *r == confirmed_round);
            if let Some((_, start)) = started {
                let length = self.config.election_timeout_min_ticks - lease.clock_drift_bound_ticks;
                leader.reads.lease_until_tick = leader.reads.lease_until_tick.max(start + length);
            }
        }
        self.serve_ready_reads();
    }

    /// Answer, in order, the confirmed reads whose index is applied.
    pub(crate) fn serve_ready_reads(&mut self) {
        let applied = self.applied_index;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        while let Some(read) = leader.reads.pending.front() {
            match read.index {
                Some(index) if read.confirmed && index <= applied => {
                    self.outputs.push(Output::ReadReady {
                        read_id: read.read_id,
                        index,
                    });
                    leader.reads.pending.pop_front();
                }
                _ => break,
            }
        }
    }
}
