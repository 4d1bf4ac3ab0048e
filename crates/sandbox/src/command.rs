//! What to run: the program, its arguments and environment, and the job's
//! own directories. Only four kinds of host directory can appear inside:
//! the runtime, the trainer code and the inputs (read-only), and one output
//! directory (writable, size-capped). Everything else the job sees comes
//! from the policy: `/usr` read-only, its own `/proc`, a minimal `/dev`,
//! size-capped `/tmp` and `/dev/shm`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// Where the runtime (the Python venv) appears inside.
pub const RUNTIME_DIR: &str = "/opt/venv";
/// Where the trainer code appears inside.
pub const CODE_DIR: &str = "/opt/app";
/// Where the job's inputs appear inside.
pub const INPUTS_DIR: &str = "/in";
/// Where the writable output directory appears inside.
pub const OUTPUT_DIR: &str = "/out";

/// Paths the sandbox itself provides; binds may not cover or shadow them.
const RESERVED: &[&str] = &[
    "/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/dev", "/tmp", "/sys",
    "/out", "/run", "/var",
];

/// What a read-only bind holds (recorded in the facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BindRole {
    /// The training runtime (Python venv).
    Runtime,
    /// The trainer program.
    Code,
    /// The job's inputs (model, data, job spec).
    Inputs,
}

/// A read-only bind of a host path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// What it is.
    pub role: BindRole,
    /// Host path (directory or file).
    pub source: PathBuf,
    /// Absolute path inside.
    pub dest: String,
}

/// A command to run in the sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxCommand {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) cwd: Option<String>,
    pub(crate) binds: Vec<Bind>,
    pub(crate) output: Option<PathBuf>,
    pub(crate) cancel: Option<CancelToken>,
}

impl SandboxCommand {
    /// Run `program`, a path inside the sandbox (e.g.
    /// `/opt/venv/bin/python`).
    pub fn new(program: impl Into<String>) -> Self {
        SandboxCommand {
            program: program.into(),
            ..SandboxCommand::default()
        }
    }

    /// Add an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set an environment variable inside (the environment starts empty
    /// apart from `HOME=/tmp`, `TMPDIR=/tmp`, `PATH` and `LANG=C.UTF-8`).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }

    /// Working directory inside (default `/tmp`).
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Bind the runtime directory read-only at [`RUNTIME_DIR`].
    pub fn runtime(self, host: impl Into<PathBuf>) -> Self {
        self.bind(BindRole::Runtime, host, RUNTIME_DIR)
    }

    /// Bind the trainer code directory read-only at [`CODE_DIR`].
    pub fn code(self, host: impl Into<PathBuf>) -> Self {
        self.bind(BindRole::Code, host, CODE_DIR)
    }

    /// Bind the inputs directory read-only at [`INPUTS_DIR`].
    pub fn inputs(self, host: impl Into<PathBuf>) -> Self {
        self.bind(BindRole::Inputs, host, INPUTS_DIR)
    }

    /// Bind a host path read-only at `dest` (an absolute path that is not
    /// one of the sandbox's own).
    pub fn bind(
        mut self,
        role: BindRole,
        host: impl Into<PathBuf>,
        dest: impl Into<String>,
    ) -> Self {
        self.binds.push(Bind {
            role,
            source: host.into(),
            dest: dest.into(),
        });
        self
    }

    /// The host directory that receives what the job writes to
    /// [`OUTPUT_DIR`]. It must exist and be empty. During the job `/out` is
    /// a size-capped tmpfs; afterwards its regular files and directories are
    /// copied here (links and special files are refused and reported).
    pub fn output(mut self, host: impl Into<PathBuf>) -> Self {
        self.output = Some(host.into());
        self
    }

