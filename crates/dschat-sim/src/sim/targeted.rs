//! # Targeted fault schedules: faults aimed at one moment of the protocol
//!
//! **The problem.** Random faults find many bugs, but some need two or three faults lined up
//! with a protocol step: a vote lost in a crash only matters if the voter crashes between
//! sending its vote and syncing it, *and* a second election in the same term follows; a stale
//! read from a deposed leader needs the leader cut off, a new leader that commits, and clients
//! that still read from the old one. Waiting for random faults to line up would take
//! thousands of seeds. FoundationDB's simulator meets the same need with "buggify" hooks that
//! fire at chosen code points; Jepsen's nemeses target "the leader" or "the primary".
//!
//! **The guarantee.** Each schedule here is a [`FaultKind`] the nemesis strikes with like any
//! other (so `dschat sim --faults` reaches it), is a fault a real cluster can suffer, and leaves
//! a correct build correct; it only makes the bad interleaving likely. Each one provokes a row
//! of TESTING.md:
//! - [`FaultKind::CrashVoters`] (row 1): the leader crashes, forcing an election; every node
//!   that *sends* a granted vote in it loses power a moment later with nothing unsynced kept,
//!   and restarts within tens of milliseconds; the winner is then cut off from everyone. A
//!   correct node sends its vote only once the vote is durable, so nothing is lost and the
//!   others elect a leader of a later term. A node that votes before its vote is durable
//!   forgets the vote and the term, and the others elect a second leader of the same term:
//!   the election-safety invariant fails.
//! - [`FaultKind::DeposedLeader`] (row 3; its pause is what row 4 needs, but the simulated
//!   replicas do not use lease reads): the leader stops (a long GC pause) and is cut
//!   off from every other node while stopped; the others elect a new leader and go on
//!   writing. When it resumes, still cut off, every client is steered to it (a stale load
//!   balancer or DNS entry). A correct leader confirms its leadership with a heartbeat round
//!   before serving a read, which fails; a leader that skips the round serves stale reads,
//!   and the linearizability checker finds them.
//! - [`FaultKind::LeaderChurn`] (rows 5 and 7; the Raft paper's figure 8): (a) the leader and
//!   one follower are cut off from the rest, so what clients write now reaches those two only;
//!   (b) the rest elect a second leader, cut off alone the moment it wins, holding only its
//!   no-op at an index where the first leader's entries lie; (c) the first two rejoin the
//!   others and one of them wins a third term and copies its old entries; the moment it
//!   commits, it is cut off and the second leader rejoins. A correct third leader commits its
//!   old entries only together with an entry of its own term, which then lies on a majority,
//!   so the second leader can never win again. A leader that commits an earlier term's entry
//!   by counting replicas commits it while its own no-op is still in flight; the second
//!   leader (its last term newer) wins with the nodes that lack that no-op and overwrites the
//!   committed entry: the state-machine-safety invariant fails. This needs log requests small
//!   enough to carry old entries without the no-op ([`SimConfig::max_batch_entries`]).
//! - [`FaultKind::DamagedEntry`] (row 12): the node whose disk may be damaged (one per run)
//!   crashes while running; one bit of a text byte (so the entry still parses) in the
//!   payload of one of the last
//!   [`DAMAGED_ENTRY_CANDIDATES`] entries in its newest log segment is flipped (entries that
//!   recent usually follow its snapshot, so recovery replays them), and it restarts within
//!   [`DAMAGED_RESTART_DELAY`]. A correct log finds the body checksum wrong and the node
//!   refuses to start (it stays down, neither leading nor voting). A log that does not verify
//!   checksums replays the damaged entry: the node's state differs from the others' at the
//!   next digest, or it serves or replicates a message no client wrote.
//!
//! **How it works.** [`World::strike_targeted`] starts a schedule; [`World::observe_message`],
//! [`World::observe_new_leader`] and [`World::observe_applied`] are the hooks the world calls
//! for every message sent, every node that becomes leader and every node that applies
//! entries (the last two before that step's messages leave), through which a schedule
//! follows the protocol.
//!
//! **Limitations.** A schedule acts only on what the world can see from outside a replica
//! (messages, role changes), never on a replica's internals.

use std::collections::BTreeSet;

use dschat_core::raft::{self, RoleKind};
use dschat_storage::disk::CrashPlan;
use rand::Rng;

