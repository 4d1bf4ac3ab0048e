//! The worker's queue handling under success, failure, cancellation, lost
//! leases, tampered inputs and store outages, with small job runners that
//! behave on cue (the real pipeline is exercised end to end in the slow
//! tier, `tests/e2e_service.rs`). SQLite and local disk: the database's
//! own suite proves both backends keep the same rules (claims, leases,
//! fencing), and `tests/e2e_service.rs` runs the service on PostgreSQL and
//! S3.

// Test code: a panic is a failure report.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use veritrain_db::{Database, InputObject, JobId, JobState, NewJob, Owner, Visibility};
use veritrain_sandbox::CancelToken;
use veritrain_store::{BundleIndex, JobObjects, ObjectKey, Store};
use veritrain_worker::{
    Failure, JobFiles, JobRunner, Outcome, Update, Worker, WorkerMetrics, WorkerSettings,
};

// ---------------------------------------------------------------- harness

struct Env {
    db: Database,
    store: Store,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path()).await;
    let store = Store::local(dir.path().join("objects")).unwrap();
    Env { db, store, dir }
}

async fn sqlite(dir: &Path) -> Database {
    Database::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("jobs.db").display()
    ))
    .await
    .unwrap()
}

fn owner() -> Owner {
    Owner::new("tenant", "alice").unwrap()
}

/// Stores four small inputs and queues a job over them.
async fn submit(env: &Env) -> JobId {
    let id = JobId::new();
    let objects = JobObjects::new(&id.to_string()).unwrap();
    let mut inputs = Vec::new();
    for (name, bytes) in [
        ("model.keras", b"model".as_slice()),
        ("data.csv", b"a,b\n1,2\n"),
        ("definition.yaml", b"version: 1\n"),
        ("job.yaml", b"model: {name: m, version: '1'}\n"),
    ] {
        let key = objects.input(name).unwrap();
        let info = env
            .store
            .put_bytes(&key, bytes.to_vec(), 1 << 20)
            .await
            .unwrap();
        inputs.push(InputObject {
            key: key.to_string(),
            name: name.into(),
            size: info.size,
            sha256: info.sha256_hex(),
        });
    }
    env.db
        .create_job(NewJob {
            id,
            owner: owner(),
            request: json!({"model": {"name": "m"}}),
            inputs,
        })
        .await
        .unwrap();
    id
}

fn settings(env: &Env, id: &str) -> WorkerSettings {
    let mut s = WorkerSettings::new(id, env.dir.path().join("scratch"));
    s.lease = Duration::from_secs(10);
    s.renew_every = Duration::from_millis(100);
    s.poll = Duration::from_millis(50);
    s.retry_backoff = Duration::from_millis(200);
    s
}

fn worker(env: &Env, runner: impl JobRunner, s: WorkerSettings) -> Worker {
    Worker::new(
        env.db.clone(),
        env.store.clone(),
        Arc::new(runner),
        s,
        Arc::new(WorkerMetrics::default()),
    )
}

