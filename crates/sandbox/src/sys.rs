//! Thin wrappers around the system calls the supervisor needs and std does
//! not offer. Every `unsafe` block of the crate lives here, each with the
//! reason it is sound.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// `libc`'s type for rlimit resource numbers differs between glibc and musl.
pub(crate) type RlimitResource = libc::__rlimit_resource_t;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The effective uid of this process.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A sealed-content anonymous file holding `bytes`, positioned at 0, with
/// `FD_CLOEXEC` set (the child clears it for the fds it must pass on).
pub(crate) fn memfd_with(name: &CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the flags are valid.
    let fd = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = File::from(owned);
    file.write_all(bytes)?;
    // Rewind: the reader (bwrap) reads from the current offset.
    // SAFETY: lseek on a descriptor we own; no memory is involved.
    let r = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_SET) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(file))
}

/// A pipe, both ends `O_CLOEXEC`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let [r, w] = fds;
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by us.
    let r = unsafe { OwnedFd::from_raw_fd(r) };
    // SAFETY: as above.
    let w = unsafe { OwnedFd::from_raw_fd(w) };
    Ok((r, w))
}

/// A pidfd for `pid`, which must be our own unreaped child (so the pid cannot
/// have been recycled yet).
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Send `signal` through a pidfd: no pid-reuse race.
pub(crate) fn pidfd_kill(pidfd: &OwnedFd, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is a live pidfd; a null siginfo is allowed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        // Already exited: nothing to kill.
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Wait until `fd` is readable (a pidfd: the process exited) or `timeout`
/// passes. `None` waits forever. Returns whether it became readable.
pub(crate) fn poll_readable(fd: &OwnedFd, timeout: Option<Duration>) -> io::Result<bool> {
    let ms: libc::c_int = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(libc::c_int::MAX as u128) as libc::c_int,
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid pollfd and we pass a count of 1.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0);
    }
}

