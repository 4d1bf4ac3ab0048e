//! The audit log on both backends: entries chain, concurrent appends keep
//! one unbroken chain, and an edited or deleted entry is found by
//! `verify_audit` (the tests drop the append-only triggers first, as an
//! attacker with database access would). Postgres needs
//! `VERITRAIN_TEST_DATABASE_URL` (required under `CI=true`).

// Test code: a panic is a failure report.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::json;
use veritrain_db::{Database, JobId};

async fn fill(db: &Database, n: usize) {
    for i in 0..n {
        db.audit(
            "job.submitted",
            Some("tenant/alice"),
            Some(JobId::new()),
            &json!({"n": i, "ip": "127.0.0.1"}),
        )
        .await
        .unwrap();
    }
}

async fn check_chain(db: &Database) {
    fill(db, 5).await;
    let entries = db.audit_after(0, 100).await.unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[0].prev_hash, veritrain_db::audit::GENESIS);
    for w in entries.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    let check = db.verify_audit().await.unwrap();
    assert!(check.intact(), "{check:?}");
    assert_eq!(check.entries, 5);
    assert_eq!(check.head.as_deref(), Some(entries[4].hash.as_str()));
    // Concurrent appends still make one chain.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move { fill(&db, 5).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let check = db.verify_audit().await.unwrap();
    assert!(check.intact(), "{check:?}");
    assert_eq!(check.entries, 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_audit_chain_holds_and_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let db = Database::connect(&url).await.unwrap();
    check_chain(&db).await;
    // The append-only triggers refuse a change ...
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    assert!(
        sqlx::query("UPDATE audit_log SET kind = 'x' WHERE seq = 3")
            .execute(&raw)
            .await
            .is_err()
    );
    // ... so an attacker drops them; the chain still gives the edit away.
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_log_no_delete")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET detail = '{\"n\":99}' WHERE seq = 3")
        .execute(&raw)
        .await
        .unwrap();
    let check = db.verify_audit().await.unwrap();
    assert_eq!(check.broken.as_ref().unwrap().0, 3, "{check:?}");
    assert!(check.broken.unwrap().1.contains("edited"));
    // A deleted entry: the gap is found.
    let dir2 = tempfile::tempdir().unwrap();
    let url2 = format!("sqlite://{}?mode=rwc", dir2.path().join("b.db").display());
    let db2 = Database::connect(&url2).await.unwrap();
    fill(&db2, 6).await;
    let raw2 = sqlx::SqlitePool::connect(&url2).await.unwrap();
    sqlx::query("DROP TRIGGER audit_log_no_delete")
        .execute(&raw2)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = 4")
        .execute(&raw2)
        .await
        .unwrap();
    let check = db2.verify_audit().await.unwrap();
    assert_eq!(check.broken.as_ref().unwrap().0, 4, "{check:?}");
    assert!(check.broken.unwrap().1.contains("missing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_audit_chain_holds_and_tampering_is_found() {
    let Ok(base) = std::env::var("VERITRAIN_TEST_DATABASE_URL") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "VERITRAIN_TEST_DATABASE_URL is not set and CI=true requires the Postgres audit test"
            );
        }
        eprintln!("SKIPPED: Postgres audit test (eval \"$(scripts/start-postgres)\")");
        return;
    };
    let schema = format!("a_{}", JobId::new().as_uuid().simple());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let db = Database::connect(&url).await.unwrap();
    check_chain(&db).await;
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    assert!(
        sqlx::query("UPDATE audit_log SET kind = 'x' WHERE seq = 3")
            .execute(&raw)
            .await
            .is_err()
    );
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'tenant/mallory' WHERE seq = 7")
        .execute(&raw)
        .await
        .unwrap();
    let check = db.verify_audit().await.unwrap();
    assert_eq!(check.broken.as_ref().unwrap().0, 7, "{check:?}");
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&raw)
        .await
        .unwrap();
    let check = db.verify_audit().await.unwrap();
    assert_eq!(check.broken.as_ref().unwrap().0, 2, "{check:?}");
}
