//! An in-memory cluster of Raft nodes for tests: a network that can lose, duplicate, reorder,
//! delay and partition messages; disks that lose unsynced writes on a crash; a toy state
//! machine; and checkers of Raft's safety properties run after every step.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use dschat_core::ids::{ClientId, LogIndex, NodeId, SequenceNumber, Term};
use dschat_core::raft::{
    Command, Config, Entry, Envelope, HardState, Node, Output, Payload, PersistId, PersistRequest,
    ReadId, RestoredState, RoleKind, Snapshot,
};

/// A write a node asked for that its disk has not completed.
#[derive(Clone, Debug)]
pub enum Write {
    Persist(PersistRequest),
    Install {
        id: PersistId,
        snapshot: Snapshot,
        keep_entries_after: bool,
    },
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub initial: Vec<NodeId>,
}

/// The toy state machine: the list of applied commands, deduplicated by client session.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StateMachine {
    pub applied_index: u64,
    pub commands: Vec<String>,
    pub sessions: BTreeMap<u64, u64>,
}

pub struct SimNode {
    pub node: Option<Node>,
    pub disk: Disk,
    pub unsynced: VecDeque<Write>,
    pub manual_sync: bool,
    pub state: StateMachine,
    pub restarts: u64,
    pub last_role: Option<(RoleKind, Term)>,
}

/// Checks of Raft's safety properties over the whole history.
#[derive(Default)]
pub struct Checker {
    pub leaders: BTreeMap<Term, NodeId>,
    pub committed: BTreeMap<LogIndex, (Term, Payload)>,
    pub leader_last: BTreeMap<(NodeId, Term), (LogIndex, Term)>,
    pub reads: BTreeMap<(NodeId, u64), u64>,
    pub violations: Vec<String>,
}

pub struct Cluster {
    pub config: Config,
    pub nodes: BTreeMap<NodeId, SimNode>,
    pub network: VecDeque<Envelope>,
    pub held: Vec<Envelope>,
    pub blocked: BTreeSet<(NodeId, NodeId)>,
    pub checker: Checker,
    pub events: Vec<String>,
    pub auto_snapshot: bool,
    pub max_log_matching_entries: usize,
}

pub fn name(id: NodeId) -> String {
    format!("n{}", id.0)
}

impl Cluster {
    pub fn new(size: u64, config: Config) -> Cluster {
        let voters: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let mut cluster = Cluster {
            config,
            nodes: BTreeMap::new(),
            network: VecDeque::new(),
            held: Vec::new(),
            blocked: BTreeSet::new(),
            checker: Checker::default(),
            events: Vec::new(),
            auto_snapshot: false,
            max_log_matching_entries: usize::MAX,
        };
        for &id in &voters {
            cluster.add_sim_node(id, voters.clone());
        }
        cluster
    }

    /// Create a node that starts with `initial` voters (empty: it joins an existing cluster).
    pub fn add_sim_node(&mut self, id: NodeId, initial: Vec<NodeId>) {
        let entries = if initial.is_empty() {
            Vec::new()
        } else {
            RestoredState::bootstrap(initial.clone()).entries
        };
        let disk = Disk {
            initial,
            entries,
            ..Disk::default()
        };
        let sim = SimNode {
            node: None,
            disk,
            unsynced: VecDeque::new(),
            manual_sync: false,
            state: StateMachine::default(),
            restarts: 0,
            last_role: None,
        };
        self.nodes.insert(id, sim);
        self.start(id);
    }

    fn node_config(&self, id: NodeId, restarts: u64) -> Config {
        let mut config = self.config.clone();
        config.seed = self
            .config
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(id.0 * 1000 + restarts);
        config
    }

    /// (Re)start a node from its disk; the state machine restarts from the snapshot.
    pub fn start(&mut self, id: NodeId) {
        let sim = self.nodes.get(&id).expect("known node");
        let config = self.node_config(id, sim.restarts);
        let disk = sim.disk.clone();
        let state = match &disk.snapshot {
            Some(snapshot) => serde_json::from_slice(&snapshot.data).expect("snapshot is ours"),
            None => StateMachine::default(),
        };
        let restored = RestoredState {
            hard_state: disk.hard_state,
            applied_index: LogIndex(state.applied_index),
            snapshot: disk.snapshot.clone(),
            entries: disk.entries.clone(),
        };
        let node = Node::new(id, config, restored).expect("valid config");
        let sim = self.nodes.get_mut(&id).expect("known node");
        sim.state = state;
        sim.node = Some(node);
        sim.last_role = None;
    }

