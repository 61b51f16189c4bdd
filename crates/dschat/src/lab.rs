//! `dschat lab`: a local cluster on loopback ports, with fault controls.
//!
//! The lab is a supervisor process. It starts N `dschat serve` processes (each its own data
//! directory, HTTP port and peer port, in lab mode), waits until they have elected a leader,
//! prints where they are, and serves the **lab controls** on its own port:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /lab/api/cluster` | every node: address, process state, and its `/api/v1/cluster` status |
//! | `POST /lab/api/nodes/{id}/crash` | `kill -9` the node's process |
//! | `POST /lab/api/nodes/{id}/restart` | start a crashed node again on the same data |
//! | `POST /lab/api/nodes/{id}/pause`, `/resume` | SIGSTOP / SIGCONT the node's process |
//! | `PUT /lab/api/nodes/{id}/clock` | `{"skew_ms": -5000}`: skew the node's wall clock |
//! | `PUT /lab/api/links` | `{"from":[1],"to":[2,3],"cut":true}` (also `delay_ms`, `loss_percent`, `one_way`) |
//! | `POST /lab/api/heal` | clear every link fault and skew, resume paused nodes, restart crashed ones |
//! | `GET /lab/api/trace?after=1:40,2:17` | the Raft messages the nodes sent and received after each node's cursor |
//! | `GET /lab` | the dashboard: nodes, logs, a live space-time diagram, fault buttons, guided demos |
//!
//! Crashes and pauses are done by the supervisor to the processes; link faults and clock skew
//! are set on the nodes themselves through their lab-only admin routes. Ctrl-C stops every
//! node and the lab.

use anyhow::{bail, Context};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// How long the lab waits for its cluster to elect a leader at start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Bound: nodes in one lab.
const MAX_LAB_NODES: usize = 9;

/// Options of `dschat lab`.
#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Port of the lab controls; node i serves HTTP on port+i, its peers on port+100+i and
    /// IRC on port+200+i. 0 picks free ports.
    #[arg(long, default_value_t = 7070)]
    port: u16,
    /// Directory for the nodes' data (node-1/, node-2/, ...) and logs (node-1.log, ...).
    #[arg(long, default_value = "dschat-lab")]
    data_dir: PathBuf,
    /// Delete the data directory first (start a brand-new cluster).
    #[arg(long)]
    fresh: bool,
}

struct LabNode {
    id: u64,
    http: SocketAddr,
    peer: SocketAddr,
    irc: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

struct Lab {
    nodes: Mutex<Vec<LabNode>>,
    executable: PathBuf,
    peers: String,
    client: reqwest::Client,
}

/// Runs the lab until Ctrl-C.
pub async fn run(args: LabArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > MAX_LAB_NODES {
        bail!("--nodes must be from 1 to {MAX_LAB_NODES}");
    }
    if args.fresh && args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("removing {}", args.data_dir.display()))?;
    }
    std::fs::create_dir_all(&args.data_dir)?;
    let controls = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let control_addr = controls.local_addr()?;
    let ports = node_ports(args.port, args.nodes)?;
    let nodes: Vec<LabNode> = ports
        .into_iter()
        .enumerate()
        .map(|(i, (http, peer, irc))| {
            let id = i as u64 + 1;
            LabNode {
                id,
                http,
                peer,
                irc,
                data_dir: args.data_dir.join(format!("node-{id}")),
                log: args.data_dir.join(format!("node-{id}.log")),
                child: None,
                paused: false,
            }
        })
        .collect();
    let peers = nodes
        .iter()
        .map(|n| format!("{}={}", n.id, n.peer))
        .collect::<Vec<_>>()
        .join(",");
    let lab = Arc::new(Lab {
        nodes: Mutex::new(nodes),
        executable: std::env::current_exe().context("finding the dschat executable")?,
        peers,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?,
    });
    {
        let mut nodes = lab.nodes.lock().await;
        for node in nodes.iter_mut() {
            lab.start(node)?;
        }
    }
    wait_for_leader(&lab).await?;
    say(&format!("dschat lab: {} nodes on loopback", args.nodes));
    for node in lab.nodes.lock().await.iter() {
        say(&format!(
            "  node {}: http://{}   (IRC {}, peers {}, data {}, log {})",
            node.id,
            node.http,
            node.irc,
            node.peer,
            node.data_dir.display(),
            node.log.display()
        ));
    }
    say(&format!(
        "  controls: http://{control_addr}/lab/api/cluster   (crash, restart, pause, cut links, skew clocks)"
    ));
    say(&format!("  dashboard: http://{control_addr}/lab"));
    say("Stop with Ctrl-C.");
    let app = Router::new()
        .route("/", get(index))
        .route("/lab", get(dashboard))
        .route("/lab/api/trace", get(trace))
        .route("/lab/api/cluster", get(cluster))
        .route("/lab/api/nodes/{id}/{action}", post(node_action))
        .route("/lab/api/nodes/{id}/clock", put(clock))
        .route("/lab/api/links", put(links))
        .route("/lab/api/heal", post(heal))
        .with_state(lab.clone());
    let server = axum::serve(controls, app).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = server => result?,
        _ = terminate.recv() => {}
    }
    say("stopping the lab's nodes...");
    for node in lab.nodes.lock().await.iter_mut() {
        stop(node).await;
    }
    say("dschat lab stopped.");
    Ok(())
}

