//! # A disruptive node: an isolated follower that rejoins, and a one-way partition
//!
//! **The problem.** A node cut off from the leader stops hearing heartbeats and starts
//! elections. Plain Raft has it raise its term each time, so when its messages reach the
//! others again (it rejoins, or a one-way partition lets it send while it cannot hear), its
//! higher term makes the healthy leader step down, and elections follow that the cut-off node
//! cannot win (its log is behind) but can keep interrupting. etcd and others shipped this
//! (TESTING.md row 9). Pre-vote (a candidate raises its term only after a majority says it
//! could win) and check-quorum (a voter that hears from a leader ignores vote requests) are
//! the cure (Raft thesis §9.6).
//!
//! **The guarantee.** [`FaultKind::DisruptiveNode`] plays the schedule below while a checker
//! measures how long the rest of the cluster, a connected majority the whole time, goes
//! without a leader. A correct build keeps its leader throughout; the verdict fails when the
//! majority is leaderless for more than [`LEADERLESS_BOUND`] in total during one episode
//! (two of the longest election timeouts: room for one election, far less than a node
//! campaigning every timeout costs).
//!
//! **How it works.** An episode starts only when every node runs, no partition or network
//! spell is on and a leader is known; it picks a follower `F`:
//! 1. [`Phase::Isolated`]: `F` is cut off both ways for [`ISOLATED`] (its term climbs
//!    without pre-vote);
//! 2. [`Phase::Deaf`]: `F` can send to everyone but hears no one, for [`DEAF`] (it keeps
//!    campaigning, and its requests reach the others);
//! 3. [`Phase::Rejoined`]: every link heals; the episode is watched for [`WATCHED_AFTER`].
//!
//! Every [`PROBE_INTERVAL`] the probe asks whether some running node other than `F` leads
//! in the highest term any of them holds. Any other fault during the episode (a strike of
//! the nemesis, a node of the majority down or paused) voids it: then nothing is judged.
//!
//! **Limitations.** Only the episodes the fault phase lets finish are judged (the heal ends
//! one in progress unjudged). Under many kinds of faults at once (`--faults all`) an episode
//! seldom starts quiet and ends unvoided, so row 9 is covered by runs of this schedule alone
//! (`--faults disruptive-node`), as `tests/mutants.rs` does.

use rand::seq::SliceRandom;
use rand::Rng;

use dschat_core::raft::RoleKind;

use super::config::{FaultKind, Micros, MILLISECOND, SECOND};
use super::nemesis::Action;
use super::world::{Event, World};

/// How long the disruptive node is cut off both ways: uniform in this range.
pub const ISOLATED: std::ops::Range<Micros> = SECOND..2 * SECOND;
/// How long it then sends but hears nothing: uniform in this range.
pub const DEAF: std::ops::Range<Micros> = 1_500 * MILLISECOND..2_500 * MILLISECOND;
/// How long the episode is watched after everything heals.
pub const WATCHED_AFTER: Micros = SECOND;
/// How often the probe looks for the majority's leader.
pub const PROBE_INTERVAL: Micros = 10 * MILLISECOND;
/// The most time the majority may spend without a leader in one episode: two of the longest
/// election timeouts (2 × 20 ticks of 10 ms).
pub const LEADERLESS_BOUND: Micros = 400 * MILLISECOND;

/// Where an episode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The disruptive node is cut off both ways.
    Isolated,
    /// It can send, but hears no one.
    Deaf,
    /// Everything healed; still watched.
    Rejoined,
}

/// One episode in progress.
#[derive(Clone, Copy, Debug)]
struct Episode {
    /// Its number (events of an older episode are ignored).
    id: u64,
    /// The disruptive node.
    node: usize,
    /// Its phase.
    phase: Phase,
    /// When it started.
    started: Micros,
    /// Time the majority spent without a leader so far.
    leaderless: Micros,
    /// The longest single stretch without a leader so far.
    longest_leaderless: Micros,
    /// The stretch without a leader in progress (0 while the majority has a leader).
    current_leaderless: Micros,
}

/// The disruption schedule's state and what it judged.
#[derive(Debug, Default)]
pub struct Disruption {
    episode: Option<Episode>,
    next_id: u64,
    /// Episodes judged: (start, disruptive node, leaderless time, longest leaderless stretch).
    pub judged: Vec<(Micros, usize, Micros, Micros)>,
    /// Episodes voided by another fault.
    pub voided: u64,
}

impl Disruption {
    /// The judged episodes whose majority went leaderless for longer than the bound.
    pub fn failures(&self) -> Vec<(Micros, usize, Micros, Micros)> {
        self.judged
            .iter()
            .copied()
            .filter(|&(_, _, leaderless, _)| leaderless > LEADERLESS_BOUND)
            .collect()
    }
}

impl World {
    /// Starts an episode if the cluster is quiet and none is in progress.
    pub(super) fn start_disruption(&mut self) {
        let quiet = self.nemesis.partition.is_none()
            && self.nemesis.spell.is_none()
            && (0..self.nodes.len()).all(|node| self.nodes[node].is_live(self.now));
        if self.disruption.episode.is_some() || !quiet {
            return;
        }
        let Some(leader) = self.leader() else {
            return;
        };
        let followers: Vec<usize> = (0..self.nodes.len()).filter(|&n| n != leader).collect();
        let Some(&node) = followers.choose(&mut self.rng) else {
            return;
        };
        self.disruption.next_id += 1;
        let id = self.disruption.next_id;
        self.disruption.episode = Some(Episode {
            id,
            node,
            phase: Phase::Isolated,
            started: self.now,
            leaderless: 0,
            longest_leaderless: 0,
            current_leaderless: 0,
        });
        let partition = self.start_partition_episode();
        let nodes: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        let id_of_node = node as u64 + 1;
        self.network.heal();
        self.network.cut(super::network::split(
            &nodes,
            &std::collections::BTreeSet::from([id_of_node]),
        ));
        self.recorder.partition_start(
            self.now,
            self.network.cut_links(),
            format!("disruptive node (a): n{id_of_node} cut off from everyone"),
        );
        let length = self.rng.gen_range(ISOLATED);
        self.schedule(
            self.now + length,
            Event::Nemesis(Action::DisruptionPhase {
                episode: id,
                partition,
            }),
        );
        self.schedule(
            self.now + PROBE_INTERVAL,
            Event::Nemesis(Action::ProbeLeader { episode: id }),
        );
    }