#[cfg(doc)]
use super::config::SimConfig;
use super::config::{FaultKind, Micros, MILLISECOND, SECOND};
use super::nemesis::{Action, LogFiles};
use super::network::split;
use super::node::Down;
use super::world::{Event, World};

/// How long the voter trap stays armed when no election ends.
pub const VOTER_TRAP_LIFETIME: Micros = 2 * SECOND;
/// How soon after sending a vote a trapped voter loses power (before any fsync completes:
/// the shortest fsync takes 100 µs).
pub const VOTER_CRASH_DELAY: Micros = 20;
/// How soon a trapped voter restarts: uniform in this range.
pub const VOTER_RESTART_DELAY: std::ops::Range<Micros> = 5 * MILLISECOND..30 * MILLISECOND;
/// How long a deposed leader stays stopped: uniform in this range (long enough for the others
/// to elect a new leader and commit writes).
pub const DEPOSED_PAUSE: std::ops::Range<Micros> = 500 * MILLISECOND..1_500 * MILLISECOND;
/// How long a cut-off leader (either schedule) stays cut off after its pause or election:
/// uniform in this range.
pub const ISOLATION_AFTER: std::ops::Range<Micros> = SECOND..3 * SECOND;

/// How long one stage of the leader-churn schedule may wait for its election before the
/// schedule gives up.
pub const CHURN_STAGE_LIMIT: Micros = 3 * SECOND;

/// How many of the newest entries of a log the damaged-entry schedule chooses among.
pub const DAMAGED_ENTRY_CANDIDATES: usize = 64;
/// How soon a node whose log entry was damaged restarts: uniform in this range.
pub const DAMAGED_RESTART_DELAY: std::ops::Range<Micros> = 50 * MILLISECOND..300 * MILLISECOND;

/// The state of the targeted schedules.
#[derive(Debug, Default)]
pub struct Targeted {
    /// While the voter trap is armed: when it disarms by itself.
    voter_trap_until: Option<Micros>,
    /// Nodes crashed by the trap in the current election.
    trapped: BTreeSet<usize>,
    /// Where the leader-churn schedule is, and until when that stage may last.
    churn: Option<(Churn, Micros)>,
}

/// The stages of the leader-churn schedule (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Churn {
    /// (a) The first leader and one follower are cut off from the rest.
    Appending {
        /// The first leader.
        first: usize,
        /// The follower with it.
        follower: usize,
    },
    /// (b) The second leader is cut off alone; waiting for a third.
    SecondCutOff {
        /// The second leader.
        second: usize,
    },
    /// (c) Waiting for the third leader to commit (cutting it off lets the second back).
    ThirdElected {
        /// The third leader.
        third: usize,
    },
}

impl World {
    /// Starts the targeted schedule `fault`.
    pub(super) fn strike_targeted(&mut self, fault: FaultKind) {
        match fault {
            FaultKind::CrashVoters => self.crash_voters(),
            FaultKind::DeposedLeader => self.depose_leader(),
            FaultKind::LeaderChurn => self.start_churn(),
            FaultKind::DamagedEntry => self.damage_entry(),
            _ => unreachable!("not a targeted schedule: {fault:?}"),
        }
    }

    /// Row 1: crash the leader and arm the trap for the election that follows.
    fn crash_voters(&mut self) {
        if self.targeted.voter_trap_until.is_some() {
            return;
        }
        let Some(leader) = self.leader() else {
            return;
        };
        let seed = self.rng.gen();
        self.nodes[leader].crash(seed);
        self.recorder
            .crash(self.now, leader, "crash of the leader (voter trap armed)");
        let at = self.now + self.rng.gen_range(50 * MILLISECOND..150 * MILLISECOND);
        self.schedule(at, Event::Nemesis(Action::Restart { node: leader }));
        self.targeted.voter_trap_until = Some(self.now + VOTER_TRAP_LIFETIME);
        self.targeted.trapped.clear();
    }

    /// Called for every message a node sends: springs the voter trap on a granted vote.
    pub(super) fn observe_message(&mut self, envelope: &raft::Envelope) {
        let Some(until) = self.targeted.voter_trap_until else {
            return;
        };
        if self.now > until {
            self.targeted.voter_trap_until = None;
            return;
        }
        if let raft::Message::VoteResponse(raft::VoteResponse { granted: true }) = envelope.message
        {
            let node = envelope.from.0 as usize - 1;
            if self.targeted.trapped.insert(node) {
                let incarnation = self.nodes[node].incarnation;
                self.schedule(
                    self.now + VOTER_CRASH_DELAY,
                    Event::Nemesis(Action::CrashVoter { node, incarnation }),
                );
            }
        }
    }

