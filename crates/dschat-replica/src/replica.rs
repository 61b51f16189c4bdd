//! [`Replica`]: one server's Raft node, chat state and storage, driven by its host.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};

use dschat_core::chat::model::StoredEvent;
use dschat_core::chat::Timeline;
use dschat_core::chat::{ChatError, ChatState, ClientSession, Command, Envelope, Response};
use dschat_core::ids::{LogIndex, NodeId, Term};
use dschat_core::raft::{
    self, Entry, Output, Payload, PersistId, PersistRequest, ReadId, RestoredState, RoleKind,
    Status,
};
use dschat_core::state_machine::StateMachine;
use dschat_storage::disk::Disk;
use dschat_storage::WalOptions;

use crate::clocks::Clocks;
use crate::error::ReplicaError;
use crate::storage::ReplicaStorage;

/// Test-only switches that re-introduce known bugs of a replica's glue, so tests can show
/// they catch them. Compiled only with the `bug-switches` feature; never in a release build.
#[cfg(feature = "bug-switches")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaBugSwitches {
    /// Propose writes without their client session, so a retried write is applied again
    /// (TESTING.md row 14: duplicated commands on client retry).
    pub forget_client_sessions: bool,
    /// Answer a post as soon as it is proposed, before it is committed (TESTING.md row 7).
    pub acknowledge_before_commit: bool,
    /// The chat state's feed, resumed after an id, skips the first event after it
    /// (TESTING.md row 17; see `dschat_core::chat::ChatBugSwitches`).
    pub feed_resume_skips_first_event: bool,
    /// The hybrid clock follows the physical clock backwards (no maximum with the last
    /// stamp), so commands can be stamped earlier than those before them in the log
    /// (TESTING.md row 18: clock skew breaking timestamp order).
    pub hybrid_clock_follows_physical_time_backwards: bool,
}

/// How a replica starts.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This server's id (also the node field of the message ids it mints; at most 1023).
    pub node: NodeId,
    /// The Raft core's tuning (its `seed` draws the election timeouts).
    pub raft: raft::Config,
    /// The write-ahead log's tuning.
    pub wal: WalOptions,
    /// For a server of a brand-new cluster: the cluster's voters. `None`: the server waits to
    /// be added to an existing cluster. Ignored when the storage already holds a state.
    pub initial_voters: Option<Vec<NodeId>>,
}

/// Names a client request, chosen by the host; returned with its [`Outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// What a client asks of a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Change the chat state (leader only), applied once per client session position.
    Write {
        /// The client session, for exactly-once retries.
        session: Option<ClientSession>,
        /// The change.
        command: Command,
    },
    /// A linearizable read (leader only): once [`Outcome::ReadReady`] arrives, the state
    /// ([`Replica::chat`]) reflects every write acknowledged before the request was made.
    Read,
}

/// How a request ended. Only [`Outcome::Indefinite`] leaves the client in doubt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The write was committed and applied at `index`, with this reply.
    Applied {
        /// Its log index.
        index: LogIndex,
        /// The state machine's reply.
        reply: Result<Response, ChatError>,
    },
    /// The read may now be served from [`Replica::chat`].
    ReadReady {
        /// The read index (the state has applied at least this far).
        index: LogIndex,
    },
    /// This replica is not the leader; nothing was done. Retry at the hinted leader.
    NotLeader {
        /// The leader this replica knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// The write was proposed but another entry was committed in its place: it will never
    /// be applied. Retrying (under the same session) is safe.
    Dropped,
    /// The write was proposed, but the replica can no longer tell whether it will be applied
    /// (its log was replaced by a snapshot). Retry under the same session to find out.
    Indefinite,
    /// The replica refused the request for now (a queue is full, a transfer is under way).
    Busy(String),
}

/// What one call into a replica produced, for its host to carry out.
#[derive(Debug, Default)]
pub struct Effects {
    /// Messages to send to other servers (best effort).
    pub messages: Vec<raft::Envelope>,
    /// Requests that ended, in the order they ended.
    pub completions: Vec<(RequestId, Outcome)>,
    /// Events the applied entries created, in log order, for live feeds.
    pub events: Vec<(Timeline, StoredEvent)>,
    /// Away statuses the applied entries changed, in log order, for live feeds.
    pub away_changes: Vec<dschat_core::chat::AwayChange>,
    /// Entries applied to the chat state by this call (no-ops and configuration included).
    pub applied: Vec<AppliedEntry>,
    /// Role changes, in order.
    pub role_changes: Vec<RoleChange>,
    /// The chat state was replaced by a snapshot from the leader (feeds must resynchronise).
    pub state_replaced: bool,
    /// State digests taken at the indices [`Replica::set_digest_interval`] asked for, so an
    /// observer can compare replicas at equal applied indices.
    pub digests: Vec<(LogIndex, [u8; 32])>,
}

