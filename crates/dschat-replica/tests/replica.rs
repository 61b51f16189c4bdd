//! A three-replica cluster over simulated disks, with messages delivered by hand: writes are
//! acknowledged only once committed, reads see them, and a restart recovers them; a new leader
//! stamps its commands after those it inherits.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use dschat_core::chat::{Command, Response};
use dschat_core::ids::NodeId;
use dschat_core::raft::{self, RoleKind};
use dschat_core::state_machine::StateMachine;
use dschat_replica::{AppliedEntry, Effects, Outcome, Replica, ReplicaConfig, Request, RequestId};
use dschat_storage::disk::{CrashPlan, SimulatedDisk};
use dschat_storage::WalOptions;

const NOW_UNIX_MS: u64 = 1_800_000_000_000;

fn config(node: u64) -> ReplicaConfig {
    ReplicaConfig {
        node: NodeId(node),
        raft: raft::Config {
            seed: node,
            snapshot_threshold_entries: 8,
            ..raft::Config::default()
        },
        wal: WalOptions::default(),
        initial_voters: Some(vec![NodeId(1), NodeId(2), NodeId(3)]),
    }
}

struct Cluster {
    disks: Vec<SimulatedDisk>,
    replicas: Vec<Option<Replica>>,
    network: VecDeque<raft::Envelope>,
    completions: Vec<(RequestId, Outcome)>,
    /// Every entry applied, with the index of the node that applied it.
    applied: Vec<(usize, AppliedEntry)>,
}

impl Cluster {
    fn new() -> Cluster {
        let disks: Vec<SimulatedDisk> = (0..3).map(|_| SimulatedDisk::new()).collect();
        let replicas = (0..3)
            .map(|i| Some(open(&disks[i], i as u64 + 1)))
            .collect();
        Cluster {
            disks,
            replicas,
            network: VecDeque::new(),
            completions: Vec::new(),
            applied: Vec::new(),
        }
    }

    fn absorb(&mut self, node: usize, effects: Effects) {
        self.network.extend(effects.messages);
        self.completions.extend(effects.completions);
        self.applied
            .extend(effects.applied.into_iter().map(|entry| (node, entry)));
    }

    fn deliver_all(&mut self) {
        while let Some(envelope) = self.network.pop_front() {
            let to = envelope.to.0 as usize - 1;
            if let Some(replica) = self.replicas[to].as_mut() {
                let effects = replica.receive(envelope).expect("storage works");
                self.absorb(to, effects);
            }
        }
    }

    fn leader(&mut self) -> usize {
        let effects = self.replicas[0].as_mut().unwrap().campaign().unwrap();
        self.absorb(0, effects);
        self.deliver_all();
        let leader = (0..3)
            .find(|&i| {
                self.replicas[i]
                    .as_ref()
                    .is_some_and(|r| r.status().role == RoleKind::Leader)
            })
            .expect("an election with every message delivered elects a leader");
        leader
    }

    fn submit(&mut self, node: usize, id: u64, request: Request) -> Outcome {
        let effects = self.replicas[node]
            .as_mut()
            .unwrap()
            .submit(RequestId(id), request, NOW_UNIX_MS)
            .unwrap();
        self.absorb(node, effects);
        self.deliver_all();
        let position = self
            .completions
            .iter()
            .position(|(request, _)| *request == RequestId(id))
            .expect("the request completed");
        self.completions.remove(position).1
    }
}

fn open(disk: &SimulatedDisk, node: u64) -> Replica {
    Replica::open(Arc::new(disk.clone()), Path::new("/"), config(node)).expect("opens")
}

fn register(nickname: &str) -> Request {
    Request::Write {
        session: None,
        command: Command::Register {
            nickname: nickname.into(),
            password_hash: "$argon2id$test".into(),
        },
    }
}

