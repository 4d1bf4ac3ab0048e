//! The PostgreSQL backend: several API and worker nodes share one database.
//!
//! Native types (`uuid`, `timestamptz`, `jsonb`). Claims use
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait on, nor take,
//! the same queued job. State changes are single-row compare-and-swap
//! `UPDATE`s under READ COMMITTED: a concurrent writer blocks on the row lock
//! and then re-checks the `WHERE` against the committed row, so exactly one
//! of two racing changes wins.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::types::Uuid;
use sqlx::{Row, SqlSafeStr};

use crate::codec;
use crate::error::{Error, Result};
use crate::model::{Cursor, Event, Job, JobId, JobState, Lease, Owner, Visibility};
use crate::state::{Fence, Plan};
use crate::{Backend, ExpiredJob};

const MIGRATION_0001: &str = include_str!("../migrations/postgres/0001_jobs.sql");
const MIGRATION_0002: &str = include_str!("../migrations/postgres/0002_audit.sql");

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("jobs"),
            MigrationType::Simple,
            MIGRATION_0001.into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("audit"),
            MigrationType::Simple,
            MIGRATION_0002.into_sql_str(),
            false,
        ),
    ])
}

const INSERT_JOB: &str = "INSERT INTO jobs (id, owner_tid, owner_oid, state, created_at, updated_at, request, inputs) \
     VALUES ($1, $2, $3, 'queued', $4, $4, $5, $6)";

const GET_OWNER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE id = $1 AND owner_tid = $2 AND owner_oid = $3"
);
const GET_ALL: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");

const LIST_OWNER_FIRST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE owner_tid = $1 AND owner_oid = $2 \
     ORDER BY created_at DESC, id DESC LIMIT $3"
);
const LIST_OWNER_AFTER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE owner_tid = $1 AND owner_oid = $2 AND (created_at, id) < ($3, $4) \
     ORDER BY created_at DESC, id DESC LIMIT $5"
);
const LIST_ALL_FIRST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs ORDER BY created_at DESC, id DESC LIMIT $1"
);
const LIST_ALL_AFTER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3"
);

// SKIP LOCKED: a queued row another worker is claiming right now is passed
// over instead of waited for, and never handed out twice.
const CLAIM: &str = concat!(
    "UPDATE jobs SET state = 'validating', worker_id = $1, lease_expires_at = $2, \
     attempts = attempts + 1, started_at = COALESCE(started_at, $3), updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at, id \
                 LIMIT 1 FOR UPDATE SKIP LOCKED) \
     AND state = 'queued' RETURNING ",
    job_columns!()
);

const RENEW: &str = "UPDATE jobs SET lease_expires_at = $1 \
     WHERE id = $2 AND worker_id = $3 AND attempts = $4 \
     AND state IN ('validating', 'training', 'attesting') RETURNING cancel_requested";

// The compare-and-swap of every state change; the plan comes from `state::plan`.
const APPLY: &str = concat!(
    "UPDATE jobs SET state = $1, updated_at = $2, reason_code = $3, reason_message = $4, \
     finished_at = COALESCE($5, finished_at), \
     lease_expires_at = CASE WHEN $6 THEN NULL ELSE lease_expires_at END, \
     worker_id = CASE WHEN $7 THEN NULL ELSE worker_id END \
     WHERE id = $8 AND state = $9 \
     AND ($10::text IS NULL OR worker_id = $10) \
     AND ($11::int IS NULL OR attempts = $11) \
     AND ($12::timestamptz IS NULL OR lease_expires_at <= $12) \
     AND ($1 <> 'succeeded' OR bundle_key IS NOT NULL) \
     RETURNING ",
    job_columns!()
);

const EXPIRED: &str = "SELECT id, state, attempts, cancel_requested FROM jobs \
     WHERE state IN ('validating', 'training', 'attesting') AND lease_expires_at <= $1 \
     ORDER BY lease_expires_at LIMIT 500";

