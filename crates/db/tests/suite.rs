//! One test suite for every backend of the job database.
//!
//! Each case is an `async fn(&Database)`; the `suite!` macro below runs it
//! against SQLite (a fresh file in a temp dir, always) and against PostgreSQL
//! (a fresh schema in the database named by `VERITRAIN_TEST_DATABASE_URL`).
//! Without that variable the Postgres half prints SKIPPED, except under
//! `CI=true`, where it fails: CI must test both backends.

// Test code: a panic is a failure report, which is the point.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use veritrain_db::{
    CancelOutcome, Claimed, Clock, Cursor, Database, InputObject, Job, JobId, JobState, Lease,
    NewJob, Owner, PageRequest, Progress, Reason, Visibility, state,
};

const LEASE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- harness

struct TestDb {
    db: Database,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display());
    let db = Database::connect_with_clock(&url, Clock::manual(Utc::now()))
        .await
        .unwrap();
    TestDb {
        db,
        _dir: Some(dir),
    }
}

async fn postgres_db() -> Option<TestDb> {
    let Ok(base) = std::env::var("VERITRAIN_TEST_DATABASE_URL") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "VERITRAIN_TEST_DATABASE_URL is not set, and CI=true requires the Postgres \
                 backend to be tested: eval \"$(scripts/start-postgres)\" first"
            );
        }
        eprintln!(
            "SKIPPED: Postgres half of the job database suite \
             (set VERITRAIN_TEST_DATABASE_URL, e.g. eval \"$(scripts/start-postgres)\")"
        );
        return None;
    };
    // A schema per test: cases run in parallel and count and claim jobs, so
    // each needs a database of its own.
    let schema = format!("t_{}", JobId::new().as_uuid().simple());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let db = Database::connect_with_clock(&url, Clock::manual(Utc::now()))
        .await
        .unwrap();
    Some(TestDb { db, _dir: None })
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let t = super::sqlite_db().await;
                    super::$case(&t.db).await;
                    t.db.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(t) = super::postgres_db().await else { return };
                    super::$case(&t.db).await;
                    t.db.close().await;
                }
            )*
        }
    };
}

suite!(
    create_get_round_trip,
    duplicate_id_is_refused,
    owner_isolation,
    pagination_is_stable_and_complete,
    page_limits_and_cursors,
    every_transition_from_running_states,
    terminal_states_are_immutable,
    transitions_are_fenced_and_idempotent,
    succeeded_needs_attesting_and_a_bundle,
    claim_next_under_concurrency,
    lease_expiry_requeues_then_fails,
    zombie_worker_cannot_touch_a_reclaimed_job,
    cancel_semantics,
    events_order_and_events_after,
    concurrent_event_appends_have_no_gaps,
    progress_and_counts,
);

// ---------------------------------------------------------------- helpers

fn alice() -> Owner {
    Owner::new("tenant-1", "alice").unwrap()
}

fn bob() -> Owner {
    Owner::new("tenant-1", "bob").unwrap()
}

fn new_job(owner: &Owner) -> NewJob {
    NewJob {
        id: JobId::new(),
        owner: owner.clone(),
        request: json!({
            "model": {"name": "mnist-cnn", "version": "1.0", "license": "Apache-2.0"},
            "fit": {"epochs": 5, "batch_size": 32, "validation_split": 0.2}
        }),
        inputs: vec![
            InputObject {
                key: "jobs/x/model.keras".into(),
                name: "model".into(),
                size: 1_295_076,
                sha256: "ab".repeat(32),
            },
            InputObject {
                key: "jobs/x/dataset.zip".into(),
                name: "dataset".into(),
                size: u64::from(u32::MAX) + 7,
                sha256: "cd".repeat(32),
            },
        ],
    }
}

fn reason_for(to: JobState) -> Option<Reason> {
    match to {
        JobState::Failed => Some(Reason::new("train.error", "the model raised an exception")),
        JobState::Cancelled => Some(Reason::new(Reason::CANCELLED, "stopped on request")),
        _ => None,
    }
}

