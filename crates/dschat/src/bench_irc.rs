//! `dschat bench irc`: one channel, many connected IRC clients, a few senders; delivered
//! lines per second and delivery latency, against any IRC server (dschat, inspircd,
//! ngircd: `scripts/bench-irc` runs all three in one go).
//!
//! Every client registers as a guest (`NICK`/`USER`), joins `#bench` and waits for the end of
//! NAMES. Then `--senders` of them send PRIVMSGs as fast as the server takes them (each
//! followed by a PING; at most [`SENDER_WINDOW_LINES`] unanswered), each carrying the
//! microseconds since the benchmark started; every client counts the PRIVMSGs
//! it receives and records how long each took to arrive. A benchmark measures; it does not
//! pass or fail.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Options of `dschat bench irc`.
#[derive(clap::Args, Debug)]
pub struct BenchIrcArgs {
    /// The IRC server, host:port; or several, comma-separated (the nodes of a cluster):
    /// client i connects to the (i mod n)-th, so clients and senders are spread over them.
    #[arg(long, default_value = "127.0.0.1:6667")]
    target: String,
    /// A name for the server in the output.
    #[arg(long, default_value = "dschat")]
    name: String,
    /// Connected clients in the channel (senders included).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How many of them send.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Instead: connect `--clients` idle clients (registered, in the channel) and report the
    /// server's resident memory per connection; needs `--server-pid`.
    #[arg(long, requires = "server_pid")]
    idle: bool,
    /// The server's process id, to read its resident memory from /proc (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// Clients connecting at once.
const CONNECT_CONCURRENCY: usize = 50;
/// Longest wait for one client to register and join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines a sender may have in flight (sent, its PING not yet answered): the server is kept
/// busy without queues growing without bound.
const SENDER_WINDOW_LINES: usize = 32;
/// Most latency samples kept (the rest are only counted).
const MAX_SAMPLES: usize = 5_000_000;

struct Shared {
    start: Instant,
    measuring: AtomicBool,
    delivered: AtomicU64,
    sent: AtomicU64,
    /// Delivery latencies in microseconds (at most [`MAX_SAMPLES`]).
    samples: std::sync::Mutex<Vec<u64>>,
}

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;
type Writer = tokio::net::tcp::OwnedWriteHalf;

/// The server client `index` connects to: the targets in turn.
fn target_of(targets: &str, index: usize) -> String {
    let targets: Vec<&str> = targets.split(',').map(str::trim).collect();
    targets[index % targets.len()].to_string()
}

async fn connect(target: &str, index: usize) -> anyhow::Result<(Reader, Writer)> {
    let stream = TcpStream::connect(target).await.context("connect")?;
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let hello = format!("NICK bench{index}\r\nUSER bench 0 * :bench\r\n");
    writer.write_all(hello.as_bytes()).await?;
    let mut line = String::new();
    let joined = async {
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                anyhow::bail!("closed while joining");
            }
            if let Some(token) = line.strip_prefix("PING ") {
                writer.write_all(format!("PONG {token}").as_bytes()).await?;
            }
            match line.split(' ').nth(1) {
                // Registered: now join (servers ignore JOIN before registration completes).
                Some("001") => writer.write_all(b"JOIN #bench\r\n").await?,
                Some("366") => return Ok(()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(JOIN_TIMEOUT, joined)
        .await
        .context("join timed out")??;
    Ok((reader, writer))
}

async fn receive(
    mut reader: Reader,
    shared: Arc<Shared>,
    window: Option<Arc<tokio::sync::Semaphore>>,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let Some(window) = &window {
            if line.contains(" PONG ") {
                window.add_permits(1);
            }
        }
        if !line.contains(" PRIVMSG #bench ") || !shared.measuring.load(Ordering::Relaxed) {
            continue;
        }
        let Some(text) = line.split(" :").nth(1) else {
            continue;
        };
        let Some(sent) = text
            .split(' ')
            .next()
            .and_then(|t| t.trim().parse::<u64>().ok())
        else {
            continue;
        };
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        let now = shared.start.elapsed().as_micros() as u64;
        let mut samples = shared.samples.lock().expect("not poisoned");
        if samples.len() < MAX_SAMPLES {
            samples.push(now.saturating_sub(sent));
        }
    }
}

async fn send(
    mut writer: Writer,
    shared: Arc<Shared>,
    stop: Instant,
    window: Arc<tokio::sync::Semaphore>,
) {
    let mut sequence = 0u64;
    while Instant::now() < stop {
        let Ok(Ok(permit)) = tokio::time::timeout(Duration::from_secs(1), window.acquire()).await
        else {
            continue;
        };
        permit.forget();
        let now = shared.start.elapsed().as_micros();
        let line =
            format!("PRIVMSG #bench :{now} {sequence} benchmark line\r\nPING :{sequence}\r\n");
        if writer.write_all(line.as_bytes()).await.is_err() {
            return;
        }
        sequence += 1;
        if shared.measuring.load(Ordering::Relaxed) {
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = writer.write_all(b"QUIT :done\r\n").await;
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

/// The resident memory of process `pid`, in KiB (VmRSS in /proc/PID/status).
fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .context("no VmRSS line")
}

/// Connects `args.clients` idle clients and prints the server's memory per connection.
async fn run_idle(args: &BenchIrcArgs, pid: u32) -> anyhow::Result<()> {
    let before = resident_kib(pid)?;
    let bar = ProgressBar::new(args.clients as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed})")
            .expect("a valid template"),
    );
    bar.set_message(format!("{}: connecting idle clients", args.name));
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = Vec::new();
    for index in 0..args.clients {
        let (target, permits, bar) = (target_of(&args.target, index), permits.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let (mut reader, writer) = connect(&target, index).await?;
            bar.inc(1);
            // Keep reading (answering nothing) so the server's output never backs up.
            let drain = tokio::spawn(async move {
                let mut line = String::new();
                while reader
                    .read_line(&mut line)
                    .await
                    .is_ok_and(|count| count > 0)
                {
                    line.clear();
                }
            });
            anyhow::Ok((writer, drain))
        }));
    }
    let mut connections = Vec::new();
    for task in tasks {
        connections.push(task.await??);
    }
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident_kib(pid)?;
    println!(
        "{:<10} idle clients={:<6} server resident memory {} KiB -> {} KiB: {:.1} KiB per connection",
        args.name,
        args.clients,
        before,
        after,
        after.saturating_sub(before) as f64 / args.clients.max(1) as f64
    );
    for (_, drain) in connections {
        drain.abort();
    }
    Ok(())
}

