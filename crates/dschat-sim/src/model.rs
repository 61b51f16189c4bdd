//! # Sequential specifications: what a correct object would have answered
//!
//! **The problem.** Linearizability is defined relative to a *sequential specification*: a
//! history is linearizable if its operations can be put in one order, consistent with real
//! time, in which every result is what a single copy of the object, applying them one at a
//! time, would have returned (Herlihy and Wing, "Linearizability: a correctness condition for
//! concurrent objects", 1990). This module holds those specifications.
//!
//! **The guarantee.** A [`Model`] is a pure, deterministic state machine:
//! [`Model::step`] says whether an operation with a given result is possible in a state, and
//! which state follows. Two models are provided:
//! - [`Register`]: a key-value store of registers with read, write and compare-and-set, each
//!   key starting absent;
//! - [`NameRegistry`]: dschat's unique-name claims (nicknames, room names): claiming a free
//!   name succeeds, claiming a taken one answers "taken". It is a linearizable
//!   compare-and-set from "free" to an owner.
//!
//! **How it works.** [`Model::partition`] exploits P-compositionality (Herlihy and Wing; used
//! for checking by Horn and Kroening, 2015, and by Porcupine): when operations on different
//! keys never interact, a history is linearizable if and only if each key's sub-history is,
//! so the checker searches each small partition instead of one huge one. Both models
//! partition by key (name). An indefinite operation is stepped with output `None`: the model
//! answers with the state *if* it took effect; the checker handles "or not at all" itself.
//!
//! **Limitations.** Values are `i64` and keys `u64` in the register; names and owners are
//! strings. A model must keep its state small and cheap to clone and hash: the checker
//! memoises (linearized set, state) pairs.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use serde::Deserialize;
use serde_json::Value;

use crate::history::Operation;

/// A sequential specification that the linearizability checker can judge a history against.
pub trait Model {
    /// The object's state. Memoised by the checker, so keep it small.
    type State: Clone + Eq + Hash + Debug;
    /// An operation's argument.
    type Input: Clone + Debug;
    /// An operation's result.
    type Output: Clone + Debug + PartialEq;

    /// The state before any operation.
    fn initial_state(&self) -> Self::State;

    /// The state after applying `input` in `state` and observing `output`, or `None` if that
    /// output is impossible there. `output` is `None` for an indefinite operation: return the
    /// state as if it took effect with any possible result (or `None` if it cannot take effect,
    /// which the checker treats as "it did not happen").
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Splits a history into independent sub-histories (indices into `operations`), each
    /// checked alone. The default is one partition holding everything.
    fn partition(&self, operations: &[Operation<Self::Input, Self::Output>]) -> Vec<Vec<usize>> {
        vec![(0..operations.len()).collect()]
    }

    /// Decodes an invocation's operation name and value into an input.
    fn decode_input(&self, operation: &str, value: &Value) -> Result<Self::Input, String>;

    /// Decodes a completion's value into an output, knowing the input it answers.
    fn decode_output(&self, input: &Self::Input, value: &Value) -> Result<Self::Output, String>;
}

/// A completed operation in the terms of model `M`.
pub type ModelOperation<M> = Operation<<M as Model>::Input, <M as Model>::Output>;

/// Groups operation indices by a key, in key order (so partitions come out deterministically).
fn partition_by<Input, Output, Key: Ord>(
    operations: &[Operation<Input, Output>],
    key: impl Fn(&Input) -> Key,
) -> Vec<Vec<usize>> {
    let mut by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (index, operation) in operations.iter().enumerate() {
        by_key.entry(key(&operation.input)).or_default().push(index);
    }
    by_key.into_values().collect()
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, value: &Value) -> Result<T, String> {
    T::deserialize(value).map_err(|error| format!("bad {what} value {value}: {error}"))
}

/// A key-value store of registers; every key starts absent (`None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

/// An operation on one key of a [`Register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    /// Read `key` (`read`, value `{"key":k}`).
    Read {
        /// The key.
        key: u64,
    },
    /// Set `key` to `value` (`write`, value `{"key":k,"value":v}`).
    Write {
        /// The key.
        key: u64,
        /// The new value.
        value: i64,
    },
    /// Set `key` to `new` if it holds `expected` (`cas`, value
    /// `{"key":k,"expected":e,"new":n}`; `expected` may be `null` for "absent"). A CAS whose
    /// comparison failed is recorded as `fail`: it did not happen.
    CompareAndSet {
        /// The key.
        key: u64,
        /// The value it must hold, `None` for absent.
        expected: Option<i64>,
        /// The value it gets.
        new: i64,
    },
}

impl RegisterInput {
    /// The key this operation touches.
    pub fn key(&self) -> u64 {
        match *self {
            RegisterInput::Read { key }
            | RegisterInput::Write { key, .. }
            | RegisterInput::CompareAndSet { key, .. } => key,
        }
    }
}

/// The result of a [`RegisterInput`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// A read saw this value (`{"key":k,"value":v}` with `v` possibly `null`).
    Read(Option<i64>),
    /// A write or successful compare-and-set (the completion's value is ignored).
    Done,
}

#[derive(Deserialize)]
struct KeyValue {
    key: u64,
    #[serde(default)]
    value: Option<i64>,
}

#[derive(Deserialize)]
struct KeyCompareAndSet {
    key: u64,
    expected: Option<i64>,
    new: i64,
}

