//! # Traces: what the cluster did, recorded for drawing
//!
//! **The problem.** A [history](crate::history) says what the *clients* saw, which is what a
//! checker judges. When a checker fails, a reader needs the other half: which node sent what to
//! whom and when, which messages were lost, who crashed, who was partitioned from whom, and who
//! led which term. That is what a space-time diagram (Lamport, "Time, clocks, and the ordering
//! of events in a distributed system", 1978) shows, and a [`Trace`] is its input.
//!
//! **The guarantee.** A [`Trace`] is plain data: the simulator appends [`TraceEvent`]s as
//! they happen, in simulated microseconds of its one clock, and nothing here interprets them
//! beyond [`Trace::end_us`] and [`Trace::failing_window`]. Writing a trace with
//! [`Trace::write_jsonl`] and reading it back with [`Trace::read_jsonl`] gives an equal trace.
//!
//! **How it works.** A [`Trace`] lists the cluster's node ids and its events. Each event is
//! either a point in time ([`TraceEvent::Crash`], [`TraceEvent::Restart`],
//! [`TraceEvent::ClockJump`], [`TraceEvent::Violation`]), an interval
//! ([`TraceEvent::Pause`], [`TraceEvent::Partition`], [`TraceEvent::Leader`]; the latter two
//! may be open-ended, lasting until the end of the run), or a [`TraceEvent::Message`] from a
//! sender's send time to a receiver's receive time, with no receive time when the message was
//! lost. [`crate::diagram::render_svg`] draws a trace.
//!
//! **The format** is JSON lines. The first line holds the node ids, `{"nodes":[1,2,3]}`; each
//! further line is one event, an object whose `type` is the variant's name in snake case
//! (`message`, `crash`, `restart`, `pause`, `partition`, `leader`, `clock_jump`,
//! `violation`) and whose other fields are the variant's, an absent time being `null` and a
//! cut link a two-element array `[from, to]`. Blank lines are ignored. An example:
//!
//! ```text
//! {"nodes":[1,2,3]}
//! {"type":"leader","node":1,"term":2,"from_us":1000,"to_us":null}
//! {"type":"message","from":1,"to":2,"kind":"Heartbeat","sent_us":1500,"received_us":1800}
//! {"type":"partition","from_us":2000,"to_us":5000,"cut":[[1,3],[3,1]],"description":"n3 alone"}
//! {"type":"message","from":1,"to":3,"kind":"Heartbeat","sent_us":2500,"received_us":null}
//! {"type":"violation","at_us":4000,"description":"stale read of key 1"}
//! ```
//!
//! **Limitations.** The whole trace is held in memory. Message kinds are free-form strings
//! (the simulator uses the Raft message names, such as `LogRequest`), so a typo is not caught
//! here; the diagram just gives the unknown kind its own colour.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// What the simulator recorded about the cluster during one run.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Trace {
    /// The cluster's node ids, in the order the diagram draws them (top to bottom).
    pub nodes: Vec<u64>,
    /// What happened, in the order the simulator recorded it.
    pub events: Vec<TraceEvent>,
}

/// One thing that happened in the cluster; all times are simulated microseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A message between nodes; `received_us` None = lost (dropped, cut link, receiver down).
    Message {
        /// The sending node.
        from: u64,
        /// The node it was addressed to.
        to: u64,
        /// The message's kind, for example `LogRequest` or `PreVoteResponse`.
        kind: String,
        /// When the sender sent it.
        sent_us: u64,
        /// When the receiver received it; `None` if it never did.
        received_us: Option<u64>,
    },
    /// A node crashed: it lost its volatile state and stopped until a [`TraceEvent::Restart`].
    Crash {
        /// The node that crashed.
        node: u64,
        /// When.
        at_us: u64,
    },
    /// A crashed node started again from its durable state.
    Restart {
        /// The node that restarted.
        node: u64,
        /// When.
        at_us: u64,
    },
    /// A node was paused (a stop-the-world pause): it kept its state but did nothing.
    Pause {
        /// The paused node.
        node: u64,
        /// When the pause began.
        from_us: u64,
        /// When the node resumed.
        to_us: u64,
    },
    /// Directed links from->to cut during [from_us, to_us) (to_us None = until the end).
    Partition {
        /// When the links were cut.
        from_us: u64,
        /// When they were healed; `None` if never.
        to_us: Option<u64>,
        /// The cut links, each `(sender, receiver)`: messages from sender to receiver are lost.
        cut: Vec<(u64, u64)>,
        /// What the partition was, in words, for example `{n1, n2} | {n3, n4, n5}`.
        description: String,
    },
    /// `node` led `term` during [from_us, to_us).
    Leader {
        /// The leader.
        node: u64,
        /// The term it led.
        term: u64,
        /// When it became leader.
        from_us: u64,
        /// When it stopped being leader; `None` if it still was at the end.
        to_us: Option<u64>,
    },
    /// A node's clock jumped by `delta_ms` (forwards if positive) relative to simulated time.
    ClockJump {
        /// The node whose clock jumped.
        node: u64,
        /// When, in simulated time.
        at_us: u64,
        /// How far the clock jumped, in milliseconds.
        delta_ms: i64,
    },
    /// Where a checker or invariant failed.
    Violation {
        /// When the failure was observed.
        at_us: u64,
        /// What failed, in words.
        description: String,
    },
}

