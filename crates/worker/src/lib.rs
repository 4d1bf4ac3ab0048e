//! Veritrain's worker: takes queued jobs from the database, runs each one
//! through the same pipeline as `veritrain train`, and stores the signed
//! bundle in the object store.
//!
//! Where it sits: the API stores a job's uploads and queues it; a worker
//! [`Database::claim_next`]s it under a lease, downloads the uploads
//! (checking each against the digest measured at upload), runs a
//! [`JobRunner`] (in production [`PipelineRunner`]: intake gate, sandboxed
//! training, attestation, signed with the key directory's current key),
//! writes the bundle's new files and its index under the attempt's own
//! prefix, and only then moves the job to `succeeded`. Any failure moves it
//! to `failed` with the error's stable code, never to `succeeded`.
//!
//! Only workers hold a signing key, through [`veritrain_attest::keys::Signer`]
//! loaded from the key directory for each job (so a rotation applies to the
//! next job). The root key is never read.
//!
//! While a job runs, a lease keeper renews the lease; the owner's cancel
//! request (seen on renewal or on a progress write) cancels the sandbox.
//! If the lease is lost (the worker stalled and another took the job), the
//! run is cancelled and nothing more is written. A worker that dies leaves
//! its lease to expire; the sweep ([`Database::requeue_expired`]), run by
//! every worker, gives the job back to the queue or fails it after
//! `max_attempts`.

mod metrics;
mod pipeline;
mod runner;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use veritrain_db::{Claimed, Database, Job, JobState, Lease, Reason};
use veritrain_sandbox::CancelToken;
use veritrain_store::{BundleIndex, IndexEntry, JobObjects, ObjectKey, Store};

pub use metrics::WorkerMetrics;
pub use pipeline::{PipelineRunner, PipelineSettings};
pub use runner::{Failure, JobFiles, JobRunner, Update, input_names};

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// This worker's id, unique among running workers (recorded on the job).
    pub worker_id: String,
    /// Where jobs are staged; each job gets a fresh directory inside.
    pub scratch: PathBuf,
    /// How long a claim is valid without renewal.
    pub lease: Duration,
    /// How often the lease is renewed (well under `lease`).
    pub renew_every: Duration,
    /// How long to wait when the queue is empty.
    pub poll: Duration,
    /// Claims per job before an abandoned job fails instead of being requeued.
    pub max_attempts: u32,
    /// Largest object written for one bundle file.
    pub max_object_bytes: u64,
    /// The first pause before a job that hit a store fault goes back to the
    /// queue; doubled for each attempt, capped at half the lease.
    pub retry_backoff: Duration,
}

impl WorkerSettings {
    /// Defaults: a 60 s lease renewed every 15 s, a 1 s poll, 3 attempts.
    pub fn new(worker_id: impl Into<String>, scratch: impl Into<PathBuf>) -> Self {
        WorkerSettings {
            worker_id: worker_id.into(),
            scratch: scratch.into(),
            lease: Duration::from_secs(60),
            renew_every: Duration::from_secs(15),
            poll: Duration::from_secs(1),
            max_attempts: 3,
            max_object_bytes: 1 << 40,
            retry_backoff: Duration::from_secs(5),
        }
    }
}

/// Why the worker itself (not a job) could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or failed.
    #[error(transparent)]
    Db(#[from] veritrain_db::Error),
    /// The scratch directory is unusable.
    #[error("scratch directory {}: {source}", path.display())]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Db(e) => e.code(),
            Error::Scratch { .. } => "worker.scratch",
        }
    }
}

/// One worker: a loop that claims and runs jobs one at a time. Run several
/// (each with its own id) for parallel jobs.
pub struct Worker {
    db: Database,
    store: Store,
    runner: Arc<dyn JobRunner>,
    settings: WorkerSettings,
    metrics: Arc<WorkerMetrics>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What became of one claimed job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The bundle is stored and the job succeeded.
    Succeeded,
    /// The job failed with this code.
    Failed(String),
    /// The job was cancelled on request.
    Cancelled,
    /// The job went back to the queue (a store fault; attempts left).
    Requeued(String),
    /// The lease was lost; someone else owns the job now.
    LeaseLost,
}

impl Worker {
    /// A worker over `db` and `store` running jobs with `runner`.
    pub fn new(
        db: Database,
        store: Store,
        runner: Arc<dyn JobRunner>,
        settings: WorkerSettings,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        Worker {
            db,
            store,
            runner,
            settings,
            metrics,
        }
    }

