//! The one-node log: a local write-ahead log in front of the chat state machine.
//!
//! Every change goes the same way: [`LocalLog::propose`] puts the proposal in a bounded
//! queue; the **log writer** thread takes everything that is waiting (group commit), stamps
//! each command with server time and a proposed id in log order, appends the batch to the
//! write-ahead log, makes it durable with one `fdatasync`, and only then applies it to
//! [`ChatState`], publishes the resulting events to the [`Hub`] and answers the proposers. So
//! an acknowledged change is on disk, and many concurrent posts share one fsync with no added
//! wait when the node is idle.
//!
//! Every `snapshot_every_entries` entries, and at a clean shutdown, the writer saves a snapshot
//! of the state in the redb state store (the snapshot and the index it covers in one
//! transaction) and then drops the log prefix it covers. After a restart the log restores the
//! latest snapshot and replays the rest of the log.
//!
//! Known limitation: a snapshot is taken on the writer thread, so writes wait while the whole
//! state is encoded and saved.

use super::{LogStats, OpenError, Opened, ProposeError};
use crate::clocks::{unix_ms_now, Clocks};
use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::search::SearchIndex;
use dschat_core::chat::{ChatError, ChatState, ClientSession, Command, Envelope, Response};
use dschat_core::ids::{LogIndex, Term};
use dschat_core::state_machine::StateMachine;
use dschat_storage::{SnapshotMeta, StateStore, StorageError, Wal, WalEntry, WalOptions};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most proposals in one group commit.
const MAX_BATCH_PROPOSALS: usize = 4_096;
/// The single-node log has no elections; every entry is written in this term.
const LOCAL_LOG_TERM: Term = Term(1);

/// Where the answer to a submitted command comes (an error if the writer stopped first).
pub type Answer = oneshot::Receiver<Result<Result<Response, ChatError>, ProposeError>>;

struct Proposal {
    session: Option<ClientSession>,
    command: Command,
    reply: oneshot::Sender<Result<Result<Response, ChatError>, ProposeError>>,
}

/// The one-node log's handle, held by the node.
pub struct LocalLog {
    clocks: Arc<Mutex<Clocks>>,
    proposals: Mutex<Option<mpsc::Sender<Proposal>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    storage_failed: Arc<AtomicBool>,
}

