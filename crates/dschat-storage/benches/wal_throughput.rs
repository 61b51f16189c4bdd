//! Durable 256-byte appends per second, with 1 and with 100 concurrent writers, next to the
//! raw `fdatasync` rate of the same disk measured in the same run. A benchmark, not a test.
//!
//! Group commit: writers hand their entries to one committer thread and wait; the committer
//! takes everything waiting (up to [`MAX_BATCH_ENTRIES`]), appends it as one batch, syncs once
//! and wakes those writers. It never waits for more work to arrive, so an idle log adds no
//! latency: a lone writer gets one sync per append.
//!
//! Two designs of writers are measured. *Threads*: each writer is an OS thread that sleeps
//! on a condition variable until its batch is durable; on a small machine the wake-ups of a
//! hundred threads, not the fsync, set the pace. *Tasks*: each writer is an async task (as in
//! the dschat server) that waits on a one-shot channel; the committer thread wakes them with
//! no system call per writer, so nearly all writers make it into the next batch.
//!
//! Run: `cargo bench -p dschat-storage --bench wal_throughput`. The log goes to a temporary
//! directory under `DSCHAT_BENCH_DIR` (default: the `target` directory), which must be on the
//! disk to measure (not a tmpfs). `DSCHAT_BENCH_SECONDS` sets each measurement's length per round and `DSCHAT_BENCH_ROUNDS`
//! the number of interleaved rounds.

use dschat_core::ids::{LogIndex, Term};
use dschat_storage::{Wal, WalEntry, WalOptions};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes of each appended payload.
const PAYLOAD_BYTES: usize = 256;
/// Most entries the committer puts in one batch (one sync); the rest wait for the next.
const MAX_BATCH_ENTRIES: usize = 10_000;
/// Longest time the task committer waits to fill a batch as large as the previous one.
const BATCH_GATHER_LIMIT: Duration = Duration::from_micros(100);
/// Default length of each measurement in one round.
const DEFAULT_MEASUREMENT_SECONDS: u64 = 2;
/// Default number of interleaved rounds.
const DEFAULT_ROUNDS: u64 = 3;

/// One measured configuration.
struct Measurement {
    name: String,
    appends: u64,
    syncs: u64,
    elapsed: Duration,
}

impl Measurement {
    fn appends_per_second(&self) -> f64 {
        self.appends as f64 / self.elapsed.as_secs_f64()
    }

    fn syncs_per_thousand_appends(&self) -> f64 {
        self.syncs as f64 * 1000.0 / self.appends.max(1) as f64
    }
}

/// Appending 256 bytes to a plain file and `fdatasync`ing, in a loop: what the disk allows.
fn raw_fdatasync(directory: &Path, duration: Duration) -> Measurement {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(directory.join("raw"))
        .expect("create the raw file");
    let payload = [7u8; PAYLOAD_BYTES];
    let start = Instant::now();
    let mut syncs = 0u64;
    while start.elapsed() < duration {
        file.write_all_at(&payload, syncs * PAYLOAD_BYTES as u64)
            .expect("write");
        file.sync_data().expect("fdatasync");
        syncs += 1;
    }
    Measurement {
        name: "raw append + fdatasync".to_string(),
        appends: syncs,
        syncs,
        elapsed: start.elapsed(),
    }
}

/// One writer: append one entry, sync, repeat.
fn single_writer(directory: &Path, duration: Duration) -> Measurement {
    let mut wal = Wal::open(&directory.join("single"), WalOptions::default()).expect("open");
    let payload = vec![7u8; PAYLOAD_BYTES];
    let start = Instant::now();
    let mut appends = 0u64;
    while start.elapsed() < duration {
        let entry = WalEntry {
            index: wal.last_index().next(),
            term: Term(1),
            payload: payload.clone(),
        };
        wal.append(&[entry]).expect("append");
        wal.sync().expect("sync");
        appends += 1;
    }
    Measurement {
        name: "WAL, 1 writer, append+sync".to_string(),
        appends,
        syncs: appends,
        elapsed: start.elapsed(),
    }
}