    /// Claims and runs jobs until `shutdown` turns true. A job in progress
    /// at shutdown is finished first (or cancelled with the process).
    ///
    /// # Errors
    /// Only an unusable scratch directory stops the loop; database faults
    /// are retried after a pause.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        std::fs::create_dir_all(&self.settings.scratch).map_err(|source| Error::Scratch {
            path: self.settings.scratch.clone(),
            source,
        })?;
        let mut last_sweep: Option<Instant> = None;
        while !*shutdown.borrow() {
            if last_sweep.is_none_or(|t| t.elapsed() >= self.settings.lease / 2) {
                last_sweep = Some(Instant::now());
                match self.db.requeue_expired(self.settings.max_attempts).await {
                    Ok(r) => self.metrics.swept(&r),
                    Err(e) => eprintln!(
                        "worker {}: lease sweep failed [{}]: {e}",
                        self.settings.worker_id,
                        e.code()
                    ),
                }
            }
            let pause = match self.run_once().await {
                Ok(Some(_)) => continue,
                Ok(None) => self.settings.poll,
                Err(e) => {
                    eprintln!(
                        "worker {}: [{}] {e}; retrying",
                        self.settings.worker_id,
                        e.code()
                    );
                    self.settings.poll.max(Duration::from_secs(2))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
        Ok(())
    }

    /// Claims one job and runs it to the end. `None` when the queue is empty.
    ///
    /// # Errors
    /// A database fault while claiming.
    pub async fn run_once(&self) -> Result<Option<(Job, Outcome)>, Error> {
        let Some(Claimed { job, lease }) = self
            .db
            .claim_next(&self.settings.worker_id, self.settings.lease)
            .await?
        else {
            return Ok(None);
        };
        let started = Instant::now();
        let outcome = self.process(&job, lease).await;
        self.metrics.finished(&outcome, started.elapsed());
        Ok(Some((job, outcome)))
    }

    async fn process(&self, job: &Job, lease: Lease) -> Outcome {
        let dir = self
            .settings
            .scratch
            .join(format!("job-{}-{}", job.id, lease.attempt));
        let _ = std::fs::remove_dir_all(&dir);
        let outcome = self.process_in(job, lease, &dir).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        outcome
    }

    async fn process_in(&self, job: &Job, lease: Lease, dir: &Path) -> Outcome {
        let lease = Arc::new(tokio::sync::Mutex::new(lease));
        let cancel = CancelToken::new();
        let lost = CancelToken::new();
        let keeper = self.keep_lease(Arc::clone(&lease), cancel.clone(), lost.clone());

        let mut tracker = Tracker {
            db: self.db.clone(),
            lease: Arc::clone(&lease),
            state: JobState::Validating,
            cancel: cancel.clone(),
            lost: lost.clone(),
        };
        let result = self.stage_and_run(job, dir, &cancel, &mut tracker).await;
        keeper.abort();
        let lease = lease.lock().await.clone();
        if lost.is_cancelled() {
            return Outcome::LeaseLost;
        }
        match result {
            Ok(bundle_dir) => match self
                .store_bundle(job, &lease, &bundle_dir, &mut tracker)
                .await
            {
                Ok(()) => Outcome::Succeeded,
                Err(Stop::Fail(f)) => self.finish_failed(&mut tracker, f).await,
                Err(Stop::Retry(f)) => self.retry(&mut tracker, job, f).await,
                Err(Stop::Lost) => Outcome::LeaseLost,
            },
            // A run stopped by the cancel (`job.cancelled`), or failing for
            // another reason while the owner asked to stop: cancelled.
            Err(Stop::Fail(_)) if cancel.is_cancelled() => {
                self.finish_cancelled(&mut tracker).await
            }
            Err(Stop::Fail(f)) => self.finish_failed(&mut tracker, f).await,
            Err(Stop::Retry(f)) => self.retry(&mut tracker, job, f).await,
            Err(Stop::Lost) => Outcome::LeaseLost,
        }
    }

    /// Downloads the inputs and runs the job; the bundle directory on success.
    async fn stage_and_run(
        &self,
        job: &Job,
        dir: &Path,
        cancel: &CancelToken,
        tracker: &mut Tracker,
    ) -> Result<PathBuf, Stop> {
        let inputs = dir.join("in");
        tokio::fs::create_dir_all(&inputs)
            .await
            .map_err(|e| Stop::Retry(Failure::new("worker.scratch", e.to_string())))?;
        let files = self.download_inputs(job, &inputs).await?;
        let out = dir.join("bundle");

        // The runner is blocking (the sandbox, hashing, signing); its updates
        // reach the database through a channel, in order.
        let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
        let runner = Arc::clone(&self.runner);
        let job_id = job.id.to_string();
        let out2 = out.clone();
        let token = cancel.clone();
        let run = tokio::task::spawn_blocking(move || {
            runner.run(&job_id, &files, &out2, &token, &mut |u| {
                let _ = tx.send(u);
            })
        });
        while let Some(update) = rx.recv().await {
            tracker.apply(job, update).await;
        }
        let result = run.await.unwrap_or_else(|e| {
            Err(Failure::new(
                "worker.panic",
                format!("the job runner stopped unexpectedly: {e}"),
            ))
        });
        if tracker.lost.is_cancelled() {
            return Err(Stop::Lost);
        }
        result.map(|()| out).map_err(Stop::Fail)
    }

    async fn download_inputs(&self, job: &Job, dir: &Path) -> Result<JobFiles, Stop> {
        let mut files = JobFiles::default();
        for input in &job.inputs {
            let slot = match input_names::slot(&input.name) {
                Some(s) => s,
                None => {
                    return Err(Stop::Fail(Failure::new(
                        "job.bad_input",
                        format!("the job names an unknown input {:?}", input.name),
                    )));
                }
            };
            let key = ObjectKey::new(input.key.clone()).map_err(|e| {
                Stop::Fail(Failure::new(e.code(), format!("input {}: {e}", input.name)))
            })?;
            let path = dir.join(&input.name);
            let got = self
                .store
                .download_to_file(&key, &path)
                .await
                .map_err(|e| {
                    let f = Failure::new(e.code(), format!("downloading {}: {e}", input.name));
                    match e {
                        veritrain_store::Error::NotFound { .. } => Stop::Fail(f),
                        _ => Stop::Retry(f),
                    }
                })?;
            if got.sha256_hex() != input.sha256 || got.size != input.size {
                return Err(Stop::Fail(Failure::new(
                    "job.input_tampered",
                    format!(
                        "the stored {} is not what was uploaded: sha256 {} ({} bytes) at upload, {} ({} bytes) now",
                        input.name,
                        input.sha256,
                        input.size,
                        got.sha256_hex(),
                        got.size
                    ),
                )));
            }
            *slot(&mut files) = Some(path);
        }
        if files.model.is_none()
            || files.data.is_none()
            || files.definition.is_none()
            || files.request.is_none()
        {
            return Err(Stop::Fail(Failure::new(
                "job.bad_input",
                "the job lacks one of its inputs (model, dataset, definition, request)",
            )));
        }
        Ok(files)
    }

    /// Writes the bundle's new files and its index, records the index, and
    /// moves the job to `succeeded`.
    async fn store_bundle(
        &self,
        job: &Job,
        lease: &Lease,
        bundle: &Path,
        tracker: &mut Tracker,
    ) -> Result<(), Stop> {
        tracker.reach(JobState::Attesting).await?;
        let objects = JobObjects::new(&job.id.to_string())
            .map_err(|e| Stop::Fail(Failure::new(e.code(), e.to_string())))?;
        let files = bundle_files(bundle)
            .map_err(|e| Stop::Fail(Failure::new("job.io", format!("reading the bundle: {e}"))))?;
        let mut entries = Vec::with_capacity(files.len());
        for rel in files {
            let local = bundle.join(&rel);
            let uploaded = rel
                .strip_prefix("inputs/")
                .and_then(|name| job.inputs.iter().find(|i| i.name == name));
            if let Some(input) = uploaded {
                // The bundle's copy of an upload is the upload itself: point
                // at it instead of storing the bytes twice.
                let digest = std::fs::File::open(&local)
                    .and_then(|f| {
                        veritrain_pipeline::manifest::hash_reader(&mut std::io::BufReader::new(f))
                    })
                    .map_err(|e| {
                        Stop::Fail(Failure::new("job.io", format!("hashing {rel}: {e}")))
                    })?;
                if hex::encode(digest.1) != input.sha256 {
                    return Err(Stop::Fail(Failure::new(
                        "job.input_changed",
                        format!("the bundle's {rel} differs from the upload"),
                    )));
                }
                entries.push(IndexEntry {
                    path: rel,
                    key: input.key.clone(),
                    size: input.size,
                    sha256: input.sha256.clone(),
                });
                continue;
            }
            let key = objects
                .attempt_file(lease.attempt, &rel)
                .map_err(|e| Stop::Fail(Failure::new(e.code(), e.to_string())))?;
            let info = self
                .store
                .put_file(&key, &local, self.settings.max_object_bytes)
                .await
                .map_err(|e| store_stop(&rel, e))?;
            entries.push(IndexEntry {
                path: rel,
                key: key.to_string(),
                size: info.size,
                sha256: info.sha256_hex(),
            });
        }
        let index = BundleIndex::new(entries);
        let index_key = objects
            .attempt_index(lease.attempt)
            .map_err(|e| Stop::Fail(Failure::new(e.code(), e.to_string())))?;
        self.store
            .put_bytes(
                &index_key,
                index.to_json(),
                veritrain_store::jobs::MAX_INDEX_BYTES,
            )
            .await
            .map_err(|e| store_stop("the bundle index", e))?;
        self.db
            .set_bundle_key(lease, index_key.as_str())
            .await
            .map_err(db_stop)?;
        let _ = self
            .db
            .append_event(
                job.id,
                "bundle",
                &json!({"files": index.files.len(), "index": index_key.as_str()}),
            )
            .await;
        tracker.reach(JobState::Succeeded).await
    }

    async fn finish_failed(&self, tracker: &mut Tracker, f: Failure) -> Outcome {
        if let Some(details) = &f.details {
            let _ = self
                .db
                .append_event(tracker_job(tracker).await, "failure", details)
                .await;
        }
        let code = f.code.clone();
        let reason = Reason::new(f.code, truncate(&f.message, 4000));
        match tracker.end(JobState::Failed, reason).await {
            Ok(()) => Outcome::Failed(code),
            Err(_) => Outcome::LeaseLost,
        }
    }

    async fn finish_cancelled(&self, tracker: &mut Tracker) -> Outcome {
        let reason = Reason::new(
            Reason::CANCELLED,
            "cancelled on request; the worker stopped the job",
        );
        match tracker.end(JobState::Cancelled, reason).await {
            Ok(()) => Outcome::Cancelled,
            Err(_) => Outcome::LeaseLost,
        }
    }

    /// A fault of the platform (the store), not of the job: back to the
    /// queue while attempts are left, else failed with the fault's code.
    async fn retry(&self, tracker: &mut Tracker, job: &Job, f: Failure) -> Outcome {
        let attempts = tracker.lease.lock().await.attempt;
        if attempts >= self.settings.max_attempts {
            return self.finish_failed(tracker, f).await;
        }
        // Back off before the job is claimable again, so a store that is
        // down is not hammered (the lease, still held, outlasts the pause).
        let shift = attempts.saturating_sub(1).min(16);
        let backoff = self
            .settings
            .retry_backoff
            .saturating_mul(1 << shift)
            .min(self.settings.lease / 2);
        let _ = self
            .db
            .append_event(
                job.id,
                "retry",
                &json!({"code": f.code, "message": f.message, "attempt": attempts,
                        "backoff_secs": backoff.as_secs_f64()}),
            )
            .await;
        tokio::time::sleep(backoff).await;
        let lease = tracker.lease.lock().await.clone();
        match self
            .db
            .transition(&lease, tracker.state, JobState::Queued, None)
            .await
        {
            Ok(_) => Outcome::Requeued(f.code),
            Err(_) => Outcome::LeaseLost,
        }
    }

    /// Renews the lease until aborted; flags a cancel request, and a lost
    /// lease (which also cancels the run).
    fn keep_lease(
        &self,
        lease: Arc<tokio::sync::Mutex<Lease>>,
        cancel: CancelToken,
        lost: CancelToken,
    ) -> tokio::task::JoinHandle<()> {
        let db = self.db.clone();
        let every = self.settings.renew_every;
        let duration = self.settings.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let mut held = lease.lock().await;
                match db.renew_lease(&mut held, duration).await {
                    Ok(true) => cancel.cancel(),
                    Ok(false) => {}
                    Err(
                        veritrain_db::Error::LeaseLost { .. }
                        | veritrain_db::Error::NotFound { .. },
                    ) => {
                        lost.cancel();
                        cancel.cancel();
                        return;
                    }
                    // A database hiccup: try again at the next tick; the
                    // lease is long enough for a few misses.
                    Err(e) => eprintln!("lease renewal failed [{}]: {e}", e.code()),
                }
            }
        })
    }
}

