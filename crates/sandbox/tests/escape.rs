//! The escape test suite: a hostile payload (`payloads/escape.py`) run
//! inside the sandbox must fail at each way out, with the exact errno of the
//! control that stops it, while the supervisor stays healthy and reports a
//! clear failure reason. Where it is cheap, the same probe is also run with
//! the control loosened (or outside the sandbox) to show that it would have
//! succeeded: each test can fail.
//!
//! Runs against every backend from `common::backends()`. Needs root, the
//! service user and bubblewrap (`scripts/setup-deps`); skips locally and
//! fails under `CI=true` without them.

// Test code: a panic is a test failure, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use veritrain_sandbox::{
    CancelToken, Gpu, JobFailure, Policy, Sandbox, SandboxCommand, SeccompProgram,
};

const EPERM: i64 = 1;
const ENOENT: i64 = 2;
const EAGAIN: i64 = 11;
const EINVAL: i64 = 22;
const EFBIG: i64 = 27;
const ENOSPC: i64 = 28;
const EROFS: i64 = 30;
const ENOSYS: i64 = 38;
const ENETUNREACH: i64 = 101;
const ECONNREFUSED: i64 = 111;

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `/bin/true` still runs: the supervisor is healthy after a hostile job.
fn assert_healthy(sb: &dyn Sandbox) {
    let o = run(
        sb,
        &SandboxCommand::new("/bin/true"),
        &Policy::for_testing(),
    );
    assert!(o.success(), "{:?}", o.status);
    assert_nothing_left(&o);
}

// --- network ------------------------------------------------------------------

#[test]
fn tcp_listener_on_host_loopback_is_unreachable() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    for sb in &backends {
        let job = Job::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&["tcp", &port]),
            &Policy::for_testing(),
        );
        assert_blocked(&lines(&o), "connect", ECONNREFUSED);
        assert_eq!(o.exit_code, Some(0));
        // Nothing reached the host listener.
        assert!(listener.accept().is_err());
        assert_nothing_left(&o);
    }
    // Control: outside the sandbox the same probe connects.
    let job = Job::new();
    let (code, l) = job.bare(&["tcp", &port], false);
    assert_eq!(code, 3);
    assert_escaped(&l, "connect");
    assert!(listener.accept().is_ok());
}

#[test]
fn udp_listener_on_host_loopback_gets_nothing() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let echo = sock.try_clone().unwrap();
    echo.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (r, s) = (received.clone(), stop.clone());
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, from)) = echo.recv_from(&mut buf) {
                r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = echo.send_to(&buf[..n], from);
            }
        }
    });
    for sb in &backends {
        let job = Job::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&["udp", &port]),
            &Policy::for_testing(),
        );
        // The sandbox's own loopback answers "port unreachable".
        assert_blocked(&lines(&o), "echo", ECONNREFUSED);
        assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
    // Control: outside, the echo comes back.
    let job = Job::new();
    let (code, l) = job.bare(&["udp", &port], false);
    assert_eq!(code, 3, "{l:?}");
    assert_escaped(&l, "echo");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), 1);
}

/// Whether the host has a default IPv4 route.
fn host_has_default_route() -> bool {
    fs::read_to_string("/proc/net/route")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
}

#[test]
fn dns_and_every_route_out_are_absent() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(sb.as_ref(), &job.probe(&["dns"]), &Policy::for_testing());
        let l = lines(&o);
        // getaddrinfo fails (EAI_* codes are negative) ...
        let g = step(&l, "getaddrinfo");
        assert_eq!(g["result"], "blocked", "{g}");
        assert!(g["errno"].as_i64().unwrap() < 0, "{g}");
        // ... because there is no route anywhere and no resolver config.
        assert_blocked(&l, "route_8.8.8.8", ENETUNREACH);
        assert_blocked(&l, "resolv.conf", ENOENT);
    }
    // Control: the host itself has a route out (when it has one).
    if host_has_default_route() {
        let job = Job::new();
        let (_, l) = job.bare(&["dns"], false);
        assert_escaped(&l, "route_8.8.8.8");
    } else {
        eprintln!("note: host has no default route; the route control is not shown");
    }
}

#[test]
fn abstract_unix_socket_of_host_is_unreachable() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let name = unique("veritrain-escape");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    for sb in &backends {
        let job = Job::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&["abstract", &name]),
            &Policy::for_testing(),
        );
        assert_blocked(&lines(&o), "connect", ECONNREFUSED);
        assert!(listener.accept().is_err());
    }
    let job = Job::new();
    let (code, l) = job.bare(&["abstract", &name], false);
    assert_eq!(code, 3);
    assert_escaped(&l, "connect");
}

// --- secrets ------------------------------------------------------------------

/// A "signing key" outside every bind.
fn signing_key() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let marker = unique("SECRET-SIGNING-KEY");
    let key = dir.path().join("signing.key");
    fs::write(&key, format!("-----BEGIN PRIVATE KEY----- {marker}\n")).unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    (dir, key, marker)
}

