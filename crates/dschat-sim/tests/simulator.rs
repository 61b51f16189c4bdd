//! The simulator runs the real replicas under random faults, deterministically, and its
//! checkers pass on the healthy code. A short slice of seeds runs here; `scripts/sim-soak`
//! runs thousands. Replay any failure with the `dschat sim` command the assertion prints.
//!
//! `DSCHAT_SIM_SEEDS=A..B` widens or narrows the slice of the chat-workload test.

use dschat_sim::sim::{self, FaultKind, SimConfig, Status, Workload, SECOND};

fn seeds_from_environment(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    match std::env::var("DSCHAT_SIM_SEEDS") {
        Ok(text) => {
            let (from, to) = text.split_once("..").expect("DSCHAT_SIM_SEEDS is A..B");
            from.parse().expect("a seed")..to.parse().expect("a seed")
        }
        Err(_) => default,
    }
}

fn assert_passes(config: SimConfig) -> sim::SimOutcome {
    let replay = config.replay_command();
    let outcome = sim::run(config).expect("the simulation runs");
    let failures: Vec<String> = outcome
        .failures()
        .iter()
        .map(|verdict| format!("{:?} {}: {}", verdict.status, verdict.name, verdict.detail))
        .collect();
    assert!(
        failures.is_empty(),
        "{}\nreplay with: {replay} --out sim-failure",
        failures.join("\n")
    );
    outcome
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let config = SimConfig {
        seed: 5,
        duration: 5 * SECOND,
        record_messages: true,
        ..SimConfig::default()
    };
    let first = sim::run(config.clone()).expect("runs");
    let second = sim::run(config).expect("runs");
    assert!(first.history.len() > 100, "the clients did work");
    assert_eq!(first.history, second.history);
    assert_eq!(first.trace, second.trace);
    assert_eq!(first.steps, second.steps);
}

#[test]
fn different_seeds_give_different_runs() {
    let run = |seed| {
        sim::run(SimConfig {
            seed,
            duration: 3 * SECOND,
            ..SimConfig::default()
        })
        .expect("runs")
        .history
    };
    assert_ne!(run(1), run(2));
}

#[test]
fn a_healthy_network_loses_nothing_and_leaves_nothing_in_doubt() {
    let outcome = assert_passes(SimConfig {
        seed: 11,
        duration: 10 * SECOND,
        faults: Default::default(),
        ..SimConfig::default()
    });
    assert!(outcome.counters.ok > 500, "{:?}", outcome.counters.ok);
    assert_eq!(outcome.counters.fail, 0);
    assert_eq!(outcome.counters.crashes, 0);
}

#[test]
fn chat_workload_survives_every_fault_on_five_nodes() {
    for seed in seeds_from_environment(1..13) {
        let outcome = assert_passes(SimConfig {
            seed,
            duration: 30 * SECOND,
            ..SimConfig::default()
        });
        assert!(outcome.verdicts.iter().all(|v| v.status == Status::Pass));
    }
}

#[test]
fn register_workload_is_linearizable_on_three_nodes_under_every_fault() {
    for seed in 1..7 {
        let outcome = assert_passes(SimConfig {
            seed,
            nodes: 3,
            duration: 20 * SECOND,
            workload: Workload::Register,
            ..SimConfig::default()
        });
        assert!(outcome
            .verdicts
            .iter()
            .any(|verdict| verdict.name.starts_with("linearizability")));
    }
}

#[test]
fn fault_lists_parse_and_print_back() {
    let all = FaultKind::parse_list("all").unwrap();
    assert_eq!(all.len(), FaultKind::ALL.len());
    assert_eq!(FaultKind::format_list(&all), "all");
    let some = FaultKind::parse_list("crash,one-way").unwrap();
    assert_eq!(FaultKind::format_list(&some), "one-way,crash");
    assert!(FaultKind::parse_list("meteor")
        .unwrap_err()
        .contains("unknown fault"));
}

/// Each targeted schedule, alone, leaves the correct build correct; the disruptive-node
/// schedule is judged at least once (TESTING.md row 9), and the membership schedule changes
/// the membership (row 8).
#[test]
fn each_targeted_schedule_alone_passes_on_the_correct_build() {
    for schedule in FaultKind::parse_list("targeted").unwrap() {
        for seed in 1..4 {
            let outcome = assert_passes(SimConfig {
                seed,
                duration: 10 * SECOND,
                faults: [schedule].into_iter().collect(),
                max_batch_entries: if schedule == FaultKind::LeaderChurn {
                    1
                } else {
                    1024
                },
                ..SimConfig::default()
            });
            if schedule == FaultKind::DisruptiveNode {
                let verdict = outcome
                    .verdicts
                    .iter()
                    .find(|v| v.name == "leader despite a disruptive node")
                    .expect("the disruption verdict");
                assert!(
                    !verdict.detail.starts_with("0 episodes judged"),
                    "seed {seed}: no disruptive-node episode was judged: {}",
                    verdict.detail
                );
            }
            if schedule == FaultKind::MembershipChange {
                assert!(
                    outcome
                        .notes
                        .iter()
                        .any(|(_, _, text)| text.starts_with("membership change proposed")),
                    "seed {seed}: the membership schedule changed nothing"
                );
            }
        }
    }
}
