//! Fuzz target: the record body parser behind the checksums (`decode_body`), which the frame
//! target rarely reaches because random bytes almost never pass a CRC32C. It must never panic,
//! and whatever it accepts must encode back to the same body.
#![no_main]

use dschat_storage::record::{decode_body, frame_of, FRAME_HEADER_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(record) = decode_body(body) {
        assert_eq!(frame_of(&record)[FRAME_HEADER_BYTES..], *body);
    }
});
