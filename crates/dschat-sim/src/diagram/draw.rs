//! Drawing each kind of trace event: the bands (partitions, leader terms, pauses), the node
//! lines with their down stretches, the message arrows, the point marks (crashes, restarts,
//! clock jumps, violations), the node labels and the time axis. The parent module decides
//! what is in the window; this one only draws it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::legend::{arrow_id, is_response, kind_colour};
use super::{
    escape, ms, node_name, shorten, title, until, Layout, MessageView, CHAR_WIDTH_PX,
    LANE_HEIGHT_PX, LEADER_COLOURS, PLOT_LEFT_PX,
};
use crate::trace::{Trace, TraceEvent};

/// Partitions, leader terms and pauses: the bands behind the node lines.
pub(super) fn write_bands(svg: &mut String, layout: &Layout, drawn: &[&TraceEvent]) {
    for event in drawn {
        if let TraceEvent::Partition {
            from_us,
            to_us,
            cut,
            description,
        } = event
        {
            write_partition(svg, layout, (*from_us, *to_us), cut, description);
        }
    }
    for event in drawn {
        match event {
            TraceEvent::Leader {
                node,
                term,
                from_us,
                to_us,
            } => write_leader(svg, layout, *node, *term, (*from_us, *to_us)),
            TraceEvent::Pause {
                node,
                from_us,
                to_us,
            } => {
                let (x1, x2) = (layout.x_clamped(*from_us), layout.x_clamped(*to_us));
                let tooltip = format!(
                    "{} paused from {} ms until {} ms",
                    node_name(*node),
                    ms(*from_us),
                    ms(*to_us)
                );
                let _ = writeln!(
                    svg,
                    "<rect class=\"pause\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" \
                     fill=\"url(#hatch)\" stroke=\"#888888\">{}</rect>",
                    layout.y(*node) - 7.0,
                    (x2 - x1).max(1.0),
                    title(&tooltip)
                );
            }
            _ => {}
        }
    }
}

/// A partition's band over all nodes, its label, and a bar on each node with a cut link.
fn write_partition(
    svg: &mut String,
    layout: &Layout,
    (from_us, to_us): (u64, Option<u64>),
    cut: &[(u64, u64)],
    description: &str,
) {
    let x1 = layout.x_clamped(from_us);
    let x2 = layout.x_clamped(to_us.unwrap_or(u64::MAX));
    let links: Vec<String> = cut
        .iter()
        .map(|(a, b)| format!("{}→{}", node_name(*a), node_name(*b)))
        .collect();
    let tooltip = format!(
        "partition {description}: from {} ms {}; cut links {}",
        ms(from_us),
        until(to_us),
        links.join(", ")
    );
    let _ = writeln!(
        svg,
        "<rect class=\"partition\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" \
         height=\"{:.1}\" fill=\"#ff9900\" fill-opacity=\"0.13\">{}</rect>",
        layout.plot_top,
        (x2 - x1).max(1.0),
        layout.plot_bottom() - layout.plot_top,
        title(&tooltip)
    );
    if x2 - x1 > 60.0 {
        let _ = writeln!(
            svg,
            "<text class=\"partition-label\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" \
             fill=\"#a05a00\">{}{}</text>",
            x1 + 4.0,
            layout.plot_top + 11.0,
            escape(&shorten(
                &format!("partition {description}"),
                x2 - x1 - 8.0,
                10.0
            )),
            title(&tooltip)
        );
    }
    let cut_nodes: BTreeSet<u64> = cut.iter().flat_map(|(a, b)| [*a, *b]).collect();
    for node in cut_nodes {
        let cannot_send: Vec<String> = cut
            .iter()
            .filter(|l| l.0 == node)
            .map(|l| node_name(l.1))
            .collect();
        let cannot_receive: Vec<String> = cut
            .iter()
            .filter(|l| l.1 == node)
            .map(|l| node_name(l.0))
            .collect();
        let tooltip = format!(
            "{} in partition {description}: cannot send to [{}], cannot receive from [{}]",
            node_name(node),
            cannot_send.join(", "),
            cannot_receive.join(", ")
        );
        let _ = writeln!(
            svg,
            "<rect class=\"partition-marker\" x=\"{:.1}\" y=\"{:.1}\" width=\"4\" height=\"20\" \
             fill=\"#e08000\">{}</rect>",
            x1,
            layout.y(node) - 10.0,
            title(&tooltip)
        );
    }
}

