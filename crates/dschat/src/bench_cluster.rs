//! `dschat bench cluster`: a 3-node dschat cluster against a 3-node etcd cluster, side by side.
//!
//! Both clusters run on this machine's loopback, fsync on, data in fresh directories under
//! the current directory (not /tmp, which may be memory-backed). One load generator drives
//! both with the same closed-loop clients, spread round-robin over the three nodes of each
//! (followers forward to the leader in both systems), writing values of the same size: a
//! dschat post of `--body-bytes` to one room, an etcd put of a value of that size under a
//! fresh key. It measures acknowledged writes/s and latency percentiles at each client count,
//! then the **failover window**: with writers running, `kill -9` the leader and time from the
//! kill to the first acknowledged write invoked after it; restart the node; repeat. For
//! dschat it then reads the failover room back and counts acknowledged posts that are missing
//! (there must be none).
//!
//! It prints a table with the ratio dschat/etcd and writes `results.md` and `results.svg`
//! to `--out`. `scripts/bench-cluster` installs etcd (Debian's `etcd-server`) and runs it.

use anyhow::{bail, Context};
use base64::Engine;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Options of `dschat bench cluster`.
#[derive(clap::Args, Debug)]
pub struct ClusterBenchArgs {
    /// Concurrent clients per run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    clients: Vec<usize>,
    /// Measured seconds per run (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    body_bytes: usize,
    /// How many times to kill the leader in the failover measurement.
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// The etcd server binary; `none` benchmarks dschat alone.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: String,
    /// Where to write results.md and results.svg.
    #[arg(long, default_value = "dschat-bench-cluster")]
    out: PathBuf,
}

/// Bound: clients of one run.
const MAX_CLIENTS: usize = 4_096;
/// A failover that takes longer than this is reported as such and the run goes on.
const FAILOVER_LIMIT: Duration = Duration::from_secs(20);
/// Writers running during the failover measurement.
const FAILOVER_WRITERS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum System {
    Dschat,
    Etcd,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Dschat => "dschat",
            System::Etcd => "etcd",
        }
    }
}

/// One node of either system: its process and how to restart it.
struct Member {
    command: Vec<String>,
    log: PathBuf,
    http: String,
    child: Option<Child>,
}

impl Member {
    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.command[0]))?;
        self.child = Some(child);
        Ok(())
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// A running 3-node cluster of one system, and how to write to it.
struct Cluster {
    system: System,
    members: Vec<Member>,
    http: reqwest::Client,
    /// dschat: the bearer token; etcd: unused.
    token: String,
    value: String,
    next_key: AtomicU64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn http_client(clients: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(10))
        .build()?)
}

impl Cluster {
    fn dschat(root: &Path, body_bytes: usize) -> anyhow::Result<Cluster> {
        let executable = std::env::current_exe()?.display().to_string();
        let ports: Vec<(u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("{}=127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (http, _))| Member {
                command: vec![
                    executable.clone(),
                    "serve".into(),
                    "--node-id".into(),
                    (i + 1).to_string(),
                    "--peers".into(),
                    peers.clone(),
                    "--http".into(),
                    format!("127.0.0.1:{http}"),
                    "--data-dir".into(),
                    root.join(format!("dschat-{}", i + 1)).display().to_string(),
                    "--no-rate-limits".into(),
                    "--no-irc".into(),
                ],
                log: root.join(format!("dschat-{}.log", i + 1)),
                http: format!("http://127.0.0.1:{http}"),
                child: None,
            })
            .collect();
        Ok(Cluster::new(System::Dschat, members, body_bytes))
    }

