//! The audit log: an append-only, hash-chained record of what happened on
//! the service (submissions, downloads, verifications, integrity alerts,
//! auth failures, key events), readable by admins.
//!
//! Each entry's `hash` is SHA-256 over the JSON array
//! `[seq, at (µs), kind, actor, job_id, detail, prev_hash]`, and its
//! `prev_hash` is the previous entry's hash (64 zeros for the first). An
//! edited entry no longer matches its hash; a deleted entry leaves a gap in
//! `seq` or a `prev_hash` that matches nothing; [`crate::Database::verify_audit`]
//! reports the first entry where the chain breaks. Removing entries from the
//! end cannot be seen from the chain alone: compare the head hash
//! ([`AuditCheck::head`]) with one recorded elsewhere (the `/metrics` of
//! another node, a ticket, a log shipper).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest `detail` document stored, in bytes.
pub const MAX_DETAIL_BYTES: usize = 16 * 1024;

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// What happened (`job.submitted`, `auth.failure`, ...).
    pub kind: String,
    /// Who did it: `tenant/object_id`, or none (anonymous, the service).
    pub actor: Option<String>,
    /// The job concerned.
    pub job_id: Option<String>,
    /// Details, as hashed.
    pub detail: Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The result of checking the whole chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditCheck {
    /// Entries read.
    pub entries: u64,
    /// The last entry's hash (the head of the chain).
    pub head: Option<String>,
    /// The first entry where the chain breaks, and why.
    pub broken: Option<(u64, String)>,
}

impl AuditCheck {
    /// Whether the chain is intact.
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// The hash of an entry with these fields (`detail` as its exact text).
pub(crate) fn entry_hash(
    seq: u64,
    at_micros: i64,
    kind: &str,
    actor: Option<&str>,
    job_id: Option<&str>,
    detail: &str,
    prev_hash: &str,
) -> String {
    // `detail` goes in as a string, so the hash covers its exact bytes
    // however a database might store JSON.
    let preimage = serde_json::json!([seq, at_micros, kind, actor, job_id, detail, prev_hash]);
    hex::encode(Sha256::digest(preimage.to_string().as_bytes()))
}

/// A stored row, as both backends read it.
pub(crate) struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub job_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    /// Whether this row's hash matches its fields.
    pub(crate) fn hash_ok(&self) -> bool {
        let seq = u64::try_from(self.seq).unwrap_or(0);
        entry_hash(
            seq,
            self.at,
            &self.kind,
            self.actor.as_deref(),
            self.job_id.as_deref(),
            &self.detail,
            &self.prev_hash,
        ) == self.hash
    }

    pub(crate) fn into_entry(self) -> crate::Result<AuditEntry> {
        let corrupt = |m: String| crate::Error::corrupt("audit_log", m);
        Ok(AuditEntry {
            seq: u64::try_from(self.seq).map_err(|_| corrupt(format!("seq {}", self.seq)))?,
            at: DateTime::from_timestamp_micros(self.at)
                .ok_or_else(|| corrupt(format!("at {}", self.at)))?,
            kind: self.kind,
            actor: self.actor,
            job_id: self.job_id,
            detail: serde_json::from_str(&self.detail)
                .map_err(|e| corrupt(format!("detail: {e}")))?,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// What a backend needs to append an entry; it supplies `seq` and
/// `prev_hash` inside its transaction.
pub(crate) struct NewAudit<'a> {
    pub at_micros: i64,
    pub kind: &'a str,
    pub actor: Option<&'a str>,
    pub job_id: Option<&'a str>,
    pub detail: &'a str,
}

impl NewAudit<'_> {
    pub(crate) fn hash(&self, seq: u64, prev_hash: &str) -> String {
        entry_hash(
            seq,
            self.at_micros,
            self.kind,
            self.actor,
            self.job_id,
            self.detail,
            prev_hash,
        )
    }
}