#[test]
fn signing_key_outside_the_binds_is_invisible() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let (dir, key, _) = signing_key();
    let key_s = key.to_str().unwrap();
    for sb in &backends {
        let job = Job::new();
        let probe = job.probe(&[
            "read",
            key_s,
            "/root/.ssh/id_rsa",
            "/proc/1/root/etc/passwd",
        ]);
        let o = run(sb.as_ref(), &probe, &Policy::for_testing());
        let l = lines(&o);
        assert_blocked(&l, key_s, ENOENT);
        assert_blocked(&l, "/root/.ssh/id_rsa", ENOENT);
        // pid 1 is the sandbox's own init: its root is the sandbox's.
        assert_blocked(&l, "/proc/1/root/etc/passwd", ENOENT);
        assert_eq!(o.exit_code, Some(0));

        // Loosened: the same key bound in as an input is read.
        let job = Job::new();
        let cmd = SandboxCommand::new(python())
            .args(["-I", "/opt/app/escape.py", "read", "/keys/signing.key"])
            .code(&job.code)
            .bind(veritrain_sandbox::BindRole::Inputs, dir.path(), "/keys");
        let o = run(sb.as_ref(), &cmd, &Policy::for_testing());
        assert_escaped(&lines(&o), "/keys/signing.key");
    }
}

#[test]
fn descriptors_held_by_the_worker_do_not_reach_the_job() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let (_dir, key, marker) = signing_key();
    // The worker holds the key open *without* close-on-exec, as a careless
    // worker (or one that inherited it) might.
    let f = fs::File::open(&key).unwrap();
    // SAFETY: F_SETFD with 0 on a descriptor we own clears FD_CLOEXEC.
    assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFD, 0) }, 0);
    for sb in &backends {
        let job = Job::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&["fds", &marker]),
            &Policy::for_testing(),
        );
        let l = lines(&o);
        let s = step(&l, "inherited");
        assert_eq!(s["result"], "blocked", "{l:?}");
        assert_eq!(s["extra"], serde_json::json!([]), "descriptors leaked: {s}");
    }
    // Control: a plain child process inherits it and reads the key.
    let job = Job::new();
    let (code, l) = job.bare(&["fds", &marker], true);
    assert_eq!(code, 3, "{l:?}");
    drop(f);
}

#[test]
fn worker_environment_is_not_visible() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let marker = unique("WORKER-SECRET");
    // SAFETY: set once with a name no other test reads or writes.
    unsafe { std::env::set_var("VERITRAIN_TEST_DB_PASSWORD", &marker) };
    for sb in &backends {
        let job = Job::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&["env", &marker]),
            &Policy::for_testing(),
        );
        let l = lines(&o);
        let s = step(&l, "secret");
        assert_eq!(s["result"], "blocked", "{s}");
        // Exactly what the sandbox sets, plus bwrap's PWD.
        assert_eq!(
            s["names"],
            serde_json::json!(["HOME", "IN_SANDBOX", "LANG", "PATH", "PWD", "TMPDIR"]),
        );
        // Loosened: passed on purpose, it is visible.
        let job = Job::new();
        let cmd = job.probe(&["env", &marker]).env("LEAKED", &marker);
        let o = run(sb.as_ref(), &cmd, &Policy::for_testing());
        assert_escaped(&lines(&o), "secret");
    }
}

#[test]
fn etc_shadow_and_host_homes_are_absent() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&[
                "read",
                "/etc/shadow",
                "/etc/passwd",
                "/home",
                "/sys/kernel/notes",
            ]),
            &Policy::for_testing(),
        );
        let l = lines(&o);
        assert_blocked(&l, "/etc/shadow", ENOENT);
        assert_blocked(&l, "/etc/passwd", ENOENT);
        assert_blocked(&l, "/home", ENOENT);
        assert_blocked(&l, "/sys/kernel/notes", ENOENT);
    }
    // Control: the host's root reads it.
    let job = Job::new();
    let (_, l) = job.bare(&["read", "/etc/shadow"], true);
    assert_escaped(&l, "/etc/shadow");
}

// --- filesystem ---------------------------------------------------------------

#[test]
fn inputs_runtime_and_code_are_read_only() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let dirs = ["/in", "/opt/venv", "/opt/app", "/usr/bin", "/", "/etc"];
    for sb in &backends {
        let job = Job::new();
        let before = fs::read(job.inputs.join("model.keras")).unwrap();
        let mut args = vec!["write"];
        args.extend(dirs);
        let o = run(sb.as_ref(), &job.probe(&args), &Policy::for_testing());
        let l = lines(&o);
        for d in ["/in", "/opt/venv", "/opt/app"] {
            // The host files are world-writable: only the read-only bind
            // stops these.
            for op in ["append", "create", "mkdir", "chmod", "rename", "unlink"] {
                assert_blocked(&l, &format!("{d}:{op}"), EROFS);
            }
        }
        for d in ["/usr/bin", "/", "/etc"] {
            assert_blocked(&l, &format!("{d}:create"), EROFS);
        }
        assert_eq!(fs::read(job.inputs.join("model.keras")).unwrap(), before);
        assert_eq!(fs::read_dir(&job.inputs).unwrap().count(), 1);
        assert_eq!(fs::read_dir(&job.runtime).unwrap().count(), 1);
    }
    // Control: on the host, the service user can write these files.
    let job = Job::new();
    let inputs = job.inputs.to_str().unwrap().to_owned();
    let (code, l) = job.bare(&["write", &inputs], false);
    assert_eq!(code, 3);
    assert_escaped(&l, &format!("{inputs}:append"));
    assert_escaped(&l, &format!("{inputs}:create"));
}

