//! One run, phase by phase: set up, faults, heal, liveness, quiesce, final reads, verdicts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dschat_core::chat::{Command, Response};
use dschat_core::ids::{LogIndex, UserId};
use dschat_core::raft::RoleKind;
use dschat_core::state_machine::StateMachine;
use dschat_replica::{Outcome, Request};
use serde_json::json;

use super::config::{Micros, SimConfig, Workload, MILLISECOND, SECOND};
use super::recorder::Counters;
use super::workload::{self, OpKind, CHAT_ROOMS, REGISTER_KEYS, SIMULATED_PASSWORD_HASH};
use super::world::World;
use crate::history::{Event, EventKind};
use crate::linearizability::{self, Verdict as LinearizabilityVerdict};
use crate::model::{NameRegistry, Register};
use crate::trace::Trace;

/// Search steps the linearizability checker may spend before answering "unknown".
pub const LINEARIZABILITY_BUDGET_STEPS: u64 = 50_000_000;
/// How long the cluster may take to elect a leader and finish the setup.
pub const SETUP_LIMIT: Micros = 20 * SECOND;
/// How long clients get to finish their operations once told to stop.
pub const DRAIN_LIMIT: Micros = 3 * SECOND;
/// How long the healed cluster gets to bring every node to the same applied index.
pub const QUIESCE_LIMIT: Micros = 15 * SECOND;
/// The name of the verdict on the invariants checked while the run went on.
pub const INVARIANTS_VERDICT: &str =
    "invariants (election safety, state machine safety, log matching, digests, clock causality)";
/// Process ids of the final reads: this plus the node's index.
pub const FINAL_READ_PROCESS: u64 = 1_000_000;

/// Whether a check held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It held.
    Pass,
    /// It was violated.
    Fail,
    /// The checker ran out of budget: nothing is known (never counted as a pass).
    Unknown,
}

/// One line of the verdict table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The checker.
    pub name: String,
    /// Its conclusion.
    pub status: Status,
    /// What it examined, or what went wrong.
    pub detail: String,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct SimOutcome {
    /// The configuration that produced it (replay with the same).
    pub config: SimConfig,
    /// One verdict per checker.
    pub verdicts: Vec<Verdict>,
    /// The clients' history.
    pub history: Vec<Event>,
    /// The cluster's trace (messages only if asked for).
    pub trace: Trace,
    /// The run's log: (time, node, text).
    pub notes: Vec<(Micros, Option<usize>, String)>,
    /// Counters.
    pub counters: Counters,
    /// Simulated time at the end.
    pub simulated: Micros,
    /// Wall-clock time the simulation took (not the checkers).
    pub wall: Duration,
    /// CPU time this thread spent on the simulation (not the checkers), where the system
    /// tells (Linux). Unlike wall time it does not grow when other processes share the cores,
    /// so it is the fair measure of the simulator's speed.
    pub cpu: Option<Duration>,
    /// Wall-clock time the checkers took.
    pub checking_wall: Duration,
    /// Events handled.
    pub steps: u64,
    /// When the first violation happened, if one did during the run.
    pub first_violation_at: Option<Micros>,
}

impl SimOutcome {
    /// Whether every checker passed (an unknown is not a pass).
    pub fn passed(&self) -> bool {
        self.verdicts
            .iter()
            .all(|verdict| verdict.status == Status::Pass)
    }

    /// The verdicts that did not pass.
    pub fn failures(&self) -> Vec<&Verdict> {
        self.verdicts
            .iter()
            .filter(|verdict| verdict.status != Status::Pass)
            .collect()
    }
}

/// Runs one simulation.
pub fn run(config: SimConfig) -> Result<SimOutcome, String> {
    if config.nodes == 0 || config.nodes > 9 {
        return Err(format!("--nodes must be 1 to 9, not {}", config.nodes));
    }
    if config.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if config.max_batch_entries == 0 {
        return Err("--batch-entries must be at least 1".into());
    }
    let started = Instant::now();
    let cpu_started = thread_cpu_time();
    let mut world = World::new(config.clone()).map_err(|error| error.to_string())?;
    let mut verdicts = Vec::new();
    if let Err(problem) = set_up(&mut world) {
        verdicts.push(verdict("setup", Status::Fail, problem));
    } else {
        world.start_clients();
        world.start_nemesis();
        let end_of_faults = world.now + config.duration;
        world.run_until(end_of_faults);
        // A run stopped at its first violation skips the later phases: their verdicts would
        // only echo it.
        if !world.invariants.failed() {
            world.heal();
            verdicts.push(liveness(&mut world));
            world.clients_running = false;
            let drain_until = world.now + DRAIN_LIMIT;
            world.run_while_not(drain_until, |world| !world.clients_busy());
            verdicts.push(quiesce(&mut world));
            verdicts.push(rejoined(&world));
        }
        final_reads(&mut world);
    }
    let wall = started.elapsed();
    let cpu = thread_cpu_time()
        .zip(cpu_started)
        .map(|(now, before)| now.saturating_sub(before));
    let checking_started = Instant::now();
    verdicts.push(invariant_verdict(&world));
    verdicts.push(disruption_verdict(&world));
    verdicts.extend(history_verdicts(&world.recorder.history, config.workload));
    let checking_wall = checking_started.elapsed();
    let first_violation_at = world.invariants.violations.first().map(|(at, _)| *at);
    let simulated = world.now;
    let steps = world.steps;
    let trace = world.recorder.finish_trace();
    Ok(SimOutcome {
        config,
        verdicts,
        history: std::mem::take(&mut world.recorder.history),
        trace,
        notes: std::mem::take(&mut world.recorder.notes),
        counters: std::mem::take(&mut world.recorder.counters),
        simulated,
        wall,
        cpu,
        checking_wall,
        steps,
        first_violation_at,
    })
}

