//! Hand-written histories from the literature, the budget, the JSON-lines format and
//! malformed histories.

use dschat_sim::history::{operations, read_jsonl, write_jsonl, Event, EventKind, HistoryError};
use dschat_sim::linearizability::{check_events, Verdict};
use dschat_sim::model::{NameRegistry, Register};
use proptest::prelude::*;
use serde_json::{json, Value};

const BUDGET: u64 = 1_000_000;

/// One event; `kind` is `invoke`, `ok`, `fail` or `info`.
fn event(process: u64, kind: &str, operation: &str, value: Value, time_ns: u64) -> Event {
    let kind = serde_json::from_value(json!(kind)).expect("a known event kind");
    Event {
        process,
        kind,
        operation: operation.to_string(),
        value,
        time_ns,
    }
}

fn write(process: u64, key: u64, value: i64, call: u64, ret: u64) -> [Event; 2] {
    [
        event(
            process,
            "invoke",
            "write",
            json!({"key": key, "value": value}),
            call,
        ),
        event(process, "ok", "write", Value::Null, ret),
    ]
}

fn read(process: u64, key: u64, seen: Option<i64>, call: u64, ret: u64) -> [Event; 2] {
    [
        event(process, "invoke", "read", json!({"key": key}), call),
        event(
            process,
            "ok",
            "read",
            json!({"key": key, "value": seen}),
            ret,
        ),
    ]
}

/// Sorts events by time (invocations first at equal times) so histories read as timelines.
fn history(parts: Vec<[Event; 2]>) -> Vec<Event> {
    let mut events: Vec<Event> = parts.into_iter().flatten().collect();
    events.sort_by_key(|event| (event.time_ns, event.kind != EventKind::Invoke));
    events
}

fn register_verdict(events: &[Event]) -> Verdict {
    check_events(&Register, events, BUDGET).expect("a well-formed history")
}

#[test]
fn a_stale_read_after_a_completed_write_is_not_linearizable() {
    // P0 |--w(1)--|
    // P1            |--r()=absent--|
    let events = history(vec![write(0, 7, 1, 0, 10), read(1, 7, None, 20, 30)]);
    let Verdict::NotLinearizable(violation) = register_verdict(&events) else {
        panic!("a stale read must be caught");
    };
    assert_eq!(violation.longest_prefix, vec![0]);
    assert_eq!(violation.blocking_operation, Some(1));
}

#[test]
fn overlapping_operations_may_take_effect_in_any_order_within_their_intervals() {
    // Herlihy and Wing's point: a read overlapping a write may see either value, and three
    // writes overlapping three sequential reads can be linearized in reverse call order.
    let events = history(vec![
        write(0, 1, 1, 0, 100),
        write(1, 1, 2, 0, 100),
        write(2, 1, 3, 0, 100),
        read(3, 1, Some(3), 10, 20),
        read(3, 1, Some(2), 30, 40),
        read(3, 1, Some(1), 50, 60),
        read(4, 1, None, 1, 5),
    ]);
    assert_eq!(register_verdict(&events), Verdict::Linearizable);
}

#[test]
fn a_sequentially_consistent_history_need_not_be_linearizable() {
    // P0 |------------w(1)------------|
    // P1    |-r()=1-|
    // P2               |-r()=absent-|       (after P1 saw 1: a new-old inversion)
    let events = history(vec![
        write(0, 1, 1, 0, 100),
        read(1, 1, Some(1), 10, 20),
        read(2, 1, None, 30, 40),
    ]);
    assert!(matches!(
        register_verdict(&events),
        Verdict::NotLinearizable(_)
    ));
}

#[test]
fn a_timed_out_write_may_or_may_not_have_taken_effect() {
    let timed_out = [
        event(0, "invoke", "write", json!({"key": 1, "value": 1}), 0),
        event(0, "info", "write", Value::Null, 50),
    ];
    for seen in [Some(1), None] {
        let events = history(vec![timed_out.clone(), read(1, 1, seen, 60, 70)]);
        assert_eq!(
            register_verdict(&events),
            Verdict::Linearizable,
            "read saw {seen:?}"
        );
    }
    // It may even take effect after the client gave up...
    let late = history(vec![
        timed_out.clone(),
        read(1, 1, None, 60, 70),
        read(1, 1, Some(1), 80, 90),
    ]);
    assert_eq!(register_verdict(&late), Verdict::Linearizable);
    // ...but once seen it cannot be unseen, and it cannot act before it was invoked.
    let unseen = history(vec![
        timed_out.clone(),
        read(1, 1, Some(1), 60, 70),
        read(1, 1, None, 80, 90),
    ]);
    assert!(matches!(
        register_verdict(&unseen),
        Verdict::NotLinearizable(_)
    ));
    let later_write = timed_out.clone().map(|event| Event {
        time_ns: event.time_ns + 100,
        ..event
    });
    let early = history(vec![read(1, 1, Some(1), 60, 70), later_write]);
    assert!(matches!(
        register_verdict(&early),
        Verdict::NotLinearizable(_)
    ));
}

