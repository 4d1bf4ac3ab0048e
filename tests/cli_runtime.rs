//! `veritrain runtime check` and `install`, driven like a user would.
//!
//! The fast tier checks a small fake runtime (a runtime-shaped tree with a
//! recorded identity) so tampering can be tested without touching the real
//! 1.6 GB venv; the slow tier runs `install` and `check` on the real one.

mod util;

use std::fs;
use std::path::Path;

use serde_json::Value;
use util::{repo_root, run, veritrain};
use veritrain_runtime::identity::{SITE_PACKAGES, VENV_DIR, write_fake_runtime};
use veritrain_runtime::lock::Lock;

fn fake_runtime() -> (tempfile::TempDir, tempfile::NamedTempFile) {
    let d = tempfile::tempdir().unwrap();
    let interp = tempfile::NamedTempFile::new().unwrap();
    fs::write(interp.path(), b"#!/fake/python3.11\n").unwrap();
    write_fake_runtime(d.path(), interp.path(), &Lock::embedded().unwrap()).unwrap();
    (d, interp)
}

fn check_json(dir: &Path) -> (i32, Value, String) {
    let out = run(veritrain()
        .args(["runtime", "check", "--json", "--dir"])
        .arg(dir));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_reports_an_intact_runtime_with_its_inventory() {
    let (d, _i) = fake_runtime();
    let (code, v, _) = check_json(d.path());
    assert_eq!(code, 0);
    assert_eq!(v["status"], "intact");
    let id = &v["identity"];
    assert_eq!(id["distributions"].as_array().unwrap().len(), 33);
    let keras = id["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "keras")
        .unwrap();
    assert_eq!(keras["purl"], "pkg:pypi/keras@3.15.1");
    assert_eq!(
        keras["sha256"],
        "836460e480930acbd19bb7a17e62f9ecad40e8a9af9a651fc8d0586a96d27e20"
    );
    assert_eq!(id["tree"]["root_digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        v["trainer_sha256"],
        veritrain_runtime::trainer::sha256_hex()
    );
    assert!(
        id.get("manifest").is_none(),
        "the per-file manifest stays in the identity file"
    );

    let out = run(veritrain()
        .args(["runtime", "check", "--dir"])
        .arg(d.path()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains(": intact") && text.contains("pkg:pypi/tensorflow-cpu@2.21.0"),
        "{text}"
    );
}

#[test]
fn check_refuses_a_tampered_runtime_naming_the_file() {
    let (d, _i) = fake_runtime();
    let site = d.path().join(VENV_DIR).join(SITE_PACKAGES);
    // Same size, different content.
    fs::write(site.join("fakepkg/__init__.py"), b"VALUE = 2\n").unwrap();
    let (code, v, stderr) = check_json(d.path());
    assert_eq!(code, 1);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["code"], "runtime.tampered");
    assert_eq!(
        v["error"]["path"],
        "lib/python3.11/site-packages/fakepkg/__init__.py"
    );
    assert_eq!(v["error"]["change"], "modified");
    assert!(
        stderr.contains("runtime.tampered") && stderr.contains("fakepkg/__init__.py"),
        "{stderr}"
    );

    // A .pth file (Python runs it at start-up) added next to it.
    fs::write(site.join("fakepkg/__init__.py"), b"VALUE = 1\n").unwrap();
    assert_eq!(
        check_json(d.path()).0,
        0,
        "restoring the bytes restores the check"
    );
    fs::write(site.join("zz-evil.pth"), b"import os; os.system('id')\n").unwrap();
    let (code, v, _) = check_json(d.path());
    assert_eq!(code, 1);
    assert_eq!(
        v["error"]["path"],
        "lib/python3.11/site-packages/zz-evil.pth"
    );
    assert_eq!(v["error"]["change"], "added");
}

#[test]
fn check_without_a_runtime_says_how_to_install_one() {
    let d = tempfile::tempdir().unwrap();
    let (code, v, stderr) = check_json(d.path());
    assert_eq!(code, 1);
    assert_eq!(v["error"]["code"], "runtime.not_installed");
    assert!(stderr.contains("veritrain runtime install"), "{stderr}");
}

/// The shared runtime directory of the slow tier.
fn real_runtime_dir() -> std::path::PathBuf {
    std::env::var_os("VERITRAIN_RUNTIME_DIR")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join(".venv/runtime"))
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn install_is_idempotent_and_check_passes_on_the_real_runtime() {
    let dir = real_runtime_dir();
    // First call installs if needed (downloads ~335 MB once); the second
    // must find it intact and only run the check.
    let first = run(veritrain().args(["runtime", "install", "--dir"]).arg(&dir));
    if !first.status.success() {
        util::require_or_skip(&format!(
            "runtime install failed: {}",
            String::from_utf8_lossy(&first.stderr)
        ));
        return;
    }
    let second = run(veritrain().args(["runtime", "install", "--dir"]).arg(&dir));
    assert!(second.status.success());
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("runtime intact at"), "{out}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("[1/7]") && !err.contains("[3/7]"),
        "an intact runtime is not rebuilt: {err}"
    );

    let (code, v, _) = check_json(&dir);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["identity"]["interpreter"]["path"], "/usr/bin/python3.11");
    let files = v["check"]["files"].as_u64().unwrap();
    assert!(files > 10_000, "the whole venv is checked: {files} files");
    let names: Vec<&str> = v["identity"]["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"tensorflow-cpu") && names.contains(&"keras") && names.contains(&"pillow")
    );
    // No installer inside the runtime: the venv was made --without-pip.
    assert!(!names.contains(&"pip"));
}
