//! Randomised fault schedules over a `Cluster`: message loss, duplication, reordering,
//! partitions, crashes that lose unsynced writes, snapshots and membership changes, with every
//! safety check after every step, then a heal and a liveness phase.
#![allow(dead_code)]

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use dschat_core::ids::NodeId;
use dschat_core::raft::Config;

use crate::cluster::{name, Cluster};

/// What a run found: the step and description of the first violation.
pub struct Failure {
    pub step: usize,
    pub violation: String,
    pub trace: Vec<String>,
}

pub fn config_for(seed: u64, bugs: &[&str]) -> Config {
    let mut config = Config {
        seed,
        election_timeout_min_ticks: 6,
        heartbeat_interval_ticks: 2,
        max_batch_entries: 4,
        max_inflight_requests: 3,
        max_snapshot_chunk_bytes: 64,
        ..Config::default()
    };
    for bug in bugs {
        crate::script::set_bug(&mut config, bug).expect("known bug");
    }
    config
}

/// Run one seed for `steps` steps; `Err` with the first violation.
pub fn run(seed: u64, steps: usize, bugs: &[&str]) -> Result<(), Failure> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(3, config_for(seed, bugs));
    cluster.max_log_matching_entries = 64;
    for sim in cluster.nodes.values_mut() {
        sim.manual_sync = true;
    }
    let mut trace = Vec::new();
    let mut next_command = 0u64;
    let mut stats = (0usize, 0usize, 0usize);
    for step in 0..steps {
        stats.0 += cluster.leader().is_some() as usize;
        stats.1 += cluster.network.len();
        stats.2 += cluster.up_ids().len();
        let action = random_step(&mut cluster, &mut rng, &mut next_command);
        if std::env::var("RAFT_TRACE").is_ok() {
            let events: Vec<String> = cluster.events.drain(..).collect();
            eprintln!("{step}: {action} {events:?}");
        } else {
            cluster.events.clear();
        }
        trace.push(format!("{step}: {action}"));
        if trace.len() > 40 {
            trace.remove(0);
        }
        cluster.check();
        if let Some(violation) = cluster.checker.violations.first() {
            return Err(Failure {
                step,
                violation: violation.clone(),
                trace,
            });
        }
    }
    let result = liveness(&mut cluster, &mut next_command);
    if std::env::var("RAFT_VERBOSE").is_ok() {
        let applied: Vec<String> = cluster
            .nodes
            .iter()
            .map(|(id, s)| {
                format!(
                    "{}={}/{}",
                    name(*id),
                    s.state.applied_index,
                    s.state.commands.len()
                )
            })
            .collect();
        eprintln!(
            "seed {seed}: steps with a leader {}, mean in flight {}, mean up {}",
            stats.0,
            stats.1 / steps,
            stats.2 as f64 / steps as f64
        );
        eprintln!(
            "seed {seed}: terms with leaders {}, committed {}, applied {}",
            cluster.checker.leaders.len(),
            cluster.checker.committed.len(),
            applied.join(" ")
        );
    }
    result.map_err(|violation| Failure {
        step: steps,
        violation,
        trace,
    })
}

fn random_up(cluster: &Cluster, rng: &mut ChaCha8Rng) -> Option<NodeId> {
    cluster.up_ids().choose(rng).copied()
}

fn random_step(cluster: &mut Cluster, rng: &mut ChaCha8Rng, next_command: &mut u64) -> String {
    let roll = rng.gen_range(0..100);
    match roll {
        0..=44 => {
            if cluster.network.is_empty() {
                return "idle".into();
            }
            let i = rng.gen_range(0..cluster.network.len().min(6));
            let envelope = cluster.network.remove(i).expect("in range");
            let text = crate::describe::describe(&envelope);
            cluster.deliver(envelope);
            format!("deliver {text}")
        }
        45..=47 => {
            if cluster.network.is_empty() {
                return "idle".into();
            }
            let i = rng.gen_range(0..cluster.network.len());
            let envelope = cluster.network.remove(i).expect("in range");
            format!("drop {}", crate::describe::describe(&envelope))
        }
        48..=50 => {
            if cluster.network.is_empty() {
                return "idle".into();
            }
            let i = rng.gen_range(0..cluster.network.len());
            let envelope = cluster.network[i].clone();
            let at = rng.gen_range(0..=cluster.network.len());
            cluster.network.insert(at, envelope.clone());
            format!("duplicate {}", crate::describe::describe(&envelope))
        }
        51..=62 => {
            let mut ids = cluster.up_ids();
            ids.shuffle(rng);
            for &id in &ids {
                cluster.tick(id);
            }
            "tick all".into()
        }
        63..=70 => {
            let Some(&leader) = cluster.leaders().choose(rng) else {
                return "no leader".into();
            };
            *next_command += 1;
            let text = format!("c{next_command}");
            let result = cluster.propose(leader, &text, None);
            format!("propose {text} at {}: {result:?}", name(leader))
        }
        71..=72 => {
            let Some(&leader) = cluster.leaders().choose(rng) else {
                return "no leader".into();
            };
            *next_command += 1;
            let result = cluster.read(leader, *next_command);
            format!("read {} at {}: {result:?}", next_command, name(leader))
        }
        73..=87 => match random_up(cluster, rng) {
            Some(id) => {
                cluster.sync(id);
                format!("sync {}", name(id))
            }
            None => "idle".into(),
        },
        88 => faults(cluster, rng),
        89..=92 => {
            let down: Vec<NodeId> = cluster
                .nodes
                .keys()
                .copied()
                .filter(|&id| !cluster.is_up(id))
                .collect();
            match down.choose(rng) {
                Some(&id) => {
                    cluster.start(id);
                    format!("restart {}", name(id))
                }
                None => "idle".into(),
            }
        }
        93..=94 => {
            let Some(id) = random_up(cluster, rng) else {
                return "idle".into();
            };
            format!("snapshot {}: {:?}", name(id), cluster.snapshot(id))
        }
        95..=96 => membership(cluster, rng),
        _ => {
            cluster.blocked.clear();
            "heal".into()
        }
    }
}

