//! Generated register histories, each verdict cross-checked against `todc-utils`' independent
//! implementation of the Wing–Gong–Lowe search.
//!
//! Every generated history comes from a simulated correct register, so it must be linearizable;
//! mutated ones (a read returning another value) may or may not be, and there the oracle
//! decides. Each run covers seeds `0..SEEDS`; a failure prints its seed and the command that
//! replays just that seed (`DSCHAT_SIM_SEED=<seed>`).
//!
//! What todc cannot express, and how it is bridged: todc's histories must be complete (every
//! call has a response) and its specification is a static function of (operation, state). An
//! indefinite operation "may take effect after its call, or never", so each partition is given
//! to todc once per subset of its indefinite operations: included ones get a response after
//! every other event, excluded ones are removed. The history is linearizable iff some subset
//! is. Partitions with more than `MAX_INDEFINITE_FOR_ORACLE` indefinite operations are not
//! cross-checked (counted, and the count is asserted to stay small).

#[path = "support/generate.rs"]
mod generate;

use std::collections::BTreeMap;

use dschat_sim::history::{operations, Operation};
use dschat_sim::linearizability::{check, Verdict};
use dschat_sim::model::{Register, RegisterInput, RegisterOutput};
use todc_utils::linearizability::history::{Action, History};
use todc_utils::linearizability::WGLChecker;
use todc_utils::specifications::Specification;

const SEEDS: u64 = 1_500;
const MAX_INDEFINITE_FOR_ORACLE: usize = 6;
const BUDGET: u64 = 10_000_000;

type RegisterOperation = Operation<RegisterInput, RegisterOutput>;

/// The register written again from its definition, independently of `dschat_sim::model`.
struct OracleRegister;

impl Specification for OracleRegister {
    type State = Option<i64>;
    type Operation = (RegisterInput, Option<RegisterOutput>);

    fn init() -> Option<i64> {
        None
    }

    fn apply((input, output): &Self::Operation, state: &Option<i64>) -> (bool, Option<i64>) {
        match input {
            RegisterInput::Read { .. } => match output {
                Some(RegisterOutput::Read(seen)) => (seen == state, *state),
                _ => (true, *state),
            },
            RegisterInput::Write { value, .. } => (true, Some(*value)),
            RegisterInput::CompareAndSet { expected, new, .. } if expected == state => {
                (true, Some(*new))
            }
            RegisterInput::CompareAndSet { .. } => (false, *state),
        }
    }
}

/// todc's verdict on one key's operations, or `None` if it cannot express them.
fn oracle_partition(operations: &[&RegisterOperation]) -> Option<bool> {
    let indefinite: Vec<usize> = (0..operations.len())
        .filter(|&i| operations[i].return_time_ns.is_none())
        .collect();
    if indefinite.len() > MAX_INDEFINITE_FOR_ORACLE {
        return None;
    }
    let linearizable = (0u32..1 << indefinite.len()).any(|subset| {
        let included = |i: usize| match indefinite.iter().position(|&j| j == i) {
            Some(bit) => subset & (1 << bit) != 0,
            None => true,
        };
        // (time, calls before returns, operation): the same tie rule as the checker's.
        let mut timeline: Vec<(u64, u8, usize)> = Vec::new();
        for (i, operation) in operations.iter().enumerate().filter(|(i, _)| included(*i)) {
            timeline.push((operation.call_time_ns, 0, i));
            timeline.push((operation.return_time_ns.unwrap_or(u64::MAX), 1, i));
        }
        if timeline.is_empty() {
            return true;
        }
        timeline.sort_unstable();
        // One todc process per operation, so responses pair with calls unambiguously.
        let actions = timeline.into_iter().map(|(_, is_return, i)| {
            let operation = (operations[i].input, operations[i].output);
            (
                i,
                if is_return == 0 {
                    Action::Call(operation)
                } else {
                    Action::Response(operation)
                },
            )
        });
        WGLChecker::<OracleRegister>::is_linearizable(History::from_actions(actions.collect()))
    });
    Some(linearizable)
}

/// todc's verdict on a whole history (per key), or `None` if some key was not expressible.
fn oracle(history: &[RegisterOperation]) -> Option<bool> {
    let mut by_key: BTreeMap<u64, Vec<&RegisterOperation>> = BTreeMap::new();
    for operation in history {
        by_key
            .entry(operation.input.key())
            .or_default()
            .push(operation);
    }
    let mut verdict = true;
    for operations in by_key.values() {
        verdict &= oracle_partition(operations)?;
    }
    Some(verdict)
}

