//! The admin API of a cluster node (`/api/v1/cluster…`) and the lab's fault controls
//! (`/api/v1/lab…`).
//!
//! Status is readable by anyone who can reach the node. Changes (membership, leadership,
//! faults) are accepted only from the node's own machine (a loopback client address): an
//! operator runs `dschat cluster …` on one of the nodes. The fault controls answer only on a
//! node started in lab mode (`dschat lab`); elsewhere they are refused with `lab-disabled`.

use super::extract::{ApiJson, ApiPath, ClientAddress};
use super::problem::Problem;
use super::AppState;
use crate::cluster::driver::AdminChange;
use crate::cluster::transport::{LinkFault, PeerReport};
use crate::cluster::ClusterLog;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use dschat_core::ids::NodeId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long `POST /cluster/members` waits for a new node to catch up before making it a voter.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a membership change may take to show in this node's status before the answer
/// goes out anyway (it then shows the configuration as it stands).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /api/v1/cluster`: this node's view of the cluster.
#[derive(Debug, Serialize)]
pub struct ClusterStatusJson {
    /// This node.
    pub node: u64,
    /// `leader`, `follower`, `candidate`, `pre-candidate`, or `stopped`.
    pub role: String,
    /// Its current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The leader's HTTP address, if known.
    pub leader_http: Option<SocketAddr>,
    /// Its commit index.
    pub commit_index: u64,
    /// Its applied index.
    pub applied_index: u64,
    /// The first and last index of its log.
    pub log_first_index: u64,
    /// The last index of its log.
    pub log_last_index: u64,
    /// The last index its snapshot covers.
    pub snapshot_index: u64,
    /// Voters of the configuration in force.
    pub voters: Vec<u64>,
    /// Learners of the configuration in force.
    pub learners: Vec<u64>,
    /// The terms of the last entries, as runs `[first index, term]`.
    pub recent_terms: Vec<(u64, u64)>,
    /// What the transport knows of each peer.
    pub peers: Vec<PeerReport>,
    /// Lab: this node's clock skew in milliseconds.
    pub clock_skew_ms: i64,
    /// Whether the lab's fault controls are on.
    pub lab: bool,
}

fn clustered(state: &AppState) -> Result<&ClusterLog, Problem> {
    state.node.cluster().ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            "not-clustered",
            "Not a cluster node",
            "this node runs alone on a local log; start it with --peers to form a cluster",
        )
    })
}

fn from_this_machine(address: ClientAddress) -> Result<(), Problem> {
    if address.0.is_loopback() {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "admin-from-loopback-only",
            "Admin changes only from the node's machine",
            "cluster and lab changes are accepted only from a loopback address",
        ))
    }
}

fn lab(state: &AppState, address: ClientAddress) -> Result<&ClusterLog, Problem> {
    from_this_machine(address)?;
    let cluster = clustered(state)?;
    if !cluster.config().lab {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "lab-disabled",
            "Lab controls are disabled",
            "fault controls exist only on nodes started by `dschat lab`",
        ));
    }
    Ok(cluster)
}

/// `GET /api/v1/cluster`.
pub async fn status(State(state): State<AppState>) -> Result<Json<ClusterStatusJson>, Problem> {
    let cluster = clustered(&state)?;
    let status = cluster.status();
    let raft = &status.raft;
    let role = if status.stopped {
        "stopped".to_string()
    } else {
        role_name(raft.role).to_string()
    };
    Ok(Json(ClusterStatusJson {
        node: cluster.id().0,
        role,
        term: raft.term.0,
        leader: raft.leader.map(|n| n.0),
        leader_http: raft.leader.and_then(|n| cluster.transport().http_addr(n)),
        commit_index: raft.commit_index.0,
        applied_index: raft.applied_index.0,
        log_first_index: status.log_bounds.0 .0,
        log_last_index: status.log_bounds.1 .0,
        snapshot_index: raft.snapshot_index.0,
        voters: raft.configuration.voters.iter().map(|n| n.0).collect(),
        learners: raft.configuration.learners.iter().map(|n| n.0).collect(),
        recent_terms: status
            .recent_terms
            .iter()
            .map(|(index, term)| (index.0, term.0))
            .collect(),
        peers: cluster.transport().report(),
        clock_skew_ms: cluster.clock_skew_ms(),
        lab: cluster.config().lab,
    }))
}

fn role_name(role: dschat_core::raft::RoleKind) -> &'static str {
    use dschat_core::raft::RoleKind;
    match role {
        RoleKind::Leader => "leader",
        RoleKind::Follower => "follower",
        RoleKind::Candidate => "candidate",
        RoleKind::PreCandidate => "pre-candidate",
    }
}

/// Body of `POST /api/v1/cluster/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The new node's id.
    pub node: u64,
    /// Where it accepts peer connections.
    pub peer_addr: SocketAddr,
    /// Make it a voter once it has caught up (default), or leave it a learner.
    #[serde(default = "yes")]
    pub voter: bool,
}

fn yes() -> bool {
    true
}

fn admin_failed(detail: String) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "cluster-change-refused",
        "Cluster change refused",
        detail,
    )
}