const SET_PROGRESS: &str = "UPDATE jobs SET progress = $1, updated_at = $2 \
     WHERE id = $3 AND worker_id = $4 AND attempts = $5 \
     AND state IN ('validating', 'training', 'attesting') RETURNING cancel_requested";

const SET_BUNDLE: &str = "UPDATE jobs SET bundle_key = $1, updated_at = $2 \
     WHERE id = $3 AND worker_id = $4 AND attempts = $5 AND state = 'attesting' \
     AND (bundle_key IS NULL OR bundle_key = $1) RETURNING id";

const FLAG_CANCEL: &str = concat!(
    "UPDATE jobs SET cancel_requested = TRUE, updated_at = $1 \
     WHERE id = $2 AND state IN ('validating', 'training', 'attesting') \
     AND NOT cancel_requested RETURNING ",
    job_columns!()
);

// The row lock on the job serialises concurrent appends: no duplicate seq.
const NEXT_SEQ: &str =
    "UPDATE jobs SET last_event_seq = last_event_seq + 1 WHERE id = $1 RETURNING last_event_seq";
const INSERT_EVENT: &str =
    "INSERT INTO job_events (job_id, seq, at, kind, data) VALUES ($1, $2, $3, $4, $5)";
const EVENTS_AFTER: &str = "SELECT seq, at, kind, data FROM job_events \
     WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

const COUNTS: &str = "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state";
const QUEUED: &str = "SELECT COUNT(*) FROM jobs WHERE state = 'queued'";

const ACTIVE_OF_OWNER: &str = "SELECT COUNT(*) FROM jobs WHERE owner_tid = $1 AND owner_oid = $2 \
     AND state IN ('queued', 'validating', 'training', 'attesting')";

#[derive(Clone, Debug)]
pub(crate) struct PgBackend {
    pool: PgPool,
}

impl PgBackend {
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        // sqlx takes an advisory lock: nodes starting together migrate once.
        migrator().run(&pool).await?;
        Ok(PgBackend { pool })
    }
}

fn attempt_param(a: u32) -> i32 {
    i32::try_from(a).unwrap_or(i32::MAX)
}

fn job_from_row(row: &PgRow) -> Result<Job> {
    let id = JobId::from_uuid(row.try_get::<Uuid, _>("id")?);
    let state: String = row.try_get("state")?;
    let inputs: Value = row.try_get("inputs")?;
    Ok(Job {
        id,
        owner: Owner::from_db(row.try_get("owner_tid")?, row.try_get("owner_oid")?),
        state: codec::state(id, &state)?,
        reason: codec::reason(row.try_get("reason_code")?, row.try_get("reason_message")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        request: row.try_get("request")?,
        inputs: codec::from_value(id, "inputs", inputs)?,
        progress: codec::progress(id, row.try_get("progress")?)?,
        bundle_key: row.try_get("bundle_key")?,
        worker_id: row.try_get("worker_id")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        cancel_requested: row.try_get("cancel_requested")?,
        attempts: codec::attempts(id, i64::from(row.try_get::<i32, _>("attempts")?))?,
    })
}

fn opt_job(row: Option<PgRow>) -> Result<Option<Job>> {
    row.as_ref().map(job_from_row).transpose()
}

/// Appends an event inside the caller's transaction.
async fn push_event(
    conn: &mut PgConnection,
    id: JobId,
    at: DateTime<Utc>,
    kind: &str,
    data: &Value,
) -> Result<Option<Event>> {
    let Some(seq) = sqlx::query_scalar::<_, i64>(NEXT_SEQ)
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    sqlx::query(INSERT_EVENT)
        .bind(id.as_uuid())
        .bind(seq)
        .bind(at)
        .bind(kind)
        .bind(Json(data))
        .execute(&mut *conn)
        .await?;
    Ok(Some(Event {
        job_id: id,
        seq: codec::seq(id, seq)?,
        at,
        kind: kind.to_owned(),
        data: data.clone(),
    }))
}

fn duplicate_or(e: sqlx::Error, id: JobId) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Duplicate { id },
        _ => Error::Backend(e),
    }
}