#[test]
fn output_links_and_special_files_are_not_copied() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(sb.as_ref(), &job.probe(&["links"]), &Policy::for_testing());
        assert!(o.success(), "{:?} {}", o.status, o.stderr.text());
        let rep = o.output.as_ref().unwrap();
        let mut refused: Vec<_> = rep
            .refused
            .iter()
            .map(|r| (r.path.as_str(), r.reason))
            .collect();
        refused.sort();
        assert_eq!(
            refused,
            vec![
                ("fifo", "special_file"),
                ("model.keras", "symlink"),
                ("root", "symlink")
            ]
        );
        assert!(fs::symlink_metadata(job.out.join("model.keras")).is_err());
        assert!(fs::symlink_metadata(job.out.join("root")).is_err());
        assert_eq!(
            fs::read_to_string(job.out.join("sub/ok.txt")).unwrap(),
            "regular output\n"
        );
        let meta = fs::metadata(job.out.join("metrics.json")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            0o755,
            "setuid/setgid bits must be dropped"
        );
        assert_eq!((rep.files, rep.dirs), (2, 1));
        assert_nothing_left(&o);
    }
}

// --- privileges ---------------------------------------------------------------

#[test]
fn ptrace_is_denied() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(sb.as_ref(), &job.probe(&["ptrace"]), &Policy::for_testing());
        let l = lines(&o);
        assert_blocked(&l, "traceme", EPERM);
        assert_blocked(&l, "attach_pid1", EPERM);
        assert_blocked(&l, "process_vm_readv", EPERM);
        // Loosened: without seccomp, PTRACE_TRACEME needs no privilege.
        let mut p = Policy::for_testing();
        p.seccomp = false;
        let o = run(sb.as_ref(), &job.probe(&["ptrace"]), &p);
        assert_escaped(&lines(&o), "traceme");
    }
}

#[test]
fn mount_is_denied() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(sb.as_ref(), &job.probe(&["mount"]), &Policy::for_testing());
        let l = lines(&o);
        assert_blocked(&l, "tmpfs_on_tmp", EPERM);
        assert_blocked(&l, "umount_usr", EPERM);
        assert_blocked(&l, "userns_then_mount", EPERM);
        // Loosened: with nested user namespaces allowed and no seccomp, a
        // job gets CAP_SYS_ADMIN in a namespace of its own and mounts.
        let mut p = Policy::for_testing();
        p.seccomp = false;
        p.disable_nested_userns = false;
        let o = run(sb.as_ref(), &job.probe(&["mount"]), &p);
        let l = lines(&o);
        assert_escaped(&l, "userns_then_mount");
        // Even then, the sandbox's own mounts stay out of reach.
        assert_blocked(&l, "tmpfs_on_tmp", EPERM);
    }
}

#[test]
fn setuid_root_is_impossible() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(sb.as_ref(), &job.probe(&["setuid"]), &Policy::for_testing());
        let l = lines(&o);
        // uid 0 does not exist in the sandbox's user namespace.
        assert_blocked(&l, "setuid0", EINVAL);
        assert_blocked(&l, "setgid0", EINVAL);
    }
    // Control: on the host, root "becomes" root; the service user gets EPERM
    // (a different errno: the test tells the controls apart).
    let job = Job::new();
    let (_, l) = job.bare(&["setuid"], true);
    assert_escaped(&l, "setuid0");
    let (_, l) = job.bare(&["setuid"], false);
    assert_blocked(&l, "setuid0", EPERM);
}

#[test]
fn user_namespaces_cannot_be_created() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(sb.as_ref(), &job.probe(&["userns"]), &Policy::for_testing());
        let l = lines(&o);
        // Seccomp: unshare and clone(CLONE_NEWUSER) are denied.
        assert_blocked(&l, "unshare", EPERM);
        assert_blocked(&l, "unshare_net", EPERM);
        assert_blocked(&l, "clone_newuser", EPERM);

        // Second layer: without seccomp, --disable-userns still refuses
        // (the user-namespace count limit inside is 0: ENOSPC).
        let mut p = Policy::for_testing();
        p.seccomp = false;
        let o = run(sb.as_ref(), &job.probe(&["userns"]), &p);
        let l = lines(&o);
        assert_blocked(&l, "unshare", ENOSPC);
        assert_blocked(&l, "clone_newuser", ENOSPC);

        // Both off: a user namespace is created.
        p.disable_nested_userns = false;
        let o = run(sb.as_ref(), &job.probe(&["userns"]), &p);
        let l = lines(&o);
        assert_escaped(&l, "unshare");
        assert_escaped(&l, "clone_newuser");
    }
}

