//! The node: what the front ends talk to, over one of two logs.
//!
//! A front end changes the chat only through [`Node::propose`] and reads it through
//! [`Node::state`] (after [`Node::read_barrier`] where it must see every acknowledged write).
//! Behind those two calls the node runs in one of two modes:
//!
//! - **Alone** ([`local`]): the one-node default. A log writer thread puts a local write-ahead
//!   log in front of the chat state machine: group commit, one fsync per batch, then apply,
//!   publish and answer.
//! - **In a cluster** ([`crate::cluster`]): the Raft driver thread orders every change through
//!   Raft with the other nodes, and the node routes writes to the leader.
//!
//! Either way an acknowledged change is durable (on this disk, or on a majority of disks) and
//! the events it created are published to live feeds ([`event_feed_items`], then
//! [`crate::hub::Hub::publish_all`] for each batch of entries) by the thread that applied it,
//! in log order.

pub mod local;

use crate::api::dto::EventJson;
use crate::cluster::ClusterLog;
use crate::config::ServerConfig;
use crate::hub::{FeedItem, Hub};
use crate::search::{SearchError, SearchIndex};
use dschat_core::chat::model::StoredEvent;
use dschat_core::chat::{ChatError, ChatState, ClientSession, Command, Response, Timeline};
use dschat_core::ids::LogIndex;
use dschat_storage::StorageError;
use local::LocalLog;
use parking_lot::RwLock;
use std::sync::Arc;

