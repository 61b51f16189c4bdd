//! The node-to-node wire format: length-prefixed postcard frames behind a versioned handshake.
//!
//! Every frame on a peer connection is a 4-byte big-endian length followed by that many bytes
//! of postcard-encoded [`PeerFrame`]. The first frame each side sends is a [`PeerFrame::Hello`]
//! naming the cluster, the protocol version and the sender; a node of another cluster or of an
//! incompatible version is answered with [`PeerFrame::Refused`] and the connection is closed,
//! so two clusters never mix their logs by a wrong address.

use dschat_core::chat::{ChatError, ClientSession, Command, Response};
use dschat_core::ids::{LogIndex, NodeId};
use dschat_core::raft;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The version of this wire format. A peer that sends another one is refused.
pub const PROTOCOL_VERSION: u32 = 2;
/// Bound: the largest frame accepted. Log requests carry at most 1 MiB of entries and
/// snapshot chunks 64 KiB; anything larger is a broken or hostile peer.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Written before the first frame so that a stray client (an HTTP request, an IRC client)
/// on the peer port is recognised at once.
pub const MAGIC: [u8; 4] = *b"DSCP";

/// Names a request forwarded to the leader; chosen by the forwarding node.
pub type ForwardId = u64;

/// One frame between two nodes of a cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerFrame {
    /// The first frame of each side.
    Hello {
        /// The cluster's name; must be equal on both sides.
        cluster_id: String,
        /// [`PROTOCOL_VERSION`] of the sender.
        protocol_version: u32,
        /// The sender.
        node: NodeId,
        /// Where the sender accepts peer connections (so the receiver can dial it later).
        peer_addr: SocketAddr,
        /// Where the sender serves HTTP (for redirects and the lab).
        http_addr: SocketAddr,
    },
    /// The handshake failed; the connection closes after this frame.
    Refused {
        /// Why, for the other side's log.
        reason: String,
    },
    /// A Raft message.
    Raft(raft::Envelope),
    /// Client writes forwarded by a follower to the node it believes is the leader, one or
    /// several (a client's pipelined lines) to be logged in this order: all of them or none.
    /// Each is answered by its own [`PeerFrame::ForwardReply`].
    ForwardWrites {
        /// The writes, in order: (id chosen by the forwarder, client session, change). The
        /// session is always set: forwarding retries depend on it.
        writes: Vec<(ForwardId, ClientSession, Command)>,
        /// The forwarder's physical clock, so skew on the forwarder is visible in stamps.
        now_unix_ms: u64,
    },
    /// A follower asks the leader for a read index (Raft thesis §6.4, "read index" at
    /// followers).
    ForwardRead {
        /// Chosen by the forwarder.
        id: ForwardId,
    },
    /// A clock probe (NTP-style): the sender's clock when it sent it.
    ClockProbe {
        /// Sent at, on the sender's clock (µs since the Unix epoch).
        sent_us: u64,
    },
    /// The answer to a clock probe.
    ClockReply {
        /// The probe's `sent_us`.
        probe_sent_us: u64,
        /// When the probe arrived, on the answerer's clock.
        received_us: u64,
        /// When this answer left, on the answerer's clock.
        answered_us: u64,
    },
    /// The answer to a forwarded request.
    ForwardReply {
        /// The forwarded request's id.
        id: ForwardId,
        /// How it ended.
        outcome: ForwardOutcome,
    },
}

/// How a forwarded request ended, as the leader saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ForwardOutcome {
    /// The write was applied at `index` with this reply.
    Applied {
        /// Its log index (the forwarder waits until it has applied it too).
        index: LogIndex,
        /// The state machine's answer.
        reply: Result<Response, ChatError>,
    },
    /// The read index: the forwarder may serve the read once it has applied this far.
    ReadIndex(LogIndex),
    /// The receiver is not the leader.
    NotLeader(Option<NodeId>),
    /// Not applied, or unknown whether applied: retry under the same session.
    Retry,
    /// Refused for now (queues full); retry later.
    Busy(String),
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// The bytes are not a frame of this protocol.
    #[error("undecodable frame: {0}")]
    Undecodable(String),
    /// The peer did not start with [`MAGIC`]: not a dschat node.
    #[error("the peer is not a dschat node (wrong magic bytes)")]
    NotAPeer,
}

/// Encodes a frame with its length prefix.
pub fn encode(frame: &PeerFrame) -> Vec<u8> {
    let mut bytes = vec![0u8; 4];
    postcard::to_io(frame, &mut bytes).expect("writing to a Vec cannot fail");
    let length = (bytes.len() - 4) as u32;
    bytes[..4].copy_from_slice(&length.to_be_bytes());
    bytes
}

/// Reads one frame.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
) -> Result<PeerFrame, FrameError> {
    let length = reader.read_u32().await? as usize;
    if length > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    buffer.resize(length, 0);
    reader.read_exact(buffer).await?;
    postcard::from_bytes(buffer).map_err(|error| FrameError::Undecodable(error.to_string()))
}

/// Writes the magic bytes that open a connection.
pub async fn write_magic<W: AsyncWrite + Unpin>(writer: &mut W) -> std::io::Result<()> {
    writer.write_all(&MAGIC).await
}

/// Reads and checks the magic bytes that open a connection.
pub async fn read_magic<R: AsyncRead + Unpin>(reader: &mut R) -> Result<(), FrameError> {
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).await?;
    if magic != MAGIC {
        return Err(FrameError::NotAPeer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversize_is_refused() {
        let frame = PeerFrame::ForwardRead { id: 7 };
        let bytes = encode(&frame);
        let mut buffer = Vec::new();
        let read = read_frame(&mut bytes.as_slice(), &mut buffer)
            .await
            .unwrap();
        assert!(matches!(read, PeerFrame::ForwardRead { id: 7 }));

        let huge = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
        let error = read_frame(&mut huge.as_slice(), &mut buffer)
            .await
            .unwrap_err();
        assert!(matches!(error, FrameError::TooLarge(_)), "{error}");

        let garbage = [0, 0, 0, 2, 0xff, 0xff];
        let error = read_frame(&mut garbage.as_slice(), &mut buffer)
            .await
            .unwrap_err();
        assert!(matches!(error, FrameError::Undecodable(_)), "{error}");

        assert!(matches!(
            read_magic(&mut b"GET ".as_slice()).await,
            Err(FrameError::NotAPeer)
        ));
    }
}
