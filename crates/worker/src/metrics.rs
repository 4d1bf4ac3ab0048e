//! The worker's counters for `/metrics`: jobs finished by outcome, how long
//! they took, and what the lease sweep did.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use veritrain_db::RequeueReport;

use crate::Outcome;

/// Upper bounds (seconds) of the job-duration histogram's buckets.
const BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0,
];

/// Counters shared by the workers of one process.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    succeeded: u64,
    failed: u64,
    cancelled: u64,
    requeued: u64,
    lease_lost: u64,
    swept_requeued: u64,
    swept_failed: u64,
    swept_cancelled: u64,
    /// Cumulative bucket counts of job durations, and their sum.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_secs: f64,
}

impl WorkerMetrics {
    pub(crate) fn finished(&self, outcome: &Outcome, took: Duration) {
        let Ok(mut c) = self.inner.lock() else { return };
        match outcome {
            Outcome::Succeeded => c.succeeded += 1,
            Outcome::Failed(_) => c.failed += 1,
            Outcome::Cancelled => c.cancelled += 1,
            Outcome::Requeued(_) => c.requeued += 1,
            Outcome::LeaseLost => c.lease_lost += 1,
        }
        let secs = took.as_secs_f64();
        for (bound, n) in BUCKETS.iter().zip(c.buckets.iter_mut()) {
            if secs <= *bound {
                *n += 1;
            }
        }
        c.count += 1;
        c.sum_secs += secs;
    }

    pub(crate) fn swept(&self, report: &RequeueReport) {
        let Ok(mut c) = self.inner.lock() else { return };
        c.swept_requeued += report.requeued.len() as u64;
        c.swept_failed += report.failed.len() as u64;
        c.swept_cancelled += report.cancelled.len() as u64;
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let Ok(c) = self.inner.lock() else {
            return String::new();
        };
        let mut out = String::new();
        out.push_str(
            "# HELP veritrain_worker_jobs_total Jobs this process's workers ended, by outcome.\n\
             # TYPE veritrain_worker_jobs_total counter\n",
        );
        for (outcome, n) in [
            ("succeeded", c.succeeded),
            ("failed", c.failed),
            ("cancelled", c.cancelled),
            ("requeued", c.requeued),
            ("lease_lost", c.lease_lost),
        ] {
            let _ = writeln!(
                out,
                "veritrain_worker_jobs_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP veritrain_worker_job_duration_seconds Wall time of each job a worker ran, from claim to end.\n\
             # TYPE veritrain_worker_job_duration_seconds histogram\n",
        );
        for (bound, n) in BUCKETS.iter().zip(c.buckets.iter()) {
            let _ = writeln!(
                out,
                "veritrain_worker_job_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "veritrain_worker_job_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            c.count
        );
        let _ = writeln!(
            out,
            "veritrain_worker_job_duration_seconds_sum {}",
            c.sum_secs
        );
        let _ = writeln!(
            out,
            "veritrain_worker_job_duration_seconds_count {}",
            c.count
        );
        out.push_str(
            "# HELP veritrain_worker_swept_total Jobs of dead workers the lease sweep handled, by result.\n\
             # TYPE veritrain_worker_swept_total counter\n",
        );
        for (what, n) in [
            ("requeued", c.swept_requeued),
            ("failed", c.swept_failed),
            ("cancelled", c.swept_cancelled),
        ] {
            let _ = writeln!(out, "veritrain_worker_swept_total{{result=\"{what}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fill_cumulative_buckets() {
        let m = WorkerMetrics::default();
        m.finished(&Outcome::Succeeded, Duration::from_secs(3));
        m.finished(&Outcome::Failed("x".into()), Duration::from_secs(100));
        let text = m.render();
        assert!(text.contains("veritrain_worker_jobs_total{outcome=\"succeeded\"} 1"));
        assert!(text.contains("veritrain_worker_jobs_total{outcome=\"failed\"} 1"));
        assert!(text.contains("veritrain_worker_job_duration_seconds_bucket{le=\"1\"} 0"));
        assert!(text.contains("veritrain_worker_job_duration_seconds_bucket{le=\"5\"} 1"));
        assert!(text.contains("veritrain_worker_job_duration_seconds_bucket{le=\"300\"} 2"));
        assert!(text.contains("veritrain_worker_job_duration_seconds_count 2"));
    }
}
