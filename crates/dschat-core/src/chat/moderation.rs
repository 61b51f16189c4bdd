//! Moderation: operators, voice, the room modes `t`, `m`, `i`, `k`, `l`, bans, kicks and
//! invitations, as IRC channels have them.
//!
//! **Why it is replicated.** Who may speak, join or set the topic decides which commands
//! the state machine accepts, so it must be the same on every replica: modes, operators,
//! voice, bans and invitations live in [`Room`] and change only by commands
//! ([`Command::SetRoomModes`](super::Command::SetRoomModes), `Kick`, `Invite`). Presence and
//! away state, which decide nothing, are not here (the IRC front end keeps them per node).
//!
//! **The rules.** The creator of a room is its first operator (rooms that guests opened have
//! none). Operators change modes, kick, and invite to an invite-only room; operator status
//! and voice end when the member leaves or is kicked. A join is refused to a banned user,
//! and, unless invited, past `i` (invite-only), a wrong `k` (key) or a full `l` (limit). In a
//! moderated room (`m`) only operators and voiced members post; banned members do not post
//! at all; with `t` only operators set the topic. Bans match the account's IRC hostmask
//! `nick!nick@account.dschat` as a case-insensitive glob (`*`, `?`).
//!
//! **Known limitations.** A room whose last operator leaves has none until it is empty and
//! recreated (IRC's classic behaviour without services); there are no ban exceptions.

use super::command::{ChatError, ModeChange, Response, RoomRule, Timeline};
use super::model::{Room, StoredEventKind};
use super::state::{ChatState, Context};
use crate::ids::{RoomId, UserId};

/// Most mode changes in one command (IRC servers commonly allow a few per line).
pub const MAX_MODE_CHANGES: usize = 12;
/// Most ban masks per room.
pub const MAX_BANS_PER_ROOM: usize = 100;
/// Longest ban mask, in bytes.
pub const MAX_BAN_MASK_BYTES: usize = 100;
/// Longest room key, in bytes.
pub const MAX_KEY_BYTES: usize = 23;
/// Longest kick reason, in bytes.
pub const MAX_KICK_REASON_BYTES: usize = 300;

/// The hostmask under which an account appears (on IRC, and for bans).
pub fn account_mask(nickname: &str) -> String {
    format!("{nickname}!{nickname}@account.dschat")
}

/// Whether `text` matches the glob `mask` (`*` any run, `?` one character), ignoring ASCII
/// case. Iterative, so a hostile mask costs at most |mask| · |text| steps.
pub fn mask_matches(mask: &str, text: &str) -> bool {
    let mask: Vec<char> = mask.to_ascii_lowercase().chars().collect();
    let text: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut m, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if m < mask.len() && (mask[m] == '?' || mask[m] == text[t]) {
            m += 1;
            t += 1;
        } else if m < mask.len() && mask[m] == '*' {
            star = Some((m, t));
            m += 1;
        } else if let Some((star_m, star_t)) = star {
            m = star_m + 1;
            t = star_t + 1;
            star = Some((star_m, star_t + 1));
        } else {
            return false;
        }
    }
    mask[m..].iter().all(|&c| c == '*')
}

fn refused(rule: RoomRule) -> ChatError {
    ChatError::Refused(rule)
}

fn invalid(field: &str, reason: String) -> ChatError {
    ChatError::Invalid {
        field: field.into(),
        reason,
    }
}

