//! The job model shared by both backends: ids, owners, states, the job row,
//! leases, page cursors and events.
//!
//! Both backends decode into these same structs; only the SQL and the column
//! types differ (see `docs/database.md`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Longest owner id part, worker id or reason code we store.
pub const MAX_ID_LEN: usize = 256;

/// A job id: a random UUID v4, shown lowercase and hyphenated.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(Uuid);

impl JobId {
    /// A fresh random id (122 random bits from the OS generator).
    #[expect(
        clippy::new_without_default,
        reason = "a Default id would hide that every call draws a fresh random id"
    )]
    pub fn new() -> Self {
        JobId(Uuid::new_v4())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub(crate) fn from_uuid(u: Uuid) -> Self {
        JobId(u)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lowercase hyphenated: the SQLite text form, whose byte order equals
        // the Postgres `uuid` order, so cursors sort the same on both.
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

impl FromStr for JobId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        // Only the canonical 36-character form: one id, one spelling.
        if s.len() != 36 {
            return Err(Error::BadId(s.chars().take(64).collect()));
        }
        Uuid::parse_str(s)
            .map(JobId)
            .map_err(|_| Error::BadId(s.to_owned()))
    }
}

/// A user: Entra ID tenant id and object id (`tid`, `oid`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    tid: String,
    oid: String,
}

impl Owner {
    /// An owner from token claims; both parts must be non-empty and at most
    /// [`MAX_ID_LEN`] bytes.
    pub fn new(tid: impl Into<String>, oid: impl Into<String>) -> Result<Self> {
        let (tid, oid) = (tid.into(), oid.into());
        check_id("owner tid", &tid)?;
        check_id("owner oid", &oid)?;
        Ok(Owner { tid, oid })
    }

    /// The tenant id.
    pub fn tid(&self) -> &str {
        &self.tid
    }

    /// The object id.
    pub fn oid(&self) -> &str {
        &self.oid
    }

    /// Rebuilds an owner read back from the database (already validated on
    /// the way in).
    pub(crate) fn from_db(tid: String, oid: String) -> Self {
        Owner { tid, oid }
    }
}

/// Which jobs a caller may see. Every read takes one, so no query can forget
/// the owner filter (the prior art listed every user's jobs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Only the jobs of this owner (developers).
    Owner(Owner),
    /// Every job (auditors, admins, workers).
    All,
}

/// Where a job is in its life. See [`crate::state`] for the allowed moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Claimed; the worker runs the intake checks.
    Validating,
    /// The sandboxed trainer runs.
    Training,
    /// Hashing outputs and signing the provenance.
    Attesting,
    /// Finished with a signed bundle. Terminal.
    Succeeded,
    /// Finished without a bundle; `reason` says why. Terminal.
    Failed,
    /// Stopped on request; `reason` says by whom. Terminal.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Validating,
        JobState::Training,
        JobState::Attesting,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Validating => "validating",
            JobState::Training => "training",
            JobState::Attesting => "attesting",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A finished job: its state never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// A state in which a worker holds a lease on the job.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            JobState::Validating | JobState::Training | JobState::Attesting
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed or was cancelled: a stable code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Machine-readable code (`job.worker_lost`, `keras.disallowed_layer`, ...).
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}

impl Reason {
    /// Code of a job whose worker stopped renewing its lease too many times.
    pub const WORKER_LOST: &'static str = "job.worker_lost";
    /// Code of a job cancelled on request.
    pub const CANCELLED: &'static str = "job.cancelled";

    /// A reason.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Reason {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One uploaded input object of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputObject {
    /// Object store key.
    pub key: String,
    /// What the input is (`model`, `dataset`, `definition`) or its file name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256, computed while streaming the upload.
    pub sha256: String,
}

/// Training progress reported by the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs completed.
    pub epoch: u32,
    /// Epochs asked for.
    pub total_epochs: u32,
    /// Latest metrics (`{"loss": 0.31, "accuracy": 0.9}`).
    pub metrics: Value,
}

/// What the API stores when a job is submitted.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// The id, chosen by the API before the uploads so object keys can carry it.
    pub id: JobId,
    /// Who submitted it.
    pub owner: Owner,
    /// The job request: model metadata and fit parameters.
    pub request: Value,
    /// The uploaded inputs.
    pub inputs: Vec<InputObject>,
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The id.
    pub id: JobId,
    /// Who submitted it.
    pub owner: Owner,
    /// Where it is.
    pub state: JobState,
    /// Why it failed or was cancelled; `None` in every other state.
    pub reason: Option<Reason>,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First claim by a worker.
    pub started_at: Option<DateTime<Utc>>,
    /// Entry into a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The job request: model metadata and fit parameters.
    pub request: Value,
    /// The uploaded inputs.
    pub inputs: Vec<InputObject>,
    /// Latest progress, once the worker reported some.
    pub progress: Option<Progress>,
    /// Object key of the signed bundle (always set once succeeded).
    pub bundle_key: Option<String>,
    /// The worker that claimed it last.
    pub worker_id: Option<String>,
    /// When the current lease runs out (running states only).
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The owner asked to cancel while a worker held it.
    pub cancel_requested: bool,
    /// How many times a worker claimed it.
    pub attempts: u32,
}

