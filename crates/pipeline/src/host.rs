//! Facts about the machine a job ran on, for the AIBoM's training
//! environment: the OS, the kernel, the CPU model, and the cores and memory
//! **as the sandbox limited them** (not what the host has).

use std::num::NonZeroUsize;

use veritrain_bom::input::{Cpu, OperatingSystem};
use veritrain_sandbox::Policy;

/// The OS from `/etc/os-release` and the kernel release.
pub fn operating_system() -> OperatingSystem {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        release.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix('=')?;
            Some(value.trim_matches('"').to_owned())
        })
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    OperatingSystem {
        name: field("NAME").unwrap_or_else(|| std::env::consts::OS.to_owned()),
        version: field("VERSION_ID").unwrap_or_else(|| "unknown".to_owned()),
        kernel,
    }
}

/// The host's logical CPU count.
pub fn logical_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// The CPU model, and the cores the sandbox allowed: the CPU quota if one
/// is set, else the affinity set, else every logical CPU.
pub fn cpu(policy: &Policy) -> Cpu {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let host = logical_cpus();
    let limit = match (&policy.limits.cpu_quota_cores, &policy.limits.cpu_affinity) {
        (Some(q), _) => q.min(host as f64),
        (None, Some(set)) if !set.is_empty() => set.len().min(host) as f64,
        _ => host as f64,
    };
    Cpu {
        model,
        cores_limit: limit,
        host_logical_cpus: u32::try_from(host).ok(),
    }
}

/// Memory the sandbox allowed: its cgroup limit, else the host's memory.
pub fn memory_limit(policy: &Policy) -> u64 {
    policy.limits.memory_bytes.unwrap_or_else(host_memory)
}

fn host_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}
