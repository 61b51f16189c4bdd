//! Tests of the chat state machine through its public seam: `apply`, queries, snapshots.

use super::*;
use crate::clock::hybrid::HybridTimestamp;
use crate::ids::{ClientId, LogIndex, MessageId, RoomId, SequenceNumber, UserId};
use crate::state_machine::StateMachine;
use proptest::prelude::*;

/// Drives a state machine the way a host would: one log index per command.
struct Harness {
    state: ChatState,
    index: u64,
    clock_ms: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            state: ChatState::new(),
            index: 0,
            clock_ms: 1_800_000_000_000,
        }
    }

    fn envelope(&mut self, session: Option<ClientSession>, command: Command) -> Envelope {
        self.clock_ms += 1;
        Envelope {
            session,
            time: HybridTimestamp {
                wall_ms: self.clock_ms,
                logical: 0,
            },
            proposed_id: MessageId::from_parts(self.clock_ms, 1, 0),
            command,
        }
    }

    fn apply_envelope(&mut self, envelope: Envelope) -> Applied {
        self.index += 1;
        let applied = self.state.apply(LogIndex(self.index), envelope);
        self.state.validate();
        applied
    }

    fn run(&mut self, command: Command) -> Result<Response, ChatError> {
        let envelope = self.envelope(None, command);
        self.apply_envelope(envelope).reply
    }

    fn user(&mut self, nickname: &str) -> UserId {
        match self.run(Command::Register {
            nickname: nickname.into(),
            password_hash: "h".into(),
        }) {
            Ok(Response::UserCreated(id)) => id,
            other => panic!("register {nickname}: {other:?}"),
        }
    }

    fn room(&mut self, user: UserId, name: &str) -> RoomId {
        match self.run(Command::CreateRoom {
            user,
            name: name.into(),
            topic: String::new(),
        }) {
            Ok(Response::RoomCreated(id)) => id,
            other => panic!("create {name}: {other:?}"),
        }
    }

    fn post(&mut self, user: UserId, room: RoomId, body: &str) -> Result<MessageId, ChatError> {
        match self.run(Command::Post {
            user,
            room,
            body: body.into(),
        })? {
            Response::Event(id) => Ok(id),
            other => panic!("post: {other:?}"),
        }
    }
}

#[test]
fn nicknames_are_unique_case_insensitively() {
    let mut chat = Harness::new();
    chat.user("Alice");
    let again = chat.run(Command::Register {
        nickname: "aLiCe".into(),
        password_hash: "h".into(),
    });
    assert_eq!(again, Err(ChatError::NicknameTaken("aLiCe".into())));
    assert_eq!(
        chat.state.user_by_nickname("ALICE").unwrap().nickname,
        "Alice"
    );
}

#[test]
fn room_names_are_unique_and_posting_needs_membership() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let bob = chat.user("bob");
    let room = chat.room(alice, "General");
    let taken = chat.run(Command::CreateRoom {
        user: bob,
        name: "general".into(),
        topic: String::new(),
    });
    assert!(matches!(taken, Err(ChatError::RoomNameTaken(_))));
    assert_eq!(chat.post(bob, room, "hi"), Err(ChatError::NotMember));
    chat.run(Command::JoinRoom { user: bob, room }).unwrap();
    let id = chat.post(bob, room, "hi").unwrap();
    let page = chat.state.history(Timeline::Room(room), Page::Newest, 50);
    assert_eq!(page.len(), 1);
    assert_eq!(
        (
            page[0].id,
            page[0].author_name.as_str(),
            page[0].body.as_str()
        ),
        (id, "bob", "hi")
    );
}

#[test]
fn edits_and_deletes_are_new_events_by_the_author_only() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let bob = chat.user("bob");
    let room = chat.room(alice, "general");
    chat.run(Command::JoinRoom { user: bob, room }).unwrap();
    let message = chat.post(alice, room, "helo").unwrap();
    let timeline = Timeline::Room(room);
    let by_bob = chat.run(Command::Edit {
        user: bob,
        timeline,
        target: message,
        body: "x".into(),
    });
    assert_eq!(by_bob, Err(ChatError::NotAuthor));
    chat.run(Command::Edit {
        user: alice,
        timeline,
        target: message,
        body: "hello".into(),
    })
    .unwrap();
    assert_eq!(chat.state.message(timeline, message).unwrap().body, "hello");
    chat.run(Command::Delete {
        user: alice,
        timeline,
        target: message,
    })
    .unwrap();
    let tombstone = chat.state.message(timeline, message).unwrap();
    assert!(tombstone.deleted && tombstone.body.is_empty());
    let after_delete = chat.run(Command::Edit {
        user: alice,
        timeline,
        target: message,
        body: "y".into(),
    });
    assert_eq!(after_delete, Err(ChatError::MessageDeleted));
    let kinds: Vec<_> = chat
        .state
        .events_after(&[timeline], MessageId(0), 100)
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(matches!(
        kinds.as_slice(),
        [
            EventViewKind::Joined { .. },
            EventViewKind::Joined { .. },
            EventViewKind::Posted(_),
            EventViewKind::Edited { .. },
            EventViewKind::Deleted { .. }
        ]
    ));
}

