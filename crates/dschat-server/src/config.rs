//! Server configuration: every knob with a sensible default, settable by flag or config file.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything a node needs to start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the log, snapshots, search index and id high-water mark live.
    pub data_dir: PathBuf,
    /// Address of the HTTP/WebSocket listener.
    pub http_addr: SocketAddr,
    /// This node's number (0..1024); it appears in message ids minted here.
    pub node_id: u64,
    /// Input size limits.
    pub limits: Limits,
    /// Abuse limits.
    pub rate_limits: RateLimits,
    /// How long a login token stays valid, in seconds.
    pub token_lifetime_seconds: u64,
    /// Log entries between two snapshots of the chat state (after which the log is compacted).
    pub snapshot_every_entries: u64,
    /// Size at which the write-ahead log starts a new segment file; compaction deletes whole
    /// segments.
    pub wal_segment_bytes: u64,
    /// The IRC front end.
    pub irc: IrcConfig,
    /// Run as a node of a Raft cluster (absent: alone, on a local log).
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            data_dir: PathBuf::from("dschat-data"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7070)),
            node_id: 1,
            limits: Limits::default(),
            rate_limits: RateLimits::default(),
            token_lifetime_seconds: 30 * 24 * 3600,
            snapshot_every_entries: 100_000,
            wal_segment_bytes: 64 * 1024 * 1024,
            irc: IrcConfig::default(),
            cluster: None,
        }
    }
}

/// The IRC listener (see `docs/irc.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IrcConfig {
    /// Whether `dschat serve` opens the IRC listener.
    pub enabled: bool,
    /// Address of the IRC listener.
    pub addr: SocketAddr,
    /// The server name in replies (the source of numerics).
    pub server_name: String,
    /// The message of the day, one IRC line per line of text; empty for none.
    pub motd: String,
    /// Flood control: lines per second a client may send in the long run; `0` turns it off.
    pub lines_per_second: f64,
    /// Flood control: lines a client may send at once before it is slowed down.
    pub lines_burst: f64,
}

impl Default for IrcConfig {
    fn default() -> IrcConfig {
        IrcConfig {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 6667)),
            server_name: "dschat.local".into(),
            motd: "Welcome to dschat: IRC channel #name is dschat room name.".into(),
            lines_per_second: 5.0,
            lines_burst: 20.0,
        }
    }
}

/// Input size limits, checked before anything reaches the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest HTTP request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest message body, in bytes (at most the state machine's own 64 KiB).
    pub max_message_bytes: usize,
    /// Longest nickname or room name, in characters (at most the state machine's own limits).
    pub max_name_chars: usize,
    /// Largest number of events a client's WebSocket may have queued before it is dropped as
    /// too slow (it can resume from its last id).
    pub max_stream_queue_events: usize,
    /// Largest number of proposals waiting for the log writer; past it requests get 503.
    pub max_pending_proposals: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_bytes: 64 * 1024,
            max_message_bytes: 4 * 1024,
            max_name_chars: 30,
            max_stream_queue_events: 4_096,
            max_pending_proposals: 50_000,
        }
    }
}

/// Token-bucket rate limits; `0` per second turns a limit off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Writes (messages of every kind, room creation, joins, leaves, topics, read markers) per
    /// second per account.
    pub posts_per_second_per_account: f64,
    /// Burst allowance for the above.
    pub posts_burst_per_account: f64,
    /// Writes per second per client address (guest posts on the legacy endpoints too).
    pub posts_per_second_per_address: f64,
    /// Burst allowance for the above.
    pub posts_burst_per_address: f64,
    /// Login and registration attempts per minute per account name.
    pub logins_per_minute_per_account: f64,
    /// Login and registration attempts per minute per client address.
    pub logins_per_minute_per_address: f64,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            posts_per_second_per_account: 20.0,
            posts_burst_per_account: 100.0,
            posts_per_second_per_address: 200.0,
            posts_burst_per_address: 1_000.0,
            logins_per_minute_per_account: 10.0,
            logins_per_minute_per_address: 60.0,
        }
    }
}

impl RateLimits {
    /// No limits at all (benchmarks, tests).
    pub fn unlimited() -> RateLimits {
        RateLimits {
            posts_per_second_per_account: 0.0,
            posts_burst_per_account: 0.0,
            posts_per_second_per_address: 0.0,
            posts_burst_per_address: 0.0,
            logins_per_minute_per_account: 0.0,
            logins_per_minute_per_address: 0.0,
        }
    }
}