/// The CPU time the calling thread has used, from `/proc/thread-self/schedstat` (Linux; its
/// first field is nanoseconds on a CPU). `None` where that file does not exist.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanoseconds: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanoseconds))
}

fn verdict(name: &str, status: Status, detail: String) -> Verdict {
    Verdict {
        name: name.to_string(),
        status,
        detail,
    }
}

/// Runs one setup command through the leader until it is applied.
fn setup_command(world: &mut World, command: Command, limit: Micros) -> Result<Response, String> {
    while world.now < limit {
        if !world.run_while_not(limit, |world| world.leader().is_some()) {
            break;
        }
        let leader = world.leader().expect("just checked");
        let id = world.next_setup_request();
        let request = Request::Write {
            session: None,
            command: command.clone(),
        };
        world.submit_setup(leader, id, request);
        let deadline = (world.now + 2 * SECOND).min(limit);
        world.run_while_not(deadline, |world| world.setup_outcomes.contains_key(&id));
        match world.setup_outcomes.remove(&id) {
            Some(Outcome::Applied {
                reply: Ok(response),
                ..
            }) => return Ok(response),
            Some(Outcome::Applied {
                reply: Err(error), ..
            }) => return Err(format!("setup command {command:?} refused: {error}")),
            _ => continue,
        }
    }
    Err(format!(
        "the healthy cluster did not apply a setup command within {} s",
        SETUP_LIMIT / SECOND
    ))
}

/// Accounts and rooms, made through the cluster before any fault.
fn set_up(world: &mut World) -> Result<(), String> {
    let limit = world.now + SETUP_LIMIT;
    let register = |nickname: String| Command::Register {
        nickname,
        password_hash: SIMULATED_PASSWORD_HASH.into(),
    };
    let user = |response: Response| match response {
        Response::UserCreated(user) => Ok(user),
        other => Err(format!("expected a new user, got {other:?}")),
    };
    let room = |response: Response| match response {
        Response::RoomCreated(room) => Ok(room),
        other => Err(format!("expected a new room, got {other:?}")),
    };
    let (room_names, members): (Vec<String>, usize) = match world.config.workload {
        Workload::Chat => (
            (0..CHAT_ROOMS).map(workload::room_name).collect(),
            world.config.clients,
        ),
        Workload::Register => ((0..REGISTER_KEYS).map(workload::key_room_name).collect(), 1),
    };
    let mut users: Vec<UserId> = Vec::new();
    for member in 0..members {
        let response = setup_command(world, register(format!("c{member}")), limit)?;
        users.push(user(response)?);
    }
    for name in room_names {
        let command = Command::CreateRoom {
            user: users[0],
            name,
            topic: String::new(),
        };
        let id = room(setup_command(world, command, limit)?)?;
        world.setup.rooms.push(id);
        for &member in &users[1..] {
            setup_command(
                world,
                Command::JoinRoom {
                    user: member,
                    room: id,
                },
                limit,
            )?;
        }
    }
    world.setup.owner = Some(users[0]);
    world.setup.users = users;
    Ok(())
}

/// After healing: the cluster must acknowledge a write within the liveness bound.
fn liveness(world: &mut World) -> Verdict {
    let healed_at = world.now;
    let bound = world.config.liveness_bound;
    let progressed = world.run_while_not(healed_at + bound, |world| {
        world
            .recorder
            .last_write_ok
            .is_some_and(|at| at > healed_at)
    });
    if progressed {
        let at = world.recorder.last_write_ok.expect("progressed");
        verdict(
            "liveness after heal",
            Status::Pass,
            format!(
                "first write acknowledged {:.3} s after healing",
                (at - healed_at) as f64 / 1e6
            ),
        )
    } else {
        verdict(
            "liveness after heal",
            Status::Fail,
            format!(
                "no write acknowledged within {} s of healing",
                bound / SECOND
            ),
        )
    }
}

