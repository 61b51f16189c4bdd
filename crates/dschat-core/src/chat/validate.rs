//! The rules for names and texts, applied inside the state machine so that every replica
//! refuses the same commands. Front ends may apply stricter (configurable) limits first.

use super::command::ChatError;

/// Longest nickname, in characters (IRC servers commonly allow 30).
pub const MAX_NICKNAME_CHARS: usize = 30;
/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 50;
/// Longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 1_024;
/// Longest message body the state machine accepts, in bytes. Front ends default lower.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most rooms that guest posts (the original class project's `POST /send`) may create.
pub const MAX_GUEST_ROOMS: usize = 1_000;
/// Longest guest name or email, in characters.
pub const MAX_GUEST_FIELD_CHARS: usize = 100;
/// Longest away message, in bytes (IRC's `AWAYLEN`).
pub const MAX_AWAY_BYTES: usize = 200;

fn invalid(field: &str, reason: impl Into<String>) -> ChatError {
    ChatError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// A nickname as IRC allows it: a letter or one of `[]\`_^{|}` first, then also digits and `-`.
pub fn nickname(nickname: &str) -> Result<(), ChatError> {
    let special = |c: char| "[]\\`_^{|}".contains(c);
    let mut chars = nickname.chars();
    match chars.next() {
        None => return Err(invalid("nickname", "must not be empty")),
        Some(first) if !(first.is_ascii_alphabetic() || special(first)) => {
            return Err(invalid(
                "nickname",
                "must start with a letter or one of []\\`_^{|}",
            ))
        }
        _ => {}
    }
    if nickname.chars().count() > MAX_NICKNAME_CHARS {
        return Err(invalid(
            "nickname",
            format!("at most {MAX_NICKNAME_CHARS} characters"),
        ));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || special(c)) {
        return Err(invalid(
            "nickname",
            "only letters, digits, - and []\\`_^{|} are allowed",
        ));
    }
    Ok(())
}

/// A room name: letters, digits, `-`, `_` and `.`, not starting with `.` or `-`.
pub fn room_name(name: &str) -> Result<(), ChatError> {
    if name.is_empty() {
        return Err(invalid("room name", "must not be empty"));
    }
    if name.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(invalid(
            "room name",
            format!("at most {MAX_ROOM_NAME_CHARS} characters"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(invalid(
            "room name",
            "only letters, digits, -, _ and . are allowed",
        ));
    }
    if name.starts_with(['.', '-']) {
        return Err(invalid("room name", "must start with a letter, digit or _"));
    }
    Ok(())
}

/// The key under which names are unique: ASCII lowercase (IRC's `ascii` case mapping).
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A message body: not blank, within [`MAX_BODY_BYTES`], no control characters but newline and tab.
pub fn body(body: &str) -> Result<(), ChatError> {
    if body.trim().is_empty() {
        return Err(invalid("body", "must not be empty"));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid("body", format!("at most {MAX_BODY_BYTES} bytes")));
    }
    text_characters("body", body)
}

/// A topic: within [`MAX_TOPIC_BYTES`], one line.
pub fn topic(topic: &str) -> Result<(), ChatError> {
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(invalid("topic", format!("at most {MAX_TOPIC_BYTES} bytes")));
    }
    if topic.contains(['\n', '\r']) {
        return Err(invalid("topic", "must be one line"));
    }
    text_characters("topic", topic)
}

/// An away message: not empty (an empty one means "back"), within [`MAX_AWAY_BYTES`], no
/// control characters.
pub fn away_message(message: &str) -> Result<(), ChatError> {
    if message.is_empty() {
        return Err(invalid("away", "must not be empty; send none to come back"));
    }
    if message.len() > MAX_AWAY_BYTES {
        return Err(invalid("away", format!("at most {MAX_AWAY_BYTES} bytes")));
    }
    if message.chars().any(char::is_control) {
        return Err(invalid("away", "must not contain control characters"));
    }
    Ok(())
}

/// A guest's self-declared name or email: one line, bounded.
pub fn guest_field(field: &str, value: &str) -> Result<(), ChatError> {
    if value.chars().count() > MAX_GUEST_FIELD_CHARS {
        return Err(invalid(
            field,
            format!("at most {MAX_GUEST_FIELD_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// The checks of a command's fields that need no state: every front end runs them before a
/// command reaches the log, so a malformed command costs no log entry. (The state machine
/// runs them again, with the checks that need state.)
pub fn command_fields(command: &super::command::Command) -> Result<(), ChatError> {
    use super::command::Command;
    match command {
        Command::Register { nickname: name, .. } => nickname(name),
        Command::CreateRoom {
            name, topic: text, ..
        } => room_name(name).and_then(|()| topic(text)),
        Command::SetTopic { topic: text, .. } => topic(text),
        Command::Post { body: text, .. }
        | Command::SendDirect { body: text, .. }
        | Command::Edit { body: text, .. } => body(text),
        Command::PostGuest {
            room_name: room,
            name,
            email,
            body: text,
        } => room_name(room)
            .and_then(|()| guest_field("name", name))
            .and_then(|()| guest_field("email", email))
            .and_then(|()| body(text)),
        Command::SetRoomModes { changes, .. } => super::moderation::check_mode_changes(changes),
        Command::JoinRoomWithKey { key, .. } => super::moderation::key_text(key),
        Command::Kick { reason, .. } if reason.len() > super::moderation::MAX_KICK_REASON_BYTES => {
            Err(ChatError::Invalid {
                field: "reason".into(),
                reason: format!("at most {} bytes", super::moderation::MAX_KICK_REASON_BYTES),
            })
        }
        Command::Kick { .. } | Command::Invite { .. } => Ok(()),
        Command::SetAway { message, .. } => message.as_deref().map_or(Ok(()), away_message),
        Command::IssueToken { .. }
        | Command::RevokeToken { .. }
        | Command::JoinRoom { .. }
        | Command::LeaveRoom { .. }
        | Command::Delete { .. }
        | Command::MarkRead { .. } => Ok(()),
    }
}

fn text_characters(field: &str, text: &str) -> Result<(), ChatError> {
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(
            field,
            "must not contain control characters other than newline and tab",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames() {
        for good in ["alice", "Bob_2", "[away]", "x", "a-b"] {
            assert!(nickname(good).is_ok(), "{good}");
        }
        for bad in ["", "2pac", "-x", "has space", "ünï", &"a".repeat(31), "a,b"] {
            assert!(nickname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn room_names() {
        for good in ["general", "rust-lang", "a.b_c", "_x", "42"] {
            assert!(room_name(good).is_ok(), "{good}");
        }
        for bad in ["", "#general", ".hidden", "-x", "a b", &"r".repeat(51)] {
            assert!(room_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies() {
        assert!(body("hello\nworld\t!").is_ok());
        assert!(body("   ").is_err());
        assert!(body("bell\u{7}").is_err());
        assert!(body(&"x".repeat(MAX_BODY_BYTES + 1)).is_err());
        assert!(topic("two\nlines").is_err());
    }
}
