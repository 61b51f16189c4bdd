//! CHATHISTORY (IRCv3 `draft/chathistory`): dschat's stored history, on request.
//!
//! Every subcommand reads the replicated history of one timeline (a room, or the private
//! conversation with a nick) under the state's read lock and answers with one `chathistory`
//! batch of PRIVMSGs carrying `time`, `msgid` and `account`, oldest first:
//!
//! - `LATEST <target> <* | ref> <limit>`: the newest messages (after `ref`, if given);
//! - `BEFORE`/`AFTER <target> <ref> <limit>`: the messages just before or after `ref`;
//! - `AROUND <target> <ref> <limit>`: up to `limit / 2` before it, the rest from it on;
//! - `BETWEEN <target> <ref> <ref> <limit>`: the messages strictly between, counted from the
//!   first reference (so `BETWEEN late early` gives the newest of the range);
//! - `TARGETS <timestamp> <timestamp> <limit>`: the client's channels and conversations with
//!   a message between the two times, each with its latest message's time, in a
//!   `draft/chathistory-targets` batch.
//!
//! A reference is `msgid=<id>` or `timestamp=YYYY-MM-DDThh:mm:ss.sssZ`. Message times follow
//! the log, so "before time T" is "before the first message at or after T". `limit` is at
//! most [`MAX_HISTORY_MESSAGES`] (`CHATHISTORY=` in `RPL_ISUPPORT`). Errors are standard
//! replies: `FAIL CHATHISTORY INVALID_PARAMS` (unknown subcommand, bad reference or limit),
//! `INVALID_TARGET` (no such channel or nick), `MESSAGE_ERROR` (a `msgid` that is not a
//! message of the target). Deleted messages are left out.

use super::channels::room_name_of;
use super::connection::{tag, Client};
use super::messaging::format_time;
use super::reply::*;
use dschat_core::chat::{ChatState, MessageView, Timeline};
use dschat_core::ids::MessageId;
use dschat_core::irc::Message;

/// Most messages (or targets) one CHATHISTORY request returns.
pub const MAX_HISTORY_MESSAGES: usize = 100;

/// A message reference of a CHATHISTORY command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reference {
    /// `msgid=<id>`.
    Message(MessageId),
    /// `timestamp=<RFC 3339>`, as Unix ms.
    Time(u64),
}

/// Why a request is refused: the `FAIL` code and its text.
type Refusal = (&'static str, &'static str);

const BAD_REFERENCE: Refusal = (
    "INVALID_PARAMS",
    "References are msgid=<id> or timestamp=YYYY-MM-DDThh:mm:ss.sssZ (* for LATEST)",
);
const BAD_LIMIT: Refusal = ("INVALID_PARAMS", "The limit must be a number");
const UNKNOWN_MESSAGE: Refusal = ("MESSAGE_ERROR", "No such message in this target");

impl Client {
    pub(super) fn chathistory(&mut self, params: &[String]) {
        if params.len() < 3 {
            self.numeric(
                ERR_NEEDMOREPARAMS,
                &["CHATHISTORY", "Not enough parameters"],
            );
            return;
        }
        let subcommand = params[0].to_ascii_uppercase();
        if subcommand == "TARGETS" {
            return self.chathistory_targets(params);
        }
        let known = ["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"];
        if !known.contains(&subcommand.as_str()) {
            let text = "Subcommands: LATEST, BEFORE, AFTER, AROUND, BETWEEN, TARGETS";
            self.respond(self.fail_message(&["CHATHISTORY", "INVALID_PARAMS", &subcommand, text]));
            return;
        }
        let target = params[1].clone();
        let Some(timeline) = self.history_timeline(&target) else {
            let text = "No such channel or nick, or no access";
            let fail = ["CHATHISTORY", "INVALID_TARGET", &subcommand, &target, text];
            self.respond(self.fail_message(&fail));
            return;
        };
        let page = {
            let chat = self.shared.node.state().read();
            history_page(&chat, timeline, &subcommand, &params[2..])
        };
        match page {
            Ok(messages) => self.history_batch(&target, timeline, &messages),
            Err((code, text)) => {
                let fail = ["CHATHISTORY", code, &subcommand, &target, text];
                self.respond(self.fail_message(&fail));
            }
        }
    }

    /// The timeline a CHATHISTORY target names: a room, or this account's conversation with
    /// a nick.
    fn history_timeline(&self, target: &str) -> Option<Timeline> {
        let chat = self.shared.node.state().read();
        match room_name_of(target) {
            Some(name) => chat.room_by_name(name).map(|room| Timeline::Room(room.id)),
            None => match (self.account, chat.user_by_nickname(target)) {
                (Some(me), Some(other)) => Some(Timeline::direct(me, other.id)),
                _ => None,
            },
        }
    }