impl Backend for PgBackend {
    async fn insert_job(&self, job: &Job) -> Result<()> {
        let inputs = codec::inputs_json(&job.inputs)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(INSERT_JOB)
            .bind(job.id.as_uuid())
            .bind(job.owner.tid())
            .bind(job.owner.oid())
            .bind(job.created_at)
            .bind(Json(&job.request))
            .bind(Json(&inputs))
            .execute(&mut *tx)
            .await
            .map_err(|e| duplicate_or(e, job.id))?;
        let data = codec::state_event(None, JobState::Queued, None, "submit");
        push_event(&mut tx, job.id, job.created_at, "state", &data).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn fetch_job(&self, id: JobId, vis: &Visibility) -> Result<Option<Job>> {
        let row = match vis {
            Visibility::Owner(o) => {
                sqlx::query(GET_OWNER)
                    .bind(id.as_uuid())
                    .bind(o.tid())
                    .bind(o.oid())
                    .fetch_optional(&self.pool)
                    .await?
            }
            Visibility::All => {
                sqlx::query(GET_ALL)
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        opt_job(row)
    }

    async fn list_jobs(
        &self,
        vis: &Visibility,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let limit = i64::from(limit);
        let rows = match (vis, after) {
            (Visibility::Owner(o), None) => {
                sqlx::query(LIST_OWNER_FIRST)
                    .bind(o.tid())
                    .bind(o.oid())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            (Visibility::Owner(o), Some(c)) => {
                sqlx::query(LIST_OWNER_AFTER)
                    .bind(o.tid())
                    .bind(o.oid())
                    .bind(c.created_at)
                    .bind(c.id.as_uuid())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            (Visibility::All, None) => {
                sqlx::query(LIST_ALL_FIRST)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            (Visibility::All, Some(c)) => {
                sqlx::query(LIST_ALL_AFTER)
                    .bind(c.created_at)
                    .bind(c.id.as_uuid())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(job_from_row).collect()
    }

    async fn claim(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Job>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(CLAIM)
            .bind(worker_id)
            .bind(until)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(job) = opt_job(row)? else {
            return Ok(None);
        };
        let data = codec::state_event(Some(JobState::Queued), JobState::Validating, None, "claim");
        push_event(&mut tx, job.id, now, "state", &data).await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    async fn renew(&self, lease: &Lease, until: DateTime<Utc>) -> Result<Option<bool>> {
        Ok(sqlx::query_scalar::<_, bool>(RENEW)
            .bind(until)
            .bind(lease.job_id.as_uuid())
            .bind(&lease.worker_id)
            .bind(attempt_param(lease.attempt))
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn apply(
        &self,
        id: JobId,
        plan: &Plan,
        fence: &Fence,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>> {
        let (worker, attempt, expired_by) = match fence {
            Fence::None => (None, None, None),
            Fence::Lease { worker_id, attempt } => (
                Some(worker_id.as_str()),
                Some(attempt_param(*attempt)),
                None,
            ),
            Fence::Expired { attempt, now } => (None, Some(attempt_param(*attempt)), Some(*now)),
        };
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(APPLY)
            .bind(plan.to.as_str())
            .bind(now)
            .bind(plan.reason.as_ref().map(|r| r.code.as_str()))
            .bind(plan.reason.as_ref().map(|r| r.message.as_str()))
            .bind(plan.finished.then_some(now))
            .bind(plan.clear_lease)
            .bind(plan.clear_worker)
            .bind(id.as_uuid())
            .bind(plan.from.as_str())
            .bind(worker)
            .bind(attempt)
            .bind(expired_by)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(job) = opt_job(row)? else {
            return Ok(None);
        };
        let data = codec::state_event(Some(plan.from), plan.to, plan.reason.as_ref(), plan.by);
        push_event(&mut tx, id, now, "state", &data).await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<ExpiredJob>> {
        let rows = sqlx::query(EXPIRED).bind(now).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| -> Result<ExpiredJob> {
                let id = JobId::from_uuid(row.try_get::<Uuid, _>("id")?);
                let state: String = row.try_get("state")?;
                Ok(ExpiredJob {
                    id,
                    state: codec::state(id, &state)?,
                    attempts: codec::attempts(id, i64::from(row.try_get::<i32, _>("attempts")?))?,
                    cancel_requested: row.try_get("cancel_requested")?,
                })
            })
            .collect()
    }

    async fn set_progress(
        &self,
        lease: &Lease,
        progress: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>> {
        let mut tx = self.pool.begin().await?;
        let flag = sqlx::query_scalar::<_, bool>(SET_PROGRESS)
            .bind(Json(progress))
            .bind(now)
            .bind(lease.job_id.as_uuid())
            .bind(&lease.worker_id)
            .bind(attempt_param(lease.attempt))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(flag) = flag else {
            return Ok(None);
        };
        push_event(&mut tx, lease.job_id, now, "progress", progress).await?;
        tx.commit().await?;
        Ok(Some(flag))
    }

    async fn set_bundle_key(&self, lease: &Lease, key: &str, now: DateTime<Utc>) -> Result<bool> {
        let row = sqlx::query(SET_BUNDLE)
            .bind(key)
            .bind(now)
            .bind(lease.job_id.as_uuid())
            .bind(&lease.worker_id)
            .bind(attempt_param(lease.attempt))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn flag_cancel(&self, id: JobId, now: DateTime<Utc>) -> Result<Option<Job>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(FLAG_CANCEL)
            .bind(now)
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(job) = opt_job(row)? else {
            return Ok(None);
        };
        let data = serde_json::json!({ "state": job.state });
        push_event(&mut tx, id, now, "cancel_requested", &data).await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    async fn append_event(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        kind: &str,
        data: &Value,
    ) -> Result<Option<Event>> {
        let mut tx = self.pool.begin().await?;
        let event = push_event(&mut tx, id, now, kind, data).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn events_after(&self, id: JobId, after: u64, limit: u32) -> Result<Vec<Event>> {
        let rows = sqlx::query(EVENTS_AFTER)
            .bind(id.as_uuid())
            .bind(codec::seq_param(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| -> Result<Event> {
                Ok(Event {
                    job_id: id,
                    seq: codec::seq(id, row.try_get("seq")?)?,
                    at: row.try_get("at")?,
                    kind: row.try_get("kind")?,
                    data: row.try_get("data")?,
                })
            })
            .collect()
    }

    async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(COUNTS).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| -> Result<(String, i64)> { Ok((r.try_get("state")?, r.try_get("n")?)) })
            .collect()
    }

    async fn append_audit(
        &self,
        new: &crate::audit::NewAudit<'_>,
    ) -> Result<(u64, String, String)> {
        let mut tx = self.pool.begin().await?;
        // One appender at a time: the lock conflicts with itself, not with readers.
        sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (seq, prev) = match last {
            Some((s, h)) => (u64::try_from(s).unwrap_or(0) + 1, h),
            None => (1, crate::audit::GENESIS.to_owned()),
        };
        let hash = new.hash(seq, &prev);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, kind, actor, job_id, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(codec::seq_param(seq))
        .bind(new.at_micros)
        .bind(new.kind)
        .bind(new.actor)
        .bind(new.job_id)
        .bind(new.detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((seq, prev, hash))
    }

    async fn audit_after(&self, after: u64, limit: u32) -> Result<Vec<crate::audit::AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, at, kind, actor, job_id, detail, prev_hash, hash FROM audit_log \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(codec::seq_param(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<crate::audit::AuditRow> {
                Ok(crate::audit::AuditRow {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    actor: r.try_get("actor")?,
                    job_id: r.try_get("job_id")?,
                    detail: r.try_get("detail")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }

    async fn active_of(&self, owner: &Owner) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>(ACTIVE_OF_OWNER)
            .bind(owner.tid())
            .bind(owner.oid())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn queued(&self) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>(QUEUED)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
