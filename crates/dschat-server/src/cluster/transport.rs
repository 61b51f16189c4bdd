//! The peer transport: one TCP connection per pair of nodes, reconnected with backoff.
//!
//! **The problem.** Raft needs best-effort, unordered-tolerant message delivery between every
//! pair of nodes that survives peers crashing, restarting and changing connections. It does
//! not need reliability: a lost message is repaired by the next heartbeat or retry. What it
//! must never do is block the node that sends, or grow without bound when a peer is slow.
//!
//! **How it works.** Every node listens on its peer address and dials every peer whose
//! address it knows, whenever it has no connection to it, backing off from
//! [`DIAL_BACKOFF_MIN`] to [`DIAL_BACKOFF_MAX`]. Both sides open with [`frame::MAGIC`] and a
//! `Hello` (cluster id, protocol version, node id, addresses), and refuse a peer of another
//! cluster or version with a clear log line. When both nodes dial each other at once, both
//! keep the connection dialled by the lower node id ([`preferred_dialer`]), so they settle on
//! **one connection per pair**, used in both directions. A node that dials in also teaches
//! the other its address, which is how a joining node becomes reachable.
//!
//! Sending ([`Transport::send`]) encodes the frame and puts it in the connection's bounded
//! queue ([`PEER_QUEUE_FRAMES`]); when the queue is full or there is no connection, the frame
//! is dropped and counted, as a lossy network would. A writer task drains the queue in
//! batches with one flush per batch. A reader task hands each received frame to the
//! [`FrameHandler`], which must not block.
//!
//! **Lab faults.** In lab mode the dashboard can cut a link, delay it or make it lossy
//! ([`LinkFault`]); the fault is applied to frames this node sends to that peer, so a cut in
//! both directions is set on both nodes and a one-way partition on one.

use super::frame::{self, ForwardId, PeerFrame, PROTOCOL_VERSION};
use dschat_core::clock::sync::{self, OffsetEstimator};
use dschat_core::ids::NodeId;
use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

/// Bound: frames waiting to be written to one peer; past it frames are dropped.
pub const PEER_QUEUE_FRAMES: usize = 8_192;
/// First wait before redialling a peer that could not be reached.
pub const DIAL_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait between two dials of an unreachable peer.
pub const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a connection may take to exchange hellos.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// A connection silent this long is replaced when the peer dials again (it may be half-open).
pub const SILENT_LINK_REPLACED_AFTER: Duration = Duration::from_secs(2);
/// Bound: frames written to a socket before one flush.
const MAX_FRAMES_PER_FLUSH: usize = 256;

/// Who receives what the peers send. Called on the transport's tasks: must not block.
pub trait FrameHandler: Send + Sync + 'static {
    /// One frame from `from` (never a handshake frame).
    fn handle(&self, from: NodeId, frame: PeerFrame);
}

/// What a node tells its peers about itself, and whom it expects.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This node.
    pub node: NodeId,
    /// The cluster's name; peers of another cluster are refused.
    pub cluster_id: String,
    /// Where this node accepts peer connections (announced to peers).
    pub peer_addr: SocketAddr,
    /// Where this node serves HTTP (announced to peers).
    pub http_addr: SocketAddr,
    /// The peers to dial from the start, by id.
    pub peers: BTreeMap<NodeId, SocketAddr>,
}

/// A lab fault on the link from this node to one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LinkFault {
    /// Drop every frame to this peer.
    pub cut: bool,
    /// Hold every frame this long before sending it.
    pub delay_ms: u64,
    /// Drop each frame with this probability, in percent (0–100).
    pub loss_percent: u8,
}

/// What the transport knows of one peer, for status pages and the lab.
#[derive(Clone, Debug, Serialize)]
pub struct PeerReport {
    /// The peer.
    pub node: NodeId,
    /// Its peer address, if known.
    pub peer_addr: Option<SocketAddr>,
    /// Its HTTP address, once it has said it.
    pub http_addr: Option<SocketAddr>,
    /// Whether a connection is up.
    pub connected: bool,
    /// Which node dialled the connection that is up (both sides settle on the lower id's).
    pub dialled_by: Option<NodeId>,
    /// Milliseconds since a frame last arrived from it.
    pub last_heard_ms_ago: Option<u64>,
    /// Frames to it dropped because the queue was full or no connection was up.
    pub dropped_frames: u64,
    /// The lab fault on the link to it.
    pub fault: LinkFault,
    /// How far its clock is ahead of this node's, in microseconds (NTP-style estimate).
    pub clock_offset_us: Option<i64>,
    /// The true offset is within `clock_offset_us ±` this.
    pub clock_error_bound_us: Option<u64>,
}

