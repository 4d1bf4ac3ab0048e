//! Veritrain's job database: the service's record of every training job, its
//! state machine, the worker queue with leases, and each job's append-only
//! event log (the live progress stream).
//!
//! Where it sits: the API creates a job after streaming the uploads to the
//! object store, and reads jobs for `GET /v1/jobs…` under the caller's
//! [`Visibility`]; workers [`Database::claim_next`] a queued job, renew the
//! lease while they train, report progress and events, and move the job
//! through the states of [`state`] until it succeeds with a signed bundle,
//! fails with a reason, or is cancelled. A sweep ([`Database::requeue_expired`])
//! gives the jobs of dead workers back to the queue, or fails them once
//! their attempts are used up.
//!
//! Two backends sit behind one internal trait with the same row structs:
//! SQLite (the embedded default: one file in the data directory, WAL) and
//! PostgreSQL (several API and worker nodes). [`Database::connect`] picks one
//! by URL scheme and runs that backend's embedded migrations. See
//! `docs/database.md` for the schema and the rules.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub mod audit;
pub mod clock;
mod error;
pub mod model;
pub mod state;

/// The columns of a job row, in the order both backends select them.
macro_rules! job_columns {
    () => {
        "id, owner_tid, owner_oid, state, reason_code, reason_message, created_at, updated_at, \
         started_at, finished_at, request, inputs, progress, bundle_key, worker_id, \
         lease_expires_at, cancel_requested, attempts"
    };
}

mod postgres;
mod sqlite;

pub use audit::{AuditCheck, AuditEntry};
pub use clock::Clock;
pub use error::{Error, Result};
pub use model::{
    CancelOutcome, Claimed, Cursor, Event, InputObject, Job, JobId, JobPage, JobState, Lease,
    MAX_EVENTS, MAX_PAGE_SIZE, NewJob, Owner, PageRequest, Progress, Reason, RequeueReport,
    StateCounts, Visibility,
};

use state::{Fence, Plan};

/// A job whose lease ran out, as the sweep sees it.
#[derive(Clone, Debug)]
pub(crate) struct ExpiredJob {
    pub id: JobId,
    pub state: JobState,
    pub attempts: u32,
    pub cancel_requested: bool,
}