#[test]
fn event_ids_follow_log_order_even_when_proposed_ids_do_not() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let room = chat.room(alice, "general");
    let first = chat.post(alice, room, "one").unwrap();
    // A proposer whose clock is far behind proposes a smaller id.
    let mut late = chat.envelope(
        None,
        Command::Post {
            user: alice,
            room,
            body: "two".into(),
        },
    );
    late.proposed_id = MessageId(5);
    let Ok(Response::Event(second)) = chat.apply_envelope(late).reply else {
        panic!()
    };
    assert_eq!(second, MessageId(first.0 + 1));
}

#[test]
fn a_retried_command_is_applied_once() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let room = chat.room(alice, "general");
    let session = ClientSession {
        client: ClientId(77),
        sequence: SequenceNumber(1),
    };
    let command = Command::Post {
        user: alice,
        room,
        body: "once".into(),
    };
    let envelope = chat.envelope(Some(session), command.clone());
    let first = chat.apply_envelope(envelope.clone());
    let retry = chat.apply_envelope(envelope);
    assert_eq!(first.reply, retry.reply);
    assert!(retry.events.is_empty());
    assert_eq!(
        chat.state
            .history(Timeline::Room(room), Page::Newest, 10)
            .len(),
        1
    );
    let next = chat.envelope(
        Some(ClientSession {
            sequence: SequenceNumber(2),
            ..session
        }),
        command.clone(),
    );
    assert!(chat.apply_envelope(next).reply.is_ok());
    let stale = chat.envelope(Some(session), command);
    assert_eq!(
        chat.apply_envelope(stale).reply,
        Err(ChatError::StaleSequence {
            sequence: SequenceNumber(1),
            last_applied: SequenceNumber(2)
        })
    );
}

#[test]
fn unread_counts_follow_read_markers() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let bob = chat.user("bob");
    let room = chat.room(alice, "general");
    chat.run(Command::JoinRoom { user: bob, room }).unwrap();
    let ids: Vec<_> = (0..5)
        .map(|n| chat.post(alice, room, &format!("m{n}")).unwrap())
        .collect();
    chat.post(bob, room, "mine").unwrap();
    assert_eq!(
        chat.state.unread_count(bob, room),
        5,
        "own messages are not unread"
    );
    chat.run(Command::MarkRead {
        user: bob,
        room,
        up_to: ids[2],
    })
    .unwrap();
    assert_eq!(chat.state.unread_count(bob, room), 2);
    chat.run(Command::MarkRead {
        user: bob,
        room,
        up_to: ids[0],
    })
    .unwrap();
    assert_eq!(
        chat.state.unread_count(bob, room),
        2,
        "markers never move back"
    );
}

#[test]
fn private_messages_and_guest_posts() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let bob = chat.user("bob");
    chat.run(Command::SendDirect {
        user: alice,
        to: bob,
        body: "psst".into(),
    })
    .unwrap();
    assert_eq!(chat.state.direct_partners(bob), vec![alice]);
    let page = chat
        .state
        .history(Timeline::direct(bob, alice), Page::Newest, 10);
    assert_eq!(page[0].body, "psst");
    let guest = Command::PostGuest {
        room_name: "news".into(),
        name: "Ann".into(),
        email: "a@x".into(),
        body: "hi".into(),
    };
    assert!(matches!(chat.run(guest), Ok(Response::Event(_))));
    let room = chat.state.room_by_name("NEWS").unwrap();
    assert_eq!(room.created_by, None);
    assert_eq!(
        chat.state.history(Timeline::Room(room.id), Page::Newest, 1)[0].author_email,
        "a@x"
    );
}