/// `POST /api/v1/cluster/members`: adds a node as a learner, waits until it has caught up
/// with the log, then makes it a voter.
pub async fn add_member(
    State(state): State<AppState>,
    address: ClientAddress,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<Json<ClusterStatusJson>, Problem> {
    from_this_machine(address)?;
    let cluster = clustered(&state)?;
    let node = NodeId(body.node);
    if body.node > dschat_core::message_id::MAX_NODE {
        return Err(Problem::invalid("node", "node: from 0 to 1023"));
    }
    cluster.transport().add_peer(node, body.peer_addr);
    let configuration = cluster.status().raft.configuration;
    if !configuration.contains(node) {
        cluster
            .admin(AdminChange::AddLearner(node))
            .await
            .map_err(admin_failed)?;
    }
    cluster
        .wait_status(SETTLE_TIMEOUT, |s| s.raft.configuration.contains(node))
        .await;
    if body.voter && !cluster.status().raft.configuration.is_voter(node) {
        promote_when_caught_up(cluster, node).await?;
        cluster
            .wait_status(SETTLE_TIMEOUT, |s| s.raft.configuration.is_voter(node))
            .await;
    }
    status(State(state)).await
}

/// Promotes `node` once the leader's log has reached it, retrying while it catches up.
async fn promote_when_caught_up(cluster: &ClusterLog, node: NodeId) -> Result<(), Problem> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        match cluster.admin(AdminChange::Promote(node)).await {
            Ok(()) => return Ok(()),
            Err(reason) if Instant::now() < deadline => {
                tracing::debug!(%node, %reason, "waiting for the learner to catch up");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(reason) => return Err(admin_failed(reason)),
        }
    }
}

/// `DELETE /api/v1/cluster/members/{node}`.
pub async fn remove_member(
    State(state): State<AppState>,
    address: ClientAddress,
    ApiPath(node): ApiPath<u64>,
) -> Result<Json<ClusterStatusJson>, Problem> {
    from_this_machine(address)?;
    let cluster = clustered(&state)?;
    let node = NodeId(node);
    cluster
        .admin(AdminChange::Remove(node))
        .await
        .map_err(admin_failed)?;
    cluster
        .wait_status(SETTLE_TIMEOUT, |s| !s.raft.configuration.contains(node))
        .await;
    status(State(state)).await
}

/// Body of `POST /api/v1/cluster/leader`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferLeader {
    /// The node to hand leadership to.
    pub node: u64,
}

/// `POST /api/v1/cluster/leader`: hands leadership to another voter.
pub async fn transfer_leader(
    State(state): State<AppState>,
    address: ClientAddress,
    ApiJson(body): ApiJson<TransferLeader>,
) -> Result<Json<ClusterStatusJson>, Problem> {
    from_this_machine(address)?;
    let cluster = clustered(&state)?;
    cluster
        .admin(AdminChange::TransferLeader(NodeId(body.node)))
        .await
        .map_err(admin_failed)?;
    status(State(state)).await
}

/// `PUT /api/v1/lab/links/{node}`: sets the fault on the link from this node to `node`.
pub async fn set_link_fault(
    State(state): State<AppState>,
    address: ClientAddress,
    ApiPath(node): ApiPath<u64>,
    ApiJson(fault): ApiJson<LinkFault>,
) -> Result<Json<LinkFault>, Problem> {
    let cluster = lab(&state, address)?;
    if fault.loss_percent > 100 {
        return Err(Problem::invalid(
            "loss_percent",
            "loss_percent: from 0 to 100",
        ));
    }
    if !cluster.transport().set_fault(NodeId(node), fault) {
        return Err(Problem::invalid(
            "node",
            format!("node: {node} is not a peer of this node"),
        ));
    }
    tracing::warn!(peer = node, ?fault, "lab: link fault set");
    Ok(Json(fault))
}

/// Body of `PUT /api/v1/lab/clock`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSkew {
    /// Milliseconds added to this node's wall clock (negative: behind).
    pub skew_ms: i64,
}

/// Bound: the largest clock skew the lab may set (a day).
const MAX_SKEW_MS: i64 = 24 * 3600 * 1000;

/// `PUT /api/v1/lab/clock`: skews this node's wall clock.
pub async fn set_clock_skew(
    State(state): State<AppState>,
    address: ClientAddress,
    ApiJson(skew): ApiJson<ClockSkew>,
) -> Result<Json<ClockSkew>, Problem> {
    let cluster = lab(&state, address)?;
    if skew.skew_ms.abs() > MAX_SKEW_MS {
        return Err(Problem::invalid(
            "skew_ms",
            "skew_ms: at most a day either way",
        ));
    }
    cluster.set_clock_skew_ms(skew.skew_ms);
    tracing::warn!(skew_ms = skew.skew_ms, "lab: clock skew set");
    Ok(Json(skew))
}

/// Query of `GET /api/v1/lab/trace`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// Only events after this sequence number (0: all that are kept).
    #[serde(default)]
    pub after: u64,
}

/// `GET /api/v1/lab/trace`: the Raft messages this node sent and received (lab mode only).
pub async fn trace(
    State(state): State<AppState>,
    address: ClientAddress,
    super::extract::ApiQuery(query): super::extract::ApiQuery<TraceQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let cluster = lab(&state, address)?;
    let events = cluster
        .trace()
        .map(|trace| trace.since(query.after))
        .unwrap_or_default();
    Ok(Json(serde_json::json!({ "events": events })))
}
