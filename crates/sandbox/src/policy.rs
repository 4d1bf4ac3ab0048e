//! The sandbox policy: what a job may see and use. [`Policy::default`] is
//! the production policy; every field is public so tests (and a future
//! operator setting) can change one control, and every change shows in the
//! [`PolicyFacts`](crate::PolicyFacts) recorded with the job.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Name of the dedicated host user that starts the sandbox
/// (`scripts/setup-deps` creates it).
pub const DEFAULT_SERVICE_USER: &str = "veritrain-sandbox";

/// The uid and gid the job has inside the sandbox.
pub const SANDBOX_UID: u32 = 1000;
/// See [`SANDBOX_UID`].
pub const SANDBOX_GID: u32 = 1000;

/// Which host identity starts the backend.
///
/// Never root: with bwrap started by root, the sandbox uid maps to host root
/// (files it writes are root's, and every root-owned file looks like its
/// own). A dedicated user also makes `RLIMIT_NPROC` (counted per uid) a
/// per-service cap and lets a test find leftover processes by uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HostIdentity {
    /// A user looked up by name (default: [`DEFAULT_SERVICE_USER`]).
    User {
        /// The user name.
        name: String,
    },
    /// An explicit uid and gid.
    Ids {
        /// Host uid.
        uid: u32,
        /// Host gid.
        gid: u32,
    },
}

impl Default for HostIdentity {
    fn default() -> Self {
        HostIdentity::User {
            name: DEFAULT_SERVICE_USER.to_owned(),
        }
    }
}

/// GPU access.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Gpu {
    /// No device nodes beyond the minimal `/dev` (default).
    #[default]
    None,
    /// Bind every `/dev/nvidia*` node (and `/dev/nvidia-caps`) and the
    /// given extra driver library directories (read-only, same path
    /// inside). Libraries under `/usr` are visible already.
    Nvidia {
        /// Extra read-only library directories, e.g. `/usr/local/nvidia`.
        library_dirs: Vec<PathBuf>,
    },
}

/// Resource limits. `None` means "not limited by this mechanism"; the
/// defaults limit everything.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Wall-clock time from start until the whole process tree is killed.
    pub wall_time: Duration,
    /// Memory of the whole job, cgroup (`memory.max` /
    /// `memory.limit_in_bytes`). Includes its `/tmp`, `/dev/shm` and `/out`
    /// tmpfs pages, which are charged to the writer.
    pub memory_bytes: Option<u64>,
    /// Processes and threads of the whole job, cgroup (`pids.max`).
    pub pids: Option<u64>,
    /// CPU cores' worth of time per period, cgroup (`cpu.max` /
    /// `cpu.cfs_quota_us`).
    pub cpu_quota_cores: Option<f64>,
    /// CPUs the job is pinned to (affinity; TensorFlow sizes its thread
    /// pools from it).
    pub cpu_affinity: Option<Vec<usize>>,
    /// CPU seconds per process, rlimit (`RLIMIT_CPU`: SIGXCPU at the limit,
    /// SIGKILL 5 s later).
    pub cpu_time: Option<Duration>,
    /// Largest file a process may write, rlimit (`RLIMIT_FSIZE`).
    pub file_size_bytes: Option<u64>,
    /// Open descriptors per process, rlimit (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Processes of the service uid, rlimit (`RLIMIT_NPROC`): a host-wide
    /// backstop behind the per-job `pids` cgroup limit, shared by all jobs.
    pub processes_per_uid: u64,
    /// Size of the writable output directory `/out` (a tmpfs the supervisor
    /// mounts with `size=`; contents are copied out after the job).
    pub output_bytes: u64,
    /// Files and directories in `/out` (tmpfs `nr_inodes=`).
    pub output_inodes: u64,
    /// Size of the `/tmp` tmpfs.
    pub tmp_bytes: u64,
    /// Size of the `/dev/shm` tmpfs.
    pub shm_bytes: u64,
    /// Bytes of stdout and of stderr kept in the [`Outcome`](crate::Outcome)
    /// (the tail); the line callback sees every line.
    pub capture_bytes: usize,
    /// Longest stdout line handed to the callback; longer lines are cut.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_time: Duration::from_secs(3600),
            memory_bytes: Some(4 * GIB),
            pids: Some(512),
            cpu_quota_cores: None,
            cpu_affinity: None,
            cpu_time: Some(Duration::from_secs(4 * 3600)),
            file_size_bytes: Some(2 * GIB),
            open_files: 4096,
            processes_per_uid: 4096,
            output_bytes: 2 * GIB,
            output_inodes: 16 * 1024,
            tmp_bytes: GIB,
            shm_bytes: 256 * MIB,
            capture_bytes: MIB as usize,
            max_line_bytes: 64 * KIB as usize,
        }
    }
}

