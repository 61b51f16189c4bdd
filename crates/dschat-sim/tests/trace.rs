//! The trace: its end, the window around the first violation, and its JSON-lines format.

#[path = "support/sample_trace.rs"]
mod sample_trace;

use dschat_sim::trace::{Trace, TraceError, TraceEvent};
use sample_trace::sample_trace;

fn violation(at_us: u64) -> TraceEvent {
    TraceEvent::Violation {
        at_us,
        description: format!("at {at_us}"),
    }
}

#[test]
fn end_is_the_latest_time_mentioned() {
    let mut trace = Trace {
        nodes: vec![1, 2],
        events: vec![],
    };
    assert_eq!(trace.end_us(), 0);
    trace.events.push(TraceEvent::Message {
        from: 1,
        to: 2,
        kind: "Heartbeat".to_string(),
        sent_us: 100,
        received_us: Some(900),
    });
    trace.events.push(TraceEvent::Crash {
        node: 2,
        at_us: 500,
    });
    assert_eq!(trace.end_us(), 900, "a receive time counts");
    trace.events.push(TraceEvent::Leader {
        node: 1,
        term: 2,
        from_us: 1000,
        to_us: None,
    });
    assert_eq!(
        trace.end_us(),
        1000,
        "an open interval counts with its start"
    );
    trace.events.push(TraceEvent::Pause {
        node: 1,
        from_us: 1100,
        to_us: 1500,
    });
    assert_eq!(trace.end_us(), 1500);
}

#[test]
fn failing_window_ends_after_the_first_violation() {
    let mut trace = Trace {
        nodes: vec![1],
        events: vec![],
    };
    assert_eq!(trace.failing_window(1000), None);
    trace.events.push(violation(9_000));
    trace.events.push(violation(5_000));
    // The earliest violation, not the first recorded; a tenth of the span after it.
    assert_eq!(trace.failing_window(2_000), Some((3_000, 5_200)));
    // Clamped at 0 when the span reaches back past the start.
    assert_eq!(trace.failing_window(8_000), Some((0, 5_800)));
    // Never empty: at least one microsecond after the violation.
    assert_eq!(trace.failing_window(0), Some((5_000, 5_001)));
    assert_eq!(trace.failing_window(5), Some((4_995, 5_001)));
}

#[test]
fn jsonl_round_trip() {
    let trace = sample_trace();
    let mut bytes = Vec::new();
    trace.write_jsonl(&mut bytes).expect("write to memory");
    let text = String::from_utf8(bytes.clone()).expect("UTF-8");
    assert!(text.starts_with("{\"nodes\":[1,2,3,4,5]}\n"));
    assert_eq!(text.lines().count(), 1 + trace.events.len());
    let read = Trace::read_jsonl(bytes.as_slice()).expect("read back");
    assert_eq!(read, trace);
}

#[test]
fn jsonl_lines_look_as_documented() {
    let text = r#"{"nodes":[1,2,3]}

{"type":"leader","node":1,"term":2,"from_us":1000,"to_us":null}
{"type":"message","from":1,"to":2,"kind":"Heartbeat","sent_us":1500,"received_us":1800}
{"type":"partition","from_us":2000,"to_us":5000,"cut":[[1,3],[3,1]],"description":"n3 alone"}
{"type":"clock_jump","node":2,"at_us":2100,"delta_ms":-40}
{"type":"violation","at_us":4000,"description":"stale read of key 1"}
"#;
    let trace = Trace::read_jsonl(text.as_bytes()).expect("the documented example reads");
    assert_eq!(trace.nodes, vec![1, 2, 3]);
    assert_eq!(trace.events.len(), 5);
    assert_eq!(
        trace.events[2],
        TraceEvent::Partition {
            from_us: 2000,
            to_us: Some(5000),
            cut: vec![(1, 3), (3, 1)],
            description: "n3 alone".to_string(),
        }
    );
    let mut written = Vec::new();
    trace.write_jsonl(&mut written).expect("write");
    let without_blank_line: String = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        String::from_utf8(written).expect("UTF-8"),
        without_blank_line
    );
}

#[test]
fn malformed_traces_are_errors_with_line_numbers() {
    assert!(matches!(
        Trace::read_jsonl("".as_bytes()),
        Err(TraceError::MissingHeader)
    ));
    let event_first = r#"{"type":"crash","node":1,"at_us":5}"#;
    assert!(matches!(
        Trace::read_jsonl(event_first.as_bytes()),
        Err(TraceError::Parse { line: 1, .. })
    ));
    let bad_event = "{\"nodes\":[1]}\n{\"type\":\"crash\",\"node\":1}\n";
    assert!(matches!(
        Trace::read_jsonl(bad_event.as_bytes()),
        Err(TraceError::Parse { line: 2, .. })
    ));
}