#[test]
fn seccomp_denies_kernel_attack_surface() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&["seccomp"]),
            &Policy::for_testing(),
        );
        let l = lines(&o);
        assert_blocked(&l, "keyctl", EPERM);
        assert_blocked(&l, "io_uring_setup", EPERM);
        assert_blocked(&l, "userfaultfd", EPERM);
        // clone3 is ENOSYS so that libc falls back to clone, whose flags the
        // filter can see.
        assert_blocked(&l, "clone3", ENOSYS);
        assert_eq!(step(&l, "status")["mode"], "2", "seccomp filter mode");

        // Loosened: without the filter these calls reach the kernel.
        let mut p = Policy::for_testing();
        p.seccomp = false;
        let o = run(sb.as_ref(), &job.probe(&["seccomp"]), &p);
        let l = lines(&o);
        assert_escaped(&l, "keyctl");
        assert_blocked(&l, "clone3", EINVAL);
        assert_eq!(step(&l, "status")["mode"], "0");
        if fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .map(|s| s.trim() == "0")
            .unwrap_or(true)
        {
            assert_escaped(&l, "io_uring_setup");
        }
    }
}

// --- resources ----------------------------------------------------------------

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let p = Policy::for_testing();
        let limit = p.limits.pids.unwrap();
        let o = run(sb.as_ref(), &job.probe(&["forkbomb", "5000"]), &p);
        let l = lines(&o);
        assert_blocked(&l, "fork", EAGAIN);
        let children = step(&l, "fork")["children"].as_u64().unwrap();
        // bwrap, its init and the probe count against the limit too.
        assert!(
            children < limit && children + 10 > limit,
            "{children} of {limit}"
        );
        assert!(o.usage.pids_limit_hits > 0);
        assert_eq!(o.leftover_processes, 0);
        assert_nothing_left(&o);
        assert_healthy(sb.as_ref());

        // Loosened: no pids limit, 150 children fork fine.
        let mut p = Policy::for_testing();
        p.limits.pids = None;
        let o = run(sb.as_ref(), &job.probe(&["forkbomb", "150"]), &p);
        let l = lines(&o);
        assert_escaped(&l, "fork");
        assert_eq!(step(&l, "fork")["children"], 150);
    }
}

#[test]
fn memory_bomb_is_oom_killed() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let mut p = Policy::for_testing();
        p.limits.memory_bytes = Some(192 << 20);
        let o = run(sb.as_ref(), &job.probe(&["membomb", "4096"]), &p);
        assert!(o.oom_killed, "{:?}", o.usage);
        assert_eq!(
            o.failure(),
            Some(&JobFailure::OutOfMemory {
                limit_bytes: Some(192 << 20)
            })
        );
        assert_eq!(o.failure().unwrap().code(), "job.out_of_memory");
        // 137 = SIGKILL; none when cgroup v2's memory.oom.group also killed
        // bwrap.
        assert!(matches!(o.exit_code, Some(137) | None), "{:?}", o.exit_code);
        // It got close to, never past, the limit.
        let held = lines(&o)
            .iter()
            .filter_map(|v| v["held_mib"].as_u64())
            .max()
            .unwrap_or(0);
        assert!(held < 192, "held {held} MiB");
        assert!(o.usage.memory_peak_bytes.unwrap() <= 192 << 20);
        assert_nothing_left(&o);
        assert_healthy(sb.as_ref());

        // Loosened: with room for it, the same allocation completes.
        let mut p = Policy::for_testing();
        p.limits.memory_bytes = Some(1 << 30);
        let o = run(sb.as_ref(), &job.probe(&["membomb", "256"]), &p);
        assert_escaped(&lines(&o), "allocate");
        assert!(!o.oom_killed);
    }
}

#[test]
fn filling_the_output_stops_at_its_cap() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let p = Policy::for_testing();
        let cap = p.limits.output_bytes;
        let o = run(sb.as_ref(), &job.probe(&["fill", "/out", "100000"]), &p);
        assert_blocked(&lines(&o), "/out", ENOSPC);
        // The job "succeeded", but its output is full: a failure with a reason.
        assert_eq!(o.exit_code, Some(0));
        assert_eq!(o.failure().unwrap().code(), "job.output_full");
        let rep = o.output.as_ref().unwrap();
        assert!(rep.full);
        assert!(
            rep.bytes <= cap && rep.bytes + (1 << 20) >= cap - (1 << 20),
            "{}",
            rep.bytes
        );
        let on_disk: u64 = fs::read_dir(&job.out)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(on_disk, rep.bytes);
        assert_nothing_left(&o);

        // Loosened: a larger cap takes the same 24 MiB.
        let job = Job::new();
        let mut p = Policy::for_testing();
        p.limits.output_bytes = 64 << 20;
        let o = run(sb.as_ref(), &job.probe(&["fill", "/out", "24"]), &p);
        assert_escaped(&lines(&o), "/out");
        assert_eq!(o.output.as_ref().unwrap().bytes, 24 << 20);
    }
}

#[test]
fn creating_files_stops_at_the_inode_cap() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let p = Policy::for_testing();
        let o = run(sb.as_ref(), &job.probe(&["inodes", "/out", "1000000"]), &p);
        let l = lines(&o);
        assert_blocked(&l, "/out", ENOSPC);
        let files = step(&l, "/out")["files"].as_u64().unwrap();
        assert!(files < p.limits.output_inodes, "{files}");
        assert_eq!(o.failure().unwrap().code(), "job.output_full");
    }
}