/// A fresh job claimed and driven to `target` (a running or terminal state).
/// The queue must hold no other job.
async fn drive_to(db: &Database, target: JobState) -> (Job, Lease) {
    let created = db.create_job(new_job(&alice())).await.unwrap();
    let Claimed { job, lease } = db.claim_next("w-drive", LEASE).await.unwrap().unwrap();
    assert_eq!(job.id, created.id, "the queue held another job");
    let path: &[JobState] = match target {
        JobState::Validating => &[],
        JobState::Training => &[JobState::Training],
        JobState::Attesting => &[JobState::Training, JobState::Attesting],
        JobState::Succeeded => &[JobState::Training, JobState::Attesting, JobState::Succeeded],
        JobState::Failed => &[JobState::Training, JobState::Failed],
        JobState::Cancelled => &[JobState::Training, JobState::Cancelled],
        JobState::Queued => panic!("drive_to(queued) makes no sense"),
    };
    let mut job = job;
    for &to in path {
        if to == JobState::Succeeded {
            db.set_bundle_key(&lease, "bundles/x.tar").await.unwrap();
        }
        job = db
            .transition(&lease, job.state, to, reason_for(to))
            .await
            .unwrap();
    }
    assert_eq!(job.state, target);
    (job, lease)
}

async fn stored(db: &Database, id: JobId) -> Job {
    db.get_job(id, &Visibility::All).await.unwrap()
}

// ---------------------------------------------------------------- cases

async fn create_get_round_trip(db: &Database) {
    let new = new_job(&alice());
    let created = db.create_job(new.clone()).await.unwrap();
    assert_eq!(created.state, JobState::Queued);
    assert_eq!(created.attempts, 0);
    assert!(created.reason.is_none() && created.started_at.is_none());

    // What is read back is exactly what was written, times included.
    let got = db
        .get_job(new.id, &Visibility::Owner(alice()))
        .await
        .unwrap();
    assert_eq!(got, created);
    assert_eq!(got.inputs, new.inputs);
    assert_eq!(got.request, new.request);
    assert_eq!(stored(db, new.id).await, created);

    // Submission is the first entry of the event log.
    let events = db
        .events_after(new.id, &Visibility::Owner(alice()), 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, 1);
    assert_eq!(events[0].kind, "state");
    assert_eq!(events[0].data["to"], "queued");

    let missing = JobId::new();
    let err = db.get_job(missing, &Visibility::All).await.unwrap_err();
    assert_eq!(err.code(), "db.not_found");
}

async fn duplicate_id_is_refused(db: &Database) {
    let new = new_job(&alice());
    db.create_job(new.clone()).await.unwrap();
    let mut again = new_job(&bob());
    again.id = new.id;
    let err = db.create_job(again).await.unwrap_err();
    assert_eq!(err.code(), "db.duplicate");
    // The original is untouched.
    assert_eq!(stored(db, new.id).await.owner, alice());
}

async fn owner_isolation(db: &Database) {
    let mut a_ids = BTreeSet::new();
    for _ in 0..3 {
        a_ids.insert(db.create_job(new_job(&alice())).await.unwrap().id);
    }
    let mut b_ids = BTreeSet::new();
    for _ in 0..2 {
        b_ids.insert(db.create_job(new_job(&bob())).await.unwrap().id);
    }
    let a = Visibility::Owner(alice());
    let b = Visibility::Owner(bob());
    // Same oid in another tenant, and same tenant with another oid: strangers.
    let other_tenant = Visibility::Owner(Owner::new("tenant-2", "alice").unwrap());
    let a_job = *a_ids.first().unwrap();

    for stranger in [&b, &other_tenant] {
        // Bob cannot tell Alice's job from a job that does not exist.
        let err = db.get_job(a_job, stranger).await.unwrap_err();
        assert_eq!(err.code(), "db.not_found");
        assert_eq!(err.to_string(), format!("job {a_job} not found"));
        let err = db.request_cancel(a_job, stranger).await.unwrap_err();
        assert_eq!(err.code(), "db.not_found");
        let err = db.events_after(a_job, stranger, 0, 10).await.unwrap_err();
        assert_eq!(err.code(), "db.not_found");
    }
    // Nothing changed by the refused cancel.
    assert_eq!(stored(db, a_job).await.state, JobState::Queued);

    let ids = |page: veritrain_db::JobPage| page.jobs.iter().map(|j| j.id).collect::<BTreeSet<_>>();
    let list_a = ids(db.list_jobs(&a, PageRequest::first(100)).await.unwrap());
    let list_b = ids(db.list_jobs(&b, PageRequest::first(100)).await.unwrap());
    let list_x = ids(db
        .list_jobs(&other_tenant, PageRequest::first(100))
        .await
        .unwrap());
    let list_all = ids(db
        .list_jobs(&Visibility::All, PageRequest::first(100))
        .await
        .unwrap());
    assert_eq!(list_a, a_ids);
    assert_eq!(list_b, b_ids);
    assert!(list_x.is_empty());
    assert_eq!(list_all, a_ids.union(&b_ids).copied().collect());
    // Auditors see every job.
    for id in a_ids.iter().chain(&b_ids) {
        db.get_job(*id, &Visibility::All).await.unwrap();
    }
}

