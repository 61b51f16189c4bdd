//! `dschat serve`: one node with everything in one data directory.

use anyhow::Context;
use dschat_server::config::ServerConfig;
use dschat_server::node::Node;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Options of `dschat serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Directory for the write-ahead log (wal/), snapshots (state.redb), the search index
    /// (search/) and the id high-water mark [default: ./dschat-data]
    #[arg(long, env = "DSCHAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address for HTTP and WebSocket clients [default: 127.0.0.1:7070]
    #[arg(long, env = "DSCHAT_HTTP")]
    http: Option<SocketAddr>,
    /// Address for IRC clients [default: 127.0.0.1:6667]
    #[arg(long, env = "DSCHAT_IRC")]
    irc: Option<SocketAddr>,
    /// Do not open the IRC listener.
    #[arg(long, conflicts_with = "irc")]
    no_irc: bool,
    /// A TOML file with any of the server settings (see docs/configuration.md); flags win.
    #[arg(long, env = "DSCHAT_CONFIG")]
    config: Option<PathBuf>,
    /// Turn off rate limits (for benchmarks and load tests on a trusted machine).
    #[arg(long)]
    no_rate_limits: bool,
    /// This node's id in its cluster (0..1023); also the node field of the message ids it
    /// mints [default: 1]
    #[arg(long, env = "DSCHAT_NODE_ID")]
    node_id: Option<u64>,
    /// Run as a node of a Raft cluster. For a new cluster: every initial voter, this node
    /// included, as ID=HOST:PORT of its peer port, comma-separated
    /// (1=10.0.0.1:7170,2=10.0.0.2:7170,3=10.0.0.3:7170). With --join: members to contact.
    #[arg(long, env = "DSCHAT_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    peers: Vec<(u64, SocketAddr)>,
    /// Address this node listens on for its peers [default: this node's entry in --peers,
    /// or 127.0.0.1:7170]
    #[arg(long, env = "DSCHAT_PEER_LISTEN")]
    peer_listen: Option<SocketAddr>,
    /// The cluster's name; nodes of other clusters are refused [default: dschat]
    #[arg(long, env = "DSCHAT_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Start empty and wait to be added to a running cluster (`dschat cluster add`).
    #[arg(long)]
    join: bool,
    /// Lab mode: enable the fault controls on the admin API (used by `dschat lab`; never in
    /// production).
    #[arg(long, hide = true)]
    lab: bool,
}

/// Parses `ID=HOST:PORT`.
fn parse_peer(text: &str) -> Result<(u64, SocketAddr), String> {
    let (id, address) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected ID=HOST:PORT, e.g. 2=127.0.0.1:7172"))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: the node id must be a number"))?;
    let address = address
        .trim()
        .parse()
        .map_err(|error| format!("{text:?}: {error}"))?;
    Ok((id, address))
}

impl ServeArgs {
    /// The configuration these options describe.
    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => ServerConfig::default(),
        };
        if let Some(data_dir) = &self.data_dir {
            config.data_dir = data_dir.clone();
        }
        if let Some(http) = self.http {
            config.http_addr = http;
        }
        if let Some(irc) = self.irc {
            config.irc.addr = irc;
            config.irc.enabled = true;
        }
        if self.no_irc {
            config.irc.enabled = false;
        }
        if self.no_rate_limits {
            config.rate_limits = dschat_server::config::RateLimits::unlimited();
            config.irc.lines_per_second = 0.0;
        }
        if let Some(node_id) = self.node_id {
            config.node_id = node_id;
        }
        let clustered = !self.peers.is_empty() || self.join || self.lab;
        if clustered || config.cluster.is_some() {
            let mut cluster = config.cluster.take().unwrap_or_default();
            if !self.peers.is_empty() {
                cluster.peers = self.peers.iter().copied().collect();
            }
            if let Some(id) = &self.cluster_id {
                cluster.cluster_id = id.clone();
            }
            cluster.join |= self.join;
            cluster.lab |= self.lab;
            match (self.peer_listen, cluster.peers.get(&config.node_id)) {
                (Some(address), _) => cluster.peer_addr = address,
                (None, Some(&address)) if self.peers.iter().any(|p| p.0 == config.node_id) => {
                    cluster.peer_addr = address
                }
                _ => {}
            }
            config.cluster = Some(cluster);
        }
        Ok(config)
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let address = listener.local_addr()?;
    let irc_listener = match config.irc.enabled {
        true => Some(
            tokio::net::TcpListener::bind(config.irc.addr)
                .await
                .with_context(|| format!("cannot listen for IRC on {}", config.irc.addr))?,
        ),
        false => None,
    };
    let data_dir = config.data_dir.clone();
    let shutdown_requested = shutdown_signal().context("cannot install signal handlers")?;
    let node = tokio::task::spawn_blocking(move || Node::open(config))
        .await?
        .context("cannot open the data directory")?;
    say(&format!(
        "dschat is serving; data in {}",
        data_dir.display()
    ));
    say(&format!("  Web:       http://{address}/"));
    if let Some(cluster) = node.cluster() {
        let config = cluster.config();
        say(&format!(
            "  cluster:   node {} of cluster {:?}; peers on {}{}",
            cluster.id(),
            config.cluster_id,
            config.peer_addr,
            if config.join {
                " (waiting to be added)"
            } else {
                ""
            }
        ));
    }
    say(&format!(
        "  HTTP API:  http://{address}/api/v1   (OpenAPI: http://{address}/api/v1/openapi.json)"
    ));
    say(&format!("  WebSocket: ws://{address}/api/v1/stream"));
    let irc = match irc_listener {
        Some(listener) => {
            say(&format!(
                "  IRC:       irc://{}   (channel #name is room name)",
                listener.local_addr()?
            ));
            Some(tokio::spawn(dschat_server::irc::serve(
                listener,
                node.clone(),
            )))
        }
        None => None,
    };
    say(&format!(
        "  try:       dschat register --server http://{address} <nickname>"
    ));
    say("Stop with Ctrl-C.");
    let app = dschat_server::api::router(node.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    let (signalled, mut signal_seen) = tokio::sync::watch::channel(false);
    let hub = node.hub().clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_requested.await;
        // Feeds end with close code 1001 ("going away"); clients reconnect and resume.
        hub.close_all();
        let _ = signalled.send(true);
    });
    tokio::select! {
        result = server => result?,
        _ = async { let _ = signal_seen.wait_for(|seen| *seen).await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
        }
    }
    if let Some(irc) = irc {
        irc.abort();
    }
    tokio::task::spawn_blocking(move || node.shutdown()).await?;
    say("dschat stopped cleanly.");
    Ok(())
}

/// Prints a line for the operator. A closed standard output (the terminal or pipe went away)
/// must not bring the server down, so write errors are ignored.
fn say(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

/// Waits for Ctrl-C or SIGTERM. The handlers are registered when this is called (not when the
/// future is first polled), so a signal that arrives right after start-up is not missed.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("interrupted; shutting down"),
                _ = terminate.recv() => tracing::info!("terminated; shutting down"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