/// The transport's handle. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    config: TransportConfig,
    handler: Arc<dyn FrameHandler>,
    peers: Mutex<BTreeMap<NodeId, PeerState>>,
    next_connection: AtomicU64,
    shutdown: watch::Receiver<bool>,
    /// The runtime the transport's tasks run on: [`Transport::send`] is called from the
    /// driver's plain thread, where `tokio::spawn` alone would panic.
    runtime: tokio::runtime::Handle,
    /// Lab: milliseconds added to this node's wall clock.
    clock_skew_ms: AtomicI64,
}

#[derive(Default)]
struct PeerState {
    peer_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    link: Option<Link>,
    dialing: bool,
    last_heard: Option<Instant>,
    dropped_frames: u64,
    fault: LinkFault,
    /// Woken when the link goes down, so the dialer tries again at once.
    link_lost: Arc<Notify>,
    /// The estimate of its clock's offset from ours.
    clock: OffsetEstimator,
}

struct Link {
    connection: u64,
    dialer: NodeId,
    queue: mpsc::Sender<Vec<u8>>,
    /// Dropping it closes the reader of a replaced connection.
    _close: watch::Sender<()>,
}

/// Of two connections between `a` and `b`, both keep the one this node dialled.
pub fn preferred_dialer(a: NodeId, b: NodeId) -> NodeId {
    a.min(b)
}

impl Transport {
    /// Starts listening on `listener` and dialling the configured peers. Stops when
    /// `shutdown` turns true.
    pub fn start(
        config: TransportConfig,
        listener: TcpListener,
        handler: Arc<dyn FrameHandler>,
        shutdown: watch::Receiver<bool>,
    ) -> Transport {
        let mut peers = BTreeMap::new();
        for (&node, &address) in &config.peers {
            if node != config.node {
                peers.insert(
                    node,
                    PeerState {
                        peer_addr: Some(address),
                        ..PeerState::default()
                    },
                );
            }
        }
        let transport = Transport {
            shared: Arc::new(Shared {
                config,
                handler,
                peers: Mutex::new(peers),
                next_connection: AtomicU64::new(1),
                shutdown,
                runtime: tokio::runtime::Handle::current(),
                clock_skew_ms: AtomicI64::new(0),
            }),
        };
        let accepting = transport.clone();
        tokio::spawn(async move { accepting.accept_loop(listener).await });
        let known: Vec<NodeId> = transport.shared.peers.lock().keys().copied().collect();
        for node in known {
            transport.ensure_dialing(node);
        }
        transport
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.shared.config.node
    }

    /// Sends a frame to `to`, best effort: dropped if the link is cut, lost, full or down.
    pub fn send(&self, to: NodeId, frame: &PeerFrame) {
        let bytes = frame::encode(frame);
        let (queue, fault) = {
            let mut peers = self.shared.peers.lock();
            let Some(peer) = peers.get_mut(&to) else {
                return;
            };
            let fault = peer.fault;
            if fault.cut
                || (fault.loss_percent > 0
                    && rand::thread_rng().gen_range(0..100u8) < fault.loss_percent)
            {
                return;
            }
            match &peer.link {
                Some(link) => (link.queue.clone(), fault),
                None => {
                    peer.dropped_frames += 1;
                    return;
                }
            }
        };
        if fault.delay_ms > 0 {
            let shared = self.shared.clone();
            self.shared.runtime.spawn(async move {
                tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
                if queue.try_send(bytes).is_err() {
                    count_drop(&shared, to);
                }
            });
        } else if queue.try_send(bytes).is_err() {
            count_drop(&self.shared, to);
        }
    }

    /// Sets the lab fault on the link to `to`; `false` if no such peer is known.
    pub fn set_fault(&self, to: NodeId, fault: LinkFault) -> bool {
        match self.shared.peers.lock().get_mut(&to) {
            Some(peer) => {
                peer.fault = fault;
                true
            }
            None => false,
        }
    }

    /// This node's wall clock as the cluster sees it (lab skew included), µs since the epoch.
    pub fn now_us(&self) -> u64 {
        let skew_us = self
            .shared
            .clock_skew_ms
            .load(Ordering::Relaxed)
            .saturating_mul(1_000);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        now.saturating_add_signed(skew_us)
    }

