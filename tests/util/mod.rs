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
