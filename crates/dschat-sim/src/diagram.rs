//! # Space-time diagrams: a trace drawn the way Lamport draws a run
//!
//! **The problem.** When the simulator finds a bug, the [`Trace`] of the run holds the
//! explanation, but thousands of JSON lines do not show it. A space-time diagram (Lamport,
//! "Time, clocks, and the ordering of events in a distributed system", 1978, figure 1, drawn
//! sideways) does: one line per node, time running left to right, and an arrow for every
//! message from its sending to its receiving event. Causality is then a path along lines and
//! arrows, and a lost message or a partition is plain to see.
//!
//! **The guarantee.** [`render_svg`] turns a trace into one self-contained SVG document (no
//! scripts, fonts or external references), byte for byte the same for the same trace and
//! [`DiagramOptions`]. All text from the trace is escaped for XML. Every mark that carries
//! information has a `<title>` tooltip that states it in words, with times in milliseconds.
//! Nothing is dropped silently: if more than [`DiagramOptions::max_messages`] messages fall in
//! the window, the earliest-sent ones are drawn and a visible note says how many were omitted.
//!
//! **How it works.** A private `Layout` maps simulated time to x (the window,
//! [`DiagramOptions::window_us`], or the whole run) and each node to the y of its line; nodes
//! are drawn in [`Trace::nodes`] order, followed by any node an event mentions that the list
//! lacks. Only events that intersect the window are drawn, as (back to front):
//! - [`TraceEvent::Partition`]: a translucent orange band over all nodes, its description in
//!   the tooltip, and a small bar on the line of every node that has a cut link;
//! - [`TraceEvent::Leader`]: a pale band along the leader's line, labelled `term 7`;
//! - [`TraceEvent::Pause`]: a hatched band on the node's line;
//! - the node's line itself, solid while up and dashed grey from a [`TraceEvent::Crash`] to
//!   the next [`TraceEvent::Restart`];
//! - [`TraceEvent::Message`]: an arrow from (sender, sent time) to (receiver, received time),
//!   coloured by the message's family (pre-votes, votes, log requests and responses,
//!   heartbeats, snapshots, leadership transfer; other kinds get a colour from a hash of their
//!   name), dashed for responses; a lost message is a short arrow towards its receiver ending
//!   in an "x";
//! - [`TraceEvent::Crash`] as a red X, [`TraceEvent::Restart`] as a green triangle,
//!   [`TraceEvent::ClockJump`] as a small marker with its delta, and
//!   [`TraceEvent::Violation`] as a vertical red line with its description.
//!
//! A legend lists the message kinds drawn and the marks present. [`Trace::failing_window`]
//! gives a good window to draw when a check failed.
//!
//! The title, a summary of what is shown and the note about omitted messages are wrapped to
//! the picture's width, and the plot starts below them.
//!
//! **Limitations.** Element ids (`arrow-0072b2` per colour, `hatch`, `plot-area`) are fixed,
//! so two diagrams inlined in one HTML page clash (the first one's definitions win); show each
//! as its own document, for example with `<img>`. Text widths are estimated, not measured, so
//! a label can overlap its neighbour; its tooltip is always complete. Hundreds of messages in a
//! wide window become a dense band of arrows: narrow the window to read them.

use std::collections::{BTreeMap, BTreeSet};
// Writing to a `String` cannot fail, so the `fmt::Result`s of `write!` are ignored here and
// in the submodules.
use std::fmt::Write;

use crate::trace::{Trace, TraceEvent};

mod draw;
mod legend;

/// How to draw a [`Trace`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagramOptions {
    /// The time range to draw, `(start_us, end_us)`; `None` draws the whole run. A window
    /// that does not end after it starts becomes the one microsecond from its start.
    pub window_us: Option<(u64, u64)>,
    /// The width of the picture in pixels; its height follows from the number of nodes.
    pub width_px: u32,
    /// At most this many messages are drawn; a visible note counts the rest.
    pub max_messages: usize,
    /// The heading printed above the diagram.
    pub title: String,
}

impl Default for DiagramOptions {
    fn default() -> DiagramOptions {
        DiagramOptions {
            window_us: None,
            width_px: 1400,
            max_messages: 2000,
            title: "dschat simulation trace".to_string(),
        }
    }
}