impl Model for Register {
    /// The value of the one key of a partition.
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn initial_state(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Option<i64>> {
        match (*input, output) {
            (RegisterInput::Read { .. }, None) => Some(*state),
            (RegisterInput::Read { .. }, Some(RegisterOutput::Read(seen))) => {
                (seen == state).then_some(*state)
            }
            (RegisterInput::Write { value, .. }, None | Some(RegisterOutput::Done)) => {
                Some(Some(value))
            }
            (
                RegisterInput::CompareAndSet { expected, new, .. },
                None | Some(RegisterOutput::Done),
            ) => (expected == *state).then_some(Some(new)),
            _ => None,
        }
    }

    fn partition(
        &self,
        operations: &[Operation<RegisterInput, RegisterOutput>],
    ) -> Vec<Vec<usize>> {
        partition_by(operations, RegisterInput::key)
    }

    fn decode_input(&self, operation: &str, value: &Value) -> Result<RegisterInput, String> {
        match operation {
            "read" => {
                let KeyValue { key, .. } = decode("read", value)?;
                Ok(RegisterInput::Read { key })
            }
            "write" => match decode("write", value)? {
                KeyValue {
                    key,
                    value: Some(value),
                } => Ok(RegisterInput::Write { key, value }),
                KeyValue { value: None, .. } => Err("a write needs a value".to_string()),
            },
            "cas" => {
                let KeyCompareAndSet { key, expected, new } = decode("cas", value)?;
                Ok(RegisterInput::CompareAndSet { key, expected, new })
            }
            other => Err(format!("the register has no operation {other:?}")),
        }
    }

    fn decode_output(
        &self,
        input: &RegisterInput,
        value: &Value,
    ) -> Result<RegisterOutput, String> {
        match input {
            RegisterInput::Read { .. } => {
                let KeyValue { value, .. } = decode("read result", value)?;
                Ok(RegisterOutput::Read(value))
            }
            _ => Ok(RegisterOutput::Done),
        }
    }
}

/// dschat's registry of unique names: each name is free until its first successful claim.
#[derive(Clone, Copy, Debug, Default)]
pub struct NameRegistry;

/// A claim of `name` for `owner` (`claim`, value `{"name":n,"owner":o}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
pub struct Claim {
    /// The name claimed.
    pub name: String,
    /// Who claims it.
    pub owner: String,
}

/// The answer to a [`Claim`] (`{"result":"claimed"}` or `{"result":"taken"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimOutcome {
    /// The name was free and now belongs to the claimant.
    Claimed,
    /// The name already belonged to someone (possibly the claimant itself).
    Taken,
}

#[derive(Deserialize)]
struct ClaimResult {
    result: ClaimOutcome,
}

impl Model for NameRegistry {
    /// The owner of the one name of a partition, if claimed.
    type State = Option<String>;
    type Input = Claim;
    type Output = ClaimOutcome;

    fn initial_state(&self) -> Option<String> {
        None
    }

    fn step(
        &self,
        state: &Option<String>,
        claim: &Claim,
        output: Option<&ClaimOutcome>,
    ) -> Option<Option<String>> {
        match (state, output) {
            (None, None | Some(ClaimOutcome::Claimed)) => Some(Some(claim.owner.clone())),
            (Some(_), None | Some(ClaimOutcome::Taken)) => Some(state.clone()),
            (None, Some(ClaimOutcome::Taken)) | (Some(_), Some(ClaimOutcome::Claimed)) => None,
        }
    }

    fn partition(&self, operations: &[Operation<Claim, ClaimOutcome>]) -> Vec<Vec<usize>> {
        partition_by(operations, |claim: &Claim| claim.name.clone())
    }

    fn decode_input(&self, operation: &str, value: &Value) -> Result<Claim, String> {
        match operation {
            "claim" => decode("claim", value),
            other => Err(format!("the name registry has no operation {other:?}")),
        }
    }

    fn decode_output(&self, _claim: &Claim, value: &Value) -> Result<ClaimOutcome, String> {
        let ClaimResult { result } = decode("claim result", value)?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_reads_see_the_last_write_and_cas_compares() {
        let model = Register;
        let state = model.initial_state();
        let read_absent = RegisterOutput::Read(None);
        let read = RegisterInput::Read { key: 1 };
        assert_eq!(model.step(&state, &read, Some(&read_absent)), Some(None));
        let write = RegisterInput::Write { key: 1, value: 5 };
        let state = model
            .step(&state, &write, Some(&RegisterOutput::Done))
            .unwrap();
        assert_eq!(model.step(&state, &read, Some(&read_absent)), None);
        let cas = |expected| RegisterInput::CompareAndSet {
            key: 1,
            expected,
            new: 6,
        };
        assert_eq!(
            model.step(&state, &cas(Some(4)), Some(&RegisterOutput::Done)),
            None
        );
        assert_eq!(model.step(&state, &cas(Some(5)), None), Some(Some(6)));
    }

    #[test]
    fn a_name_is_claimed_once_then_taken() {
        let model = NameRegistry;
        let claim = Claim {
            name: "ada".into(),
            owner: "u1".into(),
        };
        let free = model.initial_state();
        assert_eq!(model.step(&free, &claim, Some(&ClaimOutcome::Taken)), None);
        let owned = model
            .step(&free, &claim, Some(&ClaimOutcome::Claimed))
            .unwrap();
        assert_eq!(
            model.step(&owned, &claim, Some(&ClaimOutcome::Claimed)),
            None
        );
        assert_eq!(
            model.step(&owned, &claim, Some(&ClaimOutcome::Taken)),
            Some(owned.clone())
        );
    }
}