/// Waits until every running member of the cluster (see `World::members`) has applied
/// everything the leader committed, and compares their state digests.
fn quiesce(world: &mut World) -> Verdict {
    let limit = world.now + QUIESCE_LIMIT;
    let converged = world.run_while_not(limit, |world| converged(world).is_some());
    let Some(index) = converged.then(|| converged_index(world)).flatten() else {
        return verdict(
            "convergence",
            Status::Fail,
            format!(
                "running nodes did not reach the same applied index within {} s of the end: {}",
                QUIESCE_LIMIT / SECOND,
                applied_summary(world)
            ),
        );
    };
    let mut digests: HashMap<[u8; 32], Vec<u64>> = HashMap::new();
    let members = world.members();
    for node in &world.nodes {
        if !members.contains(&(node.id as usize - 1)) {
            continue;
        }
        if let Ok(replica) = &node.replica {
            digests
                .entry(replica.chat().digest())
                .or_default()
                .push(node.id);
        }
    }
    if digests.len() == 1 {
        verdict(
            "convergence",
            Status::Pass,
            format!(
                "{} running nodes hold equal states at applied index {index}",
                digests.values().next().map_or(0, Vec::len)
            ),
        )
    } else {
        let groups: Vec<String> = digests.values().map(|nodes| format!("{nodes:?}")).collect();
        verdict(
            "convergence",
            Status::Fail,
            format!(
                "states differ at applied index {index}: groups {}",
                groups.join(" vs ")
            ),
        )
    }
}

/// After the heal, every node whose disk was not damaged must be running again: a crash,
/// even one that tore the last write, must leave a log the node restarts from (TESTING.md
/// row 13). Convergence then shows it caught up. A node whose disk had a bit flipped may
/// refuse to start (row 12: it must not lead or vote with a damaged log).
fn rejoined(world: &World) -> Verdict {
    let missing: Vec<String> = world
        .nodes
        .iter()
        .filter(|node| !node.damaged)
        .filter_map(|node| match &node.replica {
            Ok(_) => None,
            Err(down) => Some(format!("n{} ({down:?})", node.id)),
        })
        .collect();
    let damaged = world.nodes.iter().filter(|node| node.damaged).count();
    if missing.is_empty() {
        verdict(
            "rejoined after heal",
            Status::Pass,
            format!(
                "{} undamaged nodes running ({damaged} with a damaged disk excused)",
                world.nodes.len() - damaged
            ),
        )
    } else {
        verdict(
            "rejoined after heal",
            Status::Fail,
            format!(
                "nodes whose disks were not damaged are still down: {}",
                missing.join(", ")
            ),
        )
    }
}

fn converged(world: &World) -> Option<LogIndex> {
    let leader = world.leader()?;
    let status = world.nodes[leader].replica.as_ref().ok()?.status();
    if status.commit_index != status.last_index || status.role != RoleKind::Leader {
        return None;
    }
    let members = world.members();
    let all_applied = world
        .nodes
        .iter()
        .filter(|node| members.contains(&(node.id as usize - 1)))
        .filter_map(|node| node.replica.as_ref().ok())
        .all(|replica| replica.chat().applied_index() == status.commit_index);
    all_applied.then_some(status.commit_index)
}

fn converged_index(world: &World) -> Option<LogIndex> {
    converged(world)
}

fn applied_summary(world: &World) -> String {
    let parts: Vec<String> = world
        .nodes
        .iter()
        .map(|node| match &node.replica {
            Ok(replica) => {
                let status = replica.status();
                format!(
                    "n{} {:?} term {} applied {} commit {} last {}",
                    node.id,
                    status.role,
                    status.term,
                    status.applied_index,
                    status.commit_index,
                    status.last_index
                )
            }
            Err(down) => format!("n{} down ({down:?})", node.id),
        })
        .collect();
    parts.join("; ")
}

/// Reads every room (or key) on every running member, after convergence, into the history.
fn final_reads(world: &mut World) {
    let now = world.now;
    let members = world.members();
    for index in 0..world.nodes.len() {
        let Ok(replica) = &world.nodes[index].replica else {
            continue;
        };
        if !members.contains(&index) {
            continue;
        }
        let process = FINAL_READ_PROCESS + index as u64;
        let mut events = Vec::new();
        let reads: Vec<(OpKind, &str)> = match world.config.workload {
            Workload::Chat => (0..CHAT_ROOMS)
                .map(|room| (OpKind::History { room }, "final-read"))
                .collect(),
            Workload::Register => (0..REGISTER_KEYS)
                .map(|key| (OpKind::Read { key }, "read"))
                .collect(),
        };
        for (kind, operation) in reads {
            let invoke = match &kind {
                OpKind::History { room } => {
                    json!({"room": workload::room_name(*room), "node": index + 1})
                }
                other => other.invoke_value(0, index),
            };
            let value = workload::read_value(&kind, &replica.chat(), &world.setup);
            events.push((operation, EventKind::Invoke, invoke));
            events.push((operation, EventKind::Ok, value));
        }
        for (operation, kind, value) in events {
            world.recorder.history(process, kind, operation, value, now);
        }
    }
}

