//! The persistence contract: what must be durable before which message may leave.
//!
//! Changes of term, vote and log made during one call are *staged* and leave the call as one
//! `Output::Persist` with a fresh `PersistId`. A message whose truth depends on the writes
//! issued so far (a vote, a vote request, a log response) is *withheld* here until the host
//! reports those writes durable with `Node::persisted`. Log requests from a leader are not
//! withheld: a leader may replicate while it writes, and counts itself towards a majority
//! only up to `durable_index`.

use std::collections::VecDeque;

use super::message::{Entry, Envelope};
use super::output::{Output, PersistId, PersistRequest, Snapshot};
use super::Node;
use crate::ids::LogIndex;

/// An issued write not yet reported durable.
#[derive(Debug, Clone, Copy)]
struct PendingWrite {
    id: u64,
    truncate_from: Option<LogIndex>,
    last_index_after: LogIndex,
}

/// Bookkeeping of writes issued, writes durable, and messages waiting for them.
#[derive(Debug)]
pub(crate) struct Durability {
    last_issued_id: u64,
    durable_id: u64,
    staged: Option<PersistRequest>,
    pending: VecDeque<PendingWrite>,
    /// The highest index up to which the in-memory log is durable.
    pub(crate) durable_index: LogIndex,
    withheld: VecDeque<(u64, Envelope)>,
}

impl Durability {
    pub(crate) fn new(durable_index: LogIndex) -> Durability {
        Durability {
            last_issued_id: 0,
            durable_id: 0,
            staged: None,
            pending: VecDeque::new(),
            durable_index,
            withheld: VecDeque::new(),
        }
    }

    fn staged(&mut self) -> &mut PersistRequest {
        let id = PersistId(self.last_issued_id + 1);
        self.staged.get_or_insert_with(|| PersistRequest {
            id,
            hard_state: None,
            truncate_from: None,
            entries: Vec::new(),
        })
    }

    /// The id a message must wait for: the staged write, else the last issued one.
    fn required_id(&self) -> u64 {
        if self.staged.is_some() {
            self.last_issued_id + 1
        } else {
            self.last_issued_id
        }
    }

    fn recompute_durable_index(&mut self, completed_last_index: LogIndex) {
        let mut durable = completed_last_index;
        for write in &self.pending {
            if let Some(from) = write.truncate_from {
                durable = durable.min(from.previous());
            }
        }
        self.durable_index = durable;
    }
}

impl Node {
    /// Stage the current term and vote for writing.
    pub(crate) fn stage_hard_state(&mut self) {
        let hard_state = self.hard_state;
        self.durability.staged().hard_state = Some(hard_state);
    }

    /// Stage an entry (already appended to the in-memory log) for writing.
    pub(crate) fn stage_entry(&mut self, entry: Entry) {
        self.durability.staged().entries.push(entry);
    }

    /// Stage the removal of entries at `from` and after (already removed in memory).
    pub(crate) fn stage_truncate(&mut self, from: LogIndex) {
        let staged = self.durability.staged();
        staged.entries.retain(|e| e.index < from);
        staged.truncate_from = Some(staged.truncate_from.map_or(from, |t| t.min(from)));
        self.durability.durable_index = self.durability.durable_index.min(from.previous());
    }

    /// Turn the staged changes into one `Output::Persist`.
    pub(crate) fn flush_staged(&mut self) {
        let Some(request) = self.durability.staged.take() else {
            return;
        };
        self.durability.last_issued_id = request.id.0;
        self.durability.pending.push_back(PendingWrite {
            id: request.id.0,
            truncate_from: request.truncate_from,
            last_index_after: self.log.last_index(),
        });
        self.outputs.push(Output::Persist(request));
    }

    /// Issue a snapshot installation, a write ordered with the others.
    pub(crate) fn issue_install(&mut self, snapshot: Snapshot, keep_entries_after: bool) {
        // Until the installation is durable, nothing past the snapshot counts as durable (so
        // nothing past it is applied, and no newer snapshot can be taken and stored before it);
        // if the log was discarded, nothing at all.
        let truncated_from = if keep_entries_after {
            snapshot.metadata.last_included_index.next()
        } else {
            LogIndex(1)
        };
        self.flush_staged();
        let id = self.durability.last_issued_id + 1;
        self.durability.last_issued_id = id;
        self.durability.durable_index =
            self.durability.durable_index.min(truncated_from.previous());
        self.durability.pending.push_back(PendingWrite {
            id,
            truncate_from: Some(truncated_from),
            last_index_after: self.log.last_index(),
        });
        self.outputs.push(Output::InstallSnapshot {
            id: PersistId(id),
            snapshot,
            keep_entries_after,
        });
    }

    /// Send `message` once every write issued or staged so far is durable (at once if none
    /// is pending). A message to ourselves (our own vote) is handled locally then.
    pub(crate) fn send_when_durable(&mut self, envelope: Envelope) {
        let required = self.durability.required_id();
        if required <= self.durability.durable_id {
            self.deliver_released(envelope);
        } else {
            if self.durability.withheld.len() >= self.config.max_withheld_messages {
                self.durability.withheld.pop_front();
            }
            self.durability.withheld.push_back((required, envelope));
        }
    }

    fn deliver_released(&mut self, envelope: Envelope) {
        if envelope.to == self.id {
            self.receive(envelope);
        } else {
            self.outputs.push(Output::Send(envelope));
        }
    }

    /// The host reports every write up to `id` durable.
    pub(crate) fn on_persisted(&mut self, id: PersistId) {
        if id.0 <= self.durability.durable_id || id.0 > self.durability.last_issued_id {
            return; // duplicate or unknown acknowledgement: nothing to do
        }
        self.durability.durable_id = id.0;
        let mut completed = None;
        while self
            .durability
            .pending
            .front()
            .is_some_and(|w| w.id <= id.0)
        {
            completed = self.durability.pending.pop_front();
        }
        if let Some(write) = completed {
            self.durability
                .recompute_durable_index(write.last_index_after);
        }
        while self
            .durability
            .withheld
            .front()
            .is_some_and(|(required, _)| *required <= id.0)
        {
            let (_, envelope) = self
                .durability
                .withheld
                .pop_front()
                .expect("checked non-empty");
            if envelope.term == self.term() {
                self.deliver_released(envelope);
            }
        }
        self.on_durable_index_advanced();
    }
}