fn seeds() -> Vec<u64> {
    match std::env::var("DSCHAT_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("DSCHAT_SIM_SEED is a number")],
        Err(_) => (0..SEEDS).collect(),
    }
}

fn small_shape(seed: u64) -> generate::Shape {
    generate::Shape {
        processes: 2 + seed % 4,
        keys: 1 + seed % 3,
        operations: 4 + (seed % 24) as usize,
        info_per_mille: 80,
    }
}

/// Checks one history and compares with the oracle; returns (our verdict, oracle's verdict).
fn judge(seed: u64, test: &str, history: &[RegisterOperation]) -> (bool, Option<bool>) {
    let replay =
        format!("DSCHAT_SIM_SEED={seed} cargo nextest run -p dschat-sim --all-features {test}");
    let linearizable = match check(&Register, history, BUDGET) {
        Verdict::Linearizable => true,
        Verdict::NotLinearizable(_) => false,
        Verdict::Unknown { .. } => {
            panic!("seed {seed}: budget exhausted on a small history; replay: {replay}")
        }
    };
    let expected = oracle(history);
    if let Some(expected) = expected {
        assert_eq!(
            linearizable, expected,
            "seed {seed}: checker disagrees with todc; replay: {replay}\n{history:#?}"
        );
    }
    (linearizable, expected)
}

#[test]
fn histories_of_a_correct_register_are_linearizable() {
    let mut not_cross_checked = 0;
    for seed in seeds() {
        let events = generate::register_history(seed, small_shape(seed));
        let history = operations(&Register, &events).expect("generated histories are well formed");
        let (linearizable, oracle) = judge(seed, "histories_of_a_correct_register", &history);
        assert!(
            linearizable,
            "seed {seed}: a correct register's history was rejected"
        );
        not_cross_checked += usize::from(oracle.is_none());
    }
    assert!(
        not_cross_checked * 20 <= seeds().len(),
        "too few histories cross-checked: {not_cross_checked} skipped"
    );
}

#[test]
fn mutated_histories_agree_with_the_oracle() {
    let (mut rejected, mut accepted) = (0, 0);
    for seed in seeds() {
        let mut events = generate::register_history(seed, small_shape(seed));
        // A value some write produced (generated values start at 2), often stale or early.
        let stale = 2 + (seed % 8) as i64;
        if !generate::mutate_one_read(&mut events, seed, Some(stale)) {
            continue;
        }
        let history = operations(&Register, &events).expect("mutation keeps histories well formed");
        let (linearizable, _) = judge(seed, "mutated_histories_agree", &history);
        if linearizable {
            accepted += 1
        } else {
            rejected += 1
        }
    }
    // Both outcomes must occur, or this test would not be exercising the oracle's disagreement.
    if seeds().len() > 1 {
        assert!(
            rejected > 100 && accepted > 100,
            "rejected {rejected}, accepted {accepted}"
        );
    }
}

#[test]
fn a_read_of_a_value_never_written_is_always_caught() {
    for seed in seeds() {
        let mut events = generate::register_history(seed, small_shape(seed));
        if !generate::mutate_one_read(&mut events, seed, Some(-1)) {
            continue;
        }
        let history = operations(&Register, &events).expect("mutation keeps histories well formed");
        let (linearizable, _) = judge(seed, "a_read_of_a_value_never_written", &history);
        assert!(
            !linearizable,
            "seed {seed}: a read of a value nobody wrote was accepted"
        );
    }
}

#[test]
fn larger_histories_of_a_correct_register_are_linearizable() {
    // Beyond todc's reach (its history is a vector searched linearly); checks the checker alone.
    for seed in seeds().into_iter().take(20) {
        let shape = generate::Shape {
            processes: 10,
            keys: 20,
            operations: 5_000,
            info_per_mille: 10,
        };
        let events = generate::register_history(seed, shape);
        let history = operations(&Register, &events).expect("generated histories are well formed");
        let replay = format!("DSCHAT_SIM_SEED={seed} cargo nextest run -p dschat-sim --all-features larger_histories");
        assert_eq!(
            check(&Register, &history, u64::MAX),
            Verdict::Linearizable,
            "seed {seed}; replay: {replay}"
        );
    }
}