/// Narrower than this, the plot area would be unreadable, so `width_px` is raised to it.
const MIN_WIDTH_PX: f64 = 400.0;
/// Room left of the plot for the node labels.
const PLOT_LEFT_PX: f64 = 56.0;
/// Room right of the plot.
const PLOT_RIGHT_MARGIN_PX: f64 = 24.0;
/// The baseline of the title.
const TITLE_BASELINE_PX: f64 = 24.0;
/// Room between the last heading line and the first lane, for two rows of violation labels.
const VIOLATION_LABELS_PX: f64 = 36.0;
/// Vertical distance between two node lines.
const LANE_HEIGHT_PX: f64 = 64.0;
/// Height of one legend row.
const LEGEND_ROW_PX: f64 = 20.0;
/// Visible labels longer than this are cut with an ellipsis (their tooltips are complete).
const MAX_LABEL_CHARS: usize = 90;
/// Estimated width of one character of 11-pixel text, generous so that text fits.
const CHAR_WIDTH_PX: f64 = 7.0;

/// Pale band colours for leader terms, by term number modulo their count, so that two
/// successive terms led by one node are told apart.
const LEADER_COLOURS: [&str; 4] = ["#fff1a8", "#d4efcc", "#d6e6f7", "#f4dcef"];

/// Maps time and nodes to picture coordinates.
struct Layout {
    start_us: u64,
    /// Where the first node's lane begins, below the heading and the violation labels.
    plot_top: f64,
    end_us: u64,
    width: f64,
    plot_right: f64,
    lane_of_node: BTreeMap<u64, usize>,
    lanes: Vec<u64>,
}

impl Layout {
    fn new(trace: &Trace, options: &DiagramOptions) -> Layout {
        let (start_us, end_us) = options.window_us.unwrap_or((0, trace.end_us()));
        let start_us = start_us.min(u64::MAX - 1);
        let end_us = end_us.max(start_us + 1);
        let width = f64::from(options.width_px).max(MIN_WIDTH_PX);
        let lanes = lanes(trace);
        let lane_of_node = lanes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        Layout {
            start_us,
            // Set once the heading is known.
            plot_top: TITLE_BASELINE_PX + VIOLATION_LABELS_PX,
            end_us,
            width,
            plot_right: width - PLOT_RIGHT_MARGIN_PX,
            lane_of_node,
            lanes,
        }
    }

    /// The x of a time; outside the window it lies outside the plot (and is clipped).
    fn x(&self, time_us: u64) -> f64 {
        let span = (self.end_us - self.start_us) as f64;
        let offset = time_us as f64 - self.start_us as f64;
        PLOT_LEFT_PX + offset / span * (self.plot_right - PLOT_LEFT_PX)
    }

    /// The x of a time moved into the window first.
    fn x_clamped(&self, time_us: u64) -> f64 {
        self.x(time_us.clamp(self.start_us, self.end_us))
    }

    /// The y of a node's line.
    fn y(&self, node: u64) -> f64 {
        let lane = self.lane_of_node[&node] as f64;
        self.plot_top + LANE_HEIGHT_PX * (lane + 0.5)
    }

    /// The bottom of the last node's lane.
    fn plot_bottom(&self) -> f64 {
        self.plot_top + LANE_HEIGHT_PX * self.lanes.len() as f64
    }

    /// Whether the closed interval `[from_us, to_us]` meets the window.
    fn intersects(&self, from_us: u64, to_us: u64) -> bool {
        from_us <= self.end_us && to_us >= self.start_us
    }

    /// Whether an event meets the window; an open-ended interval lasts forever.
    fn intersects_event(&self, event: &TraceEvent) -> bool {
        let (from_us, to_us) = match event {
            TraceEvent::Partition { from_us, to_us, .. }
            | TraceEvent::Leader { from_us, to_us, .. } => (*from_us, to_us.unwrap_or(u64::MAX)),
            _ => event.time_span_us(),
        };
        self.intersects(from_us, to_us)
    }
}

/// The nodes top to bottom: the trace's list, then any other node an event mentions.
fn lanes(trace: &Trace) -> Vec<u64> {
    let mut lanes = Vec::new();
    let mut seen = BTreeSet::new();
    for node in &trace.nodes {
        if seen.insert(*node) {
            lanes.push(*node);
        }
    }
    let mut unlisted = BTreeSet::new();
    for event in &trace.events {
        let mentioned: Vec<u64> = match event {
            TraceEvent::Message { from, to, .. } => vec![*from, *to],
            TraceEvent::Crash { node, .. }
            | TraceEvent::Restart { node, .. }
            | TraceEvent::Pause { node, .. }
            | TraceEvent::Leader { node, .. }
            | TraceEvent::ClockJump { node, .. } => vec![*node],
            TraceEvent::Partition { cut, .. } => cut.iter().flat_map(|(a, b)| [*a, *b]).collect(),
            TraceEvent::Violation { .. } => vec![],
        };
        unlisted.extend(mentioned.into_iter().filter(|node| !seen.contains(node)));
    }
    lanes.extend(unlisted);
    lanes
}

