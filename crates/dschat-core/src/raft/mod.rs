//! # Raft: a replicated log that survives the failure of a minority
//!
//! ## The problem
//! dschat keeps its rooms, names and messages on several servers so that it survives crashes.
//! The servers must agree on one sequence of commands even though messages are lost,
//! duplicated, reordered and delayed, and servers crash and restart with only what they wrote
//! to disk. Raft (Ongaro and Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! 2014; Ongaro's thesis, 2014) solves this with a leader that orders commands in a log and
//! replicates it to followers.
//!
//! ## The guarantee
//! - **Election safety**: at most one leader per term.
//! - **Leader append-only**: a leader never overwrites or deletes entries in its log.
//! - **Log matching**: two logs with an entry of the same index and term agree on every entry
//!   up to it.
//! - **Leader completeness**: a committed entry is in the log of every later leader.
//! - **State machine safety**: no two servers apply different entries at one index.
//! - **Linearizable reads** through `Node::read`.
//!
//! ## How it works, in this module's types
//! A [`Node`] is one server. It holds a role as a type (`role::Role`: `Follower`,
//! `PreCandidate`, `Candidate` or `Leader`), the in-memory [`Log`], its [`HardState`] (term and
//! vote) and the membership history.
//!
//! - **Elections** (paper §5.2, thesis §9.6). A follower that hears nothing for a randomised
//!   election timeout (`[min, 2·min)` ticks drawn from its seeded generator) becomes a
//!   pre-candidate and sends [`Message::PreVoteRequest`]s without raising its term; only when a
//!   majority would vote does it raise its term and send [`Message::VoteRequest`]s. Voters
//!   grant one vote per term to a candidate whose log is at least as up to date as theirs.
//!   With check-quorum, a voter that heard from a leader within the minimum election timeout
//!   ignores vote requests, and a leader that has not heard from a majority for an election
//!   timeout steps down. Pre-vote and check-quorum together stop a rejoining server from
//!   deposing a healthy leader.
//! - **Replication** (paper §5.3). The leader sends [`Message::LogRequest`]s (AppendEntries).
//!   Per follower, `progress::Progress` probes one request at a time until the logs agree, then
//!   pipelines batches (at most `Config::max_batch_entries` entries / `max_batch_bytes` bytes
//!   each, at most `Config::max_inflight_requests` unanswered). A follower that does not match
//!   returns a [`ConflictHint`] so the leader skips a whole term at a time.
//! - **Commit** (paper §5.4.2). The leader commits the highest index stored by a majority, but
//!   only if that entry is of its own term; earlier entries commit with it (figure 8). A new
//!   leader appends a [`Payload::Noop`] so that it has such an entry at once.
//! - **Durability** (paper figure 2, "updated on stable storage before responding"). Every
//!   change of term, vote or log is returned as an [`Output::Persist`] with a [`PersistId`];
//!   the host writes it, fsyncs, and calls [`Node::persisted`]. Until then the node *withholds*
//!   every message whose truth depends on that write: its vote, its vote request (its own
//!   vote), its log response. A leader sends log requests while its own write is in flight, but
//!   counts itself towards a majority only up to its durable index. Committed entries are
//!   handed out for application ([`Output::Apply`]) only once durable locally.
//! - **Reads** (thesis §6.4). `Node::read` records the commit index as the read index and
//!   starts a heartbeat round; once a majority echoes a round at least as recent, the leader
//!   knows it was still leader when the read arrived, and [`Output::ReadReady`] follows as soon
//!   as the read index is applied. Lease reads (thesis §6.4.1) skip the round while a lease
//!   holds; they are off unless `Config::lease_reads` sets a clock-drift bound.
//! - **Snapshots** (paper §7). The host takes a snapshot of its state machine
//!   (`Node::snapshot_taken`), after which the log before it is dropped
//!   ([`Output::Compacted`]). A follower that needs dropped entries gets the snapshot in
//!   chunks ([`Message::SnapshotChunk`], InstallSnapshot) and the host installs it
//!   ([`Output::InstallSnapshot`]).
//! - **Membership** (thesis §4). One server at a time, as a log entry that takes effect when
//!   appended: `Node::add_learner`, `Node::promote_learner` (only once the learner has caught
//!   up), `Node::remove_node`. At most one change may be uncommitted, and a new leader must
//!   first commit an entry of its term. A leader that removes itself keeps leading until the
//!   removal commits, then steps down and tells the most up-to-date voter to campaign.
//! - **Leadership transfer** (thesis §3.10). `Node::transfer_leadership` stops new proposals,
//!   brings the target up to date and sends it [`Message::TimeoutNow`]; the target campaigns
//!   at once, and voters vote even though they still hear from the old leader.
//! - **Client sessions.** A [`Command`] carries an optional `(ClientId, SequenceNumber)`; Raft
//!   only carries it, and the state machine applies each session's command once.
//! - **Bootstrap.** A new cluster's members all start from [`RestoredState::bootstrap`], whose
//!   log holds one entry, [`Payload::InitialConfiguration`] at index 1 and term 0; servers added
//!   later start from [`RestoredState::joining`] and learn every configuration from the log or
//!   a snapshot, like any other change.
//!
//! Every queue has a bound in [`Config`] and a defined behaviour at the bound (an [`Error`]
//! for proposals and reads, waiting for in-flight requests and batches).
//!
//! ## How a host drives this
//! ```
//! use dschat_core::ids::NodeId;
//! use dschat_core::raft::{Config, Node, Output, RestoredState};
//!
//! let mut node = Node::new(NodeId(1), Config::default(), RestoredState::bootstrap([NodeId(1)]))
//!     .expect("valid config");
//! let mut outputs = node.campaign(); // or: call node.tick() every 10 ms
//! while !outputs.is_empty() {
//!     let mut next = Vec::new();
//!     for output in outputs {
//!         match output {
//!             Output::Send(_envelope) => { /* send to envelope.to; on receipt: node.step(envelope) */ }
//!             Output::Persist(write) => {
//!                 // append write.entries to the write-ahead log, store write.hard_state, fsync
//!                 next.extend(node.persisted(write.id));
//!             }
//!             Output::Apply(_entries) => { /* apply to the state machine, in order */ }
//!             _ => { /* reads, snapshots, role changes */ }
//!         }
//!     }
//!     outputs = next;
//! }
//! assert!(node.status().role == dschat_core::raft::RoleKind::Leader);
//! ```
//! Every method returns the outputs it caused, in the order they must be handled. Writes must
//! complete in the order issued; `persisted(id)` may acknowledge several at once (group commit).
//! The whole API: [`Node::new`], [`Node::tick`], [`Node::step`], [`Node::propose`] (or
//! [`Node::propose_batch`] for the requests that arrived during one turn of the host's loop),
//! [`Node::read`], [`Node::persisted`], [`Node::snapshot_taken`], [`Node::add_learner`],
//! [`Node::promote_learner`], [`Node::remove_node`], [`Node::transfer_leadership`],
//! [`Node::campaign`] (an election now, for operators and tests), and for observers
//! [`Node::status`], [`Node::log`], [`Node::hard_state`], [`Node::snapshot`],
//! [`Node::check_invariants`] and [`Node::validate`]. A committed command is recognised by its
//! index and term in an [`Output::Apply`]. After a crash the host builds a new node from what
//! it stored ([`RestoredState`]: hard state, latest snapshot, entries after it, and the
//! state machine's applied index); writes that were not reported durable may be lost.
//!
//! ## Code map
//! `message.rs` (what travels), `log.rs` ([`Log`]), `role.rs` (the roles as types),
//! `election.rs` (pre-vote, votes, role transitions), `leader.rs` (replication, commit,
//! heartbeats, check-quorum), `progress.rs` (per-follower pacing), `follower.rs` (the
//! consistency check and log repair), `durability.rs` (the persistence contract), `read.rs`
//! (read index and leases), `snapshot.rs`, `membership.rs`, `transfer.rs`, `invariants.rs`
//! (what `validate` asserts), `config.rs` (every bound), `error.rs`, `output.rs`.
//!
//! ## Where it is tested
//! `tests/raft_scripts/*.txt` (one behaviour per script, with expected traces),
//! `tests/raft_random.rs` (seeded random faults, every safety property after every step) and
//! `tests/raft_bug_switches.rs` (each bug of `BugSwitches`, re-introduced, is caught;
//! feature `bug-switches`). `benches/raft_throughput.rs` measures throughput.
//!
//! ## Known limitations
//! - The snapshot a leader streams is held in memory (`Snapshot::data`), and so is a snapshot
//!   a follower is receiving; the host's state machine must produce and accept it whole.
//! - Lost log requests to a follower are noticed through heartbeat answers (no answer to
//!   anything sent since the last heartbeat), so recovery takes about one heartbeat interval.
//! - A leader that starts a leadership transfer never serves lease reads again in that term
//!   (voters may elect the target despite the lease).
//! - The leader replicates to a removed server until its removal commits, so the server
//!   normally learns it is no longer a voter. One that was unreachable all that time keeps
//!   campaigning (harmlessly, thanks to pre-vote) until its host shuts it down; the host learns
//!   of the removal from the applied membership entry on the other servers.
//! - Membership changes one server at a time only (no joint consensus).
//! - Every read starts its own heartbeat round; reads are not yet coalesced into one round.