    /// Lab: this node's clock skew in milliseconds.
    pub fn clock_skew_ms(&self) -> i64 {
        self.shared.clock_skew_ms.load(Ordering::Relaxed)
    }

    /// Lab: skews this node's clock (stamps and clock probes alike).
    pub fn set_clock_skew_ms(&self, skew_ms: i64) {
        self.shared.clock_skew_ms.store(skew_ms, Ordering::Relaxed);
    }

    /// The HTTP address a peer announced, if any.
    pub fn http_addr(&self, node: NodeId) -> Option<SocketAddr> {
        if node == self.shared.config.node {
            return Some(self.shared.config.http_addr);
        }
        self.shared
            .peers
            .lock()
            .get(&node)
            .and_then(|p| p.http_addr)
    }

    /// Learns (or corrects) where a peer listens, and dials it.
    pub fn add_peer(&self, node: NodeId, peer_addr: SocketAddr) {
        if node == self.shared.config.node {
            return;
        }
        self.shared.peers.lock().entry(node).or_default().peer_addr = Some(peer_addr);
        self.ensure_dialing(node);
    }

    /// What the transport knows of each peer, by id.
    pub fn report(&self) -> Vec<PeerReport> {
        let now = Instant::now();
        self.shared
            .peers
            .lock()
            .iter()
            .map(|(&node, peer)| PeerReport {
                node,
                peer_addr: peer.peer_addr,
                http_addr: peer.http_addr,
                connected: peer.link.is_some(),
                dialled_by: peer.link.as_ref().map(|link| link.dialer),
                last_heard_ms_ago: peer
                    .last_heard
                    .map(|at| now.duration_since(at).as_millis() as u64),
                dropped_frames: peer.dropped_frames,
                fault: peer.fault,
                clock_offset_us: peer.clock.estimate().map(|e| e.offset_us),
                clock_error_bound_us: peer.clock.estimate().map(|e| e.error_bound_us),
            })
            .collect()
    }

    fn ensure_dialing(&self, node: NodeId) {
        {
            let mut peers = self.shared.peers.lock();
            let peer = peers.entry(node).or_default();
            if peer.dialing || peer.peer_addr.is_none() {
                return;
            }
            peer.dialing = true;
        }
        let transport = self.clone();
        tokio::spawn(async move { transport.dial_loop(node).await });
    }

    fn stopping(&self) -> bool {
        *self.shared.shutdown.borrow()
    }

    async fn accept_loop(self, listener: TcpListener) {
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => return,
            };
            match accepted {
                Ok((stream, from)) => {
                    let transport = self.clone();
                    tokio::spawn(async move {
                        let result =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, transport.answer(stream)).await;
                        match result {
                            Ok(Ok(())) => {}
                            Ok(Err(reason)) => {
                                tracing::warn!(%from, %reason, "refused a peer connection")
                            }
                            Err(_) => tracing::warn!(%from, "peer handshake timed out"),
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a peer connection failed");
                    tokio::time::sleep(DIAL_BACKOFF_MIN).await;
                }
            }
        }
    }

    /// The accepting side of a handshake.
    async fn answer(&self, stream: TcpStream) -> Result<(), String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (reader, writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let mut writer = BufWriter::new(writer);
        let mut buffer = Vec::new();
        frame::read_magic(&mut reader)
            .await
            .map_err(|e| e.to_string())?;
        let hello = frame::read_frame(&mut reader, &mut buffer)
            .await
            .map_err(|e| e.to_string())?;
        frame::write_magic(&mut writer)
            .await
            .map_err(|e| e.to_string())?;
        let peer = match self.check_hello(&hello, None) {
            Ok(peer) => peer,
            Err(reason) => {
                let refusal = frame::encode(&PeerFrame::Refused {
                    reason: reason.clone(),
                });
                let _ = writer.write_all(&refusal).await;
                let _ = writer.flush().await;
                return Err(reason);
            }
        };
        writer
            .write_all(&frame::encode(&self.hello()))
            .await
            .map_err(|e| e.to_string())?;
        writer.flush().await.map_err(|e| e.to_string())?;
        self.attach(peer, peer, reader, writer);
        Ok(())
    }