/// The HTTP, peer and IRC address of each node.
fn node_ports(
    base: u16,
    count: usize,
) -> anyhow::Result<Vec<(SocketAddr, SocketAddr, SocketAddr)>> {
    let mut ports = Vec::with_capacity(count);
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
    for i in 1..=count as u16 {
        let (http, peer, irc) = if base == 0 {
            (free_port()?, free_port()?, free_port()?)
        } else {
            (base + i, base + 100 + i, base + 200 + i)
        };
        ports.push((local(http), local(peer), local(irc)));
    }
    Ok(ports)
}

/// A port that was free a moment ago (the node binds it right after).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Lab {
    fn start(&self, node: &mut LabNode) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .with_context(|| format!("opening {}", node.log.display()))?;
        let child = Command::new(&self.executable)
            .arg("serve")
            .args(["--node-id", &node.id.to_string()])
            .args(["--peers", &self.peers])
            .args(["--http", &node.http.to_string()])
            .args(["--peer-listen", &node.peer.to_string()])
            .args(["--irc", &node.irc.to_string()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--cluster-id", "lab", "--lab", "--no-rate-limits"])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting a node")?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    async fn node_status(&self, node: &LabNode) -> Option<Value> {
        if node.paused || node.child.is_none() {
            return None;
        }
        let url = format!("http://{}/api/v1/cluster", node.http);
        let response = self
            .client
            .get(url)
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    async fn set_on_node(&self, http: SocketAddr, path: &str, body: Value) -> Result<(), String> {
        let url = format!("http://{http}{path}");
        match self.client.put(&url).json(&body).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("{url}: {}", response.status())),
            Err(error) => Err(format!("{url}: {error}")),
        }
    }
}