    /// Stop the job when `token` is cancelled: the supervisor kills it as it
    /// would at the wall-clock limit (the whole cgroup, then the backend),
    /// within about 200 ms, and the outcome is
    /// [`JobFailure::Cancelled`](crate::JobFailure::Cancelled). A token
    /// cancelled before the run starts stops the job as soon as it starts.
    pub fn cancel_on(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The binds, in order.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// The host output directory, if any.
    pub fn output_dir(&self) -> Option<&Path> {
        self.output.as_deref()
    }

    /// Check paths, names and the bind sources.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidCommand(m));
        if !is_clean_abs(&self.program) {
            return bad(format!(
                "program {:?} must be an absolute path inside the sandbox",
                self.program
            ));
        }
        for a in &self.args {
            if a.contains('\0') {
                return bad("an argument contains a NUL byte".into());
            }
        }
        if let Some(c) = &self.cwd
            && !is_clean_abs(c)
        {
            return bad(format!("cwd {c:?} must be an absolute path"));
        }
        for (k, v) in &self.env {
            let mut bytes = k.bytes();
            let first_ok = bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
            if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return bad(format!(
                    "environment variable name {k:?} is not [A-Za-z_][A-Za-z0-9_]*"
                ));
            }
            if v.contains('\0') {
                return bad(format!("environment variable {k} contains a NUL byte"));
            }
        }
        let mut dests: Vec<&str> = Vec::new();
        for b in &self.binds {
            if !is_clean_abs(&b.dest) {
                return bad(format!(
                    "bind destination {:?} must be a clean absolute path",
                    b.dest
                ));
            }
            for r in RESERVED {
                // Equal to, or inside, a path the sandbox provides.
                if b.dest == *r || (*r != "/" && is_inside(&b.dest, r)) {
                    return bad(format!(
                        "bind destination {} is reserved by the sandbox",
                        b.dest
                    ));
                }
            }
            if dests
                .iter()
                .any(|d| *d == b.dest || is_inside(&b.dest, d) || is_inside(d, &b.dest))
            {
                return bad(format!("bind destination {} overlaps another bind", b.dest));
            }
            dests.push(&b.dest);
            if !b.source.is_absolute() {
                return bad(format!(
                    "bind source {} must be absolute",
                    b.source.display()
                ));
            }
            if b.source == Path::new("/") {
                return bad("binding the host root is not allowed".into());
            }
        }
        Ok(())
    }
}

fn is_clean_abs(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains('\0')
        && p.split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..")
        || p == "/"
}

/// `p` is strictly inside directory `dir` (both clean absolute paths).
fn is_inside(p: &str, dir: &str) -> bool {
    p.len() > dir.len() && p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &SandboxCommand) -> &'static str {
        c.validate().unwrap_err().code()
    }

    #[test]
    fn a_trainer_command_validates() {
        SandboxCommand::new("/opt/venv/bin/python")
            .args(["-I", "/opt/app/train.py"])
            .runtime("/srv/rt")
            .code("/srv/app")
            .inputs("/srv/job/in")
            .output("/srv/job/out")
            .env("TF_CPP_MIN_LOG_LEVEL", "2")
            .validate()
            .unwrap();
    }

    #[test]
    fn reserved_relative_and_overlapping_destinations_are_refused() {
        let base = SandboxCommand::new("/usr/bin/true");
        for dest in [
            "/usr", "/usr/lib", "/etc", "/proc/x", "/out", "/", "rel", "/a/../b", "/a//b",
        ] {
            let c = base.clone().bind(BindRole::Inputs, "/srv", dest);
            assert_eq!(code(&c), "sandbox.invalid_command", "{dest}");
        }
        let c =
            base.clone()
                .bind(BindRole::Inputs, "/a", "/in")
                .bind(BindRole::Code, "/b", "/in/x");
        assert_eq!(code(&c), "sandbox.invalid_command");
        let c = base.clone().bind(BindRole::Inputs, "/", "/in");
        assert_eq!(code(&c), "sandbox.invalid_command");
        let c = base.clone().bind(BindRole::Inputs, "rel", "/in");
        assert_eq!(code(&c), "sandbox.invalid_command");
        // "/usrx" is not inside "/usr".
        base.bind(BindRole::Inputs, "/srv", "/usrx")
            .validate()
            .unwrap();
    }

    #[test]
    fn bad_program_env_and_cwd_are_refused() {
        assert_eq!(
            code(&SandboxCommand::new("python")),
            "sandbox.invalid_command"
        );
        let c = SandboxCommand::new("/usr/bin/true").env("A=B", "x");
        assert_eq!(code(&c), "sandbox.invalid_command");
        let c = SandboxCommand::new("/usr/bin/true").env("1A", "x");
        assert_eq!(code(&c), "sandbox.invalid_command");
        let c = SandboxCommand::new("/usr/bin/true").env("A", "x\0y");
        assert_eq!(code(&c), "sandbox.invalid_command");
        let c = SandboxCommand::new("/usr/bin/true").cwd("tmp");
        assert_eq!(code(&c), "sandbox.invalid_command");
        let c = SandboxCommand::new("/usr/bin/true").arg("a\0b");
        assert_eq!(code(&c), "sandbox.invalid_command");
    }
}
