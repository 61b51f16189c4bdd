//! Full-text search over history, with tantivy.
//!
//! The index is derived state: it can always be rebuilt from the chat state. An indexer thread
//! follows the state's events (posted, edited, deleted) by id, in the same way a WebSocket
//! client resumes, so there is no queue between the log writer and the index to overflow.
//! Each index commit records the last event id indexed as its payload; after a restart the
//! indexer continues from there. Results are ranked by BM25 and checked against the current
//! state (a message deleted since it was indexed is not returned).
//!
//! Privacy: room messages are indexed as visible to everyone; a private message only to its
//! two participants, and a search filters on the reader's visibility.

use dschat_core::chat::{ChatState, EventViewKind, MessageView, Timeline};
use dschat_core::ids::{MessageId, RoomId, UserId};
use parking_lot::RwLock;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Events the indexer takes from the state per round.
const EVENTS_PER_ROUND: usize = 5_000;
/// How long the indexer sleeps when nobody wakes it.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Shortest time between two index commits.
const MIN_COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// Memory for tantivy's indexing buffer.
const WRITER_HEAP_BYTES: usize = 30_000_000;
/// Most results one search returns.
pub const MAX_RESULTS: usize = 100;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    room: Field,
    visibility: Field,
    timeline: Field,
    body: Field,
}

/// Errors of the search index.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index files could not be opened or written.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index directory could not be opened.
    #[error("search index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
}

/// The search index and its indexer thread.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    wake: mpsc::SyncSender<()>,
    indexed_through: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        id: builder.add_u64_field("id", INDEXED | STORED | FAST),
        room: builder.add_u64_field("room", INDEXED),
        visibility: builder.add_text_field("visibility", STRING),
        timeline: builder.add_text_field("timeline", STORED),
        body: builder.add_text_field("body", TEXT),
    };
    (builder.build(), fields)
}

impl SearchIndex {
    /// Opens (or creates) the index in `dir` and starts following `state`.
    pub fn open(dir: &Path, state: Arc<RwLock<ChatState>>) -> Result<SearchIndex, SearchError> {
        std::fs::create_dir_all(dir)
            .map_err(|error| tantivy::TantivyError::IoError(Arc::new(error)))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(MmapDirectory::open(dir)?, schema)?;
        let cursor = index
            .load_metas()?
            .payload
            .and_then(|payload| payload.parse().ok())
            .unwrap_or(0);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
        let (wake, wakeups) = mpsc::sync_channel(1);
        let indexed_through = Arc::new(AtomicU64::new(cursor));
        let stop = Arc::new(AtomicBool::new(false));
        let indexer = Indexer {
            writer,
            reader: reader.clone(),
            fields,
            state,
            cursor: MessageId(cursor),
            indexed_through: indexed_through.clone(),
        };
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || indexer.run(wakeups, stop_flag))
            .map_err(|error| tantivy::TantivyError::IoError(Arc::new(error)))?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            wake,
            indexed_through,
            stop,
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Tells the indexer that new events are there (cheap; never blocks).
    pub fn notify(&self) {
        let _ = self.wake.try_send(());
    }

    /// The last event id whose changes are searchable.
    pub fn indexed_through(&self) -> MessageId {
        MessageId(self.indexed_through.load(Ordering::Acquire))
    }

    /// Ranked search for `text` among what `reader` may see, optionally within one room.
    /// Returns message locations, best first; the caller resolves them against the state.
    pub fn search(
        &self,
        text: &str,
        reader: UserId,
        room: Option<RoomId>,
        limit: usize,
    ) -> Result<Vec<(Timeline, MessageId, f32)>, SearchError> {
        let parser = QueryParser::for_index(&self.index, vec![self.fields.body]);
        let (parsed, _errors) = parser.parse_query_lenient(text);
        let term = |value: &str| -> Box<dyn Query> {
            let term = Term::from_field_text(self.fields.visibility, value);
            Box::new(TermQuery::new(term, IndexRecordOption::Basic))
        };
        let visible = BooleanQuery::new(vec![
            (Occur::Should, term("public")),
            (Occur::Should, term(&format!("user:{reader}"))),
        ]);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, parsed), (Occur::Must, Box::new(visible))];
        if let Some(room) = room {
            let term = Term::from_field_u64(self.fields.room, room.0);
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        let searcher = self.reader.searcher();
        let hits = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit.min(MAX_RESULTS)),
        )?;
        let mut results = Vec::with_capacity(hits.len());
        for (score, address) in hits {
            let document: TantivyDocument = searcher.doc(address)?;
            let id = document
                .get_first(self.fields.id)
                .and_then(|value| value.as_u64());
            let timeline = document
                .get_first(self.fields.timeline)
                .and_then(|value| value.as_str());
            if let (Some(id), Some(timeline)) = (id, timeline.and_then(parse_timeline)) {
                results.push((timeline, MessageId(id), score));
            }
        }
        Ok(results)
    }
}

