//! Job cgroups. bubblewrap has no cgroup support, so the supervisor creates
//! one cgroup per job in every hierarchy it needs, writes the limits, and
//! the forked child joins them (by writing to `cgroup.procs` files the
//! parent opened) before it executes the backend. Everything the job starts
//! is therefore accounted, limited and killable as one unit.
//!
//! Both layouts are supported:
//!
//! * **cgroup v2** (one hierarchy): the job cgroup goes under the parent
//!   (default: the supervisor's own cgroup); the needed controllers are
//!   enabled in the parent's `cgroup.subtree_control`. If the parent is the
//!   supervisor's own cgroup and holds processes (the "no internal
//!   processes" rule makes that fail with `EBUSY`), the supervisor first
//!   moves that cgroup's processes into a leaf `veritrain-supervisor` below
//!   it. Kill: `cgroup.kill`.
//! * **cgroup v1 / hybrid** (one hierarchy per controller, plus possibly a
//!   controller-less v2 tree at `/sys/fs/cgroup/unified`): the job cgroup is
//!   created under the supervisor's own cgroup in the `memory`, `pids`,
//!   `cpu`, `cpuacct` and `freezer` hierarchies that exist, and in the v2
//!   tree when it is mounted (for `cgroup.kill`, `cpu.stat` and a
//!   process-tracking group that needs no controller). Kill without
//!   `cgroup.kill`: freeze (v1 freezer), SIGKILL every member, thaw, repeat.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::policy::{CgroupParent, Limits};
use crate::sys;

/// Leaf the supervisor moves itself into on cgroup v2 when its own cgroup
/// must hold only child cgroups.
const SUPERVISOR_LEAF: &str = "veritrain-supervisor";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Version {
    V1,
    V2,
}

#[derive(Debug, Clone)]
struct Hierarchy {
    version: Version,
    /// Where it is mounted.
    mount: PathBuf,
    /// The mount's root inside the hierarchy (from mountinfo).
    mount_root: String,
    /// v1: controllers of this hierarchy; v2: controllers available.
    controllers: Vec<String>,
    /// Our cgroup in this hierarchy (from /proc/self/cgroup).
    own: String,
}

impl Hierarchy {
    fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }

    /// Host directory of cgroup path `p` (absolute within the hierarchy).
    fn dir_of(&self, p: &str) -> Result<PathBuf> {
        let rel = if self.mount_root == "/" {
            p
        } else if p == self.mount_root {
            ""
        } else if let Some(r) = p.strip_prefix(self.mount_root.as_str())
            && r.starts_with('/')
        {
            r
        } else {
            return Err(Error::cgroup(
                &self.mount,
                format!("cgroup {p} is outside the mounted part {}", self.mount_root),
            ));
        };
        Ok(self.mount.join(rel.trim_start_matches('/')))
    }
}

/// The cgroup layout of this host as seen by the supervisor.
#[derive(Debug, Clone)]
pub(crate) struct CgroupHost {
    hierarchies: Vec<Hierarchy>,
}

/// Decode mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\'
            && let Some(oct) = b.get(i + 1..i + 4)
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = oct.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_string(path: &Path) -> io::Result<String> {
    let mut s = String::new();
    File::open(path)?.read_to_string(&mut s)?;
    Ok(s)
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::cgroup(path, format!("cannot open for writing: {e}")))?;
    f.write_all(value.as_bytes())
        .map_err(|e| Error::cgroup(path, format!("cannot write {value:?}: {e}")))
}