    /// `messages` as a `chathistory` batch (bare lines without the batch capability).
    fn history_batch(&mut self, target: &str, timeline: Timeline, messages: &[MessageView]) {
        let reference = format!("h{}", self.connection);
        let use_batch = self.caps.contains("batch");
        let server = self.shared.config.server_name.clone();
        if use_batch {
            self.respond(
                Message::new("BATCH", &[&format!("+{reference}"), "chathistory", target])
                    .with_source(&server),
            );
        }
        for view in messages.iter().filter(|view| !view.deleted) {
            let shown_target = match timeline {
                Timeline::Room(_) => target.to_string(),
                Timeline::Direct(..) => self.direct_target(view),
            };
            for mut line in self.message_lines(view, &shown_target) {
                if use_batch {
                    line.tags.push(tag("batch", &reference));
                }
                self.respond(line);
            }
        }
        if use_batch {
            self.respond(Message::new("BATCH", &[&format!("-{reference}")]).with_source(&server));
        }
    }

    /// `TARGETS <timestamp> <timestamp> <limit>`.
    fn chathistory_targets(&mut self, params: &[String]) {
        let times = (parse_reference(&params[1]), parse_reference(&params[2]));
        let (Some(Reference::Time(first)), Some(Reference::Time(second))) = times else {
            let text = "TARGETS takes two timestamp= references";
            self.respond(self.fail_message(&["CHATHISTORY", "INVALID_PARAMS", "TARGETS", text]));
            return;
        };
        let Some(limit) = parse_limit(params.get(3)) else {
            let fail = ["CHATHISTORY", "INVALID_PARAMS", "TARGETS", BAD_LIMIT.1];
            self.respond(self.fail_message(&fail));
            return;
        };
        let (low, high) = (first.min(second), first.max(second));
        let mut found: Vec<(u64, String)> = {
            let chat = self.shared.node.state().read();
            let mut timelines: Vec<(Timeline, String)> = Vec::new();
            for (room, channel) in &self.joined {
                timelines.push((Timeline::Room(*room), channel.clone()));
            }
            if let Some(me) = self.account {
                for other in chat.direct_partners(me) {
                    timelines.push((Timeline::direct(me, other), chat.nickname(other)));
                }
            }
            timelines
                .into_iter()
                .filter_map(|(timeline, name)| {
                    let after = chat.last_message_until(timeline, low);
                    let before = chat.first_message_since(timeline, high);
                    let latest = chat.history_between(timeline, after, before, 1, true);
                    latest.first().map(|view| (view.time.wall_ms, name))
                })
                .collect()
        };
        found.sort();
        found.truncate(limit);
        let server = self.shared.config.server_name.clone();
        let reference = format!("t{}", self.connection);
        let use_batch = self.caps.contains("batch");
        if use_batch {
            let start = format!("+{reference}");
            self.respond(
                Message::new("BATCH", &[&start, "draft/chathistory-targets"]).with_source(&server),
            );
        }
        for (time, name) in found {
            let mut line = Message::new("CHATHISTORY", &["TARGETS", &name, &format_time(time)])
                .with_source(&server);
            if use_batch {
                line.tags.push(tag("batch", &reference));
            }
            self.respond(line);
        }
        if use_batch {
            self.respond(Message::new("BATCH", &[&format!("-{reference}")]).with_source(&server));
        }
    }
}

