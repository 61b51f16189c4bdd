//! Generates chat histories by simulating a correct replicated chat under random concurrency,
//! so every generated history passes every chat checker unless mutated:
//! - each room has one true log; a post is appended (and given the next id, shared by all
//!   rooms, so ids increase along every room) at one instant strictly between its invocation
//!   and its completion, or never if it fails or times out before that instant;
//! - a `history` read returns the whole true log at one instant inside its interval;
//! - each node has applied a prefix of each room's log that catches up at random, and a `feed`
//!   poll returns at most `feed_limit` messages after `after` from that prefix;
//! - after every client is done, every node catches up and answers one `final-read` per room.
//!
//! Included with `#[path]` by the tests that need it.

use std::collections::BTreeMap;

use dschat_sim::history::{Event, EventKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// The shape of a generated chat history.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Concurrent clients.
    pub clients: u64,
    /// Cluster nodes (numbered from 1).
    pub nodes: u64,
    /// Rooms (`r1`, `r2`, ...).
    pub rooms: u64,
    /// Operations invoked before the final reads.
    pub operations: usize,
    /// Per mille of completions that time out (`info`).
    pub info_per_mille: u32,
    /// Per mille of operations that fail before taking effect.
    pub fail_per_mille: u32,
    /// Most messages one feed poll returns.
    pub feed_limit: usize,
}

/// A client operation, as invoked.
#[derive(Clone)]
enum Call {
    Post { room: String, body: String },
    History { room: String, node: u64 },
    Feed { room: String, node: u64, after: u64 },
}

impl Call {
    fn operation(&self) -> &'static str {
        match self {
            Call::Post { .. } => "post",
            Call::History { .. } => "history",
            Call::Feed { .. } => "feed",
        }
    }
}

/// Where one client is in its current operation.
enum Phase {
    Idle,
    Invoked(Call),
    /// Took effect (or definitely failed); the client has not been told yet.
    Decided {
        operation: &'static str,
        kind: EventKind,
        value: Value,
    },
}

/// The true state of the simulated cluster.
struct Cluster {
    /// Each room's log of (id, body).
    logs: BTreeMap<String, Vec<(u64, String)>>,
    /// `applied[node - 1][room]`: how much of the room's log the node has applied.
    applied: Vec<BTreeMap<String, usize>>,
    next_id: u64,
}

impl Cluster {
    fn messages(log: &[(u64, String)]) -> Value {
        json!({ "messages": log.iter().map(|(id, body)| json!([id, body])).collect::<Vec<_>>() })
    }

    /// The linearization point (or local answer) of `call`.
    fn apply(&mut self, call: &Call, feed_limit: usize) -> Value {
        match call {
            Call::Post { room, body } => {
                let id = self.next_id;
                self.next_id += 1;
                self.logs
                    .get_mut(room)
                    .expect("rooms exist")
                    .push((id, body.clone()));
                json!({ "id": id })
            }
            Call::History { room, .. } => Cluster::messages(&self.logs[room]),
            Call::Feed { room, node, after } => {
                let applied = &self.logs[room][..self.applied[*node as usize - 1][room]];
                let start = applied
                    .iter()
                    .position(|(id, _)| id == after)
                    .map_or(0, |position| position + 1);
                // A node that has not applied `after` yet has nothing after it.
                let start = if *after != 0 && start == 0 {
                    applied.len()
                } else {
                    start
                };
                let end = applied.len().min(start + feed_limit);
                Cluster::messages(&applied[start..end])
            }
        }
    }

    /// One node applies one more entry of one room, if it lags.
    fn catch_up_one(&mut self, rng: &mut ChaCha8Rng) {
        let node = rng.gen_range(0..self.applied.len());
        let room = format!("r{}", rng.gen_range(1..=self.logs.len()));
        let log_length = self.logs[&room].len();
        let applied = self.applied[node].get_mut(&room).expect("rooms exist");
        *applied = (*applied + 1).min(log_length);
    }
}

