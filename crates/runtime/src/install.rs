//! `veritrain runtime install`: build the runtime venv from the lock.
//!
//! The venv is made from Debian's `/usr/bin/python3.11` with `-m venv
//! --without-pip`, so the runtime holds exactly the locked distributions
//! and no installer. pip is Debian's own wheel (`python3-pip-whl`, in
//! `/usr/share/python-wheels`), run from the wheel file for the install
//! only. Both pip steps use `--require-hashes --no-deps
//! --only-binary=:all:`: every file is checked against the lock, nothing
//! outside the lock is resolved, and no sdist's build script ever runs.
//!
//! The command is idempotent. With an intact runtime it only runs the
//! tamper check and returns; a missing, partial, tampered or outdated
//! runtime is rebuilt. Wheels are kept in `DIR/wheels` (checked by hash on
//! every use), so a rebuild does not download again. The identity file is
//! written last, so an interrupted install is never taken for a good one.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::identity::{IDENTITY_FILE, RuntimeIdentity, SITE_PACKAGES, VENV_DIR, VerifiedRuntime};
use crate::lock::{LOCK_FILE, Lock};

/// Debian's interpreter; never a pyenv build under a home directory, so
/// read-only binds of `/usr` plus the venv are all the sandbox needs.
pub const DEFAULT_PYTHON: &str = "/usr/bin/python3.11";
/// Where Debian's `python3-pip-whl` puts pip's wheel.
pub const PIP_WHEEL_DIR: &str = "/usr/share/python-wheels";
/// The lock's file name inside the runtime directory.
pub const LOCK_COPY: &str = "requirements.lock";
/// The wheel cache inside the runtime directory.
pub const WHEELS_DIR: &str = "wheels";

const STEPS: usize = 7;

/// The default runtime directory: `$VERITRAIN_RUNTIME_DIR`, else
/// `$VERITRAIN_HOME/runtime`, else `.venv/runtime` under the current
/// directory (the repository root when run from a checkout, which is where
/// the tests look).
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VERITRAIN_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(h) = std::env::var_os("VERITRAIN_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join("runtime");
    }
    PathBuf::from(".venv/runtime")
}

/// What to install where.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The runtime directory.
    pub dir: PathBuf,
    /// The interpreter ([`DEFAULT_PYTHON`]).
    pub python: PathBuf,
    /// Where pip's wheel is ([`PIP_WHEEL_DIR`]).
    pub pip_wheels: PathBuf,
}

impl InstallOptions {
    /// Defaults for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        InstallOptions {
            dir: dir.into(),
            python: PathBuf::from(DEFAULT_PYTHON),
            pip_wheels: PathBuf::from(PIP_WHEEL_DIR),
        }
    }
}

/// Progress reports, in order.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A step starts (`index` of `total`).
    Step {
        /// 1-based.
        index: usize,
        /// Number of steps of a full install.
        total: usize,
        /// What it does.
        what: &'a str,
    },
    /// A line printed by pip or Python.
    Output(&'a str),
    /// A remark (why a reinstall happens, what was found).
    Note(&'a str),
}

/// What `install` did.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The identity now on disk.
    pub identity: RuntimeIdentity,
    /// True when the runtime was already installed and intact.
    pub reused: bool,
    /// Why it was (re)built, when it was.
    pub reason: Option<String>,
    /// Wall time of the whole command.
    pub elapsed: Duration,
}

