//! Starting and stopping a cluster node: [`Cluster::open`] recovers the replica from
//! `data_dir/raft`, starts the driver thread and the peer transport, and wires them to the
//! routing handle ([`ClusterLog`]); [`Cluster::shutdown`] stops them in order.

use super::driver::{self, Input};
use super::transport;
use super::{trace, ClusterLog, Forwards, DRIVER_QUEUE_INPUTS};
use dschat_core::ids::NodeId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A running cluster node: the driver thread, the transport, and the routing handle.
pub struct Cluster {
    log: ClusterLog,
    driver: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
    shutdown: watch::Sender<bool>,
    /// Tells the driver to stop at the end of its round (shared with it).
    stop_flag: Arc<std::sync::atomic::AtomicBool>,
}

impl Cluster {
    /// Opens the replica in `data_dir/raft`, starts the driver and the peer transport. Must
    /// run inside a tokio runtime.
    pub(crate) fn open(
        config: &crate::config::ServerConfig,
        hub: &Arc<crate::hub::Hub>,
    ) -> Result<crate::node::Opened, crate::node::OpenError> {
        use crate::node::OpenError;
        let cluster = config
            .cluster
            .clone()
            .expect("Cluster::open is called only with a cluster configuration");
        let me = NodeId(config.node_id);
        let initial_voters = if cluster.join {
            None
        } else {
            if !cluster.peers.contains_key(&config.node_id) {
                return Err(OpenError::Config(format!(
                    "the initial peers {:?} do not include this node ({me}); list every initial \
                     voter, or start with join to be added to a running cluster",
                    cluster.peers.keys().collect::<Vec<_>>()
                )));
            }
            Some(cluster.peers.keys().map(|&id| NodeId(id)).collect())
        };
        let raft = dschat_core::raft::Config {
            seed: rand::random(),
            election_timeout_min_ticks: cluster.election_timeout_ticks.max(2),
            heartbeat_interval_ticks: cluster.heartbeat_interval_ticks.max(1),
            snapshot_threshold_entries: cluster.snapshot_every_entries,
            ..dschat_core::raft::Config::default()
        };
        let directory = config.data_dir.join("raft");
        std::fs::create_dir_all(&directory)?;
        let mut replica = dschat_replica::Replica::open(
            Arc::new(dschat_storage::disk::RealDisk),
            &directory,
            dschat_replica::ReplicaConfig {
                node: me,
                raft,
                wal: dschat_storage::WalOptions {
                    segment_max_bytes: config.wal_segment_bytes,
                },
                initial_voters,
            },
        )?;
        replica.set_deferred_sync(true);
        let state = replica.shared_chat();
        let search = Arc::new(crate::search::SearchIndex::open(
            &config.data_dir.join("search"),
            state.clone(),
        )?);
        let initial_status = driver::DriverStatus {
            raft: replica.status(),
            log_bounds: replica.log_bounds(),
            recent_terms: Vec::new(),
            stopped: false,
            storage_failed: false,
        };
        tracing::info!(node = %me, applied = %initial_status.raft.applied_index, term = %initial_status.raft.term, "replica recovered");
        let (status_sender, status) = watch::channel(initial_status);
        let (applied_sender, applied) = watch::channel(
            dschat_core::state_machine::StateMachine::applied_index(&*replica.chat()),
        );
        let (inputs, receiver) = std::sync::mpsc::sync_channel(DRIVER_QUEUE_INPUTS);
        let forwards = Arc::new(Forwards::default());
        let handler = ClusterLog::handler(inputs.clone(), forwards.clone());
        let (shutdown, shutdown_seen) = watch::channel(false);
        let listener = std::net::TcpListener::bind(cluster.peer_addr).map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!("cannot listen for peers on {}: {error}", cluster.peer_addr),
            )
        })?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let transport = transport::Transport::start(
            transport::TransportConfig {
                node: me,
                cluster_id: cluster.cluster_id.clone(),
                peer_addr: cluster.peer_addr,
                http_addr: config.http_addr,
                peers: cluster
                    .peers
                    .iter()
                    .map(|(&id, &address)| (NodeId(id), address))
                    .collect(),
            },
            listener,
            handler.clone(),
            shutdown_seen,
        );
        handler.bind(transport.clone());
        let trace = cluster.lab.then(|| Arc::new(trace::LabTrace::default()));
        let stop_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let driver = driver::Driver {
            replica,
            transport: transport.clone(),
            hub: hub.clone(),
            search: search.clone(),
            tick: Duration::from_millis(cluster.tick_ms.max(1)),
            status: status_sender,
            applied: applied_sender,
            pending: HashMap::new(),
            next_request: 0,
            stop_requested: false,
            stop_flag: stop_flag.clone(),
            trace: trace.clone(),
        };
        let handle = driver::spawn(driver, receiver)?;
        let mut log = ClusterLog::new(me, cluster, inputs, status, applied, transport, forwards);
        log.trace = trace;
        Ok(crate::node::Opened {
            state,
            search,
            log: crate::node::Log::Cluster(Box::new(Cluster {
                log,
                driver: parking_lot::Mutex::new(Some(handle)),
                shutdown,
                stop_flag,
            })),
        })
    }

    /// The routing handle.
    pub fn log(&self) -> &ClusterLog {
        &self.log
    }

    /// Whether the driver thread still runs.
    pub fn driver_alive(&self) -> bool {
        self.driver
            .lock()
            .as_ref()
            .is_some_and(|driver| !driver.is_finished())
    }

    /// Stops the transport and the driver (which finishes the round it is in).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        // The transport's handler holds an input sender too, so the driver is told to stop
        // rather than waiting for every sender to go.
        if self.log.inputs.try_send(Input::Stop).is_err() {
            // A full queue: the driver is busy and will see the flag at the end of its round.
            tracing::warn!("the driver's queue is full at shutdown; waiting for it to drain");
        }
        self.stop_flag
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(driver) = self.driver.lock().take() {
            let _ = driver.join();
        }
    }
}
