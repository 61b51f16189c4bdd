//! The chat checkers: a hand-written clean history, and one mutation per failure class, each
//! asserting exactly which checkers fail; malformed and mixed histories; generated histories
//! of a correct cluster (which must pass) and randomly mutated ones (which must not).
//!
//! Randomised tests cover seeds `0..SEEDS`; a failure prints its seed and the command that
//! replays just that seed (`DSCHAT_SIM_SEED=<seed>`).

#[path = "support/chat.rs"]
mod chat;

use std::collections::BTreeSet;

use dschat_sim::checks::{
    acknowledged_posts_kept, check_chat, feeds_gap_free, ids_increase, linearizable_history_reads,
    no_duplicates, nothing_invented, same_order_everywhere, CheckReport,
};
use dschat_sim::history::{Event, EventKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const SEEDS: u64 = 300;

const ACKNOWLEDGED: &str = acknowledged_posts_kept::NAME;
const DUPLICATES: &str = no_duplicates::NAME;
const INVENTED: &str = nothing_invented::NAME;
const SAME_ORDER: &str = same_order_everywhere::NAME;
const LINEARIZABLE: &str = linearizable_history_reads::NAME;
const FEEDS: &str = feeds_gap_free::NAME;
const IDS: &str = ids_increase::NAME;
const ALL: [&str; 7] = [
    ACKNOWLEDGED,
    DUPLICATES,
    INVENTED,
    SAME_ORDER,
    LINEARIZABLE,
    FEEDS,
    IDS,
];

// The processes of the base history that read; each reads exactly once.
const FIRST_HISTORY_READ: u64 = 2;
const FIRST_FEED: u64 = 3;
const SECOND_HISTORY_READ: u64 = 5;
const FINAL_NODE_1: u64 = 6;
const FINAL_NODE_2: u64 = 7;
const FINAL_NODE_3: u64 = 8;
const SECOND_FEED: u64 = 9;
const FINAL_READERS: [u64; 3] = [FINAL_NODE_1, FINAL_NODE_2, FINAL_NODE_3];

/// One event at `time_ms` milliseconds; `kind` is `invoke`, `ok`, `fail` or `info`.
fn event(process: u64, kind: &str, operation: &str, value: Value, time_ms: u64) -> Event {
    let kind = serde_json::from_value(json!(kind)).expect("a known event kind");
    Event {
        process,
        kind,
        operation: operation.to_string(),
        value,
        time_ns: time_ms * 1_000_000,
    }
}

fn messages(list: &[(u64, &str)]) -> Value {
    json!({ "messages": list.iter().map(|(id, body)| json!([id, body])).collect::<Vec<_>>() })
}

/// A post with its completion: `outcome` is `ok` (with `id`), `fail` or `info`.
fn post(process: u64, body: &str, outcome: &str, id: u64, call: u64, ret: u64) -> Vec<Event> {
    let result = match outcome {
        "ok" => json!({ "id": id }),
        "fail" => json!({ "error": "not leader" }),
        _ => Value::Null,
    };
    vec![
        event(
            process,
            "invoke",
            "post",
            json!({"room": "r1", "body": body}),
            call,
        ),
        event(process, outcome, "post", result, ret),
    ]
}

/// An answered read of room r1: `operation` is `history`, `final-read` or `feed` (then with
/// `after`).
fn read(
    process: u64,
    operation: &str,
    node: u64,
    after: Option<u64>,
    seen: &[(u64, &str)],
    call: u64,
    ret: u64,
) -> Vec<Event> {
    let mut argument = json!({ "room": "r1", "node": node });
    if let Some(after) = after {
        argument["after"] = json!(after);
    }
    vec![
        event(process, "invoke", operation, argument, call),
        event(process, "ok", operation, messages(seen), ret),
    ]
}

/// Sorts events by time (invocations first at equal times) so histories read as timelines.
fn timeline(parts: Vec<Vec<Event>>) -> Vec<Event> {
    let mut events: Vec<Event> = parts.into_iter().flatten().collect();
    events.sort_by_key(|event| (event.time_ns, event.kind != EventKind::Invoke));
    events
}

const A: (u64, &str) = (1, "a");
const B: (u64, &str) = (2, "b");
const C: (u64, &str) = (3, "c");
const D: (u64, &str) = (4, "d");
const F: (u64, &str) = (5, "f");

/// Room r1 on three nodes, times in milliseconds:
///
/// ```text
/// p0 post a -> 1 [10, 20]   p1 post b -> 2 [15, 30]
/// p2 history@1 [40, 50] = a b
/// p0 post c -> 3 [60, 70]
/// p3 feed@2 after 0 [75, 80] = a b      p9 feed@2 after 2 [85, 90] = c
/// p1 post d: info [92, 100] (applied as id 4)
/// p4 post e: fail [96, 105]
/// p5 history@3 [110, 120] = a b c d
/// p0 post f -> 5 [130, 140]
/// p6, p7, p8 final-read@1, 2, 3 [200, 210] = a b c d f
/// ```
fn base() -> Vec<Event> {
    let everything = [A, B, C, D, F];
    let mut parts = vec![
        post(0, "a", "ok", 1, 10, 20),
        post(1, "b", "ok", 2, 15, 30),
        read(FIRST_HISTORY_READ, "history", 1, None, &[A, B], 40, 50),
        post(0, "c", "ok", 3, 60, 70),
        read(FIRST_FEED, "feed", 2, Some(0), &[A, B], 75, 80),
        read(SECOND_FEED, "feed", 2, Some(2), &[C], 85, 90),
        post(1, "d", "info", 0, 92, 100),
        post(4, "e", "fail", 0, 96, 105),
        read(
            SECOND_HISTORY_READ,
            "history",
            3,
            None,
            &[A, B, C, D],
            110,
            120,
        ),
        post(0, "f", "ok", 5, 130, 140),
    ];
    for (node, process) in (1..).zip(FINAL_READERS) {
        parts.push(read(
            process,
            "final-read",
            node,
            None,
            &everything,
            200,
            210,
        ));
    }
    timeline(parts)
}

/// The `ok` completion of `process`'s (only) read.
fn reply(events: &mut [Event], process: u64) -> &mut Event {
    events
        .iter_mut()
        .find(|event| event.process == process && event.kind == EventKind::Ok)
        .expect("the process completed a read")
}

fn set_messages(events: &mut [Event], process: u64, seen: &[(u64, &str)]) {
    reply(events, process).value = messages(seen);
}

fn set_final_reads(events: &mut [Event], seen: &[(u64, &str)]) {
    for process in FINAL_READERS {
        set_messages(events, process, seen);
    }
}

fn reports(events: &[Event]) -> Vec<CheckReport> {
    let reports = check_chat(events).expect("a well-formed history");
    let names: Vec<&str> = reports.iter().map(|report| report.name).collect();
    assert_eq!(names, ALL, "one report per checker, in order");
    reports
}

/// The names of the checkers that fail on `events`.
fn failing(events: &[Event]) -> BTreeSet<&'static str> {
    reports(events)
        .into_iter()
        .filter(|report| !report.passed())
        .map(|report| report.name)
        .collect()
}