    pub fn crash(&mut self, id: NodeId) {
        if let Some(sim) = self.nodes.get_mut(&id) {
            sim.node = None;
            sim.unsynced.clear();
            sim.restarts += 1;
        }
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|s| s.node.is_some())
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id).and_then(|s| s.node.as_ref())
    }

    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(&id).and_then(|s| s.node.as_mut())
    }

    pub fn up_ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, s)| s.node.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.up_ids()
            .into_iter()
            .filter(|&id| {
                self.node(id)
                    .is_some_and(|n| n.status().role == RoleKind::Leader)
            })
            .collect()
    }

    /// The leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leaders()
            .into_iter()
            .max_by_key(|&id| self.node(id).map(|n| n.status().term))
    }

    // ---- driving ----

    pub fn tick(&mut self, id: NodeId) {
        if let Some(node) = self.node_mut(id) {
            let outputs = node.tick();
            self.handle(id, outputs);
        }
    }

    pub fn campaign(&mut self, id: NodeId) {
        if let Some(node) = self.node_mut(id) {
            let outputs = node.campaign();
            self.handle(id, outputs);
        }
    }

    pub fn deliver(&mut self, envelope: Envelope) -> bool {
        if self.blocked.contains(&(envelope.from, envelope.to)) || !self.is_up(envelope.to) {
            return false;
        }
        let to = envelope.to;
        let outputs = self.node_mut(to).expect("up").step(envelope);
        self.handle(to, outputs);
        true
    }

    /// Deliver the queued messages matching `filter`, each once, in queue order.
    pub fn deliver_matching(
        &mut self,
        filter: impl Fn(&Envelope) -> bool,
    ) -> Vec<(Envelope, bool)> {
        let (chosen, rest): (Vec<_>, Vec<_>) = self.network.drain(..).partition(|e| filter(e));
        self.network = rest.into();
        chosen
            .into_iter()
            .map(|e| (e.clone(), self.deliver(e)))
            .collect()
    }

    /// Deliver until no message is in flight (bounded). Returns rounds taken.
    pub fn stabilize(&mut self) -> usize {
        for round in 0..10_000 {
            self.sync_auto();
            if self.network.is_empty() {
                return round;
            }
            self.deliver_matching(|_| true);
        }
        panic!("cluster did not stabilize");
    }

    pub fn propose(
        &mut self,
        id: NodeId,
        text: &str,
        session: Option<(u64, u64)>,
    ) -> Result<(LogIndex, Term), String> {
        let command = Command {
            session: session.map(|(c, s)| (ClientId(c), SequenceNumber(s))),
            data: text.as_bytes().to_vec(),
        };
        let node = self.node_mut(id).ok_or("node is down")?;
        let proposed = node.propose(command).map_err(|e| e.to_string())?;
        self.handle(id, proposed.outputs);
        Ok((proposed.index, proposed.term))
    }

    pub fn read(&mut self, id: NodeId, read_id: u64) -> Result<(), String> {
        let required = self
            .nodes
            .values()
            .map(|s| s.state.applied_index)
            .max()
            .unwrap_or(0);
        let node = self.node_mut(id).ok_or("node is down")?;
        let outputs = node.read(ReadId(read_id)).map_err(|e| e.to_string())?;
        self.checker.reads.insert((id, read_id), required);
        self.handle(id, outputs);
        Ok(())
    }

    /// Take a snapshot of `id`'s state machine and hand it to the node.
    pub fn snapshot(&mut self, id: NodeId) -> Result<LogIndex, String> {
        let sim = self.nodes.get_mut(&id).ok_or("unknown node")?;
        let node = sim.node.as_mut().ok_or("node is down")?;
        let index = LogIndex(sim.state.applied_index);
        let data = serde_json::to_vec(&sim.state).expect("serialisable");
        let term = node.log().term_at(index).ok_or("nothing new to snapshot")?;
        let outputs = node
            .snapshot_taken(index, data.clone())
            .map_err(|e| e.to_string())?;
        let snapshot = node.snapshot().cloned().expect("just taken");
        let _ = term;
        sim.disk.snapshot = Some(snapshot);
        self.handle(id, outputs);
        Ok(index)
    }

    /// Complete every unsynced write of `id`.
    pub fn sync(&mut self, id: NodeId) {
        let Some(sim) = self.nodes.get_mut(&id) else {
            return;
        };
        if sim.node.is_none() || sim.unsynced.is_empty() {
            return;
        }
        let mut last = PersistId(0);
        while let Some(write) = sim.unsynced.pop_front() {
            last = apply_write(&mut sim.disk, write);
        }
        let outputs = sim.node.as_mut().expect("up").persisted(last);
        self.handle(id, outputs);
    }

    fn sync_auto(&mut self) {
        let ids: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, s)| !s.manual_sync)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.sync(id);
        }
    }

    /// Handle a node's outputs (and, for auto-synced disks, the outputs that causes).
    pub fn handle(&mut self, id: NodeId, outputs: Vec<Output>) {
        let mut needs_sync = false;
        for output in outputs {
            match output {
                Output::Send(envelope) => self.network.push_back(envelope),
                Output::Persist(request) => {
                    self.nodes
                        .get_mut(&id)
                        .expect("known")
                        .unsynced
                        .push_back(Write::Persist(request));
                    needs_sync = true;
                }
                Output::InstallSnapshot {
                    id: write_id,
                    snapshot,
                    keep_entries_after,
                } => {
                    let sim = self.nodes.get_mut(&id).expect("known");
                    sim.state = serde_json::from_slice(&snapshot.data).expect("snapshot is ours");
                    self.events.push(format!(
                        "{} installs snapshot at {}",
                        name(id),
                        snapshot.metadata.last_included_index
                    ));
                    sim.unsynced.push_back(Write::Install {
                        id: write_id,
                        snapshot,
                        keep_entries_after,
                    });
                    needs_sync = true;
                }
                Output::Apply(entries) => self.apply(id, entries),
                Output::ReadReady { read_id, index } => self.read_ready(id, read_id, index),
                Output::ReadFailed {
                    read_id,
                    leader_hint,
                } => {
                    self.events.push(format!(
                        "{} read {} failed (leader hint {:?})",
                        name(id),
                        read_id.0,
                        leader_hint.map(name)
                    ));
                }
                Output::SnapshotWanted { .. } => {
                    if self.auto_snapshot {
                        let _ = self.snapshot(id);
                    }
                }
                Output::Compacted { through } => {
                    let sim = self.nodes.get_mut(&id).expect("known");
                    sim.disk.entries.retain(|e| e.index > through);
                }
                Output::RoleChanged { role, term, .. } => self.role_changed(id, role, term),
            }
        }
        let manual = self.nodes.get(&id).is_none_or(|s| s.manual_sync);
        if needs_sync && !manual {
            self.sync(id);
        }
        self.check();
    }

    fn role_changed(&mut self, id: NodeId, role: RoleKind, term: Term) {
        let sim = self.nodes.get_mut(&id).expect("known");
        if sim.last_role != Some((role, term)) {
            sim.last_role = Some((role, term));
            let role = format!("{role:?}").to_lowercase();
            self.events
                .push(format!("{} is {} in term {}", name(id), role, term));
        }
    }

    fn apply(&mut self, id: NodeId, entries: Vec<Entry>) {
        for entry in entries {
            match self.checker.committed.get(&entry.index) {
                Some((term, payload)) if *term != entry.term || *payload != entry.payload => {
                    let violation =
                        format!(
                        "state machine safety: {} applied {}@{} but {}@{} was applied elsewhere",
                        name(id), entry.index, entry.term, entry.index, term
                    );
                    self.violation(violation);
                }
                Some(_) => {}
                None => {
                    self.checker
                        .committed
                        .insert(entry.index, (entry.term, entry.payload.clone()));
                }
            }
            let sim = self.nodes.get_mut(&id).expect("known");
            let state = &mut sim.state;
            if entry.index.0 != state.applied_index + 1 {
                let violation = format!(
                    "{} applied {} after {}",
                    name(id),
                    entry.index,
                    state.applied_index
                );
                self.violation(violation);
                continue;
            }
            state.applied_index = entry.index.0;
            if let Payload::Command(command) = &entry.payload {
                let text = String::from_utf8_lossy(&command.data).to_string();
                match command.session {
                    Some((client, sequence))
                        if state
                            .sessions
                            .get(&client.0)
                            .is_some_and(|&s| s >= sequence.0) => {}
                    Some((client, sequence)) => {
                        state.sessions.insert(client.0, sequence.0);
                        state.commands.push(text);
                    }
                    None => state.commands.push(text),
                }
            }
        }
    }

    fn read_ready(&mut self, id: NodeId, read_id: ReadId, index: LogIndex) {
        let applied = self.nodes[&id].state.applied_index;
        self.events.push(format!(
            "{} read {} ready at index {} (applied {})",
            name(id),
            read_id.0,
            index,
            applied
        ));
        let required = self.checker.reads.remove(&(id, read_id.0)).unwrap_or(0);
        if index.0 < required || applied < required {
            self.violation(format!(
                "stale read: {} read {} at index {} but {} was already applied",
                name(id),
                read_id.0,
                index,
                required
            ));
        }
    }

    pub fn violation(&mut self, what: String) {
        self.events.push(format!("VIOLATION: {what}"));
        self.checker.violations.push(what);
    }

    /// Run every check; called after every step.
    pub fn check(&mut self) {
        let mut found = Vec::new();
        for id in self.up_ids() {
            let node = self.node(id).expect("up");
            if let Err(broken) = node.check_invariants() {
                found.push(format!("{} invariant: {broken}", name(id)));
            }
            let status = node.status();
            if status.role == RoleKind::Leader {
                found.extend(self.check_leader(id));
            }
        }
        found.extend(self.check_log_matching());
        found.extend(self.check_disks());
        for violation in found {
            if !self.checker.violations.contains(&violation) {
                self.violation(violation);
            }
        }
    }

    fn check_leader(&mut self, id: NodeId) -> Vec<String> {
        let mut found = Vec::new();
        let node = self.nodes[&id].node.as_ref().expect("up");
        let status = node.status();
        let term = status.term;
        match self.checker.leaders.get(&term) {
            Some(&other) if other != id => found.push(format!(
                "election safety: {} and {} both lead term {}",
                name(other),
                name(id),
                term
            )),
            Some(_) => {}
            None => {
                self.checker.leaders.insert(term, id);
                // Leader completeness: every committed entry is in the new leader's log.
                for (index, (committed_term, _)) in &self.checker.committed {
                    if *index <= node.log().snapshot_index() {
                        continue;
                    }
                    if node.log().term_at(*index) != Some(*committed_term) {
                        found.push(format!(
                            "leader completeness: {} leads term {} without committed {}@{}",
                            name(id),
                            term,
                            index,
                            committed_term
                        ));
                        break;
                    }
                }
            }
        }
        let last = (node.log().last_index(), node.log().last_term());
        if let Some(&(previous_last, previous_term)) = self.checker.leader_last.get(&(id, term)) {
            let still_there = previous_last <= node.log().snapshot_index()
                || node.log().term_at(previous_last) == Some(previous_term);
            if last.0 < previous_last || !still_there {
                found.push(format!(
                    "leader append-only: {} lost entry {} in term {}",
                    name(id),
                    previous_last,
                    term
                ));
            }
        }
        self.checker.leader_last.insert((id, term), last);
        found
    }

    /// What each disk holds must be restorable: entries contiguous, right after the snapshot.
    fn check_disks(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (&id, sim) in &self.nodes {
            let after = sim
                .disk
                .snapshot
                .as_ref()
                .map_or(LogIndex(0), |s| s.metadata.last_included_index);
            let mut expected = after.next();
            for entry in &sim.disk.entries {
                if entry.index != expected {
                    found.push(format!(
                        "{} disk: entry {} where {} was expected",
                        name(id),
                        entry.index,
                        expected
                    ));
                    break;
                }
                expected = expected.next();
            }
        }
        found
    }

    /// Log matching: where two logs hold an entry of the same index and term, they agree on
    /// every entry before it that both hold.
    fn check_log_matching(&self) -> Vec<String> {
        let ids = self.up_ids();
        let mut found = Vec::new();
        for (i, &a) in ids.iter().enumerate() {
            for &b in &ids[i + 1..] {
                let (log_a, log_b) = (self.node(a).unwrap().log(), self.node(b).unwrap().log());
                let first = log_a.first_index().max(log_b.first_index());
                let last = log_a.last_index().min(log_b.last_index());
                let mut index = last;
                let mut budget = self.max_log_matching_entries;
                // Find the highest common index with equal terms, then compare everything below.
                while index >= first && log_a.term_at(index) != log_b.term_at(index) {
                    index = index.previous();
                }
                while index >= first && index > LogIndex(0) && budget > 0 {
                    if log_a.entry(index) != log_b.entry(index) {
                        found.push(format!(
                            "log matching: {} and {} differ at {}",
                            name(a),
                            name(b),
                            index
                        ));
                        break;
                    }
                    index = index.previous();
                    budget -= 1;
                }
            }
        }
        found
    }
}

/// Make a write durable on a disk; returns its id.
pub fn apply_write(disk: &mut Disk, write: Write) -> PersistId {
    match write {
        Write::Persist(request) => {
            if let Some(hard_state) = request.hard_state {
                disk.hard_state = hard_state;
            }
            if let Some(from) = request.truncate_from {
                disk.entries.retain(|e| e.index < from);
            }
            disk.entries.extend(request.entries);
            request.id
        }
        Write::Install {
            id,
            snapshot,
            keep_entries_after,
        } => {
            let index = snapshot.metadata.last_included_index;
            if keep_entries_after {
                disk.entries.retain(|e| e.index > index);
            } else {
                disk.entries.clear();
            }
            disk.snapshot = Some(Snapshot {
                metadata: snapshot.metadata,
                data: Arc::clone(&snapshot.data),
            });
            id
        }
    }
}