#[test]
fn filling_tmp_stops_at_its_cap() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let p = Policy::for_testing();
        let o = run(sb.as_ref(), &job.probe(&["fill", "/tmp", "100000"]), &p);
        let l = lines(&o);
        assert_blocked(&l, "/tmp", ENOSPC);
        let mib = step(&l, "/tmp")["written_mib"].as_u64().unwrap();
        assert!(mib <= p.limits.tmp_bytes >> 20, "{mib}");
        let o = run(sb.as_ref(), &job.probe(&["fill", "/dev/shm", "100000"]), &p);
        assert_blocked(&lines(&o), "/dev/shm", ENOSPC);

        let mut p = Policy::for_testing();
        p.limits.tmp_bytes = 64 << 20;
        let o = run(sb.as_ref(), &job.probe(&["fill", "/tmp", "24"]), &p);
        assert_escaped(&lines(&o), "/tmp");
    }
}

#[test]
fn one_file_stops_at_the_file_size_limit() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let mut p = Policy::for_testing();
        p.limits.file_size_bytes = Some(2 << 20);
        let o = run(sb.as_ref(), &job.probe(&["bigfile", "/tmp/big", "8"]), &p);
        let l = lines(&o);
        // Python ignores SIGXFSZ, so the write fails with EFBIG.
        assert_blocked(&l, "/tmp/big", EFBIG);
        assert_eq!(step(&l, "/tmp/big")["written_mib"], 2);

        p.limits.file_size_bytes = Some(16 << 20);
        let o = run(sb.as_ref(), &job.probe(&["bigfile", "/tmp/big", "8"]), &p);
        assert_escaped(&lines(&o), "/tmp/big");
    }
}

#[test]
fn timeout_kills_the_whole_tree() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let mut p = Policy::for_testing();
        p.limits.wall_time = Duration::from_secs(2);
        let started = Instant::now();
        let o = run(sb.as_ref(), &job.probe(&["sleep", "600", "5"]), &p);
        let took = started.elapsed();
        assert!(o.timed_out);
        assert_eq!(o.failure(), Some(&JobFailure::Timeout { limit_secs: 2 }));
        assert_eq!(o.failure().unwrap().code(), "job.timeout");
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(8),
            "{took:?}"
        );
        // It had started (the probe printed) and never finished.
        let l = lines(&o);
        assert!(l.iter().any(|v| v["started"] == true));
        assert!(!l.iter().any(|v| v["result"] == "escaped"));
        assert_nothing_left(&o);
        assert_healthy(sb.as_ref());

        // Loosened: a short sleep under a longer limit finishes.
        let mut p = Policy::for_testing();
        p.limits.wall_time = Duration::from_secs(30);
        let o = run(sb.as_ref(), &job.probe(&["sleep", "0.2", "2"]), &p);
        assert!(!o.timed_out);
        assert_escaped(&lines(&o), "finished");
    }
}

#[test]
fn cancel_kills_the_whole_tree() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let mut p = Policy::for_testing();
        p.limits.wall_time = Duration::from_secs(60);
        // A sleep no other test uses: its processes can be found on the host.
        let secs = format!("600.{}{}", std::process::id(), 11);
        let token = CancelToken::new();
        let cmd = job.probe(&["sleep", &secs, "5"]).cancel_on(token.clone());
        let started = Instant::now();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (o, cancelled_at) = std::thread::scope(|s| {
            // Another thread cancels, as the worker would, ~300 ms after the
            // job (and its five children) is running.
            let canceller = s.spawn(move || {
                started_rx
                    .recv_timeout(Duration::from_secs(30))
                    .expect("the probe never started");
                std::thread::sleep(Duration::from_millis(300));
                token.cancel();
                Instant::now()
            });
            let o = sb
                .run_streaming(&cmd, &p, &mut |line| {
                    if line.contains("\"started\"") {
                        let _ = started_tx.send(());
                    }
                })
                .unwrap_or_else(|e| panic!("{}: {e}", e.code()));
            (o, canceller.join().unwrap())
        });
        let returned = Instant::now();
        assert!(!o.timed_out);
        assert_eq!(o.failure(), Some(&JobFailure::Cancelled));
        assert_eq!(o.failure().unwrap().code(), "sandbox.cancelled");
        assert_eq!(o.exit_code, None);
        // Stopped within a few seconds of the cancel, far from the 60 s limit.
        let after_cancel = returned.duration_since(cancelled_at);
        assert!(after_cancel < Duration::from_secs(5), "{after_cancel:?}");
        assert!(started.elapsed() < Duration::from_secs(30));
        let l = lines(&o);
        assert!(l.iter().any(|v| v["started"] == true));
        assert!(!l.iter().any(|v| v["result"] == "escaped"));
        // Nothing of the job runs on: no sleeper (parent or child), no cgroup.
        assert_eq!(processes_with(&secs), Vec::<u32>::new());
        assert_nothing_left(&o);
        assert_healthy(sb.as_ref());

        // Loosened: with a token that is never cancelled the job finishes.
        let token = CancelToken::new();
        let o = run(
            sb.as_ref(),
            &job.probe(&["sleep", "0.2", "2"]).cancel_on(token.clone()),
            &p,
        );
        // (The probe exits 3 when a step "escaped", here: it finished.)
        assert_eq!(o.failure(), Some(&JobFailure::ExitCode { code: 3 }));
        assert_escaped(&lines(&o), "finished");
        assert_nothing_left(&o);
    }
}

