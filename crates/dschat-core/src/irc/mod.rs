//! The IRC wire format: messages ([`message`]) and the framing of a byte stream into lines
//! ([`framing`]).
//!
//! **The problem.** IRC clients and servers exchange lines of text: optional IRCv3 message
//! tags, an optional source, a command and up to fifteen parameters, the last of which may
//! contain spaces. RFC 1459 and RFC 2812 describe the grammar loosely; the living
//! documentation of the modern client protocol (and the IRCv3 message-tags specification)
//! settles the details that real clients rely on: several spaces between parameters, tag
//! value escaping, a 512-byte limit on the line without its tags and 8,191 bytes of tags.
//!
//! **The guarantee.** [`message::Message::parse`] never panics on any input and splits a
//! line exactly as the CC0 parser test vectors (irc-parser-tests, by Daniel Oaks) expect;
//! [`message::Message::to_line`] produces a line that parses back into the same message.
//! [`framing::LineBuffer`] turns arbitrary byte chunks into lines, with a named bound on the
//! length of a line and a defined behaviour past it (the line is dropped and reported), and
//! leaves the question of invalid UTF-8 to its caller (it hands out bytes).
//!
//! **How it is used.** The IRC front end in `dschat-server` reads bytes from a socket into a
//! `LineBuffer`, parses each line with `Message::parse`, and writes replies built as
//! `Message`s. Nothing here does I/O.
//!
//! **Known limitations.** The codec does not validate commands or their parameter counts;
//! that is the server's job. Tag keys are not checked against the vendor-prefix grammar.

pub mod framing;
pub mod message;

pub use framing::{Frame, LineBuffer};
pub use message::{Message, ParseError, Tag};