/// Install (or confirm) the runtime in `opts.dir`. Concurrent calls on the
/// same directory wait for each other (a lock file), so parallel tests can
/// all ask for the runtime.
///
/// # Errors
/// [`Error::PythonMissing`], [`Error::PipMissing`], [`Error::InstallFailed`]
/// (with pip's last lines), [`Error::InventoryMismatch`], [`Error::Io`].
pub fn install(
    opts: &InstallOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<InstallReport> {
    let start = Instant::now();
    let lock = Lock::embedded()?;
    fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
    let dir = std::path::absolute(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
    let lock_path = dir.join(".install.lock");
    let guard = fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    guard.lock().map_err(|e| Error::io(&lock_path, e))?;

    progress(Progress::Step {
        index: 1,
        total: STEPS,
        what: "checking the installed runtime (every file's SHA-256)",
    });
    let reason = match VerifiedRuntime::verify_with_lock(&dir, &lock) {
        Ok(v) => {
            let r = v.check_report();
            progress(Progress::Note(&format!(
                "runtime at {} is installed and intact: {} files, {:.2} GB, root {} (checked in {:.2}s on {} threads)",
                dir.display(),
                r.stats.files,
                r.stats.bytes as f64 / 1e9,
                v.identity().tree.root_digest,
                r.elapsed.as_secs_f64(),
                r.threads,
            )));
            return Ok(InstallReport {
                identity: v.identity().clone(),
                reused: true,
                reason: None,
                elapsed: start.elapsed(),
            });
        }
        Err(Error::NotInstalled { .. }) => "not installed yet".to_owned(),
        Err(e) => format!("[{}] {e}", e.code()),
    };
    progress(Progress::Note(&format!("installing: {reason}")));

    progress(Progress::Step {
        index: 2,
        total: STEPS,
        what: "checking Debian's python3.11 and pip wheel",
    });
    let version = python_version(&opts.python)?;
    let pip = pip_wheel(&opts.pip_wheels)?;
    progress(Progress::Note(&format!(
        "python {} {version}; pip {}",
        opts.python.display(),
        pip.display()
    )));

    progress(Progress::Step {
        index: 3,
        total: STEPS,
        what: "creating the venv (--without-pip)",
    });
    let venv = dir.join(VENV_DIR);
    // The identity goes first, so a half-removed runtime is never trusted.
    remove_if_exists(&dir.join(IDENTITY_FILE))?;
    if fs::symlink_metadata(&venv).is_ok() {
        if !venv.join("pyvenv.cfg").is_file() {
            return Err(Error::InstallFailed {
                step: "removing the old venv",
                status: "refused".into(),
                detail: format!("{} exists but is not a venv; move it away", venv.display()),
            });
        }
        fs::remove_dir_all(&venv).map_err(|e| Error::io(&venv, e))?;
    }
    let lock_copy = dir.join(LOCK_COPY);
    fs::write(&lock_copy, LOCK_FILE).map_err(|e| Error::io(&lock_copy, e))?;
    let mut venv_cmd = Command::new(&opts.python);
    venv_cmd
        .args(["-I", "-m", "venv", "--without-pip"])
        .arg(&venv);
    run_step("python -m venv", venv_cmd, progress)?;

    let py = venv.join("bin/python");
    let wheels = dir.join(WHEELS_DIR);
    progress(Progress::Step {
        index: 4,
        total: STEPS,
        what: "downloading the locked wheels (about 335 MB; cached wheels are re-checked, not re-fetched)",
    });
    let mut dl = pip_command(&py, &pip);
    dl.arg("download")
        .args(PIP_STRICT)
        .arg("--dest")
        .arg(&wheels)
        .arg("--requirement")
        .arg(&lock_copy);
    run_step("pip download", dl, progress)?;

    progress(Progress::Step {
        index: 5,
        total: STEPS,
        what: "installing from the checked wheels (no index)",
    });
    let mut inst = pip_command(&py, &pip);
    inst.arg("install")
        .args(PIP_STRICT)
        .args(["--no-index", "--no-warn-script-location", "--find-links"])
        .arg(&wheels)
        .arg("--requirement")
        .arg(&lock_copy);
    run_step("pip install", inst, progress)?;

    progress(Progress::Step {
        index: 6,
        total: STEPS,
        what: "compiling bytecode (the sandbox binds the venv read-only)",
    });
    let mut compile = Command::new(&py);
    compile
        .args(["-I", "-m", "compileall", "-q", "-j", "0"])
        .arg(venv.join(SITE_PACKAGES));
    run_step("compileall", compile, progress)?;

    progress(Progress::Step {
        index: 7,
        total: STEPS,
        what: "recording the identity (inventory, manifest, root digest)",
    });
    let identity = RuntimeIdentity::measure(&dir, &opts.python, &version, &lock)?;
    identity.write(&dir)?;
    progress(Progress::Note(&format!(
        "installed {} distributions: {} files, {:.2} GB, root {}",
        identity.distributions.len(),
        identity.tree.stats.files,
        identity.tree.stats.bytes as f64 / 1e9,
        identity.tree.root_digest
    )));
    drop(guard);
    Ok(InstallReport {
        identity,
        reused: false,
        reason: Some(reason),
        elapsed: start.elapsed(),
    })
}

/// Flags of both pip steps: hashes required for every file, no dependency
/// resolution beyond the lock, wheels only (an sdist would run its build
/// script).
const PIP_STRICT: [&str; 4] = [
    "--require-hashes",
    "--no-deps",
    "--only-binary=:all:",
    "--disable-pip-version-check",
];

fn pip_command(py: &Path, pip_wheel: &Path) -> Command {
    let mut c = Command::new(py);
    c.arg(pip_wheel.join("pip"));
    // pip honours the operator's index/proxy/certificate settings (PIP_*,
    // pip.conf); hashes make the source irrelevant to what gets installed.
    // PYTHON* variables could change what the interpreter imports.
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("PYTHON")) {
            c.env_remove(k);
        }
    }
    c.env("PIP_NO_INPUT", "1");
    c
}