#[test]
fn history_pages_before_and_after() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let room = chat.room(alice, "general");
    let ids: Vec<_> = (0..120)
        .map(|n| chat.post(alice, room, &format!("m{n}")).unwrap())
        .collect();
    let timeline = Timeline::Room(room);
    let newest = chat.state.history(timeline, Page::Newest, 50);
    assert_eq!(newest.first().unwrap().id, ids[70]);
    assert_eq!(newest.last().unwrap().id, ids[119]);
    let older = chat.state.history(timeline, Page::Before(ids[70]), 50);
    assert_eq!((older[0].id, older[49].id), (ids[20], ids[69]));
    let after = chat.state.history(timeline, Page::After(ids[10]), 3);
    assert_eq!(
        after.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[11..14].to_vec()
    );
}

#[test]
fn tokens_authenticate_until_they_expire_or_are_revoked() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let token_hash = [9u8; 32];
    chat.run(Command::IssueToken {
        user: alice,
        token_hash,
        expires_unix_ms: 1_000,
    })
    .unwrap();
    assert_eq!(chat.state.authenticate(&token_hash, 999), Some(alice));
    assert_eq!(chat.state.authenticate(&token_hash, 1_000), None);
    chat.run(Command::RevokeToken { token_hash }).unwrap();
    assert_eq!(chat.state.authenticate(&token_hash, 0), None);
}

fn arbitrary_command() -> impl Strategy<Value = Command> {
    let user = (1u64..5).prop_map(UserId);
    let room = (1u64..4).prop_map(RoomId);
    let text = prop_oneof![
        Just("hello".to_string()),
        Just(" ".to_string()),
        "[a-z]{1,8}"
    ];
    prop_oneof![
        prop_oneof![
            Just("alice"),
            Just("Alice"),
            Just("bob"),
            Just("carol"),
            Just("9bad")
        ]
        .prop_map(|nick| Command::Register {
            nickname: nick.into(),
            password_hash: "h".into()
        }),
        (
            user.clone(),
            prop_oneof![Just("general"), Just("GENERAL"), Just("rust")]
        )
            .prop_map(|(user, name)| Command::CreateRoom {
                user,
                name: name.into(),
                topic: String::new()
            }),
        (user.clone(), room.clone()).prop_map(|(user, room)| Command::JoinRoom { user, room }),
        (user.clone(), room.clone()).prop_map(|(user, room)| Command::LeaveRoom { user, room }),
        (user.clone(), room.clone(), text.clone()).prop_map(|(user, room, body)| Command::Post {
            user,
            room,
            body
        }),
        (user.clone(), user.clone(), text.clone())
            .prop_map(|(user, to, body)| Command::SendDirect { user, to, body }),
        (user.clone(), room.clone(), 0u64..40, text.clone()).prop_map(
            |(user, room, target, body)| {
                Command::Edit {
                    user,
                    timeline: Timeline::Room(room),
                    target: MessageId(target),
                    body,
                }
            }
        ),
        (user.clone(), room.clone(), 0u64..40).prop_map(|(user, room, target)| {
            Command::Delete {
                user,
                timeline: Timeline::Room(room),
                target: MessageId(target),
            }
        }),
        (user.clone(), room.clone(), 0u64..40).prop_map(|(user, room, up_to)| Command::MarkRead {
            user,
            room,
            up_to: MessageId(up_to)
        }),
        (
            user.clone(),
            room.clone(),
            arbitrary_mode_change(user.clone())
        )
            .prop_map(|(user, room, change)| Command::SetRoomModes {
                user,
                room,
                changes: vec![change]
            }),
        (user.clone(), room.clone(), user.clone()).prop_map(|(user, room, target)| Command::Kick {
            user,
            room,
            target,
            reason: String::new()
        }),
        (user.clone(), room.clone(), user.clone())
            .prop_map(|(user, room, target)| Command::Invite { user, room, target }),
        (user.clone(), room, prop_oneof![Just("k"), Just("wrong")]).prop_map(
            |(user, room, key)| {
                Command::JoinRoomWithKey {
                    user,
                    room,
                    key: key.into(),
                }
            }
        ),
        (
            user,
            prop_oneof![Just(None), Just(Some("lunch".to_string()))]
        )
            .prop_map(|(user, message)| Command::SetAway { user, message }),
    ]
}

