//! A hand-made trace of a five-node cluster that contains every kind of event: an election,
//! heartbeats and log replication, a partition that leaves two leaders, a clock jump, a pause,
//! a crash and restart followed by a snapshot, and a violation. Deterministic, no randomness.

use dschat_sim::trace::{Trace, TraceEvent};

/// Microseconds per millisecond, to write the script below in milliseconds.
const MS: u64 = 1000;

/// A partition's span and its cut links.
type Cut = (u64, u64, Vec<(u64, u64)>);

/// Builds the sample by replaying a script of who sends what when.
pub struct SampleBuilder {
    events: Vec<TraceEvent>,
    /// Partitions as (from, to, cut links), to decide which messages are lost.
    cuts: Vec<Cut>,
    /// When each node was down, as (node, from, to).
    down: Vec<(u64, u64, u64)>,
    sent: u64,
}

impl SampleBuilder {
    /// A one-way latency between 0.3 and 1.2 ms that varies from message to message.
    fn latency_us(&mut self) -> u64 {
        self.sent += 1;
        300 + (self.sent * 7919) % 900
    }

    fn is_lost(&self, from: u64, to: u64, at_us: u64) -> bool {
        let cut = self.cuts.iter().any(|(start, end, links)| {
            (*start..*end).contains(&at_us) && links.contains(&(from, to))
        });
        let down = self.down.iter().any(|(node, start, end)| {
            (*node == to || *node == from) && (*start..*end).contains(&at_us)
        });
        cut || down
    }

    /// A request from `from` to `to` at `at_us` and, if it arrives, its response.
    fn round_trip(&mut self, from: u64, to: u64, request: &str, response: &str, at_us: u64) {
        let latency = self.latency_us();
        if self.is_lost(from, to, at_us) {
            self.message(from, to, request, at_us, None);
            return;
        }
        let arrived_us = at_us + latency;
        self.message(from, to, request, at_us, Some(arrived_us));
        let reply_us = arrived_us + 50;
        let back = self.latency_us();
        let received = (!self.is_lost(to, from, reply_us)).then_some(reply_us + back);
        self.message(to, from, response, reply_us, received);
    }

    fn message(&mut self, from: u64, to: u64, kind: &str, sent_us: u64, received_us: Option<u64>) {
        self.events.push(TraceEvent::Message {
            from,
            to,
            kind: kind.to_string(),
            sent_us,
            received_us,
        });
    }

    /// Heartbeats and log requests from `leader` to `followers` during `[from_ms, to_ms)`.
    fn lead(&mut self, leader: u64, followers: &[u64], from_ms: u64, to_ms: u64) {
        let mut at_ms = from_ms;
        while at_ms < to_ms {
            for follower in followers {
                if at_ms.is_multiple_of(150) {
                    self.round_trip(
                        leader,
                        *follower,
                        "LogRequest",
                        "LogResponse",
                        at_ms * MS + 20,
                    );
                } else {
                    self.round_trip(
                        leader,
                        *follower,
                        "Heartbeat",
                        "HeartbeatResponse",
                        at_ms * MS,
                    );
                }
            }
            at_ms += 50;
        }
    }

    /// A pre-vote round and a vote round by `candidate` at `at_ms`.
    fn elect(&mut self, candidate: u64, voters: &[u64], at_ms: u64) {
        for voter in voters {
            self.round_trip(
                candidate,
                *voter,
                "PreVoteRequest",
                "PreVoteResponse",
                at_ms * MS,
            );
        }
        for voter in voters {
            self.round_trip(
                candidate,
                *voter,
                "VoteRequest",
                "VoteResponse",
                at_ms * MS + 3 * MS,
            );
        }
    }
}

/// The sample trace: about three seconds of a five-node cluster.
pub fn sample_trace() -> Trace {
    let partition_links: Vec<(u64, u64)> = [1, 2]
        .iter()
        .flat_map(|a| [3, 4, 5].iter().flat_map(move |b| [(*a, *b), (*b, *a)]))
        .collect();
    let mut builder = SampleBuilder {
        events: Vec::new(),
        cuts: vec![(800 * MS, 1600 * MS, partition_links.clone())],
        down: vec![(5, 2000 * MS, 2400 * MS)],
        sent: 0,
    };
    builder.elect(2, &[1, 3, 4, 5], 150);
    builder.events.push(TraceEvent::Leader {
        node: 2,
        term: 2,
        from_us: 156 * MS,
        to_us: Some(1600 * MS),
    });
    builder.lead(2, &[1, 3, 4, 5], 200, 1600);
    builder.events.push(TraceEvent::Partition {
        from_us: 800 * MS,
        to_us: Some(1600 * MS),
        cut: partition_links,
        description: "{n1, n2} | {n3, n4, n5}".to_string(),
    });
    builder.elect(3, &[1, 2, 4, 5], 1100);
    builder.events.push(TraceEvent::Leader {
        node: 3,
        term: 3,
        from_us: 1106 * MS,
        to_us: None,
    });
    builder.lead(3, &[1, 2, 4, 5], 1150, 3000);
    builder.events.push(TraceEvent::ClockJump {
        node: 1,
        at_us: 1300 * MS,
        delta_ms: 250,
    });
    builder.events.push(TraceEvent::Violation {
        at_us: 1450 * MS,
        description:
            "stale read: client 7 read key 1 = 3 from n2 after the write of 4 committed in term 3"
                .to_string(),
    });
    builder.events.push(TraceEvent::Pause {
        node: 4,
        from_us: 1700 * MS,
        to_us: 1900 * MS,
    });
    builder.events.push(TraceEvent::Crash {
        node: 5,
        at_us: 2000 * MS,
    });
    builder.events.push(TraceEvent::Restart {
        node: 5,
        at_us: 2400 * MS,
    });
    builder.round_trip(3, 5, "SnapshotChunk", "SnapshotResponse", 2420 * MS);
    builder.events.push(TraceEvent::ClockJump {
        node: 4,
        at_us: 2600 * MS,
        delta_ms: -120,
    });
    Trace {
        nodes: vec![1, 2, 3, 4, 5],
        events: builder.events,
    }
}