    async fn dial_loop(self, node: NodeId) {
        let mut backoff = DIAL_BACKOFF_MIN;
        loop {
            if self.stopping() {
                return;
            }
            let (address, connected, link_lost) = {
                let peers = self.shared.peers.lock();
                let peer = &peers[&node];
                (peer.peer_addr, peer.link.is_some(), peer.link_lost.clone())
            };
            if connected {
                let mut shutdown = self.shared.shutdown.clone();
                tokio::select! {
                    _ = link_lost.notified() => {}
                    _ = tokio::time::sleep(DIAL_BACKOFF_MAX) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = DIAL_BACKOFF_MIN;
                continue;
            }
            let Some(address) = address else { return };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.dial(node, address)).await {
                Ok(Ok(())) => backoff = DIAL_BACKOFF_MIN,
                Ok(Err(reason)) => {
                    tracing::debug!(peer = %node, %address, %reason, "could not connect to peer");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(DIAL_BACKOFF_MAX);
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(DIAL_BACKOFF_MAX);
                }
            }
        }
    }

    /// The dialling side of a handshake.
    async fn dial(&self, node: NodeId, address: SocketAddr) -> Result<(), String> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (reader, writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let mut writer = BufWriter::new(writer);
        frame::write_magic(&mut writer)
            .await
            .map_err(|e| e.to_string())?;
        writer
            .write_all(&frame::encode(&self.hello()))
            .await
            .map_err(|e| e.to_string())?;
        writer.flush().await.map_err(|e| e.to_string())?;
        let mut buffer = Vec::new();
        frame::read_magic(&mut reader)
            .await
            .map_err(|e| e.to_string())?;
        let answer = frame::read_frame(&mut reader, &mut buffer)
            .await
            .map_err(|e| e.to_string())?;
        if let PeerFrame::Refused { reason } = &answer {
            tracing::error!(peer = %node, %address, %reason, "the peer refused this node");
            return Err(format!("refused: {reason}"));
        }
        let peer = self
            .check_hello(&answer, Some(node))
            .inspect_err(|reason| {
                tracing::error!(peer = %node, %address, %reason, "refusing the peer");
            })?;
        self.attach(peer, self.shared.config.node, reader, writer);
        Ok(())
    }

    fn hello(&self) -> PeerFrame {
        let config = &self.shared.config;
        PeerFrame::Hello {
            cluster_id: config.cluster_id.clone(),
            protocol_version: PROTOCOL_VERSION,
            node: config.node,
            peer_addr: config.peer_addr,
            http_addr: config.http_addr,
        }
    }

    /// Checks a peer's hello; on success records its addresses and returns its id.
    fn check_hello(&self, hello: &PeerFrame, expected: Option<NodeId>) -> Result<NodeId, String> {
        let PeerFrame::Hello {
            cluster_id,
            protocol_version,
            node,
            peer_addr,
            http_addr,
        } = hello
        else {
            return Err("the first frame was not a hello".into());
        };
        let config = &self.shared.config;
        if *cluster_id != config.cluster_id {
            return Err(format!(
                "node {node} belongs to cluster {cluster_id:?}, this node to {:?}",
                config.cluster_id
            ));
        }
        if *protocol_version != PROTOCOL_VERSION {
            return Err(format!(
                "node {node} speaks peer protocol version {protocol_version}, this node {PROTOCOL_VERSION}"
            ));
        }
        if *node == config.node {
            return Err(format!("the peer claims this node's own id {node}"));
        }
        if let Some(expected) = expected {
            if *node != expected {
                return Err(format!(
                    "expected node {expected} at this address, found node {node}"
                ));
            }
        }
        let new_peer = {
            let mut peers = self.shared.peers.lock();
            let peer = peers.entry(*node).or_default();
            peer.http_addr = Some(*http_addr);
            let new_peer = peer.peer_addr.is_none();
            peer.peer_addr = Some(*peer_addr);
            new_peer
        };
        if new_peer {
            tracing::info!(peer = %node, %peer_addr, "learned a new peer");
            self.ensure_dialing(*node);
        }
        Ok(*node)
    }

