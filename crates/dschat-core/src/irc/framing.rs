//! Framing: from a stream of bytes to IRC lines, with a bound on the length of a line.
//!
//! A line ends with LF; a CR before it is dropped, and so are empty lines (some clients send
//! CR LF LF). A line whose tag section is longer than [`MAX_TAGS_BYTES`] or whose rest is
//! longer than [`MAX_LINE_BYTES`] (both counting the line ending) is dropped whole and
//! reported once as [`Frame::TooLong`]; the bytes of such a line are not kept while they
//! arrive, so a client that never sends LF costs at most the bound in memory.

use super::message::{MAX_LINE_BYTES, MAX_TAGS_BYTES};

/// Most bytes of one line the buffer holds before it gives up on the line.
pub const MAX_FRAME_BYTES: usize = MAX_TAGS_BYTES + MAX_LINE_BYTES;

/// What the buffer found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its line ending; its bytes may not be UTF-8.
    Line(Vec<u8>),
    /// A line past the limits was dropped.
    TooLong,
}

/// Collects bytes and hands out complete lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
    /// Bytes at the start of `pending` already searched for a line feed.
    scanned: usize,
    /// The current line went past [`MAX_FRAME_BYTES`]: drop bytes up to its end.
    discarding: bool,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// Bytes held for the line being received.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Adds bytes read from the connection. Call [`LineBuffer::next_frame`] until it returns
    /// `None` after each call.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete line (or report of a dropped one), if the bytes so far hold one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let Some(offset) = self.pending[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
            else {
                self.scanned = self.pending.len();
                if self.pending.len() > MAX_FRAME_BYTES {
                    self.pending.clear();
                    self.scanned = 0;
                    if !self.discarding {
                        self.discarding = true;
                        return Some(Frame::TooLong);
                    }
                }
                return None;
            };
            let end = self.scanned + offset;
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            self.scanned = 0;
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            if line.is_empty() {
                continue;
            }
            if !within_limits(&line) {
                return Some(Frame::TooLong);
            }
            return Some(Frame::Line(line));
        }
    }
}

/// Whether a line (without its ending) respects both the tag and the line limit.
fn within_limits(line: &[u8]) -> bool {
    let tags_bytes = if line.first() == Some(&b'@') {
        line.iter()
            .position(|&b| b == b' ')
            .map_or(line.len(), |space| space + 1)
    } else {
        0
    };
    tags_bytes <= MAX_TAGS_BYTES && line.len() - tags_bytes + 2 <= MAX_LINE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(buffer: &mut LineBuffer) -> Vec<Frame> {
        std::iter::from_fn(|| buffer.next_frame()).collect()
    }

    #[test]
    fn splits_lines_across_chunks() {
        let mut buffer = LineBuffer::new();
        buffer.push(b"NICK al");
        assert_eq!(frames(&mut buffer), vec![]);
        buffer.push(b"ice\r\n\r\nUSER a 0 * :A\nPI");
        assert_eq!(
            frames(&mut buffer),
            vec![
                Frame::Line(b"NICK alice".to_vec()),
                Frame::Line(b"USER a 0 * :A".to_vec())
            ]
        );
        assert_eq!(buffer.pending_bytes(), 2);
    }

    #[test]
    fn drops_overlong_lines_once_and_keeps_going() {
        let mut buffer = LineBuffer::new();
        let long = format!("PRIVMSG #a :{}\r\nPING x\r\n", "x".repeat(600));
        buffer.push(long.as_bytes());
        assert_eq!(
            frames(&mut buffer),
            vec![Frame::TooLong, Frame::Line(b"PING x".to_vec())]
        );
        // Exactly 512 bytes with CR LF is allowed; tags do not count.
        let fits = format!("@a={} P :{}\r\n", "t".repeat(100), "y".repeat(510 - 4));
        buffer.push(fits.as_bytes());
        assert!(matches!(frames(&mut buffer)[..], [Frame::Line(_)]));
        // A line with no end is dropped as it grows, and reported once.
        for _ in 0..20 {
            buffer.push(&[b'z'; 1000]);
        }
        assert_eq!(frames(&mut buffer), vec![Frame::TooLong]);
        assert!(buffer.pending_bytes() <= MAX_FRAME_BYTES);
        buffer.push(b"zzz\nPING y\n");
        assert_eq!(frames(&mut buffer), vec![Frame::Line(b"PING y".to_vec())]);
    }
}