fn report(events: &[Event], name: &str) -> CheckReport {
    reports(events)
        .into_iter()
        .find(|report| report.name == name)
        .expect("every checker reports")
}

/// Asserts that exactly the checkers `expected` fail, printing every report otherwise.
fn assert_failing(events: &[Event], expected: &[&str]) {
    let expected: BTreeSet<&str> = expected.iter().copied().collect();
    let actual = failing(events);
    let all: Vec<String> = reports(events).iter().map(ToString::to_string).collect();
    assert_eq!(actual, expected, "reports:\n{}", all.join("\n"));
}

fn assert_problem_mentions(events: &[Event], name: &str, needles: &[&str]) {
    let report = report(events, name);
    let found = report
        .problems
        .iter()
        .any(|problem| needles.iter().all(|needle| problem.contains(needle)));
    assert!(
        found,
        "no problem of {name} mentions all of {needles:?}:\n{report}"
    );
}

#[test]
fn the_clean_history_passes_every_checker_and_examines_something() {
    let events = base();
    assert_failing(&events, &[]);
    for report in reports(&events) {
        assert!(report.checked > 0, "{} examined nothing", report.name);
        assert!(report.notes.is_empty(), "{report}");
    }
}

#[test]
fn an_acknowledged_post_missing_from_every_final_read_is_lost() {
    let mut events = base();
    set_final_reads(&mut events, &[A, B, C, D]);
    assert_failing(&events, &[ACKNOWLEDGED]);
    let report = report(&events, ACKNOWLEDGED);
    assert_eq!(report.problem_count, 3, "one per node:\n{report}");
    assert_problem_mentions(
        &events,
        ACKNOWLEDGED,
        &[
            "post f (id 5, acknowledged at 0.140 s by process 0) is missing from node 2's final \
             read of room r1 (4 messages",
        ],
    );
}