/// The state-free checks of a mode change list (run by front ends too).
pub fn check_mode_changes(changes: &[ModeChange]) -> Result<(), ChatError> {
    if changes.len() > MAX_MODE_CHANGES {
        return Err(invalid(
            "modes",
            format!("at most {MAX_MODE_CHANGES} changes at once"),
        ));
    }
    for change in changes {
        match change {
            ModeChange::Key(Some(key)) => key_text(key)?,
            ModeChange::Limit(Some(0)) => return Err(invalid("limit", "must be positive".into())),
            ModeChange::Ban { mask, .. } => {
                if mask.is_empty() || mask.len() > MAX_BAN_MASK_BYTES {
                    let reason = format!("1 to {MAX_BAN_MASK_BYTES} bytes");
                    return Err(invalid("ban mask", reason));
                }
                if mask.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(invalid(
                        "ban mask",
                        "no spaces or control characters".into(),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A room key: 1 to [`MAX_KEY_BYTES`] bytes, no spaces, commas or control characters.
pub fn key_text(key: &str) -> Result<(), ChatError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid("key", format!("1 to {MAX_KEY_BYTES} bytes")));
    }
    if key.chars().any(|c| c.is_control() || c == ' ' || c == ',') {
        return Err(invalid(
            "key",
            "no spaces, commas or control characters".into(),
        ));
    }
    Ok(())
}

impl Room {
    /// Whether `nickname`'s hostmask matches one of the room's bans.
    pub fn bans_nickname(&self, nickname: &str) -> bool {
        let mask = account_mask(nickname);
        self.bans.iter().any(|ban| mask_matches(ban, &mask))
    }
}

impl ChatState {
    fn operator_room(&self, user: UserId, room: RoomId) -> Result<&Room, ChatError> {
        self.user(user)?;
        let entry = self.rooms.get(&room).ok_or(ChatError::UnknownRoom)?;
        if !entry.members.contains(&user) {
            return Err(ChatError::NotMember);
        }
        if !entry.operators.contains(&user) {
            return Err(refused(RoomRule::NotOperator));
        }
        Ok(entry)
    }

    /// Whether `user` may join `room` with `key`; an invitation passes `i`, `k` and `l`.
    pub(super) fn check_join(
        &self,
        user: UserId,
        room: &Room,
        key: Option<&str>,
    ) -> Result<(), ChatError> {
        if room.bans_nickname(&self.user(user)?.nickname) {
            return Err(refused(RoomRule::Banned));
        }
        if room.invited.contains(&user) {
            return Ok(());
        }
        if room.modes.invite_only {
            return Err(refused(RoomRule::InviteOnly));
        }
        if room
            .modes
            .key
            .as_deref()
            .is_some_and(|wanted| Some(wanted) != key)
        {
            return Err(refused(RoomRule::BadKey));
        }
        if room
            .modes
            .limit
            .is_some_and(|limit| room.members.len() >= limit as usize)
        {
            return Err(refused(RoomRule::Full));
        }
        Ok(())
    }

    /// Whether member `user` may post in `room`.
    pub(super) fn check_speak(&self, user: UserId, room: &Room) -> Result<(), ChatError> {
        if room.operators.contains(&user) {
            return Ok(());
        }
        if room.bans_nickname(&self.user(user)?.nickname) {
            return Err(refused(RoomRule::Banned));
        }
        if room.modes.moderated && !room.voiced.contains(&user) {
            return Err(refused(RoomRule::Moderated));
        }
        Ok(())
    }

    /// Whether member `user` may set the topic of `room`.
    pub(super) fn check_topic(&self, user: UserId, room: &Room) -> Result<(), ChatError> {
        if room.modes.topic_locked && !room.operators.contains(&user) {
            return Err(refused(RoomRule::NotOperator));
        }
        Ok(())
    }

    pub(super) fn set_room_modes(
        &mut self,
        context: &mut Context,
        user: UserId,
        room: RoomId,
        changes: Vec<ModeChange>,
    ) -> Result<Response, ChatError> {
        check_mode_changes(&changes)?;
        let entry = self.operator_room(user, room)?;
        for change in &changes {
            if let ModeChange::Operator { user: target, .. }
            | ModeChange::Voice { user: target, .. } = change
            {
                self.user(*target)?;
                if !entry.members.contains(target) {
                    return Err(ChatError::NotMember);
                }
            }
        }
        let entry = self.rooms.get_mut(&room).expect("checked");
        let applied: Vec<ModeChange> = changes
            .into_iter()
            .filter(|change| apply_change(entry, change))
            .collect();
        if applied.is_empty() {
            return Ok(Response::Done);
        }
        let kind = StoredEventKind::ModesChanged {
            by: user,
            changes: applied,
        };
        Ok(Response::Event(self.record_event(
            context,
            Timeline::Room(room),
            kind,
        )))
    }

    pub(super) fn kick(
        &mut self,
        context: &mut Context,
        user: UserId,
        room: RoomId,
        target: UserId,
        reason: String,
    ) -> Result<Response, ChatError> {
        if reason.len() > MAX_KICK_REASON_BYTES || reason.contains(['\r', '\n']) {
            let text = format!("one line of at most {MAX_KICK_REASON_BYTES} bytes");
            return Err(invalid("reason", text));
        }
        self.user(target)?;
        let entry = self.operator_room(user, room)?;
        if !entry.members.contains(&target) {
            return Err(ChatError::NotMember);
        }
        let entry = self.rooms.get_mut(&room).expect("checked");
        entry.members.remove(&target);
        entry.operators.remove(&target);
        entry.voiced.remove(&target);
        let kind = StoredEventKind::Kicked {
            by: user,
            user: target,
            reason,
        };
        Ok(Response::Event(self.record_event(
            context,
            Timeline::Room(room),
            kind,
        )))
    }

    pub(super) fn invite(
        &mut self,
        context: &mut Context,
        user: UserId,
        room: RoomId,
        target: UserId,
    ) -> Result<Response, ChatError> {
        self.user(user)?;
        self.user(target)?;
        let entry = self.rooms.get(&room).ok_or(ChatError::UnknownRoom)?;
        if !entry.members.contains(&user) {
            return Err(ChatError::NotMember);
        }
        if entry.modes.invite_only && !entry.operators.contains(&user) {
            return Err(refused(RoomRule::NotOperator));
        }
        if entry.members.contains(&target) {
            return Err(refused(RoomRule::AlreadyMember));
        }
        self.rooms
            .get_mut(&room)
            .expect("checked")
            .invited
            .insert(target);
        let kind = StoredEventKind::Invited {
            by: user,
            user: target,
        };
        Ok(Response::Event(self.record_event(
            context,
            Timeline::Room(room),
            kind,
        )))
    }
}

/// Applies one change; whether it changed anything.
fn apply_change(room: &mut Room, change: &ModeChange) -> bool {
    fn set<T: PartialEq>(slot: &mut T, value: T) -> bool {
        let changed = *slot != value;
        *slot = value;
        changed
    }
    match change {
        ModeChange::TopicLocked(on) => set(&mut room.modes.topic_locked, *on),
        ModeChange::Moderated(on) => set(&mut room.modes.moderated, *on),
        ModeChange::InviteOnly(on) => set(&mut room.modes.invite_only, *on),
        ModeChange::Key(key) => set(&mut room.modes.key, key.clone()),
        ModeChange::Limit(limit) => set(&mut room.modes.limit, *limit),
        ModeChange::Operator { user, grant: true } => room.operators.insert(*user),
        ModeChange::Operator { user, grant: false } => room.operators.remove(user),
        ModeChange::Voice { user, grant: true } => room.voiced.insert(*user),
        ModeChange::Voice { user, grant: false } => room.voiced.remove(user),
        ModeChange::Ban { mask, add: true } => {
            room.bans.len() < MAX_BANS_PER_ROOM && room.bans.insert(mask.clone())
        }
        ModeChange::Ban { mask, add: false } => room.bans.remove(mask),
    }
}

/// Mode changes in IRC notation (`+o-t`) with their arguments, nicknames resolved by
/// `nickname`.
pub fn describe_changes(
    changes: &[ModeChange],
    nickname: impl Fn(UserId) -> String,
) -> (String, Vec<String>) {
    let mut modes = String::new();
    let mut arguments = Vec::new();
    let mut sign = None;
    for change in changes {
        let (on, letter, argument) = match change {
            ModeChange::TopicLocked(on) => (*on, 't', None),
            ModeChange::Moderated(on) => (*on, 'm', None),
            ModeChange::InviteOnly(on) => (*on, 'i', None),
            ModeChange::Key(key) => (
                key.is_some(),
                'k',
                Some(key.clone().unwrap_or_else(|| "*".into())),
            ),
            ModeChange::Limit(Some(limit)) => (true, 'l', Some(limit.to_string())),
            ModeChange::Limit(None) => (false, 'l', None),
            ModeChange::Operator { user, grant } => (*grant, 'o', Some(nickname(*user))),
            ModeChange::Voice { user, grant } => (*grant, 'v', Some(nickname(*user))),
            ModeChange::Ban { mask, add } => (*add, 'b', Some(mask.clone())),
        };
        if sign != Some(on) {
            modes.push(if on { '+' } else { '-' });
            sign = Some(on);
        }
        modes.push(letter);
        arguments.extend(argument);
    }
    (modes, arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_as_globs() {
        assert!(mask_matches("*!*@account.dschat", "bob!bob@account.dschat"));
        assert!(mask_matches("B?B!*", "bob!bob@account.dschat"));
        assert!(!mask_matches("alice!*", "bob!bob@account.dschat"));
        assert!(mask_matches("*", ""));
        assert!(!mask_matches("a*b*c", "aXbY"));
        assert!(mask_matches(&"*a".repeat(40), &"a".repeat(60)));
    }

    #[test]
    fn describes_changes_in_irc_notation() {
        let changes = [
            ModeChange::Operator {
                user: UserId(2),
                grant: true,
            },
            ModeChange::TopicLocked(true),
            ModeChange::Key(None),
            ModeChange::Limit(Some(5)),
        ];
        let (modes, arguments) = describe_changes(&changes, |user| format!("u{user}"));
        assert_eq!(modes, "+ot-k+l");
        assert_eq!(arguments, vec!["u2", "*", "5"]);
    }
}
