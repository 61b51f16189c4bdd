//! # Linearizability checking: the Wing–Gong–Lowe search
//!
//! **The problem.** A history is *linearizable* (Herlihy and Wing, 1990) if every operation
//! can be given a single instant between its invocation and its completion such that, taken in
//! the order of those instants, the results are exactly what the sequential [`Model`] would
//! return. Deciding this is NP-complete (Gibbons and Korach, 1997), so a checker searches, and
//! must be fast in the common case and honest when it gives up.
//!
//! **The guarantee.** [`check`] returns [`Verdict::Linearizable`] only if it found a
//! linearization of every partition, [`Verdict::NotLinearizable`] only if it proved none
//! exists, and [`Verdict::Unknown`] when the caller's budget of search steps ran out first —
//! never "linearizable" for a search it did not finish. The budget counts steps, not wall time,
//! so a verdict is the same on every machine and every run.
//!
//! **How it works.** This is the algorithm of Wing and Gong ("Testing and verifying concurrent
//! objects", 1993) with Lowe's memoisation ("Testing for linearizability", 2017), in the form
//! Porcupine (Athalye, 2017) and Horn and Kroening ("Faster linearizability checking via
//! P-compositionality", 2015) describe:
//! 1. [`Model::partition`] splits the history into independent sub-histories (one per key),
//!    each searched alone: the history is linearizable iff every partition is.
//! 2. Each operation becomes two entries, its call and its return, in an `EntryList`: a
//!    doubly linked list sorted by time (calls before returns at equal times, so touching
//!    operations count as concurrent). An indefinite operation's return sorts after everything.
//! 3. Walking the list from the front, a call entry is a candidate to linearize next: if
//!    [`Model::step`] accepts it, the search *lifts* its call and return out of the list,
//!    pushes it on a stack with the previous state, and starts again from the front. Reaching a
//!    return entry means that operation had to be linearized by now and was not: the search
//!    pops the last choice, *unlifts* it (dancing links: reinsertion in reverse order of
//!    removal), and tries the next candidate after it.
//! 4. A cache of (set of linearized operations as a `Bitset`, model state) prunes the search:
//!    two paths that linearized the same operations and reached the same state have the same
//!    future, so the second is not explored.
//! 5. An indefinite operation may be linearized anywhere after its call or not at all: the
//!    search succeeds as soon as every *completed* operation is linearized.
//!
//! On failure, [`Violation`] reports the partition, the longest prefix the search managed to
//! linearize, and the earliest-returning operation outside it — where to start reading.
//!
//! **Limitations.** Worst-case exponential, which is why the budget exists. Partitions are
//! searched one after another in the order the model returns them, sharing one budget. The
//! explanation is Porcupine's "longest linearizable prefix", not a minimal counterexample.

use std::collections::HashSet;

use crate::history::{operations, Event, HistoryError, Operation};
use crate::model::Model;

/// What the checker concluded about a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition has a linearization.
    Linearizable,
    /// Some partition has none; the first one found is described.
    NotLinearizable(Violation),
    /// The budget of search steps ran out before a verdict; nothing is known.
    Unknown {
        /// The partition whose search was cut short.
        partition: usize,
    },
}

/// Why a partition is not linearizable. Operations are indices into the checked slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which partition (in [`Model::partition`]'s order).
    pub partition: usize,
    /// The partition's operations.
    pub operations: Vec<usize>,
    /// The longest sequence of the partition's operations the search could linearize, in
    /// linearization order.
    pub longest_prefix: Vec<usize>,
    /// The completed operation outside that prefix that returned first: by its return, some
    /// operation had to be linearized and none could be.
    pub blocking_operation: Option<usize>,
}

/// Checks `operations` against `model`, spending at most `max_search_steps` steps of the search
/// (one step is one visit to a call or return entry) over all partitions.
pub fn check<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    max_search_steps: u64,
) -> Verdict {
    let mut steps_left = max_search_steps;
    for (partition, indices) in model.partition(operations).into_iter().enumerate() {
        let members: Vec<&Operation<M::Input, M::Output>> =
            indices.iter().map(|&index| &operations[index]).collect();
        match search_partition(model, &members, &mut steps_left) {
            PartitionOutcome::Linearizable => {}
            PartitionOutcome::OutOfBudget => return Verdict::Unknown { partition },
            PartitionOutcome::NotLinearizable { longest_prefix } => {
                let longest_prefix: Vec<usize> = longest_prefix
                    .into_iter()
                    .map(|local| indices[local])
                    .collect();
                let in_prefix: HashSet<usize> = longest_prefix.iter().copied().collect();
                let blocking_operation = indices
                    .iter()
                    .copied()
                    .filter(|index| !in_prefix.contains(index))
                    .filter_map(|index| operations[index].return_time_ns.map(|time| (time, index)))
                    .min()
                    .map(|(_, index)| index);
                return Verdict::NotLinearizable(Violation {
                    partition,
                    operations: indices,
                    longest_prefix,
                    blocking_operation,
                });
            }
        }
    }
    Verdict::Linearizable
}

/// Decodes `events` with `model` and checks them: [`operations`] then [`check`].
pub fn check_events<M: Model>(
    model: &M,
    events: &[Event],
    max_search_steps: u64,
) -> Result<Verdict, HistoryError> {
    let operations = operations(model, events)?;
    Ok(check(model, &operations, max_search_steps))
}