#![warn(missing_docs)]

mod config;
mod durability;
mod election;
mod error;
mod follower;
mod invariants;
mod leader;
mod log;
mod membership;
mod message;
mod output;
mod progress;
mod read;
mod role;
mod snapshot;
mod transfer;

#[cfg(feature = "bug-switches")]
pub use config::BugSwitches;
pub use config::{Config, LeaseReads};
pub use error::Error;
pub use log::Log;
pub use membership::{ConfigChange, Configuration};
pub use message::{
    Command, ConflictHint, Entry, Envelope, Heartbeat, HeartbeatResponse, LogRequest, LogResponse,
    Message, Payload, SnapshotChunk, SnapshotMetadata, SnapshotResponse, VoteRequest, VoteResponse,
};
pub use output::{
    HardState, Output, PersistId, PersistRequest, Proposed, ProposedBatch, ReadId, RestoredState,
    RoleKind, Snapshot, Status,
};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::ids::{LogIndex, NodeId, Term};
use durability::Durability;
use membership::MembershipHistory;
use role::{Follower, Role};

/// One Raft server: a pure state machine driven by its host.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    config: Config,
    rng: StdRng,
    hard_state: HardState,
    log: Log,
    membership: MembershipHistory,
    commit_index: LogIndex,
    applied_index: LogIndex,
    snapshot: Option<Snapshot>,
    snapshot_wanted_at: Option<LogIndex>,
    now_ticks: u64,
    durability: Durability,
    role: Role,
    outputs: Vec<Output>,
}

