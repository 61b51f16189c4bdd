//! The space-time diagram: well-formed, deterministic SVG; only what is in the window is drawn;
//! no message is dropped without a note; text from the trace is escaped; every mark has a
//! tooltip that says what it shows.
//!
//! `sample_diagram_is_written` also writes the sample trace's diagram (whole run and failing
//! window) to the test's temporary directory, to be looked at.

#[path = "support/sample_trace.rs"]
mod sample_trace;
#[path = "support/xml.rs"]
mod xml;

use dschat_sim::diagram::{render_svg, DiagramOptions};
use dschat_sim::trace::{Trace, TraceEvent};
use sample_trace::sample_trace;
use xml::check_well_formed;

fn message(from: u64, to: u64, kind: &str, sent_us: u64, received_us: Option<u64>) -> TraceEvent {
    TraceEvent::Message {
        from,
        to,
        kind: kind.to_string(),
        sent_us,
        received_us,
    }
}

/// How many elements carry exactly this `class` attribute.
fn count_class(svg: &str, class: &str) -> usize {
    svg.matches(&format!("class=\"{class}\"")).count()
}

fn render(trace: &Trace, window_us: Option<(u64, u64)>) -> String {
    let options = DiagramOptions {
        window_us,
        ..DiagramOptions::default()
    };
    let svg = render_svg(trace, &options);
    if let Err(problem) = check_well_formed(&svg) {
        panic!("not well-formed: {problem}\n{svg}");
    }
    svg
}