async fn wait_for_leader(lab: &Lab) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let nodes = lab.nodes.lock().await;
        let mut leader_known = 0;
        for node in nodes.iter() {
            if let Some(status) = lab.node_status(node).await {
                if !status["leader"].is_null() {
                    leader_known += 1;
                }
            }
        }
        if leader_known == nodes.len() {
            return Ok(());
        }
        drop(nodes);
        if Instant::now() > deadline {
            bail!(
                "the lab's nodes did not elect a leader within {START_TIMEOUT:?}; see their logs"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop(node: &mut LabNode) {
    let Some(mut child) = node.child.take() else {
        return;
    };
    if let Some(pid) = child.id() {
        signal(pid, libc::SIGCONT);
        signal(pid, libc::SIGTERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid of a child this process started; no memory is shared.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

fn say(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

type Answer = Result<Json<Value>, (StatusCode, String)>;

/// The dashboard page (plain HTML and JavaScript, no outside assets).
const DASHBOARD_HTML: &str = include_str!("lab/dashboard.html");

async fn dashboard() -> axum::response::Html<&'static str> {
    axum::response::Html(DASHBOARD_HTML)
}

#[derive(Deserialize)]
struct TraceQuery {
    /// `node:seq` pairs, comma-separated: each node's last event seen.
    #[serde(default)]
    after: String,
}

/// Every running node's trace events after the cursor given for it, merged by time.
async fn trace(
    State(lab): State<Arc<Lab>>,
    axum::extract::Query(query): axum::extract::Query<TraceQuery>,
) -> Json<Value> {
    let cursors: std::collections::BTreeMap<u64, u64> = query
        .after
        .split(',')
        .filter_map(|pair| {
            let (node, seq) = pair.split_once(':')?;
            Some((node.trim().parse().ok()?, seq.trim().parse().ok()?))
        })
        .collect();
    let targets: Vec<(u64, SocketAddr)> = lab
        .nodes
        .lock()
        .await
        .iter()
        .filter(|n| n.child.is_some() && !n.paused)
        .map(|n| (n.id, n.http))
        .collect();
    let mut events = Vec::new();
    let mut next = json!({});
    for (id, http) in targets {
        let after = cursors.get(&id).copied().unwrap_or(0);
        let url = format!("http://{http}/api/v1/lab/trace?after={after}");
        let answer = lab
            .client
            .get(url)
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        let Ok(response) = answer else { continue };
        let Ok(body) = response.json::<Value>().await else {
            continue;
        };
        let node_events = body["events"].as_array().cloned().unwrap_or_default();
        let last = node_events
            .last()
            .and_then(|e| e["seq"].as_u64())
            .unwrap_or(after);
        next[id.to_string()] = json!(last);
        events.extend(node_events);
    }
    events.sort_by_key(|e| e["time_us"].as_u64().unwrap_or(0));
    Json(json!({ "events": events, "cursors": next }))
}

fn unknown_node(id: u64) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, format!("no node {id} in this lab"))
}

async fn index(State(lab): State<Arc<Lab>>) -> Json<Value> {
    let nodes = lab.nodes.lock().await;
    Json(json!({
        "lab": "dschat lab",
        "nodes": nodes.iter().map(|n| json!({"id": n.id, "http": format!("http://{}", n.http)})).collect::<Vec<_>>(),
        "controls": "/lab/api/cluster",
    }))
}

async fn cluster(State(lab): State<Arc<Lab>>) -> Json<Value> {
    let mut nodes = lab.nodes.lock().await;
    let mut report = Vec::new();
    for node in nodes.iter_mut() {
        let exited = match node.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(_))) => true,
            Some(_) => false,
            None => true,
        };
        if exited {
            node.child = None;
        }
        let process = match (&node.child, node.paused) {
            (None, _) => "crashed",
            (Some(_), true) => "paused",
            (Some(_), false) => "running",
        };
        report.push(json!({
            "id": node.id,
            "http": format!("http://{}", node.http),
            "peer_addr": node.peer.to_string(),
            "process": process,
            "pid": node.child.as_ref().and_then(|c| c.id()),
            "status": lab.node_status(node).await,
        }));
    }
    Json(json!({ "nodes": report }))
}

async fn node_action(
    State(lab): State<Arc<Lab>>,
    Path((id, action)): Path<(u64, String)>,
) -> Answer {
    let mut nodes = lab.nodes.lock().await;
    let node = nodes
        .iter_mut()
        .find(|n| n.id == id)
        .ok_or_else(|| unknown_node(id))?;
    let pid = node.child.as_ref().and_then(|c| c.id());
    match (action.as_str(), pid) {
        ("crash", Some(_)) => {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill().await;
            }
            node.paused = false;
            tracing::warn!(node = id, "lab: node crashed (kill -9)");
        }
        ("restart", None) => {
            lab.start(node)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            tracing::warn!(node = id, "lab: node restarted");
        }
        ("pause", Some(pid)) => {
            signal(pid, libc::SIGSTOP);
            node.paused = true;
        }
        ("resume", Some(pid)) => {
            signal(pid, libc::SIGCONT);
            node.paused = false;
        }
        ("crash" | "pause" | "resume", None) => {
            return Err((StatusCode::CONFLICT, format!("node {id} is not running")))
        }
        ("restart", Some(_)) => {
            return Err((StatusCode::CONFLICT, format!("node {id} is running")))
        }
        _ => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("unknown action {action:?}: crash, restart, pause or resume"),
            ))
        }
    }
    Ok(Json(json!({"node": id, "done": action})))
}

