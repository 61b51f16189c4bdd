//! Each test-only bug switch re-introduces a known Raft bug; these tests show that the script
//! tests (and, where quick, the randomised tests) catch it. Compiled only with the
//! `bug-switches` feature: `cargo test -p dschat-core --features bug-switches`.
#![cfg(feature = "bug-switches")]

#[path = "raft_scripts/harness/cluster.rs"]
mod cluster;
#[path = "raft_scripts/harness/describe.rs"]
mod describe;
#[path = "raft_scripts/harness/random.rs"]
mod random;
#[path = "raft_scripts/harness/script.rs"]
mod script;

/// Run a checked-in script with `bug` on, and without it; the checks must fail only with it.
fn assert_script_catches(bug: &str, script_name: &str, expected_violation: &str) {
    let path = format!(
        "{}/tests/raft_scripts/{script_name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("script exists");
    let healthy = script::Runner::new(Vec::new()).run(&text);
    assert!(
        !healthy.contains("VIOLATION"),
        "{script_name} fails even without the bug:\n{healthy}"
    );
    let broken = script::Runner::new(vec![bug.to_string()]).run(&text);
    assert!(
        broken.contains(&format!("VIOLATION: {expected_violation}")),
        "with bug {bug}, {script_name} should report a {expected_violation:?} violation:\n{broken}"
    );
}

/// Run random schedules with `bug` on until one fails; it must within `seeds` seeds.
fn assert_random_catches(bug: &str, seeds: u64) {
    for seed in 1..=seeds {
        if random::run(seed, 2_000, &[bug]).is_err() {
            return;
        }
    }
    panic!("no random schedule out of {seeds} caught bug {bug}");
}

#[test]
fn vote_not_persisted_before_replying_gives_two_leaders() {
    assert_script_catches(
        "vote-without-persist",
        "vote_lost_in_crash_is_not_counted",
        "election safety",
    );
}

#[test]
fn committing_an_earlier_terms_entry_by_counting_loses_it() {
    assert_script_catches("commit-earlier-term", "figure8", "state machine safety");
}

#[test]
fn follower_truncating_on_a_stale_append_loses_committed_entries() {
    assert_script_catches(
        "truncate-on-stale-append",
        "delayed_stale_append_ignored",
        "n2 invariant",
    );
    assert_random_catches("truncate-on-stale-append", 20);
}

#[test]
fn read_without_confirming_leadership_is_stale() {
    assert_script_catches(
        "read-without-confirmation",
        "stale_read_partitioned_leader",
        "stale read",
    );
}

#[test]
fn two_overlapping_membership_changes_let_disjoint_majorities_commit() {
    assert_script_catches(
        "allow-overlapping-membership-changes",
        "membership_overlapping_removals",
        "state machine safety",
    );
}