fn arbitrary_mode_change(
    user: impl Strategy<Value = UserId> + Clone + 'static,
) -> impl Strategy<Value = ModeChange> {
    prop_oneof![
        any::<bool>().prop_map(ModeChange::TopicLocked),
        any::<bool>().prop_map(ModeChange::Moderated),
        any::<bool>().prop_map(ModeChange::InviteOnly),
        prop_oneof![Just(None), Just(Some("k".to_string()))].prop_map(ModeChange::Key),
        prop_oneof![Just(None), Just(Some(1u32)), Just(Some(2))].prop_map(ModeChange::Limit),
        (user.clone(), any::<bool>())
            .prop_map(|(user, grant)| ModeChange::Operator { user, grant }),
        (user, any::<bool>()).prop_map(|(user, grant)| ModeChange::Voice { user, grant }),
        (prop_oneof![Just("bob!*"), Just("*")], any::<bool>()).prop_map(|(mask, add)| {
            ModeChange::Ban {
                mask: mask.into(),
                add,
            }
        }),
    ]
}

#[test]
fn operators_rule_their_rooms() {
    let mut chat = Harness::new();
    let (alice, bob, carol) = (chat.user("alice"), chat.user("bob"), chat.user("carol"));
    let room = chat.room(alice, "den");
    chat.run(Command::JoinRoom { user: bob, room }).unwrap();
    let modes = |user, changes| Command::SetRoomModes {
        user,
        room,
        changes,
    };
    let not_operator = Err(ChatError::Refused(RoomRule::NotOperator));
    // The creator is the operator; others may not change modes, kick, or set a locked topic.
    assert_eq!(
        chat.run(modes(bob, vec![ModeChange::Moderated(true)])),
        not_operator
    );
    chat.run(modes(
        alice,
        vec![ModeChange::TopicLocked(true), ModeChange::Moderated(true)],
    ))
    .unwrap();
    let topic = Command::SetTopic {
        user: bob,
        room,
        topic: "mine".into(),
    };
    assert_eq!(chat.run(topic), not_operator);
    // Moderated: bob may speak only once voiced.
    assert_eq!(
        chat.post(bob, room, "hi"),
        Err(ChatError::Refused(RoomRule::Moderated))
    );
    chat.run(modes(
        alice,
        vec![ModeChange::Voice {
            user: bob,
            grant: true,
        }],
    ))
    .unwrap();
    assert!(chat.post(bob, room, "hi").is_ok());
    // Invite-only with a key and a limit: carol needs an invitation, which passes all three.
    chat.run(modes(
        alice,
        vec![
            ModeChange::InviteOnly(true),
            ModeChange::Key(Some("secret".into())),
            ModeChange::Limit(Some(2)),
        ],
    ))
    .unwrap();
    let join = Command::JoinRoomWithKey {
        user: carol,
        room,
        key: "secret".into(),
    };
    assert_eq!(
        chat.run(join.clone()),
        Err(ChatError::Refused(RoomRule::InviteOnly))
    );
    let invite = Command::Invite {
        user: bob,
        room,
        target: carol,
    };
    assert_eq!(chat.run(invite), not_operator);
    chat.run(Command::Invite {
        user: alice,
        room,
        target: carol,
    })
    .unwrap();
    chat.run(Command::JoinRoom { user: carol, room }).unwrap();
    // Without the invitation, the key and the limit apply.
    chat.run(Command::Kick {
        user: alice,
        room,
        target: carol,
        reason: "bye".into(),
    })
    .unwrap();
    chat.run(modes(alice, vec![ModeChange::InviteOnly(false)]))
        .unwrap();
    assert_eq!(
        chat.run(Command::JoinRoom { user: carol, room }),
        Err(ChatError::Refused(RoomRule::BadKey))
    );
    assert_eq!(
        chat.run(join.clone()),
        Err(ChatError::Refused(RoomRule::Full))
    );
    chat.run(modes(alice, vec![ModeChange::Limit(None)]))
        .unwrap();
    chat.run(join).unwrap();
    // A ban keeps a member from speaking and a kicked user from coming back; kicking ends
    // voice.
    chat.run(modes(
        alice,
        vec![
            ModeChange::Moderated(false),
            ModeChange::Ban {
                mask: "BOB!*@*".into(),
                add: true,
            },
        ],
    ))
    .unwrap();
    assert_eq!(
        chat.post(bob, room, "hi"),
        Err(ChatError::Refused(RoomRule::Banned))
    );
    chat.run(Command::Kick {
        user: alice,
        room,
        target: bob,
        reason: String::new(),
    })
    .unwrap();
    assert_eq!(
        chat.run(Command::JoinRoomWithKey {
            user: bob,
            room,
            key: "secret".into()
        }),
        Err(ChatError::Refused(RoomRule::Banned))
    );
    let state = chat.state.room(room).unwrap();
    assert!(!state.voiced.contains(&bob) && !state.members.contains(&bob));
    // A no-op change records nothing; the events tell the rest in IRC notation.
    assert_eq!(
        chat.run(modes(alice, vec![ModeChange::Limit(None)])),
        Ok(Response::Done)
    );
    let events = chat
        .state
        .events_after(&[Timeline::Room(room)], MessageId(0), 100);
    let described: Vec<String> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventViewKind::ModesChanged {
                by,
                modes,
                arguments,
            } => Some(format!("{by} {modes} {}", arguments.join(" "))),
            EventViewKind::Kicked {
                by,
                nickname,
                reason,
            } => Some(format!("{by} kicked {nickname} ({reason})")),
            EventViewKind::Invited { by, nickname } => Some(format!("{by} invited {nickname}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        described,
        vec![
            "alice +tm ",
            "alice +v bob",
            "alice +ikl secret 2",
            "alice invited carol",
            "alice kicked carol (bye)",
            "alice -i ",
            "alice -l ",
            "alice -m+b BOB!*@*",
            "alice kicked bob ()",
        ]
    );
}

proptest! {
    /// State machine replication in miniature: two replicas applying the same log end equal;
    /// a replica restored from a snapshot taken anywhere, then fed the rest of the log, ends
    /// equal too; the invariants hold after every step.
    #[test]
    fn replicas_and_snapshots_converge(
        commands in proptest::collection::vec((arbitrary_command(), proptest::option::of(0u64..3)), 1..120),
        snapshot_at in 0usize..120,
    ) {
        let mut primary = Harness::new();
        let mut log = Vec::new();
        for (sequence, (command, client)) in commands.into_iter().enumerate() {
            let session = client.map(|client| ClientSession { client: ClientId(client), sequence: SequenceNumber(sequence as u64) });
            let envelope = primary.envelope(session, command);
            log.push(envelope.clone());
            primary.apply_envelope(envelope);
        }
        let mut replica = ChatState::new();
        let mut restored = None;
        for (position, envelope) in log.iter().enumerate() {
            if position == snapshot_at.min(log.len() - 1) {
                restored = Some(ChatState::restore(&replica.snapshot()).unwrap());
            }
            replica.apply(LogIndex(position as u64 + 1), envelope.clone());
            if let Some(copy) = restored.as_mut() {
                copy.apply(LogIndex(position as u64 + 1), envelope.clone());
            }
        }
        prop_assert_eq!(replica.digest(), primary.state.digest());
        prop_assert_eq!(restored.unwrap().digest(), primary.state.digest());
    }
}

#[test]
fn guests_post_only_in_guest_rooms_and_not_as_an_account() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    chat.room(alice, "members-only");
    let guest = |room: &str, name: &str| Command::PostGuest {
        room_name: room.into(),
        name: name.into(),
        email: String::new(),
        body: "hi".into(),
    };
    assert_eq!(
        chat.run(guest("members-only", "ann")),
        Err(ChatError::NotMember)
    );
    assert!(matches!(
        chat.run(guest("lobby", "ALICE")),
        Err(ChatError::Invalid { .. })
    ));
    assert!(chat.run(guest("lobby", "ann")).is_ok());
    assert!(
        chat.run(guest("lobby", "bob")).is_ok(),
        "a guest room stays open to guests"
    );
    for n in 1..validate::MAX_GUEST_ROOMS {
        chat.run(guest(&format!("topic{n}"), "ann")).unwrap();
    }
    assert!(matches!(
        chat.run(guest("one-too-many", "ann")),
        Err(ChatError::Invalid { .. })
    ));
    assert!(
        chat.run(guest("topic7", "ann")).is_ok(),
        "existing guest rooms still work"
    );
}