#[test]
fn an_acknowledged_post_missing_on_one_node_is_lost_and_the_nodes_disagree() {
    let mut events = base();
    set_messages(&mut events, FINAL_NODE_2, &[A, B, D, F]);
    assert_failing(&events, &[ACKNOWLEDGED, SAME_ORDER]);
    assert_problem_mentions(
        &events,
        ACKNOWLEDGED,
        &["post c (id 3", "node 2's final read"],
    );
    assert_problem_mentions(
        &events,
        SAME_ORDER,
        &[
            "node 2's final read",
            "first at index 2",
            "node 2 has id 4 (d)",
            "node 1 has id 3 (c)",
        ],
    );
}

#[test]
fn acknowledged_posts_of_a_room_nobody_answered_a_final_read_of_cannot_pass() {
    let mut events = base();
    for process in FINAL_READERS {
        let completion = reply(&mut events, process);
        completion.kind = EventKind::Fail;
        completion.value = json!({ "error": "unavailable" });
    }
    assert_failing(&events, &[ACKNOWLEDGED]);
    assert_problem_mentions(
        &events,
        ACKNOWLEDGED,
        &[
            "room r1: 4 acknowledged posts",
            "node 2 failed: unavailable",
        ],
    );
    // The other checkers say what they could not judge.
    let linearizable = report(&events, LINEARIZABLE);
    assert!(
        linearizable.notes[0].contains("longest history read"),
        "{linearizable}"
    );
    let feeds = report(&events, FEEDS);
    assert_eq!(feeds.checked, 0);
    assert!(
        feeds.notes[0].contains("2 feed polls were not checked"),
        "{feeds}"
    );
}

#[test]
fn one_node_not_answering_its_final_read_is_a_note_not_a_problem() {
    let mut events = base();
    let completion = reply(&mut events, FINAL_NODE_3);
    completion.kind = EventKind::Info;
    completion.value = Value::Null;
    assert_failing(&events, &[]);
    let report = report(&events, ACKNOWLEDGED);
    assert_eq!(
        report.notes,
        ["room r1: final reads not answered: node 3 timed out"]
    );
}

#[test]
fn a_retried_post_applied_twice_is_a_duplicate() {
    // d timed out; the client's retry went through again, so d is in the room twice.
    let mut events = base();
    set_final_reads(&mut events, &[A, B, C, D, F, (6, "d")]);
    assert_failing(&events, &[DUPLICATES]);
    assert_problem_mentions(
        &events,
        DUPLICATES,
        &[
            "node 1's final read",
            "body d twice: at index 3 with id 4 and at index 5 with id 6",
        ],
    );
}

#[test]
fn a_message_repeated_in_one_feed_poll_is_a_duplicate_and_a_gap_in_the_feed() {
    let mut events = base();
    set_messages(&mut events, FIRST_FEED, &[A, B, B]);
    assert_failing(&events, &[DUPLICATES, FEEDS]);
    assert_problem_mentions(&events, DUPLICATES, &["id 2 (b) twice, at indices 1 and 2"]);
    assert_problem_mentions(&events, FEEDS, &["goes back", "id 2 (b) at index 2"]);
}

#[test]
fn two_posts_acknowledged_with_one_id_is_a_duplicate() {
    let mut events = base();
    events.extend(post(10, "g", "ok", 5, 150, 160));
    events.sort_by_key(|event| (event.time_ns, event.kind != EventKind::Invoke));
    // g is not in the final reads, so it is also lost.
    assert_failing(&events, &[DUPLICATES, ACKNOWLEDGED]);
    assert_problem_mentions(
        &events,
        DUPLICATES,
        &["two posts were acknowledged with id 5", "post f", "post g"],
    );
}

#[test]
fn two_messages_swapped_on_one_node_break_the_common_order_and_the_ids() {
    let mut events = base();
    set_messages(&mut events, FINAL_NODE_2, &[A, C, B, D, F]);
    assert_failing(&events, &[SAME_ORDER, IDS]);
    assert_problem_mentions(
        &events,
        SAME_ORDER,
        &[
            "node 2's final read",
            "first at index 1: node 2 has id 3 (c), node 1 has id 2 (b)",
        ],
    );
    assert_problem_mentions(
        &events,
        IDS,
        &[
            "node 2's final read",
            "id 2 (b) at index 2 after id 3 (c) at index 1",
        ],
    );
}

