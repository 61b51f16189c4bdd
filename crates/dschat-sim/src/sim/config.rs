//! What a simulation run is asked to do: [`SimConfig`], the [`Workload`] and the [`FaultKind`]s.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Simulated time, in microseconds since the start of the run.
pub type Micros = u64;

/// One microsecond-based second.
pub const SECOND: Micros = 1_000_000;
/// One millisecond.
pub const MILLISECOND: Micros = 1_000;
/// The Raft core's own default bound on entries per log request.
pub const DEFAULT_MAX_BATCH_ENTRIES: usize = 1024;

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// Chat: claim nicknames, post in rooms, read room histories (linearizable), poll feeds.
    Chat,
    /// A linearizable key-value register: each key is a room's topic, written with
    /// `SetTopic` and read with a read-index read.
    Register,
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(text: &str) -> Result<Workload, String> {
        match text {
            "chat" => Ok(Workload::Chat),
            "register" => Ok(Workload::Register),
            other => Err(format!("unknown workload {other:?} (chat, register)")),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Workload::Chat => "chat",
            Workload::Register => "register",
        })
    }
}

/// A kind of fault the nemesis may inject during the fault phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Messages between nodes are lost (a few percent, more during lossy spells).
    Loss,
    /// Messages are delivered twice.
    Duplication,
    /// Messages overtake each other (wide latency jitter).
    Reordering,
    /// Slow links: a heavy-tailed latency distribution.
    Latency,
    /// The nodes split into two sides that cannot talk.
    Partition,
    /// One node cannot send to another, while hearing from it.
    OneWay,
    /// A partition whose shape changes every second or two (bridges, rings).
    MovingPartition,
    /// A node (rarely all of them) loses power: unsynced writes are lost, and it restarts later.
    Crash,
    /// A node stops (SIGSTOP) for a while, then resumes with a backlog.
    Pause,
    /// A node's clock is set off by up to several seconds.
    ClockOffset,
    /// A node's clock runs fast or slow (up to ±20 %), which also changes its tick rate.
    ClockDrift,
    /// A node's clock jumps, forwards or backwards.
    ClockJump,
    /// Power fails during a sync: the last write is torn.
    TornWrite,
    /// Bytes of one node's log files are flipped on its disk (only ever one node per run).
    BitFlip,
    /// The leader crashes; every node that sends a vote in the next election loses power right
    /// after (before its fsync), then the winner is cut off (TESTING.md row 1).
    CrashVoters,
    /// The leader stops and is cut off; when it resumes, every client reads from it
    /// (TESTING.md row 3; the pause is what row 4 needs, but the simulated replicas do not use
    /// lease reads).
    DeposedLeader,
    /// Three leader changes with partly replicated entries, each leader cut off right after
    /// it wins or commits: the Raft paper's figure 8 (TESTING.md rows 5 and 7).
    LeaderChurn,
    /// A running node (the one whose disk may be damaged) crashes, one bit of a recent log
    /// entry's payload is flipped on its disk, and it restarts at once, so it recovers from
    /// the damaged entry (TESTING.md row 12).
    DamagedEntry,
    /// A follower is cut off, then can send but not hear, then rejoins, while a probe measures
    /// how long the others go without a leader (TESTING.md row 9; see `disruption.rs`).
    DisruptiveNode,
    /// Membership changes at the leader: remove and re-add nodes, remove the leader, and two
    /// overlapping removals under a partition (TESTING.md row 8; see `membership.rs`).
    MembershipChange,
}