/// A leader's term as a pale band along its line, labelled with the term.
fn write_leader(svg: &mut String, layout: &Layout, node: u64, term: u64, span: (u64, Option<u64>)) {
    let (from_us, to_us) = span;
    let x1 = layout.x_clamped(from_us);
    let x2 = layout.x_clamped(to_us.unwrap_or(u64::MAX));
    let y = layout.y(node);
    let tooltip = format!(
        "{} leader of term {term} from {} ms {}",
        node_name(node),
        ms(from_us),
        until(to_us)
    );
    let _ = writeln!(
        svg,
        "<rect class=\"leader\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"24\" \
         fill=\"{}\">{}</rect>",
        y - 12.0,
        (x2 - x1).max(1.0),
        LEADER_COLOURS[(term % LEADER_COLOURS.len() as u64) as usize],
        title(&tooltip)
    );
    let _ = writeln!(
        svg,
        "<text class=\"leader-label\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" \
         fill=\"#5a5a00\">term {term}{}</text>",
        x1 + 3.0,
        y - 15.0,
        title(&tooltip)
    );
}

/// When each node was down: from a crash to the next restart (`None`: to the end).
fn down_intervals(trace: &Trace) -> BTreeMap<u64, Vec<(u64, Option<u64>)>> {
    let mut changes: Vec<(u64, u64, bool)> = trace
        .events
        .iter()
        .filter_map(|event| match event {
            TraceEvent::Crash { node, at_us } => Some((*at_us, *node, false)),
            TraceEvent::Restart { node, at_us } => Some((*at_us, *node, true)),
            _ => None,
        })
        .collect();
    changes.sort_by_key(|(at_us, _, _)| *at_us);
    let mut intervals: BTreeMap<u64, Vec<(u64, Option<u64>)>> = BTreeMap::new();
    for (at_us, node, is_restart) in changes {
        let node_intervals = intervals.entry(node).or_default();
        let is_down = node_intervals.last().is_some_and(|(_, to)| to.is_none());
        match (is_restart, is_down) {
            (false, false) => node_intervals.push((at_us, None)),
            (true, true) => node_intervals.last_mut().expect("is down").1 = Some(at_us),
            // A second crash while down, or a restart while up, changes nothing.
            _ => {}
        }
    }
    intervals
}

/// Each node's line: solid while up, dashed grey while down.
pub(super) fn write_node_lines(svg: &mut String, layout: &Layout, trace: &Trace) {
    let down = down_intervals(trace);
    for node in &layout.lanes {
        let y = layout.y(*node);
        let mut cursor_us = layout.start_us;
        let no_intervals = Vec::new();
        for (from_us, to_us) in down.get(node).unwrap_or(&no_intervals) {
            let until_us = to_us.unwrap_or(u64::MAX);
            if !layout.intersects(*from_us, until_us) {
                continue;
            }
            let down_from_us = (*from_us).max(layout.start_us);
            write_line_segment(svg, layout, y, (cursor_us, down_from_us), None);
            let down_to_us = until_us.min(layout.end_us);
            let tooltip = format!(
                "{} down: crashed at {} ms, {}",
                node_name(*node),
                ms(*from_us),
                match to_us {
                    Some(to_us) => format!("restarted at {} ms", ms(*to_us)),
                    None => "not restarted".to_string(),
                }
            );
            write_line_segment(svg, layout, y, (down_from_us, down_to_us), Some(&tooltip));
            cursor_us = down_to_us;
        }
        write_line_segment(svg, layout, y, (cursor_us, layout.end_us), None);
    }
}

/// One stretch of a node's line; `down_tooltip` is set while the node is down.
fn write_line_segment(
    svg: &mut String,
    layout: &Layout,
    y: f64,
    (from_us, to_us): (u64, u64),
    down_tooltip: Option<&str>,
) {
    if to_us <= from_us {
        return;
    }
    let (x1, x2) = (layout.x(from_us), layout.x(to_us));
    match down_tooltip {
        None => {
            let _ = writeln!(
                svg,
                "<line class=\"node-line\" x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" \
                 y2=\"{y:.1}\" stroke=\"#333333\" stroke-width=\"1.5\"/>"
            );
        }
        Some(tooltip) => {
            let _ = writeln!(
                svg,
                "<line class=\"node-line down\" x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" \
                 y2=\"{y:.1}\" stroke=\"#b0b0b0\" stroke-width=\"1.5\" \
                 stroke-dasharray=\"5 4\">{}</line>",
                title(tooltip)
            );
        }
    }
}