#[test]
fn daemon_does_not_outlive_the_job() {
    let Some(backends) = backends() else { return };
    // No other sandbox test runs meanwhile: any process of the service uid
    // afterwards would be this job's.
    let _g = exclusive();
    let (svc_uid, _) = service_ids().unwrap();
    for sb in &backends {
        let job = Job::new();
        let marker = format!("3600.{}{}", std::process::id(), 7);
        let o = run(
            sb.as_ref(),
            &job.probe(&["daemon", &marker]),
            &Policy::for_testing(),
        );
        assert!(o.success(), "{:?} {}", o.status, o.stderr.text());
        assert!(lines(&o).iter().any(|v| v["step"] == "spawned"));
        // The pid namespace died with its init and took the daemon along:
        // the supervisor found nothing left to kill.
        assert_eq!(o.leftover_processes, 0);
        assert!(processes_with(&marker).is_empty());
        assert!(
            processes_of_uid(svc_uid).is_empty(),
            "{:?}",
            processes_of_uid(svc_uid)
        );
        // bwrap's init, orphaned for a moment after bwrap exits, was reaped
        // by the supervisor (a child subreaper), not left as a zombie.
        assert!(own_zombies().is_empty(), "{:?}", own_zombies());
        assert_nothing_left(&o);
    }
    // Control: outside the sandbox the daemon survives its parent, and the
    // checks above see it.
    let job = Job::new();
    let marker = format!("3600.{}{}", std::process::id(), 9);
    let (code, _) = job.bare(&["daemon", &marker], false);
    assert_eq!(code, 0);
    let survivors = processes_with(&marker);
    assert_eq!(survivors.len(), 1, "the bare daemon should survive");
    assert!(!processes_of_uid(svc_uid).is_empty());
    for pid in survivors {
        // SAFETY: kill with a pid we just found and a valid signal.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

// --- supervisor behaviour -------------------------------------------------------

#[test]
fn stdout_lines_stream_to_the_callback_and_stderr_is_kept() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let cmd = SandboxCommand::new("/bin/sh").args([
            "-c",
            "for i in 1 2 3; do echo \"{\\\"epoch\\\": $i}\"; done; echo oops >&2; exit 4",
        ]);
        let mut seen = Vec::new();
        let o = sb
            .run_streaming(&cmd, &Policy::for_testing(), &mut |l| {
                seen.push(l.to_owned())
            })
            .unwrap();
        assert_eq!(
            seen,
            vec!["{\"epoch\": 1}", "{\"epoch\": 2}", "{\"epoch\": 3}"]
        );
        assert_eq!(o.stderr.text(), "oops\n");
        assert_eq!(o.failure(), Some(&JobFailure::ExitCode { code: 4 }));
        assert_eq!(o.failure().unwrap().code(), "job.exit_code");
        assert!(o.wall_time < Duration::from_secs(10));
    }
}

#[test]
fn facts_describe_the_applied_policy() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let job = Job::new();
        let cmd = job.probe(&["setuid"]);
        let policy = Policy::default();
        let before = sb.facts(&cmd, &policy).unwrap();
        let o = run(sb.as_ref(), &cmd, &policy);
        assert_eq!(o.facts, before);
        assert_eq!(o.facts.digest(), before.digest());
        let f = serde_json::to_value(&o.facts).unwrap();
        assert_eq!(f["backend"], sb.name());
        assert!(!f["backend_version"].as_str().unwrap().is_empty());
        assert_eq!(
            f["namespaces"],
            serde_json::json!(["cgroup", "ipc", "mount", "net", "pid", "user", "uts"])
        );
        assert_eq!(f["network"], "loopback-only");
        assert_eq!(f["uid"], 1000);
        assert_ne!(f["host_uid"], 0);
        assert_eq!(f["capabilities"], serde_json::json!([]));
        assert_eq!(f["no_new_privs"], true);
        assert_eq!(f["nested_user_namespaces"], false);
        assert_eq!(
            f["seccomp"]["digest"],
            SeccompProgram::default_profile().unwrap().digest()
        );
        let dests: Vec<&str> = f["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["dest"].as_str().unwrap())
            .collect();
        for d in [
            "/",
            "/usr",
            "/proc",
            "/dev",
            "/tmp",
            "/dev/shm",
            "/opt/venv",
            "/opt/app",
            "/in",
            "/out",
        ] {
            assert!(dests.contains(&d), "{d} missing from {dests:?}");
        }
        // No host path of a job bind is recorded.
        let text = serde_json::to_string(&o.facts).unwrap();
        assert!(!text.contains(job.root.path().to_str().unwrap()));
        let limit = |name: &str| {
            f["limits"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["name"] == name)
                .cloned()
                .unwrap()
        };
        assert_eq!(limit("pids")["value"], 512);
        assert_eq!(limit("memory")["value"], 4u64 << 30);
        assert!(
            limit("memory")["mechanism"]
                .as_str()
                .unwrap()
                .starts_with("cgroup-v")
        );
        assert_eq!(limit("core_size")["value"], 0);

        // A loosened policy shows in the facts.
        let loose = Policy {
            seccomp: false,
            ..Policy::default()
        };
        let lf = sb.facts(&cmd, &loose).unwrap();
        assert!(!lf.seccomp.enabled);
        assert_ne!(lf.digest(), before.digest());
    }
}