/// One entry applied to the chat state, as an observer (a checker, a dashboard) sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedEntry {
    /// Its index.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
    /// The server time its command was stamped with by the leader that proposed it (`None`
    /// for no-ops and configuration entries). Along the log these strictly increase: each
    /// leader's hybrid clock runs past every entry already in its log before it stamps.
    pub time: Option<dschat_core::clock::hybrid::HybridTimestamp>,
}

/// A change of the Raft role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// The new role.
    pub role: RoleKind,
    /// The term.
    pub term: Term,
    /// The leader known in that term.
    pub leader: Option<NodeId>,
}

/// One dschat server as a pure host. See the crate documentation.
#[derive(Debug)]
pub struct Replica {
    id: NodeId,
    raft: raft::Node,
    /// Shared with the host's readers (front ends, search); written only by this replica,
    /// and locked only while entries are applied, never across a disk write.
    chat: Arc<RwLock<ChatState>>,
    storage: ReplicaStorage,
    clocks: Clocks,
    /// Proposed writes by log index, with the term they were proposed in.
    pending_writes: BTreeMap<LogIndex, (Term, RequestId)>,
    pending_reads: HashMap<ReadId, RequestId>,
    next_read_id: u64,
    /// Take a state digest whenever the applied index is a multiple of this (0: never).
    digest_every_entries: u64,
    /// Whether the host completes fsyncs itself ([`Replica::set_deferred_sync`]).
    deferred_sync: bool,
    /// The last write handed to the disk but not yet synced (deferred-sync mode only).
    unsynced_through: Option<PersistId>,
    /// The term in which, as leader, the clocks last caught up with the stamps of the log's
    /// unapplied entries. A new leader's log may end with commands of earlier leaders that it
    /// has not applied yet, stamped by faster clocks; its own stamps must exceed theirs
    /// (TESTING.md row 18: hybrid clocks causal along the log).
    clocks_caught_up_in_term: Option<Term>,
    /// Test-only bug switches.
    #[cfg(feature = "bug-switches")]
    bug_switches: ReplicaBugSwitches,
}

impl Replica {
    /// Opens the replica stored in `directory` on `disk`, recovering what was durable.
    pub fn open(
        disk: Arc<dyn Disk>,
        directory: &Path,
        config: ReplicaConfig,
    ) -> Result<Replica, ReplicaError> {
        let (storage, recovered) =
            ReplicaStorage::open(disk.clone(), directory, config.wal.clone())?;
        Replica::start(disk, directory, config, storage, recovered)
    }

