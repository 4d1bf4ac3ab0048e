//! The applied policy as facts for the AIBoM: which backend, which
//! namespaces and identities, which syscalls are denied (by digest), what is
//! mounted where, and every limit with the mechanism that enforces it.
//!
//! The facts are built from the same values the backend's arguments are
//! built from (see `bwrap.rs`), so they describe what was applied, not what
//! was intended. Host paths of the job's binds are not recorded (they are
//! platform internals); their role and the path inside are.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cgroup::CgroupFacts;
use crate::command::BindRole;
use crate::seccomp::SeccompFacts;

/// Schema identifier of [`PolicyFacts`].
pub const FACTS_SCHEMA: &str = "https://veritrain.dev/sandbox-facts/v1";

/// The applied sandbox policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyFacts {
    /// [`FACTS_SCHEMA`].
    pub schema: String,
    /// Backend name (`bubblewrap`).
    pub backend: String,
    /// Backend version as it reports it (`bwrap --version`).
    pub backend_version: String,
    /// Namespaces the job gets of its own.
    pub namespaces: Vec<String>,
    /// Whether the job may create further user namespaces.
    pub nested_user_namespaces: bool,
    /// Network access: `loopback-only` (own network namespace, only `lo`).
    pub network: String,
    /// Host uid and gid the sandbox runs as (the service user).
    pub host_uid: u32,
    /// See `host_uid`.
    pub host_gid: u32,
    /// uid and gid inside.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Capabilities the job holds (empty: all dropped).
    pub capabilities: Vec<String>,
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// The seccomp filter.
    pub seccomp: SeccompFacts,
    /// The filesystem, in mount order.
    pub mounts: Vec<MountFact>,
    /// Names of the environment variables set inside (nothing else is).
    pub environment: Vec<String>,
    /// Every limit and what enforces it.
    pub limits: Vec<LimitFact>,
    /// The job's cgroups.
    pub cgroup: CgroupFacts,
    /// GPU device nodes bound in (empty without the GPU option).
    pub gpu_devices: Vec<String>,
}

impl PolicyFacts {
    /// `sha256:<hex>` of the facts' JSON: the "sandbox config hash" recorded
    /// in provenance.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(json)))
    }
}

/// One mount inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountFact {
    /// Path inside.
    pub dest: String,
    /// `ro-bind`, `bind`, `dev-bind`, `tmpfs`, `proc`, `dev`, `symlink`.
    pub kind: String,
    /// For system mounts: the host path (`/usr`); for symlinks: the target.
    pub source: Option<String>,
    /// For the job's binds: what they hold.
    pub role: Option<BindRole>,
    /// Read-only.
    pub read_only: bool,
    /// Size cap (tmpfs).
    pub size_bytes: Option<u64>,
}

/// One limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitFact {
    /// What is limited (`memory`, `pids`, `wall_time`, ...).
    pub name: String,
    /// The limit, in `unit`; `None` = not limited by this mechanism.
    pub value: Option<u64>,
    /// `bytes`, `count`, `seconds`, `millicores`, `cpus`.
    pub unit: String,
    /// How it is enforced (`cgroup-v1 memory.limit_in_bytes`, `rlimit
    /// RLIMIT_NOFILE`, `tmpfs size`, `supervisor`).
    pub mechanism: String,
}
