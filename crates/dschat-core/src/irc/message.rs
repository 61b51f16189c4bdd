//! One IRC message: tags, source, command, parameters; parsed and serialised byte-exactly.
//!
//! The grammar (modern IRC client protocol, IRCv3 message-tags):
//!
//! ```text
//! message    = [ "@" tags SPACE ] [ ":" source SPACE ] command [ params ]
//! tags       = tag *( ";" tag )          tag = key [ "=" escaped-value ]
//! params     = *( SPACE middle ) [ SPACE ":" trailing ]
//! ```
//!
//! Like most servers and the test vectors, the parser accepts one or more spaces wherever
//! one is required. Tag values escape `;`, space, `\`, CR and LF as `\:`, `\s`, `\\`, `\r`,
//! `\n`; an unknown escape `\x` stands for `x` and a lone trailing `\` is dropped.

use std::fmt::Write as _;

/// Longest line without its tags, in bytes, counting the CR LF that ends it (RFC 1459).
pub const MAX_LINE_BYTES: usize = 512;
/// Longest tag section, in bytes, counting its `@` and the space after it (IRCv3).
pub const MAX_TAGS_BYTES: usize = 8_191;

/// One message tag. A tag sent without a value has an empty `value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The key, with its vendor prefix and client-only `+` if any.
    pub key: String,
    /// The unescaped value.
    pub value: String,
}

/// A parsed IRC message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Message tags, in the order they were sent.
    pub tags: Vec<Tag>,
    /// Where the message comes from (`nick!user@host` or a server name), without the colon.
    pub source: Option<String>,
    /// The command or three-digit numeric, as sent (case is the caller's business).
    pub command: String,
    /// The parameters, the trailing one (if any) last and without its colon.
    pub params: Vec<String>,
}

/// Why a line is not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line has no command.
    #[error("the line has no command")]
    NoCommand,
    /// The line has a tag section but nothing after it, or a source and nothing after it.
    #[error("the line ends before its command")]
    Truncated,
    /// The line contains NUL, or CR or LF before its end; none may appear in a message.
    #[error("the line contains NUL, CR or LF")]
    ForbiddenCharacter,
}

impl Message {
    /// A message with a command and parameters, no tags and no source.
    pub fn new(command: &str, params: &[&str]) -> Message {
        Message {
            tags: Vec::new(),
            source: None,
            command: command.to_string(),
            params: params.iter().map(|param| param.to_string()).collect(),
        }
    }

    /// This message with `source`.
    pub fn with_source(mut self, source: &str) -> Message {
        self.source = Some(source.to_string());
        self
    }

    /// This message with one more tag.
    pub fn with_tag(mut self, key: &str, value: &str) -> Message {
        self.tags.push(Tag {
            key: key.to_string(),
            value: value.to_string(),
        });
        self
    }

    /// The value of the tag `key`, if the message has it (the last one, if sent twice).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .rev()
            .find(|tag| tag.key == key)
            .map(|tag| tag.value.as_str())
    }

    /// Parses one line, without its line ending (a trailing CR or LF is tolerated).
    pub fn parse(line: &str) -> Result<Message, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.contains(['\0', '\r', '\n']) {
            return Err(ParseError::ForbiddenCharacter);
        }
        let mut rest = skip_spaces(line);
        let mut message = Message::default();
        if let Some(after_at) = rest.strip_prefix('@') {
            let (tags, after) = split_word(after_at);
            message.tags = parse_tags(tags);
            rest = skip_spaces(after);
            if rest.is_empty() {
                return Err(ParseError::Truncated);
            }
        }
        if let Some(after_colon) = rest.strip_prefix(':') {
            let (source, after) = split_word(after_colon);
            message.source = Some(source.to_string());
            rest = skip_spaces(after);
            if rest.is_empty() {
                return Err(ParseError::Truncated);
            }
        }
        let (command, mut rest) = split_word(skip_spaces(rest));
        if command.is_empty() || command.starts_with([':', '@']) {
            return Err(ParseError::NoCommand);
        }
        message.command = command.to_string();
        loop {
            rest = skip_spaces(rest);
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                message.params.push(trailing.to_string());
                break;
            }
            let (middle, after) = split_word(rest);
            message.params.push(middle.to_string());
            rest = after;
        }
        Ok(message)
    }

    /// The message as one line, without CR LF. The last parameter is sent as a trailing one
    /// (with a colon) when it must be: empty, containing a space, or starting with a colon.
    /// A middle parameter that could not be sent as such is the caller's bug; it is sent as
    /// the trailing parameter and the parameters after it are dropped, so the line still
    /// parses (the server never builds one).
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(64);
        self.write_line(&mut line);
        line
    }

    /// Appends [`Message::to_line`] to `line`.
    pub fn write_line(&self, line: &mut String) {
        self.write_line_with(line, false);
    }

    /// Appends the line to `line`; with `always_trailing`, the last parameter is sent as a
    /// trailing one even when it need not be (as servers do for free text, which some
    /// clients expect).
    pub fn write_line_with(&self, line: &mut String, always_trailing: bool) {
        if !self.tags.is_empty() {
            line.push('@');
            for (position, tag) in self.tags.iter().enumerate() {
                if position > 0 {
                    line.push(';');
                }
                line.push_str(&tag.key);
                if !tag.value.is_empty() {
                    line.push('=');
                    escape_tag_value(&tag.value, line);
                }
            }
            line.push(' ');
        }
        if let Some(source) = &self.source {
            let _ = write!(line, ":{source} ");
        }
        line.push_str(&self.command);
        for (position, param) in self.params.iter().enumerate() {
            line.push(' ');
            let last = position + 1 == self.params.len();
            if needs_trailing(param) || (last && always_trailing) {
                line.push(':');
                line.push_str(param);
                break;
            }
            line.push_str(param);
        }
    }
}

