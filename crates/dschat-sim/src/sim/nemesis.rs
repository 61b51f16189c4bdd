//! The nemesis (Jepsen's name for the fault injector): every so often it picks one of the
//! enabled [`FaultKind`]s and applies it to the world, scheduling its end; at the end of the
//! fault phase [`World::heal`] undoes everything that can be undone.

use std::collections::BTreeSet;

use dschat_storage::disk::CrashPlan;
use rand::seq::SliceRandom;
use rand::Rng;

use super::config::{FaultKind, Micros, MILLISECOND, SECOND};
use super::network::{split, NetworkConditions};
use super::node::Down;
use super::world::{Event, World};

/// What the nemesis does at a scheduled time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Pick and apply the next fault.
    Strike,
    /// Restart a crashed node.
    Restart {
        /// The node.
        node: usize,
    },
    /// End partition episode `episode` (if it is still the current one).
    HealPartition {
        /// The episode.
        episode: u64,
    },
    /// Re-draw the shape of moving partition `episode`.
    MovePartition {
        /// The episode.
        episode: u64,
    },
    /// End a spell of bad network conditions.
    EndSpell {
        /// The spell.
        spell: u64,
    },
    /// The voter trap fires on a node that just sent a vote (see `targeted.rs`).
    CrashVoter {
        /// The node.
        node: usize,
        /// Its life in which it voted (a later life is left alone).
        incarnation: u64,
    },
    /// Steer every client to a deposed leader that just resumed (see `targeted.rs`).
    SteerClients {
        /// The node.
        node: usize,
    },
    /// The disruptive-node episode moves to its next phase (see `disruption.rs`).
    DisruptionPhase {
        /// The episode.
        episode: u64,
        /// The partition episode it holds.
        partition: u64,
    },
    /// Look for the majority's leader during a disruptive-node episode.
    ProbeLeader {
        /// The episode.
        episode: u64,
    },
}

/// The nemesis's own state.
#[derive(Debug, Default)]
pub struct Nemesis {
    /// Whether the fault phase is on.
    pub active: bool,
    /// The current partition episode, if any.
    pub(super) partition: Option<u64>,
    /// The current network spell, if any.
    pub(super) spell: Option<u64>,
    next_id: u64,
    /// The one node whose files may be damaged.
    pub bit_flip_node: usize,
}

impl World {
    /// The network conditions of the fault phase when no spell is on.
    pub fn base_conditions(&self) -> NetworkConditions {
        let faults = &self.config.faults;
        let mut conditions = NetworkConditions::healthy();
        if faults.contains(&FaultKind::Loss) {
            conditions.loss = 0.01;
        }
        if faults.contains(&FaultKind::Duplication) {
            conditions.duplication = 0.02;
        }
        if faults.contains(&FaultKind::Reordering) {
            conditions.latency = (200, 20 * MILLISECOND);
        }
        if faults.contains(&FaultKind::Latency) {
            conditions.slow = (0.02, 10 * MILLISECOND, 200 * MILLISECOND);
        }
        conditions
    }

    /// Starts the fault phase.
    pub fn start_nemesis(&mut self) {
        self.nemesis.active = true;
        self.nemesis.bit_flip_node = self.rng.gen_range(0..self.nodes.len());
        self.network.conditions = self.base_conditions();
        if !self.config.faults.is_empty() {
            let at = self.now + self.rng.gen_range(200 * MILLISECOND..SECOND);
            self.schedule(at, Event::Nemesis(Action::Strike));
        }
    }

    pub(super) fn on_nemesis(&mut self, action: Action) {
        match action {
            Action::Strike if self.nemesis.active => {
                self.strike();
                let at = self.now + self.rng.gen_range(300 * MILLISECOND..1500 * MILLISECOND);
                self.schedule(at, Event::Nemesis(Action::Strike));
            }
            Action::Restart { node } if self.nemesis.active => self.restart(node),
            Action::HealPartition { episode } if self.nemesis.partition == Some(episode) => {
                self.network.heal();
                self.nemesis.partition = None;
                self.recorder.partition_end(self.now);
            }
            Action::MovePartition { episode } if self.nemesis.partition == Some(episode) => {
                self.network.heal();
                self.cut_random_partition("moving partition");
                let at = self.now + self.rng.gen_range(500 * MILLISECOND..1500 * MILLISECOND);
                self.schedule(at, Event::Nemesis(Action::MovePartition { episode }));
            }
            Action::EndSpell { spell } if self.nemesis.spell == Some(spell) => {
                self.network.conditions = self.base_conditions();
                self.nemesis.spell = None;
            }
            Action::CrashVoter { node, incarnation } if self.nemesis.active => {
                self.crash_trapped_voter(node, incarnation)
            }
            Action::SteerClients { node } if self.nemesis.active => self.steer_clients(node),
            Action::DisruptionPhase { episode, partition } if self.nemesis.active => {
                self.next_disruption_phase(episode, partition)
            }
            Action::ProbeLeader { episode } if self.nemesis.active => self.probe_leader(episode),
            _ => {}
        }
    }

