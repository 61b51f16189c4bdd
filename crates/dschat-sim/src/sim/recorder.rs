//! What a run records: the clients' history (for the checkers), the cluster's trace (for the
//! space-time diagram), and counters (for the summary).

use dschat_core::raft::RoleKind;
use dschat_replica::RoleChange;
use serde_json::Value;

use super::config::Micros;
use super::network::Fate;
use crate::history::{Event, EventKind};
use crate::trace::{Trace, TraceEvent};

/// Bound on the messages kept for the diagram; later ones are counted, not kept.
pub const MAX_RECORDED_MESSAGES: usize = 2_000_000;

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages sent between nodes.
    pub messages_sent: u64,
    /// Of which lost.
    pub messages_lost: u64,
    /// Of which delivered twice.
    pub messages_duplicated: u64,
    /// Operations that completed `ok`.
    pub ok: u64,
    /// Operations that completed `fail`.
    pub fail: u64,
    /// Operations that completed `info` (indefinite).
    pub info: u64,
    /// Crashes (including power loss during a sync).
    pub crashes: u64,
    /// Latencies of acknowledged writes, µs.
    pub write_latencies: Vec<Micros>,
}

/// The recorder of one run.
#[derive(Debug)]
pub struct Recorder {
    /// The clients' history.
    pub history: Vec<Event>,
    /// Counters.
    pub counters: Counters,
    /// Notes (node, time, text) for the log of the run.
    pub notes: Vec<(Micros, Option<usize>, String)>,
    record_messages: bool,
    trace: Trace,
    /// Per node: since when it leads, and in which term.
    leading: Vec<Option<(Micros, u64)>>,
    /// Index of the open partition event in the trace.
    open_partition: Option<usize>,
    /// When a write was last acknowledged.
    pub last_write_ok: Option<Micros>,
}

impl Recorder {
    /// A recorder for `nodes` nodes; messages are kept only if `record_messages`.
    pub fn new(nodes: usize, record_messages: bool) -> Recorder {
        Recorder {
            history: Vec::new(),
            counters: Counters::default(),
            notes: Vec::new(),
            record_messages,
            trace: Trace {
                nodes: (1..=nodes as u64).collect(),
                events: Vec::new(),
            },
            leading: vec![None; nodes],
            open_partition: None,
            last_write_ok: None,
        }
    }

    /// Appends a history event.
    pub fn history(
        &mut self,
        process: u64,
        kind: EventKind,
        operation: &str,
        value: Value,
        now: Micros,
    ) {
        self.history.push(Event {
            process,
            kind,
            operation: operation.to_string(),
            value,
            time_ns: now * 1_000,
        });
    }

    /// Counts a completed operation.
    pub fn operation_done(
        &mut self,
        kind: EventKind,
        write: bool,
        invoked_at: Micros,
        now: Micros,
    ) {
        match kind {
            EventKind::Ok => {
                self.counters.ok += 1;
                if write {
                    self.last_write_ok = Some(now);
                    self.counters.write_latencies.push(now - invoked_at);
                }
            }
            EventKind::Fail => self.counters.fail += 1,
            EventKind::Info => self.counters.info += 1,
            EventKind::Invoke => {}
        }
    }

    /// Counts a message's fate.
    pub fn count_message(&mut self, fate: Fate) {
        self.counters.messages_sent += 1;
        match fate {
            Fate::Lost => self.counters.messages_lost += 1,
            Fate::Duplicated(..) => self.counters.messages_duplicated += 1,
            Fate::Delivered(_) => {}
        }
    }

    /// Records a message sent; returns its record (to complete on delivery) if kept.
    pub fn sent(
        &mut self,
        from: u64,
        to: u64,
        kind: &'static str,
        now: Micros,
        in_flight: bool,
    ) -> Option<usize> {
        if !self.record_messages || self.trace.events.len() >= MAX_RECORDED_MESSAGES {
            return None;
        }
        self.trace.events.push(TraceEvent::Message {
            from,
            to,
            kind: kind.to_string(),
            sent_us: now,
            received_us: None,
        });
        in_flight.then(|| self.trace.events.len() - 1)
    }

