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
//! - **Routing** ([`ClusterLog::propose`], [`ClusterLog::propose_in_order`]): every write gets
//!   a client session (the caller's, or a fresh one), so it can be retried safely. The node
//!   sends it to the leader it knows: to its own driver, or to another node in a
//!   [`frame::PeerFrame::ForwardWrites`]. If that node is not the leader any more, the entry lost
//!   its index to another leader's, or no answer comes in time, the node retries under the same
//!   session at whichever node leads now; the state machine answers a repeated session position
//!   with the first reply, so nothing is applied twice. The answer is given only once this node
//!   has applied the write too, so a client that reads here next sees its own write.
//! - **Order** of one client's pipelined writes: they travel as one driver input, so Raft takes
//!   all of them or none, appended in order; an entry is committed only with every entry before
//!   it. So whatever is not answered for good is a suffix, and it is sent again, in order.
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
            PeerFrame::ForwardWrites {
                writes,
                now_unix_ms,
            } => self.serve_forwarded_writes(from, writes, now_unix_ms),
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
    /// Hands a follower's writes to the driver as one input (all of them or none go into the
    /// log, in order) and sends each answer back as it comes.
    fn serve_forwarded_writes(
        &self,
        from: NodeId,
        writes: Vec<(ForwardId, ClientSession, Command)>,
        now_unix_ms: u64,
    ) {
        let Some(transport) = self.transport.get().cloned() else {
            return;
        };
        let mut ids = Vec::with_capacity(writes.len());
        let mut outcomes = Vec::with_capacity(writes.len());
        let mut inputs = Vec::with_capacity(writes.len());
        for (id, session, command) in writes {
            let (reply, outcome) = oneshot::channel();
            ids.push(id);
            outcomes.push(outcome);
            inputs.push((session, command, reply));
        }
        let input = Input::Writes {
            writes: inputs,
            now_unix_ms,
        };
        if let Err(error) = self.inputs.try_send(input) {
            let outcome = match error {
                std::sync::mpsc::TrySendError::Full(_) => {
                    ForwardOutcome::Busy("the leader's queue is full".into())
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => ForwardOutcome::NotLeader(None),
            };
            for id in ids {
                let outcome = outcome.clone();
                transport.send(from, &PeerFrame::ForwardReply { id, outcome });
            }
            return;
        }
        tokio::spawn(async move {
            for (id, outcome) in ids.into_iter().zip(outcomes) {
                let outcome = match outcome.await {
                    Ok(outcome) => forward_outcome(outcome),
                    Err(_) => ForwardOutcome::NotLeader(None),
                };
                transport.send(from, &PeerFrame::ForwardReply { id, outcome });
            }
        });
    }

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
        let mut answers = self.propose_in_order(vec![(session, command)]).await;
        answers.pop().unwrap_or(Err(ProposeError::ShuttingDown))
    }

    /// Routes several writes (one client's pipelined lines) to the leader so that they are
    /// logged in this order, and waits until each is applied here. One answer per write, in
    /// order. A write without a session gets a fresh one.
    ///
    /// They travel together (one driver input, or one [`PeerFrame::ForwardWrites`]), so the
    /// leader takes all of them or none, appended in order, and commits a prefix of them. What
    /// is not answered for good (the leader changed, the entries were dropped, a reply was
    /// lost) is sent again, in order, under the same sessions; one already applied answers from
    /// its session without applying again.
    pub async fn propose_in_order(
        &self,
        writes: Vec<(Option<ClientSession>, Command)>,
    ) -> Vec<Result<Result<Response, ChatError>, ProposeError>> {
        let deadline = Instant::now() + self.request_timeout();
        let writes: Vec<(ClientSession, Command)> = writes
            .into_iter()
            .map(|(session, command)| (session.unwrap_or_else(|| self.fresh_session()), command))
            .collect();
        let mut answers: Vec<Option<Result<ForwardOutcome, ProposeError>>> =
            (0..writes.len()).map(|_| None).collect();
        // Refused as busy (queues full, a transfer under way) at the last attempt.
        let mut busy = false;
        let mut status = self.status.clone();
        while let Some(first_open) = answers.iter().position(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let current = status.borrow_and_update().clone();
            if left.is_zero() || current.stopped {
                let error = if current.stopped {
                    current.stopped_error()
                } else if busy {
                    // Busy to the end: overloaded, not cut off.
                    ProposeError::Overloaded
                } else {
                    ProposeError::NoQuorum
                };
                for answer in &mut answers[first_open..] {
                    answer.get_or_insert(Err(error.clone()));
                }
                break;
            }
            // Everything from the first open write on goes again, in order: the ones after
            // it that were answered meanwhile answer the same from their sessions.
            let batch = &writes[first_open..];
            let attempt = match current.raft.leader {
                Some(leader) if leader == self.me => self.attempt_writes_here(batch, left).await,
                Some(leader) => self.attempt_writes_forward(leader, batch, left).await,
                None => batch.iter().map(|_| Ok(None)).collect(),
            };
            busy = false;
            let mut retry = false;
            for (answer, outcome) in answers[first_open..].iter_mut().zip(attempt) {
                match outcome {
                    Ok(Some(ForwardOutcome::Busy(_))) => {
                        busy = true;
                        retry = true;
                        *answer = None;
                    }
                    Ok(Some(ForwardOutcome::NotLeader(_) | ForwardOutcome::Retry)) | Ok(None) => {
                        retry = true;
                        *answer = None;
                    }
                    Ok(Some(outcome)) if !retry => *answer = Some(Ok(outcome)),
                    // After an open write, an answer is not final: the write goes again with
                    // the open one, behind it.
                    Ok(Some(_)) => *answer = None,
                    Err(error) => *answer = Some(Err(error)),
                }
            }
            if retry {
                let wait = LEADER_WAIT.min(deadline.saturating_duration_since(Instant::now()));
                let _ = tokio::time::timeout(wait, status.changed()).await;
            }
        }
        // Answer only what this node has applied too, within one deadline for all.
        let apply_deadline = deadline.max(Instant::now() + MIN_APPLY_WAIT);
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            // Every write has its answer here: the loop ends only when none is open.
            results.push(match answer.unwrap_or(Err(ProposeError::NoQuorum)) {
                Ok(ForwardOutcome::Applied { index, reply }) => {
                    let left = apply_deadline.saturating_duration_since(Instant::now());
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

    /// One attempt of [`ClusterLog::propose_in_order`] at this node's driver, as one input.
    async fn attempt_writes_here(
        &self,
        writes: &[(ClientSession, Command)],
        left: Duration,
    ) -> Vec<Result<Option<ForwardOutcome>, ProposeError>> {
        let mut outcomes = Vec::with_capacity(writes.len());
        let mut inputs = Vec::with_capacity(writes.len());
        for (session, command) in writes {
            let (reply, outcome) = oneshot::channel();
            outcomes.push(outcome);
            inputs.push((*session, command.clone(), reply));
        }
        let input = Input::Writes {
            writes: inputs,
            now_unix_ms: self.now_unix_ms(),
        };
        let refused = match self.inputs.try_send(input) {
            Ok(()) => None,
            Err(std::sync::mpsc::TrySendError::Full(_)) => Some(ProposeError::Overloaded),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Some(ProposeError::ShuttingDown),
        };
        if let Some(error) = refused {
            return writes.iter().map(|_| Err(error.clone())).collect();
        }
        // Stop waiting when this node stops leading: its entries may never be committed, and
        // the requests (under their sessions) are safe to send to the new leader.
        let mut status = self.status.clone();
        let me = self.me;
        let until = tokio::time::Instant::now() + left;
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let deposed = status.wait_for(|s| s.raft.leader != Some(me) || s.stopped);
            results.push(Ok(tokio::select! {
                outcome = tokio::time::timeout_at(until, outcome) => match outcome {
                    Ok(Ok(outcome)) => Some(forward_outcome(outcome)),
                    // The driver dropped the request (it stopped) or time ran out.
                    Ok(Err(_)) | Err(_) => None,
                },
                _ = deposed => None,
            }));
        }
        results
    }

    /// One attempt of [`ClusterLog::propose_in_order`] forwarded to `leader`, in one frame.
    async fn attempt_writes_forward(
        &self,
        leader: NodeId,
        writes: &[(ClientSession, Command)],
        left: Duration,
    ) -> Vec<Result<Option<ForwardOutcome>, ProposeError>> {
        let mut answers = Vec::with_capacity(writes.len());
        let mut frame_writes = Vec::with_capacity(writes.len());
        {
            let mut waiting = self.forwards.waiting.lock();
            if waiting.len() + writes.len() > MAX_PENDING_FORWARDS {
                return writes
                    .iter()
                    .map(|_| Err(ProposeError::Overloaded))
                    .collect();
            }
            for (session, command) in writes {
                let id = self.forwards.ids.next();
                let (reply, answer) = oneshot::channel();
                waiting.insert((leader, id), reply);
                frame_writes.push((id, *session, command.clone()));
                answers.push((id, answer));
            }
        }
        self.transport.send(
            leader,
            &PeerFrame::ForwardWrites {
                writes: frame_writes,
                now_unix_ms: self.now_unix_ms(),
            },
        );
        // Stop waiting as soon as another node is known to lead: the old leader may be dead,
        // and the requests (under their sessions) are safe to send again at once.
        let mut status = self.status.clone();
        let until = tokio::time::Instant::now() + left.min(FORWARD_TIMEOUT);
        let mut results = Vec::with_capacity(answers.len());
        for (id, answer) in answers {
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
        let outcome = self.route_read().await?;
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

    /// Asks whichever node leads for a read index, retrying until it is answered with
    /// something final or the deadline passes.
    async fn route_read(&self) -> Result<ForwardOutcome, ProposeError> {
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
                Some(leader) if leader == self.me => self.attempt_read_here(left).await?,
                Some(leader) => self.attempt_read_forward(leader, left).await?,
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

    /// One read-index attempt at this node's driver; `None`: no answer (try again).
    async fn attempt_read_here(
        &self,
        left: Duration,
    ) -> Result<Option<ForwardOutcome>, ProposeError> {
        let (reply, outcome) = oneshot::channel();
        match self.inputs.try_send(Input::Read { reply }) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(ProposeError::Overloaded),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(ProposeError::ShuttingDown)
            }
        }
        // Stop waiting when this node stops leading: ask the new leader.
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

    /// One read-index request forwarded to `leader`; `None`: no answer in time (try again).
    async fn attempt_read_forward(
        &self,
        leader: NodeId,
        left: Duration,
    ) -> Result<Option<ForwardOutcome>, ProposeError> {
        let id = self.forwards.ids.next();
        let frame = PeerFrame::ForwardRead { id };
        let (reply, answer) = oneshot::channel();
        {
            let mut waiting = self.forwards.waiting.lock();
            if waiting.len() >= MAX_PENDING_FORWARDS {
                return Err(ProposeError::Overloaded);
            }
            waiting.insert((leader, id), reply);
        }
        self.transport.send(leader, &frame);
        // Stop waiting as soon as another node is known to lead: the old leader may be dead.
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