impl SearchIndex {
    /// Indexes what is left, commits, and stops the indexer thread. Searches still work.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.notify();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SearchIndex {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Indexer {
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    state: Arc<RwLock<ChatState>>,
    cursor: MessageId,
    indexed_through: Arc<AtomicU64>,
}

impl Indexer {
    fn run(mut self, wakeups: mpsc::Receiver<()>, stop: Arc<AtomicBool>) {
        let mut last_commit = Instant::now();
        loop {
            let _ = wakeups.recv_timeout(IDLE_WAIT);
            // Commits are costly (a new segment each), so changes are gathered for at least
            // MIN_COMMIT_INTERVAL; search results lag the chat by about that much.
            let since = last_commit.elapsed();
            if since < MIN_COMMIT_INTERVAL && !stop.load(Ordering::Acquire) {
                std::thread::sleep(MIN_COMMIT_INTERVAL - since);
            }
            if let Err(error) = self.catch_up() {
                tracing::error!(%error, "search indexing failed; will retry");
            }
            last_commit = Instant::now();
            if stop.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Indexes every event after the cursor, then commits once.
    fn catch_up(&mut self) -> Result<(), SearchError> {
        let committed = self.cursor;
        let mut last = None;
        loop {
            match self.index_round() {
                Ok(Some((round_last, more))) => {
                    last = Some(round_last);
                    if !more {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // Drop what was added since the last commit and start again from it, so
                    // a post is never indexed twice (posts are added without a delete).
                    let _ = self.writer.rollback();
                    self.cursor = committed;
                    return Err(error);
                }
            }
        }
        let Some(last) = last else { return Ok(()) };
        let mut commit = self.writer.prepare_commit()?;
        commit.set_payload(&last.0.to_string());
        commit.commit()?;
        self.reader.reload()?;
        self.indexed_through.store(last.0, Ordering::Release);
        Ok(())
    }

    /// Adds one round of events to the writer (uncommitted). Returns the last event id taken
    /// and whether there may be more, or `None` when there was nothing new.
    fn index_round(&mut self) -> Result<Option<(MessageId, bool)>, SearchError> {
        let (changes, last, more) = {
            let state = self.state.read();
            let events = state.events_after(&state.all_timelines(), self.cursor, EVENTS_PER_ROUND);
            let Some(last) = events.last().map(|event| event.id) else {
                return Ok(None);
            };
            let more = events.len() == EVENTS_PER_ROUND;
            let changes: Vec<Change> = events
                .into_iter()
                .filter_map(|event| change(&state, event))
                .collect();
            (changes, last, more)
        };
        for change in changes {
            if change.replaces {
                self.writer
                    .delete_term(Term::from_field_u64(self.fields.id, change.id.0));
            }
            if let Some(message) = change.current {
                self.writer.add_document(self.document(&message))?;
            }
        }
        self.cursor = last;
        Ok(Some((last, more)))
    }

    fn document(&self, message: &MessageView) -> TantivyDocument {
        let mut document = doc!(
            self.fields.id => message.id.0,
            self.fields.body => message.body.clone(),
            self.fields.timeline => format_timeline(message.timeline),
        );
        match message.timeline {
            Timeline::Room(room) => {
                document.add_u64(self.fields.room, room.0);
                document.add_text(self.fields.visibility, "public");
            }
            Timeline::Direct(a, b) => {
                document.add_text(self.fields.visibility, format!("user:{a}"));
                document.add_text(self.fields.visibility, format!("user:{b}"));
            }
        }
        document
    }
}

fn format_timeline(timeline: Timeline) -> String {
    match timeline {
        Timeline::Room(room) => format!("r:{room}"),
        Timeline::Direct(a, b) => format!("d:{a}:{b}"),
    }
}

fn parse_timeline(text: &str) -> Option<Timeline> {
    let mut parts = text.split(':');
    let timeline = match (parts.next()?, parts.next()?.parse().ok()?, parts.next()) {
        ("r", room, None) => Timeline::Room(RoomId(room)),
        ("d", a, Some(b)) => Timeline::Direct(UserId(a), UserId(b.parse().ok()?)),
        _ => return None,
    };
    Some(timeline)
}

/// A message whose indexed text must change: re-add it with its current text, or drop it.
struct Change {
    id: MessageId,
    current: Option<MessageView>,
    /// Whether the index may hold an older version (an edit or delete). A post is new:
    /// every event after the cursor is unindexed, so it needs no delete, which is much of
    /// the indexing cost (each delete is looked up in every segment at the next commit).
    replaces: bool,
}

fn change(state: &ChatState, event: dschat_core::chat::EventView) -> Option<Change> {
    let (target, replaces) = match &event.kind {
        EventViewKind::Posted(message) => (message.id, false),
        EventViewKind::Edited { target, .. } | EventViewKind::Deleted { target } => (*target, true),
        _ => return None,
    };
    let current = state
        .message(event.timeline, target)
        .filter(|message| !message.deleted);
    Some(Change {
        id: target,
        current,
        replaces,
    })
}