#[test]
fn writes_are_acknowledged_after_commit_and_survive_a_crash_of_every_node() {
    let mut cluster = Cluster::new();
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    assert!(matches!(
        cluster.submit(follower, 1, register("ada")),
        Outcome::NotLeader { leader_hint: Some(hint) } if hint.0 as usize == leader + 1
    ));
    for (id, nickname) in [
        "ada", "bob", "cyd", "dee", "eve", "fay", "gus", "hal", "ivy", "jo",
    ]
    .iter()
    .enumerate()
    {
        let outcome = cluster.submit(leader, id as u64 + 10, register(nickname));
        assert!(
            matches!(
                outcome,
                Outcome::Applied {
                    reply: Ok(Response::UserCreated(_)),
                    ..
                }
            ),
            "{nickname}: {outcome:?}"
        );
    }
    assert!(matches!(
        cluster.submit(leader, 99, register("ada")),
        Outcome::Applied { reply: Err(_), .. }
    ));
    assert!(matches!(
        cluster.submit(leader, 100, Request::Read),
        Outcome::ReadReady { .. }
    ));
    let applied_before = cluster.replicas[leader]
        .as_ref()
        .unwrap()
        .chat()
        .applied_index();
    assert!(
        cluster.replicas[leader]
            .as_ref()
            .unwrap()
            .status()
            .snapshot_index
            .0
            > 0,
        "the log was compacted into a snapshot"
    );

    // Power loss on every node at once, losing whatever was not synced.
    for (i, disk) in cluster.disks.iter().enumerate() {
        cluster.replicas[i] = None;
        disk.crash(CrashPlan::Exact {
            kept_unsynced_bytes: 0,
            kept_directory_operations: 0,
        });
    }
    cluster.network.clear();
    for i in 0..3 {
        cluster.replicas[i] = Some(open(&cluster.disks[i], i as u64 + 1));
    }
    let leader = cluster.leader();
    assert!(matches!(
        cluster.submit(leader, 200, Request::Read),
        Outcome::ReadReady { .. }
    ));
    let chat = cluster.replicas[leader].as_ref().unwrap().chat();
    assert_eq!(chat.user_count(), 10);
    for nickname in ["ada", "jo"] {
        assert!(
            chat.user_by_nickname(nickname).is_some(),
            "{nickname} survived"
        );
    }
    assert!(
        chat.applied_index() > applied_before,
        "the new leader's no-op follows every recovered entry"
    );
}

/// Delivers messages between `candidate` and `voter` until the voter receives a vote request;
/// returns what the voter did with it.
fn until_vote_request(candidate: &mut Replica, voter: &mut Replica) -> (raft::Envelope, Effects) {
    let mut network: VecDeque<raft::Envelope> = candidate.campaign().unwrap().messages.into();
    while let Some(envelope) = network.pop_front() {
        match envelope.to.0 {
            1 => network.extend(candidate.receive(envelope).unwrap().messages),
            2 => {
                let is_vote_request = matches!(envelope.message, raft::Message::VoteRequest(_));
                let effects = voter.receive(envelope.clone()).unwrap();
                if is_vote_request {
                    return (envelope, effects);
                }
                network.extend(effects.messages);
            }
            _ => {} // the third voter is down
        }
    }
    panic!("the candidate never asked for a vote");
}