/// `kill(pid, sig)`; ESRCH (already gone) is not an error.
pub(crate) fn kill(pid: i32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers; the caller chose the pid from a
    // cgroup it owns.
    let r = unsafe { libc::kill(pid, signal) };
    if r == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Make this process the reaper of orphaned descendants
/// (`PR_SET_CHILD_SUBREAPER`), so that bwrap's init, which outlives the
/// bwrap process that started it by a moment, is reaped by the supervisor
/// instead of lingering as a zombie under a host init that does not reap.
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes the value 1.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Reap `pid` if it is an exited (zombie) child of ours named `bwrap`;
/// waits up to `timeout` for it to become one. Returns whether it was
/// reaped.
pub(crate) fn reap_orphan(pid: i32, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let me = std::process::id() as i32;
    loop {
        let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => s,
            // Gone: reaped by someone else.
            Err(_) => return false,
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split at
        // the last ')'.
        let (head, tail) = match stat.rsplit_once(')') {
            Some(x) => x,
            None => return false,
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let mut fields = tail.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid != me || comm != "bwrap" {
            return false;
        }
        if state == "Z" {
            let mut status = 0;
            // SAFETY: waitpid on a specific pid with a valid status pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            return r == pid;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Mount a tmpfs on `target` with `options` (`size=...,nr_inodes=...`).
pub(crate) fn mount_tmpfs(target: &Path, flags: libc::c_ulong, options: &str) -> io::Result<()> {
    let target = cstring(target)?;
    let data = CString::new(options)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount options"))?;
    let fstype = c"tmpfs";
    let source = c"veritrain-out";
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // call; tmpfs takes a string as its data argument.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    })?;
    Ok(())
}

/// Bind-mount `source` on `target`, then make that mount read-only,
/// `nosuid` and `nodev`.
pub(crate) fn bind_mount_ro(source: &Path, target: &Path) -> io::Result<()> {
    let src = cstring(source)?;
    let dst = cstring(target)?;
    // SAFETY: valid NUL-terminated paths; null fstype and data are allowed
    // for a bind mount.
    check(unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    })?;
    let flags =
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
    // SAFETY: as above; a bind remount changes only the mount's flags.
    let r = check(unsafe {
        libc::mount(
            std::ptr::null(),
            dst.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    });
    if let Err(e) = r {
        let _ = umount_detach(target);
        return Err(e);
    }
    Ok(())
}

/// Detach the mount at `target` (lazy: it goes once nothing uses it).
pub(crate) fn umount_detach(target: &Path) -> io::Result<()> {
    let target = cstring(target)?;
    // SAFETY: a valid NUL-terminated path and a valid flag.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })?;
    Ok(())
}

/// Free and total bytes and inodes of the filesystem at `path`.
pub(crate) struct FsSpace {
    pub(crate) free_bytes: u64,
    pub(crate) free_inodes: u64,
}

pub(crate) fn statvfs(path: &Path) -> io::Result<FsSpace> {
    let p = cstring(path)?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a pointer to a writable statvfs.
    check(unsafe { libc::statvfs(p.as_ptr(), &mut s) })?;
    let frsize = s.f_frsize as u64;
    Ok(FsSpace {
        free_bytes: (s.f_bavail as u64).saturating_mul(frsize),
        free_inodes: s.f_favail as u64,
    })
}

/// Look up a user by name: (uid, primary gid). `Ok(None)` if unknown.
pub(crate) fn lookup_user(name: &str) -> io::Result<Option<(u32, u32)>> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in user name"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; all-zero is a valid value.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` is writable for its
    // full length, and we read `pw` only if `result` points to it.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        return Ok(None);
    }
    Ok(Some((pw.pw_uid, pw.pw_gid)))
}

/// Everything the child does between `fork` and `exec` of the backend,
/// computed beforehand so the child only makes system calls (no allocation,
/// no locks: only async-signal-safe work is allowed there).
pub(crate) struct ChildSetup {
    /// Open `cgroup.procs` files of the job's cgroups (opened by root in the
    /// parent; the kernel checks the opener's credentials).
    pub(crate) cgroup_procs: Vec<RawFd>,
    /// (resource, soft, hard).
    pub(crate) rlimits: Vec<(RlimitResource, u64, u64)>,
    /// Host uid/gid the backend runs as.
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Our pid: if the child's parent is no longer it, we died meanwhile.
    pub(crate) parent_pid: libc::pid_t,
    /// Descriptors the backend must inherit (args, seccomp, status).
    pub(crate) inherit_fds: Vec<RawFd>,
    /// CPUs to pin the job to.
    pub(crate) cpu_affinity: Option<libc::cpu_set_t>,
}

impl ChildSetup {
    /// Run in the forked child before exec.
    ///
    /// # Safety
    /// Must only be called between fork and exec in the child (it changes
    /// process-wide credentials and limits); it performs only
    /// async-signal-safe system calls and no allocation.
    pub(crate) unsafe fn apply(&self) -> io::Result<()> {
        // 1. Join the job's cgroups first, so that everything after, bwrap
        //    included, is accounted and limited. "0" means "the writer".
        for &fd in &self.cgroup_procs {
            // SAFETY: writing a 1-byte static buffer to an fd the parent
            // opened for us.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        // 2. rlimits, while still root (so hard limits may also be raised).
        for &(res, soft, hard) in &self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            // SAFETY: a valid resource number and a pointer to a valid rlimit.
            check(unsafe { libc::setrlimit(res, &lim) })?;
        }
        // 3. CPU affinity: TensorFlow sizes its thread pools from it.
        if let Some(set) = &self.cpu_affinity {
            // SAFETY: pid 0 is the caller; `set` is a valid cpu_set_t of the
            // size we pass.
            check(unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(set), set) })?;
        }
        // 4. Drop to the service user: groups, gid, then uid (after setuid
        //    we could no longer change the others). As root, setuid sets the
        //    real, effective and saved uid and clears all capabilities.
        // SAFETY: setgroups with a zero count reads no memory.
        check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
        // SAFETY: plain integer argument.
        check(unsafe { libc::setgid(self.gid) })?;
        // SAFETY: plain integer argument.
        check(unsafe { libc::setuid(self.uid) })?;
        // SAFETY: plain integer argument; must fail now that we dropped root.
        if unsafe { libc::setuid(0) } == 0 {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        // 5. Die with the supervisor. Set after setuid, because a credential
        //    change clears the parent-death signal.
        // SAFETY: PR_SET_PDEATHSIG takes a signal number.
        check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) })?;
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != self.parent_pid {
            // The supervisor died before PR_SET_PDEATHSIG took effect.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // 6. No privilege gain through exec (setuid binaries, file caps).
        // SAFETY: PR_SET_NO_NEW_PRIVS takes the value 1.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) })?;
        // 7. Let the backend inherit exactly the descriptors it is told
        //    about: mark every descriptor above stderr close-on-exec (the
        //    supervisor may hold descriptors without FD_CLOEXEC that it
        //    inherited itself; none may reach the job), then unmark ours.
        // SAFETY: close_range takes plain integers; with
        // CLOSE_RANGE_CLOEXEC it only sets flags and closes nothing.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            )
        };
        if r != 0 {
            // Kernels before 5.11: walk the descriptor table.
            for fd in 3..65_536 {
                // SAFETY: F_SETFD on a number that may not be open fails
                // with EBADF, which is ignored.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
        for &fd in &self.inherit_fds {
            // SAFETY: F_SETFD with 0 clears FD_CLOEXEC on a descriptor we own.
            check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
        }
        Ok(())
    }
}

/// A CPU set with the given CPUs.
pub(crate) fn cpu_set(cpus: &[usize]) -> io::Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &c in cpus {
        if c >= max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {c} is beyond the largest CPU set ({max})"),
            ));
        }
        // SAFETY: `c` is below the set's capacity (checked above).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn memfd_holds_the_bytes_from_offset_zero() {
        let fd = memfd_with(c"t", b"hello").unwrap();
        let mut s = String::new();
        File::from(fd).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }

    #[test]
    fn root_exists_and_unknown_user_does_not() {
        assert_eq!(lookup_user("root").unwrap(), Some((0, 0)));
        assert_eq!(lookup_user("no-such-user-veritrain-x").unwrap(), None);
    }

    #[test]
    fn pidfd_sees_exit() {
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("0.05")
            .spawn()
            .unwrap();
        let fd = pidfd_open(child.id()).unwrap();
        assert!(poll_readable(&fd, Some(Duration::from_secs(10))).unwrap());
        assert!(child.wait().unwrap().success());
    }
}