/// A `key value` line from a flat-keyed cgroup file.
fn keyed(path: &Path, key: &str) -> Option<u64> {
    let s = read_string(path).ok()?;
    s.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

fn single(path: &Path) -> Option<u64> {
    read_string(path).ok()?.trim().parse().ok()
}

impl CgroupHost {
    /// Read `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub(crate) fn detect() -> Result<Self> {
        let mountinfo = read_string(Path::new("/proc/self/mountinfo"))
            .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
        let own = read_string(Path::new("/proc/self/cgroup"))
            .map_err(|e| Error::io("reading /proc/self/cgroup", e))?;
        let host = Self::parse(&mountinfo, &own)?;
        if host.hierarchies.is_empty() {
            return Err(Error::cgroup(
                "/sys/fs/cgroup",
                "no cgroup hierarchy is mounted",
            ));
        }
        Ok(host)
    }

    fn parse(mountinfo: &str, own: &str) -> Result<Self> {
        let mut hierarchies = Vec::new();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (Some(root), Some(mount), Some(fstype), Some(opts)) =
                (pre.get(3), pre.get(4), post.first(), post.get(2))
            else {
                continue;
            };
            let version = match *fstype {
                "cgroup" => Version::V1,
                "cgroup2" => Version::V2,
                _ => continue,
            };
            let mount = PathBuf::from(unescape(mount));
            let controllers: Vec<String> = match version {
                Version::V1 => opts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"
                        ) && !o.contains('=')
                    })
                    .map(str::to_owned)
                    .collect(),
                Version::V2 => read_string(&mount.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            };
            // A hierarchy mounted twice: keep the first.
            if hierarchies.iter().any(|h: &Hierarchy| {
                h.version == version && h.controllers == controllers && version == Version::V1
            }) || (version == Version::V2
                && hierarchies
                    .iter()
                    .any(|h: &Hierarchy| h.version == Version::V2))
            {
                continue;
            }
            // Our own path in this hierarchy.
            let own_path = own.lines().find_map(|l| {
                let mut it = l.splitn(3, ':');
                let (id, ctrls, path) = (it.next()?, it.next()?, it.next()?);
                let matches = match version {
                    Version::V2 => id == "0" && ctrls.is_empty(),
                    Version::V1 => {
                        !ctrls.is_empty()
                            && ctrls.split(',').any(|c| controllers.iter().any(|x| x == c))
                    }
                };
                matches.then(|| path.to_owned())
            });
            let Some(own_path) = own_path else { continue };
            hierarchies.push(Hierarchy {
                version,
                mount,
                mount_root: unescape(root),
                controllers,
                own: own_path,
            });
        }
        Ok(CgroupHost { hierarchies })
    }

    fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.has(controller))
    }

    fn v2(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    /// The layout, for the facts.
    pub(crate) fn layout(&self) -> &'static str {
        let v1 = self.hierarchies.iter().any(|h| h.version == Version::V1);
        match (v1, self.v2().is_some()) {
            (true, true) => "hybrid",
            (true, false) => "v1",
            (false, true) => "v2",
            (false, false) => "none",
        }
    }

    /// Which controllers the job uses and in which hierarchy, without
    /// creating anything. A controller is used when its limit is set
    /// (`memory`, `pids`, `cpu`) or, on v1, for accounting and killing
    /// (`cpuacct`, `freezer`). v1 wins where a controller is bound to a v1
    /// hierarchy (hybrid hosts); on v2 it must be available in the parent
    /// cgroup's `cgroup.controllers`.
    fn plan(&self, limits: &Limits, parent: &CgroupParent) -> Result<Vec<(&'static str, Version)>> {
        let (v2_base, v2_available): (Option<PathBuf>, Vec<String>) = match self.v2() {
            Some(h) => {
                let dir = h.dir_of(&base_path(h, parent)).ok();
                let list = dir
                    .as_ref()
                    .and_then(|d| read_string(&d.join("cgroup.controllers")).ok())
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default();
                (dir, list)
            }
            None => (None, Vec::new()),
        };
        let wanted: [(&'static str, bool); 5] = [
            ("memory", limits.memory_bytes.is_some()),
            ("pids", limits.pids.is_some()),
            ("cpu", limits.cpu_quota_cores.is_some()),
            ("cpuacct", false),
            ("freezer", false),
        ];
        let mut plan = Vec::new();
        for (c, required) in wanted {
            let accounting = matches!(c, "cpuacct" | "freezer");
            if !required && !accounting {
                continue;
            }
            if self.v1(c).is_some() {
                plan.push((c, Version::V1));
            } else if required && v2_available.iter().any(|x| x == c) {
                plan.push((c, Version::V2));
            } else if required {
                let where_ = v2_base
                    .as_ref()
                    .map(|d| {
                        format!(
                            "{} lists [{}]",
                            d.join("cgroup.controllers").display(),
                            v2_available.join(" ")
                        )
                    })
                    .unwrap_or_else(|| "no cgroup v2 hierarchy is mounted".to_owned());
                return Err(Error::cgroup(
                    v2_base.unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup")),
                    format!(
                        "the {c} controller is not available (no v1 hierarchy has it; {where_}); \
                         delegate it to the worker's cgroup or set that limit to None"
                    ),
                ));
            }
        }
        Ok(plan)
    }

    /// How `limits` will be enforced, for the facts.
    pub(crate) fn facts(&self, limits: &Limits, parent: &CgroupParent) -> Result<CgroupFacts> {
        let mut controllers: Vec<(String, String)> = self
            .plan(limits, parent)?
            .into_iter()
            .map(|(c, v)| {
                let v = match v {
                    Version::V1 => "v1",
                    Version::V2 => "v2",
                };
                (c.to_owned(), v.to_owned())
            })
            .collect();
        controllers.sort();
        Ok(CgroupFacts {
            layout: self.layout().to_owned(),
            controllers,
            v2_tracking: self.v2().is_some(),
        })
    }

    /// Create the job cgroup `name` and write `limits`.
    pub(crate) fn create(
        &self,
        parent: &CgroupParent,
        name: &str,
        limits: &Limits,
    ) -> Result<JobCgroup> {
        let plan = self.plan(limits, parent)?;
        let mut job = JobCgroup { dirs: Vec::new() };
        // One directory per hierarchy used; v2 once, for all its controllers
        // and for kill/tracking.
        let v2_controllers: Vec<&'static str> = plan
            .iter()
            .filter(|(_, v)| *v == Version::V2)
            .map(|(c, _)| *c)
            .collect();
        if let Some(h) = self.v2() {
            let base = base_path(h, parent);
            let base_dir = h.dir_of(&base)?;
            ensure_parent(parent, &base_dir)?;
            if !v2_controllers.is_empty() {
                enable_v2_controllers(h, &base, &base_dir, &v2_controllers)?;
            }
            let dir = base_dir.join(name);
            make_dir(&dir)?;
            job.dirs.push(JobDir {
                version: Version::V2,
                path: dir,
                controllers: v2_controllers.clone(),
            });
        }
        for (c, v) in &plan {
            if *v != Version::V1 {
                continue;
            }
            let Some(h) = self.v1(c) else { continue };
            // Hierarchies with several controllers (cpu,cpuacct) get one dir.
            if let Some(d) = job
                .dirs
                .iter_mut()
                .find(|d| d.version == Version::V1 && d.path.starts_with(&h.mount))
            {
                d.controllers.push(c);
                continue;
            }
            let base = base_path(h, parent);
            let base_dir = h.dir_of(&base)?;
            ensure_parent(parent, &base_dir)?;
            let dir = base_dir.join(name);
            if let Err(e) = make_dir(&dir) {
                job.remove_dirs();
                return Err(e);
            }
            job.dirs.push(JobDir {
                version: Version::V1,
                path: dir,
                controllers: vec![c],
            });
        }
        if job.dirs.is_empty() {
            return Err(Error::cgroup(
                "/sys/fs/cgroup",
                "no hierarchy to track the job's processes",
            ));
        }
        if let Err(e) = job.write_limits(limits) {
            job.remove_dirs();
            return Err(e);
        }
        Ok(job)
    }
}