#[test]
fn with_deferred_sync_a_vote_leaves_only_after_the_host_syncs_and_a_crash_before_loses_it() {
    let disks: Vec<SimulatedDisk> = (0..2).map(|_| SimulatedDisk::new()).collect();
    let mut candidate = open(&disks[0], 1);
    let mut voter = open(&disks[1], 2);
    voter.set_deferred_sync(true);
    let term_before = voter.status().term;

    let (request, effects) = until_vote_request(&mut candidate, &mut voter);
    assert!(
        effects.messages.is_empty(),
        "the vote waits for its sync: {:?}",
        effects.messages
    );
    assert!(voter.sync_pending());
    assert_eq!(voter.status().term, request.term);

    // Power loss before the sync: the vote and the term it was cast in are gone.
    drop(voter);
    disks[1].crash(CrashPlan::Exact {
        kept_unsynced_bytes: 0,
        kept_directory_operations: 0,
    });
    let mut voter = open(&disks[1], 2);
    assert_eq!(voter.status().term, term_before);

    // The same request again, and this time the sync completes: the vote leaves.
    voter.set_deferred_sync(true);
    let effects = voter.receive(request).unwrap();
    assert!(effects.messages.is_empty() && voter.sync_pending());
    let effects = voter.sync().unwrap();
    assert!(!voter.sync_pending());
    assert!(
        effects.messages.iter().any(|envelope| matches!(
            envelope.message,
            raft::Message::VoteResponse(raft::VoteResponse { granted: true })
        )),
        "the granted vote leaves after the sync: {:?}",
        effects.messages
    );
}

/// TESTING.md row 18: a new leader whose clock is behind must still stamp its commands later
/// than the old leader's commands it holds but has not applied yet, or server times would run
/// backwards along the log.
#[test]
fn a_new_leader_with_a_slower_clock_stamps_after_the_entries_it_inherits() {
    let mut cluster = Cluster::new();
    let old = cluster.leader();
    // The old leader's clock is 5 s ahead. Its write reaches both followers, but their answers
    // are lost and it crashes: nobody has committed or applied the write.
    let effects = cluster.replicas[old]
        .as_mut()
        .unwrap()
        .submit(RequestId(1), register("ada"), NOW_UNIX_MS + 5_000)
        .unwrap();
    for envelope in effects.messages {
        let to = envelope.to.0 as usize - 1;
        cluster.replicas[to]
            .as_mut()
            .unwrap()
            .receive(envelope)
            .unwrap();
    }
    cluster.replicas[old] = None;
    let old_stamp = NOW_UNIX_MS + 5_000;

    // The followers' election timers run out; one of them wins, and takes a write at once,
    // before its first entry commits (so before it applies the old leader's write).
    let leader = |cluster: &Cluster| {
        (0..3).find(|&node| {
            cluster.replicas[node]
                .as_ref()
                .is_some_and(|replica| replica.status().role == RoleKind::Leader)
        })
    };
    let mut new = None;
    for _ in 0..100 {
        for node in 0..3 {
            if let Some(replica) = cluster.replicas[node].as_mut() {
                let effects = replica.tick().unwrap();
                cluster.absorb(node, effects);
            }
        }
        while new.is_none() {
            let Some(envelope) = cluster.network.pop_front() else {
                break;
            };
            let to = envelope.to.0 as usize - 1;
            if let Some(replica) = cluster.replicas[to].as_mut() {
                let effects = replica.receive(envelope).unwrap();
                cluster.absorb(to, effects);
            }
            new = leader(&cluster);
        }
        if new.is_some() {
            break;
        }
    }
    let new = new.expect("the two followers elect a leader");
    assert!(
        !cluster
            .applied
            .iter()
            .any(|(node, entry)| *node == new && entry.time.is_some()),
        "the new leader has not applied the old leader's write yet"
    );
    let outcome = cluster.submit(new, 2, register("bob"));
    assert!(
        matches!(outcome, Outcome::Applied { reply: Ok(_), .. }),
        "{outcome:?}"
    );

    let stamps: Vec<_> = cluster
        .applied
        .iter()
        .filter(|(node, _)| *node == new)
        .filter_map(|(_, entry)| Some((entry.index, entry.time?)))
        .collect();
    let inherited = stamps
        .iter()
        .position(|(_, time)| time.wall_ms == old_stamp)
        .expect("the new leader applied the old leader's write");
    assert!(
        stamps.windows(2).all(|pair| pair[0].1 < pair[1].1),
        "server times strictly increase along the log: {stamps:?}"
    );
    assert!(
        stamps.len() > inherited + 1,
        "the new leader's own write follows the inherited one: {stamps:?}"
    );
}
