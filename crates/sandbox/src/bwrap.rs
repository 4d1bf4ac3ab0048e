//! The bubblewrap backend.
//!
//! Start-up, in order (`Bubblewrap::run_streaming`):
//!
//! 1. validate the policy and the command; resolve the service user; build
//!    the seccomp program; open every bind source as an `O_PATH` descriptor
//!    (so bwrap, running unprivileged, needs no access to their parents, and
//!    what was checked is what gets mounted);
//! 2. create the job's cgroups and write the limits; mount the size-capped
//!    output tmpfs;
//! 3. fork; in the child: join the cgroups, set rlimits, drop to the service
//!    user, set the parent-death signal and `no_new_privs`, unmark the
//!    descriptors bwrap must inherit; exec `bwrap --args FD` (the arguments
//!    come from a memfd, so `/proc/1/cmdline` inside shows no host paths);
//! 4. bwrap creates the namespaces, mounts, drops capabilities, loads the
//!    seccomp filter and executes the job; its init (pid 1 inside) reaps;
//! 5. the supervisor streams stdout lines to the caller, keeps the tails of
//!    stdout and stderr, and waits on a pidfd with the wall-clock deadline,
//!    in slices of at most 200 ms so that it sees a cancelled
//!    [`CancelToken`](crate::CancelToken); at the deadline, or on cancel, it
//!    kills the job's cgroup and bwrap;
//! 6. after bwrap exits: kill whatever is left in the cgroup (counted; the
//!    pid namespace normally leaves nothing), read usage, copy `/out` out,
//!    unmount, remove the cgroups.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::Sandbox;
use crate::cancel::CancelToken;
use crate::cgroup::CgroupHost;
use crate::command::{BindRole, OUTPUT_DIR, RUNTIME_DIR, SandboxCommand};
use crate::error::{Error, Result};
use crate::facts::{FACTS_SCHEMA, LimitFact, MountFact, PolicyFacts};
use crate::outcome::{Captured, JobFailure, JobStatus, Outcome};
use crate::output::check_output_dir;
use crate::policy::{Gpu, HostIdentity, Policy, SANDBOX_GID, SANDBOX_UID};
use crate::seccomp::SeccompProgram;
use crate::staging::Staging;
use crate::sys::{self, ChildSetup};

/// Where Debian installs bubblewrap.
pub const DEFAULT_BWRAP: &str = "/usr/bin/bwrap";
/// Where the supervisor stages each job's binds and output tmpfs (0711
/// root: searchable by the service user, not listable).
pub const DEFAULT_WORK_DIR: &str = "/run/veritrain-sandbox";

/// How long cleanup may take to kill what is left of a job.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the pid namespace may take to die after bwrap exits before the
/// supervisor kills what is left.
const TEARDOWN_GRACE: Duration = Duration::from_secs(2);
/// Bytes of the backend's stderr quoted in a setup error.
const SETUP_STDERR_BYTES: usize = 4096;
/// The longest the watchdog waits on the backend before it looks at the
/// job's cancel token again: how late a cancel can be noticed.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// Who ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The backend exited by itself.
    Exited,
    /// The supervisor killed the job at the wall-clock deadline.
    Timeout,
    /// The supervisor killed the job because its token was cancelled.
    Cancelled,
}

impl Ended {
    /// The supervisor killed the job (so bwrap's SIGKILL and missing exit
    /// code are ours, not the job's).
    fn killed(self) -> bool {
        self != Ended::Exited
    }
}

static JOB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The bubblewrap backend.
#[derive(Debug, Clone)]
pub struct Bubblewrap {
    program: PathBuf,
    version: String,
    work_dir: PathBuf,
}

impl Bubblewrap {
    /// Use [`DEFAULT_BWRAP`].
    pub fn new() -> Result<Self> {
        Self::with_program(DEFAULT_BWRAP)
    }