/// The cgroup path under which job cgroups go in hierarchy `h`.
fn base_path(h: &Hierarchy, parent: &CgroupParent) -> String {
    match parent {
        CgroupParent::Path { path } => path.clone(),
        CgroupParent::Own => {
            // After moving into our leaf, jobs stay siblings of the leaf.
            match h.own.rsplit_once('/') {
                Some((up, leaf)) if leaf == SUPERVISOR_LEAF && h.version == Version::V2 => {
                    if up.is_empty() {
                        "/".to_owned()
                    } else {
                        up.to_owned()
                    }
                }
                _ => h.own.clone(),
            }
        }
    }
}

/// An explicit parent is created if missing (it is kept afterwards).
fn ensure_parent(parent: &CgroupParent, dir: &Path) -> Result<()> {
    if matches!(parent, CgroupParent::Path { .. }) && !dir.is_dir() {
        fs::create_dir_all(dir).map_err(|e| Error::cgroup(dir, format!("cannot create: {e}")))?;
    }
    Ok(())
}

fn make_dir(dir: &Path) -> Result<()> {
    fs::create_dir(dir).map_err(|e| Error::cgroup(dir, format!("cannot create: {e}")))
}

fn enable_v2_controllers(
    h: &Hierarchy,
    base: &str,
    base_dir: &Path,
    wanted: &[&str],
) -> Result<()> {
    let ctl = base_dir.join("cgroup.subtree_control");
    let current = read_string(&ctl).map_err(|e| Error::cgroup(&ctl, e.to_string()))?;
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| !current.split_whitespace().any(|x| x == *c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let value = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    match write_file(&ctl, &value) {
        Ok(()) => Ok(()),
        Err(first) => {
            // "No internal processes": a cgroup that holds processes cannot
            // hand controllers to its children. If `base` is our own
            // cgroup, move its processes (this supervisor and whatever was
            // started with it, e.g. a container's init) into a leaf below
            // it, as container runtimes do, and try again.
            if h.own != base {
                return Err(first);
            }
            let leaf = base_dir.join(SUPERVISOR_LEAF);
            if !leaf.is_dir() {
                make_dir(&leaf)?;
            }
            let procs = base_dir.join("cgroup.procs");
            // Processes may fork while we move them: a few rounds.
            for _ in 0..10 {
                let pids = read_string(&procs).map_err(|e| Error::cgroup(&procs, e.to_string()))?;
                if pids.trim().is_empty() {
                    break;
                }
                for pid in pids.lines() {
                    // A process that exited meanwhile is not an error.
                    let _ = write_file(&leaf.join("cgroup.procs"), pid.trim());
                }
            }
            write_file(&ctl, &value).map_err(|e| {
                Error::cgroup(
                    &ctl,
                    format!(
                        "cannot enable {value} even after moving the processes of {} into {}: {e}; \
                         delegate a cgroup to the worker (e.g. systemd Delegate=yes) and set \
                         the policy's cgroup_parent",
                        base_dir.display(),
                        leaf.display()
                    ),
                )
            })
        }
    }
}

#[derive(Debug)]
struct JobDir {
    version: Version,
    path: PathBuf,
    controllers: Vec<&'static str>,
}

/// Resource use read from the job's cgroups after it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CgroupStats {
    /// Peak memory charged to the job (bytes), where the kernel reports it.
    pub memory_peak_bytes: Option<u64>,
    /// Processes the kernel's OOM killer killed in the job's cgroup.
    pub oom_kills: u64,
    /// Times a fork failed because the job hit its pids limit.
    pub pids_limit_hits: u64,
    /// Peak number of processes/threads, where the kernel reports it.
    pub pids_peak: Option<u64>,
    /// CPU time of the whole job (microseconds), where reported.
    pub cpu_usage_usec: Option<u64>,
}

