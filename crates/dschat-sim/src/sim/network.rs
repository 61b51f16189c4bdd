//! The simulated network between nodes: latency, loss, duplication and cut links.
//!
//! Each message gets its own delivery time drawn from the current conditions, so jitter
//! alone reorders messages. A cut link drops what is sent over it; messages already in flight
//! when a link is cut still arrive (as packets already on the wire do).

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::{Micros, MILLISECOND};

/// The conditions every message is subject to.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConditions {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplication: f64,
    /// Base one-way latency range.
    pub latency: (Micros, Micros),
    /// Probability that a message takes a slow path, and that path's latency range.
    pub slow: (f64, Micros, Micros),
}

impl NetworkConditions {
    /// A healthy local network: 0.2 to 1 ms, nothing lost.
    pub fn healthy() -> NetworkConditions {
        NetworkConditions {
            loss: 0.0,
            duplication: 0.0,
            latency: (200, MILLISECOND),
            slow: (0.0, 0, 0),
        }
    }
}

/// Links, conditions and what the run chose to cut.
#[derive(Debug)]
pub struct Network {
    /// Current conditions.
    pub conditions: NetworkConditions,
    /// Directed links (from, to) that drop everything.
    cut: BTreeSet<(u64, u64)>,
}

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost (cut link or bad luck).
    Lost,
    /// Delivered after this long.
    Delivered(Micros),
    /// Delivered twice, after these delays.
    Duplicated(Micros, Micros),
}

impl Network {
    /// A healthy network with nothing cut.
    pub fn new() -> Network {
        Network {
            conditions: NetworkConditions::healthy(),
            cut: BTreeSet::new(),
        }
    }

    /// Decides the fate of a message from `from` to `to`.
    pub fn fate(&self, rng: &mut ChaCha8Rng, from: u64, to: u64) -> Fate {
        if self.cut.contains(&(from, to)) {
            return Fate::Lost;
        }
        let conditions = &self.conditions;
        if conditions.loss > 0.0 && rng.gen_bool(conditions.loss) {
            return Fate::Lost;
        }
        let first = self.delay(rng);
        if conditions.duplication > 0.0 && rng.gen_bool(conditions.duplication) {
            return Fate::Duplicated(first, self.delay(rng));
        }
        Fate::Delivered(first)
    }

    /// A one-way delay under the current conditions.
    pub fn delay(&self, rng: &mut ChaCha8Rng) -> Micros {
        let conditions = &self.conditions;
        let (probability, low, high) = conditions.slow;
        if probability > 0.0 && rng.gen_bool(probability) {
            return rng.gen_range(low..=high);
        }
        rng.gen_range(conditions.latency.0..=conditions.latency.1)
    }

    /// Cuts these directed links (in addition to any already cut).
    pub fn cut(&mut self, links: impl IntoIterator<Item = (u64, u64)>) {
        self.cut.extend(links);
    }

    /// Heals every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The directed links cut now.
    pub fn cut_links(&self) -> Vec<(u64, u64)> {
        self.cut.iter().copied().collect()
    }

    /// Whether `from` can reach `to` now.
    pub fn connected(&self, from: u64, to: u64) -> bool {
        !self.cut.contains(&(from, to))
    }
}

impl Default for Network {
    fn default() -> Network {
        Network::new()
    }
}

/// Both directions of every link between `side` and the other nodes of `nodes`.
pub fn split(nodes: &[u64], side: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut links = Vec::new();
    for &a in nodes.iter().filter(|n| side.contains(n)) {
        for &b in nodes.iter().filter(|n| !side.contains(n)) {
            links.push((a, b));
            links.push((b, a));
        }
    }
    links
}