fn python_version(python: &Path) -> Result<String> {
    if !python.is_file() {
        return Err(Error::PythonMissing {
            path: python.to_path_buf(),
        });
    }
    let out = Command::new(python)
        .args([
            "-I",
            "-c",
            "import sys; print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .output()
        .map_err(|e| Error::io(python, e))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !version.starts_with("3.11.") {
        return Err(Error::InstallFailed {
            step: "checking the interpreter",
            status: out.status.to_string(),
            detail: format!(
                "{} is Python {version:?}, the lock is for 3.11",
                python.display()
            ),
        });
    }
    Ok(version)
}

/// The newest `pip-*.whl` in `dir`.
fn pip_wheel(dir: &Path) -> Result<PathBuf> {
    let missing = || Error::PipMissing {
        dir: dir.to_path_buf(),
    };
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|_| missing())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pip-") && n.ends_with(".whl"))
        })
        .collect();
    found.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').nth(1))
            .map(|v| {
                v.split('.')
                    .map(|x| x.parse::<u32>().unwrap_or(0))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    found.pop().ok_or_else(missing)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Run one step, streaming its stdout and stderr lines to `progress`.
fn run_step(
    step: &'static str,
    mut cmd: Command,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<()> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::InstallFailed {
        step,
        status: "not started".into(),
        detail: e.to_string(),
    })?;
    let (tx, rx) = mpsc::channel::<String>();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(err, tx.clone()));
    }
    drop(tx);
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for line in rx {
        progress(Progress::Output(&line));
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().map_err(|e| Error::InstallFailed {
        step,
        status: "lost".into(),
        detail: e.to_string(),
    })?;
    if !status.success() {
        return Err(Error::InstallFailed {
            step,
            status: status.to_string(),
            detail: Vec::from(tail).join("\n"),
        });
    }
    Ok(())
}

fn spawn_reader(
    stream: impl std::io::Read + Send + 'static,
    tx: mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_python_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let mut opts = InstallOptions::new(d.path().join("rt"));
        opts.python = d.path().join("no-python3.11");
        let err = install(&opts, &mut |_| {}).unwrap_err();
        assert_eq!(err.code(), "runtime.python_missing");
        assert!(
            err.to_string()
                .contains("apt-get install python3.11 python3.11-venv"),
            "{err}"
        );
    }

    #[test]
    fn missing_pip_wheel_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let mut opts = InstallOptions::new(d.path().join("rt"));
        opts.pip_wheels = d.path().join("empty");
        fs::create_dir_all(&opts.pip_wheels).unwrap();
        if !Path::new(DEFAULT_PYTHON).exists() {
            return; // python_missing comes first; covered above
        }
        let err = install(&opts, &mut |_| {}).unwrap_err();
        assert_eq!(err.code(), "runtime.pip_missing");
        assert!(err.to_string().contains("python3.11-venv"), "{err}");
    }

    #[test]
    fn refuses_to_delete_a_directory_that_is_not_a_venv() {
        if !Path::new(DEFAULT_PYTHON).exists() || pip_wheel(Path::new(PIP_WHEEL_DIR)).is_err() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let venv = d.path().join(VENV_DIR);
        fs::create_dir_all(&venv).unwrap();
        fs::write(venv.join("precious.txt"), b"keep me").unwrap();
        let err = install(&InstallOptions::new(d.path()), &mut |_| {}).unwrap_err();
        assert_eq!(err.code(), "runtime.install_failed");
        assert!(venv.join("precious.txt").exists());
    }

    #[test]
    fn picks_the_newest_pip_wheel() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "pip-9.0.1-py3-none-any.whl",
            "pip-23.0.1-py3-none-any.whl",
            "setuptools-66-py3-none-any.whl",
        ] {
            fs::write(d.path().join(n), b"").unwrap();
        }
        assert!(
            pip_wheel(d.path())
                .unwrap()
                .ends_with("pip-23.0.1-py3-none-any.whl")
        );
    }

    #[test]
    fn default_dir_is_under_dot_venv() {
        // Only checks the fallback shape; the env overrides are documented.
        if std::env::var_os("VERITRAIN_RUNTIME_DIR").is_none()
            && std::env::var_os("VERITRAIN_HOME").is_none()
        {
            assert_eq!(default_dir(), PathBuf::from(".venv/runtime"));
        }
    }
}
