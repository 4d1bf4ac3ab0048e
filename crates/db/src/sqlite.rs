//! The SQLite backend: the embedded default, one file in the data directory.
//!
//! WAL journal (readers never block the writer), `synchronous = NORMAL`,
//! foreign keys on, and a busy timeout so writers queue instead of failing.
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write
//! lock up front, so a read-then-write can never hit `SQLITE_BUSY` on the
//! lock upgrade, and claims are serialised (SQLite has one writer).
//! Times are INTEGER microseconds since the epoch; JSON is TEXT.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};

use crate::codec;
use crate::error::{Error, Result};
use crate::model::{Cursor, Event, Job, JobId, JobState, Lease, Owner, Visibility};
use crate::state::{Fence, Plan};
use crate::{Backend, ExpiredJob};

const MIGRATION_0001: &str = include_str!("../migrations/sqlite/0001_jobs.sql");
const MIGRATION_0002: &str = include_str!("../migrations/sqlite/0002_audit.sql");

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
     VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?5, ?6)";

const GET_OWNER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE id = ?1 AND owner_tid = ?2 AND owner_oid = ?3"
);
const GET_ALL: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1");

const LIST_OWNER_FIRST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE owner_tid = ?1 AND owner_oid = ?2 \
     ORDER BY created_at DESC, id DESC LIMIT ?3"
);
const LIST_OWNER_AFTER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE owner_tid = ?1 AND owner_oid = ?2 AND (created_at, id) < (?3, ?4) \
     ORDER BY created_at DESC, id DESC LIMIT ?5"
);
const LIST_ALL_FIRST: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?1"
);
const LIST_ALL_AFTER: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE (created_at, id) < (?1, ?2) ORDER BY created_at DESC, id DESC LIMIT ?3"
);

// One statement inside BEGIN IMMEDIATE: pick and take the oldest queued job.
const CLAIM: &str = concat!(
    "UPDATE jobs SET state = 'validating', worker_id = ?1, lease_expires_at = ?2, \
     attempts = attempts + 1, started_at = COALESCE(started_at, ?3), updated_at = ?3 \
     WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at, id LIMIT 1) \
     AND state = 'queued' RETURNING ",
    job_columns!()
);

const RENEW: &str = "UPDATE jobs SET lease_expires_at = ?1 \
     WHERE id = ?2 AND worker_id = ?3 AND attempts = ?4 \
     AND state IN ('validating', 'training', 'attesting') RETURNING cancel_requested";

// The compare-and-swap of every state change; the plan comes from `state::plan`.
const APPLY: &str = concat!(
    "UPDATE jobs SET state = ?1, updated_at = ?2, reason_code = ?3, reason_message = ?4, \
     finished_at = COALESCE(?5, finished_at), \
     lease_expires_at = CASE WHEN ?6 THEN NULL ELSE lease_expires_at END, \
     worker_id = CASE WHEN ?7 THEN NULL ELSE worker_id END \
     WHERE id = ?8 AND state = ?9 \
     AND (?10 IS NULL OR worker_id = ?10) \
     AND (?11 IS NULL OR attempts = ?11) \
     AND (?12 IS NULL OR lease_expires_at <= ?12) \
     AND (?1 <> 'succeeded' OR bundle_key IS NOT NULL) \
     RETURNING ",
    job_columns!()
);

const EXPIRED: &str = "SELECT id, state, attempts, cancel_requested FROM jobs \
     WHERE state IN ('validating', 'training', 'attesting') AND lease_expires_at <= ?1 \
     ORDER BY lease_expires_at LIMIT 500";

const SET_PROGRESS: &str = "UPDATE jobs SET progress = ?1, updated_at = ?2 \
     WHERE id = ?3 AND worker_id = ?4 AND attempts = ?5 \
     AND state IN ('validating', 'training', 'attesting') RETURNING cancel_requested";

const SET_BUNDLE: &str = "UPDATE jobs SET bundle_key = ?1, updated_at = ?2 \
     WHERE id = ?3 AND worker_id = ?4 AND attempts = ?5 AND state = 'attesting' \
     AND (bundle_key IS NULL OR bundle_key = ?1) RETURNING id";