impl Node {
    /// Start (or restart) a node from what its host recovered from disk.
    pub fn new(id: NodeId, config: Config, restored: RestoredState) -> Result<Node, Error> {
        config.validate()?;
        let (snapshot_index, snapshot_term, base) = match &restored.snapshot {
            Some(s) => (
                s.metadata.last_included_index,
                s.metadata.last_included_term,
                s.metadata.configuration.clone(),
            ),
            None => (LogIndex(0), Term(0), Configuration::default()),
        };
        if restored
            .entries
            .first()
            .is_some_and(|e| e.index != snapshot_index.next())
        {
            return Err(Error::InvalidConfig(
                "restored entries do not follow the snapshot".into(),
            ));
        }
        let membership = MembershipHistory::new(base, &restored.entries);
        let log = Log::new(snapshot_index, snapshot_term, restored.entries);
        let applied_index = restored
            .applied_index
            .max(snapshot_index)
            .min(log.last_index());
        let mut rng = StdRng::seed_from_u64(config.seed);
        let timeout = Self::draw_timeout(&mut rng, &config);
        Ok(Node {
            id,
            rng,
            hard_state: restored.hard_state,
            durability: Durability::new(log.last_index()),
            log,
            membership,
            commit_index: applied_index,
            applied_index,
            snapshot: restored.snapshot,
            snapshot_wanted_at: None,
            now_ticks: 0,
            role: Role::Follower(Follower::new(None, timeout)),
            outputs: Vec::new(),
            config,
        })
    }

