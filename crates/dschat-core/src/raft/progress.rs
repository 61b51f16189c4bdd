//! What a leader knows about each follower's log (paper figure 2: `nextIndex`, `matchIndex`),
//! and how it paces replication to it.
//!
//! A follower's progress is in one of three states:
//! - `Probe`: the leader does not know where the logs agree; it sends one log request at a
//!   time and waits for the answer (or the next heartbeat answer) before sending again;
//! - `Replicate`: the logs agree up to `match_index`; the leader streams batches without
//!   waiting, at most `Config::max_inflight_requests` unanswered at once (pipelining);
//! - `Snapshot`: the entries the follower needs were compacted away; the leader streams the
//!   snapshot to it one chunk at a time.

use std::collections::VecDeque;

use crate::ids::LogIndex;

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to be replicated on the follower (durably).
    pub(crate) match_index: LogIndex,
    /// Next index to send.
    pub(crate) next_index: LogIndex,
    /// How replication to it is paced.
    pub(crate) state: ProgressState,
    /// Whether the follower answered since the last check-quorum round.
    pub(crate) recent_active: bool,
    /// Whether replication advanced since the last heartbeat (to detect lost requests).
    pub(crate) made_progress: bool,
    /// The highest read round the follower has echoed.
    pub(crate) read_round: u64,
    /// The commit index carried by the last log request sent to it.
    pub(crate) commit_sent: LogIndex,
}

/// How replication to one follower is paced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// One request at a time; `waiting` while one is unanswered.
    Probe {
        /// A probe is unanswered.
        waiting: bool,
    },
    /// Pipelined; the last index of each unanswered request, oldest first.
    Replicate {
        /// Unanswered requests (bounded by `Config::max_inflight_requests`).
        inflight: VecDeque<LogIndex>,
    },
    /// Sending the snapshot ending at `index`; `offset` bytes are acknowledged.
    Snapshot {
        /// The snapshot's last included index.
        index: LogIndex,
        /// Bytes the follower has acknowledged.
        offset: u64,
    },
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ProgressState::Probe { waiting: false },
            recent_active: true,
            made_progress: false,
            read_round: 0,
            commit_sent: LogIndex(0),
        }
    }

    /// Whether another log request may go out now.
    pub(crate) fn can_send(&self, max_inflight: usize) -> bool {
        match &self.state {
            ProgressState::Probe { waiting } => !waiting,
            ProgressState::Replicate { inflight } => inflight.len() < max_inflight,
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Back to probing from just after `match_index`.
    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe { waiting: false };
        self.next_index = self.match_index.next();
    }

    /// The follower accepted entries through `match_index`. Returns whether that changed
    /// anything (a delayed answer older than what is known changes nothing).
    pub(crate) fn accepted(&mut self, match_index: LogIndex) -> bool {
        if match_index < self.match_index {
            return false;
        }
        let news = match_index > self.match_index;
        self.match_index = match_index;
        self.next_index = self.next_index.max(match_index.next());
        self.made_progress |= news;
        match &mut self.state {
            ProgressState::Replicate { inflight } => {
                while inflight.front().is_some_and(|&last| last <= match_index) {
                    inflight.pop_front();
                }
                news
            }
            ProgressState::Probe { .. } => {
                self.state = ProgressState::Replicate {
                    inflight: VecDeque::new(),
                };
                self.next_index = match_index.next();
                self.made_progress = true;
                true
            }
            ProgressState::Snapshot { .. } => news,
        }
    }
}
