//! One simulated server: its disk, its replica while it runs, and its clock.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use dschat_core::ids::NodeId;
use dschat_core::raft;
use dschat_replica::{Replica, ReplicaConfig, ReplicaError, RequestId};
use dschat_storage::disk::SimulatedDisk;
use dschat_storage::WalOptions;

use super::config::{Micros, Mutant, MILLISECOND};

/// Unix time (ms) at which every simulated clock starts: 2026-01-01.
pub const EPOCH_UNIX_MS: u64 = 1_767_225_600_000;
/// The replica's tick: 10 ms of the node's own clock.
pub const TICK: Micros = 10 * MILLISECOND;

/// A node's physical clock: offset and drift against simulated time, with jumps.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeClock {
    anchor_real: Micros,
    anchor_local: i64,
    /// Parts per million the clock runs fast (negative: slow).
    pub drift_ppm: i64,
}

impl NodeClock {
    /// The clock's reading at simulated time `now`, in µs since the epoch (may be negative
    /// after a backward jump).
    pub fn local(&self, now: Micros) -> i64 {
        let elapsed = (now - self.anchor_real) as i64;
        self.anchor_local + elapsed + elapsed * self.drift_ppm / 1_000_000
    }

    /// Unix ms the node believes it is.
    pub fn unix_ms(&self, now: Micros) -> u64 {
        (EPOCH_UNIX_MS as i64 + self.local(now) / 1000).max(0) as u64
    }

    /// Changes the drift from `now` on.
    pub fn set_drift(&mut self, now: Micros, drift_ppm: i64) {
        self.anchor_local = self.local(now);
        self.anchor_real = now;
        self.drift_ppm = drift_ppm;
    }

    /// Moves the clock by `delta_ms` at `now`.
    pub fn jump(&mut self, now: Micros, delta_ms: i64) {
        self.anchor_local = self.local(now) + delta_ms * 1000;
        self.anchor_real = now;
    }

    /// How much simulated time one tick of this clock takes.
    pub fn tick_interval(&self) -> Micros {
        (TICK as i64 * 1_000_000 / (1_000_000 + self.drift_ppm)).max(1) as Micros
    }
}

/// Why a node is not running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Down {
    /// Crashed; restarts when the nemesis (or the heal) says so.
    Crashed,
    /// Refused to start or stopped on a storage error; stays down for the rest of the run.
    Failed(String),
}

/// One server of the simulated cluster.
#[derive(Debug)]
pub struct SimNode {
    /// The node's id (1-based).
    pub id: u64,
    /// Its disk, which survives crashes.
    pub disk: SimulatedDisk,
    /// The running replica, or why there is none.
    pub replica: Result<Replica, Down>,
    /// Bumped at every crash, so events of an earlier life are ignored.
    pub incarnation: u64,
    /// While `now` is before this, the process is stopped.
    pub paused_until: Micros,
    /// Its physical clock.
    pub clock: NodeClock,
    /// Client requests it is working on: request → (client, attempt).
    pub requests: HashMap<RequestId, (usize, u64)>,
    /// Restarts so far.
    pub restarts: u64,
    /// Whether an fsync is under way (its completion is scheduled) in this incarnation.
    pub syncing: bool,
    /// Whether the nemesis damaged its disk (a bit flip): only such a node may refuse to
    /// start, and only it is excused from rejoining after the heal.
    pub damaged: bool,
}

impl SimNode {
    /// A new node with an empty disk (not yet started).
    pub fn new(id: u64) -> SimNode {
        SimNode {
            id,
            disk: SimulatedDisk::new(),
            replica: Err(Down::Crashed),
            incarnation: 0,
            paused_until: 0,
            clock: NodeClock::default(),
            requests: HashMap::new(),
            restarts: 0,
            syncing: false,
            damaged: false,
        }
    }

    /// Whether it is running and not paused at `now`.
    pub fn is_live(&self, now: Micros) -> bool {
        self.replica.is_ok() && now >= self.paused_until
    }

    /// Starts the replica from what is on the disk.
    pub fn start(
        &mut self,
        voters: &[NodeId],
        seed: u64,
        mutant: Option<Mutant>,
        digest_every_entries: u64,
        max_batch_entries: usize,
    ) -> Result<(), ReplicaError> {
        let mut raft = raft_config(seed, mutant)?;
        raft.max_batch_entries = max_batch_entries;
        let config = ReplicaConfig {
            node: NodeId(self.id),
            raft,
            wal: WalOptions {
                segment_max_bytes: 256 * 1024,
            },
            initial_voters: Some(voters.to_vec()),
        };
        let mut replica = open_replica(Arc::new(self.disk.clone()), config, mutant)?;
        replica.set_digest_interval(digest_every_entries);
        replica.set_deferred_sync(true);
        self.syncing = false;
        apply_replica_mutant(&mut replica, mutant);
        self.replica = Ok(replica);
        Ok(())
    }

