//! `dschat bench posts`: acknowledged posts per second and latency on one node.
//!
//! Starts a node in this process (fsync on, rate limits off) with its data in a fresh
//! directory on the current file system (not /tmp, which may be memory-backed and would make
//! fsync free), or uses `--server`. For each client count it runs that many closed-loop
//! clients, each with its own account, posting `--body-bytes` messages to one room, and
//! prints posts/s and latency percentiles of acknowledged posts.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `dschat bench posts`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Concurrent clients per run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    clients: Vec<usize>,
    /// Measured seconds per run (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 256)]
    body_bytes: usize,
    /// Benchmark a running server instead (it should run with --no-rate-limits).
    #[arg(long)]
    server: Option<String>,
    /// Data directory of the in-process server [default: a fresh ./dschat-bench-<pid>, removed after]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

struct Run {
    clients: usize,
    /// Log entries made durable per fdatasync during the run, warm-up included (group commit).
    entries_per_sync: f64,
    posts: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints its table.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (server, local) = match &args.server {
        Some(server) => (server.trim_end_matches('/').to_string(), None),
        None => {
            let data_dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("dschat-bench-{}", std::process::id())));
            let remove_after = args.data_dir.is_none();
            let mut config = dschat_server::config::ServerConfig {
                data_dir: data_dir.clone(),
                ..Default::default()
            };
            config.rate_limits = dschat_server::config::RateLimits::unlimited();
            let node = tokio::task::spawn_blocking(move || dschat_server::node::Node::open(config))
                .await??;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let app = dschat_server::api::router(node.clone())
                .into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move { axum::serve(listener, app).await });
            (
                format!("http://{address}"),
                Some((node, data_dir, remove_after)),
            )
        }
    };
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(max_clients)
        .build()?;
    let tokens = prepare(&http, &server, max_clients).await?;
    let body = "x".repeat(args.body_bytes);
    let mut runs = Vec::new();
    for &clients in &args.clients {
        runs.push(
            measure(
                &http,
                &server,
                &tokens[..clients],
                &body,
                Duration::from_secs(args.seconds),
            )
            .await?,
        );
    }
    println!(
        "\nacknowledged posts on one node (fsync on, {}-byte bodies, {} s per run)",
        args.body_bytes, args.seconds
    );
    println!(
        "{:>8} {:>10} {:>9} {:>9} {:>10} {:>12}",
        "clients", "posts/s", "p50 ms", "p99 ms", "p99.9 ms", "posts/fsync"
    );
    for mut run in runs {
        run.latencies.sort_unstable();
        println!(
            "{:>8} {:>10.0} {:>9.2} {:>9.2} {:>10.2} {:>12.1}",
            run.clients,
            run.posts as f64 / run.elapsed.as_secs_f64(),
            percentile(&run.latencies, 0.50),
            percentile(&run.latencies, 0.99),
            percentile(&run.latencies, 0.999),
            run.entries_per_sync
        );
    }
    if let Some((node, data_dir, remove_after)) = local {
        tokio::task::spawn_blocking(move || node.shutdown()).await?;
        if remove_after {
            std::fs::remove_dir_all(&data_dir)
                .with_context(|| format!("removing {}", data_dir.display()))?;
        }
    }
    Ok(())
}

/// Registers one account per client and has them all join the bench room.
async fn prepare(
    http: &reqwest::Client,
    server: &str,
    clients: usize,
) -> anyhow::Result<Vec<String>> {
    let progress = ProgressBar::new(clients as u64).with_style(ProgressStyle::with_template(
        "registering {pos}/{len} {bar:40} {elapsed}",
    )?);
    let run_tag = std::process::id();
    let mut tokens = Vec::with_capacity(clients);
    for client in 0..clients {
        let credentials =
            json!({"nickname": format!("bench{run_tag}_{client}"), "password": "bench-password"});
        let session: serde_json::Value = http
            .post(format!("{server}/api/v1/accounts"))
            .json(&credentials)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = session["token"].as_str().context("no token")?.to_string();
        let room = format!("bench{run_tag}");
        if client == 0 {
            http.post(format!("{server}/api/v1/rooms"))
                .bearer_auth(&token)
                .json(&json!({"name": room}))
                .send()
                .await?
                .error_for_status()?;
        } else {
            http.put(format!("{server}/api/v1/rooms/{room}/members/me"))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?;
        }
        tokens.push(token);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(tokens)
}

/// The server's (fsyncs, entries made durable) so far, from its health endpoint.
async fn log_counters(http: &reqwest::Client, server: &str) -> anyhow::Result<(u64, u64)> {
    let health: serde_json::Value = http
        .get(format!("{server}/api/v1/health"))
        .send()
        .await?
        .json()
        .await?;
    let counter = |name: &str| {
        health[name]
            .as_u64()
            .with_context(|| format!("health has no {name}"))
    };
    Ok((counter("log_syncs")?, counter("log_entries")?))
}

async fn measure(
    http: &reqwest::Client,
    server: &str,
    tokens: &[String],
    body: &str,
    duration: Duration,
) -> anyhow::Result<Run> {
    let url = format!("{server}/api/v1/rooms/bench{}/messages", std::process::id());
    let warm_up = Duration::from_secs(1);
    let start = Instant::now();
    let (measure_from, deadline) = (start + warm_up, start + warm_up + duration);
    let counted = Arc::new(AtomicU64::new(0));
    let log_before = log_counters(http, server).await?;
    let mut tasks = Vec::new();
    for token in tokens {
        let (http, url, token, counted) =
            (http.clone(), url.clone(), token.clone(), counted.clone());
        let payload = json!({"body": body});
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                http.post(&url)
                    .bearer_auth(&token)
                    .json(&payload)
                    .send()
                    .await?
                    .error_for_status()?;
                if sent >= measure_from {
                    latencies.push(sent.elapsed());
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let progress = ProgressBar::new((warm_up + duration).as_millis() as u64).with_style(
        ProgressStyle::with_template(&format!("{:>4} clients {{bar:40}} {{msg}}", tokens.len()))?,
    );
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.set_position(start.elapsed().as_millis() as u64);
        progress.set_message(format!("{} posts", counted.load(Ordering::Relaxed)));
    }
    progress.finish_and_clear();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let log_after = log_counters(http, server).await?;
    let syncs = (log_after.0 - log_before.0).max(1) as f64;
    Ok(Run {
        clients: tokens.len(),
        entries_per_sync: (log_after.1 - log_before.1) as f64 / syncs,
        posts: latencies.len(),
        elapsed: duration,
        latencies,
    })
}