/// A message as drawn.
struct MessageView<'a> {
    from: u64,
    to: u64,
    kind: &'a str,
    sent_us: u64,
    received_us: Option<u64>,
}

/// The messages in the window, earliest sent first, cut at `max_messages`; and how many
/// messages the window held in all.
fn select_messages<'a>(
    trace: &'a Trace,
    layout: &Layout,
    max_messages: usize,
) -> (Vec<MessageView<'a>>, usize) {
    let mut messages: Vec<MessageView<'a>> = trace
        .events
        .iter()
        .filter(|event| layout.intersects_event(event))
        .filter_map(|event| match event {
            TraceEvent::Message {
                from,
                to,
                kind,
                sent_us,
                received_us,
            } => Some(MessageView {
                from: *from,
                to: *to,
                kind,
                sent_us: *sent_us,
                received_us: *received_us,
            }),
            _ => None,
        })
        .collect();
    // A stable sort keeps the trace's order among messages sent at the same time.
    messages.sort_by_key(|message| message.sent_us);
    let total = messages.len();
    messages.truncate(max_messages);
    (messages, total)
}

/// Escapes text for use in XML content and in double-quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            c if c.is_control() && c != '\t' && c != '\n' => escaped.push('\u{fffd}'),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A `<title>` tooltip holding `text`, escaped.
fn title(text: &str) -> String {
    format!("<title>{}</title>", escape(text))
}

