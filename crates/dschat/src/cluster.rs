//! `dschat cluster`: look at and change a running cluster through a node's admin API.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// What `dschat cluster` can do.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the node's view: role, term, leader, indices, members and peer links.
    Status,
    /// Add a node (started with `dschat serve --join`): first as a learner that catches up by
    /// snapshot and log, then as a voter. Run against the leader.
    Add {
        /// The new node's id.
        node: u64,
        /// Its peer address (its --peer-listen), e.g. 127.0.0.1:7174.
        peer_addr: SocketAddr,
        /// Leave it a learner (it receives the log but does not vote).
        #[arg(long)]
        learner: bool,
    },
    /// Remove a node from the cluster. Run against the leader.
    Remove {
        /// The node's id.
        node: u64,
    },
    /// Hand leadership to another voter. Run against the leader.
    TransferLeader {
        /// The node to lead next.
        node: u64,
    },
}

/// Options every `dschat cluster` command takes.
#[derive(clap::Args, Debug)]
pub struct ClusterOptions {
    /// The node to ask (its HTTP address). Changes are accepted only from the node's own
    /// machine.
    #[arg(long, env = "DSCHAT_SERVER", default_value = "http://127.0.0.1:7070")]
    server: String,
}

/// Runs one `dschat cluster` command.
pub async fn run(options: ClusterOptions, command: ClusterCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let base = options.server.trim_end_matches('/');
    let request = match &command {
        ClusterCommand::Status => client.get(format!("{base}/api/v1/cluster")),
        ClusterCommand::Add {
            node,
            peer_addr,
            learner,
        } => client
            .post(format!("{base}/api/v1/cluster/members"))
            .json(&json!({"node": node, "peer_addr": peer_addr, "voter": !learner})),
        ClusterCommand::Remove { node } => {
            client.delete(format!("{base}/api/v1/cluster/members/{node}"))
        }
        ClusterCommand::TransferLeader { node } => client
            .post(format!("{base}/api/v1/cluster/leader"))
            .json(&json!({"node": node})),
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the answer")?;
    if !status.is_success() {
        bail!(
            "{}: {}",
            body["title"].as_str().unwrap_or("refused"),
            body["detail"].as_str().unwrap_or("")
        );
    }
    print_status(&body);
    Ok(())
}

fn print_status(status: &Value) {
    let number = |key: &str| status[key].as_u64().unwrap_or(0);
    let list = |key: &str| {
        status[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!(
        "node {}: {} in term {}; leader {}{}",
        number("node"),
        status["role"].as_str().unwrap_or("?"),
        number("term"),
        status["leader"]
            .as_u64()
            .map(|l| l.to_string())
            .unwrap_or_else(|| "unknown".into()),
        status["leader_http"]
            .as_str()
            .map(|a| format!(" (http://{a})"))
            .unwrap_or_default()
    );
    println!(
        "log {}..{}, snapshot through {}, committed {}, applied {}",
        number("log_first_index"),
        number("log_last_index"),
        number("snapshot_index"),
        number("commit_index"),
        number("applied_index")
    );
    println!(
        "voters [{}], learners [{}]",
        list("voters"),
        list("learners")
    );
    for peer in status["peers"].as_array().into_iter().flatten() {
        println!(
            "  peer {}: {} at {}, last heard {} ago{}",
            peer["node"],
            if peer["connected"].as_bool() == Some(true) {
                "connected"
            } else {
                "not connected"
            },
            peer["peer_addr"].as_str().unwrap_or("?"),
            peer["last_heard_ms_ago"]
                .as_u64()
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "never".into()),
            if peer["fault"]["cut"].as_bool() == Some(true) {
                " [lab: link cut]"
            } else {
                ""
            }
        );
    }
}