/// Why a proposal was not applied. (A command the state machine refused is not an error
/// here: it is the `Err` inside a successful proposal.)
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProposeError {
    /// Too many proposals are waiting; retry later.
    #[error("the server is overloaded; retry later")]
    Overloaded,
    /// The write-ahead log failed; the node accepts no more writes until restarted.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The node is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The node cannot reach a majority of the cluster (or no leader answered in time).
    /// Retry later or at another node; under the same client session a retry is safe.
    #[error("no quorum: this node cannot reach a majority of the cluster")]
    NoQuorum,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The log could not be opened or recovered.
    #[error("write-ahead log: {0}")]
    Storage(#[from] StorageError),
    /// The saved snapshot does not decode.
    #[error("the snapshot in the state store cannot be read: {0}")]
    Snapshot(String),
    /// The log does not continue the snapshot.
    #[error(
        "the log starts at entry {first} but the snapshot ends at {snapshot}: entries are missing"
    )]
    LogGap {
        /// The first entry of the log.
        first: LogIndex,
        /// The last entry covered by the snapshot.
        snapshot: LogIndex,
    },
    /// A log entry does not decode as a chat command.
    #[error("log entry {index} does not decode ({detail}); the log is damaged")]
    UndecodableEntry {
        /// The entry's index.
        index: LogIndex,
        /// The decoder's complaint.
        detail: String,
    },
    /// A setting is out of range.
    #[error("configuration: {0}")]
    Config(String),
    /// The data directory, the id high-water mark or the search index failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The search index failed to open.
    #[error("{0}")]
    Search(#[from] SearchError),
    /// The replicated storage (cluster mode) could not be opened.
    #[error("{0}")]
    Replica(#[from] dschat_replica::ReplicaError),
}

/// Counters of the log writer, to watch group commit at work.
#[derive(Debug, Default)]
pub struct LogStats {
    /// fdatasync calls that made batches durable.
    pub syncs: std::sync::atomic::AtomicU64,
    /// Entries made durable by them.
    pub entries: std::sync::atomic::AtomicU64,
}

/// Bytes of command text that may wait for the log at once; past it, 503.
const MAX_PENDING_PROPOSAL_BYTES: usize = 64 * 1024 * 1024;
/// What a proposal is charged beyond its text (framing, ids, the envelope).
const PROPOSAL_OVERHEAD_BYTES: usize = 64;

/// Which log orders the node's changes.
pub(crate) enum Log {
    /// The one-node default: a local write-ahead log.
    Local(LocalLog),
    /// A Raft cluster (boxed: it is much larger than the local log's handle).
    Cluster(Box<crate::cluster::Cluster>),
}

/// State shared by the front ends and the thread that applies changes.
pub struct Node {
    config: ServerConfig,
    state: Arc<RwLock<ChatState>>,
    hub: Arc<Hub>,
    search: Arc<SearchIndex>,
    log: Log,
    log_stats: Arc<LogStats>,
    pending_bytes: Arc<tokio::sync::Semaphore>,
}

impl Node {
    /// Opens the data directory, recovers the state, and starts the thread that applies
    /// changes (and, in cluster mode, the peer transport; call it inside a tokio runtime).
    pub fn open(config: ServerConfig) -> Result<Arc<Node>, OpenError> {
        if config.node_id > dschat_core::message_id::MAX_NODE {
            let max = dschat_core::message_id::MAX_NODE;
            return Err(OpenError::Config(format!(
                "node_id {} is out of range 0..={max}",
                config.node_id
            )));
        }
        std::fs::create_dir_all(&config.data_dir)?;
        check_data_dir_mode(&config)?;
        let hub = Arc::new(Hub::default());
        let log_stats = Arc::new(LogStats::default());
        let opened = match &config.cluster {
            None => LocalLog::open(&config, &hub, &log_stats)?,
            Some(_) => crate::cluster::Cluster::open(&config, &hub)?,
        };
        Ok(Arc::new(Node {
            config,
            state: opened.state,
            hub,
            search: opened.search,
            log: opened.log,
            log_stats,
            pending_bytes: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_PROPOSAL_BYTES)),
        }))
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The chat state, for reading. Hold the guard briefly.
    pub fn state(&self) -> &RwLock<ChatState> {
        &self.state
    }

    /// The live feed fan-out.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The search index.
    pub fn search(&self) -> &Arc<SearchIndex> {
        &self.search
    }

    /// The log writer's counters (one-node mode).
    pub fn log_stats(&self) -> &LogStats {
        &self.log_stats
    }

    /// The cluster side of the node, in cluster mode.
    pub fn cluster(&self) -> Option<&ClusterLog> {
        match &self.log {
            Log::Local(_) => None,
            Log::Cluster(cluster) => Some(cluster.log()),
        }
    }

    /// Whether the thread that applies changes is still running (it stops at shutdown, after
    /// a storage failure, or if it hits a bug).
    pub fn writer_alive(&self) -> bool {
        match &self.log {
            Log::Local(local) => local.writer_alive(),
            Log::Cluster(cluster) => cluster.driver_alive(),
        }
    }

    /// Whether the storage failed (the node then refuses writes).
    pub fn storage_failed(&self) -> bool {
        match &self.log {
            Log::Local(local) => local.storage_failed(),
            Log::Cluster(cluster) => cluster.log().status().storage_failed,
        }
    }

    /// Orders `command` through the log and waits until it is durable and applied here. The
    /// outer `Result` says whether the command reached the state machine; the inner one is
    /// the state machine's answer.
    pub async fn propose(
        &self,
        session: Option<ClientSession>,
        command: Command,
    ) -> Result<Result<Response, ChatError>, ProposeError> {
        let budget = match self.admit(&command) {
            Ok(budget) => budget,
            Err(refused) => return refused,
        };
        let result = match &self.log {
            Log::Local(local) => local.propose(session, command).await,
            Log::Cluster(cluster) => cluster.log().propose(session, command).await,
        };
        drop(budget);
        result
    }

    /// Like [`Node::propose`] for several commands in a row from one client, logged in this
    /// order but without waiting for each before the next (pipelining: on one node they share
    /// an fsync; in a cluster they travel to the leader together). One answer per command,
    /// in order.
    pub async fn propose_in_order(
        &self,
        commands: Vec<Command>,
    ) -> Vec<Result<Result<Response, ChatError>, ProposeError>> {
        let mut budgets = Vec::with_capacity(commands.len());
        let mut admitted = Vec::with_capacity(commands.len());
        let mut answers: Vec<Option<Result<Result<Response, ChatError>, ProposeError>>> =
            Vec::with_capacity(commands.len());
        for command in commands {
            match self.admit(&command) {
                Ok(budget) => {
                    budgets.push(budget);
                    admitted.push(command);
                    answers.push(None);
                }
                Err(refused) => answers.push(Some(refused)),
            }
        }
        let mut results = match &self.log {
            Log::Local(local) => {
                let queued: Vec<_> = admitted
                    .into_iter()
                    .map(|command| local.submit(None, command))
                    .collect();
                let mut results = Vec::with_capacity(queued.len());
                for answer in queued {
                    results.push(match answer {
                        Ok(answer) => answer.await.unwrap_or(Err(ProposeError::ShuttingDown)),
                        Err(error) => Err(error),
                    });
                }
                results
            }
            Log::Cluster(cluster) => {
                let writes = admitted
                    .into_iter()
                    .map(|command| (None, command))
                    .collect();
                cluster.log().propose_in_order(writes).await
            }
        }
        .into_iter();
        drop(budgets);
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| results.next().unwrap_or(Err(ProposeError::ShuttingDown)))
            })
            .collect()
    }

    /// Checks a command before it costs a log entry, and takes its share of the budget of
    /// bytes waiting for the log (returned when the permit drops).
    #[allow(clippy::result_large_err)]
    fn admit(
        &self,
        command: &Command,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, Result<Result<Response, ChatError>, ProposeError>>
    {
        if self.storage_failed() {
            return Err(Err(ProposeError::Storage("an earlier write failed".into())));
        }
        // A malformed command costs no log entry: refuse it here.
        if let Err(error) = dschat_core::chat::validate::command_fields(command) {
            return Err(Ok(Err(error)));
        }
        let cost =
            (command.text_bytes() + PROPOSAL_OVERHEAD_BYTES).min(MAX_PENDING_PROPOSAL_BYTES) as u32;
        self.pending_bytes
            .clone()
            .try_acquire_many_owned(cost)
            .map_err(|_| Err(ProposeError::Overloaded))
    }

    /// Waits until [`Node::state`] reflects every change acknowledged (by any node) before
    /// this call: at once alone, by read index in a cluster.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        match &self.log {
            Log::Local(_) => Ok(()),
            Log::Cluster(cluster) => cluster.log().read_barrier().await,
        }
    }

    /// A server timestamp and id for something that is not logged (an ephemeral message).
    /// It may fsync the id high-water mark: call it from a blocking context.
    pub fn stamp_unlogged(&self) -> Result<(u64, dschat_core::ids::MessageId), ProposeError> {
        match &self.log {
            Log::Local(local) => local.stamp_unlogged(),
            Log::Cluster(cluster) => cluster.log().stamp_unlogged(),
        }
    }

    /// Stops taking proposals, lets the log finish what is queued (and take a last
    /// snapshot alone), then lets the search indexer catch up and stop.
    pub fn shutdown(&self) {
        match &self.log {
            Log::Local(local) => local.shutdown(),
            Log::Cluster(cluster) => cluster.shutdown(),
        }
        self.search.shutdown();
    }
}