async fn pagination_is_stable_and_complete(db: &Database) {
    // 23 jobs over 4 instants: many share a created_at, so the id breaks ties.
    let mut expected = Vec::new();
    for i in 0..23 {
        if i % 6 == 0 {
            db.clock().advance(Duration::from_secs(1));
        }
        let owner = if i % 5 == 0 { bob() } else { alice() };
        expected.push(db.create_job(new_job(&owner)).await.unwrap());
    }
    expected.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.id)));

    for (vis, want) in [
        (Visibility::All, expected.clone()),
        (
            Visibility::Owner(alice()),
            expected
                .iter()
                .filter(|j| j.owner == alice())
                .cloned()
                .collect::<Vec<_>>(),
        ),
    ] {
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = db
                .list_jobs(&vis, PageRequest { after, limit: 5 })
                .await
                .unwrap();
            assert!(page.jobs.len() <= 5);
            seen.extend(page.jobs.iter().map(|j| j.id));
            pages += 1;
            if pages == 2 {
                // A job submitted mid-listing is newer than the cursor: the
                // remaining pages neither skip nor repeat anything.
                db.clock().advance(Duration::from_secs(1));
                let carol = Owner::new("tenant-1", "carol").unwrap();
                db.create_job(new_job(&carol)).await.unwrap();
            }
            // The cursor survives being sent to a client and back.
            after = page.next.map(|c| c.to_string().parse().unwrap());
            if after.is_none() {
                break;
            }
        }
        let want: Vec<JobId> = want.iter().map(|j| j.id).collect();
        assert_eq!(seen, want, "pages must list every job once, newest first");
        assert_eq!(pages, want.len().div_ceil(5));
    }
}

async fn page_limits_and_cursors(db: &Database) {
    for _ in 0..105 {
        db.create_job(new_job(&alice())).await.unwrap();
    }
    let page = db
        .list_jobs(&Visibility::All, PageRequest::first(1000))
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 100, "limit is capped at 100");
    assert!(page.next.is_some());
    let page = db
        .list_jobs(&Visibility::All, PageRequest::first(0))
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1, "limit 0 is raised to 1");
    let exact = db
        .list_jobs(&Visibility::Owner(bob()), PageRequest::first(10))
        .await
        .unwrap();
    assert!(exact.jobs.is_empty() && exact.next.is_none());
    let err = "garbage".parse::<Cursor>().unwrap_err();
    assert_eq!(err.code(), "db.bad_cursor");
}

async fn every_transition_from_running_states(db: &Database) {
    for from in [
        JobState::Validating,
        JobState::Training,
        JobState::Attesting,
    ] {
        for to in JobState::ALL {
            let (job, lease) = drive_to(db, from).await;
            if to == JobState::Succeeded && from == JobState::Attesting {
                // drive_to only records the bundle on the way to succeeded.
                db.set_bundle_key(&lease, "bundles/x.tar").await.unwrap();
            }
            let res = db.transition(&lease, from, to, reason_for(to)).await;
            if state::allowed(from, to) {
                let moved = res.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(moved.state, to);
                assert_eq!(stored(db, job.id).await, moved);
                assert_eq!(moved.reason, reason_for(to));
                assert_eq!(moved.finished_at.is_some(), to.is_terminal());
                assert_eq!(moved.lease_expires_at.is_some(), to.is_running());
                assert_eq!(moved.worker_id.is_none(), to == JobState::Queued);
            } else {
                let err = res.unwrap_err();
                assert_eq!(err.code(), "db.bad_transition", "{from} -> {to}: {err}");
                assert_eq!(
                    stored(db, job.id).await.state,
                    from,
                    "refused move changed state"
                );
            }
            // Leave the queue empty for the next drive_to.
            if stored(db, job.id).await.state == JobState::Queued {
                let c = db.claim_next("w-drain", LEASE).await.unwrap().unwrap();
                db.transition(
                    &c.lease,
                    JobState::Validating,
                    JobState::Failed,
                    reason_for(JobState::Failed),
                )
                .await
                .unwrap();
            }
        }
    }
}

