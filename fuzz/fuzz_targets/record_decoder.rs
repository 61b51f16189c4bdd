//! Fuzz target: the write-ahead log's record decoder on arbitrary bytes. It must never panic,
//! and whatever it accepts must encode back to the same frame.
#![no_main]

use dschat_storage::record::{decode_frame, frame_of, FrameOutcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let FrameOutcome::Complete {
        record,
        frame_bytes,
    } = decode_frame(bytes)
    {
        assert_eq!(frame_of(&record), bytes[..frame_bytes]);
    }
});
