//! # The cluster runtime: a node of a Raft cluster, and client routing
//!
//! **The problem.** A dschat cluster keeps one chat state on several machines and keeps
//! serving while any minority of them is down. Every node must accept every kind of client,
//! yet only the Raft leader can order writes, and a node that is cut off from the majority must
//! say so quickly instead of hanging or, worse, answering from a stale state.
//!
//! **The guarantee.** A write acknowledged by any node is committed (stored durably on a
//! majority) and applied exactly once, even if the leader changes while it is in flight. A
//! read served through [`ClusterLog::read_barrier`] reflects every write acknowledged before
//! it began (linearizable, by read index). A node that cannot reach a quorum answers
//! [`crate::node::ProposeError::NoQuorum`] within [`ClusterConfig::request_timeout_ms`].
//!
//! **How it works.**
//! - [`driver::Driver`] (a thread) owns the [`dschat_replica::Replica`]: the Raft core, the
//!   chat state machine and the write-ahead log. [`transport::Transport`] carries Raft
//!   messages and forwarded requests between nodes over one TCP connection per pair.
//! - **Routing** ([`ClusterLog::propose`]): every write gets a client session (the caller's,
//!   or a fresh one), so it can be retried safely. The node sends it to the leader it knows: to
//!   its own driver, or to another node as a [`frame::PeerFrame::ForwardWrite`]. If that node is
//!   not the leader any more, the entry lost its index to another leader's, or no answer comes
//!   in time, the node retries under the same session at whichever node leads now; the state
//!   machine answers a repeated session position with the first reply, so nothing is applied
//!   twice. The answer is given only once this node has applied the write too, so a client that
//!   reads here next sees its own write.
//! - **Reads** ([`ClusterLog::read_barrier`]): the leader confirms it still leads with a round
//!   of heartbeats and returns its commit index (read index, Raft thesis §6.4); a follower asks
//!   the leader for that index and waits until it has applied that far. Then the front end
//!   reads its local state.
//! - **Feeds** are served by every node from its own applied state (the driver publishes the
//!   events it applies), so fan-out happens on every node, not only the leader.
//!
//! **Limitations.** A request whose every retry fails before the deadline is reported as
//! `NoQuorum` even if the last attempt did commit: the client's session makes a retry safe and
//! tells the truth. Membership is changed one node at a time (no joint consensus).

pub mod driver;
pub mod frame;
mod runtime;
pub mod trace;
pub mod transport;

use crate::node::ProposeError;
use driver::{AdminChange, DriverStatus, Input, InputSender};
use dschat_core::chat::{ChatError, ClientSession, Command, Response};
use dschat_core::ids::{ClientId, LogIndex, NodeId, SequenceNumber};
use dschat_replica::Outcome;
use frame::{ForwardId, ForwardOutcome, PeerFrame};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use transport::{FrameHandler, Transport};

pub use runtime::Cluster;

/// How a node takes part in a cluster. Absent from the configuration: the node runs alone on
/// its local log (the one-node default).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The cluster's name; a node of another cluster is refused at the handshake.
    pub cluster_id: String,
    /// Where this node accepts connections from its peers.
    pub peer_addr: SocketAddr,
    /// The peers' addresses by node id. For a new cluster, the initial voters (this node
    /// included); with `join`, any existing members to contact.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// Start empty and wait to be added to an existing cluster (`dschat cluster add`).
    pub join: bool,
    /// Length of one Raft tick, in milliseconds.
    pub tick_ms: u64,
    /// Shortest election timeout, in ticks (each timeout is drawn from `[min, 2 * min)`).
    pub election_timeout_ticks: u64,
    /// Heartbeat interval, in ticks.
    pub heartbeat_interval_ticks: u64,
    /// How long a client request may take, retries included, before the node answers "no
    /// quorum".
    pub request_timeout_ms: u64,
    /// Take a snapshot (and compact the log) after this many applied entries.
    pub snapshot_every_entries: u64,
    /// Lab mode: the fault controls (cut links, delay, loss, clock skew) are enabled on the
    /// admin API. Never on in production.
    pub lab: bool,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            cluster_id: "dschat".into(),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], 7170)),
            peers: BTreeMap::new(),
            join: false,
            tick_ms: 10,
            election_timeout_ticks: 30,
            heartbeat_interval_ticks: 5,
            request_timeout_ms: 4_000,
            snapshot_every_entries: 50_000,
            lab: false,
        }
    }
}

