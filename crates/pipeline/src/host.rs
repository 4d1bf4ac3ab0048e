//! Facts about the machine a job ran on, for the AIBoM's training
//! environment: the OS, the kernel, the CPU model, the cores and memory
//! **as the sandbox limited them** (not what the host has), and the GPUs
//! the sandbox exposed. A fact the host does not give is left out, never
//! filled with a placeholder or a zero.

use std::num::NonZeroUsize;
use std::path::Path;
use std::process::{Command, Stdio};

use veritrain_bom::input::{Cpu, Gpu, OperatingSystem};
use veritrain_sandbox::Gpu as GpuPolicy;
use veritrain_sandbox::Policy;

/// The operator a job names as the AIBoM's supplier when none was
/// configured: the user running Veritrain on this host, as `USER@HOST`
/// (what is known, rather than an invented organization name). The user is
/// `$USER`, else the effective uid; the host is the kernel's host name.
pub fn local_operator() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            Some(format!("uid {}", uid.split_whitespace().nth(1)?))
        });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match (user, host) {
        (Some(u), Some(h)) => format!("{u}@{h}"),
        (Some(u), None) => u,
        (None, Some(h)) => format!("the operator of {h}"),
        (None, None) => "the local operator".to_owned(),
    }
}

/// The OS from `/etc/os-release` and the kernel release.
pub fn operating_system() -> OperatingSystem {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    os_from_release(&release, kernel)
}

/// The OS from the text of `os-release`: `NAME` (else the platform's OS
/// name) and `VERSION_ID` (left out when absent, as on rolling releases).
fn os_from_release(release: &str, kernel: Option<String>) -> OperatingSystem {
    let field = |key: &str| {
        release.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_owned())
        })
    };
    OperatingSystem {
        name: field("NAME")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| std::env::consts::OS.to_owned()),
        version: field("VERSION_ID").filter(|v| !v.is_empty()),
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

/// Memory the sandbox allowed: its cgroup limit, else the host's memory;
/// `None` when neither is known (never 0).
pub fn memory_limit(policy: &Policy) -> Option<u64> {
    policy.limits.memory_bytes.or_else(|| {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        mem_total(&info)
    })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        kib.checked_mul(1024).filter(|&b| b > 0)
    })
}

/// The GPUs the sandbox exposed: none unless the policy binds the NVIDIA
/// devices. Then `nvidia-smi` where it is installed (name, memory, driver),
/// else the driver's `/proc/driver/nvidia` files (name, driver).
pub fn gpus(policy: &Policy) -> Vec<Gpu> {
    match policy.gpu {
        GpuPolicy::None => Vec::new(),
        GpuPolicy::Nvidia { .. } => {
            let smi = Command::new("nvidia-smi")
                .args([
                    "--query-gpu=name,memory.total,driver_version",
                    "--format=csv,noheader,nounits",
                ])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)))
                .unwrap_or_default();
            if smi.is_empty() {
                proc_nvidia_gpus(Path::new("/proc/driver/nvidia"))
            } else {
                smi
            }
        }
    }
}

/// `nvidia-smi --query-gpu=name,memory.total,driver_version
/// --format=csv,noheader,nounits`: one line per GPU, memory in MiB.
fn parse_nvidia_smi(out: &str) -> Vec<Gpu> {
    out.lines()
        .filter_map(|line| {
            let mut cols = line.split(',').map(str::trim);
            let name = cols.next().filter(|n| !n.is_empty())?;
            let memory_bytes = cols
                .next()
                .and_then(|m| m.parse::<u64>().ok())
                .and_then(|mib| mib.checked_mul(1 << 20));
            let driver_version = cols
                .next()
                .filter(|d| !d.is_empty() && !d.starts_with('['))
                .map(str::to_owned);
            Some(Gpu {
                name: name.to_owned(),
                memory_bytes,
                driver_version,
            })
        })
        .collect()
}

/// The GPUs under `/proc/driver/nvidia` (`gpus/<bus id>/information`, in
/// bus order) with the driver version from its `version` file.
fn proc_nvidia_gpus(root: &Path) -> Vec<Gpu> {
    let driver = std::fs::read_to_string(root.join("version"))
        .ok()
        .and_then(|v| nvidia_driver_version(&v));
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("gpus"))
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.iter()
        .filter_map(|d| std::fs::read_to_string(d.join("information")).ok())
        .filter_map(|info| {
            Some(Gpu {
                name: nvidia_model(&info)?,
                memory_bytes: None,
                driver_version: driver.clone(),
            })
        })
        .collect()
}