impl FaultKind {
    /// Every fault kind, in order.
    pub const ALL: [FaultKind; 20] = [
        FaultKind::Loss,
        FaultKind::Duplication,
        FaultKind::Reordering,
        FaultKind::Latency,
        FaultKind::Partition,
        FaultKind::OneWay,
        FaultKind::MovingPartition,
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::ClockOffset,
        FaultKind::ClockDrift,
        FaultKind::ClockJump,
        FaultKind::TornWrite,
        FaultKind::BitFlip,
        FaultKind::CrashVoters,
        FaultKind::DeposedLeader,
        FaultKind::LeaderChurn,
        FaultKind::DamagedEntry,
        FaultKind::DisruptiveNode,
        FaultKind::MembershipChange,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Loss => "loss",
            FaultKind::Duplication => "duplicate",
            FaultKind::Reordering => "reorder",
            FaultKind::Latency => "latency",
            FaultKind::Partition => "partition",
            FaultKind::OneWay => "one-way",
            FaultKind::MovingPartition => "moving-partition",
            FaultKind::Crash => "crash",
            FaultKind::Pause => "pause",
            FaultKind::ClockOffset => "clock-offset",
            FaultKind::ClockDrift => "clock-drift",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::TornWrite => "torn-write",
            FaultKind::BitFlip => "bit-flip",
            FaultKind::CrashVoters => "crash-voters",
            FaultKind::DeposedLeader => "deposed-leader",
            FaultKind::LeaderChurn => "leader-churn",
            FaultKind::DamagedEntry => "damaged-entry",
            FaultKind::DisruptiveNode => "disruptive-node",
            FaultKind::MembershipChange => "membership",
        }
    }

    /// Parses a comma-separated list: fault names, `all`, `none`, `network` (loss, duplicate,
    /// reorder, latency, partitions), `process` (crash, pause), `clock`, `disk` (crash,
    /// torn-write, bit-flip, damaged-entry), `targeted` (crash-voters, deposed-leader,
    /// leader-churn, damaged-entry, disruptive-node, membership).
    pub fn parse_list(text: &str) -> Result<BTreeSet<FaultKind>, String> {
        let mut set = BTreeSet::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            use FaultKind::*;
            let group: &[FaultKind] = match word {
                "all" => &FaultKind::ALL,
                "none" => &[],
                "network" => &[
                    Loss,
                    Duplication,
                    Reordering,
                    Latency,
                    Partition,
                    OneWay,
                    MovingPartition,
                ],
                "process" => &[Crash, Pause],
                "clock" => &[ClockOffset, ClockDrift, ClockJump],
                "disk" => &[Crash, TornWrite, BitFlip, DamagedEntry],
                "targeted" => &[
                    CrashVoters,
                    DeposedLeader,
                    LeaderChurn,
                    DamagedEntry,
                    DisruptiveNode,
                    MembershipChange,
                ],
                name => match FaultKind::ALL.iter().find(|kind| kind.name() == name) {
                    Some(kind) => std::slice::from_ref(kind),
                    None => {
                        let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                        return Err(format!(
                            "unknown fault {name:?}; use all, none, network, process, clock, disk, targeted or any of: {}",
                            names.join(", ")
                        ));
                    }
                },
            };
            set.extend(group.iter().copied());
        }
        Ok(set)
    }

    /// Formats a set as the list [`FaultKind::parse_list`] reads.
    pub fn format_list(set: &BTreeSet<FaultKind>) -> String {
        if set.len() == FaultKind::ALL.len() {
            return "all".into();
        }
        if set.is_empty() {
            return "none".into();
        }
        set.iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A deliberately broken build, re-introducing one classic bug (feature `bug-switches`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mutant {
    /// Raft: reply to a vote before the vote is durable (TESTING.md row 1).
    VoteWithoutPersist,
    /// Raft: commit an earlier term's entry by counting replicas (row 5, figure 8).
    CommitEarlierTermByCounting,
    /// Raft: a follower truncates its log on a stale or duplicated append (row 6).
    TruncateOnStaleAppend,
    /// Raft: serve reads without confirming leadership (row 3).
    ReadWithoutConfirmation,
    /// Storage: `sync` does nothing, so acknowledged writes can be lost (row 2).
    AcknowledgeBeforeFsync,
    /// Replica: writes are proposed without their client session, so a retry is applied
    /// twice (row 14).
    ForgetClientSessions,
    /// Replica: a post is answered as soon as it is proposed, before it is committed (row 7).
    AcknowledgeBeforeCommit,
    /// Storage: the log's recovery and reads skip record body checksums, so an entry damaged
    /// by a bit flip is replayed and served as if the leader had sent it (row 12).
    SkipBodyChecksums,
    /// Storage: recovery leaves a torn tail in place and writes after it, so the next
    /// recovery meets damage mid-log and the node can never restart (row 13).
    KeepTornTail,
    /// Raft: no pre-vote and no check-quorum, so a cut-off node raises its term and disrupts
    /// the healthy majority when its messages get through (row 9).
    NoPreVoteOrCheckQuorum,
    /// Raft: a leader accepts a membership change while another is uncommitted (row 8).
    AllowOverlappingMembershipChanges,
    /// Storage: a snapshot file is renamed into place before it is synced, so a crash after
    /// the log prefix it covers is dropped leaves a torn snapshot and no log (row 10).
    SnapshotRenameBeforeSync,
    /// Raft: a leader takes no notice of heartbeat answers for replication, so a follower
    /// whose log request was lost is never sent another; once a majority is stalled the
    /// healed cluster makes no progress (row 16: unavailability in a healthy cluster).
    IgnoreStalledReplication,
    /// Chat state: a feed resumed after an id drops the first event after it, as if the
    /// cursor were inclusive (row 17: feeds skipping events).
    FeedResumeSkipsFirstEvent,
    /// Replica: the hybrid clock follows the physical clock backwards (no maximum with the
    /// last stamp), so a clock stepped back, or a new leader whose clock is behind, stamps
    /// commands earlier than those before them in the log (row 18: clock skew breaking
    /// timestamp order).
    HybridClockFollowsPhysicalTimeBackwards,
}

impl Mutant {
    /// Every mutant.
    pub const ALL: [Mutant; 15] = [
        Mutant::VoteWithoutPersist,
        Mutant::CommitEarlierTermByCounting,
        Mutant::TruncateOnStaleAppend,
        Mutant::ReadWithoutConfirmation,
        Mutant::AcknowledgeBeforeFsync,
        Mutant::ForgetClientSessions,
        Mutant::AcknowledgeBeforeCommit,
        Mutant::SkipBodyChecksums,
        Mutant::KeepTornTail,
        Mutant::NoPreVoteOrCheckQuorum,
        Mutant::AllowOverlappingMembershipChanges,
        Mutant::SnapshotRenameBeforeSync,
        Mutant::IgnoreStalledReplication,
        Mutant::FeedResumeSkipsFirstEvent,
        Mutant::HybridClockFollowsPhysicalTimeBackwards,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::VoteWithoutPersist => "vote-without-persist",
            Mutant::CommitEarlierTermByCounting => "commit-earlier-term-by-counting",
            Mutant::TruncateOnStaleAppend => "truncate-on-stale-append",
            Mutant::ReadWithoutConfirmation => "read-without-confirmation",
            Mutant::AcknowledgeBeforeFsync => "acknowledge-before-fsync",
            Mutant::ForgetClientSessions => "forget-client-sessions",
            Mutant::AcknowledgeBeforeCommit => "acknowledge-before-commit",
            Mutant::SkipBodyChecksums => "skip-body-checksums",
            Mutant::KeepTornTail => "keep-torn-tail",
            Mutant::NoPreVoteOrCheckQuorum => "no-pre-vote-or-check-quorum",
            Mutant::AllowOverlappingMembershipChanges => "allow-overlapping-membership-changes",
            Mutant::SnapshotRenameBeforeSync => "snapshot-rename-before-sync",
            Mutant::IgnoreStalledReplication => "ignore-stalled-replication",
            Mutant::FeedResumeSkipsFirstEvent => "feed-resume-skips-first-event",
            Mutant::HybridClockFollowsPhysicalTimeBackwards => {
                "hybrid-clock-follows-physical-time-backwards"
            }
        }
    }
}

impl FromStr for Mutant {
    type Err = String;
    fn from_str(text: &str) -> Result<Mutant, String> {
        Mutant::ALL
            .iter()
            .copied()
            .find(|mutant| mutant.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mutant {text:?}; one of: {}", names.join(", "))
            })
    }
}