/// How long one forwarded request may go unanswered before it is retried.
const FORWARD_TIMEOUT: Duration = Duration::from_millis(1_000);
/// How long to wait for news of a leader before asking again.
const LEADER_WAIT: Duration = Duration::from_millis(50);
/// The least time a node waits to apply a write the leader has applied, even when the
/// request's deadline has passed meanwhile.
const MIN_APPLY_WAIT: Duration = Duration::from_millis(200);
/// Bound: forwarded requests awaiting an answer; past it new ones are refused as overloaded.
const MAX_PENDING_FORWARDS: usize = 65_536;
/// Bound: inputs waiting for the driver.
pub const DRIVER_QUEUE_INPUTS: usize = 65_536;

/// The cluster side of a node: what [`crate::node::Node`] calls in cluster mode.
pub struct ClusterLog {
    me: NodeId,
    config: ClusterConfig,
    inputs: InputSender,
    status: watch::Receiver<DriverStatus>,
    applied: watch::Receiver<LogIndex>,
    transport: Transport,
    forwards: Arc<Forwards>,
    /// Fresh client sessions: a random id per request, drawn once per node start as a base.
    session_base: u64,
    next_session: std::sync::atomic::AtomicU64,
    /// Lab: the message trace.
    trace: Option<Arc<trace::LabTrace>>,
}

/// Forwarded requests awaiting their answer.
#[derive(Default)]
pub struct Forwards {
    ids: transport::ForwardIds,
    /// By the node asked and the id: only that node's reply can answer it.
    waiting: Mutex<HashMap<(NodeId, ForwardId), oneshot::Sender<ForwardOutcome>>>,
}

/// Receives what peers send and routes it: Raft messages to the driver, forwarded requests
/// to the driver with a task that carries the answer back, answers to their waiters.
pub struct ClusterHandler {
    inputs: InputSender,
    forwards: Arc<Forwards>,
    transport: OnceLock<Transport>,
}

impl FrameHandler for ClusterHandler {
    fn handle(&self, from: NodeId, frame: PeerFrame) {
        match frame {
            PeerFrame::Raft(envelope) => {
                // A full queue drops the message, as a lossy network would.
                let _ = self.inputs.try_send(Input::Peer(envelope));
            }
            PeerFrame::ForwardWrite {
                id,
                session,
                command,
                now_unix_ms,
            } => {
                let (reply, outcome) = oneshot::channel();
                let input = Input::Write {
                    session,
                    command,
                    now_unix_ms,
                    reply,
                };
                self.serve_forward(from, id, input, outcome);
            }
            PeerFrame::ForwardWrites {
                writes,
                now_unix_ms,
            } => {
                // Queued for the driver one after another, so proposed in this order.
                for (id, session, command) in writes {
                    let (reply, outcome) = oneshot::channel();
                    let input = Input::Write {
                        session,
                        command,
                        now_unix_ms,
                        reply,
                    };
                    self.serve_forward(from, id, input, outcome);
                }
            }
            PeerFrame::ForwardRead { id } => {
                let (reply, outcome) = oneshot::channel();
                self.serve_forward(from, id, Input::Read { reply }, outcome);
            }
            PeerFrame::ForwardReply { id, outcome } => {
                if let Some(waiter) = self.forwards.waiting.lock().remove(&(from, id)) {
                    let _ = waiter.send(outcome);
                }
            }
            PeerFrame::Hello { .. }
            | PeerFrame::Refused { .. }
            | PeerFrame::ClockProbe { .. }
            | PeerFrame::ClockReply { .. } => {}
        }
    }
}

impl ClusterHandler {
    fn serve_forward(
        &self,
        from: NodeId,
        id: ForwardId,
        input: Input,
        outcome: oneshot::Receiver<Outcome>,
    ) {
        let Some(transport) = self.transport.get().cloned() else {
            return;
        };
        if let Err(error) = self.inputs.try_send(input) {
            let outcome = match error {
                std::sync::mpsc::TrySendError::Full(_) => {
                    ForwardOutcome::Busy("the leader's queue is full".into())
                }
                // The driver stopped: this node leads no more.
                std::sync::mpsc::TrySendError::Disconnected(_) => ForwardOutcome::NotLeader(None),
            };
            transport.send(from, &PeerFrame::ForwardReply { id, outcome });
            return;
        }
        tokio::spawn(async move {
            let outcome = match outcome.await {
                Ok(outcome) => forward_outcome(outcome),
                // The driver stopped: let the forwarder retry elsewhere.
                Err(_) => ForwardOutcome::NotLeader(None),
            };
            transport.send(from, &PeerFrame::ForwardReply { id, outcome });
        });
    }
}