const FLAG_CANCEL: &str = concat!(
    "UPDATE jobs SET cancel_requested = 1, updated_at = ?1 \
     WHERE id = ?2 AND state IN ('validating', 'training', 'attesting') \
     AND cancel_requested = 0 RETURNING ",
    job_columns!()
);

const NEXT_SEQ: &str =
    "UPDATE jobs SET last_event_seq = last_event_seq + 1 WHERE id = ?1 RETURNING last_event_seq";
const INSERT_EVENT: &str =
    "INSERT INTO job_events (job_id, seq, at, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)";
const EVENTS_AFTER: &str = "SELECT seq, at, kind, data FROM job_events \
     WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";

const COUNTS: &str = "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state";
const QUEUED: &str = "SELECT COUNT(*) FROM jobs WHERE state = 'queued'";

const ACTIVE_OF_OWNER: &str = "SELECT COUNT(*) FROM jobs WHERE owner_tid = ?1 AND owner_oid = ?2 \
     AND state IN ('queued', 'validating', 'training', 'attesting')";

const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

#[derive(Clone, Debug)]
pub(crate) struct SqliteBackend {
    pool: SqlitePool,
}

impl SqliteBackend {
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        // An in-memory database lives and dies with its one connection.
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        }
        .connect_with(options)
        .await?;
        migrator().run(&pool).await?;
        Ok(SqliteBackend { pool })
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(id: JobId, col: &str, v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| Error::corrupt(id, format!("{col} {v}")))
}

fn opt_time(id: JobId, col: &str, v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(|v| time(id, col, v)).transpose()
}

fn job_from_row(row: &SqliteRow) -> Result<Job> {
    let id_text: String = row.try_get("id")?;
    let id: JobId = id_text
        .parse()
        .map_err(|_| Error::corrupt(&id_text, "id is not a UUID"))?;
    let state: String = row.try_get("state")?;
    let request: String = row.try_get("request")?;
    let inputs: String = row.try_get("inputs")?;
    let progress: Option<String> = row.try_get("progress")?;
    Ok(Job {
        id,
        owner: Owner::from_db(row.try_get("owner_tid")?, row.try_get("owner_oid")?),
        state: codec::state(id, &state)?,
        reason: codec::reason(row.try_get("reason_code")?, row.try_get("reason_message")?),
        created_at: time(id, "created_at", row.try_get("created_at")?)?,
        updated_at: time(id, "updated_at", row.try_get("updated_at")?)?,
        started_at: opt_time(id, "started_at", row.try_get("started_at")?)?,
        finished_at: opt_time(id, "finished_at", row.try_get("finished_at")?)?,
        request: codec::from_text(id, "request", &request)?,
        inputs: codec::from_text(id, "inputs", &inputs)?,
        progress: progress
            .map(|p| codec::from_text(id, "progress", &p))
            .transpose()?,
        bundle_key: row.try_get("bundle_key")?,
        worker_id: row.try_get("worker_id")?,
        lease_expires_at: opt_time(id, "lease_expires_at", row.try_get("lease_expires_at")?)?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        attempts: codec::attempts(id, row.try_get("attempts")?)?,
    })
}

fn opt_job(row: Option<SqliteRow>) -> Result<Option<Job>> {
    row.as_ref().map(job_from_row).transpose()
}