/// Copies the inputs into `out/inputs/` and writes four outputs: the shape
/// of a real bundle, without TensorFlow.
fn write_bundle(files: &JobFiles, out: &Path, tag: &str) {
    std::fs::create_dir_all(out.join("inputs")).unwrap();
    std::fs::create_dir_all(out.join("outputs")).unwrap();
    std::fs::create_dir_all(out.join("attestations")).unwrap();
    for p in [&files.model, &files.data, &files.definition, &files.request] {
        let p = p.as_ref().unwrap();
        std::fs::copy(p, out.join("inputs").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(out.join("outputs/model.keras"), format!("trained {tag}")).unwrap();
    std::fs::write(out.join("outputs/metrics.json"), "{}").unwrap();
    std::fs::write(out.join("attestations/run_training.link"), "{}").unwrap();
    std::fs::write(out.join("aibom.cdx.json"), "{}").unwrap();
}

struct Succeeds;
impl JobRunner for Succeeds {
    fn run(
        &self,
        job_id: &str,
        files: &JobFiles,
        out: &Path,
        _cancel: &CancelToken,
        update: &mut dyn FnMut(Update),
    ) -> Result<(), Failure> {
        update(Update::Stage(JobState::Training));
        update(Update::Progress(veritrain_db::Progress {
            epoch: 1,
            total_epochs: 1,
            metrics: json!({"loss": 0.5}),
        }));
        update(Update::Event {
            kind: "log",
            data: json!({"line": "trained"}),
        });
        update(Update::Stage(JobState::Attesting));
        write_bundle(files, out, job_id);
        Ok(())
    }
}

struct Fails;
impl JobRunner for Fails {
    fn run(
        &self,
        _: &str,
        _: &JobFiles,
        _: &Path,
        _: &CancelToken,
        _: &mut dyn FnMut(Update),
    ) -> Result<(), Failure> {
        Err(Failure {
            code: "keras.disallowed_layer".into(),
            message: "layer Lambda is not allowed".into(),
            details: Some(json!({"findings": [{"code": "keras.disallowed_layer"}]})),
        })
    }
}

/// Trains until cancelled (or 20 s pass).
struct Stalls;
impl JobRunner for Stalls {
    fn run(
        &self,
        _: &str,
        _: &JobFiles,
        _: &Path,
        cancel: &CancelToken,
        update: &mut dyn FnMut(Update),
    ) -> Result<(), Failure> {
        update(Update::Stage(JobState::Training));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if cancel.is_cancelled() {
                return Err(Failure::new("job.cancelled", "cancelled"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Failure::new(
            "test.not_cancelled",
            "the run was never cancelled",
        ))
    }
}

async fn job(env: &Env, id: JobId) -> veritrain_db::Job {
    env.db.get_job(id, &Visibility::All).await.unwrap()
}

async fn states(env: &Env, id: JobId) -> Vec<String> {
    env.db
        .events_after(id, &Visibility::All, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "state")
        .map(|e| e.data["to"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------- cases

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_successful_job_stores_its_bundle_once_and_succeeds() {
    let env = env().await;
    let id = submit(&env).await;
    let w = worker(&env, Succeeds, settings(&env, "w1"));
    let (_, outcome) = w.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    let j = job(&env, id).await;
    assert_eq!(j.state, JobState::Succeeded);
    assert_eq!(j.progress.as_ref().unwrap().epoch, 1);
    assert_eq!(
        states(&env, id).await,
        ["queued", "validating", "training", "attesting", "succeeded"]
    );
    let index_key = ObjectKey::new(j.bundle_key.clone().unwrap()).unwrap();
    let index =
        BundleIndex::parse(&env.store.get_bytes(&index_key, 1 << 20).await.unwrap()).unwrap();
    let paths: Vec<&str> = index.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "aibom.cdx.json",
            "attestations/run_training.link",
            "inputs/data.csv",
            "inputs/definition.yaml",
            "inputs/job.yaml",
            "inputs/model.keras",
            "outputs/metrics.json",
            "outputs/model.keras",
        ]
    );
    // The uploads are referenced, not copied; the rest is under the attempt.
    let model_in = index.get("inputs/model.keras").unwrap();
    assert_eq!(model_in.key, format!("jobs/{id}/inputs/model.keras"));
    let model_out = index.get("outputs/model.keras").unwrap();
    assert_eq!(
        model_out.key,
        format!("jobs/{id}/attempts/1/outputs/model.keras")
    );
    let stored = env
        .store
        .get_bytes(&ObjectKey::new(model_out.key.clone()).unwrap(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(&stored[..], format!("trained {id}").as_bytes());
    // Nothing is left in the scratch directory.
    let scratch: Vec<_> = std::fs::read_dir(env.dir.path().join("scratch"))
        .unwrap()
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_job_is_failed_with_its_code_never_succeeded() {
    let env = env().await;
    let id = submit(&env).await;
    let w = worker(&env, Fails, settings(&env, "w1"));
    let (_, outcome) = w.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Failed("keras.disallowed_layer".into()));
    let j = job(&env, id).await;
    assert_eq!(j.state, JobState::Failed);
    let reason = j.reason.unwrap();
    assert_eq!(reason.code, "keras.disallowed_layer");
    assert!(reason.message.contains("Lambda"));
    assert!(j.bundle_key.is_none());
    let events = env
        .db
        .events_after(id, &Visibility::All, 0, 100)
        .await
        .unwrap();
    let failure = events.iter().find(|e| e.kind == "failure").unwrap();
    assert_eq!(
        failure.data["findings"][0]["code"],
        "keras.disallowed_layer"
    );
    assert!(!states(&env, id).await.contains(&"succeeded".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_running_job_stops_its_run() {
    let env = env().await;
    let id = submit(&env).await;
    let w = Arc::new(worker(&env, Stalls, settings(&env, "w1")));
    let w2 = Arc::clone(&w);
    let run = tokio::spawn(async move { w2.run_once().await.unwrap().unwrap() });
    // Wait until it trains, then cancel as the owner would.
    let start = Instant::now();
    while job(&env, id).await.state != JobState::Training {
        assert!(start.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.db
        .request_cancel(id, &Visibility::Owner(owner()))
        .await
        .unwrap();
    let (_, outcome) = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run did not stop after the cancel")
        .unwrap();
    assert_eq!(outcome, Outcome::Cancelled);
    let j = job(&env, id).await;
    assert_eq!(j.state, JobState::Cancelled);
    assert_eq!(j.reason.unwrap().code, "job.cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_upload_fails_the_job() {
    let env = env().await;
    let id = submit(&env).await;
    // Someone with access to the store's disk changes the dataset.
    let path = env
        .dir
        .path()
        .join(format!("objects/jobs/{id}/inputs/data.csv"));
    std::fs::write(&path, b"a,b\n9,9\n").unwrap();
    let w = worker(&env, Succeeds, settings(&env, "w1"));
    let (_, outcome) = w.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Failed("job.input_tampered".into()));
    let reason = job(&env, id).await.reason.unwrap();
    assert!(reason.message.contains("data.csv"), "{}", reason.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_outage_requeues_then_fails_after_the_last_attempt() {
    let env = env().await;
    let id = submit(&env).await;
    // A store nobody answers: every download fails as an outage would.
    let down = Store::s3(veritrain_store::S3Config {
        endpoint: "http://127.0.0.1:9".parse().unwrap(),
        bucket: "b".into(),
        region: "us-east-1".into(),
        access_key_id: "k".into(),
        secret_access_key: veritrain_store::SecretString::new("s"),
        allow_http: true,
    })
    .unwrap();
    let mut s = settings(&env, "w1");
    s.max_attempts = 2;
    let w = Worker::new(
        env.db.clone(),
        down,
        Arc::new(Succeeds),
        s,
        Arc::new(WorkerMetrics::default()),
    );
    let t = Instant::now();
    let (_, first) = w.run_once().await.unwrap().unwrap();
    assert!(matches!(first, Outcome::Requeued(_)), "{first:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "no backoff before the requeue"
    );
    let retry = env
        .db
        .events_after(id, &Visibility::All, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "retry")
        .unwrap();
    assert!(retry.data["code"].as_str().unwrap().starts_with("store."));
    assert_eq!(job(&env, id).await.state, JobState::Queued);
    let (_, second) = w.run_once().await.unwrap().unwrap();
    assert!(matches!(second, Outcome::Failed(_)), "{second:?}");
    let j = job(&env, id).await;
    assert_eq!(j.state, JobState::Failed);
    assert_eq!(j.attempts, 2);
    assert!(j.reason.unwrap().code.starts_with("store."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_that_lost_its_lease_writes_nothing_more() {
    let env = env().await;
    let id = submit(&env).await;
    let mut s = settings(&env, "w1");
    s.lease = Duration::from_secs(10);
    let w = Arc::new(worker(&env, Stalls, s));
    let w2 = Arc::clone(&w);
    let run = tokio::spawn(async move { w2.run_once().await.unwrap().unwrap() });
    let start = Instant::now();
    while job(&env, id).await.state != JobState::Training {
        assert!(start.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another node decides the worker is gone: the job fails over to the
    // queue and a second worker claims it.
    force_requeue(&env, id).await;
    let (_, outcome) = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the stale run did not stop")
        .unwrap();
    assert_eq!(outcome, Outcome::LeaseLost);
    let j = job(&env, id).await;
    assert_eq!(
        j.state,
        JobState::Queued,
        "the stale worker wrote after losing its lease"
    );
}

/// Takes the job from its worker the way an expired lease would: the sweep
/// runs with a clock past the lease.
async fn force_requeue(env: &Env, id: JobId) {
    let url = format!(
        "sqlite://{}?mode=rwc",
        env.dir.path().join("jobs.db").display()
    );
    let later = chrono::Utc::now() + chrono::Duration::seconds(3600);
    let sweeper = Database::connect_with_clock(&url, veritrain_db::Clock::manual(later))
        .await
        .unwrap();
    let report = sweeper.requeue_expired(5).await.unwrap();
    assert_eq!(report.requeued, vec![id]);
    sweeper.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_run_every_job_exactly_once() {
    struct Counting(Arc<AtomicUsize>);
    impl JobRunner for Counting {
        fn run(
            &self,
            job_id: &str,
            files: &JobFiles,
            out: &Path,
            _: &CancelToken,
            _: &mut dyn FnMut(Update),
        ) -> Result<(), Failure> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            write_bundle(files, out, job_id);
            Ok(())
        }
    }
    let env = env().await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(submit(&env).await);
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for n in 0..4 {
        let w = worker(
            &env,
            Counting(Arc::clone(&runs)),
            settings(&env, &format!("w{n}")),
        );
        let stopped = stopped.clone();
        handles.push(tokio::spawn(async move { w.run(stopped).await.unwrap() }));
    }
    let start = Instant::now();
    loop {
        let mut done = 0;
        for id in &ids {
            if job(&env, *id).await.state == JobState::Succeeded {
                done += 1;
            }
        }
        if done == ids.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{done} of 12 done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        12,
        "a job ran twice or not at all"
    );
}
