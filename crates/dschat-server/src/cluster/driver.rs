//! The Raft driver: the thread that owns a node's [`Replica`] and carries out its effects.
//!
//! It is the real-time twin of the simulator's event loop. It waits for input (messages from
//! peers, client requests, administrative changes) or for the next tick, hands each to the
//! replica, and carries out the [`Effects`] that come back: frames to peers go to the
//! [`Transport`], finished requests are answered, applied events are published to live feeds,
//! and the node's status is republished for routing and the dashboards. Writes that arrive
//! together are proposed together ([`Replica::submit_writes`]): one log append, one fsync and
//! one replication round for the whole batch (group commit).
//!
//! The replica runs with **deferred sync**: during a round its writes go to the page cache,
//! and the round ends with one fsync ([`Replica::sync`]) for everything it wrote: client
//! writes, entries a follower received from the leader, votes. The Raft core withholds every
//! message that promises durability (votes, log responses) until that sync, while the
//! leader's log requests leave at once, so the leader's fsync overlaps its followers' and a
//! busy follower makes many appends durable with one fsync. Acknowledged still means durable
//! on a majority. The driver is a plain thread so that fsyncs never stall the tokio runtime
//! that serves clients.

use super::frame::PeerFrame;
use super::transport::Transport;
use crate::hub::Hub;
use crate::search::SearchIndex;
use dschat_core::chat::{ClientSession, Command};
use dschat_core::ids::{LogIndex, MessageId, NodeId};
use dschat_core::raft::{self, RoleKind, Status};
use dschat_replica::{Effects, Outcome, Replica, ReplicaError, Request, RequestId};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Bound: inputs handled in one round before the driver ticks and publishes its status.
const MAX_INPUTS_PER_ROUND: usize = 4_096;
/// Bound: fsyncs in one round (a sync can release work that writes again); the rest wait for
/// the next round.
const MAX_SYNCS_PER_ROUND: usize = 4;

/// What the driver is asked to do.
pub enum Input {
    /// A Raft message from a peer.
    Peer(raft::Envelope),
    /// Client writes, in order (this node believes it is the leader): one, or one client's
    /// pipelined lines. They go into one round's batch, so Raft takes all of them or none,
    /// appended in this order.
    Writes {
        /// Each write's client session (exactly once across retries), change, and where its
        /// outcome goes.
        writes: Vec<(ClientSession, Command, oneshot::Sender<Outcome>)>,
        /// The physical time to stamp them with.
        now_unix_ms: u64,
    },
    /// A linearizable read (read index).
    Read {
        /// Where the outcome goes.
        reply: oneshot::Sender<Outcome>,
    },
    /// A membership or leadership change (leader only).
    Admin {
        /// The change.
        change: AdminChange,
        /// `Ok` once proposed, or why not.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Finish the round and stop (shutdown).
    Stop,
    /// A stamp for an unlogged (ephemeral) message.
    Stamp {
        /// The physical time.
        now_unix_ms: u64,
        /// The wall time and the id, or why not.
        reply: std::sync::mpsc::SyncSender<Result<(u64, MessageId), String>>,
    },
}

/// A change to the cluster's membership or leadership.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub enum AdminChange {
    /// Add a node as a learner (it receives the log but does not vote).
    AddLearner(NodeId),
    /// Make a caught-up learner a voter.
    Promote(NodeId),
    /// Remove a node.
    Remove(NodeId),
    /// Hand leadership to a node.
    TransferLeader(NodeId),
}

/// What the driver publishes after each round.
#[derive(Clone, Debug)]
pub struct DriverStatus {
    /// The Raft status.
    pub raft: Status,
    /// The first and last index in the log.
    pub log_bounds: (LogIndex, LogIndex),
    /// The terms of the log's entries, in runs of (first index, term), for the lab's drawing
    /// of the log (bounded to the last [`LOG_TERMS_SHOWN`] entries).
    pub recent_terms: Vec<(LogIndex, dschat_core::ids::Term)>,
    /// Whether the driver stopped (storage failure or shutdown).
    pub stopped: bool,
    /// Whether it stopped because the storage failed (not for a shutdown).
    pub storage_failed: bool,
}

impl DriverStatus {
    /// Why a stopped driver takes no requests, as the error a client gets.
    pub fn stopped_error(&self) -> crate::node::ProposeError {
        if self.storage_failed {
            crate::node::ProposeError::Storage(
                "this node's storage failed; it no longer takes part in the cluster".into(),
            )
        } else {
            crate::node::ProposeError::ShuttingDown
        }
    }
}

