//! Counters for `/metrics`, in the Prometheus text format. Only what this
//! server does today is counted; the jobs' states, durations and queue
//! depth arrive with the jobs API.

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
        out
    }
}