/// `Model: NVIDIA H100 80GB HBM3` from a GPU's `information` file.
fn nvidia_model(information: &str) -> Option<String> {
    information.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        let v = v.trim();
        (k.trim() == "Model" && !v.is_empty()).then(|| v.to_owned())
    })
}

/// The version in `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15
/// Tue Mar  5 ...`: the first word after `Kernel Module` that starts with a
/// digit (the open modules write `Open Kernel Module for x86_64  550.54.15`).
fn nvidia_driver_version(version: &str) -> Option<String> {
    let line = version.lines().find(|l| l.starts_with("NVRM version:"))?;
    let (_, rest) = line.split_once("Kernel Module")?;
    rest.split_whitespace()
        .find(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_local_operator_names_the_user_and_host() {
        let name = super::local_operator();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert!(name.ends_with(host.trim()), "{name}");
        assert!(!name.starts_with('@'), "{name}");
    }

    use super::*;

    #[test]
    fn os_release_without_a_version_leaves_it_out() {
        let os = os_from_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
            Some("6.1.0".into()),
        );
        assert_eq!(os.name, "Debian GNU/Linux");
        assert_eq!(os.version.as_deref(), Some("12"));
        let os = os_from_release("NAME=\"Arch Linux\"\nID=arch\n", None);
        assert_eq!(os.name, "Arch Linux");
        assert_eq!(os.version, None);
        let os = os_from_release("", None);
        assert_eq!(os.name, std::env::consts::OS);
        assert_eq!(os.version, None);
    }

    #[test]
    fn memory_is_the_sandbox_limit_else_memtotal_never_zero() {
        let mut policy = Policy::for_testing();
        assert_eq!(memory_limit(&policy), Some(512 << 20));
        assert_eq!(
            mem_total("MemTotal:       16318480 kB\nMemFree: 1 kB\n"),
            Some(16_318_480 * 1024)
        );
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: 0 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots\n"), None);
        policy.limits.memory_bytes = None;
        assert_ne!(memory_limit(&policy), Some(0));
    }

    #[test]
    fn nvidia_smi_csv_is_parsed_per_gpu() {
        let out = "NVIDIA H100 80GB HBM3, 81559, 550.54.15\nNVIDIA L4, 23034, [N/A]\n\n";
        assert_eq!(
            parse_nvidia_smi(out),
            vec![
                Gpu {
                    name: "NVIDIA H100 80GB HBM3".into(),
                    memory_bytes: Some(81559 << 20),
                    driver_version: Some("550.54.15".into()),
                },
                Gpu {
                    name: "NVIDIA L4".into(),
                    memory_bytes: Some(23034 << 20),
                    driver_version: None,
                },
            ]
        );
        assert_eq!(parse_nvidia_smi(""), Vec::<Gpu>::new());
    }

    #[test]
    fn proc_driver_nvidia_files_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("gpus/0000:00:07.0")).unwrap();
        std::fs::create_dir_all(root.join("gpus/0000:00:08.0")).unwrap();
        let info = |model: &str| {
            format!(
                "Model: \t\t {model}\nIRQ:   \t\t 0\nGPU UUID: \t GPU-1b2c\n\
                 Video BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\n\
                 Bus Location: \t 0000:00:07.0\nDevice Minor: \t 0\nGPU Excluded:\t No\n"
            )
        };
        std::fs::write(
            root.join("gpus/0000:00:08.0/information"),
            info("NVIDIA L4"),
        )
        .unwrap();
        std::fs::write(
            root.join("gpus/0000:00:07.0/information"),
            info("NVIDIA H100 80GB HBM3"),
        )
        .unwrap();
        std::fs::write(
            root.join("version"),
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  \
             Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:15:33 UTC 2024\n\
             GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
        )
        .unwrap();
        let gpus = proc_nvidia_gpus(root);
        let names: Vec<&str> = gpus.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["NVIDIA H100 80GB HBM3", "NVIDIA L4"]);
        assert!(gpus.iter().all(|g| g.memory_bytes.is_none()));
        assert!(
            gpus.iter()
                .all(|g| g.driver_version.as_deref() == Some("550.54.15"))
        );
        // The open modules put "for x86_64" between "Kernel Module" and
        // the version; the version is the first word that is one.
        assert_eq!(
            nvidia_driver_version(
                "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n"
            )
            .as_deref(),
            Some("535.183.01")
        );
        assert!(proc_nvidia_gpus(&root.join("missing")).is_empty());
    }

    #[test]
    fn no_gpu_policy_reports_no_gpu() {
        assert!(gpus(&Policy::for_testing()).is_empty());
    }
}
