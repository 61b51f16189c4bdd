//! # Histories: what the clients saw, as Jepsen records it
//!
//! **The problem.** A checker cannot look inside a distributed system; it can only judge what
//! its clients observed. So every client operation is recorded twice: once when the client
//! *invokes* it and once when the client learns how it *completed*, both stamped with one
//! monotonic clock (in the simulator, simulated time). The pair gives the operation's real-time
//! interval, which is all that linearizability (Herlihy and Wing, 1990) talks about.
//!
//! **The guarantee.** [`operations`] turns a flat list of [`Event`]s into completed
//! [`Operation`]s, or explains with a [`HistoryError`] why the list is not a well-formed
//! history. It never guesses: a completion without an invocation, a second invocation while one
//! is in flight for the same process, a completion naming another operation than its
//! invocation, or time running backwards are all errors.
//!
//! **How it works.** An [`Event`] has a [`EventKind`]:
//! - [`EventKind::Invoke`]: the client sent the request;
//! - [`EventKind::Ok`]: it definitely happened, with this result;
//! - [`EventKind::Fail`]: it definitely did *not* happen (the operation is dropped);
//! - [`EventKind::Info`]: the outcome is *indefinite* — a timeout, a lost connection. The
//!   operation may have taken effect, at any time after its invocation, or never. It is
//!   never counted as failed: its [`Operation::return_time_ns`] is `None` (infinitely late)
//!   and its [`Operation::output`] is `None` (unknown).
//!
//! An invocation still in flight when the history ends is treated like [`EventKind::Info`]:
//! a crashed client cannot know either. As in Jepsen, a client that got `Info` should continue
//! under a fresh process id; reusing the id is allowed, and the later operation is simply
//! concurrent with the indefinite one.
//!
//! The `operation` name and the free-form JSON `value` are decoded by the [`Model`] that will
//! judge the history ([`Model::decode_input`], [`Model::decode_output`]), so this module knows
//! nothing about registers or chat rooms.
//!
//! **The format** is JSON lines: one [`Event`] per line, fields in this order, `type` being one
//! of `invoke`, `ok`, `fail`, `info`. Blank lines are ignored. An example (a write and a
//! concurrent read of key 1 in the register model):
//!
//! ```text
//! {"process":0,"type":"invoke","operation":"write","value":{"key":1,"value":3},"time_ns":1000}
//! {"process":1,"type":"invoke","operation":"read","value":{"key":1},"time_ns":1500}
//! {"process":0,"type":"ok","operation":"write","value":null,"time_ns":2000}
//! {"process":1,"type":"ok","operation":"read","value":{"key":1,"value":3},"time_ns":2500}
//! ```
//!
//! **Limitations.** The whole history is held in memory. Times are trusted to come from one
//! clock; [`operations`] only checks that they never decrease.
//!
//! [`Model`]: crate::model::Model
//! [`Model::decode_input`]: crate::model::Model::decode_input
//! [`Model::decode_output`]: crate::model::Model::decode_output

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::model::{Model, ModelOperation};

/// Identifies one client (a Jepsen "process"): at most one operation in flight at a time.
pub type ProcessId = u64;

/// What an [`Event`] records about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The client invoked the operation.
    Invoke,
    /// The operation completed and definitely took effect.
    Ok,
    /// The operation completed and definitely did not take effect.
    Fail,
    /// The outcome is indefinite (a timeout): it may or may not have taken effect.
    Info,
}

/// One line of a history: an invocation or a completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The client that invoked or saw the completion.
    pub process: ProcessId,
    /// Invocation or which kind of completion.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The operation's name (Jepsen's `:f`), for example `read` or `claim`.
    pub operation: String,
    /// The operation's argument (on invoke) or result (on completion), decoded by the model.
    pub value: serde_json::Value,
    /// When it happened, in nanoseconds of the one monotonic (simulated) clock.
    pub time_ns: u64,
}

/// A completed operation: an invocation paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation<Input, Output> {
    /// The client that ran it.
    pub process: ProcessId,
    /// When it was invoked.
    pub call_time_ns: u64,
    /// When it completed; `None` for an indefinite outcome (infinitely late).
    pub return_time_ns: Option<u64>,
    /// The decoded argument.
    pub input: Input,
    /// The decoded result; `None` for an indefinite outcome (unknown).
    pub output: Option<Output>,
}