/// How the job's cgroups are laid out, for the facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupFacts {
    /// `v1`, `v2` or `hybrid`.
    pub layout: String,
    /// (controller, `v1`/`v2`) for every controller used.
    pub controllers: Vec<(String, String)>,
    /// The v2 tree is used to track and kill the job (`cgroup.kill`).
    pub v2_tracking: bool,
}

/// One job's cgroups.
#[derive(Debug)]
pub(crate) struct JobCgroup {
    dirs: Vec<JobDir>,
}

impl JobCgroup {
    fn dir_for(&self, controller: &str) -> Option<&JobDir> {
        self.dirs
            .iter()
            .find(|d| d.controllers.contains(&controller))
    }

    fn v2_dir(&self) -> Option<&JobDir> {
        self.dirs.iter().find(|d| d.version == Version::V2)
    }

    fn write_limits(&self, limits: &Limits) -> Result<()> {
        if let (Some(bytes), Some(d)) = (limits.memory_bytes, self.dir_for("memory")) {
            match d.version {
                Version::V1 => {
                    write_file(&d.path.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    // No swap beyond the limit (memsw counts memory + swap).
                    let memsw = d.path.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write_file(&memsw, &bytes.to_string())?;
                    }
                }
                Version::V2 => {
                    write_file(&d.path.join("memory.max"), &bytes.to_string())?;
                    let swap = d.path.join("memory.swap.max");
                    if swap.exists() {
                        write_file(&swap, "0")?;
                    }
                    // An OOM kill takes the whole job, not one thread pool.
                    let group = d.path.join("memory.oom.group");
                    if group.exists() {
                        write_file(&group, "1")?;
                    }
                }
            }
        }
        if let (Some(n), Some(d)) = (limits.pids, self.dir_for("pids")) {
            write_file(&d.path.join("pids.max"), &n.to_string())?;
        }
        if let (Some(cores), Some(d)) = (limits.cpu_quota_cores, self.dir_for("cpu")) {
            let period: u64 = 100_000;
            let quota = ((cores * period as f64) as u64).max(1000);
            match d.version {
                Version::V1 => {
                    write_file(&d.path.join("cpu.cfs_period_us"), &period.to_string())?;
                    write_file(&d.path.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
                Version::V2 => write_file(&d.path.join("cpu.max"), &format!("{quota} {period}"))?,
            }
        }
        Ok(())
    }

    /// `cgroup.procs` of every job cgroup, opened for writing (the child
    /// writes "0" to each to join).
    pub(crate) fn procs_files(&self) -> Result<Vec<File>> {
        self.dirs
            .iter()
            .map(|d| {
                let p = d.path.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map_err(|e| Error::cgroup(&p, e.to_string()))
            })
            .collect()
    }

    /// Pids in any of the job's cgroups.
    pub(crate) fn members(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs
            .iter()
            .filter_map(|d| read_string(&d.path.join("cgroup.procs")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Wait up to `timeout` for the cgroup to empty by itself (a dying pid
    /// namespace takes a moment to reap its members). Returns whether it
    /// did.
    pub(crate) fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            if self.members().is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn freezer(&self) -> Option<&JobDir> {
        self.dir_for("freezer")
    }

    /// Kill every process of the job and wait until none is left. Returns
    /// how many were there when called.
    pub(crate) fn kill_all(&self, timeout: Duration) -> Result<usize> {
        let found = self.members().len();
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.members();
            if pids.is_empty() {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(Error::Cleanup(format!(
                    "processes {pids:?} of the job survived SIGKILL for {timeout:?}"
                )));
            }
            let killed_by_cgroup = self
                .v2_dir()
                .map(|d| d.path.join("cgroup.kill"))
                .filter(|p| p.exists())
                .is_some_and(|p| write_file(&p, "1").is_ok());
            if !killed_by_cgroup {
                // Freeze so that nothing forks between listing and killing.
                let frozen = self
                    .freezer()
                    .is_some_and(|f| write_file(&f.path.join("freezer.state"), "FROZEN").is_ok());
                for pid in self.members() {
                    sys::kill(pid, libc::SIGKILL)
                        .map_err(|e| Error::Cleanup(format!("kill {pid}: {e}")))?;
                }
                if frozen && let Some(f) = self.freezer() {
                    // Killed tasks only die once thawed.
                    write_file(&f.path.join("freezer.state"), "THAWED")?;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Resource use so far.
    pub(crate) fn stats(&self) -> CgroupStats {
        let mut s = CgroupStats::default();
        if let Some(d) = self.dir_for("memory") {
            match d.version {
                Version::V1 => {
                    s.memory_peak_bytes = single(&d.path.join("memory.max_usage_in_bytes"));
                    s.oom_kills =
                        keyed(&d.path.join("memory.oom_control"), "oom_kill").unwrap_or(0);
                }
                Version::V2 => {
                    s.memory_peak_bytes = single(&d.path.join("memory.peak"));
                    s.oom_kills = keyed(&d.path.join("memory.events"), "oom_kill").unwrap_or(0);
                }
            }
        }
        if let Some(d) = self.dir_for("pids") {
            s.pids_limit_hits = keyed(&d.path.join("pids.events"), "max").unwrap_or(0);
            s.pids_peak = single(&d.path.join("pids.peak"));
        }
        s.cpu_usage_usec = self
            .v2_dir()
            .and_then(|d| keyed(&d.path.join("cpu.stat"), "usage_usec"))
            .or_else(|| {
                self.dir_for("cpuacct")
                    .and_then(|d| single(&d.path.join("cpuacct.usage")))
                    .map(|ns| ns / 1000)
            });
        s
    }

    fn remove_dirs(&mut self) {
        self.dirs.retain(|d| fs::remove_dir(&d.path).is_err());
    }

    /// Remove the (empty) cgroups; retries briefly while the kernel
    /// finishes tearing down exited tasks.
    pub(crate) fn remove(mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.remove_dirs();
            if self.dirs.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let left: Vec<_> = self
                    .dirs
                    .iter()
                    .map(|d| d.path.display().to_string())
                    .collect();
                self.dirs.clear();
                return Err(Error::Cleanup(format!("cannot remove cgroups {left:?}")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for JobCgroup {
    fn drop(&mut self) {
        if !self.dirs.is_empty() {
            // Error paths: best effort, nothing may outlive the job.
            let _ = self.kill_all(Duration::from_secs(5));
            self.remove_dirs();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
31 25 0:29 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
32 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
33 25 0:31 / /sys/fs/cgroup/freezer rw,nosuid - cgroup cgroup rw,freezer
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/
";

    #[test]
    fn parses_a_hybrid_host() {
        let h = CgroupHost::parse(HYBRID_MOUNTINFO, HYBRID_SELF).unwrap();
        assert_eq!(h.layout(), "hybrid");
        let mem = h.v1("memory").unwrap();
        assert_eq!(mem.own, "/process_api/abc");
        assert_eq!(
            mem.dir_of(&mem.own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        let cpu = h.v1("cpuacct").unwrap();
        assert_eq!(cpu.mount, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(h.v1("cpu").is_some());
        assert!(h.v2().is_some());
        // name=systemd is not a controller.
        assert!(h.v1("systemd").is_none());
        let limits = Limits::default();
        let plan = h.plan(&limits, &CgroupParent::Own).unwrap();
        assert!(plan.contains(&("memory", Version::V1)));
        assert!(plan.contains(&("pids", Version::V1)));
        assert!(plan.contains(&("freezer", Version::V1)));
        // No CPU quota set: no cpu cgroup.
        assert!(!plan.iter().any(|(c, _)| *c == "cpu"));
    }

    #[test]
    fn parses_a_pure_v2_container_view() {
        let mi = "40 30 0:35 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let own = "0::/docker/abc/worker\n";
        let h = CgroupHost::parse(mi, own).unwrap();
        assert_eq!(h.layout(), "v2");
        let v2 = h.v2().unwrap();
        assert_eq!(
            v2.dir_of("/docker/abc/worker").unwrap(),
            Path::new("/sys/fs/cgroup/worker")
        );
        assert!(v2.dir_of("/elsewhere").is_err());
        // Without the controllers listed, memory/pids limits cannot be planned.
        assert_eq!(
            h.plan(&Limits::default(), &CgroupParent::Own)
                .unwrap_err()
                .code(),
            "sandbox.cgroup"
        );
        let none = Limits {
            memory_bytes: None,
            pids: None,
            ..Limits::default()
        };
        assert!(h.plan(&none, &CgroupParent::Own).unwrap().is_empty());
    }

    #[test]
    fn supervisor_leaf_keeps_jobs_as_siblings() {
        let h = Hierarchy {
            version: Version::V2,
            mount: "/sys/fs/cgroup".into(),
            mount_root: "/".into(),
            controllers: vec![],
            own: format!("/svc/{SUPERVISOR_LEAF}"),
        };
        assert_eq!(base_path(&h, &CgroupParent::Own), "/svc");
        let h = Hierarchy {
            own: format!("/{SUPERVISOR_LEAF}"),
            ..h
        };
        assert_eq!(base_path(&h, &CgroupParent::Own), "/");
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\04"), r"/a\04");
    }
}
