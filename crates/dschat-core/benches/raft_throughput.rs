//! Throughput of the Raft core alone: three nodes in memory, no I/O, no sleeping. Each of P
//! concurrent proposers proposes its next command as soon as its previous one is applied on
//! the leader; writes are acknowledged at once, in groups (one `persisted` per node per
//! delivery round, like a group commit). Prints committed commands per second for P = 1, 64
//! and 4096.
//!
//! Run with `cargo bench -p dschat-core --bench raft_throughput`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dschat_core::ids::{ClientId, LogIndex, NodeId, SequenceNumber};
use dschat_core::raft::{
    Command, Config, Envelope, Node, Output, Payload, PersistId, RestoredState, RoleKind,
};

struct Bench {
    nodes: Vec<Node>,
    network: VecDeque<Envelope>,
    unsynced: Vec<Option<PersistId>>,
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
                Output::Apply(entries) if node == 0 => {
                    let commands = entries
                        .iter()
                        .filter(|e| matches!(e.payload, Payload::Command(_)))
                        .count() as u64;
                    self.committed_commands += commands;
                    self.freed_proposers += commands;
                }
                _ => {}
            }
        }
    }

    /// Deliver every message in flight, then complete every node's writes (group commit).
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
        }
    }

    fn propose(&mut self, count: u64) {
        for _ in 0..count {
            self.next_sequence += 1;
            let command = Command {
                session: Some((
                    ClientId(self.next_sequence % 4096),
                    SequenceNumber(self.next_sequence),
                )),
                data: self.next_sequence.to_le_bytes().to_vec(),
            };
            let proposed = self.nodes[0].propose(command).expect("leader with room");
            self.handle(0, proposed.outputs);
        }
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