    /// [`Replica::open`] with deliberately broken storage behaviours on from the start, the
    /// log's recovery included (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn open_with_storage_bug_switches(
        disk: Arc<dyn Disk>,
        directory: &Path,
        config: ReplicaConfig,
        switches: dschat_storage::wal::WalBugSwitches,
    ) -> Result<Replica, ReplicaError> {
        let (storage, recovered) = ReplicaStorage::open_with_bug_switches(
            disk.clone(),
            directory,
            config.wal.clone(),
            switches,
        )?;
        Replica::start(disk, directory, config, storage, recovered)
    }

    /// Builds the replica from its recovered storage.
    fn start(
        disk: Arc<dyn Disk>,
        directory: &Path,
        config: ReplicaConfig,
        mut storage: ReplicaStorage,
        recovered: crate::storage::Recovered,
    ) -> Result<Replica, ReplicaError> {
        let mut restored = recovered.raft;
        let chat = match &restored.snapshot {
            Some(snapshot) => {
                ChatState::restore(&snapshot.data).map_err(|error| ReplicaError::Undecodable {
                    what: "snapshot".into(),
                    detail: error.to_string(),
                })?
            }
            None => ChatState::new(),
        };
        if recovered.fresh {
            if let Some(voters) = &config.initial_voters {
                restored = RestoredState::bootstrap(voters.iter().copied());
                storage.write(&PersistRequest {
                    id: PersistId(0),
                    hard_state: None,
                    truncate_from: None,
                    entries: restored.entries.clone(),
                })?;
            }
        }
        let raft = raft::Node::new(config.node, config.raft, restored)?;
        let mut clocks = Clocks::open(disk, directory, config.node.0)?;
        clocks.observe(chat.last_time(), chat.last_event_id());
        Ok(Replica {
            id: config.node,
            raft,
            chat: Arc::new(RwLock::new(chat)),
            storage,
            clocks,
            pending_writes: BTreeMap::new(),
            pending_reads: HashMap::new(),
            next_read_id: 1,
            digest_every_entries: 0,
            clocks_caught_up_in_term: None,
            deferred_sync: false,
            unsynced_through: None,
            #[cfg(feature = "bug-switches")]
            bug_switches: ReplicaBugSwitches::default(),
        })
    }

    /// Advances time by one tick (timers: elections, heartbeats, check-quorum).
    pub fn tick(&mut self) -> Result<Effects, ReplicaError> {
        let outputs = self.raft.tick();
        self.carry_out(outputs)
    }

    /// Handles a message from another server.
    pub fn receive(&mut self, envelope: raft::Envelope) -> Result<Effects, ReplicaError> {
        let outputs = self.raft.step(envelope);
        self.carry_out(outputs)
    }

    /// Starts an election now (operators, tests).
    pub fn campaign(&mut self) -> Result<Effects, ReplicaError> {
        let outputs = self.raft.campaign();
        self.carry_out(outputs)
    }

    /// Takes a client request at physical time `now_unix_ms` (which stamps writes).
    pub fn submit(
        &mut self,
        request_id: RequestId,
        request: Request,
        now_unix_ms: u64,
    ) -> Result<Effects, ReplicaError> {
        match request {
            Request::Write { session, command } => {
                self.submit_writes(vec![(request_id, session, command)], now_unix_ms)
            }
            Request::Read => self.submit_read(request_id),
        }
    }

    /// Takes several writes at once: one log append and one round of replication for all of
    /// them (how a busy host batches the requests that arrived while it worked).
    pub fn submit_writes(
        &mut self,
        writes: Vec<(RequestId, Option<ClientSession>, Command)>,
        now_unix_ms: u64,
    ) -> Result<Effects, ReplicaError> {
        let status = self.raft.status();
        if status.role != RoleKind::Leader {
            return Ok(self.refuse_all(writes.iter().map(|w| w.0), status.leader));
        }
        {
            let chat = self.chat.read();
            self.clocks.observe(chat.last_time(), chat.last_event_id());
        }
        if self.clocks_caught_up_in_term != Some(status.term) {
            self.observe_unapplied_stamps()?;
            self.clocks_caught_up_in_term = Some(status.term);
        }
        let mut request_ids = Vec::with_capacity(writes.len());
        let mut commands = Vec::with_capacity(writes.len());
        #[cfg(feature = "bug-switches")]
        let mut early_post_ids = Vec::new();
        for (request_id, session, command) in writes {
            #[cfg(feature = "bug-switches")]
            let session = session.filter(|_| !self.bug_switches.forget_client_sessions);
            let (time, proposed_id) = self.clocks.stamp(now_unix_ms)?;
            #[cfg(feature = "bug-switches")]
            early_post_ids.push(
                (self.bug_switches.acknowledge_before_commit
                    && matches!(command, Command::Post { .. }))
                .then_some(proposed_id),
            );
            let envelope = Envelope {
                session,
                time,
                proposed_id,
                command,
            };
            commands.push(raft::Command {
                session: session.map(|s| (s.client, s.sequence)),
                data: envelope.encode(),
            });
            request_ids.push(request_id);
        }
        match self.raft.propose_batch(commands) {
            Ok(batch) => {
                for (offset, request_id) in request_ids.into_iter().enumerate() {
                    let index = LogIndex(batch.first_index.0 + offset as u64);
                    self.pending_writes.insert(index, (batch.term, request_id));
                }
                #[allow(unused_mut)]
                let mut effects = self.carry_out(batch.outputs)?;
                #[cfg(feature = "bug-switches")]
                self.answer_posts_before_commit(batch.first_index, &early_post_ids, &mut effects);
                Ok(effects)
            }
            Err(raft::Error::NotLeader { leader_hint }) => {
                Ok(self.refuse_all(request_ids.into_iter(), leader_hint))
            }
            Err(error) => {
                let mut effects = Effects::default();
                for request_id in request_ids {
                    effects
                        .completions
                        .push((request_id, Outcome::Busy(error.to_string())));
                }
                Ok(effects)
            }
        }
    }

    /// Makes the clocks run past the stamps of the log's entries that are not applied yet
    /// (the applied ones are covered by the chat state's `last_time`). Called once per term
    /// by a leader before it stamps: after that, it appends only entries it stamped itself.
    fn observe_unapplied_stamps(&mut self) -> Result<(), ReplicaError> {
        let applied = self.chat.read().applied_index();
        let log = self.raft.log();
        for entry in log.range(LogIndex(applied.0 + 1), log.last_index()) {
            if let Payload::Command(command) = &entry.payload {
                let envelope =
                    Envelope::decode(&command.data).map_err(|error| ReplicaError::Undecodable {
                        what: format!("command at entry {}", entry.index),
                        detail: error.to_string(),
                    })?;
                self.clocks.observe(envelope.time, envelope.proposed_id);
            }
        }
        Ok(())
    }

    /// The `acknowledge_before_commit` bug: answers the posts just proposed (from
    /// `first_index` on; `post_ids` holds each write's proposed id if it is a post) as if
    /// they were applied.
    #[cfg(feature = "bug-switches")]
    fn answer_posts_before_commit(
        &mut self,
        first_index: LogIndex,
        post_ids: &[Option<dschat_core::ids::MessageId>],
        effects: &mut Effects,
    ) {
        for (offset, post_id) in post_ids.iter().enumerate() {
            let index = LogIndex(first_index.0 + offset as u64);
            let Some(post_id) = post_id else {
                continue;
            };
            if let Some((_, request_id)) = self.pending_writes.remove(&index) {
                let reply = Ok(Response::Event(*post_id));
                effects
                    .completions
                    .push((request_id, Outcome::Applied { index, reply }));
            }
        }
    }

    fn submit_read(&mut self, request_id: RequestId) -> Result<Effects, ReplicaError> {
        let read_id = ReadId(self.next_read_id);
        self.next_read_id += 1;
        match self.raft.read(read_id) {
            Ok(outputs) => {
                self.pending_reads.insert(read_id, request_id);
                self.carry_out(outputs)
            }
            Err(raft::Error::NotLeader { leader_hint }) => {
                Ok(self.refuse_all(std::iter::once(request_id), leader_hint))
            }
            Err(error) => Ok(Effects {
                completions: vec![(request_id, Outcome::Busy(error.to_string()))],
                ..Effects::default()
            }),
        }
    }

    fn refuse_all(
        &self,
        request_ids: impl Iterator<Item = RequestId>,
        leader_hint: Option<NodeId>,
    ) -> Effects {
        Effects {
            completions: request_ids
                .map(|request_id| (request_id, Outcome::NotLeader { leader_hint }))
                .collect(),
            ..Effects::default()
        }
    }

    /// Carries out the Raft core's outputs in order, including those they cause in turn.
    fn carry_out(&mut self, outputs: Vec<Output>) -> Result<Effects, ReplicaError> {
        let mut effects = Effects::default();
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Send(envelope) => effects.messages.push(envelope),
                Output::Persist(write) if self.deferred_sync => {
                    self.storage.write_unsynced(&write)?;
                    self.unsynced_through = Some(write.id);
                }
                Output::Persist(write) => {
                    self.storage.write(&write)?;
                    queue.extend(self.raft.persisted(write.id));
                }
                Output::Apply(entries) => {
                    for entry in entries {
                        self.apply(entry, &mut effects)?;
                    }
                }
                Output::ReadReady { read_id, index } => {
                    if let Some(request_id) = self.pending_reads.remove(&read_id) {
                        effects
                            .completions
                            .push((request_id, Outcome::ReadReady { index }));
                    }
                }
                Output::ReadFailed {
                    read_id,
                    leader_hint,
                } => {
                    if let Some(request_id) = self.pending_reads.remove(&read_id) {
                        effects
                            .completions
                            .push((request_id, Outcome::NotLeader { leader_hint }));
                    }
                }
                Output::InstallSnapshot {
                    id,
                    snapshot,
                    keep_entries_after,
                } => {
                    // Installing syncs the log, so it makes earlier unsynced writes durable too.
                    self.install(&snapshot, keep_entries_after, &mut effects)?;
                    self.unsynced_through = self.unsynced_through.filter(|last| last.0 > id.0);
                    queue.extend(self.raft.persisted(id));
                }
                Output::SnapshotWanted { .. } => {
                    queue.extend(self.take_snapshot()?);
                }
                Output::Compacted { through } => self.storage.compact(through)?,
                Output::RoleChanged { role, term, leader } => {
                    effects.role_changes.push(RoleChange { role, term, leader })
                }
            }
        }
        Ok(effects)
    }

    /// Applies one committed entry and answers the request that proposed it, if it was ours.
    fn apply(&mut self, entry: Entry, effects: &mut Effects) -> Result<(), ReplicaError> {
        let index = entry.index;
        let mut time = None;
        let reply = match entry.payload {
            Payload::Command(command) => {
                let envelope =
                    Envelope::decode(&command.data).map_err(|error| ReplicaError::Undecodable {
                        what: format!("command at entry {index}"),
                        detail: error.to_string(),
                    })?;
                time = Some(envelope.time);
                let applied = self.chat.write().apply(index, envelope);
                effects.events.extend(applied.events);
                effects.away_changes.extend(applied.away_changes);
                Some(applied.reply)
            }
            Payload::Noop | Payload::Membership(_) | Payload::InitialConfiguration(_) => {
                self.chat.write().skip(index);
                None
            }
        };
        effects.applied.push(AppliedEntry {
            index,
            term: entry.term,
            time,
        });
        if self.digest_every_entries > 0 && index.0.is_multiple_of(self.digest_every_entries) {
            effects.digests.push((index, self.chat.read().digest()));
        }
        if let Some((term, request_id)) = self.pending_writes.remove(&index) {
            let outcome = match reply {
                Some(reply) if term == entry.term => Outcome::Applied { index, reply },
                _ => Outcome::Dropped,
            };
            effects.completions.push((request_id, outcome));
        }
        Ok(())
    }

    fn install(
        &mut self,
        snapshot: &raft::Snapshot,
        keep_entries_after: bool,
        effects: &mut Effects,
    ) -> Result<(), ReplicaError> {
        *self.chat.write() =
            ChatState::restore(&snapshot.data).map_err(|error| ReplicaError::Undecodable {
                what: "snapshot from the leader".into(),
                detail: error.to_string(),
            })?;
        #[cfg(feature = "bug-switches")]
        self.apply_chat_bug_switches();
        self.storage
            .install_snapshot(snapshot, keep_entries_after)?;
        let through = snapshot.metadata.last_included_index;
        let covered: Vec<LogIndex> = self
            .pending_writes
            .range(..=through)
            .map(|(i, _)| *i)
            .collect();
        for index in covered {
            if let Some((_, request_id)) = self.pending_writes.remove(&index) {
                effects.completions.push((request_id, Outcome::Indefinite));
            }
        }
        effects.state_replaced = true;
        Ok(())
    }

    /// Snapshots the chat state at its applied index, stores it, and lets Raft compact.
    fn take_snapshot(&mut self) -> Result<Vec<Output>, ReplicaError> {
        let index = self.chat.read().applied_index();
        if index <= self.raft.status().snapshot_index {
            return Ok(Vec::new());
        }
        let outputs = self
            .raft
            .snapshot_taken(index, self.chat.read().snapshot())?;
        let snapshot = self
            .raft
            .snapshot()
            .expect("the node holds the snapshot it was just given");
        self.storage.save_snapshot(snapshot)?;
        Ok(outputs)
    }

    /// A timestamp and a fresh message id for something that is not logged (an ephemeral
    /// message), from the same clocks that stamp writes, so ids never collide with them.
    pub fn stamp_unlogged(
        &mut self,
        now_unix_ms: u64,
    ) -> Result<
        (
            dschat_core::clock::hybrid::HybridTimestamp,
            dschat_core::ids::MessageId,
        ),
        ReplicaError,
    > {
        {
            let chat = self.chat.read();
            self.clocks.observe(chat.last_time(), chat.last_event_id());
        }
        Ok(self.clocks.stamp(now_unix_ms)?)
    }

    /// Adds `node` as a learner (leader only).
    pub fn add_learner(
        &mut self,
        node: NodeId,
    ) -> Result<Result<Effects, raft::Error>, ReplicaError> {
        match self.raft.add_learner(node) {
            Ok(proposed) => self.carry_out(proposed.outputs).map(Ok),
            Err(error) => Ok(Err(error)),
        }
    }

    /// Makes learner `node` a voter (leader only, once it has caught up).
    pub fn promote_learner(
        &mut self,
        node: NodeId,
    ) -> Result<Result<Effects, raft::Error>, ReplicaError> {
        match self.raft.promote_learner(node) {
            Ok(proposed) => self.carry_out(proposed.outputs).map(Ok),
            Err(error) => Ok(Err(error)),
        }
    }

    /// Removes `node` from the cluster (leader only).
    pub fn remove_node(
        &mut self,
        node: NodeId,
    ) -> Result<Result<Effects, raft::Error>, ReplicaError> {
        match self.raft.remove_node(node) {
            Ok(proposed) => self.carry_out(proposed.outputs).map(Ok),
            Err(error) => Ok(Err(error)),
        }
    }

    /// Hands leadership to `target` (leader only).
    pub fn transfer_leadership(
        &mut self,
        target: NodeId,
    ) -> Result<Result<Effects, raft::Error>, ReplicaError> {
        match self.raft.transfer_leadership(target) {
            Ok(outputs) => self.carry_out(outputs).map(Ok),
            Err(error) => Ok(Err(error)),
        }
    }

    /// Deferred sync (off by default): from now on a write Raft asks for is handed to the disk
    /// at once, but reported durable to Raft only when the host calls [`Replica::sync`], so a
    /// host can model (the simulator) or overlap (a group-committing runtime) the fsync's
    /// latency. Raft withholds every message that depends on the write until then; a crash
    /// before the sync may lose any part of it. With it off, each write is synced before the
    /// call that caused it returns.
    pub fn set_deferred_sync(&mut self, deferred: bool) {
        self.deferred_sync = deferred;
    }

    /// Whether writes handed to the disk await a [`Replica::sync`] (deferred sync only).
    pub fn sync_pending(&self) -> bool {
        self.unsynced_through.is_some()
    }

    /// Makes every write handed to the disk so far durable (one fsync), tells Raft, and carries
    /// out what that releases (withheld votes and log responses, commits, applies).
    pub fn sync(&mut self) -> Result<Effects, ReplicaError> {
        let Some(through) = self.unsynced_through.take() else {
            return Ok(Effects::default());
        };
        self.storage.sync()?;
        let outputs = self.raft.persisted(through);
        self.carry_out(outputs)
    }

    /// Asks for a state digest in [`Effects::digests`] whenever the applied index is a
    /// multiple of `entries` (0: never). Digests are costly; observers sample.
    pub fn set_digest_interval(&mut self, entries: u64) {
        self.digest_every_entries = entries;
    }

    /// This server's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The chat state as applied here (for reads: linearizable after [`Outcome::ReadReady`],
    /// otherwise this replica's possibly stale view, which is what feeds serve).
    pub fn chat(&self) -> RwLockReadGuard<'_, ChatState> {
        self.chat.read()
    }

    /// The chat state's shared handle, for readers on other threads (front ends, the search
    /// indexer). Only this replica writes through it.
    pub fn shared_chat(&self) -> Arc<RwLock<ChatState>> {
        self.chat.clone()
    }

    /// The Raft node's summary.
    pub fn status(&self) -> Status {
        self.raft.status()
    }

    /// The Raft node itself, for observers (invariant checks, dashboards).
    pub fn raft(&self) -> &raft::Node {
        &self.raft
    }

    /// How many writes await commitment here.
    pub fn pending_write_count(&self) -> usize {
        self.pending_writes.len()
    }

    /// The storage's log bounds (first and last index held).
    pub fn log_bounds(&self) -> (LogIndex, LogIndex) {
        self.storage.log_bounds()
    }

    /// Turns on deliberately broken behaviours of the replica itself (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_bug_switches(&mut self, switches: ReplicaBugSwitches) {
        self.bug_switches = switches;
        self.clocks.set_follow_physical_time_backwards(
            switches.hybrid_clock_follows_physical_time_backwards,
        );
        self.apply_chat_bug_switches();
    }

    /// Hands the chat state its switches (again after a restore, which starts without them).
    #[cfg(feature = "bug-switches")]
    fn apply_chat_bug_switches(&mut self) {
        self.chat
            .write()
            .set_bug_switches(dschat_core::chat::ChatBugSwitches {
                feed_resume_skips_first_event: self.bug_switches.feed_resume_skips_first_event,
            });
    }

    /// Turns on deliberately broken storage behaviours (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_storage_bug_switches(&mut self, switches: dschat_storage::wal::WalBugSwitches) {
        self.storage.set_bug_switches(switches);
    }

    /// Turns on deliberately broken snapshot-file behaviours (tests only).
    #[cfg(feature = "bug-switches")]
    pub fn set_snapshot_bug_switches(
        &mut self,
        switches: dschat_storage::snapshot_file::SnapshotFileBugSwitches,
    ) {
        self.storage.set_snapshot_bug_switches(switches);
    }
}