#[derive(Deserialize)]
struct ClockBody {
    skew_ms: i64,
}

async fn clock(
    State(lab): State<Arc<Lab>>,
    Path(id): Path<u64>,
    Json(body): Json<ClockBody>,
) -> Answer {
    let http = {
        let nodes = lab.nodes.lock().await;
        nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| unknown_node(id))?
            .http
    };
    lab.set_on_node(http, "/api/v1/lab/clock", json!({"skew_ms": body.skew_ms}))
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    Ok(Json(json!({"node": id, "skew_ms": body.skew_ms})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksBody {
    from: Vec<u64>,
    to: Vec<u64>,
    #[serde(default)]
    cut: bool,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    loss_percent: u8,
    /// Only from → to (a one-way partition); otherwise both directions.
    #[serde(default)]
    one_way: bool,
}

async fn links(State(lab): State<Arc<Lab>>, Json(body): Json<LinksBody>) -> Answer {
    let fault =
        json!({"cut": body.cut, "delay_ms": body.delay_ms, "loss_percent": body.loss_percent});
    let addresses: Vec<(u64, SocketAddr)> = lab
        .nodes
        .lock()
        .await
        .iter()
        .map(|n| (n.id, n.http))
        .collect();
    let http_of = |id: u64| addresses.iter().find(|(n, _)| *n == id).map(|(_, a)| *a);
    let mut pairs = Vec::new();
    for &a in &body.from {
        for &b in &body.to {
            if a == b {
                continue;
            }
            pairs.push((a, b));
            if !body.one_way {
                pairs.push((b, a));
            }
        }
    }
    let mut failures = Vec::new();
    for &(a, b) in &pairs {
        let http = http_of(a).ok_or_else(|| unknown_node(a))?;
        http_of(b).ok_or_else(|| unknown_node(b))?;
        if let Err(error) = lab
            .set_on_node(http, &format!("/api/v1/lab/links/{b}"), fault.clone())
            .await
        {
            failures.push(error);
        }
    }
    Ok(Json(
        json!({"links": pairs, "fault": fault, "unreachable": failures}),
    ))
}

async fn heal(State(lab): State<Arc<Lab>>) -> Answer {
    let mut nodes = lab.nodes.lock().await;
    let mut restarted = Vec::new();
    for node in nodes.iter_mut() {
        match (node.child.as_ref().and_then(|c| c.id()), node.paused) {
            (Some(pid), true) => {
                signal(pid, libc::SIGCONT);
                node.paused = false;
            }
            (None, _) => {
                lab.start(node)
                    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                restarted.push(node.id);
            }
            _ => {}
        }
    }
    let ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    let mut failures = Vec::new();
    // A restarted node starts with no faults; only the others need clearing.
    for node in nodes.iter().filter(|n| !restarted.contains(&n.id)) {
        let clear = json!({"cut": false, "delay_ms": 0, "loss_percent": 0});
        for &peer in &ids {
            if peer != node.id {
                let path = format!("/api/v1/lab/links/{peer}");
                if let Err(e) = lab.set_on_node(node.http, &path, clear.clone()).await {
                    failures.push(e);
                }
            }
        }
        if let Err(e) = lab
            .set_on_node(node.http, "/api/v1/lab/clock", json!({"skew_ms": 0}))
            .await
        {
            failures.push(e);
        }
    }
    Ok(Json(
        json!({"healed": true, "restarted": restarted, "unreachable": failures}),
    ))
}