impl LocalLog {
    /// Opens the state store and the log in the data directory, recovers the state, and
    /// starts the log writer.
    pub(super) fn open(
        config: &ServerConfig,
        hub: &Arc<Hub>,
        log_stats: &Arc<LogStats>,
    ) -> Result<Opened, OpenError> {
        let store = StateStore::open(&config.data_dir.join("state.redb"))?;
        let wal_options = WalOptions {
            segment_max_bytes: config.wal_segment_bytes,
        };
        let mut wal = Wal::open(&config.data_dir.join("wal"), wal_options)?;
        let state = recover(&store, &mut wal)?;
        tracing::info!(applied = %state.applied_index(), users = state.user_count(), "state recovered from the log");
        let clocks = Clocks::open(
            &config.data_dir,
            config.node_id,
            state.last_event_id(),
            state.last_time(),
        )?;
        let state = Arc::new(RwLock::new(state));
        let search = Arc::new(SearchIndex::open(
            &config.data_dir.join("search"),
            state.clone(),
        )?);
        let (sender, receiver) = mpsc::channel(config.limits.max_pending_proposals.max(1));
        let clocks = Arc::new(Mutex::new(clocks));
        let storage_failed = Arc::new(AtomicBool::new(false));
        let writer = LogWriter {
            wal,
            store,
            snapshot_index: state.read().applied_index(),
            snapshot_every_entries: config.snapshot_every_entries.max(1),
            state: state.clone(),
            hub: hub.clone(),
            search: search.clone(),
            clocks: clocks.clone(),
            storage_failed: storage_failed.clone(),
            log_stats: log_stats.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run(receiver))?;
        let log = LocalLog {
            clocks,
            proposals: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(handle)),
            storage_failed,
        };
        Ok(Opened {
            state,
            search,
            log: super::Log::Local(log),
        })
    }

    /// Whether the log writer thread is still running.
    pub fn writer_alive(&self) -> bool {
        self.writer
            .lock()
            .as_ref()
            .is_some_and(|writer| !writer.is_finished())
    }

    /// Whether the log failed (the node then refuses writes).
    pub fn storage_failed(&self) -> bool {
        self.storage_failed.load(Ordering::Acquire)
    }

    /// Appends `command` to the log and waits until it is durable and applied.
    pub async fn propose(
        &self,
        session: Option<ClientSession>,
        command: Command,
    ) -> Result<Result<Response, ChatError>, ProposeError> {
        self.submit(session, command)?
            .await
            .map_err(|_| ProposeError::ShuttingDown)?
    }

    /// Queues `command` for the log writer (so commands submitted one after another are
    /// logged in that order) and returns where its answer will come.
    pub fn submit(
        &self,
        session: Option<ClientSession>,
        command: Command,
    ) -> Result<Answer, ProposeError> {
        let (reply, answer) = oneshot::channel();
        let sender = self
            .proposals
            .lock()
            .clone()
            .ok_or(ProposeError::ShuttingDown)?;
        sender
            .try_send(Proposal {
                session,
                command,
                reply,
            })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => ProposeError::ShuttingDown,
            })?;
        Ok(answer)
    }

    /// A server timestamp and id for something that is not logged. May fsync.
    pub fn stamp_unlogged(&self) -> Result<(u64, dschat_core::ids::MessageId), ProposeError> {
        let now = unix_ms_now();
        let (time, id) = self
            .clocks
            .lock()
            .stamp(now)
            .map_err(|error| ProposeError::Storage(error.to_string()))?;
        Ok((time.wall_ms, id))
    }

    /// Stops taking proposals and lets the writer finish what is queued (and take a last
    /// snapshot).
    pub fn shutdown(&self) {
        self.proposals.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

/// Restores the latest snapshot, then applies the log entries after it.
fn recover(store: &StateStore, wal: &mut Wal) -> Result<ChatState, OpenError> {
    let mut state = match store.load_snapshot()? {
        Some((_, data)) => {
            ChatState::restore(&data).map_err(|error| OpenError::Snapshot(error.to_string()))?
        }
        None => ChatState::new(),
    };
    let snapshot = state.applied_index();
    let (first, last) = (wal.first_index(), wal.last_index());
    if last > snapshot && first > snapshot.next() {
        return Err(OpenError::LogGap { first, snapshot });
    }
    if last < snapshot {
        // The log ends before the snapshot (its files were lost or salvaged): everything it
        // held is in the snapshot, so the log restarts right after it.
        tracing::warn!(%last, %snapshot, "the log ends before the snapshot; restarting the log after it");
        wal.reset(snapshot.next(), LOCAL_LOG_TERM)?;
        return Ok(state);
    }
    const REPLAY_CHUNK: u64 = 10_000;
    let mut from = first.max(snapshot.next());
    while from <= last && last.0 > 0 {
        let to = LogIndex((from.0 + REPLAY_CHUNK - 1).min(last.0));
        for entry in wal.entries(from, to)? {
            let envelope =
                Envelope::decode(&entry.payload).map_err(|error| OpenError::UndecodableEntry {
                    index: entry.index,
                    detail: error.to_string(),
                })?;
            state.apply(entry.index, envelope);
        }
        from = to.next();
    }
    Ok(state)
}

/// The thread that owns the write-ahead log. See the module documentation.
struct LogWriter {
    wal: Wal,
    store: StateStore,
    /// The index the latest snapshot covers.
    snapshot_index: LogIndex,
    snapshot_every_entries: u64,
    state: Arc<RwLock<ChatState>>,
    hub: Arc<Hub>,
    search: Arc<SearchIndex>,
    clocks: Arc<Mutex<Clocks>>,
    storage_failed: Arc<AtomicBool>,
    log_stats: Arc<LogStats>,
}

impl LogWriter {
    fn run(mut self, mut receiver: mpsc::Receiver<Proposal>) {
        let mut batch = Vec::with_capacity(MAX_BATCH_PROPOSALS);
        while let Some(first) = receiver.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH_PROPOSALS {
                match receiver.try_recv() {
                    Ok(proposal) => batch.push(proposal),
                    Err(_) => break,
                }
            }
            let due = |writer: &LogWriter| {
                writer
                    .wal
                    .last_index()
                    .0
                    .saturating_sub(writer.snapshot_index.0)
                    >= writer.snapshot_every_entries
            };
            let result =
                self.commit(&mut batch)
                    .and_then(|()| if due(&self) { self.snapshot() } else { Ok(()) });
            if let Err(error) = result {
                // A failed write or fsync leaves the file's state unknown (and a store that
                // cannot be written is a failing disk): stop taking writes. Nothing
                // acknowledged is lost; the log holds every acknowledged entry.
                tracing::error!(%error, "storage failed; refusing further writes");
                self.storage_failed.store(true, Ordering::Release);
                receiver.close();
                while let Ok(proposal) = receiver.try_recv() {
                    batch.push(proposal);
                }
                for proposal in batch.drain(..) {
                    let _ = proposal
                        .reply
                        .send(Err(ProposeError::Storage(error.to_string())));
                }
                return;
            }
        }
        if self.wal.last_index() > self.snapshot_index {
            if let Err(error) = self.snapshot() {
                tracing::error!(%error, "snapshot at shutdown failed; the log still holds everything");
            }
        }
    }

    /// Saves the whole state with the index it covers, then drops the log prefix it covers.
    fn snapshot(&mut self) -> Result<(), StorageError> {
        let (index, data) = {
            let state = self.state.read();
            (state.applied_index(), state.snapshot())
        };
        let meta = SnapshotMeta {
            index,
            term: LOCAL_LOG_TERM,
            configuration: Vec::new(),
        };
        self.store.save_snapshot(&meta, &data)?;
        self.wal.truncate_prefix(index.next())?;
        self.snapshot_index = index;
        tracing::info!(%index, bytes = data.len(), "snapshot saved; log compacted");
        Ok(())
    }

    /// Makes the batch durable, applies it, publishes its events and answers its proposers.
    fn commit(&mut self, batch: &mut Vec<Proposal>) -> Result<(), StorageError> {
        let now = unix_ms_now();
        let first_index = self.wal.last_index().next();
        let mut envelopes = Vec::with_capacity(batch.len());
        {
            let mut clocks = self.clocks.lock();
            for proposal in batch.iter() {
                let (time, proposed_id) = clocks.stamp(now).map_err(|error| {
                    StorageError::io("persisting the message-id high-water mark", error)
                })?;
                let command = proposal.command.clone();
                envelopes.push(Envelope {
                    session: proposal.session,
                    time,
                    proposed_id,
                    command,
                });
            }
        }
        let entries: Vec<WalEntry> = envelopes
            .iter()
            .enumerate()
            .map(|(offset, envelope)| WalEntry {
                index: LogIndex(first_index.0 + offset as u64),
                term: LOCAL_LOG_TERM,
                payload: envelope.encode(),
            })
            .collect();
        self.wal.append(&entries)?;
        self.wal.sync()?;
        self.log_stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.log_stats
            .entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let mut replies = Vec::with_capacity(batch.len());
        {
            let mut state = self.state.write();
            let mut feed_items = Vec::new();
            for (entry, envelope) in entries.iter().zip(envelopes) {
                let applied = state.apply(entry.index, envelope);
                super::event_feed_items(&state, &self.hub, &applied.events, &mut feed_items);
                super::away_feed_items(&state, &applied.away_changes, &mut feed_items);
                replies.push(applied.reply);
            }
            // The whole batch at once. No subscriber can register meanwhile: that needs the
            // state's read lock.
            self.hub.publish_all(feed_items);
        }
        for (proposal, reply) in batch.drain(..).zip(replies) {
            let _ = proposal.reply.send(Ok(reply));
        }
        self.search.notify();
        Ok(())
    }
}
