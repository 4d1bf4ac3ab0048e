//! `veritrain bench service --quick` against the embedded default (SQLite,
//! local disk): the bench starts its own server, uploads a 4 MiB dataset,
//! submits and reads jobs, and prints a JSON line with every measurement.
//! A few seconds; the real run (2 GiB, both backends) is in docs/benchmarks.md.

mod util;

use util::{run, veritrain};

#[test]
fn quick_run_on_the_embedded_default_reports_every_case() {
    let scratch = tempfile::tempdir().unwrap();
    let out = run(veritrain()
        .args(["bench", "service", "--quick", "--dir"])
        .arg(scratch.path())
        .env_remove("VERITRAIN_DATABASE_URL"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"backend\""))
        .expect("a JSON line");
    let report: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["store"], "local");
    assert_eq!(report["upload"]["met"], true);
    assert!(report["upload"]["bytes"].as_u64().unwrap() >= 4 << 20);
    // The server's RSS was sampled, not read as zero.
    assert!(report["upload"]["rss_peak_bytes"].as_u64().unwrap() > 1 << 20);
    let cases = report["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "POST /v1/jobs (quickstart)",
            "GET /v1/jobs/{id}",
            "GET /v1/jobs?limit=20"
        ]
    );
    assert_eq!(cases[0]["n"], 10);
    assert_eq!(cases[1]["n"], 100);
    assert_eq!(cases[2]["n"], 100);
}

#[test]
fn unknown_backend_is_refused() {
    let out = run(veritrain().args(["bench", "service", "--backend", "mysql"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mysql"));
}
