//! The database's notion of "now", for timestamps and lease expiry.
//!
//! Every time the database writes comes from one [`Clock`], truncated to
//! microseconds (what both backends store), so a job read back equals the job
//! written. Tests and simulations move a clock forward instead of sleeping
//! through a lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// System time (or a frozen start time) plus an adjustable offset, shared by
/// all clones.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock; `Some`: a clock that only moves by `advance`.
    frozen_at: Option<DateTime<Utc>>,
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock stopped at `start` that only moves when [`Self::advance`]d
    /// (tests: equal timestamps, leases expired on demand).
    pub fn manual(start: DateTime<Utc>) -> Self {
        Clock {
            frozen_at: Some(start),
            offset_micros: Arc::default(),
        }
    }

    /// Now, in microseconds.
    pub fn now(&self) -> DateTime<Utc> {
        let base = self.frozen_at.unwrap_or_else(Utc::now);
        let micros = base
            .timestamp_micros()
            .saturating_add(self.offset_micros.load(Ordering::Relaxed));
        DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// A lease or timeout length as a chrono delta: more than zero, at most a day.
pub(crate) fn lease_delta(d: std::time::Duration) -> crate::Result<TimeDelta> {
    const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    if d.is_zero() || d > DAY {
        return Err(crate::Error::invalid(
            "lease duration",
            format!("{d:?}; must be more than zero and at most a day"),
        ));
    }
    TimeDelta::from_std(d).map_err(|e| crate::Error::invalid("lease duration", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_all_clones_and_now_is_micros() {
        let c = Clock::system();
        let d = c.clone();
        let before = c.now();
        d.advance(std::time::Duration::from_secs(3600));
        let after = c.now();
        assert!(after - before >= TimeDelta::seconds(3600));
        assert_eq!(after.timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn manual_clock_stands_still() {
        let c = Clock::manual(Utc::now());
        let t = c.now();
        assert_eq!(c.now(), t);
        c.advance(std::time::Duration::from_micros(5));
        assert_eq!(c.now() - t, TimeDelta::microseconds(5));
    }

    #[test]
    fn lease_bounds() {
        assert!(lease_delta(std::time::Duration::ZERO).is_err());
        assert!(lease_delta(std::time::Duration::from_secs(30)).is_ok());
        assert!(lease_delta(std::time::Duration::from_secs(2 * 24 * 3600)).is_err());
    }
}