impl Job {
    /// The cursor that pages past this job.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// A worker's hold on a running job. Every worker write is fenced by it: a
/// worker whose lease expired and whose job was handed to another worker
/// cannot move, report on or finish the job any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: JobId,
    /// The worker holding it.
    pub worker_id: String,
    /// The claim number (the job's `attempts` when it was claimed).
    pub attempt: u32,
    /// When it runs out unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// A job a worker just claimed, with its lease.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The job, now `validating`.
    pub job: Job,
    /// The lease to renew and to fence every write with.
    pub lease: Lease,
}

/// Most jobs one page returns.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Most events one read returns.
pub const MAX_EVENTS: u32 = 1000;

/// A position in a newest-first job listing: (created_at, id) of the last job
/// seen. Ties on time are broken by id, so paging is stable and complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last job seen.
    pub created_at: DateTime<Utc>,
    /// Id of the last job seen.
    pub id: JobId,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at.timestamp_micros(), self.id)
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::BadCursor(s.chars().take(100).collect());
        let (micros, id) = s.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = id.parse().map_err(|_| bad())?;
        Ok(Cursor { created_at, id })
    }
}

/// Which page of a listing to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this cursor; `None` for the newest jobs.
    pub after: Option<Cursor>,
    /// Page size; clamped to `1..=MAX_PAGE_SIZE`.
    pub limit: u32,
}

impl PageRequest {
    /// The first page of `limit` jobs.
    pub fn first(limit: u32) -> Self {
        PageRequest { after: None, limit }
    }
}

/// One page of jobs, newest first.
#[derive(Clone, Debug)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<Job>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

/// One entry of a job's append-only event log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The job.
    pub job_id: JobId,
    /// Position in the job's log, from 1, without gaps.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// Kind: `state` for state changes (written by the database itself),
    /// otherwise what the worker chose (`log`, `progress`, ...).
    pub kind: String,
    /// Payload.
    pub data: Value,
}

/// What `request_cancel` did.
#[derive(Clone, Debug)]
pub enum CancelOutcome {
    /// The job was queued and is now cancelled.
    Cancelled(Job),
    /// A worker holds the job; it is flagged and the worker stops it.
    Requested(Job),
    /// The job had already finished; nothing changed.
    AlreadyFinished(Job),
}

impl CancelOutcome {
    /// The job after the request.
    pub fn job(&self) -> &Job {
        match self {
            CancelOutcome::Cancelled(j)
            | CancelOutcome::Requested(j)
            | CancelOutcome::AlreadyFinished(j) => j,
        }
    }
}

/// What a lease sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequeueReport {
    /// Jobs put back in the queue for another attempt.
    pub requeued: Vec<JobId>,
    /// Jobs that used up their attempts: failed with `job.worker_lost`.
    pub failed: Vec<JobId>,
    /// Jobs whose owner had asked to cancel: cancelled.
    pub cancelled: Vec<JobId>,
}

/// Number of jobs in each state (every state present, zero included).
pub type StateCounts = BTreeMap<JobState, u64>;

pub(crate) fn check_id(what: &'static str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(what, "empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            what,
            format!("{} bytes, at most {MAX_ID_LEN}", s.len()),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(what, "contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_round_trips_and_rejects_other_spellings() {
        let id = JobId::new();
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(s.parse::<JobId>().unwrap(), id);
        assert_eq!(
            id.as_uuid()
                .simple()
                .to_string()
                .parse::<JobId>()
                .unwrap_err()
                .code(),
            "db.bad_id"
        );
        assert!("../../etc/passwd".parse::<JobId>().is_err());
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: JobId::new(),
        };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        for bad in [
            "",
            "x",
            "1.",
            ".abc",
            "12.not-a-uuid",
            "99999999999999999999.x",
        ] {
            assert_eq!(bad.parse::<Cursor>().unwrap_err().code(), "db.bad_cursor");
        }
    }

    #[test]
    fn owner_parts_are_checked() {
        assert!(Owner::new("t", "o").is_ok());
        assert_eq!(Owner::new("", "o").unwrap_err().code(), "db.invalid_input");
        assert!(Owner::new("t", "x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(Owner::new("t\n", "o").is_err());
    }

    #[test]
    fn state_names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(JobState::parse("SUCCESS"), None);
    }
}