#[test]
fn nodes_disagreeing_about_a_timed_out_post_differ_only_in_order() {
    let mut events = base();
    set_messages(&mut events, FINAL_NODE_3, &[A, B, C, F]);
    assert_failing(&events, &[SAME_ORDER]);
    assert_problem_mentions(&events, SAME_ORDER, &["node 3", "first at index 3"]);
}

#[test]
fn a_history_read_missing_an_earlier_acknowledged_post_is_stale() {
    // c was acknowledged at 70 ms; the read was invoked at 110 ms.
    let mut events = base();
    set_messages(&mut events, SECOND_HISTORY_READ, &[A, B]);
    assert_failing(&events, &[LINEARIZABLE]);
    assert_problem_mentions(
        &events,
        LINEARIZABLE,
        &[
            "node 3's history read of room r1",
            "misses post c (id 3, acknowledged at 0.070 s by process 0)",
            "invoked at 0.110 s",
        ],
    );
}

#[test]
fn a_history_read_holding_a_post_invoked_after_it_completed_reads_the_future() {
    // c was invoked at 60 ms; the read completed at 50 ms.
    let mut events = base();
    set_messages(&mut events, FIRST_HISTORY_READ, &[A, B, C]);
    assert_failing(&events, &[LINEARIZABLE]);
    assert_problem_mentions(
        &events,
        LINEARIZABLE,
        &[
            "node 1's history read",
            "id 3 (c)",
            "invoked only at 0.060 s",
        ],
    );
}

#[test]
fn a_history_read_older_than_an_earlier_read_is_stale_even_for_a_timed_out_post() {
    // The read at [110, 120] saw d; a read invoked at 125 ms on node 1 does not.
    let mut events = base();
    events.extend(read(11, "history", 1, None, &[A, B, C], 125, 128));
    events.sort_by_key(|event| (event.time_ns, event.kind != EventKind::Invoke));
    assert_failing(&events, &[LINEARIZABLE]);
    assert_problem_mentions(
        &events,
        LINEARIZABLE,
        &["is stale", "node 3's history read"],
    );
}

#[test]
fn a_history_read_that_is_not_a_prefix_of_the_final_order_is_caught() {
    let mut events = base();
    set_messages(&mut events, SECOND_HISTORY_READ, &[A, B, D, C]);
    assert_failing(&events, &[LINEARIZABLE]);
    assert_problem_mentions(
        &events,
        LINEARIZABLE,
        &[
            "is not a prefix of the final order",
            "at index 2 it has id 4 (d)",
        ],
    );
}

#[test]
fn a_feed_poll_that_skips_an_event_has_a_gap() {
    let mut events = base();
    set_messages(&mut events, SECOND_FEED, &[D]);
    assert_failing(&events, &[FEEDS]);
    assert_problem_mentions(
        &events,
        FEEDS,
        &[
            "node 2's feed poll after id 2",
            "skips 1 of the order's messages",
            "id 3 (c) next",
        ],
    );
}

#[test]
fn a_feed_poll_may_return_fewer_events_than_remain() {
    let mut events = base();
    set_messages(&mut events, FIRST_FEED, &[A]);
    set_messages(&mut events, SECOND_FEED, &[]);
    assert_failing(&events, &[]);
}

#[test]
fn a_feed_poll_after_an_id_the_room_never_had_is_caught() {
    let mut events = base();
    let invocation = events
        .iter_mut()
        .find(|event| event.process == SECOND_FEED && event.kind == EventKind::Invoke)
        .expect("the second feed poll");
    invocation.value["after"] = json!(7);
    assert_failing(&events, &[FEEDS]);
    assert_problem_mentions(&events, FEEDS, &["starts after id 7, which is not in"]);
}

#[test]
fn a_phantom_message_nobody_posted_is_invented() {
    let mut events = base();
    set_final_reads(&mut events, &[A, B, C, D, F, (6, "zzz")]);
    assert_failing(&events, &[INVENTED]);
    assert_problem_mentions(&events, INVENTED, &["id 6 (zzz)", "no client posted"]);
}

#[test]
fn a_failed_post_that_appears_is_invented() {
    let mut events = base();
    set_final_reads(&mut events, &[A, B, C, D, F, (6, "e")]);
    assert_failing(&events, &[INVENTED]);
    assert_problem_mentions(
        &events,
        INVENTED,
        &["id 6 (e), whose post failed", "process 4: not leader"],
    );
}

