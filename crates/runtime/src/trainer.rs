//! The trainer program (`trainer/train.py`), compiled into this crate, and
//! the exact command line that runs it.
//!
//! The worker writes these bytes into the job's application directory and
//! runs exactly them, so the digest recorded per job ([`sha256_hex`]) is
//! the digest of what ran, whatever happens to the checkout afterwards.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The trainer's source, byte for byte.
pub const SOURCE: &str = include_str!("../../../trainer/train.py");
/// The file name it is written under.
pub const FILE_NAME: &str = "train.py";

/// SHA-256 of [`SOURCE`].
pub fn sha256() -> [u8; 32] {
    Sha256::digest(SOURCE.as_bytes()).into()
}

/// SHA-256 of [`SOURCE`], lowercase hex: the trainer digest a job records.
pub fn sha256_hex() -> String {
    hex::encode(sha256())
}

/// Write the trainer into `dir` (created if needed) as a read-only
/// `train.py`, replacing any file there, and return its path.
///
/// # Errors
/// [`Error::Io`].
pub fn write_to(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(".train.py.tmp");
    fs::write(&tmp, SOURCE).map_err(|e| Error::io(&tmp, e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444)).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Paths as the trainer process sees them (inside the sandbox, or on the
/// host for a direct run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainerPaths {
    /// The runtime venv.
    pub venv: PathBuf,
    /// The trainer script.
    pub trainer: PathBuf,
    /// The job spec.
    pub spec: PathBuf,
    /// `HOME` (Keras writes `$HOME/.keras/keras.json` on import).
    pub home: PathBuf,
    /// The working directory.
    pub cwd: PathBuf,
}

impl TrainerPaths {
    /// The layout inside the sandbox (shared/notes/trainer-runtime.md §2):
    /// venv at `/opt/venv`, trainer at `/opt/app/train.py`, spec at
    /// `/in/job.json`, `HOME` and working directory on the `/tmp` tmpfs.
    pub fn sandboxed() -> Self {
        TrainerPaths {
            venv: PathBuf::from("/opt/venv"),
            trainer: PathBuf::from("/opt/app/train.py"),
            spec: PathBuf::from("/in/job.json"),
            home: PathBuf::from("/tmp"),
            cwd: PathBuf::from("/tmp"),
        }
    }
}

/// A fully specified process: program, arguments, the complete environment
/// (nothing is inherited) and the working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainerCommand {
    /// `<venv>/bin/python`.
    pub program: PathBuf,
    /// `-I -B <trainer> <spec>`.
    pub args: Vec<OsString>,
    /// The whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory.
    pub cwd: PathBuf,
}

impl TrainerCommand {
    /// Build the command for `paths`.
    ///
    /// - `-I` (isolated): no script directory or working directory on
    ///   `sys.path`, no `PYTHON*` variables, no user site-packages, so files
    ///   next to the model or in the working directory cannot shadow
    ///   modules (a `keras_nlp/` beside the model was imported without it);
    /// - `-B`: write no bytecode (the venv is immutable; a new `.pyc` would
    ///   fail the tamper check);
    /// - environment: `HOME`, `PATH`, `TF_CPP_MIN_LOG_LEVEL=2` (TensorFlow's
    ///   C++ info lines off) and `KERAS_BACKEND=tensorflow` (so no
    ///   `keras.json` can pick another backend); nothing else.
    pub fn new(paths: &TrainerPaths) -> Self {
        let mut path_var = paths.venv.join("bin").into_os_string();
        path_var.push(":/usr/bin");
        TrainerCommand {
            program: paths.venv.join("bin/python"),
            args: vec![
                "-I".into(),
                "-B".into(),
                paths.trainer.clone().into_os_string(),
                paths.spec.clone().into_os_string(),
            ],
            env: vec![
                ("HOME".into(), paths.home.clone().into_os_string()),
                ("PATH".into(), path_var),
                ("TF_CPP_MIN_LOG_LEVEL".into(), "2".into()),
                ("KERAS_BACKEND".into(), "tensorflow".into()),
            ],
            cwd: paths.cwd.clone(),
        }
    }

    /// A `std::process::Command` with a cleared environment.
    pub fn to_command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_of_the_committed_file() {
        let on_disk = fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../trainer/train.py"
        ))
        .unwrap();
        assert_eq!(hex::encode(Sha256::digest(&on_disk)), sha256_hex());
        assert_eq!(sha256_hex().len(), 64);
    }

    #[test]
    fn write_to_puts_the_exact_bytes_read_only() {
        let d = tempfile::tempdir().unwrap();
        let p = write_to(&d.path().join("app")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), SOURCE.as_bytes());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o444
        );
        // Writing again replaces a read-only file without error.
        write_to(&d.path().join("app")).unwrap();
    }

    #[test]
    fn sandboxed_command_line_is_exact() {
        let c = TrainerCommand::new(&TrainerPaths::sandboxed());
        assert_eq!(c.program, PathBuf::from("/opt/venv/bin/python"));
        assert_eq!(
            c.args,
            ["-I", "-B", "/opt/app/train.py", "/in/job.json"].map(OsString::from)
        );
        assert_eq!(
            c.env,
            [
                ("HOME", "/tmp"),
                ("PATH", "/opt/venv/bin:/usr/bin"),
                ("TF_CPP_MIN_LOG_LEVEL", "2"),
                ("KERAS_BACKEND", "tensorflow"),
            ]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        );
        assert_eq!(c.cwd, PathBuf::from("/tmp"));
    }

    #[test]
    fn command_clears_the_environment() {
        // Run /usr/bin/env with the trainer's environment: the test process
        // has dozens of variables (CARGO_*, PATH, ...); only four may arrive.
        let mut tc = TrainerCommand::new(&TrainerPaths::sandboxed());
        tc.program = PathBuf::from("/usr/bin/env");
        tc.args.clear();
        tc.cwd = PathBuf::from("/");
        let out = tc.to_command().output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "HOME=/tmp",
                "KERAS_BACKEND=tensorflow",
                "PATH=/opt/venv/bin:/usr/bin",
                "TF_CPP_MIN_LOG_LEVEL=2"
            ]
        );
    }
}
