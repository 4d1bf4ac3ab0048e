//! Fast tier: `veritrain train` and `verify` refusals that need no trainer
//! runtime (the end-to-end jobs are in `e2e_bundle.rs`, slow tier).

mod util;

use std::fs;

use serde_json::Value;
use util::{run, veritrain};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `veritrain train` with placeholder inputs: the key directory is checked
/// before any of them is read.
fn train_with_keys(keys: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    run(veritrain()
        .args([
            "train",
            "--model",
            "m.keras",
            "--data",
            "d.csv",
            "--definition",
            "d.yaml",
        ])
        .arg("--keys")
        .arg(keys)
        .arg("--out")
        .arg(out)
        .arg("--json"))
}

#[test]
fn train_refuses_a_key_directory_without_a_layout_before_anything_else() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let out = run(veritrain().args(["keys", "init", "--dir"]).arg(&keys));
    assert!(out.status.success(), "{}", text(&out));
    fs::remove_file(keys.join("root.layout")).unwrap();
    let out = train_with_keys(&keys, &tmp.path().join("bundle"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "keys.no_layout");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("veritrain keys layout"),
        "{body}"
    );
    assert!(!tmp.path().join("bundle").exists());
}

#[test]
fn train_refuses_a_missing_key_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = train_with_keys(&tmp.path().join("nope"), &tmp.path().join("bundle"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "job.io", "{body}");
}

#[test]
fn verify_of_an_empty_directory_fails_every_check_and_names_the_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(veritrain().arg("verify").arg(tmp.path()).arg("--json"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8);
    assert!(checks.iter().all(|c| c["ok"] == false), "{report:#}");
    assert_eq!(checks[0]["failures"][0]["file"], "trust/root.pub");
    // The text report marks each check.
    let out = run(veritrain().arg("verify").arg(tmp.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("✗ keyset"), "{stdout}");
    assert!(stdout.contains("FAILED: 8 of 8 checks failed"), "{stdout}");
}

#[test]
fn verify_of_a_missing_bundle_is_a_usage_error() {
    let out = run(veritrain().args(["verify", "/nonexistent/bundle"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn verify_refuses_a_hostile_bundle_archive_with_the_zip_code() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("evil.zip");
    let made = run(std::process::Command::new("python3").arg("-c").arg(format!(
        "import zipfile; z = zipfile.ZipFile({:?}, 'w'); z.writestr('../../etc/evil', 'x'); z.close()",
        zip.to_str().unwrap()
    )));
    assert!(made.status.success(), "{}", text(&made));
    let out = run(veritrain().arg("verify").arg(&zip));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("zip."), "{}", text(&out));
    assert!(!tmp.path().join("etc").exists());
}