/// Cuts a visible label to what fits in `room_px` (by [`CHAR_WIDTH_PX`] scaled to
/// `font_size_px`), and never longer than [`MAX_LABEL_CHARS`], ending it with an ellipsis.
fn shorten(text: &str, room_px: f64, font_size_px: f64) -> String {
    let fitting = (room_px / (CHAR_WIDTH_PX * font_size_px / 11.0)).max(0.0) as usize;
    let max_chars = fitting.min(MAX_LABEL_CHARS);
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Splits `text` at spaces into lines of at most `max_chars` characters where possible
/// (a longer word gets a line of its own).
fn wrap(text: &str, max_chars: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= max_chars => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Microseconds as milliseconds, exactly: `1203.4`, `1203.456`, `1203.0`.
fn ms(time_us: u64) -> String {
    let fraction = format!("{:03}", time_us % 1000);
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.is_empty() { "0" } else { fraction };
    format!("{}.{fraction}", time_us / 1000)
}

/// An optional end time: `until 1203.4 ms`, or `until the end` if there is none.
fn until(to_us: Option<u64>) -> String {
    match to_us {
        Some(to_us) => format!("until {} ms", ms(to_us)),
        None => "until the end".to_string(),
    }
}

/// How a node is called in labels and tooltips: `n3`.
fn node_name(node: u64) -> String {
    format!("n{node}")
}

/// Renders `trace` as a self-contained SVG space-time diagram (see the module documentation).
pub fn render_svg(trace: &Trace, options: &DiagramOptions) -> String {
    let mut layout = Layout::new(trace, options);
    let (messages, messages_in_window) = select_messages(trace, &layout, options.max_messages);
    let headings = headings(&layout, options, messages.len(), messages_in_window);
    // The headings are written into a buffer of their own first: their wrapped height decides
    // where the plot begins, which the picture's height and everything below depend on.
    let mut heading_svg = String::new();
    layout.plot_top = write_headings(&mut heading_svg, &layout, &headings) + VIOLATION_LABELS_PX;
    let drawn: Vec<&TraceEvent> = trace
        .events
        .iter()
        .filter(|event| !matches!(event, TraceEvent::Message { .. }))
        .filter(|event| layout.intersects_event(event))
        .collect();
    let legend = legend::legend_items(&messages, &drawn);
    let legend_rows = legend::legend_rows(&legend, &layout);
    let legend_top = layout.plot_bottom() + 58.0;
    let height = legend_top + LEGEND_ROW_PX * legend_rows.len() as f64 + 12.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {w:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        w = layout.width,
    );
    write_definitions(&mut svg, &layout, height, &messages);
    let _ = writeln!(
        svg,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    );
    svg.push_str(&heading_svg);
    svg.push_str("<g clip-path=\"url(#plot-area)\">\n");
    draw::write_bands(&mut svg, &layout, &drawn);
    draw::write_node_lines(&mut svg, &layout, trace);
    draw::write_messages(&mut svg, &layout, &messages);
    svg.push_str("</g>\n");
    draw::write_marks(&mut svg, &layout, &drawn);
    draw::write_node_labels(&mut svg, &layout);
    draw::write_time_axis(&mut svg, &layout);
    legend::write_legend(&mut svg, legend_top, &legend_rows);
    svg.push_str("</svg>\n");
    svg
}

/// Arrowheads (one per colour drawn), the pause hatching, and the clip of the plot area.
fn write_definitions(svg: &mut String, layout: &Layout, height: f64, messages: &[MessageView]) {
    svg.push_str("<defs>\n");
    let colours: BTreeSet<&str> = messages
        .iter()
        .map(|m| legend::kind_colour(m.kind))
        .collect();
    for colour in colours {
        let _ = writeln!(
            svg,
            "<marker id=\"{}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
             markerHeight=\"7\" markerUnits=\"userSpaceOnUse\" orient=\"auto\">\
             <path d=\"M0,1 L10,5 L0,9 z\" fill=\"{colour}\"/></marker>",
            legend::arrow_id(colour)
        );
    }
    svg.push_str(
        "<pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#eeeeee\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#888888\" stroke-width=\"2\"/>\
         </pattern>\n",
    );
    let _ = writeln!(
        svg,
        "<clipPath id=\"plot-area\"><rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{height:.0}\"/>\
         </clipPath>",
        PLOT_LEFT_PX,
        layout.plot_right - PLOT_LEFT_PX,
    );
    svg.push_str("</defs>\n");
}

/// One block of text above the plot: the title, the summary, or the note about omitted
/// messages.
struct Heading {
    class: &'static str,
    font_size_px: f64,
    style: &'static str,
    text: String,
}

impl Heading {
    fn line_height_px(&self) -> f64 {
        self.font_size_px * 1.5
    }
}

/// The title, what is shown, and the note about omitted messages, if any were.
fn headings(
    layout: &Layout,
    options: &DiagramOptions,
    drawn_messages: usize,
    messages_in_window: usize,
) -> Vec<Heading> {
    let summary = format!(
        "window {} ms to {} ms; {} nodes; {drawn_messages} of {messages_in_window} messages in \
         the window drawn",
        ms(layout.start_us),
        ms(layout.end_us),
        layout.lanes.len(),
    );
    let mut headings = vec![
        Heading {
            class: "title",
            font_size_px: 16.0,
            style: "font-weight=\"bold\"",
            text: options.title.clone(),
        },
        Heading {
            class: "summary",
            font_size_px: 11.0,
            style: "fill=\"#444444\"",
            text: summary,
        },
    ];
    let omitted = messages_in_window - drawn_messages;
    if omitted > 0 {
        let note = format!(
            "Note: {omitted} of {messages_in_window} messages in this window are omitted \
             (max_messages = {}); only the earliest sent are drawn. Narrow the window to see \
             the rest.",
            options.max_messages
        );
        headings.push(Heading {
            class: "note",
            font_size_px: 11.0,
            style: "fill=\"#b00000\" font-weight=\"bold\"",
            text: note,
        });
    }
    headings
}

/// Writes the headings, each wrapped to the picture's width, and returns the baseline of
/// the last line.
fn write_headings(svg: &mut String, layout: &Layout, headings: &[Heading]) -> f64 {
    let mut baseline = TITLE_BASELINE_PX;
    let width_px = layout.width - PLOT_LEFT_PX - PLOT_RIGHT_MARGIN_PX;
    for (index, heading) in headings.iter().enumerate() {
        if index > 0 {
            baseline += heading.line_height_px();
        }
        let max_chars = (width_px / (CHAR_WIDTH_PX * heading.font_size_px / 11.0)) as usize;
        let _ = write!(
            svg,
            "<text class=\"{}\" x=\"{PLOT_LEFT_PX}\" y=\"{baseline:.1}\" font-size=\"{}\" {}>",
            heading.class, heading.font_size_px, heading.style
        );
        for (line_index, line) in wrap(&heading.text, max_chars.max(1)).iter().enumerate() {
            if line_index > 0 {
                baseline += heading.line_height_px();
            }
            let _ = write!(
                svg,
                "<tspan x=\"{PLOT_LEFT_PX}\" y=\"{baseline:.1}\">{}</tspan>",
                escape(line)
            );
        }
        svg.push_str("</text>\n");
    }
    baseline
}
