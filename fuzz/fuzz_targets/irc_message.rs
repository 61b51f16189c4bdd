//! Fuzz target: the IRC front end's input path (`dschat_core::irc`). Arbitrary bytes go
//! through the line framing and the message parser, as a client's bytes do. Nothing may
//! panic, every line handed out respects the limits, and every message the parser accepts
//! serialises into a line that parses back into the same message.
#![no_main]

use dschat_core::irc::framing::{Frame, MAX_FRAME_BYTES};
use dschat_core::irc::{LineBuffer, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut buffer = LineBuffer::new();
    // Feed in two chunks, so a line split across reads is exercised too.
    let (first, second) = bytes.split_at(bytes.len() / 2);
    for chunk in [first, second] {
        buffer.push(chunk);
        while let Some(frame) = buffer.next_frame() {
            if let Frame::Line(line) = frame {
                assert!(line.len() <= MAX_FRAME_BYTES);
                let text = String::from_utf8_lossy(&line);
                if let Ok(message) = Message::parse(&text) {
                    let written = message.to_line();
                    assert_eq!(Message::parse(&written), Ok(message));
                }
            }
        }
        assert!(buffer.pending_bytes() <= MAX_FRAME_BYTES + chunk.len());
    }
});