/// A history of a correct chat cluster of `shape`, determined by `seed`.
pub fn chat_history(seed: u64, shape: Shape) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rooms: Vec<String> = (1..=shape.rooms).map(|room| format!("r{room}")).collect();
    let mut cluster = Cluster {
        logs: rooms
            .iter()
            .map(|room| (room.clone(), Vec::new()))
            .collect(),
        applied: (0..shape.nodes)
            .map(|_| rooms.iter().map(|room| (room.clone(), 0)).collect())
            .collect(),
        next_id: 1,
    };
    // Jepsen's rule: after an indefinite outcome, a client continues as a fresh process.
    let mut processes: Vec<u64> = (0..shape.clients).collect();
    let mut next_process = shape.clients;
    let mut phases: Vec<Phase> = (0..shape.clients).map(|_| Phase::Idle).collect();
    // Each client's last id seen per room in its feed, to resume from.
    let mut feed_after: Vec<BTreeMap<String, u64>> =
        (0..shape.clients).map(|_| BTreeMap::new()).collect();
    let (mut events, mut invoked, mut time_ns) = (Vec::new(), 0, 0u64);
    while invoked < shape.operations || phases.iter().any(|phase| !matches!(phase, Phase::Idle)) {
        time_ns += rng.gen_range(1..=10_000_000);
        if rng.gen_bool(0.5) {
            cluster.catch_up_one(&mut rng);
        }
        let client = rng.gen_range(0..shape.clients) as usize;
        let process = processes[client];
        let event = |kind, operation: &str, value| Event {
            process,
            kind,
            operation: operation.to_string(),
            value,
            time_ns,
        };
        let phase = std::mem::replace(&mut phases[client], Phase::Idle);
        phases[client] = match phase {
            Phase::Idle if invoked < shape.operations => {
                invoked += 1;
                let room = rooms[rng.gen_range(0..rooms.len())].clone();
                let node = rng.gen_range(1..=shape.nodes);
                let call = match rng.gen_range(0..10) {
                    0..=5 => Call::Post {
                        room,
                        body: format!("p{process}-{invoked}"),
                    },
                    6..=7 => Call::History { room, node },
                    _ => {
                        let after = feed_after[client].get(&room).copied().unwrap_or(0);
                        Call::Feed { room, node, after }
                    }
                };
                let value = match &call {
                    Call::Post { room, body } => json!({ "room": room, "body": body }),
                    Call::History { room, node } => json!({ "room": room, "node": node }),
                    Call::Feed { room, node, after } => {
                        json!({ "room": room, "node": node, "after": after })
                    }
                };
                events.push(event(EventKind::Invoke, call.operation(), value));
                Phase::Invoked(call)
            }
            Phase::Idle => Phase::Idle,
            Phase::Invoked(call) if rng.gen_range(0..1000) < shape.info_per_mille => {
                // Times out before taking effect: it never will.
                events.push(event(EventKind::Info, call.operation(), Value::Null));
                processes[client] = next_process;
                next_process += 1;
                Phase::Idle
            }
            Phase::Invoked(call) if rng.gen_range(0..1000) < shape.fail_per_mille => {
                Phase::Decided {
                    operation: call.operation(),
                    kind: EventKind::Fail,
                    value: json!({ "error": "not leader" }),
                }
            }
            Phase::Invoked(call) => {
                let value = cluster.apply(&call, shape.feed_limit);
                if let Call::Feed { room, .. } = &call {
                    if let Some(last) = value["messages"].as_array().and_then(|m| m.last()) {
                        let id = last[0].as_u64().expect("generated ids are numbers");
                        feed_after[client].insert(room.clone(), id);
                    }
                }
                Phase::Decided {
                    operation: call.operation(),
                    kind: EventKind::Ok,
                    value,
                }
            }
            Phase::Decided { operation, .. } if rng.gen_range(0..1000) < shape.info_per_mille => {
                // Took effect (or failed), but the client never learns which.
                events.push(event(EventKind::Info, operation, Value::Null));
                processes[client] = next_process;
                next_process += 1;
                Phase::Idle
            }
            Phase::Decided {
                operation,
                kind,
                value,
            } => {
                events.push(event(kind, operation, value));
                Phase::Idle
            }
        };
    }
    final_reads(&mut events, &cluster, shape.nodes, next_process, time_ns);
    events
}

/// Heals: every node has applied everything and answers one final read per room.
fn final_reads(events: &mut Vec<Event>, cluster: &Cluster, nodes: u64, process: u64, time: u64) {
    let mut time_ns = time + 1_000_000_000;
    for node in 1..=nodes {
        for (room, log) in &cluster.logs {
            for (kind, value) in [
                (EventKind::Invoke, json!({ "room": room, "node": node })),
                (EventKind::Ok, Cluster::messages(log)),
            ] {
                time_ns += 1_000_000;
                events.push(Event {
                    process,
                    kind,
                    operation: "final-read".to_string(),
                    value,
                    time_ns,
                });
            }
        }
    }
}