async fn terminal_states_are_immutable(db: &Database) {
    for terminal in [JobState::Succeeded, JobState::Failed, JobState::Cancelled] {
        let (job, lease) = drive_to(db, terminal).await;
        for to in JobState::ALL {
            if to == terminal {
                continue; // an idempotent replay, covered elsewhere
            }
            let err = db
                .transition(&lease, terminal, to, reason_for(to))
                .await
                .unwrap_err();
            assert_eq!(err.code(), "db.bad_transition", "{terminal} -> {to}");
        }
        // Claiming to come from the last running state does not help either.
        let res = db
            .transition(&lease, JobState::Attesting, JobState::Succeeded, None)
            .await;
        if terminal == JobState::Succeeded {
            // A replay of the change that happened: accepted, nothing changes.
            assert_eq!(res.unwrap(), job);
        } else {
            let err = res.unwrap_err();
            assert_eq!(err.code(), "db.state_conflict", "{terminal}: {err}");
        }
        let after = stored(db, job.id).await;
        assert_eq!(after, job, "a terminal job changed");
        // Cancel of a finished job does nothing.
        let out = db.request_cancel(job.id, &Visibility::All).await.unwrap();
        assert!(matches!(out, CancelOutcome::AlreadyFinished(_)));
        assert_eq!(stored(db, job.id).await, job);
        // The sweep never touches it.
        db.clock().advance(LEASE * 2);
        let report = db.requeue_expired(3).await.unwrap();
        assert!(!report.requeued.contains(&job.id) && !report.failed.contains(&job.id));
        assert_eq!(stored(db, job.id).await, job);
    }
}