    fn strike(&mut self) {
        let faults: Vec<FaultKind> = self.config.faults.iter().copied().collect();
        let Some(&fault) = faults.choose(&mut self.rng) else {
            return;
        };
        self.disruption_on_strike(fault);
        match fault {
            FaultKind::Loss
            | FaultKind::Duplication
            | FaultKind::Latency
            | FaultKind::Reordering => self.network_spell(fault),
            FaultKind::Partition | FaultKind::OneWay | FaultKind::MovingPartition => {
                self.partition(fault)
            }
            FaultKind::Crash => self.crash_some(),
            FaultKind::Pause => self.pause_one(),
            FaultKind::ClockOffset => self.clock_jump(5_000, "offset"),
            FaultKind::ClockJump => self.clock_jump(30_000, "jump"),
            FaultKind::ClockDrift => self.clock_drift(),
            FaultKind::TornWrite => self.torn_write(),
            FaultKind::BitFlip => self.bit_flip(),
            FaultKind::CrashVoters
            | FaultKind::DeposedLeader
            | FaultKind::LeaderChurn
            | FaultKind::DamagedEntry => self.strike_targeted(fault),
            FaultKind::DisruptiveNode => self.start_disruption(),
            FaultKind::MembershipChange => self.change_membership(),
        }
    }

