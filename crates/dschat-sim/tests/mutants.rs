//! Deliberately broken builds must be caught by the simulator within a bounded number of
//! seeds (TESTING.md: a failure class is covered when a test with its fault schedule fails on
//! a build with the bug re-introduced), and the correct build must pass the run that caught
//! each. Compiled only with the `bug-switches` feature.
//!
//! Rows of TESTING.md covered: 1 (`vote-without-persist`, schedule `crash-voters`), 2
//! (`acknowledge-before-fsync`), 3 (`read-without-confirmation`, `deposed-leader`), 5
//! (`commit-earlier-term-by-counting`, `leader-churn` with one entry per log request), 6
//! (`truncate-on-stale-append`), 7 (`acknowledge-before-commit`, `leader-churn`) and 14
//! (`forget-client-sessions`), 12 (`skip-body-checksums`, schedule `damaged-entry`) and 13
//! (`keep-torn-tail`, faults `torn-write` and `crash`); 9 (`no-pre-vote-or-check-quorum`,
//! schedule `disruptive-node`); 8 (`allow-overlapping-membership-changes`, schedule
//! `membership`); 10 (`snapshot-rename-before-sync`, faults `crash`); 16
//! (`ignore-stalled-replication`, faults `loss`, caught by the liveness phase); 17
//! (`feed-resume-skips-first-event`, caught by `feeds-gap-free`); 18
//! (`hybrid-clock-follows-physical-time-backwards`, faults `clock,crash,partition`, caught by
//! the clock-causality invariant). The bounds below leave
//! room: at the time of writing each mutant was caught by the first or second seed tried.
#![cfg(feature = "bug-switches")]

use dschat_sim::sim::{self, FaultKind, Mutant, SimConfig, SECOND};

fn assert_caught(mutant: Mutant, faults: &str, seeds: std::ops::RangeInclusive<u64>) {
    assert_caught_with(
        mutant,
        SimConfig {
            faults: FaultKind::parse_list(faults).unwrap(),
            ..SimConfig::default()
        },
        seeds,
    );
}

fn assert_caught_with(mutant: Mutant, base: SimConfig, seeds: std::ops::RangeInclusive<u64>) {
    assert_caught_by(mutant, base, seeds, None);
}

/// Like [`assert_caught_with`]; with `expected` set, a seed catches the mutant only if a
/// failed verdict's name or detail contains it (so the test shows which check does the work).
fn assert_caught_by(
    mutant: Mutant,
    base: SimConfig,
    seeds: std::ops::RangeInclusive<u64>,
    expected: Option<&str>,
) {
    for seed in seeds.clone() {
        let config = SimConfig {
            seed,
            duration: 10 * SECOND,
            mutant: Some(mutant),
            ..base.clone()
        };
        let outcome = sim::run(config.clone()).expect("runs");
        let failed: Vec<&str> = outcome.failures().iter().map(|v| v.name.as_str()).collect();
        let caught = match expected {
            None => !failed.is_empty(),
            Some(text) => outcome
                .failures()
                .iter()
                .any(|v| v.name.contains(text) || v.detail.contains(text)),
        };
        if caught {
            eprintln!(
                "mutant {} caught by seed {seed} ({}); replay: {}",
                mutant.name(),
                failed.join(", "),
                config.replay_command()
            );
            // The same run without the bug must pass, or the test proves nothing.
            let healthy = SimConfig {
                mutant: None,
                ..config
            };
            let control = sim::run(healthy.clone()).expect("runs");
            assert!(
                control.passed(),
                "the correct build fails the same run: {:?}; replay: {}",
                control.failures(),
                healthy.replay_command()
            );
            return;
        }
    }
    panic!("mutant {} survived seeds {seeds:?}", mutant.name());
}

#[test]
fn acknowledging_before_fsync_loses_acknowledged_posts() {
    assert_caught(Mutant::AcknowledgeBeforeFsync, "all", 1..=4);
}

#[test]
fn a_vote_sent_before_it_is_durable_gives_two_leaders_in_a_term() {
    assert_caught(Mutant::VoteWithoutPersist, "crash-voters", 1..=8);
}

#[test]
fn a_deposed_leader_reading_without_confirmation_serves_stale_reads() {
    assert_caught(Mutant::ReadWithoutConfirmation, "deposed-leader", 1..=8);
}

#[test]
fn committing_an_earlier_terms_entry_by_counting_loses_it_figure_8() {
    assert_caught_with(
        Mutant::CommitEarlierTermByCounting,
        SimConfig {
            faults: FaultKind::parse_list("leader-churn").unwrap(),
            max_batch_entries: 1,
            ..SimConfig::default()
        },
        1..=8,
    );
}

#[test]
fn forgetting_client_sessions_applies_retried_posts_twice() {
    assert_caught(Mutant::ForgetClientSessions, "all", 1..=4);
}

#[test]
fn acknowledging_a_post_before_it_commits_loses_it_when_the_leader_is_cut_off() {
    assert_caught(Mutant::AcknowledgeBeforeCommit, "leader-churn", 1..=4);
}

#[test]
fn truncating_on_a_stale_append_is_caught() {
    assert_caught(Mutant::TruncateOnStaleAppend, "all", 1..=3);
}

#[test]
fn replaying_a_damaged_entry_without_checking_its_checksum_diverges() {
    assert_caught(Mutant::SkipBodyChecksums, "damaged-entry", 1..=4);
}

#[test]
fn writing_after_a_torn_tail_keeps_the_node_from_rejoining() {
    assert_caught(Mutant::KeepTornTail, "torn-write,crash", 1..=4);
}

#[test]
fn without_pre_vote_and_check_quorum_a_cut_off_node_leaves_the_majority_leaderless() {
    assert_caught(Mutant::NoPreVoteOrCheckQuorum, "disruptive-node", 1..=4);
}

#[test]
fn two_overlapping_membership_changes_let_disjoint_majorities_commit() {
    assert_caught(
        Mutant::AllowOverlappingMembershipChanges,
        "membership",
        1..=4,
    );
}

#[test]
fn renaming_a_snapshot_before_syncing_it_loses_the_node_at_the_next_crash() {
    assert_caught(Mutant::SnapshotRenameBeforeSync, "crash", 1..=4);
}

#[test]
fn ignoring_stalled_replication_leaves_the_healed_cluster_unavailable() {
    assert_caught_by(
        Mutant::IgnoreStalledReplication,
        SimConfig {
            faults: FaultKind::parse_list("loss").unwrap(),
            ..SimConfig::default()
        },
        1..=4,
        Some("liveness after heal"),
    );
}

#[test]
fn a_feed_resume_that_skips_the_first_event_leaves_gaps() {
    assert_caught_by(
        Mutant::FeedResumeSkipsFirstEvent,
        SimConfig {
            faults: FaultKind::parse_list("all").unwrap(),
            ..SimConfig::default()
        },
        1..=4,
        Some("feeds-gap-free"),
    );
}

#[test]
fn a_hybrid_clock_that_follows_the_physical_clock_back_stamps_out_of_log_order() {
    assert_caught_by(
        Mutant::HybridClockFollowsPhysicalTimeBackwards,
        SimConfig {
            faults: FaultKind::parse_list("clock,crash,partition").unwrap(),
            ..SimConfig::default()
        },
        1..=6,
        Some("hybrid clock causality"),
    );
}