/// Appends an event inside the caller's transaction.
async fn push_event(
    conn: &mut SqliteConnection,
    id: JobId,
    at: DateTime<Utc>,
    kind: &str,
    data: &Value,
) -> Result<Option<Event>> {
    let Some(seq) = sqlx::query_scalar::<_, i64>(NEXT_SEQ)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    sqlx::query(INSERT_EVENT)
        .bind(id.to_string())
        .bind(seq)
        .bind(micros(at))
        .bind(kind)
        .bind(data.to_string())
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

impl Backend for SqliteBackend {
    async fn insert_job(&self, job: &Job) -> Result<()> {
        let inputs = codec::inputs_json(&job.inputs)?;
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        sqlx::query(INSERT_JOB)
            .bind(job.id.to_string())
            .bind(job.owner.tid())
            .bind(job.owner.oid())
            .bind(micros(job.created_at))
            .bind(job.request.to_string())
            .bind(inputs.to_string())
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
                    .bind(id.to_string())
                    .bind(o.tid())
                    .bind(o.oid())
                    .fetch_optional(&self.pool)
                    .await?
            }
            Visibility::All => {
                sqlx::query(GET_ALL)
                    .bind(id.to_string())
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
                    .bind(micros(c.created_at))
                    .bind(c.id.to_string())
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
                    .bind(micros(c.created_at))
                    .bind(c.id.to_string())
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
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        let row = sqlx::query(CLAIM)
            .bind(worker_id)
            .bind(micros(until))
            .bind(micros(now))
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
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        let flag = sqlx::query_scalar::<_, i64>(RENEW)
            .bind(micros(until))
            .bind(lease.job_id.to_string())
            .bind(&lease.worker_id)
            .bind(i64::from(lease.attempt))
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(flag.map(|f| f != 0))
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
            Fence::Lease { worker_id, attempt } => {
                (Some(worker_id.as_str()), Some(i64::from(*attempt)), None)
            }
            Fence::Expired { attempt, now } => {
                (None, Some(i64::from(*attempt)), Some(micros(*now)))
            }
        };
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        let row = sqlx::query(APPLY)
            .bind(plan.to.as_str())
            .bind(micros(now))
            .bind(plan.reason.as_ref().map(|r| r.code.as_str()))
            .bind(plan.reason.as_ref().map(|r| r.message.as_str()))
            .bind(plan.finished.then_some(micros(now)))
            .bind(plan.clear_lease)
            .bind(plan.clear_worker)
            .bind(id.to_string())
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
        let rows = sqlx::query(EXPIRED)
            .bind(micros(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| -> Result<ExpiredJob> {
                let id_text: String = row.try_get("id")?;
                let id: JobId = id_text
                    .parse()
                    .map_err(|_| Error::corrupt(&id_text, "id is not a UUID"))?;
                let state: String = row.try_get("state")?;
                Ok(ExpiredJob {
                    id,
                    state: codec::state(id, &state)?,
                    attempts: codec::attempts(id, row.try_get("attempts")?)?,
                    cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
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
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        let flag = sqlx::query_scalar::<_, i64>(SET_PROGRESS)
            .bind(progress.to_string())
            .bind(micros(now))
            .bind(lease.job_id.to_string())
            .bind(&lease.worker_id)
            .bind(i64::from(lease.attempt))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(flag) = flag else {
            return Ok(None);
        };
        push_event(&mut tx, lease.job_id, now, "progress", progress).await?;
        tx.commit().await?;
        Ok(Some(flag != 0))
    }

    async fn set_bundle_key(&self, lease: &Lease, key: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        let row = sqlx::query(SET_BUNDLE)
            .bind(key)
            .bind(micros(now))
            .bind(lease.job_id.to_string())
            .bind(&lease.worker_id)
            .bind(i64::from(lease.attempt))
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.is_some())
    }

    async fn flag_cancel(&self, id: JobId, now: DateTime<Utc>) -> Result<Option<Job>> {
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        let row = sqlx::query(FLAG_CANCEL)
            .bind(micros(now))
            .bind(id.to_string())
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
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
        let event = push_event(&mut tx, id, now, kind, data).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn events_after(&self, id: JobId, after: u64, limit: u32) -> Result<Vec<Event>> {
        let rows = sqlx::query(EVENTS_AFTER)
            .bind(id.to_string())
            .bind(codec::seq_param(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| -> Result<Event> {
                let data: String = row.try_get("data")?;
                Ok(Event {
                    job_id: id,
                    seq: codec::seq(id, row.try_get("seq")?)?,
                    at: time(id, "event at", row.try_get("at")?)?,
                    kind: row.try_get("kind")?,
                    data: codec::from_text(id, "event data", &data)?,
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
        let mut tx = self.pool.begin_with(BEGIN_IMMEDIATE).await?;
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
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
