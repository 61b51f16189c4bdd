//! Property tests of the record decoder: every encoded record decodes to itself, any prefix of a
//! frame is incomplete (a torn write), any single bit flip is caught, and arbitrary bytes never
//! make it panic.

use dschat_core::ids::{LogIndex, NodeId, Term};
use dschat_storage::record::{decode_frame, frame_of, FrameOutcome, HardState, Record};
use proptest::prelude::*;

fn hard_state() -> impl Strategy<Value = HardState> {
    (any::<u64>(), proptest::option::of(any::<u64>())).prop_map(|(term, vote)| HardState {
        term: Term(term),
        voted_for: vote.map(NodeId),
    })
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(index, term, payload)| Record::Entry {
                index: LogIndex(index),
                term: Term(term),
                payload,
            }),
        hard_state().prop_map(Record::HardState),
        (any::<u64>(), any::<u64>(), any::<bool>(), hard_state()).prop_map(
            |(index, term, starts_new_log, hard_state)| Record::SegmentHeader {
                previous_index: LogIndex(index),
                previous_term: Term(term),
                starts_new_log,
                hard_state,
            }
        ),
    ]
}

proptest! {
    #[test]
    fn an_encoded_record_decodes_to_itself(record in record(), trailing in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut bytes = frame_of(&record);
        let frame_bytes = bytes.len();
        bytes.extend(trailing);
        prop_assert_eq!(decode_frame(&bytes), FrameOutcome::Complete { record, frame_bytes });
    }

    #[test]
    fn every_proper_prefix_of_a_frame_is_incomplete(record in record(), cut in any::<prop::sample::Index>()) {
        let bytes = frame_of(&record);
        let cut = cut.index(bytes.len());
        prop_assert_eq!(decode_frame(&bytes[..cut]), FrameOutcome::Incomplete);
    }

    #[test]
    fn every_single_bit_flip_is_detected(record in record(), position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = frame_of(&record);
        let position = position.index(bytes.len());
        bytes[position] ^= 1 << bit;
        let outcome = decode_frame(&bytes);
        // Even a flip in the length field: the header checksum catches it before the length is
        // trusted (otherwise the frame could look torn and damage would pass for a crash).
        prop_assert!(matches!(outcome, FrameOutcome::Corrupt(_)), "{:?}", outcome);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_frame(&bytes);
    }
}
