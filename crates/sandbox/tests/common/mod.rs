//! Shared set-up of the sandbox's integration tests: the backends under test,
//! a job directory with world-readable inputs, runtime and code, and the
//! escape probe (`payloads/escape.py`) run inside the sandbox or bare.
#![allow(dead_code)]
// Test helpers: a panic here is a test failure, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tempfile::TempDir;
use veritrain_sandbox::{
    Bubblewrap, DEFAULT_SERVICE_USER, Outcome, Policy, Sandbox, SandboxCommand,
};

/// The interpreter for the probe, inside and outside the sandbox (it must
/// live under `/usr`, the only system directory bound in):
/// `$VERITRAIN_TEST_PYTHON`, default Debian's `/usr/bin/python3.11`.
pub fn python() -> String {
    std::env::var("VERITRAIN_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3.11".to_owned())
}

/// Tests that look for *any* process of the service uid take this lock for
/// writing; every other sandbox test holds it for reading.
static UID_SCAN: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    UID_SCAN.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    UID_SCAN.write().unwrap_or_else(|e| e.into_inner())
}

/// Skip with a message, or panic under `CI=true`.
pub fn require_or_skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}; under CI=true a missing component is a failure (run scripts/setup-deps)");
    }
    eprintln!("SKIPPED: {what}; run scripts/setup-deps as root to set it up");
}

/// The service user's host uid and gid.
pub fn service_ids() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id")
            .arg(flag)
            .arg(DEFAULT_SERVICE_USER)
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Every backend the suite runs against, or `None` (skipped) when this
/// host cannot run them: not root, no bubblewrap, no service user, no
/// python3.11.
pub fn backends() -> Option<Vec<Box<dyn Sandbox>>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        require_or_skip(
            "the sandbox tests need root (cgroups, tmpfs mounts, switching to the service user)",
        );
        return None;
    }
    if service_ids().is_none() {
        require_or_skip(&format!("service user {DEFAULT_SERVICE_USER} is missing"));
        return None;
    }
    if !Path::new(&python()).exists() {
        require_or_skip(&format!("{} is missing", python()));
        return None;
    }
    // `$VERITRAIN_BWRAP` overrides the bubblewrap binary (default
    // /usr/bin/bwrap).
    let bwrap = std::env::var("VERITRAIN_BWRAP")
        .unwrap_or_else(|_| veritrain_sandbox::DEFAULT_BWRAP.to_owned());
    match Bubblewrap::with_program(bwrap) {
        Ok(b) => Some(vec![Box::new(b)]),
        Err(e) => {
            require_or_skip(&format!("bubblewrap is not usable: {e}"));
            None
        }
    }
}

/// A job's host directories.
pub struct Job {
    pub root: TempDir,
    pub code: PathBuf,
    pub inputs: PathBuf,
    pub runtime: PathBuf,
    pub out: PathBuf,
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

impl Job {
    /// Inputs and runtime are world-writable on the host (0777 dirs, 0666
    /// files), so that only the read-only bind can stop a write.
    pub fn new() -> Job {
        let root = tempfile::tempdir().unwrap();
        chmod(root.path(), 0o755);
        let code = root.path().join("code");
        let inputs = root.path().join("inputs");
        let runtime = root.path().join("runtime");
        let out = root.path().join("out");
        for d in [&code, &inputs, &runtime, &out] {
            fs::create_dir(d).unwrap();
        }
        let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/payloads/escape.py");
        fs::copy(&probe, code.join("escape.py")).unwrap();
        chmod(&code.join("escape.py"), 0o666);
        chmod(&code, 0o777);
        fs::write(inputs.join("model.keras"), b"model bytes").unwrap();
        chmod(&inputs.join("model.keras"), 0o666);
        chmod(&inputs, 0o777);
        fs::write(runtime.join("site.py"), b"# runtime\n").unwrap();
        chmod(&runtime.join("site.py"), 0o666);
        chmod(&runtime, 0o777);
        chmod(&out, 0o755);
        Job {
            root,
            code,
            inputs,
            runtime,
            out,
        }
    }

