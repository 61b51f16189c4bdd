//! What the colours and marks mean: the colour of each message kind (known Raft families
//! by name, any other kind by a stable hash), and the legend that lists the kinds drawn and
//! the marks present.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{escape, Layout, MessageView, LEADER_COLOURS, LEGEND_ROW_PX, PLOT_LEFT_PX};
use crate::trace::TraceEvent;

/// The colour of a message family; requests and responses share it.
pub(super) fn kind_colour(kind: &str) -> &'static str {
    let name: String = kind
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let families = [
        ("prevote", "#cc79a7"),
        ("vote", "#7b3294"),
        ("heartbeat", "#9a9a9a"),
        ("snapshot", "#e69f00"),
        ("timeoutnow", "#8c510a"),
        ("log", "#0072b2"),
        ("append", "#0072b2"),
    ];
    if let Some((_, colour)) = families.iter().find(|(word, _)| name.contains(word)) {
        return colour;
    }
    const OTHERS: [&str; 8] = [
        "#009e73", "#56b4e9", "#a6761d", "#666600", "#e7298a", "#66a61e", "#386cb0", "#b15928",
    ];
    OTHERS[(fnv1a(kind.as_bytes()) % OTHERS.len() as u64) as usize]
}

/// FNV-1a: a hash that, unlike the standard library's, is the same in every Rust release.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `kind` answers a request; responses are drawn dashed in their family's colour.
pub(super) fn is_response(kind: &str) -> bool {
    let name = kind.to_ascii_lowercase();
    name.contains("response") || name.contains("reply")
}

/// The id of the arrowhead marker drawn in `colour`.
pub(super) fn arrow_id(colour: &str) -> String {
    format!("arrow-{}", colour.trim_start_matches('#'))
}

/// One entry of the legend.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum LegendItem<'a> {
    /// A message kind, drawn as its arrow.
    Kind(&'a str),
    /// A lost message.
    Lost,
    /// A crash mark.
    Crash,
    /// A node's line while it is down.
    Down,
    /// A pause band.
    Pause,
    /// A partition band.
    Partition,
    /// A leader-term band.
    Leader,
    /// A clock-jump marker.
    ClockJump,
    /// A violation line.
    Violation,
}

impl LegendItem<'_> {
    fn label(&self) -> &str {
        match self {
            LegendItem::Kind(kind) => kind,
            LegendItem::Lost => "lost message",
            LegendItem::Crash => "crash",
            LegendItem::Down => "down (crashed)",
            LegendItem::Pause => "pause",
            LegendItem::Partition => "partition",
            LegendItem::Leader => "leader (term)",
            LegendItem::ClockJump => "clock jump",
            LegendItem::Violation => "violation",
        }
    }

    /// Estimated width in pixels: the sample, the label and a gap.
    fn width_px(&self) -> f64 {
        34.0 + 6.5 * self.label().chars().count() as f64 + 18.0
    }
}

/// The message kinds drawn, by name, then the marks present.
pub(super) fn legend_items<'a>(
    messages: &[MessageView<'a>],
    drawn: &[&TraceEvent],
) -> Vec<LegendItem<'a>> {
    let mut items: BTreeSet<LegendItem<'a>> =
        messages.iter().map(|m| LegendItem::Kind(m.kind)).collect();
    if messages.iter().any(|m| m.received_us.is_none()) {
        items.insert(LegendItem::Lost);
    }
    for event in drawn {
        let item = match event {
            TraceEvent::Message { .. } => continue,
            TraceEvent::Crash { .. } => LegendItem::Crash,
            TraceEvent::Restart { .. } => LegendItem::Down,
            TraceEvent::Pause { .. } => LegendItem::Pause,
            TraceEvent::Partition { .. } => LegendItem::Partition,
            TraceEvent::Leader { .. } => LegendItem::Leader,
            TraceEvent::ClockJump { .. } => LegendItem::ClockJump,
            TraceEvent::Violation { .. } => LegendItem::Violation,
        };
        items.insert(item);
    }
    if items.contains(&LegendItem::Crash) {
        items.insert(LegendItem::Down);
    }
    items.into_iter().collect()
}

/// The legend items wrapped into rows that fit the picture's width.
pub(super) fn legend_rows<'a>(
    items: &[LegendItem<'a>],
    layout: &Layout,
) -> Vec<Vec<LegendItem<'a>>> {
    let mut rows: Vec<Vec<LegendItem<'a>>> = Vec::new();
    let mut row_width = f64::INFINITY;
    for item in items {
        if row_width + item.width_px() > layout.plot_right - PLOT_LEFT_PX {
            rows.push(Vec::new());
            row_width = 0.0;
        }
        rows.last_mut().expect("a row was pushed").push(*item);
        row_width += item.width_px();
    }
    rows
}

/// The legend, one sample and label per item.
pub(super) fn write_legend(svg: &mut String, top: f64, rows: &[Vec<LegendItem>]) {
    for (row_index, row) in rows.iter().enumerate() {
        let y = top + LEGEND_ROW_PX * row_index as f64;
        let mut x = PLOT_LEFT_PX;
        for item in row {
            let _ = write!(svg, "<g class=\"legend-item\">");
            write_legend_sample(svg, *item, x, y);
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333333\">{}</text></g>",
                x + 32.0,
                y + 4.0,
                escape(item.label())
            );
            x += item.width_px();
        }
    }
}

/// The small drawing before a legend label, 26 pixels wide, centred on `y`.
fn write_legend_sample(svg: &mut String, item: LegendItem, x: f64, y: f64) {
    let (x2, top) = (x + 26.0, y - 6.0);
    let _ = match item {
        LegendItem::Kind(kind) => {
            let colour = kind_colour(kind);
            let dash = if is_response(kind) {
                " stroke-dasharray=\"6 3\""
            } else {
                ""
            };
            write!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" \
                 stroke-width=\"1.5\"{dash} marker-end=\"url(#{})\"/>",
                arrow_id(colour)
            )
        }
        LegendItem::Lost => write!(
            svg,
            "<path d=\"M{x:.1},{y:.1} l14,0 m-4,-4 l8,8 m0,-8 l-8,8\" stroke=\"#555555\" \
             stroke-width=\"1.5\" fill=\"none\"/>"
        ),
        LegendItem::Crash => write!(
            svg,
            "<path d=\"M{:.1},{top:.1} l12,12 m0,-12 l-12,12\" stroke=\"#d00000\" \
             stroke-width=\"3\" fill=\"none\"/>",
            x + 7.0
        ),
        LegendItem::Down => write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\" stroke=\"#b0b0b0\" \
             stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>"
        ),
        LegendItem::Pause => write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"26\" height=\"12\" fill=\"url(#hatch)\" \
             stroke=\"#888888\"/>"
        ),
        LegendItem::Partition => write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"26\" height=\"12\" fill=\"#ff9900\" \
             fill-opacity=\"0.25\"/>"
        ),
        LegendItem::Leader => {
            // A strip of each term colour, since successive terms alternate among them.
            for (index, colour) in LEADER_COLOURS.iter().enumerate() {
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"7\" height=\"12\" fill=\"{colour}\"/>",
                    x + 6.5 * index as f64
                );
            }
            Ok(())
        }
        LegendItem::ClockJump => write!(
            svg,
            "<path d=\"M{:.1},{top:.1} l6,6 l-6,6 l-6,-6 z\" fill=\"#00897b\"/>",
            x + 13.0
        ),
        LegendItem::Violation => write!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d00000\" \
             stroke-width=\"2\"/>",
            x + 13.0,
            y - 8.0,
            x + 13.0,
            y + 8.0
        ),
    };
}