/// Refuses a data directory written in the other mode: a one-node server keeps its log in
/// `wal/` and `state.redb`, a cluster node in `raft/`. Starting in the other mode would show an
/// empty chat while the data sat unused, which looks like loss; there is no conversion yet.
fn check_data_dir_mode(config: &ServerConfig) -> Result<(), OpenError> {
    let directory = &config.data_dir;
    let alone = directory.join("wal").exists() || directory.join("state.redb").exists();
    let clustered = directory.join("raft").exists();
    match (&config.cluster, alone, clustered) {
        (Some(_), true, false) => Err(OpenError::Config(format!(
            "{} holds a one-node server's data (wal/, state.redb); a cluster node keeps its \
             data in raft/. Start it without --peers, or give the cluster node another --data-dir",
            directory.display()
        ))),
        (None, false, true) => Err(OpenError::Config(format!(
            "{} holds a cluster node's data (raft/); start it with the same --peers (or \
             [cluster] settings) as before, or give the one-node server another --data-dir",
            directory.display()
        ))),
        _ => Ok(()),
    }
}

/// What opening a log yields for the node.
pub(crate) struct Opened {
    pub(crate) state: Arc<RwLock<ChatState>>,
    pub(crate) search: Arc<SearchIndex>,
    pub(crate) log: Log,
}