#[test]
fn setup_failure_is_a_platform_error_not_a_job_failure() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let cmd = SandboxCommand::new("/bin/true").cwd("/no/such/dir");
        let e = sb.run(&cmd, &Policy::for_testing()).unwrap_err();
        assert_eq!(e.code(), "sandbox.setup_failed", "{e}");
        assert!(e.to_string().contains("/no/such/dir"), "{e}");
        // A job that merely *says* it is bwrap is still a job failure.
        let cmd = SandboxCommand::new("/bin/sh").args(["-c", "echo 'bwrap: fake' >&2; exit 1"]);
        let o = run(sb.as_ref(), &cmd, &Policy::for_testing());
        assert_eq!(o.failure(), Some(&JobFailure::ExitCode { code: 1 }));
        assert_healthy(sb.as_ref());
    }
}

#[test]
fn bad_commands_are_refused_before_anything_runs() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        // A bind source the service user cannot read.
        let private = tempfile::tempdir().unwrap();
        fs::set_permissions(
            private.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let cmd = SandboxCommand::new("/bin/true").inputs(private.path());
        let e = sb.run(&cmd, &Policy::for_testing()).unwrap_err();
        assert_eq!(e.code(), "sandbox.invalid_command", "{e}");
        assert!(e.to_string().contains("not readable"), "{e}");
        // An output directory that is not empty.
        let job = Job::new();
        fs::write(job.out.join("stale"), b"x").unwrap();
        let e = sb
            .run(&job.probe(&["setuid"]), &Policy::for_testing())
            .unwrap_err();
        assert_eq!(e.code(), "sandbox.output_dir");
        // A reserved destination.
        let cmd = SandboxCommand::new("/bin/true").bind(
            veritrain_sandbox::BindRole::Inputs,
            &job.inputs,
            "/etc/x",
        );
        assert_eq!(
            sb.run(&cmd, &Policy::for_testing()).unwrap_err().code(),
            "sandbox.invalid_command"
        );
        // An unknown service user.
        let mut p = Policy::for_testing();
        p.host_identity = veritrain_sandbox::HostIdentity::User {
            name: "no-such-user-veritrain".into(),
        };
        assert_eq!(
            sb.run(&SandboxCommand::new("/bin/true"), &p)
                .unwrap_err()
                .code(),
            "sandbox.service_user"
        );
    }
}

#[test]
fn sources_below_private_directories_are_still_bound_read_only() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        // /tmp/<private 0700>/inputs (0755): the service user cannot reach
        // it on the host, the supervisor stages it for bwrap.
        let private = tempfile::tempdir().unwrap();
        fs::set_permissions(
            private.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let inputs = private.path().join("inputs");
        fs::create_dir(&inputs).unwrap();
        fs::set_permissions(&inputs, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        fs::write(inputs.join("data.csv"), b"a,b\n1,2\n").unwrap();
        let cmd = SandboxCommand::new("/bin/sh")
            .args([
                "-c",
                "cat /in/data.csv; touch /in/x 2>&1; grep ' /in ' /proc/self/mountinfo",
            ])
            .inputs(&inputs);
        let o = run(sb.as_ref(), &cmd, &Policy::for_testing());
        let out = o.stdout.text();
        assert!(out.starts_with("a,b\n1,2\n"), "{out}");
        assert!(out.contains("Read-only file system"), "{out}");
        assert!(out.contains(" ro,"), "{out}");
        assert_nothing_left(&o);
    }
}

#[test]
fn gpu_option_binds_nvidia_devices_or_refuses() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let has_gpu = fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("nvidia"));
    // nvidia-smi, where the driver put it (it must be under /usr to be
    // visible inside).
    let smi = ["/usr/bin/nvidia-smi", "/usr/local/nvidia/bin/nvidia-smi"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    for sb in &backends {
        let mut p = Policy::for_testing();
        p.gpu = Gpu::Nvidia {
            library_dirs: vec![],
        };
        let script = match smi {
            Some(smi) => format!("ls /dev; {smi} -L"),
            None => "ls /dev".to_owned(),
        };
        let mut cmd = SandboxCommand::new("/bin/sh").args(["-c", &script]);
        for lib in ["/usr/local/nvidia/lib64", "/usr/local/nvidia/lib"] {
            if Path::new(lib).is_dir() {
                cmd = cmd.env("LD_LIBRARY_PATH", lib);
                break;
            }
        }
        if !has_gpu {
            assert_eq!(
                sb.run(&cmd, &p).unwrap_err().code(),
                "sandbox.gpu_unavailable"
            );
            continue;
        }
        let o = run(sb.as_ref(), &cmd, &p);
        let out = o.stdout.text();
        eprintln!("{out}{}", o.stderr.text());
        assert!(out.contains("nvidia"), "{out}");
        assert!(!o.facts.gpu_devices.is_empty());
        if smi.is_some() {
            assert!(o.success(), "{out} {}", o.stderr.text());
            assert!(out.contains("GPU 0"), "{out}");
        }
        // Without the option the devices are not there.
        let o = run(sb.as_ref(), &cmd, &Policy::for_testing());
        assert!(!o.stdout.text().contains("nvidia"));
    }
}