    fn live_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&node| self.nodes[node].is_live(self.now))
            .collect()
    }

    fn network_spell(&mut self, fault: FaultKind) {
        let mut conditions = self.base_conditions();
        match fault {
            FaultKind::Loss => conditions.loss = 0.25,
            FaultKind::Duplication => conditions.duplication = 0.25,
            FaultKind::Latency => conditions.slow = (0.5, 20 * MILLISECOND, 500 * MILLISECOND),
            _ => conditions.latency = (200, 80 * MILLISECOND),
        }
        self.network.conditions = conditions;
        let spell = self.next_nemesis_id();
        self.nemesis.spell = Some(spell);
        let at = self.now + self.rng.gen_range(SECOND..3 * SECOND);
        self.schedule(at, Event::Nemesis(Action::EndSpell { spell }));
        self.recorder.note(
            self.now,
            usize::MAX,
            format!("network spell: {}", fault.name()),
        );
    }

    /// Starts a new partition episode (ending the current one's scheduled heal and moves).
    pub(super) fn start_partition_episode(&mut self) -> u64 {
        let episode = self.next_nemesis_id();
        self.nemesis.partition = Some(episode);
        episode
    }

    fn next_nemesis_id(&mut self) -> u64 {
        self.nemesis.next_id += 1;
        self.nemesis.next_id
    }

    fn partition(&mut self, fault: FaultKind) {
        if self.nemesis.partition.is_some() {
            return;
        }
        let episode = self.next_nemesis_id();
        self.nemesis.partition = Some(episode);
        match fault {
            FaultKind::OneWay => {
                let mut nodes: Vec<u64> = self.nodes.iter().map(|node| node.id).collect();
                nodes.shuffle(&mut self.rng);
                let (from, to) = (nodes[0], nodes[1 % nodes.len()]);
                self.network.cut([(from, to)]);
                self.recorder.partition_start(
                    self.now,
                    self.network.cut_links(),
                    format!("one-way: n{from} cannot send to n{to}"),
                );
            }
            FaultKind::MovingPartition => {
                self.cut_random_partition("moving partition");
                let at = self.now + self.rng.gen_range(500 * MILLISECOND..1500 * MILLISECOND);
                self.schedule(at, Event::Nemesis(Action::MovePartition { episode }));
            }
            _ => self.cut_random_partition("partition"),
        }
        let length = self.rng.gen_range(SECOND..5 * SECOND);
        self.schedule(
            self.now + length,
            Event::Nemesis(Action::HealPartition { episode }),
        );
    }

    fn cut_random_partition(&mut self, what: &str) {
        let nodes: Vec<u64> = self.nodes.iter().map(|node| node.id).collect();
        let side_size = self.rng.gen_range(1..=nodes.len().max(2) / 2);
        let side: BTreeSet<u64> = nodes
            .choose_multiple(&mut self.rng, side_size)
            .copied()
            .collect();
        self.network.cut(split(&nodes, &side));
        let names: Vec<String> = side.iter().map(|n| format!("n{n}")).collect();
        self.recorder.partition_start(
            self.now,
            self.network.cut_links(),
            format!("{what}: {{{}}} cut off from the rest", names.join(", ")),
        );
    }

    fn crash_some(&mut self) {
        let live = self.live_nodes();
        let victims: Vec<usize> = if self.rng.gen_bool(0.05) {
            live
        } else {
            live.choose(&mut self.rng).copied().into_iter().collect()
        };
        let everyone = victims.len() == self.nodes.len();
        for node in victims {
            let seed = self.rng.gen();
            self.nodes[node].crash(seed);
            let why = if everyone {
                "power loss on every node"
            } else {
                "crash (kill -9, power loss)"
            };
            self.recorder.crash(self.now, node, why);
            self.after_crash(node);
        }
    }

    /// Schedules the restart of a node that just went down.
    pub(super) fn after_crash(&mut self, node: usize) {
        if self.nemesis.active {
            let at = self.now + self.rng.gen_range(200 * MILLISECOND..3 * SECOND);
            self.schedule(at, Event::Nemesis(Action::Restart { node }));
        }
    }

    fn restart(&mut self, node: usize) {
        if !matches!(self.nodes[node].replica, Err(Down::Crashed)) {
            return;
        }
        self.nodes[node].restarts += 1;
        self.nodes[node].paused_until = self.now;
        if self.start_node(node).is_ok() {
            self.recorder.restart(self.now, node);
        }
    }

    fn pause_one(&mut self) {
        let live = self.live_nodes();
        if let Some(&node) = live.choose(&mut self.rng) {
            let length: Micros = self.rng.gen_range(200 * MILLISECOND..3 * SECOND);
            self.nodes[node].paused_until = self.now + length;
            self.recorder.pause(node, self.now, self.now + length);
        }
    }

    fn clock_jump(&mut self, max_ms: i64, what: &str) {
        let node = self.rng.gen_range(0..self.nodes.len());
        let delta_ms = self.rng.gen_range(-max_ms..=max_ms);
        self.nodes[node].clock.jump(self.now, delta_ms);
        self.recorder.clock_jump(self.now, node, delta_ms, what);
    }

    fn clock_drift(&mut self) {
        let node = self.rng.gen_range(0..self.nodes.len());
        let drift_ppm = self.rng.gen_range(-200_000..=200_000);
        self.nodes[node].clock.set_drift(self.now, drift_ppm);
        self.recorder.note(
            self.now,
            node,
            format!("clock drift set to {:+.1} %", drift_ppm as f64 / 10_000.0),
        );
    }

    fn torn_write(&mut self) {
        let live = self.live_nodes();
        if let Some(&node) = live.choose(&mut self.rng) {
            let syncs = self.rng.gen_range(0..4);
            let seed = self.rng.gen();
            self.nodes[node]
                .disk
                .crash_after_syncs(syncs, CrashPlan::Random { seed });
            self.recorder.note(
                self.now,
                node,
                format!("power will fail during sync #{}", syncs + 1),
            );
        }
    }

    fn bit_flip(&mut self) {
        let node = self.nemesis.bit_flip_node;
        if matches!(self.nodes[node].replica, Err(Down::Failed(_))) {
            return;
        }
        let files = self.nodes[node].disk.list_log_files();
        let Some(file) = files.choose(&mut self.rng).cloned() else {
            return;
        };
        let length = self.nodes[node]
            .disk
            .read_file(&file)
            .map_or(0, |bytes| bytes.len());
        if length == 0 {
            return;
        }
        if self.nodes[node].replica.is_ok() {
            let seed = self.rng.gen();
            self.nodes[node].crash(seed);
            self.recorder
                .crash(self.now, node, "crash before disk damage");
            self.after_crash(node);
        }
        let offset = self.rng.gen_range(0..length) as u64;
        let mask = 1u8 << self.rng.gen_range(0..8);
        if self.nodes[node].disk.flip_bits(&file, offset, mask).is_ok() {
            self.nodes[node].damaged = true;
        }
        self.recorder.note(
            self.now,
            node,
            format!("bit flipped in {} at byte {offset}", file.display()),
        );
    }

    /// Ends the fault phase: heals the network, resumes paused nodes, stops clock drift,
    /// cancels pending disk faults and restarts every crashed node.
    pub fn heal(&mut self) {
        self.nemesis.active = false;
        self.nemesis.partition = None;
        self.targeted = super::targeted::Targeted::default();
        self.end_disruption_at_heal();
        self.nemesis.spell = None;
        if !self.network.cut_links().is_empty() {
            self.recorder.partition_end(self.now);
        }
        self.network.heal();
        self.network.conditions = NetworkConditions::healthy();
        for node in 0..self.nodes.len() {
            self.nodes[node].disk.cancel_scheduled_crash();
            self.nodes[node].clock.set_drift(self.now, 0);
            if matches!(self.nodes[node].replica, Err(Down::Crashed)) {
                self.nodes[node].restarts += 1;
                self.nodes[node].paused_until = self.now;
                if self.start_node(node).is_ok() {
                    self.recorder.restart(self.now, node);
                }
            }
        }
        self.recorder
            .note(self.now, usize::MAX, "healed: every fault undone".into());
    }
}

/// Listing a simulated node's log files.
pub(super) trait LogFiles {
    fn list_log_files(&self) -> Vec<std::path::PathBuf>;
}

impl LogFiles for dschat_storage::disk::SimulatedDisk {
    fn list_log_files(&self) -> Vec<std::path::PathBuf> {
        use dschat_storage::disk::Disk;
        let directory = std::path::Path::new("/log");
        let mut names = self.list_dir(directory).unwrap_or_default();
        names.sort();
        names.into_iter().map(|name| directory.join(name)).collect()
    }
}