/// The messages one subcommand asks for; `arguments` are what follows the target.
fn history_page(
    chat: &ChatState,
    timeline: Timeline,
    subcommand: &str,
    arguments: &[String],
) -> Result<Vec<MessageView>, Refusal> {
    let first = arguments[0].as_str();
    let (second, limit) = match subcommand {
        "BETWEEN" => (arguments.get(1), arguments.get(2)),
        _ => (None, arguments.get(1)),
    };
    let limit = parse_limit(limit).ok_or(BAD_LIMIT)?;
    let resolve = |text: &str| -> Result<Reference, Refusal> {
        let reference = parse_reference(text).ok_or(BAD_REFERENCE)?;
        if let Reference::Message(id) = reference {
            chat.message(timeline, id).ok_or(UNKNOWN_MESSAGE)?;
        }
        Ok(reference)
    };
    // Exclusive bounds: after a reference, and before it.
    let after = |reference: Reference| match reference {
        Reference::Message(id) => Some(id),
        Reference::Time(time) => chat.last_message_until(timeline, time),
    };
    let before = |reference: Reference| match reference {
        Reference::Message(id) => Some(id),
        Reference::Time(time) => chat.first_message_since(timeline, time),
    };
    let between =
        |low, high, count, newest| chat.history_between(timeline, low, high, count, newest);
    Ok(match subcommand {
        "LATEST" if first == "*" => between(None, None, limit, true),
        "LATEST" => between(after(resolve(first)?), None, limit, true),
        "BEFORE" => between(None, before(resolve(first)?), limit, true),
        "AFTER" => between(after(resolve(first)?), None, limit, false),
        "AROUND" => {
            let center = resolve(first)?;
            let mut page = between(None, before(center), limit / 2, true);
            // From the reference on: after the last message before it.
            let from = match center {
                Reference::Message(id) => Some(MessageId(id.0.saturating_sub(1))),
                Reference::Time(time) => chat.last_message_until(timeline, time.saturating_sub(1)),
            };
            page.extend(between(from, None, limit - page.len(), false));
            page
        }
        _ => {
            let start = resolve(first)?;
            let end = resolve(second.ok_or(BAD_REFERENCE)?)?;
            let time_of = |reference: Reference| match reference {
                Reference::Time(time) => (time, 0),
                Reference::Message(id) => chat
                    .message(timeline, id)
                    .map_or((0, id.0), |view| (view.time.wall_ms, id.0)),
            };
            if time_of(start) <= time_of(end) {
                between(after(start), before(end), limit, false)
            } else {
                between(after(end), before(start), limit, true)
            }
        }
    })
}

/// A limit: a number, at most [`MAX_HISTORY_MESSAGES`]; absent means the most.
fn parse_limit(limit: Option<&String>) -> Option<usize> {
    match limit {
        None => Some(MAX_HISTORY_MESSAGES),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .map(|limit| limit.min(MAX_HISTORY_MESSAGES)),
    }
}

/// `msgid=<id>` or `timestamp=<RFC 3339 UTC>`.
fn parse_reference(text: &str) -> Option<Reference> {
    if let Some(id) = text.strip_prefix("msgid=") {
        return id
            .parse::<u64>()
            .ok()
            .map(|id| Reference::Message(MessageId(id)));
    }
    text.strip_prefix("timestamp=")
        .and_then(parse_time)
        .map(Reference::Time)
}

/// `YYYY-MM-DDThh:mm:ss[.sss]Z` as Unix ms (the inverse of [`format_time`]).
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let number = |part: &str, digits: usize| -> Option<i64> {
        (part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let mut date_parts = date.split('-');
    let year = number(date_parts.next()?, 4)?;
    let month = number(date_parts.next()?, 2)?;
    let day = number(date_parts.next()?, 2)?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.split(':');
    let hour = number(clock_parts.next()?, 2)?;
    let minute = number(clock_parts.next()?, 2)?;
    let second = number(clock_parts.next()?, 2)?;
    if date_parts.next().is_some() || clock_parts.next().is_some() {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis = format!("{fraction:0<3}").parse::<i64>().ok()?;
    // Days since 1970-01-01 from a civil date (Howard Hinnant's algorithm).
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u64::try_from(seconds * 1_000 + millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_server_time_formats() {
        for unix_ms in [0, 1_709_251_199_999, 1_798_761_600_123, 1_800_000_000_001] {
            assert_eq!(parse_time(&format_time(unix_ms)), Some(unix_ms));
        }
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z"),
            parse_time("2026-01-01T00:00:00.000Z")
        );
        assert_eq!(
            parse_time("2026-01-01T00:00:00.5Z"),
            Some(1_767_225_600_500)
        );
        for bad in [
            "2026-01-01",
            "2026-13-01T00:00:00.000Z",
            "2026-01-01T00:00:00.000",
            "x",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_references_and_limits() {
        assert_eq!(
            parse_reference("msgid=42"),
            Some(Reference::Message(MessageId(42)))
        );
        assert_eq!(
            parse_reference("timestamp=1970-01-01T00:00:01.000Z"),
            Some(Reference::Time(1_000))
        );
        assert_eq!(parse_reference("msgid=x"), None);
        assert_eq!(parse_reference("*"), None);
        assert_eq!(
            parse_limit(Some(&"1000".to_string())),
            Some(MAX_HISTORY_MESSAGES)
        );
        assert_eq!(parse_limit(Some(&"ten".to_string())), None);
    }
}