fn invariant_verdict(world: &World) -> Verdict {
    match world.invariants.violations.first() {
        None => verdict(
            INVARIANTS_VERDICT,
            Status::Pass,
            format!(
                "{} checks over {} steps",
                world.invariants.checks, world.steps
            ),
        ),
        Some((at, text)) => verdict(
            INVARIANTS_VERDICT,
            Status::Fail,
            format!("at {:.3} s: {text}", *at as f64 / 1e6),
        ),
    }
}

/// Whether the majority kept a leader through every judged disruptive-node episode
/// (TESTING.md row 9; see `disruption.rs`).
fn disruption_verdict(world: &World) -> Verdict {
    use super::disruption::LEADERLESS_BOUND;
    let disruption = &world.disruption;
    let name = "leader despite a disruptive node";
    let worst = disruption
        .judged
        .iter()
        .map(|&(_, _, leaderless, _)| leaderless)
        .max()
        .unwrap_or(0);
    match disruption.failures().first() {
        None => verdict(
            name,
            Status::Pass,
            format!(
                "{} episodes judged ({} voided by other faults or cut short by the heal); at most {} ms without a leader",
                disruption.judged.len(),
                disruption.voided,
                worst / MILLISECOND
            ),
        ),
        Some(&(started, node, leaderless, longest)) => verdict(
            name,
            Status::Fail,
            format!(
                "while n{} was cut off, deaf, then rejoining (from {:.3} s), the connected majority \
                 was without a leader for {} ms in total (longest stretch {} ms; bound {} ms)",
                node + 1,
                started as f64 / 1e6,
                leaderless / MILLISECOND,
                longest / MILLISECOND,
                LEADERLESS_BOUND / MILLISECOND
            ),
        ),
    }
}

/// Runs the history checkers.
pub fn history_verdicts(history: &[Event], workload: Workload) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    match workload {
        Workload::Chat => {
            let claims: Vec<Event> = history
                .iter()
                .filter(|event| event.operation == "claim")
                .cloned()
                .collect();
            verdicts.push(linearizable(
                "linearizability (nickname claims)",
                &NameRegistry,
                &claims,
            ));
            match crate::checks::check_chat(history) {
                Ok(reports) => verdicts.extend(reports.into_iter().map(|report| {
                    let status = if report.passed() {
                        Status::Pass
                    } else {
                        Status::Fail
                    };
                    let detail = if report.passed() {
                        format!("{} checked", report.checked)
                    } else {
                        format!(
                            "{} problems; first: {}",
                            report.problem_count,
                            report.problems.join(" | ")
                        )
                    };
                    verdict(report.name, status, detail)
                })),
                Err(error) => {
                    verdicts.push(verdict("chat history", Status::Fail, error.to_string()))
                }
            }
        }
        Workload::Register => {
            let registers: Vec<Event> = history
                .iter()
                .filter(|event| event.operation == "read" || event.operation == "write")
                .cloned()
                .collect();
            verdicts.push(linearizable(
                "linearizability (registers)",
                &Register,
                &registers,
            ));
        }
    }
    verdicts
}

fn linearizable<M: crate::model::Model>(name: &str, model: &M, events: &[Event]) -> Verdict {
    let operations = events
        .iter()
        .filter(|e| e.kind != EventKind::Invoke)
        .count();
    match linearizability::check_events(model, events, LINEARIZABILITY_BUDGET_STEPS) {
        Ok(LinearizabilityVerdict::Linearizable) => {
            verdict(name, Status::Pass, format!("{operations} operations linearizable"))
        }
        Ok(LinearizabilityVerdict::NotLinearizable(violation)) => verdict(
            name,
            Status::Fail,
            format!(
                "not linearizable: partition {} ({} operations); longest linearizable prefix {} operations; blocked at operation {:?}",
                violation.partition,
                violation.operations.len(),
                violation.longest_prefix.len(),
                violation.blocking_operation
            ),
        ),
        Ok(LinearizabilityVerdict::Unknown { partition }) => verdict(
            name,
            Status::Unknown,
            format!("search budget of {LINEARIZABILITY_BUDGET_STEPS} steps exhausted in partition {partition}"),
        ),
        Err(error) => verdict(name, Status::Fail, format!("malformed history: {error}")),
    }
}
