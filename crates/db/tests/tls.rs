//! PostgreSQL over TLS: with `sslmode=verify-full` the connection is
//! encrypted and the server's certificate must chain to the CA named by
//! `sslrootcert`; a CA that did not sign it is refused. Runs against the
//! cluster of `scripts/start-postgres` (TLS on, its CA exported as
//! `VERITRAIN_TEST_DATABASE_CA`); skips without it, fails under `CI=true`.

// Test code: a panic is a failure report.
#![allow(clippy::unwrap_used, clippy::panic)]

use veritrain_db::Database;

fn target() -> Option<(String, String)> {
    match (
        std::env::var("VERITRAIN_TEST_DATABASE_URL"),
        std::env::var("VERITRAIN_TEST_DATABASE_CA"),
    ) {
        (Ok(url), Ok(ca)) => Some((url, ca)),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "VERITRAIN_TEST_DATABASE_URL and _CA are not set, and CI=true requires the TLS test: \
             eval \"$(scripts/start-postgres)\" first"
        ),
        _ => {
            eprintln!("SKIPPED: Postgres TLS test (eval \"$(scripts/start-postgres)\")");
            None
        }
    }
}

fn with(base: &str, params: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{params}")
}

#[tokio::test]
async fn verify_full_encrypts_and_checks_the_server_certificate() {
    let Some((base, ca)) = target() else { return };
    let url = with(&base, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let db = Database::connect(&url).await.unwrap();
    db.queue_depth().await.unwrap();
    db.close().await;
    // The session really is TLS.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ssl, "the connection is not encrypted");
    pool.close().await;

    // A CA that did not sign the server's certificate: refused.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.crt");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=not the test CA",
            "-keyout",
        ])
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let bad = with(
        &base,
        &format!("sslmode=verify-full&sslrootcert={}", other.display()),
    );
    let err = Database::connect(&bad).await.unwrap_err();
    assert_eq!(err.code(), "db.backend", "{err}");
}
