//! Shared helpers for integration tests: run the real `veritrain` binary,
//! find the reference tools (Python in-toto, securesystemslib) for the
//! interop tier, and refuse to skip silently under CI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `Command` for the `veritrain` binary built for this test run.
pub fn veritrain() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veritrain"))
}

/// Run a command and return its output, with stdout/stderr in the panic
/// message if it could not start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// The interop Python interpreter: `$VERITRAIN_INTEROP_PYTHON`, else
/// `.venv/interop/bin/python` under the repository root (what `scripts/test`
/// creates). When it is missing the test is skipped with a message, except
/// under `CI=true`, where a missing reference tool is a failure: a skipped
/// interop check must never count as a pass.
pub fn interop_python() -> Option<PathBuf> {
    let path = std::env::var_os("VERITRAIN_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/interop/bin/python"));
    if path.exists() {
        return Some(path);
    }
    require_or_skip(&format!(
        "interop Python venv not found at {}",
        path.display()
    ));
    None
}

/// Skip with a message, or panic under `CI=true`.
pub fn require_or_skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{what}; under CI=true a missing component is a failure (run scripts/test to set it up)"
        );
    }
    eprintln!("SKIPPED: {what}; run scripts/test to set it up");
}

/// The directory that holds the interop venv's console scripts
/// (`in-toto-verify`, `in-toto-run`).
pub fn interop_bin(python: &Path) -> PathBuf {
    python.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Run an interop Python script from `tests/interop/` with arguments.
pub fn python_script(python: &Path, script: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/interop").join(script));
    cmd
}

/// The trainer runtime the slow tier uses: `$VERITRAIN_RUNTIME_DIR`, else
/// `.venv/runtime` (what `scripts/test` installs).
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("VERITRAIN_RUNTIME_DIR")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join(".venv/runtime"))
}

/// A long-running process (`veritrain serve`, `veritrain worker`) whose
/// stderr is drained into a buffer, so the pipe never fills, and shown when
/// a test fails; killed on drop.
pub struct Process {
    pub child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Process {
    /// Starts `cmd` and waits (up to 2 minutes) for a stderr line containing
    /// `ready`, which it returns.
    pub fn start(mut cmd: Command, ready: &str) -> (Process, String) {
        use std::io::BufRead as _;
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let wanted = ready.to_owned();
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            let mut sent = false;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && line.contains(&wanted) {
                    let _ = tx.send(line.clone());
                    sent = true;
                }
                let mut l = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                l.push_str(&line);
                l.push('\n');
            }
        });
        let p = Process { child, log };
        match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(line) => (p, line),
            Err(_) => panic!("never ready ({ready:?}); its log:\n{}", p.log()),
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- process log ----\n{}", self.log());
        }
    }
}

/// The `http://…` address in a `listening on` line.
pub fn url_in(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches([',', ')'])
        .to_owned()
}
