//! Tunables of a Raft node, each with its unit in its name and a bound where it limits a queue.

use super::error::Error;

/// Lease reads: serve reads without a heartbeat round while a lease holds. Only safe when
/// clocks drift less than the bound, so they are off unless the host opts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseReads {
    /// How many ticks a server's clock may run slow against another's over one election
    /// timeout. The lease lasts `election_timeout_min_ticks - clock_drift_bound_ticks` ticks
    /// from the start of the heartbeat round that confirmed it.
    pub clock_drift_bound_ticks: u64,
}

/// Test-only switches that re-introduce known Raft bugs, so tests can show they catch them.
/// Compiled only with the `bug-switches` feature; never in a release build.
#[cfg(feature = "bug-switches")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BugSwitches {
    /// Send a vote before the term and vote are durable.
    pub vote_without_persist: bool,
    /// Commit an entry of an earlier term by counting replicas (Raft paper, figure 8).
    pub commit_earlier_term_by_counting: bool,
    /// A follower drops every entry after a log request's last entry, even when the request
    /// is stale (delayed or duplicated).
    pub truncate_on_stale_append: bool,
    /// Answer a read-index read without confirming leadership with a heartbeat round.
    pub read_without_confirmation: bool,
    /// Accept a membership change while another is still uncommitted, so two overlapping
    /// one-server changes can leave old and new majorities disjoint (TESTING.md row 8).
    pub allow_overlapping_membership_changes: bool,
    /// A leader takes no notice of heartbeat answers for replication: a follower whose log
    /// request (or probe) was lost is never sent another, so once a majority is stalled the
    /// healed cluster commits nothing more (TESTING.md row 16: unavailability in a healthy
    /// cluster).
    pub ignore_stalled_replication: bool,
}

/// Configuration of one node. `Config::default()` suits a cluster ticked every ~10 ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Seed of the node's random generator (election timeouts). Give each node its own.
    pub seed: u64,
    /// Shortest election timeout; each timeout is drawn from `[min, 2 * min)`.
    pub election_timeout_min_ticks: u64,
    /// How often a leader sends heartbeats.
    pub heartbeat_interval_ticks: u64,
    /// Ask for pre-votes before raising the term (thesis §9.6).
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a majority for an election timeout, and
    /// voters ignore vote requests while they hear from a leader (thesis §6.2, §9.6).
    pub check_quorum: bool,
    /// Bound: log requests in flight to one follower; at the bound, new entries wait.
    pub max_inflight_requests: usize,
    /// Bound: entries in one log request.
    pub max_batch_entries: usize,
    /// Bound: bytes of entries in one log request (a single larger entry is still sent).
    pub max_batch_bytes: usize,
    /// Bound: entries a leader holds uncommitted; at the bound proposals fail with
    /// `Error::UncommittedQueueFull`.
    pub max_uncommitted_entries: u64,
    /// Bound: read requests waiting for confirmation; at the bound reads fail with
    /// `Error::ReadQueueFull`.
    pub max_pending_reads: usize,
    /// Bound: bytes in one snapshot chunk.
    pub max_snapshot_chunk_bytes: usize,
    /// Bound: bytes of a snapshot a follower accepts; a larger one is refused (the follower
    /// replies that it holds 0 bytes and the leader starts again).
    pub max_snapshot_bytes: u64,
    /// Bound: messages withheld until a write is durable; beyond it the oldest is dropped, as
    /// if the network had lost it (the protocol already tolerates that).
    pub max_withheld_messages: usize,
    /// Ask the host for a snapshot (`Output::SnapshotWanted`) once this many applied entries
    /// follow the last snapshot; 0 never asks.
    pub snapshot_threshold_entries: u64,
    /// Lease reads, off (`None`) by default.
    pub lease_reads: Option<LeaseReads>,
    /// Test-only bug switches.
    #[cfg(feature = "bug-switches")]
    pub bugs: BugSwitches,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            seed: 0,
            election_timeout_min_ticks: 10,
            heartbeat_interval_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            max_inflight_requests: 8,
            max_batch_entries: 1024,
            max_batch_bytes: 1 << 20,
            max_uncommitted_entries: 16_384,
            max_pending_reads: 4096,
            max_snapshot_chunk_bytes: 64 * 1024,
            max_snapshot_bytes: 1 << 30,
            max_withheld_messages: 4096,
            snapshot_threshold_entries: 0,
            lease_reads: None,
            #[cfg(feature = "bug-switches")]
            bugs: BugSwitches::default(),
        }
    }
}

impl Config {
    /// Check that the values make sense together.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: &str| Err(Error::InvalidConfig(reason.to_string()));
        if self.election_timeout_min_ticks < 2 {
            return invalid("election_timeout_min_ticks must be at least 2");
        }
        if self.heartbeat_interval_ticks == 0
            || self.heartbeat_interval_ticks >= self.election_timeout_min_ticks
        {
            return invalid("heartbeat_interval_ticks must be in 1..election_timeout_min_ticks");
        }
        if self.max_inflight_requests == 0 || self.max_batch_entries == 0 {
            return invalid("max_inflight_requests and max_batch_entries must be positive");
        }
        if self.max_snapshot_chunk_bytes == 0
            || self.max_uncommitted_entries == 0
            || self.max_withheld_messages == 0
        {
            return invalid(
                "max_snapshot_chunk_bytes, max_uncommitted_entries and max_withheld_messages must be positive",
            );
        }
        if let Some(lease) = self.lease_reads {
            if !self.check_quorum {
                return invalid("lease reads need check_quorum");
            }
            if lease.clock_drift_bound_ticks >= self.election_timeout_min_ticks {
                return invalid("clock_drift_bound_ticks must be below the election timeout");
            }
        }
        Ok(())
    }

    /// Whether a bug switch is on (always false without the `bug-switches` feature).
    #[cfg(feature = "bug-switches")]
    pub(crate) fn bug(&self, bug: Bug) -> bool {
        match bug {
            Bug::VoteWithoutPersist => self.bugs.vote_without_persist,
            Bug::CommitEarlierTermByCounting => self.bugs.commit_earlier_term_by_counting,
            Bug::TruncateOnStaleAppend => self.bugs.truncate_on_stale_append,
            Bug::ReadWithoutConfirmation => self.bugs.read_without_confirmation,
            Bug::AllowOverlappingMembershipChanges => {
                self.bugs.allow_overlapping_membership_changes
            }
            Bug::IgnoreStalledReplication => self.bugs.ignore_stalled_replication,
        }
    }

    /// Whether a bug switch is on (always false without the `bug-switches` feature).
    #[cfg(not(feature = "bug-switches"))]
    #[inline(always)]
    pub(crate) fn bug(&self, _bug: Bug) -> bool {
        false
    }
}

/// Names of the bug switches, usable whether or not the feature is on.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "bug-switches"), allow(dead_code))]
pub(crate) enum Bug {
    VoteWithoutPersist,
    CommitEarlierTermByCounting,
    TruncateOnStaleAppend,
    ReadWithoutConfirmation,
    AllowOverlappingMembershipChanges,
    IgnoreStalledReplication,
}