    /// The trap fires: `node` loses power with nothing unsynced kept, and restarts soon.
    pub(super) fn crash_trapped_voter(&mut self, node: usize, incarnation: u64) {
        if self.nodes[node].incarnation != incarnation || self.nodes[node].replica.is_err() {
            return;
        }
        self.nodes[node].replica = Err(Down::Crashed);
        self.nodes[node].incarnation += 1;
        self.nodes[node].requests.clear();
        self.nodes[node].disk.cancel_scheduled_crash();
        self.nodes[node].disk.crash(CrashPlan::Exact {
            kept_unsynced_bytes: 0,
            kept_directory_operations: 0,
        });
        self.recorder
            .crash(self.now, node, "power loss right after sending a vote");
        let at = self.now + self.rng.gen_range(VOTER_RESTART_DELAY);
        self.schedule(at, Event::Nemesis(Action::Restart { node }));
    }

    /// Called when `node` becomes leader: the voter trap, if armed, disarms and cuts the
    /// winner off, so the others must elect again; the leader-churn schedule moves on.
    pub(super) fn observe_new_leader(&mut self, node: usize) {
        self.churn_on_new_leader(node);
        if self.targeted.voter_trap_until.take().is_none() {
            return;
        }
        self.targeted.trapped.clear();
        let length = self.rng.gen_range(ISOLATION_AFTER);
        self.isolate(node, length, "the new leader cut off from everyone");
    }

    /// Rows 5 and 7, stage (a): cut the leader and one follower off from the rest.
    fn start_churn(&mut self) {
        if self
            .targeted
            .churn
            .is_some_and(|(_, until)| self.now < until)
        {
            return;
        }
        let Some(first) = self.leader() else {
            return;
        };
        let others: Vec<usize> = (0..self.nodes.len()).filter(|&n| n != first).collect();
        let Some(&follower) = others.get(self.rng.gen_range(0..others.len().max(1))) else {
            return;
        };
        let side = BTreeSet::from([first as u64 + 1, follower as u64 + 1]);
        self.cut_off(
            &side,
            CHURN_STAGE_LIMIT,
            "leader churn (a): the leader and one follower",
        );
        self.targeted.churn = Some((
            Churn::Appending { first, follower },
            self.now + CHURN_STAGE_LIMIT,
        ));
    }

    fn churn_on_new_leader(&mut self, node: usize) {
        let Some((stage, until)) = self.targeted.churn else {
            return;
        };
        if self.now > until {
            self.targeted.churn = None;
            return;
        }
        let limit = self.now + CHURN_STAGE_LIMIT;
        match stage {
            Churn::Appending { first, follower } if node != first && node != follower => {
                // (b): the second leader, cut off before its no-op leaves.
                self.isolate(
                    node,
                    CHURN_STAGE_LIMIT,
                    "leader churn (b): the second leader",
                );
                self.targeted.churn = Some((Churn::SecondCutOff { second: node }, limit));
            }
            Churn::SecondCutOff { second } if node != second => {
                self.targeted.churn = Some((Churn::ThirdElected { third: node }, limit));
            }
            _ => {}
        }
    }

    /// Called when `node` applied entries: in stage (c), the third leader's first commit cuts
    /// it off (before that step's messages leave) and lets the second leader back.
    pub(super) fn observe_applied(&mut self, node: usize) {
        let Some((Churn::ThirdElected { third }, until)) = self.targeted.churn else {
            return;
        };
        if node != third || self.now > until {
            return;
        }
        self.targeted.churn = None;
        let length = self.rng.gen_range(ISOLATION_AFTER);
        self.isolate(
            node,
            length,
            "leader churn (c): the third leader, right after it commits",
        );
    }

