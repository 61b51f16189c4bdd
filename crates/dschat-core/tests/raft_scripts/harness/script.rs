//! The script language that drives a `Cluster` and prints a compact trace.
//!
//! One command per line; `#` starts a comment (echoed). Nodes are written `n1`, `n2`, ...
//! Message filters are `nA->nB`, `nA->*`, `*->nB` or nothing (all).
//!
//! ```text
//! cluster N [prevote=on|off] [checkquorum=on|off] [batch=N] [inflight=N] [uncommitted=N]
//!           [reads=N] [chunk=N] [lease=D] [seed=N] [autosnapshot=N] [bug=NAME]
//! tick [N] [nodes...]         campaign nX            elect nX (campaign + stabilize)
//! deliver [filter]            drop [filter]          duplicate [filter]
//! reverse [filter]            hold [filter]          release
//! stabilize                   run N (N x: tick all, stabilize)
//! messages                    status                 log nX
//! partition nA nB | nC ...    isolate nX             heal
//! crash nX                    restart nX             disk nX manual|auto     sync nX
//! propose nX TEXT [client=C seq=S]                   read nX ID
//! snapshot nX                 add-node nLeader nX    promote nLeader nX
//! remove-node nLeader nX      transfer nLeader nX    sm
//! ```
#![allow(dead_code)]

use std::collections::BTreeMap;

use dschat_core::ids::{LogIndex, NodeId};
use dschat_core::raft::{Config, Envelope, LeaseReads};

use crate::cluster::{name, Cluster};
use crate::describe::{describe, describe_entry};

pub struct Runner {
    pub cluster: Option<Cluster>,
    pub output: Vec<String>,
    last_commits: BTreeMap<NodeId, LogIndex>,
    pub bugs: Vec<String>,
}

fn parse_node(word: &str) -> Result<NodeId, String> {
    word.strip_prefix('n')
        .and_then(|n| n.parse().ok())
        .map(NodeId)
        .ok_or(format!("bad node {word:?}"))
}

type Filter = Box<dyn Fn(&Envelope) -> bool>;

fn parse_filter(word: Option<&str>) -> Result<Filter, String> {
    let Some(word) = word else {
        return Ok(Box::new(|_| true));
    };
    let (from, to) = word
        .split_once("->")
        .ok_or(format!("bad filter {word:?}"))?;
    let from = if from == "*" {
        None
    } else {
        Some(parse_node(from)?)
    };
    let to = if to == "*" {
        None
    } else {
        Some(parse_node(to)?)
    };
    Ok(Box::new(move |e: &Envelope| {
        from.is_none_or(|f| e.from == f) && to.is_none_or(|t| e.to == t)
    }))
}

impl Runner {
    pub fn new(bugs: Vec<String>) -> Runner {
        Runner {
            cluster: None,
            output: Vec::new(),
            last_commits: BTreeMap::new(),
            bugs,
        }
    }

    pub fn run(&mut self, script: &str) -> String {
        for line in script.lines() {
            let line = line.trim();
            if line.is_empty() {
                self.output.push(String::new());
                continue;
            }
            if line.starts_with('#') {
                self.output.push(line.to_string());
                continue;
            }
            self.output.push(format!("> {line}"));
            if let Err(error) = self.command(line) {
                self.output.push(format!("  error: {error}"));
            }
            self.flush_events();
        }
        let mut text = self.output.join("\n");
        text.push('\n');
        text
    }

    fn cluster(&mut self) -> Result<&mut Cluster, String> {
        self.cluster.as_mut().ok_or("no cluster yet".to_string())
    }

    fn say(&mut self, line: String) {
        self.output.push(format!("  {line}"));
    }