    /// Advance time by one tick: election and heartbeat timers, check-quorum, transfers.
    pub fn tick(&mut self) -> Vec<Output> {
        self.now_ticks += 1;
        match self.role {
            Role::Leader(_) => self.tick_leader(),
            _ => self.tick_election(),
        }
        self.finish()
    }

    /// Handle a message from another server.
    pub fn step(&mut self, envelope: Envelope) -> Vec<Output> {
        self.receive(envelope);
        self.finish()
    }

    /// Start an election now, as if the election timer had fired (for operators and tests).
    pub fn campaign(&mut self) -> Vec<Output> {
        if !matches!(self.role, Role::Leader(_)) && self.is_voter() {
            self.start_campaign(false);
        }
        self.finish()
    }

    /// Propose a command (leader only).
    pub fn propose(&mut self, command: Command) -> Result<Proposed, Error> {
        self.check_can_propose()?;
        let index = self.append_as_leader(Payload::Command(command));
        Ok(Proposed {
            index,
            term: self.term(),
            outputs: self.finish(),
        })
    }

    /// Propose several commands at once (leader only): one write and one round of log
    /// requests for all of them, which is how a host batches the requests that arrive while it
    /// is busy. All or none are accepted.
    pub fn propose_batch(&mut self, commands: Vec<Command>) -> Result<ProposedBatch, Error> {
        self.check_can_propose_many(commands.len() as u64)?;
        let first_index = self.log.last_index().next();
        for command in commands {
            self.append_without_sending(Payload::Command(command));
        }
        self.replicate_to_all();
        Ok(ProposedBatch {
            first_index,
            last_index: self.log.last_index(),
            term: self.term(),
            outputs: self.finish(),
        })
    }

    /// Ask for a linearizable read; `Output::ReadReady { read_id, .. }` follows once it is safe
    /// to read the state machine.
    pub fn read(&mut self, read_id: ReadId) -> Result<Vec<Output>, Error> {
        self.start_read(read_id)?;
        Ok(self.finish())
    }

    /// The host made every write up to `id` durable.
    pub fn persisted(&mut self, id: PersistId) -> Vec<Output> {
        self.on_persisted(id);
        self.finish()
    }

    /// The host took (and stored durably) a snapshot of its state machine at `index`, which
    /// must be applied; the log through `index` is dropped.
    pub fn snapshot_taken(&mut self, index: LogIndex, data: Vec<u8>) -> Result<Vec<Output>, Error> {
        self.compact(index, data)?;
        Ok(self.finish())
    }

    /// Add `node` to the cluster as a learner (leader only).
    pub fn add_learner(&mut self, node: NodeId) -> Result<Proposed, Error> {
        self.change_membership(ConfigChange::AddLearner(node))
    }

    /// Make learner `node` a voter (leader only; the learner must have caught up).
    pub fn promote_learner(&mut self, node: NodeId) -> Result<Proposed, Error> {
        self.change_membership(ConfigChange::PromoteLearner(node))
    }

    /// Remove `node` (voter or learner, possibly the leader itself) from the cluster.
    pub fn remove_node(&mut self, node: NodeId) -> Result<Proposed, Error> {
        self.change_membership(ConfigChange::Remove(node))
    }

    /// Hand leadership to voter `target` (leader only).
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<Vec<Output>, Error> {
        self.start_transfer(target)?;
        Ok(self.finish())
    }