    /// Registers a connection to `peer` (unless a preferred one is already up) and starts its
    /// reader and writer.
    fn attach(
        &self,
        peer: NodeId,
        dialer: NodeId,
        reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        writer: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    ) {
        let connection = self.shared.next_connection.fetch_add(1, Ordering::Relaxed);
        let (queue, outgoing) = mpsc::channel(PEER_QUEUE_FRAMES);
        let (close, closed) = watch::channel(());
        {
            let mut peers = self.shared.peers.lock();
            let state = peers.entry(peer).or_default();
            if let Some(existing) = &state.link {
                let preferred = preferred_dialer(self.shared.config.node, peer);
                // A peer whose host restarted without closing our connection (no FIN) dials
                // again: once the old connection has been silent a while, take the new one
                // rather than hold a dead link until the kernel gives up on it.
                let silent = state
                    .last_heard
                    .is_some_and(|heard| heard.elapsed() > SILENT_LINK_REPLACED_AFTER);
                if existing.dialer == preferred && dialer != preferred && !silent {
                    tracing::debug!(%peer, "keeping the connection dialled by the lower id");
                    return;
                }
            }
            state.link = Some(Link {
                connection,
                dialer,
                queue,
                _close: close,
            });
        }
        tracing::info!(%peer, connection, "peer connected");
        tokio::spawn(write_loop(writer, outgoing));
        let prober = self.clone();
        tokio::spawn(async move { prober.probe_clock(peer, connection).await });
        let transport = self.clone();
        tokio::spawn(async move {
            transport.read_loop(peer, connection, reader, closed).await;
            let mut peers = transport.shared.peers.lock();
            if let Some(state) = peers.get_mut(&peer) {
                if state.link.as_ref().map(|l| l.connection) == Some(connection) {
                    state.link = None;
                    state.link_lost.notify_one();
                    tracing::info!(%peer, connection, "peer disconnected");
                }
            }
        });
    }

    async fn read_loop(
        &self,
        peer: NodeId,
        connection: u64,
        mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        mut closed: watch::Receiver<()>,
    ) {
        let mut buffer = Vec::new();
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            let frame = tokio::select! {
                frame = frame::read_frame(&mut reader, &mut buffer) => frame,
                _ = closed.changed() => return,
                _ = shutdown.changed() => return,
            };
            match frame {
                Ok(PeerFrame::Hello { .. } | PeerFrame::Refused { .. }) => {
                    tracing::warn!(%peer, connection, "handshake frame after the handshake");
                    return;
                }
                Ok(frame) => {
                    let received_us = self.now_us();
                    if let Some(state) = self.shared.peers.lock().get_mut(&peer) {
                        state.last_heard = Some(Instant::now());
                    }
                    self.receive(peer, frame, received_us);
                }
                Err(frame::FrameError::Io(_)) => return,
                Err(error) => {
                    tracing::warn!(%peer, connection, %error, "closing a peer connection");
                    return;
                }
            }
        }
    }
}

/// How often each connection's clock is probed.
pub const CLOCK_PROBE_INTERVAL: Duration = Duration::from_secs(1);

impl Transport {
    /// Clock probes are the transport's own business; every other frame goes to the handler.
    fn receive(&self, peer: NodeId, frame: PeerFrame, received_us: u64) {
        match frame {
            PeerFrame::ClockProbe { sent_us } => {
                let reply = PeerFrame::ClockReply {
                    probe_sent_us: sent_us,
                    received_us,
                    answered_us: self.now_us(),
                };
                self.send(peer, &reply);
            }
            PeerFrame::ClockReply {
                probe_sent_us,
                received_us: peer_received_us,
                answered_us,
            } => {
                let sample =
                    sync::sample(probe_sent_us, peer_received_us, answered_us, received_us);
                if let Some(state) = self.shared.peers.lock().get_mut(&peer) {
                    state.clock.observe(sample);
                }
            }
            frame => self.shared.handler.handle(peer, frame),
        }
    }

    /// Probes the peer's clock every [`CLOCK_PROBE_INTERVAL`] while this connection is up.
    async fn probe_clock(&self, peer: NodeId, connection: u64) {
        loop {
            let current = self
                .shared
                .peers
                .lock()
                .get(&peer)
                .and_then(|state| state.link.as_ref().map(|link| link.connection));
            if current != Some(connection) || self.stopping() {
                return;
            }
            self.send(
                peer,
                &PeerFrame::ClockProbe {
                    sent_us: self.now_us(),
                },
            );
            tokio::time::sleep(CLOCK_PROBE_INTERVAL).await;
        }
    }
}

fn count_drop(shared: &Shared, to: NodeId) {
    if let Some(peer) = shared.peers.lock().get_mut(&to) {
        peer.dropped_frames += 1;
    }
}