async fn transitions_are_fenced_and_idempotent(db: &Database) {
    let (job, lease) = drive_to(db, JobState::Training).await;
    // A replay of validating -> training (already done) is accepted.
    let replay = db
        .transition(&lease, JobState::Validating, JobState::Training, None)
        .await
        .unwrap();
    assert_eq!(replay, job);
    // Wrong expected state: a conflict, not a move.
    let err = db
        .transition(
            &lease,
            JobState::Attesting,
            JobState::Failed,
            reason_for(JobState::Failed),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.state_conflict");
    // Replays succeed without a second change.
    let a1 = db
        .transition(&lease, JobState::Training, JobState::Attesting, None)
        .await
        .unwrap();
    let a2 = db
        .transition(&lease, JobState::Training, JobState::Attesting, None)
        .await
        .unwrap();
    assert_eq!(a1, a2);
    // Another worker's id (same attempt) is refused.
    let mut forged = lease.clone();
    forged.worker_id = "w-other".into();
    let err = db
        .transition(
            &forged,
            JobState::Attesting,
            JobState::Failed,
            reason_for(JobState::Failed),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.lease_lost");
    // Reason rules hold at the database too.
    let err = db
        .transition(&lease, JobState::Attesting, JobState::Failed, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.bad_reason");
    let err = db
        .transition(
            &lease,
            JobState::Attesting,
            JobState::Queued,
            reason_for(JobState::Failed),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.bad_reason");
    assert_eq!(stored(db, job.id).await.state, JobState::Attesting);
    // One state event per real change: submit, claim, training, attesting.
    let events = db
        .events_after(job.id, &Visibility::All, 0, 100)
        .await
        .unwrap();
    let moves: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "state")
        .map(|e| e.data["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(moves, ["queued", "validating", "training", "attesting"]);
}

async fn succeeded_needs_attesting_and_a_bundle(db: &Database) {
    // The prior art reported failed jobs as SUCCESS. Here: never.
    let (failed, lease) = drive_to(db, JobState::Failed).await;
    for from in JobState::ALL {
        let err = db
            .transition(&lease, from, JobState::Succeeded, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err.code(), "db.bad_transition" | "db.state_conflict"),
            "{from}: {err}"
        );
    }
    assert_eq!(stored(db, failed.id).await.state, JobState::Failed);
    assert_eq!(
        stored(db, failed.id).await.reason.unwrap().code,
        "train.error"
    );

    let (job, lease) = drive_to(db, JobState::Attesting).await;
    let err = db
        .transition(&lease, JobState::Attesting, JobState::Succeeded, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.bundle_missing");
    db.set_bundle_key(&lease, "bundles/a.tar").await.unwrap();
    db.set_bundle_key(&lease, "bundles/a.tar").await.unwrap(); // same key again: fine
    let err = db
        .set_bundle_key(&lease, "bundles/b.tar")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.invalid_input", "bundle key is write-once");
    let done = db
        .transition(&lease, JobState::Attesting, JobState::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(done.bundle_key.as_deref(), Some("bundles/a.tar"));
    assert!(done.finished_at.is_some() && done.reason.is_none());
    assert_eq!(stored(db, job.id).await, done);
}

async fn claim_next_under_concurrency(db: &Database) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 50;
    let mut created = HashSet::new();
    for _ in 0..TASKS * PER_TASK {
        created.insert(db.create_job(new_job(&alice())).await.unwrap().id);
    }
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            let worker = format!("w-{t}");
            let mut mine = Vec::new();
            while let Some(c) = db.claim_next(&worker, LEASE).await.unwrap() {
                assert_eq!(c.job.state, JobState::Validating);
                assert_eq!(c.job.worker_id.as_deref(), Some(worker.as_str()));
                mine.push(c.job.id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for h in handles {
        claimed.extend(h.await.unwrap());
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), TASKS * PER_TASK, "every job claimed once");
    assert_eq!(unique, created, "no job claimed twice, none left behind");
    assert_eq!(db.queue_depth().await.unwrap(), 0);
    let counts = db.counts_by_state().await.unwrap();
    assert_eq!(counts[&JobState::Validating], (TASKS * PER_TASK) as u64);
    for id in created.iter().take(20) {
        assert_eq!(stored(db, *id).await.attempts, 1);
    }
}

async fn lease_expiry_requeues_then_fails(db: &Database) {
    let job = db.create_job(new_job(&alice())).await.unwrap();
    let max_attempts = 3;
    for attempt in 1..=max_attempts {
        let mut c = db.claim_next("w-dying", LEASE).await.unwrap().unwrap();
        assert_eq!(c.job.id, job.id);
        assert_eq!(c.lease.attempt, attempt);
        assert_eq!(c.job.lease_expires_at, Some(c.lease.expires_at));
        // Heartbeats keep it alive.
        db.clock().advance(LEASE / 2);
        assert!(!db.renew_lease(&mut c.lease, LEASE).await.unwrap());
        db.clock().advance(LEASE / 2);
        assert!(
            db.requeue_expired(max_attempts)
                .await
                .unwrap()
                .requeued
                .is_empty()
        );
        // Then the worker dies.
        db.clock().advance(LEASE + Duration::from_secs(1));
        let report = db.requeue_expired(max_attempts).await.unwrap();
        let after = stored(db, job.id).await;
        if attempt < max_attempts {
            assert_eq!(report.requeued, vec![job.id]);
            assert_eq!(after.state, JobState::Queued);
            assert!(after.worker_id.is_none() && after.lease_expires_at.is_none());
            assert!(after.reason.is_none());
        } else {
            assert_eq!(report.failed, vec![job.id]);
            assert_eq!(after.state, JobState::Failed);
            assert_eq!(after.reason.as_ref().unwrap().code, Reason::WORKER_LOST);
            assert!(after.finished_at.is_some());
        }
        assert_eq!(after.attempts, attempt);
        // The dead worker's lease is gone for good.
        let err = db.renew_lease(&mut c.lease, LEASE).await.unwrap_err();
        assert_eq!(err.code(), "db.lease_lost");
        let err = db
            .transition(&c.lease, JobState::Validating, JobState::Training, None)
            .await
            .unwrap_err();
        if attempt < max_attempts {
            assert_eq!(err.code(), "db.lease_lost");
        } else {
            // The job is finished: it says so.
            assert_eq!(err.code(), "db.state_conflict");
        }
        // A second sweep finds nothing.
        let again = db.requeue_expired(max_attempts).await.unwrap();
        assert_eq!(again, Default::default());
    }
    assert!(db.claim_next("w-next", LEASE).await.unwrap().is_none());
    let events = db
        .events_after(job.id, &Visibility::All, 0, 100)
        .await
        .unwrap();
    let sweeps = events
        .iter()
        .filter(|e| e.kind == "state" && e.data["by"] == "lease_sweep")
        .count();
    assert_eq!(sweeps, 3);
}

async fn zombie_worker_cannot_touch_a_reclaimed_job(db: &Database) {
    db.create_job(new_job(&alice())).await.unwrap();
    let a = db.claim_next("w-a", LEASE).await.unwrap().unwrap();
    db.clock().advance(LEASE * 2);
    assert_eq!(db.requeue_expired(5).await.unwrap().requeued.len(), 1);
    let b = db.claim_next("w-b", LEASE).await.unwrap().unwrap();
    assert_eq!(b.job.id, a.job.id);
    // Same state, same job: A's stale lease must still be refused.
    let err = db
        .transition(&a.lease, JobState::Validating, JobState::Training, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.lease_lost");
    let p = Progress {
        epoch: 1,
        total_epochs: 5,
        metrics: json!({"loss": 1.0}),
    };
    assert_eq!(
        db.set_progress(&a.lease, &p).await.unwrap_err().code(),
        "db.lease_lost"
    );
    // Even the same worker id on a newer claim is a different lease.
    let mut old_b = b.lease.clone();
    old_b.attempt -= 1;
    assert_eq!(
        db.transition(&old_b, JobState::Validating, JobState::Training, None)
            .await
            .unwrap_err()
            .code(),
        "db.lease_lost"
    );
    let moved = db
        .transition(&b.lease, JobState::Validating, JobState::Training, None)
        .await
        .unwrap();
    assert_eq!(moved.worker_id.as_deref(), Some("w-b"));
}

async fn cancel_semantics(db: &Database) {
    // Queued: cancelled at once, never claimed.
    let q = db.create_job(new_job(&alice())).await.unwrap();
    let out = db
        .request_cancel(q.id, &Visibility::Owner(alice()))
        .await
        .unwrap();
    let job = match out {
        CancelOutcome::Cancelled(job) => job,
        other => panic!("queued job not cancelled: {other:?}"),
    };
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.reason.as_ref().unwrap().code, Reason::CANCELLED);
    assert!(job.finished_at.is_some());
    assert!(db.claim_next("w", LEASE).await.unwrap().is_none());

    // Running: flagged; the worker sees it on its next heartbeat and stops.
    let (r, mut lease) = drive_to(db, JobState::Training).await;
    let out = db
        .request_cancel(r.id, &Visibility::Owner(alice()))
        .await
        .unwrap();
    let job = match out {
        CancelOutcome::Requested(job) => job,
        other => panic!("running job not flagged: {other:?}"),
    };
    assert!(job.cancel_requested);
    assert_eq!(job.state, JobState::Training);
    let events_before = db
        .events_after(r.id, &Visibility::All, 0, 100)
        .await
        .unwrap()
        .len();
    // Asking twice changes nothing more.
    let again = db.request_cancel(r.id, &Visibility::All).await.unwrap();
    assert!(matches!(again, CancelOutcome::Requested(_)));
    let events_after = db
        .events_after(r.id, &Visibility::All, 0, 100)
        .await
        .unwrap();
    assert_eq!(events_after.len(), events_before);
    assert!(events_after.iter().any(|e| e.kind == "cancel_requested"));
    assert!(db.renew_lease(&mut lease, LEASE).await.unwrap());
    let p = Progress {
        epoch: 2,
        total_epochs: 5,
        metrics: json!({}),
    };
    assert!(db.set_progress(&lease, &p).await.unwrap());
    let done = db
        .transition(
            &lease,
            JobState::Training,
            JobState::Cancelled,
            reason_for(JobState::Cancelled),
        )
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Cancelled);

    // Finished: left alone.
    let out = db.request_cancel(r.id, &Visibility::All).await.unwrap();
    assert!(matches!(out, CancelOutcome::AlreadyFinished(_)));

    // Running, flagged, and the worker dies: the sweep cancels, not requeues.
    let (z, _lease) = drive_to(db, JobState::Validating).await;
    db.request_cancel(z.id, &Visibility::Owner(alice()))
        .await
        .unwrap();
    db.clock().advance(LEASE * 2);
    let report = db.requeue_expired(3).await.unwrap();
    assert_eq!(report.cancelled, vec![z.id]);
    assert!(report.requeued.is_empty());
    let after = stored(db, z.id).await;
    assert_eq!(after.state, JobState::Cancelled);
    assert_eq!(after.reason.unwrap().code, Reason::CANCELLED);
}

async fn events_order_and_events_after(db: &Database) {
    let job = db.create_job(new_job(&alice())).await.unwrap();
    for i in 0..5 {
        let e = db
            .append_event(job.id, "log", &json!({"line": format!("epoch {i}")}))
            .await
            .unwrap();
        assert_eq!(e.seq, i + 2, "seq 1 is the submission");
    }
    let vis = Visibility::Owner(alice());
    let all = db.events_after(job.id, &vis, 0, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<u64>>()
    );
    assert_eq!(all[1].data["line"], "epoch 0");
    assert_eq!(all[5].data["line"], "epoch 4");
    assert!(all.iter().all(|e| e.job_id == job.id));
    let tail = db.events_after(job.id, &vis, 4, 100).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6]);
    let limited = db.events_after(job.id, &vis, 1, 2).await.unwrap();
    assert_eq!(limited.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(
        db.events_after(job.id, &vis, 6, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Another job's log is separate.
    let other = db.create_job(new_job(&alice())).await.unwrap();
    assert_eq!(
        db.events_after(other.id, &vis, 0, 100).await.unwrap().len(),
        1
    );
    let err = db
        .append_event(JobId::new(), "log", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.not_found");
}

async fn concurrent_event_appends_have_no_gaps(db: &Database) {
    let job = db.create_job(new_job(&alice())).await.unwrap();
    let mut handles = Vec::new();
    for t in 0..4 {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..25 {
                db.append_event(job.id, "log", &json!({"t": t, "i": i}))
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let events = db
        .events_after(job.id, &Visibility::All, 0, 1000)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=101).collect::<Vec<u64>>()
    );
    // Each writer's own events keep their order.
    for t in 0..4 {
        let mine: Vec<_> = events
            .iter()
            .filter(|e| e.data["t"] == t)
            .map(|e| e.data["i"].as_i64().unwrap())
            .collect();
        assert_eq!(mine, (0..25).collect::<Vec<i64>>());
    }
}

async fn progress_and_counts(db: &Database) {
    let empty = db.counts_by_state().await.unwrap();
    assert_eq!(empty.len(), 7);
    assert!(empty.values().all(|n| *n == 0));
    assert_eq!(db.queue_depth().await.unwrap(), 0);

    let (t, lease) = drive_to(db, JobState::Training).await;
    let p = Progress {
        epoch: 3,
        total_epochs: 10,
        metrics: json!({"loss": 0.25, "accuracy": 0.875}),
    };
    assert!(!db.set_progress(&lease, &p).await.unwrap());
    let got = stored(db, t.id).await;
    assert_eq!(got.progress, Some(p.clone()));
    let last = db
        .events_after(t.id, &Visibility::All, 0, 100)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.kind, "progress");
    assert_eq!(last.data["epoch"], 3);

    drive_to(db, JobState::Succeeded).await;
    drive_to(db, JobState::Failed).await;
    drive_to(db, JobState::Failed).await;
    for _ in 0..4 {
        db.create_job(new_job(&bob())).await.unwrap();
    }
    let counts = db.counts_by_state().await.unwrap();
    assert_eq!(counts[&JobState::Queued], 4);
    assert_eq!(counts[&JobState::Training], 1);
    assert_eq!(counts[&JobState::Succeeded], 1);
    assert_eq!(counts[&JobState::Failed], 2);
    assert_eq!(counts[&JobState::Cancelled], 0);
    assert_eq!(counts.values().sum::<u64>(), 8);
    assert_eq!(db.queue_depth().await.unwrap(), 4);
}

// ---------------------------------------------------------------- backend-independent

#[tokio::test]
async fn unknown_url_scheme_is_refused_without_echoing_the_url() {
    let err = Database::connect("mysql://root:hunter2@db/x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "db.bad_url");
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test]
async fn sqlite_file_survives_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display());
    let db = Database::connect(&url).await.unwrap();
    let job = db.create_job(new_job(&alice())).await.unwrap();
    db.close().await;
    // Migrations are recorded: a second start neither fails nor wipes data.
    let db = Database::connect(&url).await.unwrap();
    assert_eq!(db.get_job(job.id, &Visibility::All).await.unwrap(), job);
    db.close().await;
    assert!(dir.path().join("jobs.db").exists());
}