/// Requests waiting for the committer, and how many batches it has made durable.
#[derive(Default)]
struct CommitQueue {
    waiting: Vec<Vec<u8>>,
    /// Number of entries made durable so far; a writer's entry is durable when this passes
    /// its ticket.
    durable_count: u64,
    submitted_count: u64,
    syncs: u64,
    stopping: bool,
}

struct GroupCommit {
    queue: Mutex<CommitQueue>,
    work_arrived: Condvar,
    batch_durable: Condvar,
}

impl GroupCommit {
    /// Hands one payload to the committer and waits until it is durable.
    fn append_durable(&self, payload: Vec<u8>) {
        let mut queue = self.queue.lock().expect("queue");
        queue.waiting.push(payload);
        queue.submitted_count += 1;
        let ticket = queue.submitted_count;
        self.work_arrived.notify_one();
        while queue.durable_count < ticket {
            queue = self.batch_durable.wait(queue).expect("queue");
        }
    }

    /// The committer: batch whatever is waiting, append, sync once, wake the writers.
    fn run_committer(&self, mut wal: Wal) {
        loop {
            let batch = {
                let mut queue = self.queue.lock().expect("queue");
                while queue.waiting.is_empty() && !queue.stopping {
                    queue = self.work_arrived.wait(queue).expect("queue");
                }
                if queue.waiting.is_empty() {
                    return;
                }
                let take = queue.waiting.len().min(MAX_BATCH_ENTRIES);
                queue.waiting.drain(..take).collect::<Vec<_>>()
            };
            let first = wal.last_index().next();
            let entries: Vec<WalEntry> = batch
                .into_iter()
                .enumerate()
                .map(|(offset, payload)| WalEntry {
                    index: LogIndex(first.0 + offset as u64),
                    term: Term(1),
                    payload,
                })
                .collect();
            wal.append(&entries).expect("append");
            wal.sync().expect("sync");
            let mut queue = self.queue.lock().expect("queue");
            queue.durable_count += entries.len() as u64;
            queue.syncs += 1;
            self.batch_durable.notify_all();
        }
    }
}

