//! Who is connected to this node over IRC, and who was (for WHOWAS).
//!
//! This is presence, not chat state: it is per node and is not replicated. An account may be
//! connected several times (each connection is an entry under the account's nickname); a
//! guest's nick is unique among the connections of this node.

use dschat_core::chat::validate::name_key;
use dschat_core::ids::UserId;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};

/// Most departed nicks remembered for WHOWAS; past it the oldest is forgotten.
pub const MAX_WHOWAS_ENTRIES: usize = 1_024;

/// One connected client, as others see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Present {
    /// The nick as the client spells it.
    pub nick: String,
    /// The user name from USER (or the account's nickname).
    pub user: String,
    /// The real name from USER.
    pub realname: String,
    /// The host shown in hostmasks.
    pub host: String,
    /// The account, for an authenticated client.
    pub account: Option<UserId>,
    /// The away message, if the client is away.
    pub away: Option<String>,
}

/// A nick that left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departed {
    /// What it looked like when it left.
    pub present: Present,
    /// Unix ms when it left.
    pub left_unix_ms: u64,
}

#[derive(Default)]
struct DirectoryState {
    connected: BTreeMap<(String, u64), Present>,
    whowas: VecDeque<Departed>,
    next_connection: u64,
}

/// The presence table of one node.
#[derive(Default)]
pub struct Directory {
    state: Mutex<DirectoryState>,
}

impl Directory {
    /// A fresh connection number.
    pub fn connection_id(&self) -> u64 {
        let mut state = self.state.lock();
        state.next_connection += 1;
        state.next_connection
    }

    /// Whether anyone but `connection` is connected under `nick`.
    pub fn nick_in_use(&self, nick: &str, connection: u64) -> bool {
        let key = name_key(nick);
        let state = self.state.lock();
        state
            .connected
            .range((key.clone(), 0)..=(key, u64::MAX))
            .any(|((_, other), _)| *other != connection)
    }

    /// Records (or replaces) `connection`'s entry.
    pub fn enter(&self, connection: u64, present: Present) {
        let key = name_key(&present.nick);
        let mut state = self.state.lock();
        state.connected.retain(|(_, other), _| *other != connection);
        state.connected.insert((key, connection), present);
    }

    /// Removes `connection`'s entry and remembers it for WHOWAS.
    pub fn leave(&self, connection: u64, now_unix_ms: u64) {
        let mut state = self.state.lock();
        let key = state
            .connected
            .keys()
            .find(|(_, other)| *other == connection)
            .cloned();
        if let Some(present) = key.and_then(|key| state.connected.remove(&key)) {
            state.whowas.push_back(Departed {
                present,
                left_unix_ms: now_unix_ms,
            });
            if state.whowas.len() > MAX_WHOWAS_ENTRIES {
                state.whowas.pop_front();
            }
        }
    }

    /// Sets or clears `connection`'s away message.
    pub fn set_away(&self, connection: u64, away: Option<String>) {
        let mut state = self.state.lock();
        for ((_, other), present) in state.connected.iter_mut() {
            if *other == connection {
                present.away = away.clone();
            }
        }
    }

    /// The first connection under `nick`, if any.
    pub fn find(&self, nick: &str) -> Option<Present> {
        let key = name_key(nick);
        let state = self.state.lock();
        let mut range = state.connected.range((key.clone(), 0)..=(key, u64::MAX));
        range.next().map(|(_, present)| present.clone())
    }

    /// Number of connections.
    pub fn count(&self) -> usize {
        self.state.lock().connected.len()
    }

    /// The departed entries for `nick`, newest first, at most `limit`.
    pub fn whowas(&self, nick: &str, limit: usize) -> Vec<Departed> {
        let key = name_key(nick);
        let state = self.state.lock();
        state
            .whowas
            .iter()
            .rev()
            .filter(|departed| name_key(&departed.present.nick) == key)
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(nick: &str) -> Present {
        Present {
            nick: nick.into(),
            user: nick.into(),
            realname: "R".into(),
            host: "h".into(),
            account: None,
            away: None,
        }
    }

    #[test]
    fn tracks_nicks_case_insensitively_and_remembers_departures() {
        let directory = Directory::default();
        let (a, b) = (directory.connection_id(), directory.connection_id());
        directory.enter(a, present("Alice"));
        assert!(directory.nick_in_use("alice", b));
        assert!(!directory.nick_in_use("alice", a));
        directory.enter(a, present("Alicia"));
        assert!(!directory.nick_in_use("alice", b));
        directory.set_away(a, Some("lunch".into()));
        assert_eq!(
            directory.find("ALICIA").unwrap().away.as_deref(),
            Some("lunch")
        );
        directory.leave(a, 5);
        assert_eq!(directory.count(), 0);
        assert_eq!(directory.whowas("alicia", 10)[0].left_unix_ms, 5);
        assert!(directory.whowas("bob", 10).is_empty());
    }
}