    fn flush_events(&mut self) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let events: Vec<String> = cluster.events.drain(..).collect();
        let mut commits = Vec::new();
        for id in cluster.up_ids() {
            let commit = cluster.node(id).unwrap().status().commit_index;
            if self.last_commits.get(&id) != Some(&commit) {
                self.last_commits.insert(id, commit);
                commits.push(format!("{}={}", name(id), commit));
            }
        }
        for event in events {
            self.say(event);
        }
        if !commits.is_empty() {
            self.say(format!("commit: {}", commits.join(" ")));
        }
    }

    fn command(&mut self, line: &str) -> Result<(), String> {
        let first = line.split_whitespace().next().unwrap_or_default();
        match first {
            "cluster" | "tick" | "campaign" | "elect" | "stabilize" | "run" => self.drive(line),
            "deliver" | "drop" | "duplicate" | "reverse" | "hold" | "release" | "messages"
            | "partition" | "isolate" | "heal" => self.network_command(line),
            "crash" | "restart" | "disk" | "sync" | "snapshot" => self.node_command(line),
            _ => self.client_command(line),
        }
    }

    /// Build the cluster and move time and messages along.
    fn drive(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| words.get(i).copied().ok_or(format!("missing argument {i}"));
        match words[0] {
            "cluster" => self.new_cluster(&words),
            "tick" => self.tick(&words),
            "campaign" => {
                let id = parse_node(arg(1)?)?;
                self.cluster()?.campaign(id);
                Ok(())
            }
            "elect" => {
                let id = parse_node(arg(1)?)?;
                self.cluster()?.campaign(id);
                self.cluster()?.stabilize();
                Ok(())
            }
            "stabilize" => {
                self.cluster()?.stabilize();
                Ok(())
            }
            "run" => {
                let rounds: u64 = arg(1)?.parse().map_err(|_| "bad round count")?;
                let cluster = self.cluster()?;
                for _ in 0..rounds {
                    for id in cluster.up_ids() {
                        cluster.tick(id);
                    }
                    cluster.stabilize();
                }
                Ok(())
            }
            other => unreachable!("dispatched by command: {other}"),
        }
    }

    /// Faults and inspection of the network.
    fn network_command(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| words.get(i).copied().ok_or(format!("missing argument {i}"));
        match words[0] {
            "deliver" => self.deliver(words.get(1).copied()),
            "drop" | "duplicate" | "reverse" | "hold" => {
                self.network_fault(words[0], words.get(1).copied())
            }
            "release" => {
                let cluster = self.cluster()?;
                let held: Vec<Envelope> = cluster.held.drain(..).collect();
                cluster.network.extend(held);
                Ok(())
            }
            "messages" => {
                let lines: Vec<String> = self.cluster()?.network.iter().map(describe).collect();
                for line in lines {
                    self.say(line);
                }
                Ok(())
            }
            "partition" => self.partition(&words[1..]),
            "isolate" => {
                let id = parse_node(arg(1)?)?;
                let others: Vec<String> = self
                    .cluster()?
                    .nodes
                    .keys()
                    .filter(|&&n| n != id)
                    .map(|&n| name(n))
                    .collect();
                let mut spec = vec![arg(1)?.to_string(), "|".to_string()];
                spec.extend(others);
                self.partition(&spec.iter().map(String::as_str).collect::<Vec<_>>())
            }
            "heal" => {
                self.cluster()?.blocked.clear();
                Ok(())
            }
            other => unreachable!("dispatched by command: {other}"),
        }
    }

    /// Crashes, restarts, disks and snapshots of one node.
    fn node_command(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| words.get(i).copied().ok_or(format!("missing argument {i}"));
        match words[0] {
            "crash" => {
                let id = parse_node(arg(1)?)?;
                self.cluster()?.crash(id);
                Ok(())
            }
            "restart" => {
                let id = parse_node(arg(1)?)?;
                let cluster = self.cluster()?;
                if cluster.is_up(id) {
                    return Err("node is up".into());
                }
                cluster.start(id);
                let node = cluster.node(id).unwrap();
                let line = format!(
                    "{} restarted: term {} vote {:?} last {} snapshot {}",
                    name(id),
                    node.hard_state().term,
                    node.hard_state().voted_for.map(name),
                    node.log().last_index(),
                    node.log().snapshot_index()
                );
                self.last_commits.remove(&id);
                self.say(line);
                Ok(())
            }
            "disk" => {
                let id = parse_node(arg(1)?)?;
                let manual = match arg(2)? {
                    "manual" => true,
                    "auto" => false,
                    other => return Err(format!("bad disk mode {other}")),
                };
                self.cluster()?
                    .nodes
                    .get_mut(&id)
                    .ok_or("unknown node")?
                    .manual_sync = manual;
                Ok(())
            }
            "sync" => {
                let id = parse_node(arg(1)?)?;
                self.cluster()?.sync(id);
                Ok(())
            }
            "snapshot" => {
                let id = parse_node(arg(1)?)?;
                let index = self.cluster()?.snapshot(id)?;
                self.say(format!("{} snapshot at {}", name(id), index));
                Ok(())
            }
            other => unreachable!("dispatched by command: {other}"),
        }
    }

    /// What clients and operators ask, and what they can see.
    fn client_command(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| words.get(i).copied().ok_or(format!("missing argument {i}"));
        match words[0] {
            "status" => self.status(),
            "log" => self.log(parse_node(arg(1)?)?),
            "sm" => self.state_machines(),
            "propose" => self.propose(&words),
            "read" => {
                let id = parse_node(arg(1)?)?;
                let read_id: u64 = arg(2)?.parse().map_err(|_| "bad read id")?;
                self.cluster()?.read(id, read_id)?;
                Ok(())
            }
            "add-node" | "promote" | "remove-node" | "transfer" => {
                self.membership(words[0], parse_node(arg(1)?)?, parse_node(arg(2)?)?)
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }

    fn new_cluster(&mut self, words: &[&str]) -> Result<(), String> {
        let size: u64 = words
            .get(1)
            .ok_or("cluster size")?
            .parse()
            .map_err(|_| "bad size")?;
        let mut config = Config {
            seed: 1,
            ..Config::default()
        };
        let mut bug_names = self.bugs.clone();
        for option in &words[2..] {
            let (key, value) = option
                .split_once('=')
                .ok_or(format!("bad option {option}"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad number in {option}"))
            };
            match key {
                "prevote" => config.pre_vote = value == "on",
                "checkquorum" => config.check_quorum = value == "on",
                "batch" => config.max_batch_entries = number()? as usize,
                "inflight" => config.max_inflight_requests = number()? as usize,
                "uncommitted" => config.max_uncommitted_entries = number()?,
                "reads" => config.max_pending_reads = number()? as usize,
                "chunk" => config.max_snapshot_chunk_bytes = number()? as usize,
                "lease" => {
                    config.lease_reads = Some(LeaseReads {
                        clock_drift_bound_ticks: number()?,
                    })
                }
                "seed" => config.seed = number()?,
                "autosnapshot" => config.snapshot_threshold_entries = number()?,
                "bug" => bug_names.push(value.to_string()),
                _ => return Err(format!("unknown option {key}")),
            }
        }
        for bug in &bug_names {
            set_bug(&mut config, bug)?;
        }
        let auto_snapshot = config.snapshot_threshold_entries > 0;
        self.cluster = Some(Cluster::new(size, config));
        self.cluster()?.auto_snapshot = auto_snapshot;
        self.last_commits.clear();
        Ok(())
    }

    fn tick(&mut self, words: &[&str]) -> Result<(), String> {
        let mut count = 1;
        let mut nodes = Vec::new();
        for word in &words[1..] {
            match word.parse::<u64>() {
                Ok(n) => count = n,
                Err(_) => nodes.push(parse_node(word)?),
            }
        }
        let cluster = self.cluster()?;
        if nodes.is_empty() {
            nodes = cluster.nodes.keys().copied().collect();
        }
        for _ in 0..count {
            for &id in &nodes {
                cluster.tick(id);
            }
        }
        Ok(())
    }

    fn deliver(&mut self, filter: Option<&str>) -> Result<(), String> {
        let filter = parse_filter(filter)?;
        let delivered = self.cluster()?.deliver_matching(filter);
        for (envelope, ok) in delivered {
            let suffix = if ok { "" } else { " (lost)" };
            self.say(format!("{}{}", describe(&envelope), suffix));
        }
        Ok(())
    }

    fn network_fault(&mut self, kind: &str, filter: Option<&str>) -> Result<(), String> {
        let filter = parse_filter(filter)?;
        let cluster = self.cluster()?;
        let (chosen, rest): (Vec<Envelope>, Vec<Envelope>) =
            cluster.network.drain(..).partition(|e| filter(e));
        cluster.network = rest.into();
        let count = chosen.len();
        match kind {
            "drop" => {}
            "duplicate" => {
                cluster.network.extend(chosen.iter().cloned());
                cluster.network.extend(chosen);
            }
            "reverse" => cluster.network.extend(chosen.into_iter().rev()),
            "hold" => cluster.held.extend(chosen),
            _ => unreachable!("checked by the caller"),
        }
        self.say(format!("{kind}: {count} message(s)"));
        Ok(())
    }

    fn partition(&mut self, words: &[&str]) -> Result<(), String> {
        let mut groups: Vec<Vec<NodeId>> = vec![Vec::new()];
        for word in words {
            if *word == "|" {
                groups.push(Vec::new());
            } else {
                groups.last_mut().unwrap().push(parse_node(word)?);
            }
        }
        let cluster = self.cluster()?;
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            cluster.blocked.insert((x, y));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn propose(&mut self, words: &[&str]) -> Result<(), String> {
        let id = parse_node(words.get(1).ok_or("node")?)?;
        let text = words.get(2).ok_or("text")?;
        let mut client = None;
        let mut seq = None;
        for option in &words[3..] {
            match option.split_once('=') {
                Some(("client", v)) => client = v.parse().ok(),
                Some(("seq", v)) => seq = v.parse().ok(),
                _ => return Err(format!("bad option {option}")),
            }
        }
        let session = client.zip(seq);
        let (index, term) = self.cluster()?.propose(id, text, session)?;
        self.say(format!("proposed {text} at {index}@{term}"));
        Ok(())
    }

    fn membership(&mut self, kind: &str, leader: NodeId, target: NodeId) -> Result<(), String> {
        let cluster = self.cluster()?;
        let node = cluster.node_mut(leader).ok_or("node is down")?;
        let result = match kind {
            "add-node" => node.add_learner(target).map(|p| p.outputs),
            "promote" => node.promote_learner(target).map(|p| p.outputs),
            "remove-node" => node.remove_node(target).map(|p| p.outputs),
            _ => node.transfer_leadership(target),
        };
        let outputs = result.map_err(|e| e.to_string())?;
        if kind == "add-node" && !cluster.nodes.contains_key(&target) {
            cluster.add_sim_node(target, Vec::new());
        }
        cluster.handle(leader, outputs);
        Ok(())
    }

    fn status(&mut self) -> Result<(), String> {
        let cluster = self.cluster()?;
        let mut lines = Vec::new();
        for (&id, sim) in &cluster.nodes {
            let Some(node) = &sim.node else {
                lines.push(format!("{}: down", name(id)));
                continue;
            };
            let s = node.status();
            let config = &s.configuration;
            lines.push(format!(
                "{}: {:?} term={} leader={} last={} commit={} applied={} snapshot={} voters={} learners={}",
                name(id), s.role, s.term, s.leader.map_or("-".into(), name), s.last_index, s.commit_index,
                s.applied_index, s.snapshot_index,
                config.voters.iter().map(|&v| name(v)).collect::<Vec<_>>().join(","),
                config.learners.iter().map(|&v| name(v)).collect::<Vec<_>>().join(","),
            ));
        }
        for line in lines {
            self.say(line);
        }
        Ok(())
    }

    fn log(&mut self, id: NodeId) -> Result<(), String> {
        let node = self.cluster()?.node(id).ok_or("node is down")?;
        let entries: Vec<String> = node.log().entries().iter().map(describe_entry).collect();
        let line = format!(
            "{}: snapshot={}@{} [{}]",
            name(id),
            node.log().snapshot_index(),
            node.log().snapshot_term(),
            entries.join(" ")
        );
        self.say(line);
        Ok(())
    }

    fn state_machines(&mut self) -> Result<(), String> {
        let cluster = self.cluster()?;
        let lines: Vec<String> = cluster
            .nodes
            .iter()
            .map(|(&id, sim)| {
                format!(
                    "{}: applied={} [{}]",
                    name(id),
                    sim.state.applied_index,
                    sim.state.commands.join(" ")
                )
            })
            .collect();
        for line in lines {
            self.say(line);
        }
        Ok(())
    }
}

/// Turn on a bug switch by name (needs the `bug-switches` feature).
pub fn set_bug(config: &mut Config, bug: &str) -> Result<(), String> {
    #[cfg(feature = "bug-switches")]
    {
        let bugs = &mut config.bugs;
        match bug {
            "vote-without-persist" => bugs.vote_without_persist = true,
            "commit-earlier-term" => bugs.commit_earlier_term_by_counting = true,
            "truncate-on-stale-append" => bugs.truncate_on_stale_append = true,
            "read-without-confirmation" => bugs.read_without_confirmation = true,
            "allow-overlapping-membership-changes" => {
                bugs.allow_overlapping_membership_changes = true
            }
            other => return Err(format!("unknown bug {other}")),
        }
        Ok(())
    }
    #[cfg(not(feature = "bug-switches"))]
    {
        let _ = config;
        Err(format!("bug {bug} needs the bug-switches feature"))
    }
}