fn faults(cluster: &mut Cluster, rng: &mut ChaCha8Rng) -> String {
    let leader = cluster.leader();
    let ids: Vec<NodeId> = cluster.nodes.keys().copied().collect();
    let cut: Vec<NodeId> = match rng.gen_range(0..4) {
        0 | 1 => {
            let target = if rng.gen_bool(0.5) { leader } else { None };
            let Some(id) = target.or_else(|| random_up(cluster, rng)) else {
                return "idle".into();
            };
            cluster.crash(id);
            return format!("crash {}", name(id));
        }
        2 if leader.is_some() => vec![leader.expect("checked")],
        _ => ids.iter().copied().filter(|_| rng.gen_bool(0.4)).collect(),
    };
    cluster.blocked.clear();
    for &a in &ids {
        for &b in &ids {
            if cut.contains(&a) != cut.contains(&b) {
                cluster.blocked.insert((a, b));
            }
        }
    }
    format!(
        "partition {:?}",
        cut.iter().map(|&n| name(n)).collect::<Vec<_>>()
    )
}

fn membership(cluster: &mut Cluster, rng: &mut ChaCha8Rng) -> String {
    let Some(leader) = cluster.leader() else {
        return "no leader".into();
    };
    let configuration = cluster.node(leader).expect("up").status().configuration;
    let result = if let Some(&learner) = configuration.learners.iter().next() {
        let node = cluster.node_mut(leader).expect("up");
        (
            format!("promote {}", name(learner)),
            node.promote_learner(learner).map(|p| p.outputs),
        )
    } else if configuration.voters.len() < 5 && rng.gen_bool(0.5) {
        let new = NodeId(cluster.nodes.keys().last().expect("nodes").0 + 1);
        if new.0 > 6 {
            return "no more nodes".into();
        }
        let node = cluster.node_mut(leader).expect("up");
        let result = node.add_learner(new).map(|p| p.outputs);
        if result.is_ok() {
            cluster.add_sim_node(new, Vec::new());
            cluster.nodes.get_mut(&new).expect("added").manual_sync = true;
        }
        (format!("add {}", name(new)), result)
    } else if configuration.voters.len() > 3 {
        let voters: Vec<NodeId> = configuration.voters.iter().copied().collect();
        let target = *voters.choose(rng).expect("voters");
        let node = cluster.node_mut(leader).expect("up");
        (
            format!("remove {}", name(target)),
            node.remove_node(target).map(|p| p.outputs),
        )
    } else {
        return "no membership change".into();
    };
    let (what, outputs) = result;
    match outputs {
        Ok(outputs) => {
            cluster.handle(leader, outputs);
            format!("{what} at {}: ok", name(leader))
        }
        Err(error) => format!("{what} at {}: {error}", name(leader)),
    }
}

/// After healing everything, the cluster elects a leader and commits a new command.
fn liveness(cluster: &mut Cluster, next_command: &mut u64) -> Result<(), String> {
    cluster.blocked.clear();
    let ids: Vec<NodeId> = cluster.nodes.keys().copied().collect();
    for &id in &ids {
        if !cluster.is_up(id) {
            cluster.start(id);
        }
        cluster.nodes.get_mut(&id).expect("known").manual_sync = false;
        cluster.sync(id);
    }
    *next_command += 1;
    let text = format!("final{next_command}");
    let mut proposed: Option<(dschat_core::ids::LogIndex, dschat_core::ids::Term)> = None;
    for _ in 0..400 {
        for &id in &ids {
            cluster.tick(id);
        }
        cluster.stabilize();
        if let Some(violation) = cluster.checker.violations.first() {
            return Err(violation.clone());
        }
        let Some(leader) = cluster.leader() else {
            continue;
        };
        if proposed.is_none() {
            proposed = cluster.propose(leader, &text, None).ok();
        }
        let done = cluster
            .nodes
            .values()
            .any(|s| s.state.commands.contains(&text));
        if done {
            return Ok(());
        }
    }
    Err(format!(
        "liveness: no leader committed {text} within 400 ticks after healing"
    ))
}