impl Limits {
    /// Small limits for tests: 512 MiB memory, 64 processes, 30 s wall
    /// clock, 16 MiB output, 16 MiB `/tmp`.
    pub fn for_testing() -> Self {
        Limits {
            wall_time: Duration::from_secs(30),
            memory_bytes: Some(512 * MIB),
            pids: Some(64),
            cpu_time: Some(Duration::from_secs(60)),
            file_size_bytes: Some(64 * MIB),
            open_files: 256,
            output_bytes: 16 * MIB,
            output_inodes: 1024,
            tmp_bytes: 16 * MIB,
            shm_bytes: 16 * MIB,
            capture_bytes: 256 * KIB as usize,
            ..Limits::default()
        }
    }
}

/// How job cgroups are placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CgroupParent {
    /// Under the supervisor's own cgroup in each hierarchy (default).
    #[default]
    Own,
    /// Under this path (relative to each hierarchy's root), e.g. a systemd
    /// slice delegated to the worker.
    Path {
        /// The cgroup path, starting with `/`.
        path: String,
    },
}

/// The sandbox policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Host identity that starts the backend (never root).
    pub host_identity: HostIdentity,
    /// Apply the seccomp filter (default true).
    pub seccomp: bool,
    /// Forbid nested user namespaces (`bwrap --disable-userns`; default
    /// true).
    pub disable_nested_userns: bool,
    /// Hostname inside.
    pub hostname: String,
    /// Resource limits.
    pub limits: Limits,
    /// GPU access.
    pub gpu: Gpu,
    /// Where job cgroups go.
    pub cgroup_parent: CgroupParent,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            host_identity: HostIdentity::default(),
            seccomp: true,
            disable_nested_userns: true,
            hostname: "sandbox".to_owned(),
            limits: Limits::default(),
            gpu: Gpu::None,
            cgroup_parent: CgroupParent::Own,
        }
    }
}

impl Policy {
    /// The default policy with [`Limits::for_testing`].
    pub fn for_testing() -> Self {
        Policy {
            limits: Limits::for_testing(),
            ..Policy::default()
        }
    }

    /// Check the policy for values that cannot work.
    pub fn validate(&self) -> Result<()> {
        let l = &self.limits;
        let bad = |m: &str| Err(Error::InvalidPolicy(m.to_owned()));
        if l.wall_time.is_zero() {
            return bad("wall_time must be positive");
        }
        if l.memory_bytes == Some(0) || l.pids == Some(0) || l.file_size_bytes == Some(0) {
            return bad("memory, pids and file size limits must be positive when set");
        }
        if l.pids.is_some_and(|p| p < 8) {
            return bad("pids below 8 cannot start the sandbox (backend, init, job)");
        }
        if l.cpu_quota_cores
            .is_some_and(|c| !(c.is_finite() && c > 0.0))
        {
            return bad("cpu_quota_cores must be a positive number");
        }
        if l.cpu_affinity.as_ref().is_some_and(Vec::is_empty) {
            return bad("cpu_affinity must name at least one CPU");
        }
        if l.cpu_time.is_some_and(|t| t.as_secs() == 0) {
            return bad("cpu_time must be at least one second");
        }
        if l.open_files < 16 || l.processes_per_uid < 16 {
            return bad("open_files and processes_per_uid must be at least 16");
        }
        if l.output_bytes == 0 || l.output_inodes < 2 || l.tmp_bytes == 0 || l.shm_bytes == 0 {
            return bad("output, /tmp and /dev/shm sizes must be positive");
        }
        if l.capture_bytes == 0 || l.max_line_bytes == 0 {
            return bad("capture_bytes and max_line_bytes must be positive");
        }
        if self.hostname.is_empty()
            || self.hostname.len() > 64
            || !self
                .hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("hostname must be 1-64 characters of [A-Za-z0-9-]");
        }
        if let CgroupParent::Path { path } = &self.cgroup_parent
            && (!path.starts_with('/') || path.split('/').any(|c| c == ".." || c == "."))
        {
            return bad("cgroup_parent path must be absolute without . or ..");
        }
        if let Gpu::Nvidia { library_dirs } = &self.gpu {
            for d in library_dirs {
                if !d.is_absolute() {
                    return bad("GPU library directories must be absolute");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_limit_everything() {
        let p = Policy::default();
        p.validate().unwrap();
        assert!(p.seccomp && p.disable_nested_userns);
        assert_eq!(p.limits.pids, Some(512));
        assert!(p.limits.memory_bytes.is_some());
        assert!(p.limits.cpu_time.is_some());
        assert!(p.limits.file_size_bytes.is_some());
        Policy::for_testing().validate().unwrap();
    }

    #[test]
    fn nonsense_is_rejected_with_a_code() {
        let mut p = Policy::default();
        p.limits.pids = Some(2);
        assert_eq!(p.validate().unwrap_err().code(), "sandbox.invalid_policy");
        let p = Policy {
            hostname: "a b".into(),
            ..Policy::default()
        };
        assert!(p.validate().is_err());
        let p = Policy {
            cgroup_parent: CgroupParent::Path {
                path: "/a/../b".into(),
            },
            ..Policy::default()
        };
        assert!(p.validate().is_err());
        let mut p = Policy::default();
        p.limits.cpu_quota_cores = Some(f64::NAN);
        assert!(p.validate().is_err());
    }
}