async fn tracker_job(tracker: &Tracker) -> veritrain_db::JobId {
    tracker.lease.lock().await.job_id
}

/// Why processing stopped early.
enum Stop {
    /// The job failed.
    Fail(Failure),
    /// A platform fault; the job may be retried.
    Retry(Failure),
    /// The lease is gone.
    Lost,
}

fn store_stop(what: &str, e: veritrain_store::Error) -> Stop {
    let f = Failure::new(e.code(), format!("storing {what}: {e}"));
    match e {
        veritrain_store::Error::TooLarge { .. } | veritrain_store::Error::BadKey { .. } => {
            Stop::Fail(f)
        }
        _ => Stop::Retry(f),
    }
}

fn db_stop(e: veritrain_db::Error) -> Stop {
    match e {
        veritrain_db::Error::LeaseLost { .. } | veritrain_db::Error::NotFound { .. } => Stop::Lost,
        other => Stop::Retry(Failure::new(other.code(), other.to_string())),
    }
}

/// Moves the job through its states as the runner reports them.
struct Tracker {
    db: Database,
    lease: Arc<tokio::sync::Mutex<Lease>>,
    state: JobState,
    cancel: CancelToken,
    lost: CancelToken,
}

impl Tracker {
    async fn apply(&mut self, job: &Job, update: Update) {
        if self.lost.is_cancelled() {
            return;
        }
        let result = match update {
            Update::Stage(to) => self.reach(to).await,
            Update::Progress(p) => {
                let lease = self.lease.lock().await.clone();
                match self.db.set_progress(&lease, &p).await {
                    Ok(true) => {
                        self.cancel.cancel();
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(db_stop(e)),
                }
            }
            Update::Event { kind, data } => self
                .db
                .append_event(job.id, kind, &data)
                .await
                .map(|_| ())
                .map_err(db_stop),
        };
        if let Err(Stop::Lost) = result {
            self.lost.cancel();
            self.cancel.cancel();
        }
    }

    /// Moves forward to `to` through the states in between (a runner may
    /// skip reporting a stage; the record still shows every state).
    async fn reach(&mut self, to: JobState) -> Result<(), Stop> {
        const PATH: [JobState; 4] = [
            JobState::Validating,
            JobState::Training,
            JobState::Attesting,
            JobState::Succeeded,
        ];
        let pos = |s: JobState| PATH.iter().position(|p| *p == s);
        let (Some(mut at), Some(target)) = (pos(self.state), pos(to)) else {
            return Ok(());
        };
        while at < target {
            let Some(&next) = PATH.get(at + 1) else { break };
            let lease = self.lease.lock().await.clone();
            self.db
                .transition(&lease, self.state, next, None)
                .await
                .map_err(db_stop)?;
            self.state = next;
            at += 1;
        }
        Ok(())
    }

    /// Ends the job in `to` (failed or cancelled) with `reason`.
    async fn end(&mut self, to: JobState, reason: Reason) -> Result<(), Stop> {
        let lease = self.lease.lock().await.clone();
        self.db
            .transition(&lease, self.state, to, Some(reason))
            .await
            .map_err(db_stop)?;
        self.state = to;
        Ok(())
    }
}

/// Every regular file under `dir`, as `/`-separated relative paths, sorted.
fn bundle_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(std::io::Error::other("a bundle file name is not UTF-8"));
            };
            let child = rel.join(name);
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() {
                out.push(child.to_string_lossy().into_owned());
            } else {
                return Err(std::io::Error::other(format!(
                    "{} is neither a file nor a directory",
                    child.display()
                )));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

/// A progress value for the job record.
pub(crate) fn progress_value(epoch: u64, total: u64, metrics: Value) -> veritrain_db::Progress {
    veritrain_db::Progress {
        epoch: u32::try_from(epoch).unwrap_or(u32::MAX),
        total_epochs: u32::try_from(total).unwrap_or(u32::MAX),
        metrics,
    }
}
