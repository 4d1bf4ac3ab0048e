//! Counters for `/metrics`, in the Prometheus text format: this API node's
//! counters, the jobs by state and the queue depth (read from the database
//! at each scrape, so every node reports the same), and the counters of the
//! workers running in this process (job outcomes and durations).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Verifications run to a report.
    pub verifications: AtomicU64,
    /// Of those, reports that failed.
    pub verification_failures: AtomicU64,
    /// Uploads refused before verifying: too large.
    pub refused_too_large: AtomicU64,
    /// Uploads refused before verifying: not a readable bundle archive.
    pub refused_bad_archive: AtomicU64,
    /// Requests refused by the rate limiter.
    pub rate_limited: AtomicU64,
    /// Requests refused because every verification slot was busy.
    pub busy: AtomicU64,
    /// Requests with a missing, invalid or role-less token.
    pub auth_failures: AtomicU64,
    /// Jobs accepted by `POST /v1/jobs`.
    pub jobs_submitted: AtomicU64,
    /// Submissions refused by the cheap intake checks (422).
    pub jobs_rejected: AtomicU64,
    /// Integrity checks or bundle downloads that found a stored object changed.
    pub integrity_failures: AtomicU64,
    /// Authenticated requests refused by the per-user rate limit.
    pub rate_limited_users: AtomicU64,
    /// Audit entries that could not be written.
    pub audit_failures: AtomicU64,
    /// Alert webhook calls that failed.
    pub alert_webhook_failures: AtomicU64,
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, labels: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name}{labels} {}", v.load(Relaxed));
        };
        counter(
            "veritrain_verifications_total",
            "Bundle verifications run to a report.",
            "",
            &self.verifications,
        );
        counter(
            "veritrain_verification_failures_total",
            "Verification reports that failed.",
            "",
            &self.verification_failures,
        );
        counter(
            "veritrain_verify_refused_total",
            "Verification uploads refused before verifying.",
            "{reason=\"too_large\"}",
            &self.refused_too_large,
        );
        let _ = writeln!(
            out,
            "veritrain_verify_refused_total{{reason=\"bad_archive\"}} {}",
            self.refused_bad_archive.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "veritrain_verify_refused_total{{reason=\"rate_limited\"}} {}",
            self.rate_limited.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "veritrain_verify_refused_total{{reason=\"busy\"}} {}",
            self.busy.load(Relaxed)
        );
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Relaxed));
        };
        counter(
            "veritrain_auth_failures_total",
            "Requests refused for a missing, invalid or role-less token.",
            &self.auth_failures,
        );
        counter(
            "veritrain_jobs_submitted_total",
            "Jobs accepted by POST /v1/jobs on this node.",
            &self.jobs_submitted,
        );
        counter(
            "veritrain_jobs_rejected_total",
            "Submissions refused by the intake checks (422) on this node.",
            &self.jobs_rejected,
        );
        counter(
            "veritrain_integrity_failures_total",
            "Integrity checks that found a stored object changed.",
            &self.integrity_failures,
        );
        counter(
            "veritrain_user_rate_limited_total",
            "Authenticated requests refused by the per-user rate limit.",
            &self.rate_limited_users,
        );
        counter(
            "veritrain_alert_webhook_failures_total",
            "Integrity alert webhook calls that failed.",
            &self.alert_webhook_failures,
        );
        counter(
            "veritrain_audit_write_failures_total",
            "Audit entries that could not be written.",
            &self.audit_failures,
        );
        out
    }
}

/// Jobs by state and the queue depth, as gauges.
pub fn render_jobs(counts: &veritrain_db::StateCounts, queue_depth: u64) -> String {
    let mut out = String::from(
        "# HELP veritrain_jobs Jobs in the database, by state.\n# TYPE veritrain_jobs gauge\n",
    );
    for (state, n) in counts {
        let _ = writeln!(out, "veritrain_jobs{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP veritrain_queue_depth Jobs waiting for a worker.\n# TYPE veritrain_queue_depth gauge\nveritrain_queue_depth {queue_depth}"
    );
    out
}