#[test]
fn an_explicit_cgroup_parent_holds_the_jobs() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    let parent = format!("/{}", unique("veritrain-test-parent"));
    for sb in &backends {
        let p = Policy {
            cgroup_parent: veritrain_sandbox::CgroupParent::Path {
                path: parent.clone(),
            },
            ..Policy::for_testing()
        };
        let cmd = SandboxCommand::new("/bin/sh").args(["-c", "cat /proc/self/cgroup"]);
        // While the job runs (its first line arrives), list the job cgroups
        // under the parent in every hierarchy.
        let mut during: Vec<(String, Vec<String>)> = Vec::new();
        let o = sb
            .run_streaming(&cmd, &p, &mut |_| {
                if during.is_empty() {
                    for d in cgroup_dirs_named(parent.trim_start_matches('/')) {
                        let jobs = fs::read_dir(&d)
                            .unwrap()
                            .flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| n.starts_with("vt-job-"))
                            .collect();
                        during.push((d, jobs));
                    }
                }
            })
            .unwrap();
        assert!(o.success(), "{:?} {}", o.status, o.stderr.text());
        // The memory and pids hierarchies (at least) held the job below the
        // parent, under the job's id.
        assert!(during.len() >= 2, "{during:?}");
        for (d, jobs) in &during {
            assert_eq!(jobs, &vec![o.job_id.clone()], "{d}");
        }
        let parents = cgroup_dirs_named(parent.trim_start_matches('/'));
        assert_nothing_left(&o);
        // Inside, the cgroup namespace hides the host path.
        assert!(
            !o.stdout.text().contains("veritrain-test-parent"),
            "{}",
            o.stdout.text()
        );
        for d in parents {
            fs::remove_dir(&d).unwrap();
        }
    }
}

#[test]
fn cpu_affinity_and_quota_apply() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        let p = Policy {
            limits: veritrain_sandbox::Limits {
                cpu_affinity: Some(vec![0]),
                cpu_quota_cores: Some(0.5),
                ..veritrain_sandbox::Limits::for_testing()
            },
            ..Policy::for_testing()
        };
        // Half a core: a busy loop of 0.6 s of CPU takes more than 1 s of wall
        // time; the affinity mask shows in /proc.
        let cmd = SandboxCommand::new("/bin/sh").args([
            "-c",
            "grep Cpus_allowed_list /proc/self/status; nproc; \
             t0=$(date +%s%N); i=0; while [ $(( $(date +%s%N) - t0 )) -lt 1500000000 ]; do i=$((i+1)); done; \
             echo done",
        ]);
        let o = run(sb.as_ref(), &cmd, &p);
        let out = o.stdout.text();
        assert!(out.contains("Cpus_allowed_list:\t0\n"), "{out}");
        assert!(out.contains("\n1\n"), "nproc: {out}");
        let cpu = o.usage.cpu_usage_usec.unwrap();
        // 1.5 s of wall clock spinning at most half a core (with slack for
        // accounting granularity).
        assert!(
            cpu < 1_100_000,
            "{cpu} us of CPU in 1.5 s at a 0.5-core quota"
        );
        // Loosened: without the quota the same loop burns clearly more CPU
        // (1.4-1.5 s against 0.76-0.79 s with it on the busy build host).
        let mut loose = p.clone();
        loose.limits.cpu_quota_cores = None;
        let free = run(sb.as_ref(), &cmd, &loose).usage.cpu_usage_usec.unwrap();
        assert!(
            free > cpu * 5 / 4,
            "{free} us without quota vs {cpu} us with"
        );
        let limit = o
            .facts
            .limits
            .iter()
            .find(|l| l.name == "cpu_quota")
            .unwrap()
            .clone();
        assert_eq!(limit.value, Some(500));
        assert!(
            limit.mechanism.starts_with("cgroup-v"),
            "{}",
            limit.mechanism
        );
    }
}

#[test]
fn concurrent_jobs_are_isolated_from_each_other() {
    let Some(backends) = backends() else { return };
    let _g = shared();
    for sb in &backends {
        // Two jobs at once: neither sees the other's processes or output.
        let a = Job::new();
        let b = Job::new();
        let cmd = |j: &Job, tag: &str| {
            SandboxCommand::new("/bin/sh")
                .args([
                    "-c",
                    &format!("echo {tag} > /out/who; sleep 0.5; ls /proc | grep -c '^[0-9]'; cat /out/who"),
                ])
                .output(&j.out)
        };
        let (ca, cb) = (cmd(&a, "A"), cmd(&b, "B"));
        let p = Policy::for_testing();
        let (oa, ob) = std::thread::scope(|s| {
            let ta = s.spawn(|| run(sb.as_ref(), &ca, &p));
            let tb = s.spawn(|| run(sb.as_ref(), &cb, &p));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        // pid 1 (bwrap's init), the shell, ls and grep: 4 at most; never the
        // other job's.
        for (o, tag) in [(&oa, "A"), (&ob, "B")] {
            let text = o.stdout.text();
            let mut it = text.lines();
            let n: u32 = it.next().unwrap().trim().parse().unwrap();
            assert!(n <= 4, "{tag} saw {n} processes");
            assert_eq!(it.next(), Some(tag));
        }
        assert_ne!(oa.job_id, ob.job_id);
        let mut s = String::new();
        fs::File::open(a.out.join("who"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "A\n");
        let _ = std::io::stdout().flush();
    }
}