#[test]
fn a_login_sweeps_expired_tokens() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    chat.run(Command::IssueToken {
        user: alice,
        token_hash: [1; 32],
        expires_unix_ms: 5,
    })
    .unwrap();
    let far = u64::MAX;
    chat.run(Command::IssueToken {
        user: alice,
        token_hash: [2; 32],
        expires_unix_ms: far,
    })
    .unwrap();
    assert_eq!(chat.state.tokens.len(), 1, "the expired token was removed");
    assert_eq!(chat.state.authenticate(&[2; 32], 0), Some(alice));
}

#[test]
fn feeds_merge_timelines_in_id_order_up_to_the_limit() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let rooms = [
        chat.room(alice, "a"),
        chat.room(alice, "b"),
        chat.room(alice, "c"),
    ];
    for n in 0..30 {
        chat.post(alice, rooms[n % 3], &format!("m{n}")).unwrap();
    }
    let timelines: Vec<Timeline> = rooms.iter().map(|room| Timeline::Room(*room)).collect();
    let all = chat.state.events_after(&timelines, MessageId(0), 1_000);
    assert_eq!(all.len(), 33, "three joins and thirty posts");
    assert!(all.windows(2).all(|pair| pair[0].id < pair[1].id));
    let page = chat.state.events_after(&timelines[..2], all[10].id, 5);
    let expected: Vec<MessageId> = all
        .iter()
        .filter(|event| event.id > all[10].id && event.timeline != timelines[2])
        .take(5)
        .map(|event| event.id)
        .collect();
    assert_eq!(
        page.iter().map(|event| event.id).collect::<Vec<_>>(),
        expected
    );
}

