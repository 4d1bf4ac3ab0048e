//! A token bucket per key: per client address for the public,
//! unauthenticated endpoints (`POST /v1/verify`) and for failed sign-ins,
//! per user for the authenticated API. A client over its budget gets `429` with
//! `Retry-After`, never an error of the server (the prior art's limiter
//! crashed with a 500). The table is bounded: when it grows past
//! [`MAX_CLIENTS`], buckets that have refilled are dropped first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most client addresses tracked at once.
pub const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets per key (client address by default).
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    /// `per_minute` requests a minute on average, `burst` at once.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `ip` (the key) at `now`; `Err(wait)` when there is none.
    pub fn check(&self, ip: K, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update;
        // the table is still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&ip) {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < burst
            });
            if buckets.len() >= MAX_CLIENTS {
                // Every tracked client is mid-burst: refuse newcomers
                // rather than grow without bound.
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
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
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(Duration::from_secs_f64(wait.max(0.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_then_refusal_then_refill() {
        let rl = RateLimiter::new(60, 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        for _ in 0..3 {
            rl.check(ip, t).unwrap();
        }
        let wait = rl.check(ip, t).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // Another address has its own bucket.
        rl.check("192.0.2.2".parse().unwrap(), t).unwrap();
        // One token back after a second (60 a minute).
        rl.check(ip, t + Duration::from_millis(1001)).unwrap();
        assert!(rl.check(ip, t + Duration::from_millis(1002)).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let rl = RateLimiter::new(60, 1);
        let t = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 10) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + i));
            let _ = rl.check(ip, t);
        }
        assert!(rl.buckets.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