    /// A recorded message arrived.
    pub fn received(&mut self, record: Option<usize>, now: Micros) {
        if let Some(TraceEvent::Message { received_us, .. }) =
            record.and_then(|index| self.trace.events.get_mut(index))
        {
            *received_us = Some(now);
        }
    }

    /// A node went down.
    pub fn crash(&mut self, now: Micros, node: usize, why: &str) {
        self.counters.crashes += 1;
        self.end_leadership(now, node);
        self.trace.events.push(TraceEvent::Crash {
            node: node as u64 + 1,
            at_us: now,
        });
        self.note(now, node, why.to_string());
    }

    /// A node restarted.
    pub fn restart(&mut self, now: Micros, node: usize) {
        self.trace.events.push(TraceEvent::Restart {
            node: node as u64 + 1,
            at_us: now,
        });
        self.note(now, node, "restarted".into());
    }

    /// A node is stopped from `from` to `to`.
    pub fn pause(&mut self, node: usize, from: Micros, to: Micros) {
        self.trace.events.push(TraceEvent::Pause {
            node: node as u64 + 1,
            from_us: from,
            to_us: to,
        });
        self.note(from, node, format!("paused for {} ms", (to - from) / 1000));
    }

    /// Links were cut.
    pub fn partition_start(&mut self, now: Micros, cut: Vec<(u64, u64)>, description: String) {
        self.partition_end(now);
        self.note(now, usize::MAX, description.clone());
        self.trace.events.push(TraceEvent::Partition {
            from_us: now,
            to_us: None,
            cut,
            description,
        });
        self.open_partition = Some(self.trace.events.len() - 1);
    }

    /// Every link was healed.
    pub fn partition_end(&mut self, now: Micros) {
        if let Some(TraceEvent::Partition { to_us, .. }) = self
            .open_partition
            .take()
            .and_then(|index| self.trace.events.get_mut(index))
        {
            *to_us = Some(now);
        }
    }

    /// A node's clock jumped.
    pub fn clock_jump(&mut self, now: Micros, node: usize, delta_ms: i64, what: &str) {
        self.trace.events.push(TraceEvent::ClockJump {
            node: node as u64 + 1,
            at_us: now,
            delta_ms,
        });
        self.note(now, node, format!("clock {what} of {delta_ms:+} ms"));
    }

    /// A node's role changed.
    pub fn role_change(&mut self, now: Micros, node: usize, change: &RoleChange) {
        self.end_leadership(now, node);
        if change.role == RoleKind::Leader {
            self.leading[node] = Some((now, change.term.0));
            self.note(now, node, format!("became leader of term {}", change.term));
        }
    }

    fn end_leadership(&mut self, now: Micros, node: usize) {
        if let Some((since, term)) = self.leading[node].take() {
            self.trace.events.push(TraceEvent::Leader {
                node: node as u64 + 1,
                term,
                from_us: since,
                to_us: Some(now),
            });
        }
    }

    /// A check failed.
    pub fn violation(&mut self, now: Micros, text: &str) {
        self.trace.events.push(TraceEvent::Violation {
            at_us: now,
            description: text.to_string(),
        });
        self.note(now, usize::MAX, format!("VIOLATION: {text}"));
    }

    /// A line for the run's log; `node` is `usize::MAX` for the cluster as a whole.
    pub fn note(&mut self, now: Micros, node: usize, text: String) {
        let node = (node != usize::MAX).then_some(node);
        self.notes.push((now, node, text));
    }

    /// The trace; leaderships still open stay open-ended.
    pub fn finish_trace(&mut self) -> Trace {
        for node in 0..self.leading.len() {
            if let Some((since, term)) = self.leading[node].take() {
                self.trace.events.push(TraceEvent::Leader {
                    node: node as u64 + 1,
                    term,
                    from_us: since,
                    to_us: None,
                });
            }
        }
        std::mem::replace(
            &mut self.trace,
            Trace {
                nodes: Vec::new(),
                events: Vec::new(),
            },
        )
    }
}