    /// The probe command with the job's binds.
    pub fn probe(&self, args: &[&str]) -> SandboxCommand {
        SandboxCommand::new(python())
            .args(["-I", "/opt/app/escape.py"])
            .args(args.iter().copied())
            .code(&self.code)
            .inputs(&self.inputs)
            .runtime(&self.runtime)
            .output(&self.out)
            .env("IN_SANDBOX", "1")
    }

    /// Run the probe outside any sandbox (to show a control matters), as
    /// the service user or as root.
    pub fn bare(&self, args: &[&str], as_root: bool) -> (i32, Vec<Value>) {
        let mut c = Command::new(python());
        c.arg("-I").arg(self.code.join("escape.py")).args(args);
        c.env("IN_SANDBOX", "1");
        if !as_root {
            let (uid, gid) = service_ids().unwrap();
            c.uid(uid).gid(gid).current_dir("/");
        }
        let out: Output = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            parse_lines(&String::from_utf8_lossy(&out.stdout)),
        )
    }
}

pub fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The probe's JSON lines from an outcome.
pub fn lines(o: &Outcome) -> Vec<Value> {
    parse_lines(&o.stdout.text())
}

/// The line for `step`.
pub fn step<'a>(lines: &'a [Value], step: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["step"] == step)
        .unwrap_or_else(|| panic!("no line for step {step} in {lines:#?}"))
}

/// `step` was blocked with exactly `errno`.
#[track_caller]
pub fn assert_blocked(lines: &[Value], s: &str, errno: i64) {
    let l = step(lines, s);
    assert_eq!(l["result"], "blocked", "step {s}: {l}");
    assert_eq!(l["errno"], errno, "step {s}: {l}");
}

/// `step` succeeded (the probe would have escaped).
#[track_caller]
pub fn assert_escaped(lines: &[Value], s: &str) {
    let l = step(lines, s);
    assert_eq!(l["result"], "escaped", "step {s}: {l}");
}

/// Run and insist the job ran (Ok), printing stderr on surprise.
pub fn run(sb: &dyn Sandbox, cmd: &SandboxCommand, policy: &Policy) -> Outcome {
    match sb.run(cmd, policy) {
        Ok(o) => o,
        Err(e) => panic!("{}: {e}", e.code()),
    }
}

/// Host pids whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            found.push(pid);
        }
    }
    found
}

/// (pid, state, ppid, real uid) of every host process.
fn all_processes() -> Vec<(u32, String, u32, u32)> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_owned()
        };
        found.push((
            pid,
            field("State:"),
            field("PPid:").parse().unwrap_or(0),
            field("Uid:").parse().unwrap_or(u32::MAX),
        ));
    }
    found
}

/// Live (non-zombie) host processes owned by `uid` (real uid). Zombies are
/// dead: they run nothing, and one left by a killed *bare* control process
/// is the host init's to reap.
pub fn processes_of_uid(uid: u32) -> Vec<u32> {
    all_processes()
        .into_iter()
        .filter(|(_, state, _, u)| *u == uid && state != "Z")
        .map(|(pid, ..)| pid)
        .collect()
}

/// Zombie children of this test process (unreaped sandbox processes).
pub fn own_zombies() -> Vec<u32> {
    all_processes()
        .into_iter()
        .filter(|(_, state, ppid, _)| state == "Z" && *ppid == std::process::id())
        .map(|(pid, ..)| pid)
        .collect()
}

/// Directories named `name` under /sys/fs/cgroup (a job's cgroups).
pub fn cgroup_dirs_named(name: &str) -> Vec<String> {
    let out = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-name",
            name,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// After a job: nothing of it is left on the host.
#[track_caller]
pub fn assert_nothing_left(o: &Outcome) {
    assert!(
        cgroup_dirs_named(&o.job_id).is_empty(),
        "cgroups of {} remain",
        o.job_id
    );
    assert!(
        !Path::new(veritrain_sandbox::DEFAULT_WORK_DIR)
            .join(&o.job_id)
            .exists(),
        "output mount of {} remains",
        o.job_id
    );
}