    /// Loses power: the replica is gone, unsynced writes are lost per `crash_seed`.
    pub fn crash(&mut self, crash_seed: u64) {
        self.replica = Err(Down::Crashed);
        self.incarnation += 1;
        self.requests.clear();
        self.disk.cancel_scheduled_crash();
        self.disk
            .crash(dschat_storage::disk::CrashPlan::Random { seed: crash_seed });
    }
}

fn raft_config(seed: u64, mutant: Option<Mutant>) -> Result<raft::Config, ReplicaError> {
    #[allow(unused_mut)]
    let mut config = raft::Config {
        seed,
        snapshot_threshold_entries: 400,
        ..raft::Config::default()
    };
    match mutant {
        None => {}
        #[cfg(feature = "bug-switches")]
        Some(
            Mutant::AcknowledgeBeforeFsync
            | Mutant::ForgetClientSessions
            | Mutant::AcknowledgeBeforeCommit
            | Mutant::SkipBodyChecksums
            | Mutant::KeepTornTail
            | Mutant::SnapshotRenameBeforeSync
            | Mutant::FeedResumeSkipsFirstEvent
            | Mutant::HybridClockFollowsPhysicalTimeBackwards,
        ) => {}
        #[cfg(feature = "bug-switches")]
        Some(Mutant::VoteWithoutPersist) => config.bugs.vote_without_persist = true,
        #[cfg(feature = "bug-switches")]
        Some(Mutant::CommitEarlierTermByCounting) => {
            config.bugs.commit_earlier_term_by_counting = true
        }
        #[cfg(feature = "bug-switches")]
        Some(Mutant::TruncateOnStaleAppend) => config.bugs.truncate_on_stale_append = true,
        #[cfg(feature = "bug-switches")]
        Some(Mutant::ReadWithoutConfirmation) => config.bugs.read_without_confirmation = true,
        #[cfg(feature = "bug-switches")]
        Some(Mutant::AllowOverlappingMembershipChanges) => {
            config.bugs.allow_overlapping_membership_changes = true
        }
        #[cfg(feature = "bug-switches")]
        Some(Mutant::IgnoreStalledReplication) => config.bugs.ignore_stalled_replication = true,
        #[cfg(feature = "bug-switches")]
        Some(Mutant::NoPreVoteOrCheckQuorum) => {
            config.pre_vote = false;
            config.check_quorum = false;
        }
        #[cfg(not(feature = "bug-switches"))]
        Some(mutant) => {
            return Err(ReplicaError::Raft(raft::Error::InvalidConfig(format!(
                "mutant {} needs a build with the bug-switches feature",
                mutant.name()
            ))))
        }
    }
    Ok(config)
}

/// Opens the replica on `disk`; a storage mutant is on from the start, so the log's
/// recovery runs with it.
#[allow(unused_variables)]
fn open_replica(
    disk: Arc<SimulatedDisk>,
    config: ReplicaConfig,
    mutant: Option<Mutant>,
) -> Result<Replica, ReplicaError> {
    #[cfg(feature = "bug-switches")]
    {
        let switches = dschat_storage::wal::WalBugSwitches {
            acknowledge_before_fsync: mutant == Some(Mutant::AcknowledgeBeforeFsync),
            skip_body_checksums: mutant == Some(Mutant::SkipBodyChecksums),
            keep_torn_tail: mutant == Some(Mutant::KeepTornTail),
        };
        if switches != dschat_storage::wal::WalBugSwitches::default() {
            return Replica::open_with_storage_bug_switches(disk, Path::new("/"), config, switches);
        }
    }
    Replica::open(disk, Path::new("/"), config)
}

#[allow(unused_variables)]
fn apply_replica_mutant(replica: &mut Replica, mutant: Option<Mutant>) {
    #[cfg(feature = "bug-switches")]
    replica.set_snapshot_bug_switches(dschat_storage::snapshot_file::SnapshotFileBugSwitches {
        rename_before_sync: mutant == Some(Mutant::SnapshotRenameBeforeSync),
    });
    #[cfg(feature = "bug-switches")]
    replica.set_bug_switches(dschat_replica::ReplicaBugSwitches {
        forget_client_sessions: mutant == Some(Mutant::ForgetClientSessions),
        acknowledge_before_commit: mutant == Some(Mutant::AcknowledgeBeforeCommit),
        feed_resume_skips_first_event: mutant == Some(Mutant::FeedResumeSkipsFirstEvent),
        hybrid_clock_follows_physical_time_backwards: mutant
            == Some(Mutant::HybridClockFollowsPhysicalTimeBackwards),
    });
}