/// Runs the benchmark and prints one result line.
pub async fn run(args: BenchIrcArgs) -> anyhow::Result<()> {
    if let (true, Some(pid)) = (args.idle, args.server_pid) {
        return run_idle(&args, pid).await;
    }
    let shared = Arc::new(Shared {
        start: Instant::now(),
        measuring: AtomicBool::new(false),
        delivered: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        samples: std::sync::Mutex::new(Vec::new()),
    });
    let bar = ProgressBar::new(args.clients as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed})")
            .expect("a valid template"),
    );
    bar.set_message(format!("{}: connecting", args.name));
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut connecting = Vec::new();
    for index in 0..args.clients {
        let (target, permits, bar) = (target_of(&args.target, index), permits.clone(), bar.clone());
        connecting.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let connection = connect(&target, index).await;
            bar.inc(1);
            connection
        }));
    }
    let mut writers = Vec::new();
    let mut receivers = Vec::new();
    let mut windows = Vec::new();
    for (index, task) in connecting.into_iter().enumerate() {
        let (reader, writer) = task.await??;
        writers.push(writer);
        let window = (index < args.senders)
            .then(|| Arc::new(tokio::sync::Semaphore::new(SENDER_WINDOW_LINES)));
        windows.extend(window.clone());
        receivers.push(tokio::spawn(receive(reader, shared.clone(), window)));
    }
    bar.finish_and_clear();
    let warm_up = Duration::from_secs(1);
    let stop = Instant::now() + warm_up + Duration::from_secs(args.seconds);
    let mut senders = Vec::new();
    let sender_writers: Vec<Writer> = writers.drain(..args.senders.min(args.clients)).collect();
    for (writer, window) in sender_writers.into_iter().zip(windows) {
        senders.push(tokio::spawn(send(writer, shared.clone(), stop, window)));
    }
    tokio::time::sleep(warm_up).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let measured = Instant::now();
    let bar = ProgressBar::new(args.seconds).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} s").expect("a valid template"),
    );
    bar.set_message(format!("{}: measuring", args.name));
    for _ in 0..args.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        bar.inc(1);
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = measured.elapsed();
    bar.finish_and_clear();
    for sender in senders {
        let _ = sender.await;
    }
    drop(writers);
    // Receivers end when the server closes the connections; stop waiting after a while.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        for receiver in &mut receivers {
            let _ = receiver.await;
        }
    })
    .await;
    for receiver in receivers {
        receiver.abort();
    }
    let mut samples = std::mem::take(&mut *shared.samples.lock().expect("not poisoned"));
    samples.sort_unstable();
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let sent = shared.sent.load(Ordering::Relaxed);
    println!(
        "{:<10} clients={:<6} senders={:<3} sent/s={:>10.0} delivered lines/s={:>12.0} latency p50={:>9.2} ms p99={:>9.2} ms (samples {})",
        args.name,
        args.clients,
        args.senders,
        sent as f64 / elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.len(),
    );
    Ok(())
}