#[test]
fn away_is_replicated_state_and_only_changes_are_announced() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let away = |message: Option<&str>| Command::SetAway {
        user: alice,
        message: message.map(str::to_string),
    };
    let envelope = chat.envelope(None, away(Some("lunch")));
    let applied = chat.apply_envelope(envelope);
    assert_eq!(applied.reply, Ok(Response::Done));
    assert_eq!(
        applied.away_changes,
        vec![AwayChange {
            user: alice,
            message: Some("lunch".into())
        }]
    );
    assert_eq!(chat.state.away(alice), Some("lunch"));
    let envelope = chat.envelope(None, away(Some("lunch")));
    assert!(chat.apply_envelope(envelope).away_changes.is_empty());
    let copy = ChatState::restore(&chat.state.snapshot()).unwrap();
    assert_eq!(copy.away(alice), Some("lunch"));
    assert!(matches!(
        chat.run(away(Some(""))),
        Err(ChatError::Invalid { .. })
    ));
    assert!(matches!(
        chat.run(Command::SetAway {
            user: UserId(999),
            message: None
        }),
        Err(ChatError::UnknownUser)
    ));
    let envelope = chat.envelope(None, away(None));
    let applied = chat.apply_envelope(envelope);
    assert_eq!(applied.away_changes[0].message, None);
    assert_eq!(chat.state.away(alice), None);
}

#[test]
fn a_format_2_snapshot_is_read_with_nobody_away() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    chat.room(alice, "general");
    let current = chat.state.snapshot();
    // Format 2 was format 3 without the trailing (here empty) away map.
    let mut older = current[..current.len() - 1].to_vec();
    older[4..6].copy_from_slice(&2u16.to_le_bytes());
    let restored = ChatState::restore(&older).unwrap();
    assert_eq!(restored.digest(), chat.state.digest());
    older[4..6].copy_from_slice(&1u16.to_le_bytes());
    assert!(ChatState::restore(&older).is_err());
}

#[test]
fn history_between_bounds_and_times() {
    let mut chat = Harness::new();
    let alice = chat.user("alice");
    let room = chat.room(alice, "general");
    let ids: Vec<MessageId> = (0..5)
        .map(|n| chat.post(alice, room, &format!("m{n}")).unwrap())
        .collect();
    let timeline = Timeline::Room(room);
    let bodies = |page: Vec<MessageView>| page.into_iter().map(|m| m.body).collect::<Vec<_>>();
    let state = &chat.state;
    assert_eq!(
        bodies(state.history_between(timeline, Some(ids[0]), Some(ids[4]), 2, false)),
        ["m1", "m2"]
    );
    assert_eq!(
        bodies(state.history_between(timeline, Some(ids[0]), Some(ids[4]), 2, true)),
        ["m2", "m3"]
    );
    assert!(state
        .history_between(timeline, Some(ids[3]), Some(ids[1]), 9, true)
        .is_empty());
    let time_of = |id: MessageId| state.message(timeline, id).unwrap().time.wall_ms;
    assert_eq!(
        state.first_message_since(timeline, time_of(ids[2])),
        Some(ids[2])
    );
    assert_eq!(
        state.last_message_until(timeline, time_of(ids[2])),
        Some(ids[2])
    );
    assert_eq!(
        state.first_message_since(timeline, time_of(ids[4]) + 1),
        None
    );
    assert_eq!(
        state.last_message_until(timeline, time_of(ids[0]) - 1),
        None
    );
}