/// `writers` threads, each appending durably in a loop through the group committer.
fn concurrent_writers(directory: &Path, writers: usize, duration: Duration) -> Measurement {
    let wal = Wal::open(
        &directory.join(format!("concurrent-{writers}")),
        WalOptions::default(),
    )
    .expect("open");
    let group = Arc::new(GroupCommit {
        queue: Mutex::new(CommitQueue::default()),
        work_arrived: Condvar::new(),
        batch_durable: Condvar::new(),
    });
    let committer = {
        let group = Arc::clone(&group);
        thread::spawn(move || group.run_committer(wal))
    };
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let group = Arc::clone(&group);
            thread::spawn(move || {
                while start.elapsed() < duration {
                    group.append_durable(vec![7u8; PAYLOAD_BYTES]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer");
    }
    let elapsed = start.elapsed();
    let (appends, syncs) = {
        let mut queue = group.queue.lock().expect("queue");
        queue.stopping = true;
        group.work_arrived.notify_all();
        (queue.durable_count, queue.syncs)
    };
    committer.join().expect("committer");
    Measurement {
        name: format!("WAL, {writers} thread writer(s), group commit"),
        appends,
        syncs,
        elapsed,
    }
}

/// One append handed to the task committer, with the channel that says it is durable.
type TaskRequest = (Vec<u8>, tokio::sync::oneshot::Sender<()>);

/// `writers` async tasks on a two-thread runtime, each appending durably in a loop through a
/// committer thread: it blocks for the first request, gathers more (see
/// [`BATCH_GATHER_LIMIT`]), appends them as one batch, syncs once and answers each on its
/// one-shot channel.
fn concurrent_tasks(directory: &Path, writers: usize, duration: Duration) -> Measurement {
    let mut wal = Wal::open(
        &directory.join(format!("tasks-{writers}")),
        WalOptions::default(),
    )
    .expect("open");
    let (sender, receiver) = std::sync::mpsc::sync_channel::<TaskRequest>(MAX_BATCH_ENTRIES);
    let committer = thread::spawn(move || {
        let (mut appends, mut syncs) = (0u64, 0u64);
        let mut previous_batch = 1;
        while let Ok(first) = receiver.recv() {
            let mut batch = vec![first];
            // Under load, gather as many requests as the previous batch held, waiting at most
            // BATCH_GATHER_LIMIT; idle (previous batch of one), there is no wait at all.
            let gather_until = Instant::now() + BATCH_GATHER_LIMIT;
            while batch.len() < previous_batch.min(MAX_BATCH_ENTRIES) {
                match receiver.recv_timeout(gather_until.saturating_duration_since(Instant::now()))
                {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            while batch.len() < MAX_BATCH_ENTRIES {
                match receiver.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            previous_batch = batch.len();
            let first_index = wal.last_index().next();
            let mut replies = Vec::with_capacity(batch.len());
            let entries: Vec<WalEntry> = batch
                .into_iter()
                .enumerate()
                .map(|(offset, (payload, reply))| {
                    replies.push(reply);
                    WalEntry {
                        index: LogIndex(first_index.0 + offset as u64),
                        term: Term(1),
                        payload,
                    }
                })
                .collect();
            wal.append(&entries).expect("append");
            wal.sync().expect("sync");
            appends += entries.len() as u64;
            syncs += 1;
            for reply in replies {
                let _ = reply.send(());
            }
        }
        (appends, syncs)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let start = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let sender = sender.clone();
                tokio::spawn(async move {
                    while start.elapsed() < duration {
                        let (reply, durable) = tokio::sync::oneshot::channel();
                        sender
                            .send((vec![7u8; PAYLOAD_BYTES], reply))
                            .expect("committer runs");
                        durable.await.expect("committer answers");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer");
        }
    });
    let elapsed = start.elapsed();
    drop(sender);
    let (appends, syncs) = committer.join().expect("committer");
    Measurement {
        name: format!("WAL, {writers} task writer(s), group commit"),
        appends,
        syncs,
        elapsed,
    }
}

fn bench_directory() -> PathBuf {
    std::env::var_os("DSCHAT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn environment_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Adds a round's measurement to the running total of its configuration.
fn accumulate(total: &mut Option<Measurement>, round: Measurement) {
    match total {
        None => *total = Some(round),
        Some(total) => {
            total.appends += round.appends;
            total.syncs += round.syncs;
            total.elapsed += round.elapsed;
        }
    }
}

fn main() {
    let duration = Duration::from_secs(environment_number(
        "DSCHAT_BENCH_SECONDS",
        DEFAULT_MEASUREMENT_SECONDS,
    ));
    let rounds = environment_number("DSCHAT_BENCH_ROUNDS", DEFAULT_ROUNDS);
    let parent = bench_directory();
    std::fs::create_dir_all(&parent).expect("create the benchmark directory");
    let directory = tempfile::tempdir_in(&parent).expect("create a temporary directory");
    let path = directory.path();
    println!("directory: {}", path.display());
    // Interleaved rounds, so a disk that is busy with other work at times affects every
    // configuration alike.
    let mut totals: [Option<Measurement>; 6] = Default::default();
    for _ in 0..rounds {
        accumulate(&mut totals[0], raw_fdatasync(path, duration));
        accumulate(&mut totals[1], single_writer(path, duration));
        accumulate(&mut totals[2], concurrent_writers(path, 1, duration));
        accumulate(&mut totals[3], concurrent_writers(path, 100, duration));
        accumulate(&mut totals[4], concurrent_tasks(path, 1, duration));
        accumulate(&mut totals[5], concurrent_tasks(path, 100, duration));
    }
    let measurements: Vec<Measurement> = totals.into_iter().flatten().collect();
    print_table(&measurements);
}

fn print_table(measurements: &[Measurement]) {
    let raw_rate = measurements[0].appends_per_second();
    println!(
        "{:<36} {:>12} {:>22} {:>10}",
        "configuration", "appends/s", "fsyncs/1000 appends", "% of raw"
    );
    for measurement in measurements {
        println!(
            "{:<36} {:>12.0} {:>22.1} {:>9.0}%",
            measurement.name,
            measurement.appends_per_second(),
            measurement.syncs_per_thousand_appends(),
            100.0 * measurement.appends_per_second() / raw_rate
        );
    }
    println!(
        "A writer waits for one fsync per append, so 100 writers reach at most 100 x the raw \
         fsync rate = {:.0} appends/s on this disk.",
        100.0 * raw_rate
    );
}
