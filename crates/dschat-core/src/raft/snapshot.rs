//! Snapshots and log compaction (paper §7), and streaming a snapshot in chunks to a follower
//! that needs entries the leader has compacted away (InstallSnapshot).

use std::sync::Arc;

use super::error::Error;
use super::membership::MembershipHistory;
use super::message::{Envelope, Message, SnapshotChunk, SnapshotMetadata, SnapshotResponse};
use super::output::{Output, Snapshot};
use super::progress::ProgressState;
use super::role::{IncomingSnapshot, Role};
use super::Node;
use crate::ids::{LogIndex, NodeId};

impl Node {
    /// Ask the host for a snapshot once enough applied entries follow the last one.
    pub(crate) fn maybe_want_snapshot(&mut self) {
        let threshold = self.config.snapshot_threshold_entries;
        if threshold == 0 || self.applied_index.0 - self.log.snapshot_index().0 < threshold {
            return;
        }
        if self
            .snapshot_wanted_at
            .is_some_and(|at| at > self.log.snapshot_index())
        {
            return; // already asked
        }
        self.snapshot_wanted_at = Some(self.applied_index);
        self.outputs.push(Output::SnapshotWanted {
            applied_index: self.applied_index,
        });
    }

    /// The host took a snapshot at `index`: keep it and drop the log through it.
    pub(crate) fn compact(&mut self, index: LogIndex, data: Vec<u8>) -> Result<(), Error> {
        let refuse = |reason: &str| {
            Err(Error::InvalidSnapshot {
                index,
                reason: reason.to_string(),
            })
        };
        if index > self.applied_index {
            return refuse("not yet applied");
        }
        if index <= self.log.snapshot_index() {
            return refuse("not newer than the current snapshot");
        }
        let term = self
            .log
            .term_at(index)
            .expect("applied entries after the snapshot are held");
        let metadata = SnapshotMetadata {
            last_included_index: index,
            last_included_term: term,
            configuration: self.membership.at(index).clone(),
        };
        self.snapshot = Some(Snapshot {
            metadata,
            data: Arc::new(data),
        });
        self.log.compact_through(index);
        self.membership.compacted(index);
        self.outputs.push(Output::Compacted { through: index });
        Ok(())
    }

    /// Switch `peer` to receiving our snapshot.
    pub(crate) fn start_snapshot_send(&mut self, peer: NodeId) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let index = snapshot.metadata.last_included_index;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&peer) else {
            return;
        };
        progress.state = ProgressState::Snapshot { index, offset: 0 };
        self.send_snapshot_chunk(peer);
    }

    /// Send the next chunk of our snapshot to `peer` (one chunk in flight; resent on heartbeat
    /// if unanswered).
    pub(crate) fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&peer) else {
            return;
        };
        let ProgressState::Snapshot { index, offset } = &mut progress.state else {
            return;
        };
        if *index != snapshot.metadata.last_included_index {
            // We took a newer snapshot since: send that one from the start.
            *index = snapshot.metadata.last_included_index;
            *offset = 0;
        }
        let start = (*offset as usize).min(snapshot.data.len());
        let end = (start + self.config.max_snapshot_chunk_bytes).min(snapshot.data.len());
        let chunk = SnapshotChunk {
            metadata: snapshot.metadata.clone(),
            offset: start as u64,
            data: snapshot.data[start..end].to_vec(),
            done: end == snapshot.data.len(),
        };
        self.send(peer, Message::SnapshotChunk(chunk));
    }

    /// A follower answered a snapshot chunk.
    pub(crate) fn handle_snapshot_response(&mut self, from: NodeId, response: SnapshotResponse) {
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&from) else {
            return;
        };
        progress.recent_active = true;
        let ProgressState::Snapshot { index, offset } = &mut progress.state else {
            return;
        };
        if response.last_included_index != *index {
            return; // answers another snapshot
        }
        progress.made_progress = true;
        if response.done {
            progress.match_index = progress.match_index.max(*index);
            progress.become_probe();
            self.maybe_commit();
            self.send_append(from);
        } else {
            *offset = response.received_bytes;
            self.send_snapshot_chunk(from);
        }
    }

    /// A snapshot chunk from the leader of our term.
    pub(crate) fn handle_snapshot_chunk(&mut self, from: NodeId, chunk: SnapshotChunk) {
        if matches!(self.role, Role::Leader(_)) {
            return;
        }
        self.heard_from_leader(from);
        let index = chunk.metadata.last_included_index;
        if index <= self.commit_index {
            // We already have everything the snapshot covers.
            self.reply_snapshot(from, index, chunk.offset + chunk.data.len() as u64, true);
            return;
        }
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        let continues = follower.incoming_snapshot.as_ref().is_some_and(|incoming| {
            incoming.metadata == chunk.metadata && incoming.data.len() as u64 == chunk.offset
        });
        if chunk.offset == 0 && !continues {
            follower.incoming_snapshot = Some(IncomingSnapshot {
                metadata: chunk.metadata.clone(),
                data: Vec::new(),
            });
        } else if !continues {
            let held = follower
                .incoming_snapshot
                .as_ref()
                .filter(|incoming| incoming.metadata == chunk.metadata)
                .map_or(0, |incoming| incoming.data.len() as u64);
            self.reply_snapshot(from, index, held, false);
            return;
        }
        let incoming = follower.incoming_snapshot.as_mut().expect("set above");
        if incoming.data.len() as u64 + chunk.data.len() as u64 > self.config.max_snapshot_bytes {
            follower.incoming_snapshot = None; // over the bound: refuse, the leader starts over
            self.reply_snapshot(from, index, 0, false);
            return;
        }
        incoming.data.extend_from_slice(&chunk.data);
        let received = incoming.data.len() as u64;
        if !chunk.done {
            self.reply_snapshot(from, index, received, false);
            return;
        }
        let incoming = follower.incoming_snapshot.take().expect("set above");
        self.install_snapshot(incoming);
        self.reply_snapshot(from, index, received, true);
    }

    fn reply_snapshot(&mut self, to: NodeId, index: LogIndex, received_bytes: u64, done: bool) {
        let response = SnapshotResponse {
            last_included_index: index,
            received_bytes,
            done,
        };
        let envelope = Envelope {
            from: self.id,
            to,
            term: self.term(),
            message: Message::SnapshotResponse(response),
        };
        if done {
            self.send_when_durable(envelope);
        } else {
            self.send(to, envelope.message);
        }
    }

    /// Replace our log and state machine by a complete snapshot from the leader.
    fn install_snapshot(&mut self, incoming: IncomingSnapshot) {
        let metadata = incoming.metadata;
        let index = metadata.last_included_index;
        let kept_suffix = self
            .log
            .install_snapshot(index, metadata.last_included_term);
        let remaining = self.log.entries().to_vec();
        let mut membership = MembershipHistory::new(metadata.configuration.clone(), &[]);
        membership.reset(metadata.configuration.clone(), &remaining);
        self.membership = membership;
        self.commit_index = self.commit_index.max(index);
        self.applied_index = index;
        let snapshot = Snapshot {
            metadata,
            data: Arc::new(incoming.data),
        };
        self.snapshot = Some(snapshot.clone());
        self.issue_install(snapshot, kept_suffix);
    }
}
