//! Throughput of the Raft core alone: three nodes in memory, no I/O, no sleeping. Each of P
//! concurrent proposers proposes its next command as soon as its previous one is applied on
//! the leader (the commands proposed in one round go to the leader as one batch); writes are acknowledged at once, in groups (one `persisted` per node per
//! delivery round, like a group commit), and each node takes an (empty) snapshot when it asks
//! for one, so the log stays bounded as with a real host. Prints committed commands per second
//! for P = 1, 64 and 4096.
//!
//! Run with `cargo bench -p dschat-core --bench raft_throughput`
//! (`RAFT_BENCH_SECONDS` sets the time per measurement, default 2).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dschat_core::ids::{ClientId, LogIndex, NodeId, SequenceNumber};
use dschat_core::raft::{
    Command, Config, Envelope, Node, Output, Payload, PersistId, RestoredState, RoleKind,
};

/// Entries after the last snapshot before a node asks for a new one.
const SNAPSHOT_THRESHOLD_ENTRIES: u64 = 65_536;

struct Bench {
    nodes: Vec<Node>,
    network: VecDeque<Envelope>,
    unsynced: Vec<Option<PersistId>>,
    applied: Vec<LogIndex>,
    snapshot_wanted: Vec<bool>,
    committed_commands: u64,
    freed_proposers: u64,
    next_sequence: u64,
}

impl Bench {
    fn new() -> Bench {
        let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let config = Config {
                    seed: id.0,
                    max_uncommitted_entries: 1 << 20,
                    snapshot_threshold_entries: SNAPSHOT_THRESHOLD_ENTRIES,
                    ..Config::default()
                };
                Node::new(id, config, RestoredState::bootstrap(voters.clone()))
                    .expect("valid config")
            })
            .collect();
        let mut bench = Bench {
            nodes,
            network: VecDeque::new(),
            unsynced: vec![None; 3],
            applied: vec![LogIndex(0); 3],
            snapshot_wanted: vec![false; 3],
            committed_commands: 0,
            freed_proposers: 0,
            next_sequence: 0,
        };
        let outputs = bench.nodes[0].campaign();
        bench.handle(0, outputs);
        while bench.nodes[0].status().role != RoleKind::Leader
            || bench.nodes[0].status().commit_index == LogIndex(0)
        {
            bench.round();
        }
        bench.committed_commands = 0;
        bench
    }

    fn handle(&mut self, node: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send(envelope) => self.network.push_back(envelope),
                Output::Persist(write) => self.unsynced[node] = Some(write.id),
                Output::Apply(entries) => {
                    if node == 0 {
                        let commands = entries
                            .iter()
                            .filter(|e| matches!(e.payload, Payload::Command(_)))
                            .count() as u64;
                        self.committed_commands += commands;
                        self.freed_proposers += commands;
                    }
                    if let Some(last) = entries.last() {
                        self.applied[node] = last.index;
                    }
                }
                Output::SnapshotWanted { .. } => self.snapshot_wanted[node] = true,
                _ => {}
            }
        }
    }

    /// Deliver every message in flight, then complete every node's writes (group commit) and
    /// take the snapshots asked for.
    fn round(&mut self) {
        let messages: Vec<Envelope> = self.network.drain(..).collect();
        for envelope in messages {
            let node = (envelope.to.0 - 1) as usize;
            let outputs = self.nodes[node].step(envelope);
            self.handle(node, outputs);
        }
        for node in 0..3 {
            if let Some(id) = self.unsynced[node].take() {
                let outputs = self.nodes[node].persisted(id);
                self.handle(node, outputs);
            }
            if std::mem::take(&mut self.snapshot_wanted[node]) {
                let outputs = self.nodes[node]
                    .snapshot_taken(self.applied[node], Vec::new())
                    .expect("the applied index can be snapshotted");
                self.handle(node, outputs);
            }
        }
    }

    /// The freed proposers propose their next commands; like a host's event loop, the bench
    /// hands the leader all requests that arrived during one round as one batch.
    fn propose(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        let commands = (0..count)
            .map(|_| {
                self.next_sequence += 1;
                Command {
                    session: Some((
                        ClientId(self.next_sequence % 4096),
                        SequenceNumber(self.next_sequence),
                    )),
                    data: self.next_sequence.to_le_bytes().to_vec(),
                }
            })
            .collect();
        let proposed = self.nodes[0]
            .propose_batch(commands)
            .expect("leader with room");
        self.handle(0, proposed.outputs);
    }
}

fn measure(proposers: u64, duration: Duration) -> f64 {
    let mut bench = Bench::new();
    bench.propose(proposers);
    let start = Instant::now();
    let mut rounds = 0u64;
    loop {
        bench.round();
        let freed = std::mem::take(&mut bench.freed_proposers);
        bench.propose(freed);
        rounds += 1;
        if rounds.is_multiple_of(16) && start.elapsed() >= duration {
            break;
        }
    }
    bench.committed_commands as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::var("RAFT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    for proposers in [1, 64, 4096] {
        let rate = measure(proposers, Duration::from_secs_f64(seconds));
        println!("raft_throughput: {proposers:>5} proposers: {rate:>12.0} committed commands/s");
    }
}