/// The live-feed items of applied events (rendered once here, for every subscriber), added
/// to `items` in order; events nobody follows are skipped.
pub(crate) fn event_feed_items(
    state: &ChatState,
    hub: &Hub,
    events: &[(Timeline, StoredEvent)],
    items: &mut Vec<(FeedItem, String)>,
) {
    for (timeline, event) in events {
        if !hub.has_subscribers_for(*timeline) {
            continue;
        }
        let view = state.event_view(*timeline, event);
        let json = serde_json::to_string(&EventJson::new(state, &view)).expect("events serialize");
        items.push((FeedItem::Event(view), json));
    }
}

/// The live-feed items of applied away changes (IRC's away-notify), added to `items`. Every
/// node applies every command, so every node's IRC clients hear of every change.
pub(crate) fn away_feed_items(
    state: &ChatState,
    changes: &[dschat_core::chat::AwayChange],
    items: &mut Vec<(FeedItem, String)>,
) {
    for change in changes {
        let away = crate::hub::AwayView {
            user: change.user,
            nickname: state.nickname(change.user),
            message: change.message.clone(),
        };
        items.push((FeedItem::Away(away), String::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cluster_node_that_shut_down_says_so_and_not_that_its_storage_failed() {
        let directory = tempfile::tempdir().unwrap();
        let peer = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = ServerConfig {
            data_dir: directory.path().to_path_buf(),
            node_id: 1,
            cluster: Some(crate::cluster::ClusterConfig {
                peer_addr: peer,
                peers: [(1, peer)].into(),
                ..Default::default()
            }),
            ..ServerConfig::default()
        };
        let node = tokio::task::spawn_blocking(move || Node::open(config))
            .await
            .unwrap()
            .unwrap();
        let stopping = node.clone();
        tokio::task::spawn_blocking(move || stopping.shutdown())
            .await
            .unwrap();
        assert!(!node.storage_failed());
        let post = Command::Post {
            user: dschat_core::ids::UserId(1),
            room: dschat_core::ids::RoomId(1),
            body: "after the shutdown".into(),
        };
        let error = node.propose(None, post.clone()).await.unwrap_err();
        assert!(matches!(error, ProposeError::ShuttingDown), "{error}");
        let errors = node.propose_in_order(vec![post]).await;
        assert!(
            matches!(errors[0], Err(ProposeError::ShuttingDown)),
            "{errors:?}"
        );
    }

    #[test]
    fn a_data_directory_of_the_other_mode_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let alone = ServerConfig {
            data_dir: directory.path().to_path_buf(),
            ..ServerConfig::default()
        };
        let clustered = ServerConfig {
            cluster: Some(crate::cluster::ClusterConfig::default()),
            ..alone.clone()
        };
        assert!(check_data_dir_mode(&alone).is_ok() && check_data_dir_mode(&clustered).is_ok());
        std::fs::create_dir(directory.path().join("wal")).unwrap();
        assert!(check_data_dir_mode(&alone).is_ok());
        let refusal = check_data_dir_mode(&clustered).unwrap_err().to_string();
        assert!(refusal.contains("one-node server's data"), "{refusal}");
        std::fs::remove_dir(directory.path().join("wal")).unwrap();
        std::fs::create_dir(directory.path().join("raft")).unwrap();
        assert!(check_data_dir_mode(&clustered).is_ok());
        let refusal = check_data_dir_mode(&alone).unwrap_err().to_string();
        assert!(refusal.contains("cluster node's data"), "{refusal}");
    }
}