/// Why a JSON-lines trace could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A line could not be read as the header or as a [`TraceEvent`]: fix the file.
    #[error("line {line}: not a trace line: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// The input had no header line listing the nodes: fix the file.
    #[error("trace has no {{\"nodes\":[...]}} header line")]
    MissingHeader,
    /// Reading or writing failed.
    #[error("trace I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The first line of a JSON-lines trace.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    nodes: Vec<u64>,
}

impl TraceEvent {
    /// The earliest and latest times this event mentions (equal for a point event).
    pub(crate) fn time_span_us(&self) -> (u64, u64) {
        match self {
            TraceEvent::Message {
                sent_us,
                received_us,
                ..
            } => (*sent_us, received_us.unwrap_or(*sent_us).max(*sent_us)),
            TraceEvent::Crash { at_us, .. }
            | TraceEvent::Restart { at_us, .. }
            | TraceEvent::ClockJump { at_us, .. }
            | TraceEvent::Violation { at_us, .. } => (*at_us, *at_us),
            TraceEvent::Pause { from_us, to_us, .. } => (*from_us, (*to_us).max(*from_us)),
            TraceEvent::Partition { from_us, to_us, .. }
            | TraceEvent::Leader { from_us, to_us, .. } => {
                (*from_us, to_us.unwrap_or(*from_us).max(*from_us))
            }
        }
    }
}

impl Trace {
    /// The latest time any event mentions, 0 for a trace without events. An open-ended
    /// interval counts with its start only.
    pub fn end_us(&self) -> u64 {
        let latest = self.events.iter().map(|event| event.time_span_us().1);
        latest.max().unwrap_or(0)
    }

    /// The window `(start_us, end_us)` to look at when a check failed: it ends a tenth of
    /// `before_us` (at least 1 µs) after the earliest [`TraceEvent::Violation`], so the
    /// violation is not drawn on the window's edge, and starts `before_us` before the
    /// violation, clamped at 0. `None` if the trace has no violation.
    pub fn failing_window(&self, before_us: u64) -> Option<(u64, u64)> {
        let first_violation_us = self
            .events
            .iter()
            .filter_map(|event| match event {
                TraceEvent::Violation { at_us, .. } => Some(*at_us),
                _ => None,
            })
            .min()?;
        let after_us = (before_us / 10).max(1);
        Some((
            first_violation_us.saturating_sub(before_us),
            first_violation_us.saturating_add(after_us),
        ))
    }

    /// Writes the trace as JSON lines (see the module documentation for the format).
    pub fn write_jsonl(&self, mut writer: impl Write) -> Result<(), TraceError> {
        let header = Header {
            nodes: self.nodes.clone(),
        };
        serde_json::to_writer(&mut writer, &header).map_err(std::io::Error::from)?;
        writer.write_all(b"\n")?;
        for event in &self.events {
            serde_json::to_writer(&mut writer, event).map_err(std::io::Error::from)?;
            writer.write_all(b"\n")?;
        }
        writer.flush()?;
        Ok(())
    }

    /// Reads a JSON-lines trace (see the module documentation for the format).
    pub fn read_jsonl(reader: impl BufRead) -> Result<Trace, TraceError> {
        let mut nodes = None;
        let mut events = Vec::new();
        for (line_index, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let parse_error = |source| TraceError::Parse {
                line: line_index + 1,
                source,
            };
            if nodes.is_none() {
                let header: Header = serde_json::from_str(&line).map_err(parse_error)?;
                nodes = Some(header.nodes);
            } else {
                events.push(serde_json::from_str(&line).map_err(parse_error)?);
            }
        }
        let nodes = nodes.ok_or(TraceError::MissingHeader)?;
        Ok(Trace { nodes, events })
    }
}
