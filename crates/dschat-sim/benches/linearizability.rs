//! Checker time on generated register histories of 1k, 10k and 100k operations, 10 processes,
//! keys partitioned (one key per 100 operations, so partitions stay ~100 operations; and once
//! 100k operations on only 10 keys, ~10k per partition), 1% of completions indefinite.
//! Prints operations and milliseconds; run with
//! `cargo bench -p dschat-sim --bench linearizability`.

#[path = "../tests/support/generate.rs"]
#[allow(dead_code)] // the mutations are for the tests
mod generate;

use std::time::Instant;

use dschat_sim::history::operations;
use dschat_sim::linearizability::{check, Verdict};
use dschat_sim::model::Register;

fn main() {
    // "invoked" counts every operation; "checked" leaves out the failed compare-and-sets, which
    // definitely did not happen and are dropped before the search.
    println!(
        "{:>8} {:>8} {:>6} {:>10}  verdict",
        "invoked", "checked", "keys", "check_ms"
    );
    for (invoked, keys) in [(1_000, 10), (10_000, 100), (100_000, 1_000), (100_000, 10)] {
        let shape = generate::Shape {
            processes: 10,
            keys,
            operations: invoked,
            info_per_mille: 10,
        };
        let events = generate::register_history(1, shape);
        let history = operations(&Register, &events).expect("generated histories are well formed");
        let started = Instant::now();
        let verdict = check(&Register, &history, u64::MAX);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(
            verdict,
            Verdict::Linearizable,
            "generated histories are linearizable"
        );
        let checked = history.len();
        println!("{invoked:>8} {checked:>8} {keys:>6} {elapsed_ms:>10.1}  linearizable");
    }
}