    /// A summary of the node's state.
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role.kind(),
            term: self.term(),
            leader: self.leader(),
            commit_index: self.commit_index,
            applied_index: self.applied_index,
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
            configuration: self.membership.current().clone(),
        }
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The in-memory log (what will be durable once all issued writes complete).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The current term and vote (what will be durable once all issued writes complete).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The latest snapshot the node holds, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Assert the node's invariants; panics with a description if one is broken.
    pub fn validate(&self) {
        if let Err(broken) = self.check_invariants() {
            panic!("raft node {} invariant broken: {broken}", self.id);
        }
    }

    fn term(&self) -> Term {
        self.hard_state.term
    }

    fn leader(&self) -> Option<NodeId> {
        match &self.role {
            Role::Follower(follower) => follower.leader,
            Role::Leader(_) => Some(self.id),
            Role::PreCandidate(_) | Role::Candidate(_) => None,
        }
    }

    fn is_voter(&self) -> bool {
        self.membership.current().is_voter(self.id)
    }

    fn draw_timeout(rng: &mut StdRng, config: &Config) -> u64 {
        let min = config.election_timeout_min_ticks;
        rng.gen_range(min..2 * min)
    }

    fn random_election_timeout(&mut self) -> u64 {
        Self::draw_timeout(&mut self.rng, &self.config)
    }

    fn finish(&mut self) -> Vec<Output> {
        self.flush_staged();
        std::mem::take(&mut self.outputs)
    }

    fn send(&mut self, to: NodeId, message: Message) {
        let envelope = Envelope {
            from: self.id,
            to,
            term: self.term(),
            message,
        };
        self.outputs.push(Output::Send(envelope));
    }

    /// Dispatch one incoming message after the term rules common to all of them.
    fn receive(&mut self, envelope: Envelope) {
        if envelope.to != self.id || !self.accept_term(&envelope) {
            return;
        }
        let Envelope {
            from,
            term,
            message,
            ..
        } = envelope;
        match message {
            Message::PreVoteRequest(request) => self.handle_vote_request(from, term, request, true),
            Message::VoteRequest(request) => self.handle_vote_request(from, term, request, false),
            Message::PreVoteResponse(response) => {
                self.handle_vote_response(from, term, response, true)
            }
            Message::VoteResponse(response) => {
                self.handle_vote_response(from, term, response, false)
            }
            Message::LogRequest(request) => self.handle_log_request(from, request),
            Message::LogResponse(response) => self.handle_log_response(from, response),
            Message::Heartbeat(heartbeat) => self.handle_heartbeat(from, heartbeat),
            Message::HeartbeatResponse(response) => self.handle_heartbeat_response(from, response),
            Message::SnapshotChunk(chunk) => self.handle_snapshot_chunk(from, chunk),
            Message::SnapshotResponse(response) => self.handle_snapshot_response(from, response),
            Message::TimeoutNow => self.handle_timeout_now(from),
        }
    }

    /// The term rules (paper figure 2, "all servers"): a higher term makes us a follower of it
    /// (except for pre-votes, which raise no term, and vote requests we ignore under a leader's
    /// lease); a lower term is stale and only answered so the sender learns our term.
    fn accept_term(&mut self, envelope: &Envelope) -> bool {
        let from_leader = matches!(
            envelope.message,
            Message::LogRequest(_) | Message::Heartbeat(_) | Message::SnapshotChunk(_)
        );
        if envelope.term > self.term() {
            match &envelope.message {
                Message::PreVoteRequest(_) => {}
                Message::PreVoteResponse(response) if response.granted => {}
                Message::VoteRequest(request)
                    if !request.leadership_transfer && self.in_leader_lease() =>
                {
                    return false;
                }
                _ => self.become_follower(envelope.term, from_leader.then_some(envelope.from)),
            }
            return true;
        }
        if envelope.term < self.term() {
            let no = VoteResponse { granted: false };
            match &envelope.message {
                _ if from_leader => self.send(
                    envelope.from,
                    Message::HeartbeatResponse(HeartbeatResponse { read_round: 0 }),
                ),
                Message::PreVoteRequest(_) => {
                    self.send(envelope.from, Message::PreVoteResponse(no))
                }
                Message::VoteRequest(_) => self.send(envelope.from, Message::VoteResponse(no)),
                _ => {}
            }
            return false;
        }
        true
    }
}
