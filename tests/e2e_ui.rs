//! Slow tier: the web UI in a real browser. Starts the embedded default
//! (`veritrain serve --data-dir`: SQLite, local disk, dev sign-in, an
//! embedded worker with the real runtime and sandbox) and runs
//! `tests/ui/run.mjs`, which drives Debian's `chromium` with
//! `playwright-core`: dev sign-in, submit the quickstart example, watch it
//! train to the end with curves drawn, read the model card, check
//! integrity, download the bundle, verify it on the Verify page, and see a
//! tampered copy fail naming `outputs/model.keras`.
//!
//! Screenshots go to a temporary directory, or to
//! `$VERITRAIN_UI_SCREENSHOTS` (`docs/screenshots` to refresh the committed
//! ones). Needs node, chromium and `npm ci` in tests/ui (`scripts/setup-deps`
//! installs them), root, bwrap and the runtime; skips without them locally
//! and fails under `CI=true`.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic)]

mod util;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use util::{repo_root, run, veritrain};

fn runtime_dir() -> PathBuf {
    std::env::var_os("VERITRAIN_RUNTIME_DIR")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join(".venv/runtime"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn available() -> bool {
    let missing = if !runtime_dir().join("venv/bin/python").exists() {
        Some("the trainer runtime is not installed (.venv/runtime)")
    } else if !Path::new("/usr/bin/bwrap").exists() {
        Some("bubblewrap is not installed")
    } else if Command::new("node").arg("--version").output().is_err() {
        Some("node is not installed")
    } else if !chromium().exists() {
        Some("chromium is not installed (Debian package `chromium`)")
    } else if !repo_root()
        .join("tests/ui/node_modules/playwright-core")
        .exists()
    {
        Some("playwright-core is not installed (npm ci in tests/ui)")
    } else {
        None
    };
    match missing {
        Some(what) => {
            util::require_or_skip(what);
            false
        }
        None => true,
    }
}

/// `veritrain serve`, killed on drop; its stderr is shown when the test fails.
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(data: &Path) -> (Server, String) {
        let mut child = veritrain()
            .args(["serve", "--data-dir"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .env("VERITRAIN_RUNTIME_DIR", runtime_dir())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on http://") {
                    let _ = tx.send(line.clone());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let server = Server { child, log };
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("server never ready:\n{}", server.log.lock().unwrap()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_owned();
        (server, url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- service log ----\n{}", self.log.lock().unwrap());
        }
    }
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn the_web_ui_submits_follows_and_verifies_a_job_in_chromium() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = Server::start(&dir.path().join("data"));
    let shots = std::env::var_os("VERITRAIN_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("screenshots"));
    let out = run(Command::new("node")
        .arg(repo_root().join("tests/ui/run.mjs"))
        .arg(&url)
        .arg(&shots)
        .env("CHROMIUM", chromium()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ui: all steps passed"),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    for page in [
        "signin",
        "jobs",
        "submit",
        "job",
        "verify",
        "verify-tampered",
        "trust",
        "phone-jobs",
        "phone-job",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
}