/// Every drawn message as an arrow, or a short arrow ending in an "x" if it was lost.
pub(super) fn write_messages(svg: &mut String, layout: &Layout, messages: &[MessageView]) {
    for message in messages {
        let colour = kind_colour(message.kind);
        let dash = if is_response(message.kind) {
            " stroke-dasharray=\"6 3\""
        } else {
            ""
        };
        let (x1, y1) = (layout.x(message.sent_us), layout.y(message.from));
        let y_receiver = layout.y(message.to);
        let route = format!(
            "{} {}→{} sent {} ms",
            message.kind,
            node_name(message.from),
            node_name(message.to),
            ms(message.sent_us)
        );
        match message.received_us {
            Some(received_us) => {
                let x2 = layout.x(received_us);
                let tooltip = format!("{route}, received {} ms", ms(received_us));
                let _ = writeln!(
                    svg,
                    "<line class=\"message\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" \
                     y2=\"{y_receiver:.1}\" stroke=\"{colour}\" stroke-width=\"1.3\"{dash} \
                     marker-end=\"url(#{})\">{}</line>",
                    arrow_id(colour),
                    title(&tooltip)
                );
            }
            None => {
                // Towards the receiver but short of the next line, further for a farther
                // receiver so that losses towards different nodes stay apart.
                let lanes_apart = (y_receiver - y1).abs() / LANE_HEIGHT_PX;
                let fraction = (0.1 + 0.15 * lanes_apart).min(0.7);
                let x2 = x1 + 14.0;
                let y2 = y1 + (y_receiver - y1).signum() * fraction * LANE_HEIGHT_PX;
                let tooltip = format!("{route}, lost");
                let _ = writeln!(
                    svg,
                    "<path class=\"message lost\" d=\"M{x1:.1},{y1:.1} L{x2:.1},{y2:.1} \
                     M{:.1},{:.1} l8,8 m0,-8 l-8,8\" fill=\"none\" stroke=\"{colour}\" \
                     stroke-width=\"1.5\">{}</path>",
                    x2 - 4.0,
                    y2 - 4.0,
                    title(&tooltip)
                );
            }
        }
    }
}

/// Crashes, restarts, clock jumps and violations: marks drawn over everything else.
pub(super) fn write_marks(svg: &mut String, layout: &Layout, drawn: &[&TraceEvent]) {
    let mut violations_drawn = 0;
    for event in drawn {
        match event {
            TraceEvent::Crash { node, at_us } => {
                let (x, y) = (layout.x(*at_us), layout.y(*node));
                let tooltip = format!("{} crashed at {} ms", node_name(*node), ms(*at_us));
                let _ = writeln!(
                    svg,
                    "<path class=\"crash\" d=\"M{:.1},{:.1} l12,12 m0,-12 l-12,12\" \
                     stroke=\"#d00000\" stroke-width=\"3\" fill=\"none\">{}</path>",
                    x - 6.0,
                    y - 6.0,
                    title(&tooltip)
                );
            }
            TraceEvent::Restart { node, at_us } => {
                let (x, y) = (layout.x(*at_us), layout.y(*node));
                let tooltip = format!("{} restarted at {} ms", node_name(*node), ms(*at_us));
                let _ = writeln!(
                    svg,
                    "<path class=\"restart\" d=\"M{x:.1},{:.1} l9,6 l-9,6 z\" \
                     fill=\"#1a9641\">{}</path>",
                    y - 6.0,
                    title(&tooltip)
                );
            }
            TraceEvent::ClockJump {
                node,
                at_us,
                delta_ms,
            } => write_clock_jump(svg, layout, *node, *at_us, *delta_ms),
            TraceEvent::Violation { at_us, description } => {
                write_violation(svg, layout, *at_us, description, violations_drawn);
                violations_drawn += 1;
            }
            _ => {}
        }
    }
}

/// A clock jump: a small diamond above the node's line and the signed delta beside it.
fn write_clock_jump(svg: &mut String, layout: &Layout, node: u64, at_us: u64, delta_ms: i64) {
    let (x, y) = (layout.x(at_us), layout.y(node) - 20.0);
    let tooltip = format!(
        "{} clock jumped {delta_ms:+} ms at {} ms",
        node_name(node),
        ms(at_us)
    );
    let _ = writeln!(
        svg,
        "<g class=\"clock-jump\">{}<path d=\"M{x:.1},{:.1} l5,5 l-5,5 l-5,-5 z\" \
         fill=\"#00897b\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" \
         fill=\"#00695c\">{delta_ms:+} ms</text></g>",
        title(&tooltip),
        y - 5.0,
        x + 7.0,
        y + 4.0
    );
}