/// What each backend provides: plain reads and single compare-and-swap
/// writes. Every rule (state machine, visibility, fencing, limits) lives in
/// [`Database`] and [`state`], once, above this trait.
pub(crate) trait Backend {
    /// Inserts a new queued job and its first `state` event.
    fn insert_job(&self, job: &Job) -> impl Future<Output = Result<()>> + Send;
    /// One job, if it exists and `vis` lets the caller see it.
    fn fetch_job(
        &self,
        id: JobId,
        vis: &Visibility,
    ) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Up to `limit` jobs visible under `vis`, newest first, after `after`.
    fn list_jobs(
        &self,
        vis: &Visibility,
        after: Option<Cursor>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Job>>> + Send;
    /// Atomically moves the oldest queued job to `validating` for `worker_id`.
    fn claim(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Extends a held lease; `Some(cancel_requested)` if still held.
    fn renew(
        &self,
        lease: &Lease,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<bool>>> + Send;
    /// Applies a planned state change as a compare-and-swap on `plan.from`
    /// and `fence`, with its `state` event; `None` if nothing matched.
    fn apply(
        &self,
        id: JobId,
        plan: &Plan,
        fence: &Fence,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Running jobs whose lease ran out by `now`.
    fn expired(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<ExpiredJob>>> + Send;
    /// Stores progress (and a `progress` event) under a held lease;
    /// `Some(cancel_requested)` if still held.
    fn set_progress(
        &self,
        lease: &Lease,
        progress: &Value,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<bool>>> + Send;
    /// Records the bundle key of an attesting job under a held lease
    /// (write-once: the same key again is fine, another is not).
    fn set_bundle_key(
        &self,
        lease: &Lease,
        key: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Sets `cancel_requested` on a running job that does not have it yet.
    fn flag_cancel(
        &self,
        id: JobId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Appends an event with the next sequence number; `None` if no such job.
    fn append_event(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        kind: &str,
        data: &Value,
    ) -> impl Future<Output = Result<Option<Event>>> + Send;
    /// Events with `seq > after`, in order.
    fn events_after(
        &self,
        id: JobId,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Event>>> + Send;
    /// `(state, count)` for each state present.
    fn counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>>> + Send;
    /// Number of queued jobs.
    fn queued(&self) -> impl Future<Output = Result<i64>> + Send;
    /// Number of an owner's jobs that have not finished.
    fn active_of(&self, owner: &Owner) -> impl Future<Output = Result<i64>> + Send;
    /// Appends an audit entry after the last one, in one transaction that
    /// excludes other appends; returns `(seq, prev_hash, hash)`.
    fn append_audit(
        &self,
        new: &audit::NewAudit<'_>,
    ) -> impl Future<Output = Result<(u64, String, String)>> + Send;
    /// Audit rows with `seq > after`, in order.
    fn audit_after(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<audit::AuditRow>>> + Send;
    /// Closes the connection pool.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// Which backend a [`Database`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

#[derive(Clone)]
enum Inner {
    Sqlite(sqlite::SqliteBackend),
    Postgres(postgres::PgBackend),
}

/// Runs the same expression against whichever backend is connected.
macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.inner {
            Inner::Sqlite($b) => $e,
            Inner::Postgres($b) => $e,
        }
    };
}

/// The job database. Cheap to clone (a connection pool inside).
#[derive(Clone)]
pub struct Database {
    inner: Inner,
    clock: Clock,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is not kept: it may hold a password.
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Connects by URL scheme and runs the embedded migrations:
    /// `sqlite://PATH?mode=rwc` (or `sqlite::memory:`) or
    /// `postgres://USER@HOST:PORT/DB`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_clock(url, Clock::system()).await
    }

    /// [`Self::connect`] with the clock that stamps times and expires leases.
    pub async fn connect_with_clock(url: &str, clock: Clock) -> Result<Self> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        let inner = match scheme {
            "sqlite" => Inner::Sqlite(sqlite::SqliteBackend::connect(url).await?),
            "postgres" | "postgresql" => Inner::Postgres(postgres::PgBackend::connect(url).await?),
            other => {
                return Err(Error::BadUrl {
                    scheme: other.chars().take(32).collect(),
                });
            }
        };
        Ok(Database { inner, clock })
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        match self.inner {
            Inner::Sqlite(_) => BackendKind::Sqlite,
            Inner::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The clock that stamps times and expires leases.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        dispatch!(self, b => b.close().await)
    }

    /// Stores a new job in `queued`.
    pub async fn create_job(&self, new: NewJob) -> Result<Job> {
        let now = self.clock.now();
        let job = Job {
            id: new.id,
            owner: new.owner,
            state: JobState::Queued,
            reason: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            request: new.request,
            inputs: new.inputs,
            progress: None,
            bundle_key: None,
            worker_id: None,
            lease_expires_at: None,
            cancel_requested: false,
            attempts: 0,
        };
        dispatch!(self, b => b.insert_job(&job).await)?;
        Ok(job)
    }

    /// One job. A job that does not exist and a job `vis` does not cover are
    /// the same `db.not_found`.
    pub async fn get_job(&self, id: JobId, vis: &Visibility) -> Result<Job> {
        dispatch!(self, b => b.fetch_job(id, vis).await)?.ok_or(Error::NotFound { id })
    }

    /// A page of the jobs `vis` covers, newest first, ordered by
    /// (created_at, id) so pages never skip or repeat a job.
    pub async fn list_jobs(&self, vis: &Visibility, page: PageRequest) -> Result<JobPage> {
        let limit = page.limit.clamp(1, MAX_PAGE_SIZE);
        // One extra row says whether there is a next page.
        let mut jobs = dispatch!(self, b => b.list_jobs(vis, page.after, limit + 1).await)?;
        let more = jobs.len() > limit as usize;
        jobs.truncate(limit as usize);
        let next = if more {
            jobs.last().map(Job::cursor)
        } else {
            None
        };
        Ok(JobPage { jobs, next })
    }

    /// Claims the oldest queued job for `worker_id` (`queued → validating`),
    /// atomically: under any number of concurrent workers each job is
    /// claimed by exactly one. `None` when the queue is empty.
    pub async fn claim_next(&self, worker_id: &str, lease: Duration) -> Result<Option<Claimed>> {
        model::check_id("worker id", worker_id)?;
        state::check(JobState::Queued, JobState::Validating)?;
        let delta = clock::lease_delta(lease)?;
        let now = self.clock.now();
        let until = now + delta;
        let Some(job) = dispatch!(self, b => b.claim(worker_id, now, until).await)? else {
            return Ok(None);
        };
        let lease = Lease {
            job_id: job.id,
            worker_id: worker_id.to_owned(),
            attempt: job.attempts,
            expires_at: until,
        };
        Ok(Some(Claimed { job, lease }))
    }

    /// Extends `lease` by `duration` from now. Returns whether the owner asked
    /// to cancel (the worker should stop and move the job to `cancelled`).
    /// `db.lease_lost` if the worker no longer holds the job.
    pub async fn renew_lease(&self, lease: &mut Lease, duration: Duration) -> Result<bool> {
        let until = self.clock.now() + clock::lease_delta(duration)?;
        match dispatch!(self, b => b.renew(lease, until).await)? {
            Some(cancel_requested) => {
                lease.expires_at = until;
                Ok(cancel_requested)
            }
            None => Err(self.lease_error(lease).await),
        }
    }

    /// Sweeps the jobs whose worker stopped renewing its lease: a job whose
    /// owner asked to cancel is cancelled; a job claimed fewer than
    /// `max_attempts` times goes back to the queue; any other fails with
    /// `job.worker_lost`. Safe to run on several nodes at once.
    pub async fn requeue_expired(&self, max_attempts: u32) -> Result<RequeueReport> {
        let now = self.clock.now();
        let mut report = RequeueReport::default();
        for e in dispatch!(self, b => b.expired(now).await)? {
            let (to, reason) = if e.cancel_requested {
                let msg = "cancelled on request; the worker stopped before it finished";
                (
                    JobState::Cancelled,
                    Some(Reason::new(Reason::CANCELLED, msg)),
                )
            } else if e.attempts < max_attempts {
                (JobState::Queued, None)
            } else {
                let msg = format!(
                    "the worker stopped renewing its lease; gave up after {} attempt(s)",
                    e.attempts
                );
                (
                    JobState::Failed,
                    Some(Reason::new(Reason::WORKER_LOST, msg)),
                )
            };
            let plan = state::plan(e.state, to, reason, "lease_sweep")?;
            let fence = Fence::Expired {
                attempt: e.attempts,
                now,
            };
            // A miss means the worker renewed or moved the job meanwhile, or
            // another node swept it first: nothing to do.
            if dispatch!(self, b => b.apply(e.id, &plan, &fence, now).await)?.is_some() {
                match to {
                    JobState::Queued => report.requeued.push(e.id),
                    JobState::Cancelled => report.cancelled.push(e.id),
                    _ => report.failed.push(e.id),
                }
            }
        }
        Ok(report)
    }

    /// Moves a job the worker holds from `from` to `to`. Only the moves of
    /// [`state::allowed`] exist; failed and cancelled need a `reason`, other
    /// targets must have none; `succeeded` needs the bundle key recorded
    /// first. Replaying a change that already happened returns the job.
    pub async fn transition(
        &self,
        lease: &Lease,
        from: JobState,
        to: JobState,
        reason: Option<Reason>,
    ) -> Result<Job> {
        let plan = state::plan(from, to, reason, "worker")?;
        let fence = Fence::of(lease);
        let now = self.clock.now();
        let id = lease.job_id;
        if let Some(job) = dispatch!(self, b => b.apply(id, &plan, &fence, now).await)? {
            return Ok(job);
        }
        let current = dispatch!(self, b => b.fetch_job(id, &Visibility::All).await)?;
        state::explain_miss(id, current, &plan, &fence)
    }

    /// Stores the latest progress of a job the worker holds and appends it
    /// to the event log. Returns whether the owner asked to cancel.
    pub async fn set_progress(&self, lease: &Lease, progress: &Progress) -> Result<bool> {
        let value = serde_json::to_value(progress)
            .map_err(|e| Error::invalid("progress", e.to_string()))?;
        let now = self.clock.now();
        match dispatch!(self, b => b.set_progress(lease, &value, now).await)? {
            Some(cancel_requested) => Ok(cancel_requested),
            None => Err(self.lease_error(lease).await),
        }
    }

    /// Records the object key of the signed bundle (job in `attesting`, held
    /// by the worker). Write-once: the same key again is accepted, another
    /// key is `db.state_conflict`.
    pub async fn set_bundle_key(&self, lease: &Lease, key: &str) -> Result<()> {
        model::check_id("bundle key", key)?;
        let now = self.clock.now();
        if dispatch!(self, b => b.set_bundle_key(lease, key, now).await)? {
            return Ok(());
        }
        let id = lease.job_id;
        let job = dispatch!(self, b => b.fetch_job(id, &Visibility::All).await)?
            .ok_or(Error::NotFound { id })?;
        if job.attempts != lease.attempt
            || job.worker_id.as_deref() != Some(lease.worker_id.as_str())
            || !job.state.is_running()
        {
            return Err(Error::LeaseLost {
                id,
                worker_id: lease.worker_id.clone(),
            });
        }
        if job.state != JobState::Attesting {
            return Err(Error::StateConflict {
                id,
                expected: JobState::Attesting,
                actual: job.state,
            });
        }
        Err(Error::invalid(
            "bundle key",
            "a different bundle key is already recorded; bundles are write-once",
        ))
    }

    /// The owner (or an admin) asks to cancel: a queued job is cancelled at
    /// once; a running one is flagged and its worker stops it; a finished
    /// one is left alone. Another user's job is `db.not_found`.
    pub async fn request_cancel(&self, id: JobId, vis: &Visibility) -> Result<CancelOutcome> {
        // A worker may claim the job between our read and our write; the
        // compare-and-swap then misses and we look again.
        for _ in 0..8 {
            let job = self.get_job(id, vis).await?;
            let now = self.clock.now();
            if job.state.is_terminal() {
                return Ok(CancelOutcome::AlreadyFinished(job));
            }
            if job.state == JobState::Queued {
                let reason =
                    Reason::new(Reason::CANCELLED, "cancelled on request before it started");
                let plan =
                    state::plan(JobState::Queued, JobState::Cancelled, Some(reason), "owner")?;
                if let Some(job) =
                    dispatch!(self, b => b.apply(id, &plan, &Fence::None, now).await)?
                {
                    return Ok(CancelOutcome::Cancelled(job));
                }
                continue;
            }
            if job.cancel_requested {
                return Ok(CancelOutcome::Requested(job));
            }
            if let Some(job) = dispatch!(self, b => b.flag_cancel(id, now).await)? {
                return Ok(CancelOutcome::Requested(job));
            }
        }
        Err(Error::invalid(
            "cancel request",
            "the job kept changing state; try again",
        ))
    }

    /// Appends an event to a job's log (seq numbers from 1, no gaps).
    pub async fn append_event(&self, id: JobId, kind: &str, data: &Value) -> Result<Event> {
        model::check_id("event kind", kind)?;
        let now = self.clock.now();
        dispatch!(self, b => b.append_event(id, now, kind, data).await)?
            .ok_or(Error::NotFound { id })
    }

    /// Up to `limit` (at most [`MAX_EVENTS`]) events of a job after sequence
    /// number `after_seq`, oldest first. Another user's job is `db.not_found`.
    pub async fn events_after(
        &self,
        id: JobId,
        vis: &Visibility,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>> {
        // Visibility first: the event log of a job one may not see does not exist.
        self.get_job(id, vis).await?;
        let limit = limit.clamp(1, MAX_EVENTS);
        dispatch!(self, b => b.events_after(id, after_seq, limit).await)
    }

    /// Number of jobs in each state, every state present (for `/metrics`).
    pub async fn counts_by_state(&self) -> Result<StateCounts> {
        let mut counts: StateCounts = JobState::ALL.into_iter().map(|s| (s, 0)).collect();
        for (name, n) in dispatch!(self, b => b.counts().await)? {
            let st = JobState::parse(&name)
                .ok_or_else(|| Error::corrupt("jobs", format!("unknown state {name:?}")))?;
            counts.insert(st, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Number of `owner`'s jobs that are queued or running (the API's
    /// per-user limit).
    pub async fn active_jobs(&self, owner: &Owner) -> Result<u64> {
        let n = dispatch!(self, b => b.active_of(owner).await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Number of queued jobs.
    pub async fn queue_depth(&self) -> Result<u64> {
        let n = dispatch!(self, b => b.queued().await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Appends an entry to the audit log: `kind` (`job.submitted`, ...),
    /// who (`tenant/object_id`), the job, and details (at most
    /// [`audit::MAX_DETAIL_BYTES`] of JSON).
    pub async fn audit(
        &self,
        kind: &str,
        actor: Option<&str>,
        job: Option<JobId>,
        detail: &Value,
    ) -> Result<AuditEntry> {
        model::check_id("audit kind", kind)?;
        if let Some(a) = actor {
            model::check_id("audit actor", a)?;
        }
        let text = detail.to_string();
        if text.len() > audit::MAX_DETAIL_BYTES {
            return Err(Error::invalid("audit detail", "longer than 16 KiB"));
        }
        let at = self.clock.now();
        let job_text = job.map(|j| j.to_string());
        let new = audit::NewAudit {
            at_micros: at.timestamp_micros(),
            kind,
            actor,
            job_id: job_text.as_deref(),
            detail: &text,
        };
        let (seq, prev_hash, hash) = dispatch!(self, b => b.append_audit(&new).await)?;
        Ok(AuditEntry {
            seq,
            at: chrono::DateTime::from_timestamp_micros(new.at_micros).unwrap_or(at),
            kind: kind.to_owned(),
            actor: actor.map(str::to_owned),
            job_id: job_text,
            detail: detail.clone(),
            prev_hash,
            hash,
        })
    }

    /// Up to `limit` (at most [`MAX_EVENTS`]) audit entries after `after`,
    /// oldest first.
    pub async fn audit_after(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>> {
        let limit = limit.clamp(1, MAX_EVENTS);
        dispatch!(self, b => b.audit_after(after, limit).await)?
            .into_iter()
            .map(audit::AuditRow::into_entry)
            .collect()
    }

    /// Reads the whole audit log and checks the chain: every hash matches
    /// its entry, `seq` has no gap, and each `prev_hash` is the previous
    /// entry's hash. Reports the first break.
    pub async fn verify_audit(&self) -> Result<AuditCheck> {
        let mut check = AuditCheck {
            entries: 0,
            head: None,
            broken: None,
        };
        let mut expected_seq = 1u64;
        let mut prev = audit::GENESIS.to_owned();
        loop {
            let rows = dispatch!(self, b => b.audit_after(expected_seq - 1, 1000).await)?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                break;
            };
            for row in rows {
                let seq = u64::try_from(row.seq).unwrap_or(0);
                let problem = if seq != expected_seq {
                    Some(format!(
                        "entry {expected_seq} is missing (the next entry is {seq})"
                    ))
                } else if row.prev_hash != prev {
                    Some("its prev_hash is not the previous entry's hash".to_owned())
                } else if !row.hash_ok() {
                    Some("its content does not match its hash (edited)".to_owned())
                } else {
                    None
                };
                check.entries += 1;
                if let Some(p) = problem
                    && check.broken.is_none()
                {
                    check.broken = Some((expected_seq.min(seq), p));
                }
                prev = row.hash.clone();
                check.head = Some(row.hash);
                expected_seq = seq + 1;
            }
            if u64::try_from(last).unwrap_or(0) + 1 != expected_seq {
                break;
            }
        }
        Ok(check)
    }

    /// The error for a lease-fenced write that matched nothing.
    async fn lease_error(&self, lease: &Lease) -> Error {
        let id = lease.job_id;
        match dispatch!(self, b => b.fetch_job(id, &Visibility::All).await) {
            Ok(Some(_)) => Error::LeaseLost {
                id,
                worker_id: lease.worker_id.clone(),
            },
            Ok(None) => Error::NotFound { id },
            Err(e) => e,
        }
    }
}

/// Shared decoding helpers for both backends.
pub(crate) mod codec {
    use serde::de::DeserializeOwned;

    use crate::error::{Error, Result};
    use crate::model::{InputObject, JobId, JobState, Progress, Reason};

    pub(crate) fn state(id: JobId, s: &str) -> Result<JobState> {
        JobState::parse(s).ok_or_else(|| Error::corrupt(id, format!("unknown state {s:?}")))
    }

    pub(crate) fn reason(code: Option<String>, message: Option<String>) -> Option<Reason> {
        code.map(|code| Reason {
            code,
            message: message.unwrap_or_default(),
        })
    }

    pub(crate) fn attempts(id: JobId, n: i64) -> Result<u32> {
        u32::try_from(n).map_err(|_| Error::corrupt(id, format!("attempts {n} out of range")))
    }

    pub(crate) fn seq(id: JobId, n: i64) -> Result<u64> {
        u64::try_from(n).map_err(|_| Error::corrupt(id, format!("event seq {n} out of range")))
    }

    pub(crate) fn from_value<T: DeserializeOwned>(
        id: JobId,
        what: &str,
        v: serde_json::Value,
    ) -> Result<T> {
        serde_json::from_value(v).map_err(|e| Error::corrupt(id, format!("{what}: {e}")))
    }

    pub(crate) fn from_text<T: DeserializeOwned>(id: JobId, what: &str, s: &str) -> Result<T> {
        serde_json::from_str(s).map_err(|e| Error::corrupt(id, format!("{what}: {e}")))
    }

    pub(crate) fn inputs_json(inputs: &[InputObject]) -> Result<serde_json::Value> {
        serde_json::to_value(inputs).map_err(|e| Error::invalid("inputs", e.to_string()))
    }

    pub(crate) fn progress(id: JobId, v: Option<serde_json::Value>) -> Result<Option<Progress>> {
        v.map(|v| from_value(id, "progress", v)).transpose()
    }

    /// The `state` event written with every state change.
    pub(crate) fn state_event(
        from: Option<JobState>,
        to: JobState,
        reason: Option<&Reason>,
        by: &str,
    ) -> serde_json::Value {
        serde_json::json!({ "from": from, "to": to, "reason": reason, "by": by })
    }

    /// A u64 sequence bound as the i64 both backends store.
    pub(crate) fn seq_param(n: u64) -> i64 {
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}