#[test]
fn a_message_posted_to_another_room_is_invented() {
    let mut events = base();
    events.extend([
        event(
            12,
            "invoke",
            "post",
            json!({"room": "r2", "body": "x"}),
            150,
        ),
        event(12, "info", "post", Value::Null, 160),
    ]);
    events.sort_by_key(|event| (event.time_ns, event.kind != EventKind::Invoke));
    set_final_reads(&mut events, &[A, B, C, D, F, (6, "x")]);
    assert_failing(&events, &[INVENTED]);
    assert_problem_mentions(&events, INVENTED, &["id 6 (x)", "posted to room r2"]);
}

#[test]
fn a_message_under_another_id_than_acknowledged_is_invented_and_lost() {
    let mut events = base();
    set_final_reads(&mut events, &[A, B, C, D, (6, "f")]);
    assert_failing(&events, &[INVENTED, ACKNOWLEDGED]);
    assert_problem_mentions(&events, INVENTED, &["id 6 (f)", "post f (id 5"]);
    assert_problem_mentions(
        &events,
        ACKNOWLEDGED,
        &["post f (id 5", "appears with id 6"],
    );
}

#[test]
fn ids_that_decrease_along_the_room_are_caught() {
    // d's outcome was unknown, so any id is plausible for it, but not one out of order.
    let mut events = base();
    set_messages(&mut events, SECOND_HISTORY_READ, &[A, B, C, (9, "d")]);
    set_final_reads(&mut events, &[A, B, C, (9, "d"), F]);
    assert_failing(&events, &[IDS]);
    assert_eq!(report(&events, IDS).problem_count, 3, "one per node");
    assert_problem_mentions(
        &events,
        IDS,
        &["id 5 (f) at index 4 after id 9 (d) at index 3"],
    );
}

#[test]
fn an_id_repeated_next_to_itself_does_not_increase() {
    // d was given c's id again: a duplicate id, and not a strict increase.
    let mut events = base();
    set_messages(&mut events, SECOND_HISTORY_READ, &[A, B, C, (3, "d")]);
    set_final_reads(&mut events, &[A, B, C, (3, "d"), F]);
    assert_failing(&events, &[IDS, DUPLICATES]);
    assert_problem_mentions(
        &events,
        IDS,
        &["id 3 (d) at index 3 after id 3 (c) at index 2"],
    );
    assert_problem_mentions(&events, DUPLICATES, &["holds id 3 twice"]);
}

#[test]
fn a_timed_out_post_may_be_applied_or_not() {
    // Applied: the base history. Not applied: d is nowhere.
    assert_failing(&base(), &[]);
    let mut events = base();
    set_messages(&mut events, SECOND_HISTORY_READ, &[A, B, C]);
    set_final_reads(&mut events, &[A, B, C, F]);
    assert_failing(&events, &[]);
}

#[test]
fn other_operations_are_ignored() {
    let mut events = base();
    events.extend([
        event(
            20,
            "invoke",
            "claim",
            json!({"name": "ada", "owner": "u1"}),
            12,
        ),
        event(20, "ok", "claim", json!({"result": "claimed"}), 18),
        event(21, "invoke", "write", json!("anything at all"), 44),
        event(21, "info", "write", json!([1, 2, 3]), 46),
        event(22, "invoke", "read", Value::Null, 150),
    ]);
    events.sort_by_key(|event| (event.time_ns, event.kind != EventKind::Invoke));
    let with_others = reports(&events);
    for (mixed, plain) in with_others.iter().zip(reports(&base())) {
        assert!(mixed.passed(), "{mixed}");
        assert_eq!(mixed.checked, plain.checked, "{}", mixed.name);
    }
}

