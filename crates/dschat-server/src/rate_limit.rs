//! Token-bucket rate limits per account and per client address.
//!
//! Each key (an account, an address) has a bucket that refills at `per_second` up to `burst`;
//! an action takes one token or is refused with the time until one is available. The table of
//! buckets is bounded ([`MAX_TRACKED_KEYS`]): when full, buckets that have refilled completely
//! (and so carry no information) are dropped; if none has, the oldest half is dropped.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Most keys one limiter tracks.
pub const MAX_TRACKED_KEYS: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A set of token buckets with one rate.
#[derive(Debug)]
pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter refilling `per_second` tokens up to `burst`; `per_second == 0` never limits.
    pub fn new(per_second: f64, burst: f64) -> RateLimiter<K> {
        RateLimiter {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at time `now`, or says how long until one is available.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    fn evict(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let full_after = Duration::from_secs_f64(self.burst / self.per_second);
        buckets.retain(|_, bucket| now.saturating_duration_since(bucket.updated) < full_after);
        if buckets.len() >= MAX_TRACKED_KEYS {
            let mut ages: Vec<Instant> = buckets.values().map(|bucket| bucket.updated).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            buckets.retain(|_, bucket| bucket.updated > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(&"a", start).is_ok());
        }
        let wait = limiter.check(&"a", start).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(limiter.check(&"b", start).is_ok(), "keys are independent");
        assert!(limiter
            .check(&"a", start + Duration::from_millis(500))
            .is_ok());
    }

    #[test]
    fn zero_rate_never_limits() {
        let limiter = RateLimiter::new(0.0, 0.0);
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.check(&1, now).is_ok()));
    }
}
