//! Safety properties checked while the simulation runs, after every step that touched a node
//! (Raft paper, figure 3): election safety (at most one leader per term), state machine
//! safety (no two nodes apply different entries at one index, so committed entries never
//! change), log matching against what was committed, each node's own invariants
//! (`Node::check_invariants`), equal state digests at equal applied indices, and hybrid
//! clocks causal along the log (TESTING.md row 18): every command is stamped later than
//! every command before it in the log, since the leader that proposed it held them all.
//!
//! The costlier checks (a node's whole log) run every 64th step; the others every step.

use std::collections::HashMap;

use dschat_core::clock::hybrid::HybridTimestamp;
use dschat_core::ids::{LogIndex, Term};
use dschat_replica::{AppliedEntry, Replica};

use super::config::Micros;
use super::recorder::Recorder;

/// What has been seen so far, and the violations found.
#[derive(Debug, Default)]
pub struct Invariants {
    /// The leader of each term seen.
    leaders: HashMap<Term, usize>,
    /// The term of the entry applied at each index (index 0 unused).
    committed_terms: Vec<Term>,
    /// The first digest reported at each index, and by whom.
    digests: HashMap<LogIndex, ([u8; 32], usize)>,
    /// Per node, the index and server time of the last command it applied.
    last_stamped: HashMap<usize, (LogIndex, HybridTimestamp)>,
    /// Violations found: when, and what.
    pub violations: Vec<(Micros, String)>,
    /// How many individual checks ran.
    pub checks: u64,
}

impl Invariants {
    /// Whether a violation was found.
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    fn violate(&mut self, now: Micros, text: String, recorder: &mut Recorder) {
        recorder.violation(now, &text);
        self.violations.push((now, text));
    }

    /// Node `node` became leader of `term`.
    pub fn on_leader(&mut self, now: Micros, node: usize, term: Term, recorder: &mut Recorder) {
        self.checks += 1;
        match self.leaders.get(&term) {
            Some(&other) if other != node => self.violate(
                now,
                format!(
                    "election safety: n{} and n{} both lead term {term}",
                    other + 1,
                    node + 1
                ),
                recorder,
            ),
            _ => {
                self.leaders.insert(term, node);
            }
        }
    }

    /// Node `node` applied these entries.
    pub fn on_applied(
        &mut self,
        now: Micros,
        node: usize,
        applied: &[AppliedEntry],
        recorder: &mut Recorder,
    ) {
        for entry in applied {
            self.checks += 1;
            self.check_stamp(now, node, entry, recorder);
            let index = entry.index.0 as usize;
            if index >= self.committed_terms.len() {
                self.committed_terms.resize(index + 1, Term(0));
                self.committed_terms[index] = entry.term;
                continue;
            }
            let known = self.committed_terms[index];
            if known == Term(0) && index > 1 {
                self.committed_terms[index] = entry.term;
            } else if known != entry.term && index > 1 {
                self.violate(
                    now,
                    format!(
                        "state machine safety: n{} applied entry {index} of term {}, but an entry of term {known} was applied there before",
                        node + 1,
                        entry.term
                    ),
                    recorder,
                );
            }
        }
    }

    /// Hybrid clocks are causal along the log (TESTING.md row 18): a command's server time
    /// exceeds that of the command applied before it. A node that applies an index at or
    /// below its last (replaying after a restart) starts the comparison afresh.
    fn check_stamp(
        &mut self,
        now: Micros,
        node: usize,
        entry: &AppliedEntry,
        recorder: &mut Recorder,
    ) {
        let Some(time) = entry.time else {
            return;
        };
        if let Some(&(before, earlier)) = self.last_stamped.get(&node) {
            if entry.index > before && time <= earlier {
                self.violate(
                    now,
                    format!(
                        "hybrid clock causality: n{} applied entry {} stamped {}.{}, not after \
                         entry {before} before it in the log, stamped {}.{}",
                        node + 1,
                        entry.index,
                        time.wall_ms,
                        time.logical,
                        earlier.wall_ms,
                        earlier.logical
                    ),
                    recorder,
                );
            }
        }
        self.last_stamped.insert(node, (entry.index, time));
    }

    /// Node `node` reported these state digests.
    pub fn on_digests(
        &mut self,
        now: Micros,
        node: usize,
        digests: &[(LogIndex, [u8; 32])],
        recorder: &mut Recorder,
    ) {
        for (index, digest) in digests {
            self.checks += 1;
            match self.digests.get(index) {
                Some((first, other)) if first != digest => {
                    let other = *other;
                    self.violate(
                        now,
                        format!(
                            "replica divergence: n{} and n{} hold different states at applied index {index}",
                            other + 1,
                            node + 1
                        ),
                        recorder,
                    )
                }
                Some(_) => {}
                None => {
                    self.digests.insert(*index, (*digest, node));
                }
            }
        }
    }

    /// Checks one node after a step; `heavy` adds its whole log.
    pub fn check_node(
        &mut self,
        now: Micros,
        node: usize,
        replica: &Replica,
        heavy: bool,
        recorder: &mut Recorder,
    ) {
        if !heavy {
            return;
        }
        self.checks += 1;
        let raft = replica.raft();
        if let Err(broken) = raft.check_invariants() {
            self.violate(
                now,
                format!("n{}: raft invariant broken: {broken}", node + 1),
                recorder,
            );
            return;
        }
        let commit = raft.status().commit_index;
        for entry in raft.log().entries() {
            if entry.index > commit {
                break;
            }
            let index = entry.index.0 as usize;
            let known = self.committed_terms.get(index).copied().unwrap_or(Term(0));
            if known != Term(0) && known != entry.term && index > 1 {
                self.violate(
                    now,
                    format!(
                        "log matching: n{}'s committed entry {index} has term {}, but term {known} was applied there",
                        node + 1,
                        entry.term
                    ),
                    recorder,
                );
                return;
            }
        }
    }
}