    /// Moves episode `episode` to its next phase.
    pub(super) fn next_disruption_phase(&mut self, episode: u64, partition: u64) {
        let Some(current) = self.disruption.episode.filter(|e| e.id == episode) else {
            return;
        };
        let id_of_node = current.node as u64 + 1;
        match current.phase {
            Phase::Isolated if self.nemesis.partition == Some(partition) => {
                self.network.heal();
                let others: Vec<u64> = self
                    .nodes
                    .iter()
                    .map(|n| n.id)
                    .filter(|&n| n != id_of_node)
                    .collect();
                self.network
                    .cut(others.iter().map(|&other| (other, id_of_node)));
                self.recorder.partition_end(self.now);
                self.recorder.partition_start(
                    self.now,
                    self.network.cut_links(),
                    format!("disruptive node (b): n{id_of_node} sends but hears no one"),
                );
                self.set_disruption_phase(Phase::Deaf);
                let length = self.rng.gen_range(DEAF);
                self.schedule(
                    self.now + length,
                    Event::Nemesis(Action::DisruptionPhase { episode, partition }),
                );
            }
            Phase::Deaf if self.nemesis.partition == Some(partition) => {
                self.network.heal();
                self.nemesis.partition = None;
                self.recorder.partition_end(self.now);
                self.recorder.note(
                    self.now,
                    current.node,
                    "disruptive node (c): rejoined".into(),
                );
                self.set_disruption_phase(Phase::Rejoined);
                self.schedule(
                    self.now + WATCHED_AFTER,
                    Event::Nemesis(Action::DisruptionPhase { episode, partition }),
                );
            }
            Phase::Rejoined => self.judge_disruption(),
            // Another partition replaced ours: a voided episode.
            _ => self.void_disruption("another partition"),
        }
    }

    fn set_disruption_phase(&mut self, phase: Phase) {
        if let Some(episode) = self.disruption.episode.as_mut() {
            episode.phase = phase;
        }
    }

    /// Samples whether the majority has a leader now.
    pub(super) fn probe_leader(&mut self, episode: u64) {
        let Some(current) = self.disruption.episode.filter(|e| e.id == episode) else {
            return;
        };
        let majority: Vec<usize> = (0..self.nodes.len())
            .filter(|&n| n != current.node)
            .collect();
        if !majority.iter().all(|&n| self.nodes[n].is_live(self.now)) {
            self.void_disruption("a node of the majority went down or stopped");
            return;
        }
        let statuses: Vec<_> = majority
            .iter()
            .filter_map(|&n| self.nodes[n].replica.as_ref().ok().map(|r| r.status()))
            .collect();
        let highest = statuses.iter().map(|s| s.term).max();
        let led = statuses
            .iter()
            .any(|s| s.role == RoleKind::Leader && Some(s.term) == highest);
        if let Some(episode) = self.disruption.episode.as_mut() {
            if led {
                episode.current_leaderless = 0;
            } else {
                episode.leaderless += PROBE_INTERVAL;
                episode.current_leaderless += PROBE_INTERVAL;
                episode.longest_leaderless =
                    episode.longest_leaderless.max(episode.current_leaderless);
            }
        }
        self.schedule(
            self.now + PROBE_INTERVAL,
            Event::Nemesis(Action::ProbeLeader { episode }),
        );
    }

    /// Another fault struck during the episode: nothing is judged.
    pub(super) fn void_disruption(&mut self, why: &str) {
        let Some(episode) = self.disruption.episode.take() else {
            return;
        };
        self.disruption.voided += 1;
        if episode.phase != Phase::Rejoined {
            self.network.heal();
            self.nemesis.partition = None;
            self.recorder.partition_end(self.now);
        }
        self.recorder.note(
            self.now,
            episode.node,
            format!("disruptive-node episode voided ({why}): not judged"),
        );
    }

    /// A nemesis strike of `fault` voids an episode in progress, unless it is this schedule.
    pub(super) fn disruption_on_strike(&mut self, fault: FaultKind) {
        if fault != FaultKind::DisruptiveNode {
            self.void_disruption(fault.name());
        }
    }

    fn judge_disruption(&mut self) {
        let Some(episode) = self.disruption.episode.take() else {
            return;
        };
        self.disruption.judged.push((
            episode.started,
            episode.node,
            episode.leaderless,
            episode.longest_leaderless,
        ));
        let text = format!(
            "disruptive-node episode judged: the majority was without a leader for {} ms in \
             total (longest stretch {} ms; bound {} ms)",
            episode.leaderless / MILLISECOND,
            episode.longest_leaderless / MILLISECOND,
            LEADERLESS_BOUND / MILLISECOND
        );
        if episode.leaderless > LEADERLESS_BOUND {
            self.recorder.violation(self.now, &text);
        } else {
            self.recorder.note(self.now, episode.node, text);
        }
    }

    /// The heal ends an episode in progress without judging it.
    pub(super) fn end_disruption_at_heal(&mut self) {
        if self.disruption.episode.take().is_some() {
            self.disruption.voided += 1;
        }
    }
}