async fn write_loop(
    mut writer: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(bytes) = outgoing.recv().await {
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
        let mut written = 1;
        while written < MAX_FRAMES_PER_FLUSH {
            match outgoing.try_recv() {
                Ok(bytes) => {
                    if writer.write_all(&bytes).await.is_err() {
                        return;
                    }
                    written += 1;
                }
                Err(_) => break,
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

/// Ids for forwarded requests. They start at a random number at each process start, so a
/// late reply meant for a previous incarnation of this node (killed and restarted while its
/// request was in flight) never matches a request of this one.
#[derive(Debug)]
pub struct ForwardIds(AtomicU64);

impl Default for ForwardIds {
    fn default() -> ForwardIds {
        ForwardIds(AtomicU64::new(rand::random::<u64>() >> 1))
    }
}

impl ForwardIds {
    /// The next id.
    pub fn next(&self) -> ForwardId {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(NodeId, ForwardId)>>);

    impl FrameHandler for Collect {
        fn handle(&self, from: NodeId, frame: PeerFrame) {
            if let PeerFrame::ForwardRead { id } = frame {
                self.0.lock().push((from, id));
            }
        }
    }

    async fn node(
        id: u64,
        listener: TcpListener,
        peers: BTreeMap<NodeId, SocketAddr>,
        cluster: &str,
    ) -> (Transport, Arc<Collect>) {
        let address = listener.local_addr().unwrap();
        let handler = Arc::new(Collect::default());
        // Dropping the sender would read as "shut down": keep it for the test's lifetime.
        let (stop, shutdown) = watch::channel(false);
        std::mem::forget(stop);
        let config = TransportConfig {
            node: NodeId(id),
            cluster_id: cluster.into(),
            peer_addr: address,
            http_addr: address,
            peers,
        };
        let transport = Transport::start(config, listener, handler.clone(), shutdown);
        (transport, handler)
    }

    async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        for _ in 0..200 {
            if condition() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn two_nodes_dialling_each_other_settle_on_one_connection_used_both_ways() {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
        let (one, heard_by_one) = node(1, first, [(NodeId(2), b)].into(), "c").await;
        let (two, heard_by_two) = node(2, second, [(NodeId(1), a)].into(), "c").await;
        let settled = || {
            let (r1, r2) = (one.report(), two.report());
            r1[0].dialled_by == Some(NodeId(1)) && r2[0].dialled_by == Some(NodeId(1))
        };
        assert!(
            eventually(settled).await,
            "{:?} {:?}",
            one.report(),
            two.report()
        );
        one.send(NodeId(2), &PeerFrame::ForwardRead { id: 7 });
        two.send(NodeId(1), &PeerFrame::ForwardRead { id: 8 });
        assert!(eventually(|| heard_by_two.0.lock().contains(&(NodeId(1), 7))).await);
        assert!(eventually(|| heard_by_one.0.lock().contains(&(NodeId(2), 8))).await);
    }

    #[tokio::test]
    async fn a_node_of_another_cluster_never_connects_and_cut_links_drop_frames() {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
        let (one, _) = node(1, first, [(NodeId(2), b)].into(), "ours").await;
        let (two, _) = node(2, second, [(NodeId(1), a)].into(), "theirs").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!one.report()[0].connected && !two.report()[0].connected);

        let third = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fourth = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (c, d) = (third.local_addr().unwrap(), fourth.local_addr().unwrap());
        let (three, _) = node(3, third, [(NodeId(4), d)].into(), "ours").await;
        let (four, heard_by_four) = node(4, fourth, [(NodeId(3), c)].into(), "ours").await;
        assert!(eventually(|| three.report()[0].connected && four.report()[0].connected).await);
        three.set_fault(
            NodeId(4),
            LinkFault {
                cut: true,
                ..LinkFault::default()
            },
        );
        three.send(NodeId(4), &PeerFrame::ForwardRead { id: 1 });
        three.set_fault(NodeId(4), LinkFault::default());
        three.send(NodeId(4), &PeerFrame::ForwardRead { id: 2 });
        assert!(eventually(|| heard_by_four.0.lock().contains(&(NodeId(3), 2))).await);
        assert!(
            !heard_by_four.0.lock().contains(&(NodeId(3), 1)),
            "a cut link dropped it"
        );
        // The driver sends from a plain thread: a delayed frame must not need a runtime there.
        let delay = LinkFault {
            delay_ms: 50,
            ..LinkFault::default()
        };
        three.set_fault(NodeId(4), delay);
        let sender = three.clone();
        std::thread::spawn(move || sender.send(NodeId(4), &PeerFrame::ForwardRead { id: 3 }))
            .join()
            .expect("sending a delayed frame from a plain thread does not panic");
        assert!(eventually(|| heard_by_four.0.lock().contains(&(NodeId(3), 3))).await);
    }
}