fn forward_outcome(outcome: Outcome) -> ForwardOutcome {
    match outcome {
        Outcome::Applied { index, reply } => ForwardOutcome::Applied { index, reply },
        Outcome::ReadReady { index } => ForwardOutcome::ReadIndex(index),
        Outcome::NotLeader { leader_hint } => ForwardOutcome::NotLeader(leader_hint),
        Outcome::Dropped | Outcome::Indefinite => ForwardOutcome::Retry,
        Outcome::Busy(reason) => ForwardOutcome::Busy(reason),
    }
}

/// A request that is routed to the leader.
enum Routed {
    /// A write under a client session.
    Write {
        session: ClientSession,
        command: Command,
    },
    /// A read index request.
    Read,
}

impl ClusterLog {
    /// Wires a started driver and transport together.
    pub(crate) fn new(
        me: NodeId,
        config: ClusterConfig,
        inputs: InputSender,
        status: watch::Receiver<DriverStatus>,
        applied: watch::Receiver<LogIndex>,
        transport: Transport,
        forwards: Arc<Forwards>,
    ) -> ClusterLog {
        ClusterLog {
            me,
            config,
            inputs,
            status,
            applied,
            transport,
            forwards,
            session_base: rand::random::<u64>() | (1 << 63),
            next_session: std::sync::atomic::AtomicU64::new(0),
            trace: None,
        }
    }

    /// Lab mode: the message trace.
    pub fn trace(&self) -> Option<&trace::LabTrace> {
        self.trace.as_deref()
    }