#[test]
fn an_invocation_without_completion_is_indefinite() {
    let events = history(vec![read(1, 1, Some(4), 60, 70)]);
    let mut events = [
        vec![event(
            0,
            "invoke",
            "write",
            json!({"key": 1, "value": 4}),
            0,
        )],
        events,
    ]
    .concat();
    assert_eq!(register_verdict(&events), Verdict::Linearizable);
    events.remove(0);
    assert!(matches!(
        register_verdict(&events),
        Verdict::NotLinearizable(_)
    ));
}

fn cas(process: u64, expected: i64, new: i64, outcome: &str, call: u64, ret: u64) -> [Event; 2] {
    [
        event(
            process,
            "invoke",
            "cas",
            json!({"key": 1, "expected": expected, "new": new}),
            call,
        ),
        event(process, outcome, "cas", Value::Null, ret),
    ]
}

#[test]
fn two_concurrent_compare_and_sets_from_the_same_value_cannot_both_succeed() {
    let both = history(vec![
        write(0, 1, 1, 0, 10),
        cas(1, 1, 2, "ok", 20, 40),
        cas(2, 1, 3, "ok", 25, 45),
    ]);
    assert!(matches!(
        register_verdict(&both),
        Verdict::NotLinearizable(_)
    ));
    // The loser's comparison failed: it did not happen, and a later read sees the winner.
    let one = history(vec![
        write(0, 1, 1, 0, 10),
        cas(1, 1, 2, "ok", 20, 40),
        cas(2, 1, 3, "fail", 25, 45),
        read(0, 1, Some(2), 50, 60),
    ]);
    assert_eq!(register_verdict(&one), Verdict::Linearizable);
}

fn claim(process: u64, name: &str, result: &str, call: u64, ret: u64) -> [Event; 2] {
    let owner = format!("user{process}");
    [
        event(
            process,
            "invoke",
            "claim",
            json!({"name": name, "owner": owner}),
            call,
        ),
        event(process, "ok", "claim", json!({"result": result}), ret),
    ]
}

#[test]
fn a_name_is_claimed_by_exactly_one_of_two_concurrent_claimants() {
    let check =
        |events: &[Event]| check_events(&NameRegistry, events, BUDGET).expect("well formed");
    let both = history(vec![
        claim(0, "ada", "claimed", 0, 20),
        claim(1, "ada", "claimed", 5, 25),
    ]);
    assert!(matches!(check(&both), Verdict::NotLinearizable(_)));
    let one = history(vec![
        claim(0, "ada", "taken", 0, 20),
        claim(1, "ada", "claimed", 5, 25),
    ]);
    assert_eq!(check(&one), Verdict::Linearizable);
    // Different names are independent partitions.
    let two = history(vec![
        claim(0, "ada", "claimed", 0, 20),
        claim(1, "bob", "claimed", 5, 25),
    ]);
    assert_eq!(check(&two), Verdict::Linearizable);
    let nobody = history(vec![claim(0, "ada", "taken", 0, 20)]);
    assert!(matches!(check(&nobody), Verdict::NotLinearizable(_)));
}

/// `writers` writes all overlapping one read of a value nobody wrote: the search must try every
/// order of every subset of writes before it can say no.
fn pathological(writers: u64) -> Vec<Event> {
    let mut parts: Vec<[Event; 2]> = (0..writers)
        .map(|p| write(p, 1, p as i64, 0, 1000))
        .collect();
    parts.push(read(writers, 1, Some(-1), 10, 20));
    history(parts)
}

#[test]
fn an_exhausted_budget_is_unknown_never_linearizable() {
    let impossible = pathological(24);
    assert_eq!(
        check_events(&Register, &impossible, 1_000).unwrap(),
        Verdict::Unknown { partition: 0 }
    );
    let small = pathological(6);
    assert!(matches!(
        check_events(&Register, &small, BUDGET).unwrap(),
        Verdict::NotLinearizable(_)
    ));
    // A linearizable history, too, is "unknown" if the budget cannot finish the search.
    let possible: Vec<Event> = history((0..24).map(|p| write(p, 1, p as i64, 0, 1000)).collect());
    assert_eq!(
        check_events(&Register, &possible, 10).unwrap(),
        Verdict::Unknown { partition: 0 }
    );
    assert_eq!(
        check_events(&Register, &possible, BUDGET).unwrap(),
        Verdict::Linearizable
    );
}