/// A violation: a red line through all nodes and its description above them. Successive
/// labels alternate between two rows so neighbours overlap less.
fn write_violation(svg: &mut String, layout: &Layout, at_us: u64, description: &str, index: usize) {
    let x = layout.x(at_us);
    let tooltip = format!("violation at {} ms: {description}", ms(at_us));
    let label_y = layout.plot_top - 8.0 - 13.0 * (index % 2) as f64;
    let _ = writeln!(
        svg,
        "<line class=\"violation\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" \
         stroke=\"#d00000\" stroke-width=\"2\">{}</line>",
        label_y + 3.0,
        layout.plot_bottom(),
        title(&tooltip)
    );
    // On the side with more room unless it fits on the right, cut to what fits there.
    let label = format!("violation: {description}");
    let room_right = layout.width - x - 8.0;
    let room_left = x - 8.0;
    let fits_right = label.chars().count() as f64 * CHAR_WIDTH_PX <= room_right;
    let (anchor, label_x, room) = if fits_right || room_right >= room_left {
        ("start", x + 4.0, room_right)
    } else {
        ("end", x - 4.0, room_left)
    };
    let _ = writeln!(
        svg,
        "<text class=\"violation-label\" x=\"{label_x:.1}\" y=\"{label_y:.1}\" \
         text-anchor=\"{anchor}\" fill=\"#d00000\" font-weight=\"bold\">{}{}</text>",
        escape(&shorten(&label, room, 11.0)),
        title(&tooltip)
    );
}

/// The node names left of their lines.
pub(super) fn write_node_labels(svg: &mut String, layout: &Layout) {
    for node in &layout.lanes {
        let _ = writeln!(
            svg,
            "<text class=\"node-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
             font-size=\"13\" font-weight=\"bold\">{}{}</text>",
            PLOT_LEFT_PX - 10.0,
            layout.y(*node) + 4.0,
            escape(&node_name(*node)),
            title(&format!("node {node}"))
        );
    }
}

/// The time axis under the nodes: ticks at a round step, labelled in milliseconds.
pub(super) fn write_time_axis(svg: &mut String, layout: &Layout) {
    let y = layout.plot_bottom() + 6.0;
    let _ = writeln!(
        svg,
        "<line class=\"axis\" x1=\"{PLOT_LEFT_PX:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" \
         stroke=\"#333333\"/>",
        layout.plot_right
    );
    let step_us = tick_step_us(
        layout.end_us - layout.start_us,
        layout.plot_right - PLOT_LEFT_PX,
    );
    let decimals = match step_us {
        step if step % 1000 == 0 => 0,
        step if step % 100 == 0 => 1,
        step if step % 10 == 0 => 2,
        _ => 3,
    };
    let mut next_tick_us = layout.start_us.div_ceil(step_us).checked_mul(step_us);
    while let Some(tick_us) = next_tick_us.filter(|tick_us| *tick_us <= layout.end_us) {
        let x = layout.x(tick_us);
        let fraction = format!("{:03}", tick_us % 1000);
        let label = match decimals {
            0 => format!("{}", tick_us / 1000),
            _ => format!("{}.{}", tick_us / 1000, &fraction[..decimals]),
        };
        let _ = writeln!(
            svg,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" \
             stroke=\"#333333\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
             fill=\"#333333\">{label}</text>",
            y + 5.0,
            y + 17.0
        );
        next_tick_us = tick_us.checked_add(step_us);
    }
    let _ = writeln!(
        svg,
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
         fill=\"#333333\">time (ms)</text>",
        (PLOT_LEFT_PX + layout.plot_right) / 2.0,
        y + 33.0
    );
}

/// A round tick step (1, 2 or 5 times a power of ten microseconds) giving ticks about
/// 100 pixels apart.
fn tick_step_us(span_us: u64, plot_width_px: f64) -> u64 {
    let wanted_ticks = (plot_width_px / 100.0).max(2.0);
    let raw_step_us = span_us as f64 / wanted_ticks;
    let mut power = 1u64;
    loop {
        for multiple in [1, 2, 5] {
            let step_us = power.saturating_mul(multiple);
            if step_us as f64 >= raw_step_us || step_us == u64::MAX {
                return step_us.max(1);
            }
        }
        power = power.saturating_mul(10);
    }
}