    /// The handler the transport must be started with; call [`ClusterHandler::bind`] once the
    /// transport exists.
    pub(crate) fn handler(inputs: InputSender, forwards: Arc<Forwards>) -> Arc<ClusterHandler> {
        Arc::new(ClusterHandler {
            inputs,
            forwards,
            transport: OnceLock::new(),
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The latest status of the driver.
    pub fn status(&self) -> DriverStatus {
        self.status.borrow().clone()
    }

    /// Waits (at most `limit`) until the published status satisfies `condition`; whether it
    /// did. Status is republished at the end of each driver round.
    pub async fn wait_status(
        &self,
        limit: Duration,
        condition: impl FnMut(&DriverStatus) -> bool,
    ) -> bool {
        let mut status = self.status.clone();
        tokio::time::timeout(limit, status.wait_for(condition))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// The transport (peer reports, lab faults).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The lab's clock skew of this node, in milliseconds.
    pub fn clock_skew_ms(&self) -> i64 {
        self.transport.clock_skew_ms()
    }

    /// Sets the lab's clock skew of this node (write stamps and clock probes alike).
    pub fn set_clock_skew_ms(&self, skew: i64) {
        self.transport.set_clock_skew_ms(skew);
    }

    fn now_unix_ms(&self) -> u64 {
        self.transport.now_us() / 1_000
    }

    fn fresh_session(&self) -> ClientSession {
        let number = self.next_session.fetch_add(1, Ordering::Relaxed);
        ClientSession {
            client: ClientId(self.session_base.wrapping_add(number)),
            sequence: SequenceNumber(1),
        }
    }

    /// Routes a write to the leader and waits until it is applied here. See the module
    /// documentation.
    pub async fn propose(
        &self,
        session: Option<ClientSession>,
        command: Command,
    ) -> Result<Result<Response, ChatError>, ProposeError> {
        let session = session.unwrap_or_else(|| self.fresh_session());
        let deadline = Instant::now() + self.request_timeout();
        let outcome = self.route(&Routed::Write { session, command }).await?;
        match outcome {
            ForwardOutcome::Applied { index, reply } => {
                // The answer is built from this node's state, so it must have applied the
                // write. If it cannot catch up in time, the client is told to retry; under
                // its session the retry gets the same reply and applies nothing again.
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(MIN_APPLY_WAIT);
                if self.wait_applied(index, left).await {
                    Ok(reply)
                } else {
                    Err(ProposeError::NoQuorum)
                }
            }
            _ => Err(ProposeError::NoQuorum),
        }
    }

    /// Routes several writes to the leader so that they are logged in this order (one
    /// client's pipelined lines), and waits until each is applied here. One answer per
    /// write, in order.
    ///
    /// They travel together (one driver queue, or one [`PeerFrame::ForwardWrites`]), so
    /// the leader appends them in order; an entry is committed only with every entry before
    /// it. What is not answered for good (the leader changed, a reply was lost) is sent again,
    /// in order, under the same sessions: the ones already applied answer from their
    /// sessions without applying again, so nothing overtakes an earlier write.
    pub async fn propose_in_order(
        &self,
        commands: Vec<Command>,
    ) -> Vec<Result<Result<Response, ChatError>, ProposeError>> {
        let deadline = Instant::now() + self.request_timeout();
        let writes: Vec<(ClientSession, Command)> = commands
            .into_iter()
            .map(|command| (self.fresh_session(), command))
            .collect();
        let mut answers: Vec<Option<Result<ForwardOutcome, ProposeError>>> =
            (0..writes.len()).map(|_| None).collect();
        let mut status = self.status.clone();
        loop {
            let open: Vec<usize> = (0..writes.len())
                .filter(|&i| answers[i].is_none())
                .collect();
            if open.is_empty() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let current = status.borrow_and_update().clone();
            if left.is_zero() || current.stopped {
                let error = if current.stopped {
                    current.stopped_error()
                } else {
                    ProposeError::NoQuorum
                };
                for i in open {
                    answers[i] = Some(Err(error.clone()));
                }
                break;
            }
            let batch: Vec<&(ClientSession, Command)> = open.iter().map(|&i| &writes[i]).collect();
            let attempt = match current.raft.leader {
                Some(leader) if leader == self.me => self.attempt_here_in_order(&batch, left).await,
                Some(leader) => self.attempt_forward_in_order(leader, &batch, left).await,
                None => open.iter().map(|_| Ok(None)).collect(),
            };
            let mut retry = false;
            for (i, outcome) in open.into_iter().zip(attempt) {
                match outcome {
                    Ok(Some(
                        ForwardOutcome::Busy(_)
                        | ForwardOutcome::NotLeader(_)
                        | ForwardOutcome::Retry,
                    ))
                    | Ok(None) => retry = true,
                    Ok(Some(outcome)) => answers[i] = Some(Ok(outcome)),
                    Err(error) => answers[i] = Some(Err(error)),
                }
            }
            if retry {
                let wait = LEADER_WAIT.min(deadline.saturating_duration_since(Instant::now()));
                let _ = tokio::time::timeout(wait, status.changed()).await;
            }
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            // Every write has its answer here: the loop ends only when none is open.
            results.push(match answer.unwrap_or(Err(ProposeError::NoQuorum)) {
                Ok(ForwardOutcome::Applied { index, reply }) => {
                    let left = deadline
                        .saturating_duration_since(Instant::now())
                        .max(MIN_APPLY_WAIT);
                    if self.wait_applied(index, left).await {
                        Ok(reply)
                    } else {
                        Err(ProposeError::NoQuorum)
                    }
                }
                Ok(_) => Err(ProposeError::NoQuorum),
                Err(error) => Err(error),
            });
        }
        results
    }

    /// One attempt of [`ClusterLog::propose_in_order`] at this node's driver.
    async fn attempt_here_in_order(
        &self,
        writes: &[&(ClientSession, Command)],
        left: Duration,
    ) -> Vec<Result<Option<ForwardOutcome>, ProposeError>> {
        let mut waiting = Vec::with_capacity(writes.len());
        for (session, command) in writes.iter().copied() {
            let (reply, outcome) = oneshot::channel();
            let input = Input::Write {
                session: *session,
                command: command.clone(),
                now_unix_ms: self.now_unix_ms(),
                reply,
            };
            waiting.push(match self.inputs.try_send(input) {
                Ok(()) => Ok(outcome),
                Err(std::sync::mpsc::TrySendError::Full(_)) => Err(ProposeError::Overloaded),
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    Err(ProposeError::ShuttingDown)
                }
            });
        }
        let mut status = self.status.clone();
        let me = self.me;
        let until = tokio::time::Instant::now() + left;
        let mut results = Vec::with_capacity(waiting.len());
        for waiter in waiting {
            let Ok(outcome) = waiter else {
                results.push(waiter.map(|_| None));
                continue;
            };
            let deposed = status.wait_for(|s| s.raft.leader != Some(me) || s.stopped);
            results.push(tokio::select! {
                outcome = tokio::time::timeout_at(until, outcome) => match outcome {
                    Ok(Ok(outcome)) => Ok(Some(forward_outcome(outcome))),
                    Ok(Err(_)) | Err(_) => Ok(None),
                },
                _ = deposed => Ok(None),
            });
        }
        results
    }

    /// One attempt of [`ClusterLog::propose_in_order`] forwarded to `leader`, in one frame.
    async fn attempt_forward_in_order(
        &self,
        leader: NodeId,
        writes: &[&(ClientSession, Command)],
        left: Duration,
    ) -> Vec<Result<Option<ForwardOutcome>, ProposeError>> {
        let mut answers = Vec::with_capacity(writes.len());
        let mut frame_writes = Vec::with_capacity(writes.len());
        {
            let mut waiting = self.forwards.waiting.lock();
            for (session, command) in writes.iter().copied() {
                if waiting.len() >= MAX_PENDING_FORWARDS {
                    answers.push(Err(ProposeError::Overloaded));
                    continue;
                }
                let id = self.forwards.ids.next();
                let (reply, answer) = oneshot::channel();
                waiting.insert((leader, id), reply);
                frame_writes.push((id, *session, command.clone()));
                answers.push(Ok((id, answer)));
            }
        }
        self.transport.send(
            leader,
            &PeerFrame::ForwardWrites {
                writes: frame_writes,
                now_unix_ms: self.now_unix_ms(),
            },
        );
        let mut status = self.status.clone();
        let until = tokio::time::Instant::now() + left.min(FORWARD_TIMEOUT);
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            let (id, answer) = match answer {
                Ok(waiter) => waiter,
                Err(error) => {
                    results.push(Err(error));
                    continue;
                }
            };
            let leader_changed = status.wait_for(|s| s.raft.leader.is_some_and(|l| l != leader));
            let result = tokio::select! {
                answer = tokio::time::timeout_at(until, answer) => answer.ok().and_then(Result::ok),
                _ = leader_changed => None,
            };
            self.forwards.waiting.lock().remove(&(leader, id));
            results.push(Ok(result));
        }
        results
    }

    /// Waits until this node's state reflects every write acknowledged before the call
    /// (read index). Then the caller reads the local state.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        let deadline = Instant::now() + self.request_timeout();
        let outcome = self.route(&Routed::Read).await?;
        match outcome {
            ForwardOutcome::ReadIndex(index) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if self.wait_applied(index, left).await {
                    Ok(())
                } else {
                    Err(ProposeError::NoQuorum)
                }
            }
            _ => Err(ProposeError::NoQuorum),
        }
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms.max(1))
    }

    /// Sends a request to whichever node leads, retrying until it is answered with something
    /// final or the deadline passes.
    async fn route(&self, routed: &Routed) -> Result<ForwardOutcome, ProposeError> {
        let deadline = Instant::now() + self.request_timeout();
        let mut status = self.status.clone();
        let mut busy = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Refused as busy to the end (queues full): overloaded, not cut off.
                return Err(if busy {
                    ProposeError::Overloaded
                } else {
                    ProposeError::NoQuorum
                });
            }
            let current = status.borrow_and_update().clone();
            if current.stopped {
                return Err(current.stopped_error());
            }
            let attempt = match current.raft.leader {
                Some(leader) if leader == self.me => self.attempt_here(routed, left).await?,
                Some(leader) => self.attempt_forward(leader, routed, left).await?,
                None => None,
            };
            busy = matches!(attempt, Some(ForwardOutcome::Busy(_)));
            match attempt {
                // Busy: a full queue, or a leadership transfer under way (a new leader comes
                // within an election timeout). Either way, try again until the deadline.
                Some(
                    ForwardOutcome::Busy(_) | ForwardOutcome::NotLeader(_) | ForwardOutcome::Retry,
                )
                | None => {
                    // Wait for news of a (new) leader, briefly, then try again.
                    let wait = LEADER_WAIT.min(deadline.saturating_duration_since(Instant::now()));
                    let _ = tokio::time::timeout(wait, status.changed()).await;
                }
                Some(outcome) => return Ok(outcome),
            }
        }
    }

    /// One attempt at this node's driver; `None`: no answer (try again).
    async fn attempt_here(
        &self,
        routed: &Routed,
        left: Duration,
    ) -> Result<Option<ForwardOutcome>, ProposeError> {
        let (reply, outcome) = oneshot::channel();
        let input = match routed {
            Routed::Write { session, command } => Input::Write {
                session: *session,
                command: command.clone(),
                now_unix_ms: self.now_unix_ms(),
                reply,
            },
            Routed::Read => Input::Read { reply },
        };
        match self.inputs.try_send(input) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(ProposeError::Overloaded),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(ProposeError::ShuttingDown)
            }
        }
        // Stop waiting when this node stops leading: its entry may never be committed, and
        // the request (under its session) is safe to send to the new leader.
        let mut status = self.status.clone();
        let me = self.me;
        let deposed = status.wait_for(|s| s.raft.leader != Some(me) || s.stopped);
        tokio::select! {
            outcome = tokio::time::timeout(left, outcome) => match outcome {
                Ok(Ok(outcome)) => Ok(Some(forward_outcome(outcome))),
                // The driver dropped the request (it stopped) or time ran out.
                Ok(Err(_)) | Err(_) => Ok(None),
            },
            _ = deposed => Ok(None),
        }
    }

    /// One attempt forwarded to `leader`; `None`: no answer in time (try again).
    async fn attempt_forward(
        &self,
        leader: NodeId,
        routed: &Routed,
        left: Duration,
    ) -> Result<Option<ForwardOutcome>, ProposeError> {
        let id = self.forwards.ids.next();
        let frame = match routed {
            Routed::Write { session, command } => PeerFrame::ForwardWrite {
                id,
                session: *session,
                command: command.clone(),
                now_unix_ms: self.now_unix_ms(),
            },
            Routed::Read => PeerFrame::ForwardRead { id },
        };
        let (reply, answer) = oneshot::channel();
        {
            let mut waiting = self.forwards.waiting.lock();
            if waiting.len() >= MAX_PENDING_FORWARDS {
                return Err(ProposeError::Overloaded);
            }
            waiting.insert((leader, id), reply);
        }
        self.transport.send(leader, &frame);
        // Stop waiting as soon as another node is known to lead: the old leader may be dead,
        // and the request (under its session) is safe to send again at once.
        let mut status = self.status.clone();
        let leader_changed = status.wait_for(|s| s.raft.leader.is_some_and(|l| l != leader));
        let result = tokio::select! {
            answer = tokio::time::timeout(left.min(FORWARD_TIMEOUT), answer) => {
                answer.ok().and_then(Result::ok)
            }
            _ = leader_changed => None,
        };
        self.forwards.waiting.lock().remove(&(leader, id));
        Ok(result)
    }

    /// Waits until this node has applied `index`, at most `limit`. Whether it has.
    async fn wait_applied(&self, index: LogIndex, limit: Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(limit, applied.wait_for(|applied| *applied >= index))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Asks the leader to change the membership or hand over leadership. Only the leader can;
    /// elsewhere the answer names the leader.
    pub async fn admin(&self, change: AdminChange) -> Result<(), String> {
        let status = self.status();
        if status.raft.leader != Some(self.me) {
            return Err(match status.raft.leader {
                Some(leader) => format!(
                    "node {} is not the leader; ask node {leader}{}",
                    self.me,
                    self.transport
                        .http_addr(leader)
                        .map(|a| format!(" at http://{a}"))
                        .unwrap_or_default()
                ),
                None => "no leader is known right now; try again shortly".into(),
            });
        }
        let (reply, answer) = oneshot::channel();
        self.inputs
            .try_send(Input::Admin { change, reply })
            .map_err(|_| "the node is overloaded".to_string())?;
        answer.await.map_err(|_| "the node stopped".to_string())?
    }

    /// A stamp for an unlogged message. Blocks: call it from a blocking context.
    pub fn stamp_unlogged(&self) -> Result<(u64, dschat_core::ids::MessageId), ProposeError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.inputs
            .try_send(Input::Stamp {
                now_unix_ms: self.now_unix_ms(),
                reply,
            })
            .map_err(|_| ProposeError::Overloaded)?;
        answer
            .recv_timeout(self.request_timeout())
            .map_err(|_| ProposeError::ShuttingDown)?
            .map_err(ProposeError::Storage)
    }
}

impl ClusterHandler {
    /// Gives the handler the transport it answers through.
    pub fn bind(&self, transport: Transport) {
        let _ = self.transport.set(transport);
    }
}