/// Bound: how many of the last log entries the status describes term by term.
pub const LOG_TERMS_SHOWN: u64 = 64;

/// The thread's state.
pub struct Driver {
    /// The replica it owns.
    pub replica: Replica,
    /// Where frames to peers go.
    pub transport: Transport,
    /// Live feeds.
    pub hub: Arc<Hub>,
    /// The search index to wake after applies.
    pub search: Arc<SearchIndex>,
    /// How long one tick is.
    pub tick: Duration,
    /// Where the status goes after each round.
    pub status: watch::Sender<DriverStatus>,
    /// The highest applied index, for waiters.
    pub applied: watch::Sender<LogIndex>,
    /// Answers owed, by request.
    pub pending: HashMap<RequestId, oneshot::Sender<Outcome>>,
    /// The next request id.
    pub next_request: u64,
    /// Set by [`Input::Stop`].
    pub stop_requested: bool,
    /// Set by the node at shutdown, checked after every round (the queue may be full).
    pub stop_flag: Arc<std::sync::atomic::AtomicBool>,
    /// Lab mode: where sent and received messages are recorded.
    pub trace: Option<Arc<super::trace::LabTrace>>,
}

impl Driver {
    /// Runs until the input channel closes, the node stops it, or storage fails. However it
    /// ends (a panic included), the status says `stopped`, so requests stop waiting for it.
    pub fn run(mut self, inputs: Receiver<Input>) {
        let _stopped = StoppedOnExit(self.status.clone());
        let mut next_tick = Instant::now() + self.tick;
        let mut writes = Vec::new();
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let first = match inputs.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let result = self.round(first, &inputs, &mut writes, &mut next_tick);
            if let Err(error) = result {
                tracing::error!(%error, "storage failed; this node stops taking part in the cluster");
                self.status
                    .send_modify(|status| status.storage_failed = true);
                break;
            }
            if self.stop_requested || self.stop_flag.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
        }
        // Dropping the pending senders (with `self`) tells their waiters to retry elsewhere;
        // the guard publishes `stopped`.
    }

    fn round(
        &mut self,
        first: Option<Input>,
        inputs: &Receiver<Input>,
        writes: &mut Vec<(RequestId, Option<ClientSession>, Command)>,
        next_tick: &mut Instant,
    ) -> Result<(), ReplicaError> {
        let mut write_time = 0;
        let mut input = first;
        let mut handled = 0;
        while let Some(next) = input.take() {
            match next {
                Input::Writes {
                    writes: batch,
                    now_unix_ms,
                } => {
                    for (session, command, reply) in batch {
                        let request = self.remember(reply);
                        writes.push((request, Some(session), command));
                    }
                    write_time = write_time.max(now_unix_ms);
                }
                other => self.handle(other)?,
            }
            handled += 1;
            if handled < MAX_INPUTS_PER_ROUND {
                input = inputs.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            let effects = self
                .replica
                .submit_writes(std::mem::take(writes), write_time)?;
            self.carry_out(effects);
        }
        let now = Instant::now();
        if now >= *next_tick {
            let effects = self.replica.tick()?;
            self.carry_out(effects);
            *next_tick += self.tick;
            if *next_tick < now {
                // The thread fell behind (a long fsync); skip the missed ticks.
                *next_tick = now + self.tick;
            }
        }
        // One fsync for everything this round wrote (group commit across writes, appends
        // from the leader and votes); messages that did not depend on it are already out.
        for _ in 0..MAX_SYNCS_PER_ROUND {
            if !self.replica.sync_pending() {
                break;
            }
            let effects = self.replica.sync()?;
            self.carry_out(effects);
        }
        self.publish_status();
        Ok(())
    }

    fn remember(&mut self, reply: oneshot::Sender<Outcome>) -> RequestId {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.pending.insert(request, reply);
        request
    }

    fn handle(&mut self, input: Input) -> Result<(), ReplicaError> {
        match input {
            Input::Peer(envelope) => {
                if let Some(trace) = &self.trace {
                    trace.record(self.replica.id(), &envelope, false, unix_us_now());
                }
                let effects = self.replica.receive(envelope)?;
                self.carry_out(effects);
            }
            Input::Read { reply } => {
                let request = self.remember(reply);
                let effects = self.replica.submit(request, Request::Read, 0)?;
                self.carry_out(effects);
            }
            Input::Admin { change, reply } => {
                let result = match change {
                    AdminChange::AddLearner(node) => self.replica.add_learner(node)?,
                    AdminChange::Promote(node) => self.replica.promote_learner(node)?,
                    AdminChange::Remove(node) => self.replica.remove_node(node)?,
                    AdminChange::TransferLeader(node) => self.replica.transfer_leadership(node)?,
                };
                match result {
                    Ok(effects) => {
                        self.carry_out(effects);
                        let _ = reply.send(Ok(()));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
            }
            Input::Stamp { now_unix_ms, reply } => {
                let stamp = self
                    .replica
                    .stamp_unlogged(now_unix_ms)
                    .map(|(time, id)| (time.wall_ms, id))
                    .map_err(|error| error.to_string());
                let _ = reply.send(stamp);
            }
            Input::Stop => self.stop_requested = true,
            Input::Writes { .. } => unreachable!("writes are batched by the caller"),
        }
        Ok(())
    }

    fn carry_out(&mut self, effects: Effects) {
        for envelope in effects.messages {
            if let Some(trace) = &self.trace {
                trace.record(self.replica.id(), &envelope, true, unix_us_now());
            }
            let to = envelope.to;
            self.transport.send(to, &PeerFrame::Raft(envelope));
        }
        if !effects.events.is_empty() || !effects.away_changes.is_empty() {
            let chat = self.replica.chat();
            let mut feed_items = Vec::new();
            crate::node::event_feed_items(&chat, &self.hub, &effects.events, &mut feed_items);
            crate::node::away_feed_items(&chat, &effects.away_changes, &mut feed_items);
            self.hub.publish_all(feed_items);
        }
        if let Some(last) = effects.applied.last() {
            self.applied.send_replace(last.index);
            self.search.notify();
        }
        if effects.state_replaced {
            // Events between the old state and the snapshot were never published: feeds
            // must resume from their last id, which the backlog then serves.
            self.applied
                .send_replace(self.replica.status().applied_index);
            self.hub.close_all();
            self.search.notify();
        }
        for change in effects.role_changes {
            tracing::info!(role = ?change.role, term = %change.term, leader = ?change.leader, "raft role changed");
        }
        for (request, outcome) in effects.completions {
            if let Some(reply) = self.pending.remove(&request) {
                let _ = reply.send(outcome);
            }
        }
    }

    fn publish_status(&self) {
        let raft = self.replica.status();
        let log_bounds = self.replica.log_bounds();
        let changed = {
            let current = self.status.borrow();
            current.raft.role != raft.role
                || current.raft.term != raft.term
                || current.raft.leader != raft.leader
                || current.raft.commit_index != raft.commit_index
                || current.raft.applied_index != raft.applied_index
                || current.log_bounds != log_bounds
                || current.raft.configuration != raft.configuration
        };
        if changed {
            let recent_terms = recent_terms(self.replica.raft(), log_bounds);
            self.status.send_replace(DriverStatus {
                raft,
                log_bounds,
                recent_terms,
                stopped: false,
                storage_failed: false,
            });
        }
    }
}

/// Publishes `stopped` when the driver's thread ends, by return or by panic.
struct StoppedOnExit(watch::Sender<DriverStatus>);

impl Drop for StoppedOnExit {
    fn drop(&mut self) {
        self.0.send_modify(|status| status.stopped = true);
    }
}

/// The terms of the last [`LOG_TERMS_SHOWN`] entries, as runs of (first index, term).
fn recent_terms(
    raft: &raft::Node,
    (first, last): (LogIndex, LogIndex),
) -> Vec<(LogIndex, dschat_core::ids::Term)> {
    let from = first
        .0
        .max(last.0.saturating_sub(LOG_TERMS_SHOWN - 1))
        .max(1);
    let mut runs: Vec<(LogIndex, dschat_core::ids::Term)> = Vec::new();
    for index in from..=last.0 {
        if let Some(term) = raft.log().term_at(LogIndex(index)) {
            if runs.last().is_none_or(|(_, run_term)| *run_term != term) {
                runs.push((LogIndex(index), term));
            }
        }
    }
    runs
}

/// Wall-clock microseconds, for the lab's trace.
fn unix_us_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Whether `status` says this node leads.
pub fn is_leader(status: &DriverStatus) -> bool {
    status.raft.role == RoleKind::Leader && !status.stopped
}

/// Starts the driver thread.
pub fn spawn(
    driver: Driver,
    inputs: Receiver<Input>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("raft-driver".into())
        .spawn(move || driver.run(inputs))
}

/// The sending side of the driver's inputs.
pub type InputSender = SyncSender<Input>;
