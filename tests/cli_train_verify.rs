//! Fast tier: `veritrain train` refusals that need no trainer runtime, and
//! `veritrain verify` as a user sees it on a real bundle made in-process
//! (`veritrain_pipeline::testing`: the real job with a fake trainer):
//! pinning by flag or environment, the unpinned failure, not-run checks,
//! archives. The end-to-end jobs are in `e2e_bundle.rs` (slow tier).

mod util;

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use serde_json::Value;
use util::{run, veritrain};
use veritrain_pipeline::testing::{TestKeys, build_bundle};

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

/// A bundle made in-process by the real job with a fake trainer
/// (`veritrain_pipeline::testing`), and the root key file to pin.
fn made_bundle(dir: &Path) -> (PathBuf, PathBuf) {
    let keys = TestKeys::generate(Utc::now() - Duration::days(1)).unwrap();
    let job_keys = keys.job_keys(Utc::now(), 30).unwrap();
    let bundle = dir.join("bundle");
    build_bundle(&bundle, &job_keys).unwrap();
    let root = dir.join("ROOT.pub");
    fs::write(&root, keys.root_pem().unwrap()).unwrap();
    (bundle, root)
}

/// `veritrain verify` with no pin from the environment.
fn verify_cmd(bundle: &Path) -> std::process::Command {
    let mut cmd = veritrain();
    cmd.env_remove(ROOT_KEY_ENV).arg("verify").arg(bundle);
    cmd
}

const ROOT_KEY_ENV: &str = "VERITRAIN_ROOT_KEY";

#[test]
fn verify_passes_a_real_bundle_pinned_by_flag_or_environment_directory_or_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, root) = made_bundle(tmp.path());
    let zip = tmp.path().join("bundle.zip");
    veritrain_pipeline::archive::pack(&bundle, &zip).unwrap();
    for target in [&bundle, &zip] {
        let out = run(verify_cmd(target).arg("--root-key").arg(&root));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("PASSED: all 8 checks passed against the pinned root key"),
            "{stdout}"
        );
        assert!(stdout.contains("✓ keyset"), "{stdout}");
        assert!(!stdout.contains('✗') && !stdout.contains('–'), "{stdout}");
    }
    // VERITRAIN_ROOT_KEY pins when --root-key is not given.
    let out = run(verify_cmd(&bundle).env(ROOT_KEY_ENV, &root).arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["root_pinned"], true);
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "passed" && c["ok"] == true),
        "{report:#}"
    );
}

#[test]
fn verify_without_a_pinned_root_fails_naming_trust_root_pub_and_says_how_to_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _) = made_bundle(tmp.path());
    let out = run(&mut verify_cmd(&bundle));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("✗ keyset"), "{stdout}");
    assert!(
        stdout.contains("✗ trust/root.pub: [verify.root_not_pinned]"),
        "{stdout}"
    );
    assert!(stdout.contains("--root-key ROOT.pub"), "{stdout}");
    // Everything else ran, against the bundle's own root.
    assert!(
        stdout.contains("FAILED: 1 check failed, 7 passed"),
        "{stdout}"
    );

    let out = run(verify_cmd(&bundle).arg("--json"));
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["root_pinned"], false);
    let failure = &report["checks"][0]["failures"][0];
    assert_eq!(failure["file"], "trust/root.pub");
    assert_eq!(failure["code"], "verify.root_not_pinned");
}

#[test]
fn checks_that_could_not_run_are_shown_as_not_run_and_not_counted_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, root) = made_bundle(tmp.path());
    fs::remove_file(bundle.join("trust/keyset.dsse.json")).unwrap();
    let out = run(verify_cmd(&bundle).arg("--root-key").arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("✗ keyset"), "{stdout}");
    assert!(
        stdout.contains("✗ trust/keyset.dsse.json: missing from the bundle"),
        "{stdout}"
    );
    for id in [
        "layout",
        "links",
        "files",
        "provenance",
        "aibom",
        "manifest",
        "consistency",
    ] {
        assert!(stdout.contains(&format!("– {id}")), "{id}: {stdout}");
    }
    assert!(
        stdout.contains("– not run (needs a key set verified with the root key)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILED: 1 check failed, 7 not run"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches('✗').count(),
        2,
        "one check, one failure: {stdout}"
    );

    let out = run(verify_cmd(&bundle)
        .arg("--root-key")
        .arg(&root)
        .arg("--json"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "failed", "not_run", "not_run", "not_run", "not_run", "not_run", "not_run", "not_run"
        ]
    );
    assert_eq!(report["checks"][1]["ok"], false);
    assert_eq!(
        report["checks"][1]["needs"],
        "a key set verified with the root key"
    );
}

#[test]
fn verify_of_an_empty_directory_fails_on_the_missing_root_key_and_runs_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(verify_cmd(tmp.path()).arg("--json"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8);
    assert_eq!(checks[0]["status"], "failed");
    assert_eq!(checks[0]["failures"][0]["file"], "trust/root.pub");
    assert!(
        checks[1..]
            .iter()
            .all(|c| c["status"] == "not_run" && c["ok"] == false),
        "{report:#}"
    );
    // The text report marks each check.
    let out = run(&mut verify_cmd(tmp.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("✗ keyset"), "{stdout}");
    assert!(
        stdout.contains("FAILED: 1 check failed, 7 not run"),
        "{stdout}"
    );
}

#[test]
fn verify_of_a_missing_bundle_is_a_usage_error() {
    let out = run(veritrain().args(["verify", "/nonexistent/bundle"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn verify_fails_a_hostile_bundle_archive_with_a_line_naming_it_and_the_zip_code() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("evil.zip");
    let made = run(std::process::Command::new("python3").arg("-c").arg(format!(
        "import zipfile; z = zipfile.ZipFile({:?}, 'w'); z.writestr('../../etc/evil', 'x'); z.close()",
        zip.to_str().unwrap()
    )));
    assert!(made.status.success(), "{}", text(&made));
    let out = run(&mut verify_cmd(&zip));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("✗ {}: [zip.", zip.display())),
        "{stdout}"
    );
    assert!(stdout.contains("not a readable bundle archive"), "{stdout}");
    assert!(stdout.contains("FAILED: 1 check failed"), "{stdout}");
    assert!(!tmp.path().join("etc").exists());

    let out = run(verify_cmd(&zip).arg("--json"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["checks"][0]["id"], "archive");
    assert_eq!(
        report["checks"][0]["failures"][0]["file"],
        zip.to_str().unwrap()
    );
    assert!(
        report["checks"][0]["failures"][0]["code"]
            .as_str()
            .unwrap()
            .starts_with("zip."),
        "{report:#}"
    );
}