#[test]
fn sample_diagram_is_well_formed_and_deterministic() {
    let trace = sample_trace();
    let svg = render(&trace, None);
    assert_eq!(svg, render(&trace, None), "same trace, different bytes");
    assert!(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "));
    for class in [
        "message",
        "message lost",
        "crash",
        "restart",
        "node-line down",
        "pause",
        "partition",
        "partition-marker",
        "leader",
        "clock-jump",
        "violation",
        "node-label",
    ] {
        assert!(count_class(&svg, class) > 0, "no element of class {class}");
    }
    for node in 1..=5 {
        assert!(svg.contains(&format!(">n{node}<title>node {node}</title></text>")));
    }
    // One partition marker for each of the five nodes with a cut link.
    assert_eq!(count_class(&svg, "partition-marker"), 5);
    assert_eq!(count_class(&svg, "violation"), 1);
    assert!(svg.contains(">term 2<") && svg.contains(">term 3<"));
    assert!(svg.contains(">+250 ms<") && svg.contains(">-120 ms<"));
    for kind in [
        "Heartbeat",
        "LogRequest",
        "PreVoteResponse",
        "SnapshotChunk",
    ] {
        assert!(
            svg.contains(&format!(">{kind}</text></g>")),
            "{kind} not in the legend"
        );
    }
}

#[test]
fn sample_diagram_is_written() {
    let trace = sample_trace();
    let directory = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let whole = render(&trace, None);
    std::fs::write(directory.join("diagram-sample.svg"), &whole).expect("write the sample");
    let window = trace.failing_window(400_000);
    assert_eq!(window, Some((1_050_000, 1_490_000)));
    let failing = render(&trace, window);
    std::fs::write(directory.join("diagram-failing-window.svg"), &failing).expect("write");
    assert!(count_class(&failing, "message") < count_class(&whole, "message"));
    // Close up on the snapshot sent after the restart: ticks at a fraction of a ms.
    let close_up = render(&trace, Some((2_419_500, 2_424_500)));
    std::fs::write(directory.join("diagram-close-up.svg"), &close_up).expect("write");
    assert!(close_up.contains(">2420.0</text>") && close_up.contains(">2420.5</text>"));
}

#[test]
fn message_tooltips_say_what_happened() {
    let trace = Trace {
        nodes: vec![1, 2, 3],
        events: vec![
            message(1, 3, "LogRequest", 1_203_400, Some(1_205_100)),
            message(3, 1, "LogResponse", 1_205_150, None),
        ],
    };
    let svg = render(&trace, None);
    assert!(svg.contains("<title>LogRequest n1→n3 sent 1203.4 ms, received 1205.1 ms</title>"));
    assert!(svg.contains("<title>LogResponse n3→n1 sent 1205.15 ms, lost</title>"));
    assert_eq!(count_class(&svg, "message"), 1);
    assert_eq!(count_class(&svg, "message lost"), 1);
    assert!(
        svg.contains(">lost message</text>"),
        "the legend explains the x"
    );
}

#[test]
fn only_events_in_the_window_are_drawn() {
    let trace = Trace {
        nodes: vec![1, 2],
        events: vec![
            message(1, 2, "Heartbeat", 100_000, Some(101_000)),
            message(1, 2, "Heartbeat", 500_000, Some(501_000)),
            // Sent before the window and received inside it: it crosses the window.
            message(2, 1, "HeartbeatResponse", 390_000, Some(410_000)),
            message(1, 2, "Heartbeat", 900_000, None),
            TraceEvent::Crash {
                node: 2,
                at_us: 100_000,
            },
            TraceEvent::Restart {
                node: 2,
                at_us: 200_000,
            },
            TraceEvent::Crash {
                node: 2,
                at_us: 900_000,
            },
            TraceEvent::Pause {
                node: 1,
                from_us: 450_000,
                to_us: 700_000,
            },
            TraceEvent::Pause {
                node: 1,
                from_us: 10_000,
                to_us: 20_000,
            },
            TraceEvent::Violation {
                at_us: 950_000,
                description: "late".to_string(),
            },
            TraceEvent::Leader {
                node: 1,
                term: 4,
                from_us: 50_000,
                to_us: None,
            },
        ],
    };
    let whole = render(&trace, None);
    assert_eq!(count_class(&whole, "message"), 3);
    assert_eq!(count_class(&whole, "message lost"), 1);
    assert_eq!(count_class(&whole, "crash"), 2);
    assert_eq!(count_class(&whole, "restart"), 1);
    assert_eq!(count_class(&whole, "pause"), 2);
    assert_eq!(count_class(&whole, "violation"), 1);
    assert_eq!(count_class(&whole, "node-line down"), 2);

    let window = render(&trace, Some((400_000, 600_000)));
    assert_eq!(count_class(&window, "message"), 2);
    assert_eq!(count_class(&window, "message lost"), 0);
    assert_eq!(count_class(&window, "crash"), 0);
    assert_eq!(count_class(&window, "restart"), 0);
    assert_eq!(count_class(&window, "pause"), 1);
    assert_eq!(count_class(&window, "violation"), 0);
    // The open-ended leader term began before the window and still covers it.
    assert_eq!(count_class(&window, "leader"), 1);
    assert_eq!(count_class(&window, "node-line down"), 0);
    assert!(window.contains("window 400.0 ms to 600.0 ms; 2 nodes; 2 of 2 messages"));

    // After the second crash, node 2 stays down to the end of any later window.
    let late = render(&trace, Some((950_000, 990_000)));
    assert_eq!(count_class(&late, "node-line down"), 1);
    assert_eq!(count_class(&late, "node-line"), 1, "only node 1 is up");
}

#[test]
fn messages_over_the_cap_are_counted_in_a_visible_note() {
    let events: Vec<TraceEvent> = (0..50)
        .map(|i| {
            message(
                1 + i % 2,
                2 - i % 2,
                "Heartbeat",
                i * 1000,
                Some(i * 1000 + 400),
            )
        })
        .collect();
    let trace = Trace {
        nodes: vec![1, 2],
        events,
    };
    let options = DiagramOptions {
        max_messages: 10,
        ..DiagramOptions::default()
    };
    let svg = render_svg(&trace, &options);
    check_well_formed(&svg).expect("well-formed");
    assert_eq!(count_class(&svg, "message"), 10);
    assert_eq!(count_class(&svg, "note"), 1);
    assert!(svg.contains("Note: 40 of 50 messages in this window are omitted (max_messages = 10)"));
    // The earliest sent are the ones drawn.
    assert!(svg.contains("sent 9.0 ms"));
    assert!(!svg.contains("sent 10.0 ms"));

    let under_cap = render(&trace, None);
    assert_eq!(count_class(&under_cap, "message"), 50);
    assert_eq!(count_class(&under_cap, "note"), 0);
}

#[test]
fn text_from_the_trace_is_escaped() {
    let nasty = "<script>&\"'x'\"</script>";
    let trace = Trace {
        nodes: vec![1, 2],
        events: vec![
            message(1, 2, nasty, 1000, Some(2000)),
            TraceEvent::Partition {
                from_us: 0,
                to_us: Some(5000),
                cut: vec![(1, 2)],
                description: nasty.to_string(),
            },
            TraceEvent::Violation {
                at_us: 3000,
                description: nasty.to_string(),
            },
        ],
    };
    let options = DiagramOptions {
        title: nasty.to_string(),
        ..DiagramOptions::default()
    };
    let svg = render_svg(&trace, &options);
    check_well_formed(&svg).expect("well-formed");
    assert!(!svg.contains("<script"));
    let escaped = "&lt;script&gt;&amp;&quot;&apos;x&apos;&quot;&lt;/script&gt;";
    // The title, the kind's tooltip and legend, the partition and violation tooltips and labels.
    assert!(svg.matches(escaped).count() >= 7, "{svg}");
}

#[test]
fn an_empty_trace_and_odd_options_still_make_a_picture() {
    let empty = render(&Trace::default(), None);
    assert!(empty.contains("0 nodes; 0 of 0 messages"));
    // A node only mentioned by an event still gets a line; a window of zero width is widened.
    let trace = Trace {
        nodes: vec![1],
        events: vec![message(1, 9, "TimeoutNow", 10, Some(20))],
    };
    let options = DiagramOptions {
        window_us: Some((15, 15)),
        width_px: 10,
        ..DiagramOptions::default()
    };
    let svg = render_svg(&trace, &options);
    check_well_formed(&svg).expect("well-formed");
    assert!(svg.contains(">n9<title>node 9</title>"));
    assert_eq!(count_class(&svg, "message"), 1);

    // Times at the very end of the clock neither overflow nor panic.
    let late = Trace {
        nodes: vec![1, 2],
        events: vec![
            message(1, 2, "Heartbeat", u64::MAX - 10, Some(u64::MAX)),
            TraceEvent::Leader {
                node: 1,
                term: u64::MAX,
                from_us: u64::MAX,
                to_us: None,
            },
            TraceEvent::ClockJump {
                node: 2,
                at_us: u64::MAX,
                delta_ms: i64::MIN,
            },
        ],
    };
    for window_us in [
        None,
        Some((u64::MAX, u64::MAX)),
        Some((u64::MAX - 20, u64::MAX)),
    ] {
        let svg = render(&late, window_us);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }
}

#[test]
fn a_narrow_picture_wraps_its_headings_without_losing_words() {
    let events: Vec<TraceEvent> = (0..5)
        .map(|i| message(1, 2, "Heartbeat", i * 1000, Some(i * 1000 + 400)))
        .collect();
    let trace = Trace {
        nodes: vec![1, 2],
        events,
    };
    let title = "a long title that cannot fit on one line of a picture only four hundred pixels \
                 wide, so it is wrapped at spaces";
    let options = DiagramOptions {
        width_px: 400,
        max_messages: 2,
        title: title.to_string(),
        ..DiagramOptions::default()
    };
    let svg = render_svg(&trace, &options);
    check_well_formed(&svg).expect("well-formed");
    let lines_of = |class: &str| -> Vec<String> {
        let start = svg
            .find(&format!("<text class=\"{class}\""))
            .expect("heading present");
        let end = start + svg[start..].find("</text>").expect("closed");
        svg[start..end]
            .split("<tspan")
            .skip(1)
            .map(|tspan| tspan[tspan.find('>').expect("tag end") + 1..].replace("</tspan>", ""))
            .collect()
    };
    let title_lines = lines_of("title");
    assert!(title_lines.len() > 1, "{title_lines:?}");
    assert_eq!(title_lines.join(" "), title);
    let note_lines = lines_of("note");
    assert!(note_lines.len() > 1, "{note_lines:?}");
    assert!(note_lines
        .join(" ")
        .starts_with("Note: 3 of 5 messages in this window are omitted"));
}