/// Whether a parameter can only be sent as the trailing one.
fn needs_trailing(param: &str) -> bool {
    param.is_empty() || param.contains(' ') || param.starts_with(':')
}

fn split_word(text: &str) -> (&str, &str) {
    match text.find(' ') {
        Some(end) => (&text[..end], &text[end..]),
        None => (text, ""),
    }
}

fn skip_spaces(text: &str) -> &str {
    text.trim_start_matches(' ')
}

fn parse_tags(section: &str) -> Vec<Tag> {
    section
        .split(';')
        .filter(|tag| !tag.is_empty())
        .map(|tag| match tag.split_once('=') {
            Some((key, value)) => Tag {
                key: key.to_string(),
                value: unescape_tag_value(value),
            },
            None => Tag {
                key: tag.to_string(),
                value: String::new(),
            },
        })
        .filter(|tag| !tag.key.is_empty())
        .collect()
}

/// Undoes IRCv3 tag value escaping.
pub fn unescape_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// IRCv3 tag value escaping, appended to `out`.
pub fn escape_tag_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_full_message() {
        let message = Message::new("PRIVMSG", &["#dschat", "hello there"])
            .with_source("alice!alice@dschat")
            .with_tag("time", "2026-01-01T00:00:00.000Z")
            .with_tag("+draft/reply", "a;b c\\d");
        let line = message.to_line();
        assert_eq!(
            line,
            "@time=2026-01-01T00:00:00.000Z;+draft/reply=a\\:b\\sc\\\\d \
             :alice!alice@dschat PRIVMSG #dschat :hello there"
        );
        assert_eq!(Message::parse(&line), Ok(message));
    }

    #[test]
    fn refuses_lines_without_a_command() {
        assert_eq!(Message::parse(""), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("   "), Err(ParseError::NoCommand));
        assert_eq!(Message::parse(":source"), Err(ParseError::Truncated));
        assert_eq!(Message::parse("@a=b"), Err(ParseError::Truncated));
        assert_eq!(
            Message::parse("A b\rc"),
            Err(ParseError::ForbiddenCharacter)
        );
        assert_eq!(Message::parse("A b\0"), Err(ParseError::ForbiddenCharacter));
    }

    #[test]
    fn empty_and_colon_parameters_go_last_with_a_colon() {
        assert_eq!(Message::new("TOPIC", &["#a", ""]).to_line(), "TOPIC #a :");
        assert_eq!(Message::new("X", &[":)"]).to_line(), "X ::)");
        assert_eq!(Message::new("PING", &["x"]).to_line(), "PING x");
        let mut line = String::new();
        Message::new("PRIVMSG", &["#a", "x"]).write_line_with(&mut line, true);
        assert_eq!(line, "PRIVMSG #a :x");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What the parser accepts, the serialiser writes back as a line that parses into the
        /// same message; and no input makes the parser panic. (The fuzz target
        /// `fuzz/fuzz_targets/irc_message.rs` checks the same with libFuzzer.)
        #[test]
        fn parsed_messages_survive_a_round_trip(line in "[@:; a-zA-Z0-9=\\\\\r\u{e9}]{0,40}") {
            if let Ok(message) = Message::parse(&line) {
                let written = message.to_line();
                prop_assert_eq!(Message::parse(&written), Ok(message), "{:?} -> {:?}", line, written);
            }
        }
    }
}
