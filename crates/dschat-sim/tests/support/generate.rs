//! Generates register histories by simulating a correct, linearizable key-value register under
//! random concurrency: each operation takes effect at one instant strictly between its
//! invocation and its completion, so every generated history is linearizable unless mutated.
//! Shared by the tests and the benchmark (included with `#[path]`).

use std::collections::BTreeMap;

use dschat_sim::history::{Event, EventKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// The shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Concurrent clients.
    pub processes: u64,
    /// Distinct keys (partitions).
    pub keys: u64,
    /// Operations invoked in total.
    pub operations: usize,
    /// Per mille of completions that time out (`info`).
    pub info_per_mille: u32,
}

/// Where one process is in its current operation.
enum Phase {
    Idle,
    Invoked {
        operation: &'static str,
        input: Value,
        key: u64,
    },
    Applied {
        operation: &'static str,
        output: Value,
        failed: bool,
    },
}

/// A linearizable history of `shape`, determined by `seed`.
pub fn register_history(seed: u64, shape: Shape) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut store: BTreeMap<u64, i64> = BTreeMap::new();
    let mut phases: Vec<Phase> = (0..shape.processes).map(|_| Phase::Idle).collect();
    let mut events = Vec::new();
    let mut invoked = 0;
    let mut time_ns = 0;
    let mut next_value = 1;
    while invoked < shape.operations || phases.iter().any(|phase| !matches!(phase, Phase::Idle)) {
        time_ns += rng.gen_range(1..=10);
        let process = rng.gen_range(0..shape.processes);
        let phase = std::mem::replace(&mut phases[process as usize], Phase::Idle);
        let event = |kind, operation: &str, value| Event {
            process,
            kind,
            operation: operation.to_string(),
            value,
            time_ns,
        };
        phases[process as usize] = match phase {
            Phase::Idle if invoked < shape.operations => {
                invoked += 1;
                let key = rng.gen_range(0..shape.keys);
                let (operation, input) = match rng.gen_range(0..10) {
                    0..=4 => ("read", json!({ "key": key })),
                    5..=7 => {
                        next_value += 1;
                        ("write", json!({ "key": key, "value": next_value }))
                    }
                    _ => {
                        next_value += 1;
                        let expected = store.get(&key).copied().filter(|_| rng.gen_bool(0.7));
                        (
                            "cas",
                            json!({ "key": key, "expected": expected, "new": next_value }),
                        )
                    }
                };
                events.push(event(EventKind::Invoke, operation, input.clone()));
                Phase::Invoked {
                    operation,
                    input,
                    key,
                }
            }
            Phase::Idle => Phase::Idle,
            Phase::Invoked { operation, .. } if rng.gen_range(0..1000) < shape.info_per_mille => {
                // Times out before taking effect: it never will.
                events.push(event(EventKind::Info, operation, Value::Null));
                Phase::Idle
            }
            Phase::Invoked {
                operation,
                input,
                key,
            } => {
                let (output, failed) = apply(&mut store, operation, &input, key);
                Phase::Applied {
                    operation,
                    output,
                    failed,
                }
            }
            Phase::Applied { operation, .. } if rng.gen_range(0..1000) < shape.info_per_mille => {
                // Took effect, but the client never learns it.
                events.push(event(EventKind::Info, operation, Value::Null));
                Phase::Idle
            }
            Phase::Applied {
                operation,
                output,
                failed,
            } => {
                let kind = if failed {
                    EventKind::Fail
                } else {
                    EventKind::Ok
                };
                events.push(event(kind, operation, output));
                Phase::Idle
            }
        };
    }
    events
}

/// The linearization point: applies one operation to the true store.
fn apply(
    store: &mut BTreeMap<u64, i64>,
    operation: &str,
    input: &Value,
    key: u64,
) -> (Value, bool) {
    match operation {
        "read" => (json!({ "key": key, "value": store.get(&key) }), false),
        "write" => {
            store.insert(
                key,
                input["value"]
                    .as_i64()
                    .expect("generated write has a value"),
            );
            (Value::Null, false)
        }
        _ => {
            let expected = input["expected"].as_i64();
            if store.get(&key).copied() == expected {
                store.insert(
                    key,
                    input["new"]
                        .as_i64()
                        .expect("generated cas has a new value"),
                );
                (Value::Null, false)
            } else {
                (Value::Null, true)
            }
        }
    }
}

/// Replaces the result of one randomly chosen successful read with `value`, returning whether
/// there was a read to mutate.
pub fn mutate_one_read(events: &mut [Event], seed: u64, value: Option<i64>) -> bool {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let reads: Vec<usize> = (0..events.len())
        .filter(|&index| events[index].kind == EventKind::Ok && events[index].operation == "read")
        .collect();
    if reads.is_empty() {
        return false;
    }
    let chosen = reads[rng.gen_range(0..reads.len())];
    events[chosen].value["value"] = json!(value);
    true
}