    /// Use the given bwrap binary; checks that it runs and reads its version.
    pub fn with_program(program: impl Into<PathBuf>) -> Result<Self> {
        let program = program.into();
        let unavailable = |reason: String| Error::BackendUnavailable {
            program: program.clone(),
            reason,
        };
        let out = Command::new(&program)
            .arg("--version")
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .map_err(|e| unavailable(e.to_string()))?;
        if !out.status.success() {
            return Err(unavailable(format!("--version exited with {}", out.status)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .trim()
            .strip_prefix("bubblewrap ")
            .map(str::to_owned)
            .ok_or_else(|| unavailable(format!("unexpected --version output {:?}", text.trim())))?;
        Ok(Bubblewrap {
            program,
            version,
            work_dir: PathBuf::from(DEFAULT_WORK_DIR),
        })
    }

    /// Where output tmpfs are mounted (default [`DEFAULT_WORK_DIR`]).
    pub fn with_work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = dir.into();
        self
    }

    /// The backend's version (`0.8.0`).
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// Resolve the host identity; never root.
pub(crate) fn resolve_identity(id: &HostIdentity) -> Result<(u32, u32)> {
    let (uid, gid) = match id {
        HostIdentity::Ids { uid, gid } => (*uid, *gid),
        HostIdentity::User { name } => sys::lookup_user(name)
            .map_err(|e| Error::ServiceUser(format!("looking up {name}: {e}")))?
            .ok_or_else(|| {
                Error::ServiceUser(format!(
                    "user {name} does not exist; scripts/setup-deps creates it \
                     (useradd --system --user-group --no-create-home {name})"
                ))
            })?,
    };
    if uid == 0 || gid == 0 {
        return Err(Error::ServiceUser(
            "the sandbox must not be started as root (uid or gid 0): the job's uid would map to host root".into(),
        ));
    }
    Ok((uid, gid))
}

/// One step of the sandbox's filesystem, before descriptors are known.
#[derive(Debug, Clone)]
enum Op {
    RoBind {
        src: String,
        dest: String,
    },
    DevBind {
        path: String,
    },
    Symlink {
        target: String,
        dest: String,
    },
    Proc,
    Dev,
    Tmpfs {
        dest: String,
        size: u64,
    },
    /// Index into the job binds (opened as O_PATH fds).
    JobBind {
        index: usize,
    },
    Output,
}

/// Everything derived from (policy, command) before anything is created.
struct Layout {
    ops: Vec<Op>,
    env: BTreeMap<String, String>,
    cwd: String,
    gpu_devices: Vec<String>,
}

fn layout(policy: &Policy, cmd: &SandboxCommand) -> Result<Layout> {
    let mut ops = vec![Op::RoBind {
        src: "/usr".into(),
        dest: "/usr".into(),
    }];
    // Merged-usr hosts: /bin -> usr/bin etc. become the same symlinks; on a
    // split-usr host the real directories are bound read-only.
    for top in ["/bin", "/sbin", "/lib", "/lib64"] {
        let p = Path::new(top);
        match fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    fs::read_link(p).map_err(|e| Error::io(format!("readlink {top}"), e))?;
                ops.push(Op::Symlink {
                    target: target.to_string_lossy().into_owned(),
                    dest: top.into(),
                });
            }
            Ok(m) if m.is_dir() => ops.push(Op::RoBind {
                src: top.into(),
                dest: top.into(),
            }),
            _ => {}
        }
    }
    // The dynamic loader's cache: the only file from /etc.
    if Path::new("/etc/ld.so.cache").is_file() {
        ops.push(Op::RoBind {
            src: "/etc/ld.so.cache".into(),
            dest: "/etc/ld.so.cache".into(),
        });
    }
    ops.push(Op::Proc);
    ops.push(Op::Dev);
    let mut gpu_devices = Vec::new();
    if let Gpu::Nvidia { library_dirs } = &policy.gpu {
        let mut names: Vec<String> = fs::read_dir("/dev")
            .map_err(|e| Error::io("listing /dev", e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("nvidia"))
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(Error::GpuUnavailable);
        }
        for n in names {
            let path = format!("/dev/{n}");
            gpu_devices.push(path.clone());
            ops.push(Op::DevBind { path });
        }
        for d in library_dirs {
            let d = d.to_string_lossy().into_owned();
            ops.push(Op::RoBind {
                src: d.clone(),
                dest: d,
            });
        }
    }
    ops.push(Op::Tmpfs {
        dest: "/tmp".into(),
        size: policy.limits.tmp_bytes,
    });
    ops.push(Op::Tmpfs {
        dest: "/dev/shm".into(),
        size: policy.limits.shm_bytes,
    });
    for index in 0..cmd.binds.len() {
        ops.push(Op::JobBind { index });
    }
    if cmd.output.is_some() {
        ops.push(Op::Output);
    }

    let has_runtime = cmd.binds.iter().any(|b| b.role == BindRole::Runtime);
    let mut env = BTreeMap::new();
    env.insert("HOME".to_owned(), "/tmp".to_owned());
    env.insert("TMPDIR".to_owned(), "/tmp".to_owned());
    env.insert("LANG".to_owned(), "C.UTF-8".to_owned());
    env.insert(
        "PATH".to_owned(),
        if has_runtime {
            format!("{RUNTIME_DIR}/bin:/usr/bin:/bin")
        } else {
            "/usr/bin:/bin".to_owned()
        },
    );
    for (k, v) in &cmd.env {
        env.insert(k.clone(), v.clone());
    }
    Ok(Layout {
        ops,
        env,
        cwd: cmd.cwd.clone().unwrap_or_else(|| "/tmp".to_owned()),
        gpu_devices,
    })
}

/// What bwrap reads that is only known at run time: descriptor numbers (as
/// the child sees them) and the checked host paths of the binds.
struct Fds {
    seccomp: Option<RawFd>,
    /// Canonical host paths of the job's binds, in order.
    binds: Vec<String>,
    /// Host path of the output tmpfs.
    output: Option<String>,
    status: RawFd,
}

/// bwrap's options (passed through `--args FD`; bwrap takes the command
/// itself only from its real argv, after `--`).
fn bwrap_args(policy: &Policy, cmd: &SandboxCommand, lay: &Layout, fds: &Fds) -> Vec<String> {
    let mut a: Vec<String> = Vec::with_capacity(96);
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| (*s).to_owned()));
    // --unshare-all: user(-try), ipc, pid, net, uts, cgroup(-try); the
    // explicit flags make user and cgroup mandatory.
    push(&["--unshare-all", "--unshare-user", "--unshare-cgroup"]);
    if policy.disable_nested_userns {
        push(&["--disable-userns"]);
    }
    push(&["--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
    let uid = SANDBOX_UID.to_string();
    let gid = SANDBOX_GID.to_string();
    push(&["--uid", &uid, "--gid", &gid, "--hostname", &policy.hostname]);
    if let Some(fd) = fds.seccomp {
        push(&["--seccomp", &fd.to_string()]);
    }
    for op in &lay.ops {
        match op {
            Op::RoBind { src, dest } => push(&["--ro-bind", src, dest]),
            Op::DevBind { path } => push(&["--dev-bind", path, path]),
            Op::Symlink { target, dest } => push(&["--symlink", target, dest]),
            Op::Proc => push(&["--proc", "/proc"]),
            Op::Dev => push(&["--dev", "/dev"]),
            Op::Tmpfs { dest, size } => push(&["--size", &size.to_string(), "--tmpfs", dest]),
            Op::JobBind { index } => {
                if let (Some(src), Some(b)) = (fds.binds.get(*index), cmd.binds.get(*index)) {
                    push(&["--ro-bind", src, &b.dest]);
                }
            }
            Op::Output => {
                if let Some(src) = &fds.output {
                    push(&["--bind", src, OUTPUT_DIR]);
                }
            }
        }
    }
    // The root (a tmpfs bwrap built) becomes read-only: no files at /, no
    // fake /etc/resolv.conf.
    push(&["--remount-ro", "/", "--clearenv"]);
    for (k, v) in &lay.env {
        push(&["--setenv", k, v]);
    }
    push(&[
        "--chdir",
        &lay.cwd,
        "--json-status-fd",
        &fds.status.to_string(),
    ]);
    a
}

fn facts_of(
    bw: &Bubblewrap,
    policy: &Policy,
    cmd: &SandboxCommand,
    lay: &Layout,
    ids: (u32, u32),
    seccomp: Option<&SeccompProgram>,
    cgroups: &CgroupHost,
) -> Result<PolicyFacts> {
    let mut mounts = vec![MountFact {
        dest: "/".into(),
        kind: "tmpfs".into(),
        source: None,
        role: None,
        read_only: true,
        size_bytes: None,
    }];
    let m = |dest: &str, kind: &str, source: Option<&str>, ro: bool, size: Option<u64>| MountFact {
        dest: dest.to_owned(),
        kind: kind.to_owned(),
        source: source.map(str::to_owned),
        role: None,
        read_only: ro,
        size_bytes: size,
    };
    for op in &lay.ops {
        mounts.push(match op {
            Op::RoBind { src, dest } => m(dest, "ro-bind", Some(src), true, None),
            Op::DevBind { path } => m(path, "dev-bind", Some(path), false, None),
            Op::Symlink { target, dest } => m(dest, "symlink", Some(target), true, None),
            Op::Proc => m("/proc", "proc", None, false, None),
            Op::Dev => m("/dev", "dev", None, false, None),
            Op::Tmpfs { dest, size } => m(dest, "tmpfs", None, false, Some(*size)),
            Op::JobBind { index } => {
                let Some(b) = cmd.binds.get(*index) else {
                    continue;
                };
                MountFact {
                    role: Some(b.role),
                    ..m(&b.dest, "ro-bind", None, true, None)
                }
            }
            Op::Output => m(
                OUTPUT_DIR,
                "tmpfs",
                None,
                false,
                Some(policy.limits.output_bytes),
            ),
        });
    }
    let cg = cgroups.facts(&policy.limits, &policy.cgroup_parent)?;
    let version_of = |c: &str| {
        cg.controllers
            .iter()
            .find(|(name, _)| name == c)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let l = &policy.limits;
    let lim = |name: &str, value: Option<u64>, unit: &str, mechanism: String| LimitFact {
        name: name.into(),
        value,
        unit: unit.into(),
        mechanism,
    };
    let mem_mech = match version_of("memory").as_str() {
        "v1" => "cgroup-v1 memory.limit_in_bytes + memory.memsw.limit_in_bytes",
        "v2" => "cgroup-v2 memory.max + memory.swap.max=0 + memory.oom.group",
        _ => "none",
    };
    let pids_mech = format!("cgroup-{} pids.max", version_of("pids"));
    let cpu_mech = match version_of("cpu").as_str() {
        "v1" => "cgroup-v1 cpu.cfs_quota_us".to_owned(),
        "v2" => "cgroup-v2 cpu.max".to_owned(),
        _ => "none".to_owned(),
    };
    let limits = vec![
        lim(
            "wall_time",
            Some(l.wall_time.as_secs()),
            "seconds",
            "supervisor: kill the job cgroup and the backend".into(),
        ),
        lim("memory", l.memory_bytes, "bytes", mem_mech.into()),
        lim("pids", l.pids, "count", pids_mech),
        lim(
            "cpu_quota",
            l.cpu_quota_cores.map(|c| (c * 1000.0) as u64),
            "millicores",
            cpu_mech,
        ),
        lim(
            "cpu_affinity",
            l.cpu_affinity.as_ref().map(|v| v.len() as u64),
            "cpus",
            "sched_setaffinity".into(),
        ),
        lim(
            "cpu_time",
            l.cpu_time.map(|d| d.as_secs()),
            "seconds",
            "rlimit RLIMIT_CPU (per process)".into(),
        ),
        lim(
            "file_size",
            l.file_size_bytes,
            "bytes",
            "rlimit RLIMIT_FSIZE".into(),
        ),
        lim(
            "open_files",
            Some(l.open_files),
            "count",
            "rlimit RLIMIT_NOFILE".into(),
        ),
        lim(
            "processes_per_uid",
            Some(l.processes_per_uid),
            "count",
            "rlimit RLIMIT_NPROC (service uid)".into(),
        ),
        lim("core_size", Some(0), "bytes", "rlimit RLIMIT_CORE".into()),
        lim(
            "output",
            cmd.output.as_ref().map(|_| l.output_bytes),
            "bytes",
            "tmpfs size (host mount)".into(),
        ),
        lim(
            "output_inodes",
            cmd.output.as_ref().map(|_| l.output_inodes),
            "count",
            "tmpfs nr_inodes (host mount)".into(),
        ),
        lim("tmp", Some(l.tmp_bytes), "bytes", "tmpfs size".into()),
        lim("shm", Some(l.shm_bytes), "bytes", "tmpfs size".into()),
    ];
    let mut namespaces: Vec<String> = ["cgroup", "ipc", "mount", "net", "pid", "user", "uts"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    namespaces.sort();
    Ok(PolicyFacts {
        schema: FACTS_SCHEMA.to_owned(),
        backend: "bubblewrap".into(),
        backend_version: bw.version.clone(),
        namespaces,
        nested_user_namespaces: !policy.disable_nested_userns && seccomp.is_none(),
        network: "loopback-only".into(),
        host_uid: ids.0,
        host_gid: ids.1,
        uid: SANDBOX_UID,
        gid: SANDBOX_GID,
        capabilities: Vec::new(),
        no_new_privs: true,
        seccomp: seccomp
            .map(SeccompProgram::facts)
            .unwrap_or_else(SeccompProgram::disabled_facts),
        mounts,
        environment: lay.env.keys().cloned().collect(),
        limits,
        cgroup: cg,
        gpu_devices: lay.gpu_devices.clone(),
    })
}

/// The permission bits of `meta` that apply to the service user.
fn bits_for(meta: &fs::Metadata, ids: (u32, u32)) -> u32 {
    let mode = meta.mode();
    if meta.uid() == ids.0 {
        (mode >> 6) & 7
    } else if meta.gid() == ids.1 {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

/// Check a bind source: it must be a directory or a regular file the
/// service user can read (the job runs as that user). Returns its canonical
/// path and whether it is a directory.
fn check_source(path: &Path, ids: (u32, u32)) -> Result<(PathBuf, bool)> {
    let bad = |m: String| Error::InvalidCommand(format!("bind source {}: {m}", path.display()));
    let canon = fs::canonicalize(path).map_err(|e| bad(e.to_string()))?;
    let meta = fs::metadata(&canon).map_err(|e| bad(e.to_string()))?;
    let need = if meta.is_dir() {
        5
    } else if meta.is_file() {
        4
    } else {
        return Err(bad("neither a directory nor a regular file".into()));
    };
    if bits_for(&meta, ids) & need != need {
        return Err(bad(format!(
            "mode {:o} is not readable by the sandbox's service user; make it world-readable",
            meta.mode() & 0o7777
        )));
    }
    Ok((canon, meta.is_dir()))
}

/// A stream reader that keeps the last `cap` bytes.
struct Tail {
    buf: Vec<u8>,
    cap: usize,
    total: u64,
    truncated: bool,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Tail {
            buf: Vec::new(),
            cap,
            total: 0,
            truncated: false,
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        self.buf.extend_from_slice(data);
        // Amortised: trim only when twice over.
        if self.buf.len() > 2 * self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    fn finish(mut self) -> Captured {
        if self.buf.len() > self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
            self.truncated = true;
        }
        Captured {
            bytes: self.buf,
            total_bytes: self.total,
            truncated: self.truncated,
        }
    }
}

fn read_tail(mut r: impl Read, cap: usize) -> Captured {
    let mut t = Tail::new(cap);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => t.push(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    t.finish()
}

/// Read stdout: every line (cut at `max_line` bytes) goes to `on_line`; the
/// tail is kept.
fn read_lines(
    mut r: impl Read,
    cap: usize,
    max_line: usize,
    on_line: &mut dyn FnMut(&str),
) -> Captured {
    let mut t = Tail::new(cap);
    let mut line: Vec<u8> = Vec::new();
    let mut overlong = false;
    let mut chunk = [0u8; 16 * 1024];
    let emit = |line: &mut Vec<u8>, on_line: &mut dyn FnMut(&str)| {
        let s = String::from_utf8_lossy(line);
        on_line(s.trim_end_matches('\r'));
        line.clear();
    };
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let data = chunk.get(..n).unwrap_or_default();
        t.push(data);
        for &b in data {
            if b == b'\n' {
                if !overlong {
                    emit(&mut line, on_line);
                }
                overlong = false;
                line.clear();
            } else if !overlong {
                line.push(b);
                if line.len() >= max_line {
                    // Hand over the cut line once; drop the rest of it.
                    emit(&mut line, on_line);
                    overlong = true;
                }
            }
        }
    }
    if !line.is_empty() && !overlong {
        emit(&mut line, on_line);
    }
    t.finish()
}

/// Parse bwrap's `--json-status-fd` stream: (host pid of bwrap's init if
/// it was started, exit-code).
fn parse_status(bytes: &[u8]) -> (Option<i32>, Option<i32>) {
    let mut child = None;
    let mut exit = None;
    for v in serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>() {
        let Ok(v) = v else { break };
        if let Some(p) = v.get("child-pid").and_then(serde_json::Value::as_i64) {
            child = Some(p as i32);
        }
        if let Some(c) = v.get("exit-code").and_then(serde_json::Value::as_i64) {
            exit = Some(c as i32);
        }
    }
    (child, exit)
}

fn rlimits(policy: &Policy) -> Vec<(sys::RlimitResource, u64, u64)> {
    let l = &policy.limits;
    let mut v = vec![
        // No core dumps: they would be written by the host's core handler.
        (libc::RLIMIT_CORE, 0, 0),
        (libc::RLIMIT_NOFILE, l.open_files, l.open_files),
        (libc::RLIMIT_NPROC, l.processes_per_uid, l.processes_per_uid),
    ];
    if let Some(b) = l.file_size_bytes {
        v.push((libc::RLIMIT_FSIZE, b, b));
    }
    if let Some(t) = l.cpu_time {
        // SIGXCPU at the soft limit, SIGKILL 5 s later.
        v.push((libc::RLIMIT_CPU, t.as_secs(), t.as_secs() + 5));
    }
    v
}

fn decide(
    policy: &Policy,
    exit_code: Option<i32>,
    backend_signal: Option<i32>,
    ended: Ended,
    oom_kills: u64,
    pids_hits: u64,
    output_full: bool,
) -> JobStatus {
    let l = &policy.limits;
    let failure = if ended == Ended::Timeout {
        Some(JobFailure::Timeout {
            limit_secs: l.wall_time.as_secs(),
        })
    } else if ended == Ended::Cancelled {
        // Whatever else the kill left behind (a signal, an OOM count from
        // the dying tree), the reason is the request.
        Some(JobFailure::Cancelled)
    } else if oom_kills > 0 && exit_code != Some(0) {
        // On cgroup v2 `memory.oom.group` kills bwrap along with the job,
        // so there may be no exit code at all.
        Some(JobFailure::OutOfMemory {
            limit_bytes: l.memory_bytes,
        })
    } else if let Some(signal) = backend_signal {
        Some(JobFailure::BackendKilled { signal })
    } else {
        match exit_code {
            Some(0) if output_full => Some(JobFailure::OutputFull {
                limit_bytes: l.output_bytes,
            }),
            Some(0) => None,
            code => {
                let code = code.unwrap_or(-1);
                Some(if oom_kills > 0 {
                    JobFailure::OutOfMemory {
                        limit_bytes: l.memory_bytes,
                    }
                } else if code == 128 + libc::SIGXCPU {
                    JobFailure::CpuTime
                } else if code == 128 + libc::SIGXFSZ {
                    JobFailure::FileSize
                } else if output_full {
                    JobFailure::OutputFull {
                        limit_bytes: l.output_bytes,
                    }
                } else if pids_hits > 0 {
                    JobFailure::PidsLimit { limit: l.pids }
                } else if code > 128 && code < 128 + 65 {
                    JobFailure::Signal { signal: code - 128 }
                } else {
                    JobFailure::ExitCode { code }
                })
            }
        }
    };
    match failure {
        None => JobStatus::Succeeded,
        Some(failure) => JobStatus::Failed { failure },
    }
}

fn job_name() -> String {
    let n = JOB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("vt-job-{}-{n}-{t:x}", std::process::id())
}

impl Sandbox for Bubblewrap {
    fn name(&self) -> &'static str {
        "bubblewrap"
    }

    fn facts(&self, cmd: &SandboxCommand, policy: &Policy) -> Result<PolicyFacts> {
        policy.validate()?;
        cmd.validate()?;
        let ids = resolve_identity(&policy.host_identity)?;
        let seccomp = policy
            .seccomp
            .then(SeccompProgram::default_profile)
            .transpose()?;
        let lay = layout(policy, cmd)?;
        let cgroups = CgroupHost::detect()?;
        facts_of(self, policy, cmd, &lay, ids, seccomp.as_ref(), &cgroups)
    }

    fn run_streaming(
        &self,
        cmd: &SandboxCommand,
        policy: &Policy,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Outcome> {
        policy.validate()?;
        cmd.validate()?;
        if sys::geteuid() != 0 {
            return Err(Error::NotPrivileged {
                what:
                    "root to create cgroups, mount the output tmpfs and switch to the service user"
                        .into(),
            });
        }
        let ids = resolve_identity(&policy.host_identity)?;
        if let Some(out) = &cmd.output {
            check_output_dir(out)?;
        }
        let seccomp = policy
            .seccomp
            .then(SeccompProgram::default_profile)
            .transpose()?;
        let lay = layout(policy, cmd)?;
        let cgroups = CgroupHost::detect()?;
        let facts = facts_of(self, policy, cmd, &lay, ids, seccomp.as_ref(), &cgroups)?;

        // What bwrap reads.
        let sources: Vec<(PathBuf, bool)> = cmd
            .binds
            .iter()
            .map(|b| check_source(&b.source, ids))
            .collect::<Result<_>>()?;
        let seccomp_fd: Option<OwnedFd> = seccomp
            .as_ref()
            .map(|p| sys::memfd_with(c"veritrain-seccomp", p.bytes()))
            .transpose()
            .map_err(|e| Error::io("creating the seccomp memfd", e))?;
        let (status_r, status_w) = sys::pipe().map_err(|e| Error::io("creating a pipe", e))?;

        // Per-job host state: staged binds, output tmpfs, cgroups. All clean
        // up on drop if anything below fails.
        let name = job_name();
        let mut staging = Staging::create(&self.work_dir, &name)?;
        let bind_paths: Vec<String> = sources
            .iter()
            .enumerate()
            .map(|(i, (src, is_dir))| staging.bind(i, src, *is_dir))
            .collect::<Result<_>>()?;
        let output_path = match &cmd.output {
            Some(_) => Some(
                staging
                    .mount_output(
                        policy.limits.output_bytes,
                        policy.limits.output_inodes,
                        ids.0,
                        ids.1,
                    )?
                    .path()
                    .to_string_lossy()
                    .into_owned(),
            ),
            None => None,
        };
        let job = cgroups.create(&policy.cgroup_parent, &name, &policy.limits)?;
        let procs = job.procs_files()?;

        let fds = Fds {
            seccomp: seccomp_fd.as_ref().map(AsRawFd::as_raw_fd),
            binds: bind_paths,
            output: output_path,
            status: status_w.as_raw_fd(),
        };
        let args = bwrap_args(policy, cmd, &lay, &fds);
        let mut arg_bytes = Vec::new();
        for a in &args {
            arg_bytes.extend_from_slice(a.as_bytes());
            arg_bytes.push(0);
        }
        let args_fd = sys::memfd_with(c"veritrain-bwrap-args", &arg_bytes)
            .map_err(|e| Error::io("creating the arguments memfd", e))?;

        let mut inherit = vec![args_fd.as_raw_fd(), fds.status];
        inherit.extend(fds.seccomp);
        let setup = ChildSetup {
            cgroup_procs: procs.iter().map(AsRawFd::as_raw_fd).collect(),
            rlimits: rlimits(policy),
            uid: ids.0,
            gid: ids.1,
            parent_pid: std::process::id() as libc::pid_t,
            inherit_fds: inherit,
            cpu_affinity: policy
                .limits
                .cpu_affinity
                .as_deref()
                .map(sys::cpu_set)
                .transpose()
                .map_err(|e| Error::InvalidPolicy(e.to_string()))?,
        };

        let mut command = Command::new(&self.program);
        command
            .arg("--args")
            .arg(args_fd.as_raw_fd().to_string())
            .arg("--")
            .arg(&cmd.program)
            .args(&cmd.args)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child_setup = move || {
            // SAFETY: this closure runs in the forked child before exec, which
            // is exactly where `apply` must be called.
            unsafe { setup.apply() }
        };
        // SAFETY: `setup.apply` makes only async-signal-safe system calls on
        // data prepared before the fork, and allocates nothing.
        unsafe {
            command.pre_exec(child_setup);
        }
        sys::become_subreaper().map_err(|e| Error::io("PR_SET_CHILD_SUBREAPER", e))?;
        let start = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", self.program.display()), e))?;
        // The child has its copies; ours must close so EOF can come.
        drop(status_w);
        drop(args_fd);
        drop(seccomp_fd);
        drop(procs);

        let pidfd = match sys::pidfd_open(child.id()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::io("pidfd_open on the backend", e));
            }
        };
        let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
            (Some(o), Some(e)) => (o, e),
            _ => return Err(Error::io("capturing output", io::Error::other("no pipes"))),
        };
        let deadline = start + policy.limits.wall_time;
        let cap = policy.limits.capture_bytes;
        let cancel = cmd.cancel.as_ref();

        let (stdout_cap, stderr_cap, waited) = std::thread::scope(|s| {
            let err_thread = s.spawn(|| read_tail(stderr, cap));
            let job_ref = &job;
            let watchdog = s.spawn(move || -> Result<(ExitStatus, Ended, Duration, usize)> {
                let ended = loop {
                    if cancel.is_some_and(CancelToken::is_cancelled) {
                        break Ended::Cancelled;
                    }
                    // Wait in slices, so that a cancel is seen within
                    // CANCEL_POLL; the deadline is checked after each.
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let exited = sys::poll_readable(&pidfd, Some(remaining.min(CANCEL_POLL)))
                        .map_err(|e| Error::io("waiting for the backend", e))?;
                    if exited {
                        break Ended::Exited;
                    }
                    if Instant::now() >= deadline {
                        break Ended::Timeout;
                    }
                };
                if ended.killed() {
                    // The whole tree: the cgroup first (nothing can escape by
                    // forking), then bwrap itself.
                    let killed = job_ref.kill_all(KILL_TIMEOUT);
                    sys::pidfd_kill(&pidfd, libc::SIGKILL)
                        .map_err(|e| Error::io("killing the backend", e))?;
                    killed?;
                }
                let status = child
                    .wait()
                    .map_err(|e| Error::io("waiting for the backend", e))?;
                let wall = start.elapsed();
                // The pid namespace dies with its init (bwrap's init gets
                // SIGKILL when bwrap exits, and the kernel kills the rest of
                // the namespace); give it a moment, then count and kill
                // whatever is still in the cgroup.
                let leftover = if job_ref.wait_empty(TEARDOWN_GRACE) {
                    0
                } else {
                    job_ref.kill_all(KILL_TIMEOUT)?
                };
                Ok((status, ended, wall, leftover))
            });
            let out = read_lines(stdout, cap, policy.limits.max_line_bytes, on_line);
            let err = err_thread.join().unwrap_or_default();
            let waited = watchdog
                .join()
                .unwrap_or_else(|_| Err(Error::Cleanup("the watchdog thread panicked".into())));
            (out, err, waited)
        });
        let (status, ended, wall_time, leftover) = waited?;

        let mut status_bytes = Vec::new();
        let _ = File::from(status_r).read_to_end(&mut status_bytes);
        let (init_pid, json_exit) = parse_status(&status_bytes);
        let started = init_pid.is_some();
        if let Some(pid) = init_pid {
            // bwrap exits as soon as its init reports the job's status; the
            // init dies a moment later, orphaned, and is ours to reap.
            sys::reap_orphan(pid, TEARDOWN_GRACE);
        }
        let usage = job.stats();

        let output_report = match (staging.output(), &cmd.output) {
            (Some(m), Some(dest)) => Some(m.copy_out(dest)?),
            _ => None,
        };
        staging.finish()?;
        job.remove()?;

        let backend_signal = if ended.killed() {
            None
        } else {
            status.signal()
        };
        let exit_code = json_exit.or(status.code());
        // bwrap reports its own setup errors as "bwrap: ..." and exit 1 from
        // the process that later forks the job; the job is the third process
        // of the cgroup (bwrap, its init, the job), so a job cannot pass for
        // a setup failure by printing the same thing.
        let setup_failed = !ended.killed()
            && backend_signal.is_none()
            && (!started
                || (exit_code == Some(1)
                    && stderr_cap.bytes.starts_with(b"bwrap: ")
                    && usage.pids_peak.is_none_or(|p| p < 3)));
        if setup_failed {
            let text = stderr_cap.text();
            let cut = text.len().saturating_sub(SETUP_STDERR_BYTES);
            return Err(Error::SetupFailed {
                exit: status.to_string(),
                stderr: text.get(cut..).unwrap_or(&text).trim().to_owned(),
            });
        }
        let job_status = decide(
            policy,
            exit_code,
            backend_signal,
            ended,
            usage.oom_kills,
            usage.pids_limit_hits,
            output_report.as_ref().is_some_and(|r| r.full),
        );
        Ok(Outcome {
            job_id: name,
            status: job_status,
            exit_code: if ended.killed() { None } else { exit_code },
            timed_out: ended == Ended::Timeout,
            oom_killed: usage.oom_kills > 0,
            wall_time,
            usage,
            leftover_processes: leftover,
            stdout: stdout_cap,
            stderr: stderr_cap,
            output: output_report,
            facts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_streamed_cut_and_tailed() {
        let input = b"{\"epoch\":1}\nxx\r\nabcdefghij-long\nlast";
        let mut lines = Vec::new();
        let cap = read_lines(&input[..], 8, 5, &mut |l| lines.push(l.to_owned()));
        assert_eq!(lines, vec!["{\"epo", "xx", "abcde", "last"]);
        assert_eq!(cap.total_bytes, input.len() as u64);
        assert!(cap.truncated);
        assert_eq!(cap.bytes, b"ong\nlast".to_vec());
    }

    #[test]
    fn status_stream_is_parsed() {
        let s = br#"{ "child-pid": 12, "pid-namespace": 4 }
{ "exit-code": 3 }"#;
        assert_eq!(parse_status(s), (Some(12), Some(3)));
        assert_eq!(parse_status(b""), (None, None));
        assert_eq!(
            parse_status(b"{ \"child-pid\": 1 } garbage"),
            (Some(1), None)
        );
    }

    #[test]
    fn failure_reasons_have_a_priority() {
        let p = Policy::default();
        let f = |s: JobStatus| match s {
            JobStatus::Failed { failure } => failure.code(),
            JobStatus::Succeeded => "ok",
        };
        assert_eq!(
            f(decide(&p, Some(0), None, Ended::Exited, 0, 0, false)),
            "ok"
        );
        assert_eq!(
            f(decide(&p, None, None, Ended::Timeout, 1, 1, true)),
            "job.timeout"
        );
        assert_eq!(
            f(decide(&p, Some(137), None, Ended::Exited, 1, 0, false)),
            "job.out_of_memory"
        );
        assert_eq!(
            f(decide(&p, Some(152), None, Ended::Exited, 0, 0, false)),
            "job.cpu_time"
        );
        assert_eq!(
            f(decide(&p, Some(153), None, Ended::Exited, 0, 0, false)),
            "job.file_size"
        );
        assert_eq!(
            f(decide(&p, Some(1), None, Ended::Exited, 0, 0, true)),
            "job.output_full"
        );
        assert_eq!(
            f(decide(&p, Some(0), None, Ended::Exited, 0, 0, true)),
            "job.output_full"
        );
        assert_eq!(
            f(decide(&p, Some(1), None, Ended::Exited, 0, 3, false)),
            "job.pids_limit"
        );
        assert_eq!(
            f(decide(&p, Some(139), None, Ended::Exited, 0, 0, false)),
            "job.signal"
        );
        assert_eq!(
            f(decide(&p, Some(2), None, Ended::Exited, 0, 0, false)),
            "job.exit_code"
        );
        assert_eq!(
            f(decide(&p, None, Some(9), Ended::Exited, 0, 0, false)),
            "job.backend_killed"
        );
        // Killed on request: cancelled, whatever the dying tree left.
        assert_eq!(
            f(decide(&p, None, None, Ended::Cancelled, 1, 1, true)),
            "sandbox.cancelled"
        );
        // v2 oom.group: bwrap itself was killed with the job.
        assert_eq!(
            f(decide(&p, None, Some(9), Ended::Exited, 1, 0, false)),
            "job.out_of_memory"
        );
    }

    #[test]
    fn identity_is_never_root() {
        let e = resolve_identity(&HostIdentity::Ids { uid: 0, gid: 5 }).unwrap_err();
        assert_eq!(e.code(), "sandbox.service_user");
        let e = resolve_identity(&HostIdentity::User {
            name: "no-such-user-veritrain-x".into(),
        })
        .unwrap_err();
        assert_eq!(e.code(), "sandbox.service_user");
        assert_eq!(
            resolve_identity(&HostIdentity::Ids { uid: 7, gid: 7 }).unwrap(),
            (7, 7)
        );
    }

    #[test]
    fn arguments_carry_every_control() {
        let policy = Policy::default();
        let cmd = SandboxCommand::new("/opt/venv/bin/python")
            .arg("-I")
            .runtime("/srv/rt")
            .inputs("/srv/in")
            .output("/srv/out")
            .env("A", "b");
        let lay = layout(&policy, &cmd).unwrap();
        let fds = Fds {
            seccomp: Some(11),
            binds: vec!["/srv/rt".into(), "/srv/in".into()],
            output: Some("/run/x/out".into()),
            status: 15,
        };
        let a = bwrap_args(&policy, &cmd, &lay, &fds).join(" ");
        for needle in [
            "--unshare-all --unshare-user --unshare-cgroup --disable-userns",
            "--die-with-parent --new-session --cap-drop ALL",
            "--uid 1000 --gid 1000 --hostname sandbox",
            "--seccomp 11",
            "--ro-bind /usr /usr",
            "--proc /proc --dev /dev",
            "--size 1073741824 --tmpfs /tmp",
            "--size 268435456 --tmpfs /dev/shm",
            "--ro-bind /srv/rt /opt/venv --ro-bind /srv/in /in",
            "--bind /run/x/out /out",
            "--remount-ro / --clearenv",
            "--setenv A b",
            "--setenv PATH /opt/venv/bin:/usr/bin:/bin",
            "--chdir /tmp --json-status-fd 15",
        ] {
            assert!(a.contains(needle), "missing {needle:?} in {a}");
        }
        // The command is not among the options: bwrap takes it from argv.
        assert!(!a.contains("-I"));
    }
}