/// The result of searching one partition.
enum PartitionOutcome {
    Linearizable,
    NotLinearizable { longest_prefix: Vec<usize> },
    OutOfBudget,
}

/// A set of operation indices, hashable for the memoisation cache.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(size: usize) -> Bitset {
        Bitset(vec![0; size.div_ceil(64)])
    }

    fn set(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    fn clear(&mut self, index: usize) {
        self.0[index / 64] &= !(1 << (index % 64));
    }
}

/// Marks the end of the list (and the absence of a neighbour).
const NONE: usize = usize::MAX;

/// One call or return of an operation, linked to its neighbours in time order.
#[derive(Clone, Copy)]
struct Entry {
    operation: usize,
    is_call: bool,
    previous: usize,
    next: usize,
}

/// The calls and returns of one partition's not-yet-linearized operations, in time order.
/// Node 0 is a head sentinel; operation `i`'s entries are at `call_node[i]`, `return_node[i]`.
struct EntryList {
    nodes: Vec<Entry>,
    call_node: Vec<usize>,
    return_node: Vec<usize>,
}

impl EntryList {
    fn new<Input, Output>(operations: &[&Operation<Input, Output>]) -> EntryList {
        // Sort key: time, then calls (0) before returns (1) before indefinite returns (2).
        let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(2 * operations.len());
        for (index, operation) in operations.iter().enumerate() {
            order.push((operation.call_time_ns, 0, index, true));
            match operation.return_time_ns {
                Some(time) => order.push((time, 1, index, false)),
                None => order.push((u64::MAX, 2, index, false)),
            }
        }
        order.sort_unstable();
        let head = Entry {
            operation: NONE,
            is_call: false,
            previous: NONE,
            next: NONE,
        };
        let mut list = EntryList {
            nodes: vec![head],
            call_node: vec![NONE; operations.len()],
            return_node: vec![NONE; operations.len()],
        };
        for (_, _, operation, is_call) in order {
            let node = list.nodes.len();
            let previous = node - 1;
            list.nodes[previous].next = node;
            list.nodes.push(Entry {
                operation,
                is_call,
                previous,
                next: NONE,
            });
            if is_call {
                list.call_node[operation] = node;
            } else {
                list.return_node[operation] = node;
            }
        }
        list
    }

    fn first(&self) -> usize {
        self.nodes[0].next
    }

    fn remove(&mut self, node: usize) {
        let Entry { previous, next, .. } = self.nodes[node];
        self.nodes[previous].next = next;
        if next != NONE {
            self.nodes[next].previous = previous;
        }
    }

    fn reinsert(&mut self, node: usize) {
        let Entry { previous, next, .. } = self.nodes[node];
        self.nodes[previous].next = node;
        if next != NONE {
            self.nodes[next].previous = node;
        }
    }

    /// Takes an operation's call and return out of the list.
    fn lift(&mut self, operation: usize) {
        self.remove(self.call_node[operation]);
        self.remove(self.return_node[operation]);
    }

    /// Undoes the most recent [`EntryList::lift`] still in effect, which must be `operation`'s.
    fn unlift(&mut self, operation: usize) {
        self.reinsert(self.return_node[operation]);
        self.reinsert(self.call_node[operation]);
    }
}

/// The depth-first search over one partition (see the module documentation, steps 2 to 5).
fn search_partition<M: Model>(
    model: &M,
    operations: &[&Operation<M::Input, M::Output>],
    steps_left: &mut u64,
) -> PartitionOutcome {
    let mut list = EntryList::new(operations);
    let mut completed_left = operations
        .iter()
        .filter(|operation| operation.return_time_ns.is_some())
        .count();
    let mut state = model.initial_state();
    let mut linearized = Bitset::new(operations.len());
    let mut cache: HashSet<(Bitset, M::State)> = HashSet::new();
    // The operations linearized so far, in order, each with the state before it.
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut longest_prefix: Vec<usize> = Vec::new();
    let mut node = list.first();
    while completed_left > 0 {
        if *steps_left == 0 {
            return PartitionOutcome::OutOfBudget;
        }
        *steps_left -= 1;
        // While a completed operation is unlinearized its return is in the list, after every
        // call still there, so the walk meets a return before it runs off the end.
        assert!(node != NONE, "walked past every return entry");
        let entry = list.nodes[node];
        let operation = operations[entry.operation];
        if entry.is_call {
            if let Some(next_state) =
                model.step(&state, &operation.input, operation.output.as_ref())
            {
                linearized.set(entry.operation);
                if cache.insert((linearized.clone(), next_state.clone())) {
                    stack.push((entry.operation, std::mem::replace(&mut state, next_state)));
                    completed_left -= usize::from(operation.return_time_ns.is_some());
                    list.lift(entry.operation);
                    node = list.first();
                    continue;
                }
                linearized.clear(entry.operation);
            }
            node = entry.next;
            continue;
        }
        // A return: that operation had to be linearized by now. Undo the latest choice.
        if stack.len() > longest_prefix.len() {
            longest_prefix = stack.iter().map(|(operation, _)| *operation).collect();
        }
        let Some((undone, previous_state)) = stack.pop() else {
            return PartitionOutcome::NotLinearizable { longest_prefix };
        };
        state = previous_state;
        linearized.clear(undone);
        completed_left += usize::from(operations[undone].return_time_ns.is_some());
        list.unlift(undone);
        node = list.nodes[list.call_node[undone]].next;
    }
    PartitionOutcome::Linearizable
}