#[test]
fn malformed_chat_events_are_errors_naming_the_event() {
    type Mutation = fn(&mut Vec<Event>) -> usize;
    let cases: [(&str, Mutation); 8] = [
        ("a post without a body", |events| {
            events[0].value = json!({"room": "r1"});
            0
        }),
        ("an id that is not a number", |events| {
            let index = position(events, 0, EventKind::Ok);
            events[index].value = json!({"id": "one"});
            index
        }),
        ("messages that are not a list", |events| {
            let index = position(events, FIRST_HISTORY_READ, EventKind::Ok);
            events[index].value = json!({"messages": 3});
            index
        }),
        ("a message without a body", |events| {
            let index = position(events, FINAL_NODE_2, EventKind::Ok);
            events[index].value = json!({"messages": [[1]]});
            index
        }),
        ("a feed without after", |events| {
            let index = position(events, FIRST_FEED, EventKind::Invoke);
            events[index].value = json!({"room": "r1", "node": 2});
            index
        }),
        ("a failure without an error", |events| {
            let index = position(events, 4, EventKind::Fail);
            events[index].value = Value::Null;
            index
        }),
        ("a body posted twice", |events| {
            let index = position(events, 4, EventKind::Invoke);
            events[index].value = json!({"room": "r1", "body": "a"});
            index
        }),
        ("a completion never invoked", |events| {
            events.insert(3, event(30, "ok", "post", json!({"id": 9}), 25));
            3
        }),
    ];
    for (what, mutate) in cases {
        let mut events = base();
        let index = mutate(&mut events);
        let error = check_chat(&events).expect_err(what).to_string();
        assert!(
            error.starts_with(&format!("event {index}:")),
            "{what}: {error}"
        );
    }
}

/// The index of `process`'s first event of `kind`.
fn position(events: &[Event], process: u64, kind: EventKind) -> usize {
    events
        .iter()
        .position(|event| event.process == process && event.kind == kind)
        .expect("the base history has it")
}

fn seeds() -> Vec<u64> {
    match std::env::var("DSCHAT_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("DSCHAT_SIM_SEED is a number")],
        Err(_) => (0..SEEDS).collect(),
    }
}

fn shape(seed: u64) -> chat::Shape {
    chat::Shape {
        clients: 2 + seed % 5,
        nodes: 1 + seed % 5,
        rooms: 1 + seed % 3,
        operations: 20 + (seed % 80) as usize,
        info_per_mille: 60,
        fail_per_mille: 60,
        feed_limit: 1 + (seed % 4) as usize,
    }
}

fn replay(seed: u64, test: &str) -> String {
    format!("DSCHAT_SIM_SEED={seed} cargo test -p dschat-sim --test chat_checks {test}")
}

#[test]
fn histories_of_a_correct_cluster_pass_every_checker() {
    for seed in seeds() {
        let events = chat::chat_history(seed, shape(seed));
        let reports = check_chat(&events).expect("generated histories are well formed");
        for report in reports {
            assert!(
                report.passed() && report.notes.is_empty(),
                "seed {seed}: {report}\nreplay: {}",
                replay(seed, "histories_of_a_correct_cluster")
            );
        }
    }
}

/// The events of `events` that are `ok` final reads.
fn final_read_indices(events: &[Event]) -> Vec<usize> {
    (0..events.len())
        .filter(|&i| events[i].operation == "final-read" && events[i].kind == EventKind::Ok)
        .collect()
}

#[test]
fn an_acknowledged_post_dropped_from_every_final_read_is_always_caught() {
    for seed in seeds() {
        let mut events = chat::chat_history(seed, shape(seed));
        let acknowledged: Vec<u64> = events
            .iter()
            .filter(|event| event.operation == "post" && event.kind == EventKind::Ok)
            .map(|event| event.value["id"].as_u64().expect("generated ids"))
            .collect();
        if acknowledged.is_empty() {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lost = acknowledged[rng.gen_range(0..acknowledged.len())];
        for index in final_read_indices(&events) {
            let list = events[index].value["messages"]
                .as_array_mut()
                .expect("generated messages");
            list.retain(|message| message[0].as_u64() != Some(lost));
        }
        let report = report(&events, ACKNOWLEDGED);
        assert!(
            !report.passed(),
            "seed {seed}: losing id {lost} went unnoticed\nreplay: {}",
            replay(seed, "an_acknowledged_post_dropped")
        );
    }
}

#[test]
fn two_messages_swapped_in_one_final_read_are_always_caught() {
    for seed in seeds() {
        let mut events = chat::chat_history(seed, shape(seed));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let finals = final_read_indices(&events);
        let index = finals[rng.gen_range(0..finals.len())];
        let list = events[index].value["messages"]
            .as_array_mut()
            .expect("generated messages");
        if list.len() < 2 {
            continue;
        }
        let first = rng.gen_range(0..list.len() - 1);
        list.swap(first, first + 1);
        let failed = failing(&events);
        assert!(
            failed.contains(IDS) && (failed.contains(SAME_ORDER) || shape(seed).nodes == 1),
            "seed {seed}: a swap was caught only by {failed:?}\nreplay: {}",
            replay(seed, "two_messages_swapped")
        );
    }
}
