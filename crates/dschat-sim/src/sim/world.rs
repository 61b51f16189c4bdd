//! The world: simulated time, the event queue, nodes, network and clients, and the loop that
//! runs them. Everything happens in one thread, one event at a time, in an order fixed by
//! (time, sequence number), so a run is a function of its [`SimConfig`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use dschat_core::chat::ClientSession;
use dschat_core::ids::{NodeId, SequenceNumber};
use dschat_core::raft::{self, RoleKind};
use dschat_replica::{Effects, Outcome, ReplicaError, Request, RequestId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::config::{Micros, SimConfig, MILLISECOND};
use super::invariants::Invariants;
use super::network::{Fate, Network};
use super::node::{Down, SimNode};
use super::recorder::Recorder;
use super::workload::{self, Client, Completion, OpKind, Setup};
use crate::history::EventKind;

/// How long a client waits for one attempt before trying another node.
pub const ATTEMPT_TIMEOUT: Micros = 300 * MILLISECOND;
/// How long a client keeps retrying one operation before recording it as indefinite.
pub const OPERATION_DEADLINE: Micros = 2_000 * MILLISECOND;
/// A client's pause between operations: uniform in `0..THINK_TIME`.
pub const THINK_TIME: Micros = 100 * MILLISECOND;
/// Bound on scheduled events: a run that exceeds it (a message storm) stops with a violation
/// instead of exhausting memory.
pub const MAX_PENDING_EVENTS: usize = 1_000_000;
/// Bound on the bytes of log entries in flight between nodes, for the same reason.
pub const MAX_ENTRY_BYTES_IN_FLIGHT: usize = 512 * 1024 * 1024;
/// How long an fsync takes: uniform in this range (a fast SSD's flush)...
pub const FSYNC_LATENCY: std::ops::Range<Micros> = 100..2 * MILLISECOND;
/// ...except that this fraction of syncs is slow (a busy disk, a journal commit)...
pub const SLOW_FSYNC_PROBABILITY: f64 = 0.02;
/// ...taking this long.
pub const SLOW_FSYNC_LATENCY: std::ops::Range<Micros> = 5 * MILLISECOND..40 * MILLISECOND;
/// How often the replicas report a state digest (entries).
pub const DIGEST_EVERY_ENTRIES: u64 = 256;

/// Something that happens at a simulated time.
#[derive(Debug)]
pub enum Event {
    /// A node's timer fires.
    Tick { node: usize, incarnation: u64 },
    /// A message arrives at its receiver.
    Deliver {
        envelope: raft::Envelope,
        record: Option<usize>,
    },
    /// A client's request arrives at a node.
    Request {
        node: usize,
        client: usize,
        attempt: u64,
    },
    /// A node's answer arrives at a client.
    Response {
        client: usize,
        attempt: u64,
        reply: Reply,
    },
    /// A client's attempt has waited long enough.
    AttemptTimeout { client: usize, attempt: u64 },
    /// A client sends its current attempt again (after a busy answer).
    Resend { client: usize, attempt: u64 },
    /// A client starts its next operation.
    ClientWake { client: usize },
    /// A node's fsync completes: what it had written so far is durable.
    SyncDone { node: usize, incarnation: u64 },
    /// The nemesis acts (see `nemesis.rs`).
    Nemesis(super::nemesis::Action),
}

/// What a node answers a client.
#[derive(Debug)]
pub enum Reply {
    /// The replica's outcome for a write, or a refusal of a read.
    Outcome(Outcome),
    /// A read's result.
    Data(Value),
}

/// The whole simulated system.
pub struct World {
    /// The run's configuration.
    pub config: SimConfig,
    /// Simulated time now.
    pub now: Micros,
    queue: BinaryHeap<Reverse<(Micros, u64, usize)>>,
    /// Event payloads by slot (the heap orders small keys; payloads stay put).
    slots: Vec<Option<Event>>,
    free_slots: Vec<usize>,
    next_sequence: u64,
    /// The seeded source of every random choice.
    pub rng: ChaCha8Rng,
    /// The servers.
    pub nodes: Vec<SimNode>,
    /// The network between them.
    pub network: Network,
    /// The clients.
    pub clients: Vec<Client>,
    /// Accounts and rooms made before the clients start.
    pub setup: Setup,
    /// Whether clients start new operations.
    pub clients_running: bool,
    next_request_id: u64,
    next_attempt: u64,
    next_register_value: i64,
    /// The history, trace and counters.
    pub recorder: Recorder,
    /// The per-step safety checks.
    pub invariants: Invariants,
    /// The fault injector's state.
    pub nemesis: super::nemesis::Nemesis,
    /// The targeted schedules' state.
    pub targeted: super::targeted::Targeted,
    /// The disruptive-node schedule's state and verdicts.
    pub disruption: super::disruption::Disruption,
    /// Events handled.
    pub steps: u64,
    /// Bytes of log entries and snapshot chunks in messages not yet delivered.
    bytes_in_flight: usize,
    /// Outcomes of requests made by the setup, not by a client.
    pub setup_outcomes: std::collections::HashMap<RequestId, Outcome>,
}

impl World {
    /// A world for `config` with its nodes started and ticking.
    pub fn new(config: SimConfig) -> Result<World, ReplicaError> {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let nodes = (1..=config.nodes as u64).map(SimNode::new).collect();
        let recorder = Recorder::new(config.nodes, config.record_messages);
        let mut world = World {
            now: 0,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            next_sequence: 0,
            rng,
            nodes,
            network: Network::new(),
            clients: Vec::new(),
            setup: Setup::default(),
            clients_running: false,
            next_request_id: 1,
            next_attempt: 0,
            next_register_value: 0,
            recorder,
            invariants: Invariants::default(),
            nemesis: super::nemesis::Nemesis::default(),
            targeted: super::targeted::Targeted::default(),
            disruption: super::disruption::Disruption::default(),
            steps: 0,
            setup_outcomes: std::collections::HashMap::new(),
            bytes_in_flight: 0,
            config,
        };
        for node in 0..world.nodes.len() {
            world.start_node(node)?;
        }
        Ok(world)
    }

    /// The ids of every voter.
    pub fn voters(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|node| NodeId(node.id)).collect()
    }

    /// Schedules `event` at `at`.
    pub fn schedule(&mut self, at: Micros, event: Event) {
        if self.queue.len() >= MAX_PENDING_EVENTS {
            if !self.invariants.failed() {
                let text = format!(
                    "resource bound: more than {MAX_PENDING_EVENTS} events pending (a message storm)"
                );
                self.invariants.violations.push((self.now, text.clone()));
                self.recorder.violation(self.now, &text);
            }
            return;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        self.queue.push(Reverse((at, self.next_sequence, slot)));
        self.next_sequence += 1;
    }

    /// Handles events until `until` (or until the queue is empty or a check failed).
    pub fn run_until(&mut self, until: Micros) {
        while let Some(&Reverse((at, _, slot))) = self.queue.peek() {
            if at > until || self.invariants.failed() {
                break;
            }
            self.queue.pop();
            let event = self.slots[slot]
                .take()
                .expect("a scheduled slot holds its event");
            self.free_slots.push(slot);
            self.now = at;
            self.steps += 1;
            self.handle(event);
        }
        if !self.invariants.failed() {
            self.now = self.now.max(until);
        }
    }

    /// Runs until `condition` holds or `limit` passes; whether it held.
    pub fn run_while_not(
        &mut self,
        limit: Micros,
        mut condition: impl FnMut(&World) -> bool,
    ) -> bool {
        let step = 10 * MILLISECOND;
        while self.now < limit {
            if condition(self) {
                return true;
            }
            if self.invariants.failed() {
                return false;
            }
            let next = (self.now + step).min(limit);
            self.run_until(next);
        }
        condition(self)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick { node, incarnation } => self.on_tick(node, incarnation),
            Event::Deliver { envelope, record } => self.on_deliver(envelope, record),
            Event::Request {
                node,
                client,
                attempt,
            } => self.on_request(node, client, attempt),
            Event::Response {
                client,
                attempt,
                reply,
            } => self.on_response(client, attempt, reply),
            Event::AttemptTimeout { client, attempt } => self.on_attempt_timeout(client, attempt),
            Event::Resend { client, attempt } => {
                if self.current_attempt(client) == Some(attempt) {
                    self.send_attempt(client);
                }
            }
            Event::ClientWake { client } => self.on_client_wake(client),
            Event::SyncDone { node, incarnation } => self.on_sync_done(node, incarnation),
            Event::Nemesis(action) => self.on_nemesis(action),
        }
    }

    // ---- nodes ----

    /// Starts node `node` from its disk and schedules its first tick; a node that cannot
    /// start stays down for the rest of the run.
    pub fn start_node(&mut self, node: usize) -> Result<(), ReplicaError> {
        let seed = self
            .config
            .seed
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add((node as u64) << 32 | self.nodes[node].restarts);
        let voters = self.voters();
        let mutant = self.config.mutant;
        let batch = self.config.max_batch_entries;
        let result = self.nodes[node].start(&voters, seed, mutant, DIGEST_EVERY_ENTRIES, batch);
        match result {
            Ok(()) => {
                let incarnation = self.nodes[node].incarnation;
                let interval = self.nodes[node].clock.tick_interval();
                let first = self.now + self.rng.gen_range(0..interval);
                self.schedule(first, Event::Tick { node, incarnation });
                Ok(())
            }
            Err(error) => {
                self.recorder
                    .note(self.now, node, format!("refused to start: {error}"));
                self.nodes[node].replica = Err(Down::Failed(error.to_string()));
                Err(error)
            }
        }
    }

    /// Whether events for `node` must wait because it is stopped; if so, re-schedules them.
    fn deferred(&mut self, node: usize, event: impl FnOnce() -> Event) -> bool {
        let paused_until = self.nodes[node].paused_until;
        if self.now < paused_until {
            self.schedule(paused_until, event());
            return true;
        }
        false
    }

    fn on_tick(&mut self, node: usize, incarnation: u64) {
        if self.nodes[node].incarnation != incarnation || self.nodes[node].replica.is_err() {
            return;
        }
        if self.deferred(node, || Event::Tick { node, incarnation }) {
            return;
        }
        let interval = self.nodes[node].clock.tick_interval();
        self.schedule(self.now + interval, Event::Tick { node, incarnation });
        self.call_replica(node, |replica, _| replica.tick());
    }

    fn on_sync_done(&mut self, node: usize, incarnation: u64) {
        if self.nodes[node].incarnation != incarnation || self.nodes[node].replica.is_err() {
            return;
        }
        // The disk finished while the process was stopped; the process hears of it on resuming.
        if self.deferred(node, || Event::SyncDone { node, incarnation }) {
            return;
        }
        self.nodes[node].syncing = false;
        self.call_replica(node, |replica, _| replica.sync());
    }

    /// Starts an fsync on `node` if it has written something not yet synced and none is under
    /// way; its completion is an event one fsync latency later.
    fn start_sync_if_needed(&mut self, node: usize) {
        let target = &self.nodes[node];
        let pending = target
            .replica
            .as_ref()
            .is_ok_and(|replica| replica.sync_pending());
        if !pending || target.syncing {
            return;
        }
        let latency = if self.rng.gen_bool(SLOW_FSYNC_PROBABILITY) {
            self.rng.gen_range(SLOW_FSYNC_LATENCY)
        } else {
            self.rng.gen_range(FSYNC_LATENCY)
        };
        let incarnation = target.incarnation;
        self.nodes[node].syncing = true;
        self.schedule(self.now + latency, Event::SyncDone { node, incarnation });
    }

    fn on_deliver(&mut self, envelope: raft::Envelope, record: Option<usize>) {
        self.bytes_in_flight -= payload_bytes(&envelope.message);
        let node = envelope.to.0 as usize - 1;
        if self.nodes[node].replica.is_err() {
            return;
        }
        if self.now < self.nodes[node].paused_until {
            let at = self.nodes[node].paused_until;
            self.schedule_delivery(at, envelope, record);
            return;
        }
        self.recorder.received(record, self.now);
        self.call_replica(node, |replica, _| replica.receive(envelope));
    }

    /// Calls the node's replica and carries out the effects; a storage failure (a simulated
    /// power loss during a sync, or damage) takes the node down.
    pub(super) fn call_replica(
        &mut self,
        node: usize,
        call: impl FnOnce(&mut dschat_replica::Replica, u64) -> Result<Effects, ReplicaError>,
    ) {
        let unix_ms = self.nodes[node].clock.unix_ms(self.now);
        let Ok(replica) = self.nodes[node].replica.as_mut() else {
            return;
        };
        match call(replica, unix_ms) {
            Ok(effects) => {
                self.carry_out(node, effects);
                self.start_sync_if_needed(node);
            }
            Err(error) => self.on_replica_failure(node, error),
        }
        self.check_node(node);
    }

    fn on_replica_failure(&mut self, node: usize, error: ReplicaError) {
        let power_lost = error.to_string().contains("simulated power loss");
        if power_lost {
            // The disk already crashed itself mid-sync; the process dies with it.
            self.recorder
                .crash(self.now, node, "power lost during a sync (torn write)");
            let incarnation = self.nodes[node].incarnation;
            let target = &mut self.nodes[node];
            target.replica = Err(Down::Crashed);
            target.incarnation = incarnation + 1;
            target.requests.clear();
            self.after_crash(node);
        } else {
            self.recorder.note(
                self.now,
                node,
                format!("stopped on a storage error: {error}"),
            );
            self.recorder
                .crash(self.now, node, "stopped: storage error");
            self.nodes[node].replica = Err(Down::Failed(error.to_string()));
            self.nodes[node].incarnation += 1;
            self.nodes[node].requests.clear();
        }
    }

    /// Carries out a replica's effects. The targeted schedules see role changes and applied
    /// entries before the messages leave, so they can cut a node off at that very moment.
    fn carry_out(&mut self, node: usize, effects: Effects) {
        for change in &effects.role_changes {
            self.recorder.role_change(self.now, node, change);
            if change.role == RoleKind::Leader {
                self.invariants
                    .on_leader(self.now, node, change.term, &mut self.recorder);
                self.observe_new_leader(node);
            }
        }
        self.invariants
            .on_applied(self.now, node, &effects.applied, &mut self.recorder);
        if !effects.applied.is_empty() {
            self.observe_applied(node);
        }
        self.invariants
            .on_digests(self.now, node, &effects.digests, &mut self.recorder);
        for envelope in effects.messages {
            self.send(envelope);
        }
        for (request, outcome) in effects.completions {
            self.answer(node, request, outcome);
        }
    }

    fn send(&mut self, envelope: raft::Envelope) {
        let (from, to) = (envelope.from.0, envelope.to.0);
        let kind = message_kind(&envelope.message);
        self.observe_message(&envelope);
        let fate = self.network.fate(&mut self.rng, from, to);
        self.recorder.count_message(fate);
        match fate {
            Fate::Lost => {
                self.recorder.sent(from, to, kind, self.now, false);
            }
            Fate::Delivered(delay) => {
                let record = self.recorder.sent(from, to, kind, self.now, true);
                self.schedule_delivery(self.now + delay, envelope, record);
            }
            Fate::Duplicated(first, second) => {
                let record = self.recorder.sent(from, to, kind, self.now, true);
                let copy = self.recorder.sent(from, to, kind, self.now, true);
                self.schedule_delivery(self.now + first, envelope.clone(), record);
                self.schedule_delivery(self.now + second, envelope, copy);
            }
        }
    }

    /// Schedules a message's arrival, within the bound on bytes in flight.
    fn schedule_delivery(&mut self, at: Micros, envelope: raft::Envelope, record: Option<usize>) {
        let bytes = payload_bytes(&envelope.message);
        if self.bytes_in_flight + bytes > MAX_ENTRY_BYTES_IN_FLIGHT {
            if !self.invariants.failed() {
                let text = format!(
                    "resource bound: more than {} MiB of log entries in flight (a message storm)",
                    MAX_ENTRY_BYTES_IN_FLIGHT >> 20
                );
                self.invariants.violations.push((self.now, text.clone()));
                self.recorder.violation(self.now, &text);
            }
            return;
        }
        self.bytes_in_flight += bytes;
        self.schedule(at, Event::Deliver { envelope, record });
    }

    fn check_node(&mut self, node: usize) {
        let heavy = self.steps.is_multiple_of(64);
        if let Ok(replica) = self.nodes[node].replica.as_ref() {
            self.invariants
                .check_node(self.now, node, replica, heavy, &mut self.recorder);
        }
    }

    // ---- clients ----

    /// Creates the clients and lets them start.
    pub fn start_clients(&mut self) {
        for index in 0..self.config.clients {
            let preferred = self.rng.gen_range(0..self.nodes.len());
            self.clients.push(Client::new(index, preferred));
            let at = self.now + self.rng.gen_range(0..THINK_TIME);
            self.schedule(at, Event::ClientWake { client: index });
        }
        self.clients_running = true;
    }

    fn on_client_wake(&mut self, client: usize) {
        if !self.clients_running || self.clients[client].op.is_some() {
            return;
        }
        let workload = self.config.workload;
        let kind =
            self.clients[client].choose(workload, &mut self.rng, &mut self.next_register_value);
        let sequence = kind.is_write().then(|| {
            self.clients[client].sequence += 1;
            self.clients[client].sequence
        });
        let node = self.clients[client].preferred_node;
        let value = kind.invoke_value(client, node);
        let process = self.clients[client].process;
        self.recorder.history(
            process,
            EventKind::Invoke,
            kind.operation(),
            value,
            self.now,
        );
        self.clients[client].op = Some(workload::InFlight {
            kind,
            invoked_at: self.now,
            deadline: self.now + OPERATION_DEADLINE,
            attempt: 0,
            sequence,
        });
        self.send_attempt(client);
    }

    fn current_attempt(&self, client: usize) -> Option<u64> {
        self.clients[client].op.as_ref().map(|op| op.attempt)
    }

    fn send_attempt(&mut self, client: usize) {
        let Some(op) = self.clients[client].op.as_mut() else {
            return;
        };
        // Attempt numbers are unique in the run, so a late answer to an earlier operation's
        // attempt can never be taken for the current one's.
        self.next_attempt += 1;
        op.attempt = self.next_attempt;
        let attempt = op.attempt;
        let node = self.clients[client].preferred_node;
        let delay = self.network.delay(&mut self.rng);
        self.schedule(
            self.now + delay,
            Event::Request {
                node,
                client,
                attempt,
            },
        );
        self.schedule(
            self.now + ATTEMPT_TIMEOUT,
            Event::AttemptTimeout { client, attempt },
        );
    }

    fn on_request(&mut self, node: usize, client: usize, attempt: u64) {
        if self.nodes[node].replica.is_err() || self.current_attempt(client) != Some(attempt) {
            return;
        }
        if self.deferred(node, || Event::Request {
            node,
            client,
            attempt,
        }) {
            return;
        }
        let op = self.clients[client].op.as_ref().expect("attempt checked");
        let kind = op.kind.clone();
        if let OpKind::Feed { .. } = kind {
            // Feeds are served from the node's own applied state, without Raft.
            let replica = self.nodes[node].replica.as_ref().expect("checked running");
            let value = workload::read_value(&kind, &replica.chat(), &self.setup);
            self.reply(client, attempt, Reply::Data(value));
            return;
        }
        let request = match workload::command_for(&kind, client, &self.setup) {
            Some(command) => Request::Write {
                session: op.sequence.map(|sequence| ClientSession {
                    client: self.clients[client].session,
                    sequence: SequenceNumber(sequence),
                }),
                command,
            },
            None => Request::Read,
        };
        let request_id = RequestId(self.next_request_id);
        self.next_request_id += 1;
        self.nodes[node]
            .requests
            .insert(request_id, (client, attempt));
        self.call_replica(node, |replica, unix_ms| {
            replica.submit(request_id, request, unix_ms)
        });
    }

    /// A replica finished a request: compute a read's result now, and send the answer.
    fn answer(&mut self, node: usize, request: RequestId, outcome: Outcome) {
        let Some((client, attempt)) = self.nodes[node].requests.remove(&request) else {
            self.setup_outcomes.insert(request, outcome);
            return;
        };
        // An answer to an attempt its client has already given up on is dropped on arrival;
        // computing a read's result for it would only cost time.
        if self.current_attempt(client) != Some(attempt) {
            return;
        }
        let reply = match (&outcome, self.clients[client].op.as_ref()) {
            (Outcome::ReadReady { .. }, Some(op)) => {
                let replica = self.nodes[node].replica.as_ref().expect("it just answered");
                Reply::Data(workload::read_value(&op.kind, &replica.chat(), &self.setup))
            }
            _ => Reply::Outcome(outcome),
        };
        self.reply(client, attempt, reply);
    }

    fn reply(&mut self, client: usize, attempt: u64, reply: Reply) {
        let delay = self.network.delay(&mut self.rng);
        self.schedule(
            self.now + delay,
            Event::Response {
                client,
                attempt,
                reply,
            },
        );
    }

    fn on_response(&mut self, client: usize, attempt: u64, reply: Reply) {
        if self.current_attempt(client) != Some(attempt) {
            return;
        }
        let op = self.clients[client].op.as_ref().expect("attempt checked");
        let outcome = match reply {
            Reply::Data(value) => return self.finish(client, EventKind::Ok, value),
            Reply::Outcome(outcome) => outcome,
        };
        let completion = if op.kind.is_write() {
            workload::write_completion(&op.kind, &outcome)
        } else {
            Completion::Retry
        };
        match completion {
            Completion::Ok(value) => self.finish(client, EventKind::Ok, value),
            Completion::Fail(value) => self.finish(client, EventKind::Fail, value),
            Completion::Retry => self.retry(client, &outcome),
        }
    }

    fn retry(&mut self, client: usize, outcome: &Outcome) {
        let op = self.clients[client].op.as_ref().expect("in flight");
        if self.now >= op.deadline {
            self.finish(client, EventKind::Info, Value::Null);
            return;
        }
        let attempt = op.attempt;
        match outcome {
            Outcome::NotLeader {
                leader_hint: Some(leader),
            } => {
                self.clients[client].preferred_node = leader.0 as usize - 1;
                self.send_attempt(client);
            }
            Outcome::NotLeader { leader_hint: None } | Outcome::Busy(_) => {
                self.clients[client].preferred_node = self.rng.gen_range(0..self.nodes.len());
                self.schedule(
                    self.now + 20 * MILLISECOND,
                    Event::Resend { client, attempt },
                );
            }
            _ => self.send_attempt(client),
        }
    }

    fn on_attempt_timeout(&mut self, client: usize, attempt: u64) {
        if self.current_attempt(client) != Some(attempt) {
            return;
        }
        let op = self.clients[client].op.as_ref().expect("in flight");
        if self.now >= op.deadline || matches!(op.kind, OpKind::Feed { .. }) {
            self.finish(client, EventKind::Info, Value::Null);
            return;
        }
        self.clients[client].preferred_node = self.rng.gen_range(0..self.nodes.len());
        self.send_attempt(client);
    }

    fn finish(&mut self, client: usize, kind: EventKind, value: Value) {
        let op = self.clients[client].op.take().expect("in flight");
        if let (EventKind::Ok, OpKind::Feed { room, .. }) = (kind, &op.kind) {
            if let Some(last) = value["messages"]
                .as_array()
                .and_then(|messages| messages.last())
                .and_then(|message| message[0].as_u64())
            {
                self.clients[client].cursors[*room] = last;
            }
        }
        let process = self.clients[client].process;
        let operation = op.kind.operation();
        self.recorder
            .history(process, kind, operation, value, self.now);
        self.recorder
            .operation_done(kind, op.kind.is_write(), op.invoked_at, self.now);
        if kind == EventKind::Info {
            self.clients[client].process += self.config.clients as u64;
        }
        let think = self.rng.gen_range(0..THINK_TIME);
        self.schedule(self.now + think, Event::ClientWake { client });
    }

    /// A request id for the setup.
    pub fn next_setup_request(&mut self) -> RequestId {
        self.next_request_id += 1;
        RequestId(self.next_request_id - 1)
    }

    /// Hands a setup request straight to `node` (no client, no network).
    pub fn submit_setup(&mut self, node: usize, id: RequestId, request: Request) {
        self.call_replica(node, |replica, unix_ms| {
            replica.submit(id, request, unix_ms)
        });
    }

    /// Whether any client has an operation in flight.
    pub fn clients_busy(&self) -> bool {
        self.clients.iter().any(|client| client.op.is_some())
    }

    /// The node that leads in the highest term among live nodes, if any.
    pub fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| node.is_live(self.now))
            .filter_map(|(index, node)| {
                let status = node.replica.as_ref().ok()?.status();
                (status.role == RoleKind::Leader).then_some((status.term, index))
            })
            .max()
            .map(|(_, index)| index)
    }
}

/// Bytes of entries or snapshot data a message carries (what can pile up in flight).
fn payload_bytes(message: &raft::Message) -> usize {
    match message {
        raft::Message::LogRequest(request) => {
            request.entries.iter().map(raft::Entry::size_bytes).sum()
        }
        raft::Message::SnapshotChunk(chunk) => chunk.data.len(),
        _ => 0,
    }
}

/// A message's kind, for the trace.
pub fn message_kind(message: &raft::Message) -> &'static str {
    match message {
        raft::Message::PreVoteRequest(_) => "PreVoteRequest",
        raft::Message::PreVoteResponse(_) => "PreVoteResponse",
        raft::Message::VoteRequest(_) => "VoteRequest",
        raft::Message::VoteResponse(_) => "VoteResponse",
        raft::Message::LogRequest(_) => "LogRequest",
        raft::Message::LogResponse(_) => "LogResponse",
        raft::Message::Heartbeat(_) => "Heartbeat",
        raft::Message::HeartbeatResponse(_) => "HeartbeatResponse",
        raft::Message::SnapshotChunk(_) => "SnapshotChunk",
        raft::Message::SnapshotResponse(_) => "SnapshotResponse",
        raft::Message::TimeoutNow => "TimeoutNow",
    }
}