/// Why a list of events is not a well-formed history. `index` is the event's position
/// (0-based), which is its line number minus one in a file without blank lines.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A line could not be read as an [`Event`].
    #[error("line {line}: not a history event: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// Reading or writing the file failed.
    #[error("history I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A completion arrived for a process with nothing in flight.
    #[error("event {index}: process {process} completes an operation it never invoked")]
    CompletionWithoutInvoke {
        /// Position of the event.
        index: usize,
        /// The process.
        process: ProcessId,
    },
    /// A process invoked a second operation before the first completed.
    #[error("event {index}: process {process} invokes while an operation is in flight")]
    InvokeWhileInFlight {
        /// Position of the event.
        index: usize,
        /// The process.
        process: ProcessId,
    },
    /// The completion names another operation than the invocation it completes.
    #[error("event {index}: process {process} invoked {invoked:?} but completed {completed:?}")]
    OperationMismatch {
        /// Position of the event.
        index: usize,
        /// The process.
        process: ProcessId,
        /// The name on the invocation.
        invoked: String,
        /// The name on the completion.
        completed: String,
    },
    /// An event is stamped earlier than the one before it.
    #[error("event {index}: time {time_ns} ns is before the previous event's {previous_ns} ns")]
    TimeWentBackwards {
        /// Position of the event.
        index: usize,
        /// Its time.
        time_ns: u64,
        /// The previous event's time.
        previous_ns: u64,
    },
    /// The model could not decode an operation's name or value.
    #[error("event {index}: {message}")]
    Decode {
        /// Position of the event.
        index: usize,
        /// What the model said.
        message: String,
    },
}

/// Reads a JSON-lines history (see the module documentation for the format).
pub fn read_jsonl(reader: impl BufRead) -> Result<Vec<Event>, HistoryError> {
    let mut events = Vec::new();
    for (line_index, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|source| HistoryError::Parse {
            line: line_index + 1,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// Writes a history as JSON lines, one [`Event`] per line.
pub fn write_jsonl(mut writer: impl Write, events: &[Event]) -> Result<(), HistoryError> {
    for event in events {
        serde_json::to_writer(&mut writer, event).map_err(std::io::Error::from)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()?;
    Ok(())
}

/// An invocation waiting for its completion.
struct InFlight<Input> {
    index: usize,
    operation: String,
    call_time_ns: u64,
    input: Input,
}

/// Pairs invocations with completions, decodes them with `model`, drops failed operations and
/// returns the rest in invocation order. Invocations without a completion become indefinite.
pub fn operations<M: Model>(
    model: &M,
    events: &[Event],
) -> Result<Vec<ModelOperation<M>>, HistoryError> {
    // Keyed by invocation index, so the result is in invocation order.
    let mut completed: BTreeMap<usize, ModelOperation<M>> = BTreeMap::new();
    let mut in_flight: BTreeMap<ProcessId, InFlight<M::Input>> = BTreeMap::new();
    let mut previous_ns = 0;
    for (index, event) in events.iter().enumerate() {
        if event.time_ns < previous_ns {
            return Err(HistoryError::TimeWentBackwards {
                index,
                time_ns: event.time_ns,
                previous_ns,
            });
        }
        previous_ns = event.time_ns;
        let process = event.process;
        if event.kind == EventKind::Invoke {
            if in_flight.contains_key(&process) {
                return Err(HistoryError::InvokeWhileInFlight { index, process });
            }
            let input = model
                .decode_input(&event.operation, &event.value)
                .map_err(|message| HistoryError::Decode { index, message })?;
            let call = InFlight {
                index,
                operation: event.operation.clone(),
                call_time_ns: event.time_ns,
                input,
            };
            in_flight.insert(process, call);
            continue;
        }
        let call = in_flight
            .remove(&process)
            .ok_or(HistoryError::CompletionWithoutInvoke { index, process })?;
        let call_index = call.index;
        if let Some(operation) = complete(model, call, event, index)? {
            completed.insert(call_index, operation);
        }
    }
    for (process, call) in in_flight {
        let operation = Operation {
            process,
            call_time_ns: call.call_time_ns,
            return_time_ns: None,
            input: call.input,
            output: None,
        };
        completed.insert(call.index, operation);
    }
    Ok(completed.into_values().collect())
}

/// Pairs one invocation with its completion `event` (at position `index`); `None` if it failed.
fn complete<M: Model>(
    model: &M,
    call: InFlight<M::Input>,
    event: &Event,
    index: usize,
) -> Result<Option<ModelOperation<M>>, HistoryError> {
    if call.operation != event.operation {
        return Err(HistoryError::OperationMismatch {
            index,
            process: event.process,
            invoked: call.operation,
            completed: event.operation.clone(),
        });
    }
    let (return_time_ns, output) = match event.kind {
        EventKind::Ok => {
            let output = model
                .decode_output(&call.input, &event.value)
                .map_err(|message| HistoryError::Decode { index, message })?;
            (Some(event.time_ns), Some(output))
        }
        EventKind::Info => (None, None),
        EventKind::Fail | EventKind::Invoke => return Ok(None),
    };
    Ok(Some(Operation {
        process: event.process,
        call_time_ns: call.call_time_ns,
        return_time_ns,
        input: call.input,
        output,
    }))
}