/// Everything that determines a run. Two runs with equal configs are identical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Cluster size (voters), 1 to 9.
    pub nodes: usize,
    /// Length of the fault phase, simulated.
    pub duration: Micros,
    /// Concurrent clients.
    pub clients: usize,
    /// What the clients do.
    pub workload: Workload,
    /// Which faults the nemesis may inject.
    pub faults: BTreeSet<FaultKind>,
    /// After healing, the cluster must acknowledge a write within this time.
    pub liveness_bound: Micros,
    /// Record every message for the space-time diagram (costs memory and time).
    pub record_messages: bool,
    /// A deliberately broken build to run (tests of the checkers).
    pub mutant: Option<Mutant>,
    /// The Raft bound on entries per log request. Small batches let a log request carry an
    /// earlier term's entry without the new leader's no-op after it, which figure 8 needs.
    pub max_batch_entries: usize,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            nodes: 5,
            duration: 30 * SECOND,
            clients: 10,
            workload: Workload::Chat,
            faults: FaultKind::ALL.into_iter().collect(),
            liveness_bound: 10 * SECOND,
            record_messages: false,
            mutant: None,
            max_batch_entries: DEFAULT_MAX_BATCH_ENTRIES,
        }
    }
}

impl SimConfig {
    /// The `dschat sim` command line that replays this run.
    pub fn replay_command(&self) -> String {
        let mut command = format!(
            "dschat sim --seed {} --nodes {} --duration {}s --clients {} --workload {} --faults {}",
            self.seed,
            self.nodes,
            self.duration as f64 / SECOND as f64,
            self.clients,
            self.workload,
            FaultKind::format_list(&self.faults)
        );
        if self.max_batch_entries != DEFAULT_MAX_BATCH_ENTRIES {
            command.push_str(&format!(" --batch-entries {}", self.max_batch_entries));
        }
        if let Some(mutant) = self.mutant {
            command.push_str(&format!(" --mutant {}", mutant.name()));
        }
        command
    }
}