    fn etcd(root: &Path, binary: &str, body_bytes: usize) -> anyhow::Result<Cluster> {
        let ports: Vec<(u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{}=http://127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let name = format!("e{}", i + 1);
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                Member {
                    command: vec![
                        binary.to_string(),
                        "--name".into(),
                        name.clone(),
                        "--data-dir".into(),
                        root.join(format!("etcd-{}", i + 1)).display().to_string(),
                        "--listen-client-urls".into(),
                        client_url.clone(),
                        "--advertise-client-urls".into(),
                        client_url.clone(),
                        "--listen-peer-urls".into(),
                        peer_url.clone(),
                        "--initial-advertise-peer-urls".into(),
                        peer_url,
                        "--initial-cluster".into(),
                        initial.clone(),
                        "--initial-cluster-state".into(),
                        "new".into(),
                        "--initial-cluster-token".into(),
                        "dschat-bench".into(),
                    ],
                    log: root.join(format!("etcd-{}.log", i + 1)),
                    http: client_url,
                    child: None,
                }
            })
            .collect();
        Ok(Cluster::new(System::Etcd, members, body_bytes))
    }

    fn new(system: System, members: Vec<Member>, body_bytes: usize) -> Cluster {
        Cluster {
            system,
            members,
            http: reqwest::Client::new(),
            token: String::new(),
            value: "x".repeat(body_bytes),
            next_key: AtomicU64::new(0),
        }
    }

    async fn start(&mut self, max_clients: usize) -> anyhow::Result<()> {
        self.http = http_client(max_clients)?;
        for member in &mut self.members {
            member.start()?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.leader().await.is_none() {
            if Instant::now() > deadline {
                bail!("{} elected no leader in 30 s", self.system.name());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.system == System::Dschat {
            self.prepare_dschat().await?;
        }
        Ok(())
    }

    async fn prepare_dschat(&mut self) -> anyhow::Result<()> {
        let node = &self.members[0].http;
        let session: Value = self
            .http
            .post(format!("{node}/api/v1/accounts"))
            .json(&json!({"nickname": "bench", "password": "bench-password"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        self.token = session["token"].as_str().context("no token")?.to_string();
        for room in ["bench", "failover"] {
            self.http
                .post(format!("{node}/api/v1/rooms"))
                .bearer_auth(&self.token)
                .json(&json!({ "name": room }))
                .send()
                .await?
                .error_for_status()?;
        }
        Ok(())
    }

    /// The index of the member that leads, if one answers that it does.
    async fn leader(&self) -> Option<usize> {
        for (index, member) in self.members.iter().enumerate() {
            if member.child.is_none() {
                continue;
            }
            let leads = match self.system {
                System::Dschat => self
                    .http
                    .get(format!("{}/api/v1/cluster", member.http))
                    .timeout(Duration::from_millis(500))
                    .send()
                    .await
                    .ok()?
                    .json::<Value>()
                    .await
                    .is_ok_and(|s| s["role"] == "leader"),
                System::Etcd => match self
                    .http
                    .post(format!("{}/v3/maintenance/status", member.http))
                    .json(&json!({}))
                    .timeout(Duration::from_millis(500))
                    .send()
                    .await
                {
                    Ok(response) => response.json::<Value>().await.is_ok_and(|s| {
                        !s["leader"].is_null() && s["leader"] == s["header"]["member_id"]
                    }),
                    Err(_) => false,
                },
            };
            if leads {
                return Some(index);
            }
        }
        None
    }

    /// One write through member `via`; the dschat message id (etcd: 0) once acknowledged.
    async fn write(&self, via: usize, room: &str, body: &str) -> Option<u64> {
        let node = &self.members[via].http;
        match self.system {
            System::Dschat => {
                let response = self
                    .http
                    .post(format!("{node}/api/v1/rooms/{room}/messages"))
                    .bearer_auth(&self.token)
                    .json(&json!({ "body": body }))
                    .send()
                    .await
                    .ok()?;
                if !response.status().is_success() {
                    return None;
                }
                let message: Value = response.json().await.ok()?;
                message["id"].as_str()?.parse().ok()
            }
            System::Etcd => {
                let key = self.next_key.fetch_add(1, Ordering::Relaxed);
                let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
                let response = self
                    .http
                    .post(format!("{node}/v3/kv/put"))
                    .json(&json!({"key": encode(&format!("{room}/{key}")), "value": encode(body)}))
                    .send()
                    .await
                    .ok()?;
                response.status().is_success().then_some(0)
            }
        }
    }

    async fn stop(&mut self) {
        for member in &mut self.members {
            member.kill().await;
        }
    }
}

struct Throughput {
    clients: usize,
    writes_per_second: f64,
    latencies_ms: Vec<f64>,
    errors: u64,
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

async fn throughput(
    cluster: &Arc<Cluster>,
    clients: usize,
    seconds: u64,
    progress: &ProgressBar,
) -> Throughput {
    let warm_up = Instant::now() + Duration::from_secs(1);
    let end = warm_up + Duration::from_secs(seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let cluster = cluster.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let via = client % cluster.members.len();
            while Instant::now() < end {
                let started = Instant::now();
                let acknowledged = cluster.write(via, "bench", &cluster.value).await.is_some();
                if !acknowledged {
                    errors.fetch_add(1, Ordering::Relaxed);
                } else if started >= warm_up && Instant::now() <= end {
                    latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            latencies
        }));
    }
    let ticker = tokio::spawn({
        let progress = progress.clone();
        async move {
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(250)).await;
                progress.tick();
            }
        }
    });
    let mut latencies_ms = Vec::new();
    for task in tasks {
        latencies_ms.extend(task.await.unwrap_or_default());
    }
    ticker.abort();
    latencies_ms.sort_by(f64::total_cmp);
    Throughput {
        clients,
        writes_per_second: latencies_ms.len() as f64 / seconds as f64,
        latencies_ms,
        errors: errors.load(Ordering::Relaxed),
    }
}

struct Failover {
    windows_ms: Vec<f64>,
    acknowledged: usize,
    lost: usize,
}

/// Kills the leader `kills` times with writers running; times kill → first acknowledged write
/// invoked after the kill.
async fn failover(
    cluster: &mut Arc<Cluster>,
    kills: usize,
    progress: &ProgressBar,
) -> anyhow::Result<Failover> {
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let mut windows_ms = Vec::new();
    for kill in 0..kills {
        let Some(leader) = cluster.leader().await else {
            bail!("no leader before kill {kill}");
        };
        let killed_at = Arc::new(Mutex::new(None::<Instant>));
        let first_after = Arc::new(Mutex::new(None::<Instant>));
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for writer in 0..FAILOVER_WRITERS {
            let (cluster, killed_at, first_after, stop, acknowledged) = (
                cluster.clone(),
                killed_at.clone(),
                first_after.clone(),
                stop.clone(),
                acknowledged.clone(),
            );
            let via = (leader + 1 + writer % 2) % cluster.members.len();
            writers.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = format!("k{kill}-w{writer}-{n}");
                    let invoked = Instant::now();
                    if let Some(id) = cluster.write(via, "failover", &body).await {
                        acknowledged.lock().unwrap().push((body, id));
                        let after_kill = killed_at.lock().unwrap().is_some_and(|k| invoked >= k);
                        if after_kill {
                            first_after.lock().unwrap().get_or_insert(Instant::now());
                        }
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        kill_member(cluster, leader, &killed_at).await;
        let deadline = Instant::now() + FAILOVER_LIMIT;
        while first_after.lock().unwrap().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            let _ = writer.await;
        }
        let killed = killed_at.lock().unwrap().expect("the leader was killed");
        match *first_after.lock().unwrap() {
            Some(first) => windows_ms.push((first - killed).as_secs_f64() * 1000.0),
            None => windows_ms.push(f64::INFINITY),
        }
        restart_member(cluster, leader).await?;
        progress.inc(1);
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let lost = if cluster.system == System::Dschat {
        missing_posts(cluster, &acknowledged).await?
    } else {
        0
    };
    Ok(Failover {
        windows_ms,
        acknowledged: acknowledged.len(),
        lost,
    })
}

async fn kill_member(
    cluster: &Arc<Cluster>,
    index: usize,
    killed_at: &Arc<Mutex<Option<Instant>>>,
) {
    // Members sit behind the Arc the writers share; their processes are reached through the
    // pid, which is the one thing a kill needs.
    if let Some(pid) = cluster.members[index].child.as_ref().and_then(|c| c.id()) {
        // SAFETY: kill(2) on a child process this benchmark started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    *killed_at.lock().unwrap() = Some(Instant::now());
}

async fn restart_member(cluster: &mut Arc<Cluster>, index: usize) -> anyhow::Result<()> {
    let cluster = Arc::get_mut(cluster).context("the cluster is still shared")?;
    let member = &mut cluster.members[index];
    if let Some(mut child) = member.child.take() {
        let _ = child.wait().await;
    }
    member.start()?;
    // Let it rejoin before the next kill, so each kill meets a whole cluster.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// Acknowledged failover posts missing from the room, read back through every page.
async fn missing_posts(cluster: &Cluster, acknowledged: &[(String, u64)]) -> anyhow::Result<usize> {
    let mut present = BTreeSet::new();
    let mut after = 0u64;
    let node = &cluster.members[0].http;
    loop {
        let page: Value = cluster
            .http
            .get(format!(
                "{node}/api/v1/rooms/failover/messages?limit=500&after={after}"
            ))
            .bearer_auth(&cluster.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let messages = page["messages"].as_array().context("no messages")?;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let id: u64 = message["id"].as_str().context("no id")?.parse()?;
            present.insert(id);
            after = after.max(id);
        }
    }
    Ok(acknowledged
        .iter()
        .filter(|(_, id)| !present.contains(id))
        .count())
}

/// Runs the benchmark.
pub async fn run(args: ClusterBenchArgs) -> anyhow::Result<()> {
    raise_file_limit();
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);
    if max_clients > MAX_CLIENTS {
        bail!("at most {MAX_CLIENTS} clients");
    }
    let root =
        std::env::current_dir()?.join(format!("dschat-bench-cluster-data-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let mut systems = vec![System::Dschat];
    if args.etcd != "none" {
        if !Path::new(&args.etcd).exists() {
            bail!("{} not found: install Debian's etcd-server (scripts/bench-cluster does), or pass --etcd none", args.etcd);
        }
        systems.push(System::Etcd);
    }
    let steps = (systems.len() * (args.clients.len() + args.kills)) as u64;
    let progress = ProgressBar::new(steps).with_style(ProgressStyle::with_template(
        "{msg:32} {bar:30} {pos}/{len} {elapsed}",
    )?);
    let mut results = Vec::new();
    for system in systems {
        let mut cluster = match system {
            System::Dschat => Cluster::dschat(&root, args.body_bytes)?,
            System::Etcd => Cluster::etcd(&root, &args.etcd, args.body_bytes)?,
        };
        cluster.start(max_clients).await?;
        let mut cluster = Arc::new(cluster);
        let mut runs = Vec::new();
        for &clients in &args.clients {
            progress.set_message(format!("{}: {clients} clients", system.name()));
            runs.push(throughput(&cluster, clients, args.seconds, &progress).await);
            progress.inc(1);
        }
        progress.set_message(format!("{}: killing the leader", system.name()));
        let failover = failover(&mut cluster, args.kills, &progress).await?;
        Arc::get_mut(&mut cluster)
            .context("the cluster is still shared")?
            .stop()
            .await;
        results.push((system, runs, failover));
    }
    progress.finish_and_clear();
    let report = report(&args, &results);
    println!("{report}");
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("results.md"), &report)?;
    std::fs::write(args.out.join("results.svg"), chart(&args, &results))?;
    println!(
        "written: {0}/results.md, {0}/results.svg",
        args.out.display()
    );
    std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    Ok(())
}

fn raise_file_limit() {
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

type Results = Vec<(System, Vec<Throughput>, Failover)>;

fn report(args: &ClusterBenchArgs, results: &Results) -> String {
    let mut out = format!(
        "3-node clusters on loopback, fsync on, {}-byte values, {} s per run\n\n\
         | system | clients | writes/s | p50 ms | p99 ms | p99.9 ms | errors |\n|---|---|---|---|---|---|---|\n",
        args.body_bytes, args.seconds
    );
    for (system, runs, _) in results {
        for run in runs {
            let l = &run.latencies_ms;
            out += &format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n",
                system.name(),
                run.clients,
                run.writes_per_second,
                percentile(l, 0.5),
                percentile(l, 0.99),
                percentile(l, 0.999),
                run.errors
            );
        }
    }
    if results.len() == 2 {
        out += "\n| clients | throughput dschat/etcd | p50 latency dschat/etcd |\n|---|---|---|\n";
        for (ours, theirs) in results[0].1.iter().zip(&results[1].1) {
            out += &format!(
                "| {} | {:.2}x | {:.2}x |\n",
                ours.clients,
                ours.writes_per_second / theirs.writes_per_second,
                percentile(&ours.latencies_ms, 0.5) / percentile(&theirs.latencies_ms, 0.5)
            );
        }
    }
    out += "\nfailover: kill -9 of the leader to the first acknowledged write invoked after it\n\n\
            | system | kills | p50 ms | p99 ms | max ms | acknowledged | lost |\n|---|---|---|---|---|---|---|\n";
    for (system, _, failover) in results {
        let mut windows = failover.windows_ms.clone();
        windows.sort_by(f64::total_cmp);
        out += &format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            system.name(),
            windows.len(),
            percentile(&windows, 0.5),
            percentile(&windows, 0.99),
            windows.last().copied().unwrap_or(f64::NAN),
            failover.acknowledged,
            if *system == System::Dschat {
                failover.lost.to_string()
            } else {
                "not checked".into()
            }
        );
    }
    out
}

/// A bar chart of writes/s per client count, one bar per system.
fn chart(args: &ClusterBenchArgs, results: &Results) -> String {
    let (width, height, margin) = (720.0, 360.0, 60.0);
    let max = results
        .iter()
        .flat_map(|(_, runs, _)| runs.iter().map(|r| r.writes_per_second))
        .fold(1.0, f64::max);
    let groups = args.clients.len().max(1) as f64;
    let group_width = (width - 2.0 * margin) / groups;
    let bar_width = group_width / (results.len() as f64 + 1.0);
    let colors = ["#2b6cb0", "#c05621"];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"{margin}\" y=\"24\" font-size=\"15\">Acknowledged writes/s, 3 nodes, fsync on, {}-byte values</text>",
        args.body_bytes
    );
    for (s, (system, runs, _)) in results.iter().enumerate() {
        for (g, run) in runs.iter().enumerate() {
            // Leave room above the tallest bar for its label and the legend.
            let bar = (height - 2.0 * margin - 24.0) * run.writes_per_second / max;
            let x = margin + g as f64 * group_width + (s as f64 + 0.5) * bar_width;
            let y = height - margin - bar;
            svg += &format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.0}</text>",
                bar_width * 0.9,
                colors[s % 2],
                x + bar_width * 0.45,
                y - 4.0,
                run.writes_per_second
            );
        }
        svg += &format!(
            "<rect x=\"{:.1}\" y=\"36\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"46\">{}</text>",
            width - 180.0 + s as f64 * 80.0,
            colors[s % 2],
            width - 164.0 + s as f64 * 80.0,
            system.name()
        );
    }
    for (g, clients) in args.clients.iter().enumerate() {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{clients} clients</text>",
            margin + (g as f64 + 0.5) * group_width,
            height - margin + 18.0
        );
    }
    svg += &format!(
        "<line x1=\"{margin}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"black\"/></svg>\n",
        height - margin,
        width - margin
    );
    svg
}
