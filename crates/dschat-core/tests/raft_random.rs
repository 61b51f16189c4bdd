//! Randomised safety tests of the Raft core. Each seed runs a random fault schedule (message
//! loss, duplication, reordering, partitions, crashes losing unsynced writes, snapshots,
//! membership changes) checking after every step: one leader per term, leader append-only,
//! log matching, leader completeness, state machine safety, linearizable reads, node
//! invariants; then heals and checks that a leader commits again.
//!
//! `RAFT_SEED=N` replays one seed; `RAFT_SEEDS=N` runs N seeds (from `RAFT_FIRST_SEED`, default
//! 1); `RAFT_STEPS=N` sets the steps per seed (default 2000). With `-- --nocapture`,
//! `RAFT_TRACE=1` prints every step and `RAFT_VERBOSE=1` a summary per seed.

#[path = "raft_scripts/harness/cluster.rs"]
mod cluster;
#[path = "raft_scripts/harness/describe.rs"]
mod describe;
#[path = "raft_scripts/harness/random.rs"]
mod random;
#[path = "raft_scripts/harness/script.rs"]
mod script;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_fault_schedules_keep_raft_safe() {
    let steps = env_number("RAFT_STEPS").unwrap_or(2_000) as usize;
    let seeds: Vec<u64> = match env_number("RAFT_SEED") {
        Some(seed) => vec![seed],
        None => {
            let first = env_number("RAFT_FIRST_SEED").unwrap_or(1);
            (first..first + env_number("RAFT_SEEDS").unwrap_or(48)).collect()
        }
    };
    for seed in seeds {
        let replay = format!(
            "replay: RAFT_SEED={seed} RAFT_STEPS={steps} cargo test -p dschat-core --all-features --test raft_random"
        );
        // A panic inside the core or the harness must also name the seed that caused it.
        let outcome = std::panic::catch_unwind(|| random::run(seed, steps, &[]));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => panic!(
                "seed {seed} failed at step {}: {}\nlast steps:\n{}\n{replay}",
                failure.step,
                failure.violation,
                failure.trace.join("\n")
            ),
            Err(_) => panic!("seed {seed} panicked (message above)\n{replay}"),
        }
    }
}