    /// Row 12: crash the damageable node, flip a bit in a recent entry's payload, restart it.
    fn damage_entry(&mut self) {
        let node = self.nemesis.bit_flip_node;
        if self.nodes[node].replica.is_err() {
            return;
        }
        let Some(file) = self.nodes[node].disk.list_log_files().pop() else {
            return;
        };
        let Ok(bytes) = self.nodes[node].disk.read_file(&file) else {
            return;
        };
        let payloads = entry_payloads(&bytes);
        let first = payloads.len().saturating_sub(DAMAGED_ENTRY_CANDIDATES);
        let Some(&(start, length)) =
            payloads[first..].get(self.rng.gen_range(0..(payloads.len() - first).max(1)))
        else {
            return;
        };
        // A flip the decoder cannot notice: one of the low seven bits of a byte of text, so
        // the entry still parses and only its checksum tells it is damaged.
        let payload = &bytes[start as usize..start as usize + length];
        let text: Vec<usize> = (0..length)
            .filter(|&at| payload[at].is_ascii_alphanumeric())
            .collect();
        let within = match text.is_empty() {
            true => self.rng.gen_range(0..length),
            false => text[self.rng.gen_range(0..text.len())],
        };
        let offset = start + within as u64;
        let mask = 1u8 << self.rng.gen_range(0..7);
        let seed = self.rng.gen();
        self.nodes[node].crash(seed);
        self.recorder
            .crash(self.now, node, "crash before a damaged log entry");
        if self.nodes[node]
            .disk
            .flip_bits(&file, offset, mask)
            .is_err()
        {
            return;
        }
        self.nodes[node].damaged = true;
        self.recorder.note(
            self.now,
            node,
            format!(
                "bit flipped in an entry payload in {} at byte {offset}",
                file.display()
            ),
        );
        let at = self.now + self.rng.gen_range(DAMAGED_RESTART_DELAY);
        self.schedule(at, Event::Nemesis(Action::Restart { node }));
    }

    /// Rows 3 and 4: stop the leader, cut it off, and steer every client to it when it resumes.
    fn depose_leader(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let pause = self.rng.gen_range(DEPOSED_PAUSE);
        let length = pause + self.rng.gen_range(ISOLATION_AFTER);
        self.isolate(leader, length, "the leader, stopped, cut off from everyone");
        self.nodes[leader].paused_until = self.now + pause;
        self.recorder.pause(leader, self.now, self.now + pause);
        self.schedule(
            self.now + pause,
            Event::Nemesis(Action::SteerClients { node: leader }),
        );
    }

    /// Every client sends its next requests to `node` (it keeps its current attempt).
    pub(super) fn steer_clients(&mut self, node: usize) {
        let still_leader = self.nodes[node]
            .replica
            .as_ref()
            .is_ok_and(|replica| replica.status().role == RoleKind::Leader);
        if !still_leader {
            return;
        }
        for client in &mut self.clients {
            client.preferred_node = node;
        }
        self.recorder.note(
            self.now,
            node,
            "every client now sends here (a stale load balancer)".into(),
        );
    }

    /// Cuts `node` off from every other node for `length`, ending any partition in progress.
    fn isolate(&mut self, node: usize, length: Micros, description: &str) {
        self.cut_off(&BTreeSet::from([node as u64 + 1]), length, description);
    }

    /// Cuts the nodes of `side` (ids) off from the others for `length`, ending any partition
    /// in progress.
    pub(super) fn cut_off(&mut self, side: &BTreeSet<u64>, length: Micros, description: &str) {
        let nodes: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        self.network.heal();
        self.network.cut(split(&nodes, side));
        let episode = self.start_partition_episode();
        let names: Vec<String> = side.iter().map(|n| format!("n{n}")).collect();
        self.recorder.partition_start(
            self.now,
            self.network.cut_links(),
            format!("{description}: {{{}}} cut off", names.join(", ")),
        );
        self.schedule(
            self.now + length,
            Event::Nemesis(Action::HealPartition { episode }),
        );
    }
}

/// Where the payloads of the entries in a log segment's bytes lie: (offset, length) of each
/// non-empty payload, in file order, up to the first frame that does not decode.
fn entry_payloads(bytes: &[u8]) -> Vec<(u64, usize)> {
    use dschat_storage::record::{
        decode_frame, FrameOutcome, Record, ENTRY_BODY_OVERHEAD_BYTES, FRAME_HEADER_BYTES,
    };
    let mut payloads = Vec::new();
    let mut offset = 0;
    while let FrameOutcome::Complete {
        record,
        frame_bytes,
    } = decode_frame(&bytes[offset..])
    {
        if let Record::Entry { payload, .. } = record {
            if !payload.is_empty() {
                let start = offset + FRAME_HEADER_BYTES + ENTRY_BODY_OVERHEAD_BYTES;
                payloads.push((start as u64, payload.len()));
            }
        }
        offset += frame_bytes;
    }
    payloads
}