#[test]
fn the_module_documentation_example_parses_and_is_linearizable() {
    let text = r#"{"process":0,"type":"invoke","operation":"write","value":{"key":1,"value":3},"time_ns":1000}
{"process":1,"type":"invoke","operation":"read","value":{"key":1},"time_ns":1500}

{"process":0,"type":"ok","operation":"write","value":null,"time_ns":2000}
{"process":1,"type":"ok","operation":"read","value":{"key":1,"value":3},"time_ns":2500}
"#;
    let events = read_jsonl(text.as_bytes()).expect("the documented format");
    assert_eq!(events.len(), 4);
    assert_eq!(register_verdict(&events), Verdict::Linearizable);
    let mut written = Vec::new();
    write_jsonl(&mut written, &events).unwrap();
    assert_eq!(
        String::from_utf8(written).unwrap(),
        text.replace("\n\n", "\n")
    );
}

fn arbitrary_event() -> impl Strategy<Value = Event> {
    let kind = prop_oneof![
        Just(EventKind::Invoke),
        Just(EventKind::Ok),
        Just(EventKind::Fail),
        Just(EventKind::Info)
    ];
    let value = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(|v| json!({"key": 1, "value": v}))
    ];
    (any::<u64>(), kind, "[a-z\"\\\\ ]{0,8}", value, any::<u64>()).prop_map(
        |(process, kind, operation, value, time_ns)| Event {
            process,
            kind,
            operation,
            value,
            time_ns,
        },
    )
}

proptest! {
    #[test]
    fn json_lines_round_trip(events in proptest::collection::vec(arbitrary_event(), 0..20)) {
        let mut written = Vec::new();
        write_jsonl(&mut written, &events).unwrap();
        prop_assert_eq!(read_jsonl(written.as_slice()).unwrap(), events);
    }
}

#[test]
fn malformed_histories_are_explained() {
    let errors = |events: &[Event]| operations(&Register, events).unwrap_err();
    let invoke = event(0, "invoke", "read", json!({"key": 1}), 10);
    let ok = event(0, "ok", "read", json!({"key": 1, "value": null}), 20);
    assert!(matches!(
        errors(std::slice::from_ref(&ok)),
        HistoryError::CompletionWithoutInvoke {
            index: 0,
            process: 0
        }
    ));
    assert!(matches!(
        errors(&[invoke.clone(), invoke.clone()]),
        HistoryError::InvokeWhileInFlight {
            index: 1,
            process: 0
        }
    ));
    let wrong_name = Event {
        operation: "write".into(),
        ..ok.clone()
    };
    assert!(matches!(
        errors(&[invoke.clone(), wrong_name]),
        HistoryError::OperationMismatch { index: 1, .. }
    ));
    let backwards = Event {
        time_ns: 5,
        ..ok.clone()
    };
    assert!(matches!(
        errors(&[invoke.clone(), backwards]),
        HistoryError::TimeWentBackwards { index: 1, .. }
    ));
    let unknown = Event {
        operation: "delete".into(),
        ..invoke.clone()
    };
    assert!(matches!(
        errors(&[unknown]),
        HistoryError::Decode { index: 0, .. }
    ));
    let bad_value = Event {
        value: json!({"key": "one"}),
        ..invoke.clone()
    };
    assert!(matches!(
        errors(&[bad_value]),
        HistoryError::Decode { index: 0, .. }
    ));
    let text = "{\"process\":0,\"type\":\"invoke\",\"operation\":\"read\",\"value\":null,\"time_ns\":1}\nnot json\n";
    assert!(matches!(
        read_jsonl(text.as_bytes()).unwrap_err(),
        HistoryError::Parse { line: 2, .. }
    ));
    let bad_kind =
        "{\"process\":0,\"type\":\"maybe\",\"operation\":\"read\",\"value\":null,\"time_ns\":1}";
    assert!(matches!(
        read_jsonl(bad_kind.as_bytes()).unwrap_err(),
        HistoryError::Parse { line: 1, .. }
    ));
    // A failed operation definitely did not happen: it is dropped.
    let fail = Event {
        kind: EventKind::Fail,
        ..ok
    };
    assert!(operations(&Register, &[invoke, fail]).unwrap().is_empty());
}

#[test]
fn a_violation_names_its_partition_and_where_the_search_got_stuck() {
    // Key 1 is fine; on key 2 a read misses a completed write. Operations are numbered in
    // invocation order: 0 w(1,1), 1 w(2,5), 2 r(1)=1, 3 r(2)=absent.
    let events = history(vec![
        write(0, 1, 1, 0, 10),
        write(1, 2, 5, 1, 11),
        read(0, 1, Some(1), 20, 30),
        read(1, 2, None, 21, 31),
    ]);
    let Verdict::NotLinearizable(violation) = register_verdict(&events) else {
        panic!("the stale read on key 2 must be caught");
    };
    assert_eq!(violation.partition, 1);
    assert_eq!(violation.operations, vec![1, 3]);
    assert_eq!(violation.longest_prefix, vec![1]);
    assert_eq!(violation.blocking_operation, Some(3));
}
