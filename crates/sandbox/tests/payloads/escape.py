"""Escape probes for Veritrain's sandbox (driven by crates/sandbox/tests/escape.rs).

Run as:  python3.11 -I escape.py PROBE [ARGS...]

Each probe tries one way out and prints one JSON line per step:

    {"probe": P, "step": S, "result": "blocked", "errno": N, "error": "..."}
    {"probe": P, "step": S, "result": "escaped", "detail": ...}

and exits 0 when every step was blocked, 3 when any step escaped. The Rust
test asserts the exact errno of every step, so it proves which control
stopped the probe, not merely that something failed.

Destructive probes (mount, namespaces, bombs, disk fill, daemons) refuse to
run unless IN_SANDBOX=1 and the uid is not 0: an earlier probe, started by
mistake on the host as root, mounted a tmpfs over the host's /tmp.
"""

import ctypes
import json
import os
import platform
import socket
import sys
import time

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long

# Syscall numbers (seccomp tests call them raw: glibc wraps few of them).
SYSCALLS = {
    "x86_64": {
        "clone": 56, "ptrace": 101, "unshare": 272, "process_vm_readv": 310,
        "keyctl": 250, "io_uring_setup": 425, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "clone3": 435, "mount": 165, "umount2": 166,
    },
    "aarch64": {
        "clone": 220, "ptrace": 117, "unshare": 97, "process_vm_readv": 270,
        "keyctl": 219, "io_uring_setup": 425, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "clone3": 435, "mount": 40, "umount2": 39,
    },
}[platform.machine()]

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIGCHLD = 17

ESCAPED = False


def emit(probe, step, result, **kw):
    print(json.dumps({"probe": probe, "step": step, "result": result, **kw}), flush=True)


def blocked(probe, step, err, **kw):
    emit(probe, step, "blocked", errno=err, error=os.strerror(err) if err and err > 0 else str(err), **kw)


def escaped(probe, step, **kw):
    global ESCAPED
    ESCAPED = True
    emit(probe, step, "escaped", **kw)


def attempt(probe, step, fn, **kw):
    """Run fn(); an OSError is 'blocked' with its errno, success 'escaped'."""
    try:
        detail = fn()
    except OSError as e:
        blocked(probe, step, e.errno if e.errno is not None else -1, **kw)
        return
    escaped(probe, step, detail=repr(detail)[:200], **kw)


def raw(name, *args):
    """A raw syscall: returns the result or raises OSError(errno). Bytes
    arguments are passed as C strings (kept alive for the call)."""
    cargs = [ctypes.c_char_p(a) if isinstance(a, bytes) else ctypes.c_long(a) for a in args]
    r = LIBC.syscall(ctypes.c_long(SYSCALLS[name]), *cargs)
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def guard():
    if os.environ.get("IN_SANDBOX") != "1" or os.getuid() == 0:
        emit("guard", "guard", "refused", error="destructive probe outside the sandbox")
        sys.exit(5)


# --- network -----------------------------------------------------------------

def probe_tcp(port):
    def go():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(("127.0.0.1", int(port)))
        s.sendall(b"hello from the sandbox")
        return "connected"
    attempt("tcp", "connect", go)


def probe_udp(port):
    def go():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.connect(("127.0.0.1", int(port)))
        s.send(b"ping")
        data = s.recv(64)  # the host listener echoes
        return data.decode()
    try:
        attempt("udp", "echo", go)
    except socket.timeout:
        blocked("udp", "echo", 110)


def probe_dns():
    try:
        socket.getaddrinfo("pypi.org", 443)
        escaped("dns", "getaddrinfo")
    except socket.gaierror as e:
        blocked("dns", "getaddrinfo", e.errno)
    # A direct query needs a route out.
    def direct():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("8.8.8.8", 53))
        return "routed"
    attempt("dns", "route_8.8.8.8", direct)
    attempt("dns", "resolv.conf", lambda: open("/etc/resolv.conf").read())


def probe_abstract(name):
    def go():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("\0" + name)
        return "connected"
    attempt("abstract", "connect", go)


# --- secrets -----------------------------------------------------------------

def probe_read(*paths):
    for p in paths:
        attempt("read", p, lambda p=p: len(open(p, "rb").read()))


def probe_fds(marker):
    extra = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            os.fstat(fd)
        except OSError:
            continue  # the listing's own, already closed
        target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else "?"
        content = b""
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            content = os.read(fd, 4096)
        except OSError:
            pass
        extra.append({"fd": fd, "target": target})
        if marker.encode() in content:
            escaped("fds", f"fd{fd}", detail=target)
    if not ESCAPED:
        emit("fds", "inherited", "blocked", errno=0, extra=extra)


def probe_env(marker):
    names = sorted(os.environ)
    found = [k for k, v in os.environ.items() if marker in v or marker in k]
    for src in ("/proc/self/environ", "/proc/1/environ"):
        try:
            if marker.encode() in open(src, "rb").read():
                found.append(src)
        except OSError:
            pass
    if found:
        escaped("env", "secret", detail=found, names=names)
    else:
        emit("env", "secret", "blocked", errno=0, names=names)


# --- filesystem writes ---------------------------------------------------------

def probe_write(*dirs):
    for d in dirs:
        existing = os.path.join(d, sorted(os.listdir(d))[0])
        attempt("write", f"{d}:append", lambda: open(existing, "ab").write(b"tampered"))
        attempt("write", f"{d}:create", lambda: open(os.path.join(d, "new-file"), "wb").write(b"x"))
        attempt("write", f"{d}:mkdir", lambda: os.mkdir(os.path.join(d, "new-dir")))
        attempt("write", f"{d}:chmod", lambda: os.chmod(existing, 0o777))
        attempt("write", f"{d}:rename", lambda: os.rename(existing, existing + ".moved"))
        attempt("write", f"{d}:unlink", lambda: os.unlink(existing))


# --- privileges ----------------------------------------------------------------

def probe_ptrace():
    PTRACE_TRACEME, PTRACE_ATTACH = 0, 16
    attempt("ptrace", "traceme", lambda: raw("ptrace", PTRACE_TRACEME, 0, 0, 0))
    attempt("ptrace", "attach_pid1", lambda: raw("ptrace", PTRACE_ATTACH, 1, 0, 0))
    buf = ctypes.create_string_buffer(16)
    iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)
    attempt("ptrace", "process_vm_readv", lambda: raw(
        "process_vm_readv", 1, ctypes.addressof(iov), 1, ctypes.addressof(iov), 1, 0))


def probe_mount():
    guard()
    attempt("mount", "tmpfs_on_tmp", lambda: raw("mount", b"none", b"/tmp", b"tmpfs", 0, 0))
    attempt("mount", "umount_usr", lambda: raw("umount2", b"/usr", 0))

    def userns_then_mount():
        raw("unshare", CLONE_NEWUSER | CLONE_NEWNS)
        raw("mount", b"none", b"/tmp", b"tmpfs", 0, 0)
        return "mounted tmpfs in a new user+mount namespace"
    attempt("mount", "userns_then_mount", userns_then_mount)


def probe_setuid():
    attempt("setuid", "setuid0", lambda: os.setuid(0))
    attempt("setuid", "setgid0", lambda: os.setgid(0))


def probe_userns():
    guard()

    def clone_newuser():
        pid = raw("clone", CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return pid
    # First, while our uid is still mapped (a nested user namespace needs
    # that); unshare below moves this process into the new namespace.
    attempt("userns", "clone_newuser", clone_newuser)
    attempt("userns", "unshare_net", lambda: raw("unshare", CLONE_NEWNET))
    attempt("userns", "unshare", lambda: raw("unshare", CLONE_NEWUSER))


def probe_seccomp():
    guard()
    KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING = 0, -3
    attempt("seccomp", "keyctl", lambda: raw("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1))
    params = ctypes.create_string_buffer(120)
    attempt("seccomp", "io_uring_setup", lambda: raw("io_uring_setup", 4, ctypes.addressof(params)))
    UFFD_USER_MODE_ONLY = 1
    attempt("seccomp", "userfaultfd", lambda: raw("userfaultfd", UFFD_USER_MODE_ONLY))
    # clone3 with a too-small struct: EINVAL from the kernel, ENOSYS from our filter.
    attempt("seccomp", "clone3", lambda: raw("clone3", 0, 0))
    status = open("/proc/self/status").read()
    mode = [l.split()[1] for l in status.splitlines() if l.startswith("Seccomp:")]
    emit("seccomp", "status", "info", mode=mode[0] if mode else None)


# --- resources -------------------------------------------------------------------

def probe_forkbomb(limit):
    guard()
    children = 0
    try:
        for _ in range(int(limit)):
            pid = os.fork()
            if pid == 0:
                time.sleep(300)
                os._exit(0)
            children += 1
    except OSError as e:
        blocked("forkbomb", "fork", e.errno, children=children)
        return
    escaped("forkbomb", "fork", children=children)


def probe_membomb(mib):
    guard()
    chunks, held = [], 0
    try:
        while held < int(mib):
            chunks.append(b"\x01" * (16 << 20))  # filled, so every page is touched
            held += 16
            print(json.dumps({"probe": "membomb", "held_mib": held}), flush=True)
    except MemoryError:
        blocked("membomb", "allocate", 12, held_mib=held)
        return
    escaped("membomb", "allocate", held_mib=held)


def probe_fill(directory, max_mib):
    guard()
    written, i = 0, 0
    chunk = b"\x00" * (1 << 20)
    try:
        while written < int(max_mib):
            with open(os.path.join(directory, f"fill-{i}"), "wb") as f:
                for _ in range(4):
                    f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                    written += 1
            i += 1
    except OSError as e:
        blocked("fill", directory, e.errno, written_mib=written)
        return
    escaped("fill", directory, written_mib=written)


def probe_inodes(directory, max_files):
    guard()
    n = 0
    try:
        while n < int(max_files):
            open(os.path.join(directory, f"i{n}"), "wb").close()
            n += 1
    except OSError as e:
        blocked("inodes", directory, e.errno, files=n)
        return
    escaped("inodes", directory, files=n)


def probe_bigfile(path, max_mib):
    guard()
    written = 0
    chunk = b"\x00" * (1 << 20)
    try:
        with open(path, "wb") as f:
            while written < int(max_mib):
                f.write(chunk)
                f.flush()
                written += 1
    except OSError as e:
        blocked("bigfile", path, e.errno, written_mib=written)
        return
    escaped("bigfile", path, written_mib=written)


def probe_sleep(secs, children):
    guard()
    for _ in range(int(children)):
        if os.fork() == 0:
            time.sleep(float(secs) * 2)
            os._exit(0)
    print(json.dumps({"probe": "sleep", "started": True}), flush=True)
    time.sleep(float(secs))
    escaped("sleep", "finished", secs=secs)


def probe_daemon(marker):
    guard()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            # The daemon: detached, in its own session, its stdio closed.
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execv("/usr/bin/sleep", ["sleep", marker])
        os._exit(0)
    os.waitpid(pid, 0)
    emit("daemon", "spawned", "info", marker=marker)


def probe_links():
    guard()
    os.symlink("/etc/shadow", "/out/model.keras")
    os.symlink("/", "/out/root")
    os.mkfifo("/out/fifo")
    os.mkdir("/out/sub")
    with open("/out/sub/ok.txt", "w") as f:
        f.write("regular output\n")
    with open("/out/metrics.json", "w") as f:
        f.write('{"loss": 0.1}\n')
    os.chmod("/out/metrics.json", 0o6755)  # setuid bits must not survive the copy
    emit("links", "made", "info")


PROBES = {
    "tcp": probe_tcp, "udp": probe_udp, "dns": probe_dns, "abstract": probe_abstract,
    "read": probe_read, "fds": probe_fds, "env": probe_env, "write": probe_write,
    "ptrace": probe_ptrace, "mount": probe_mount, "setuid": probe_setuid,
    "userns": probe_userns, "seccomp": probe_seccomp, "forkbomb": probe_forkbomb,
    "membomb": probe_membomb, "fill": probe_fill, "inodes": probe_inodes,
    "bigfile": probe_bigfile, "sleep": probe_sleep, "daemon": probe_daemon,
    "links": probe_links,
}

if __name__ == "__main__":
    PROBES[sys.argv[1]](*sys.argv[2:])
    sys.exit(3 if ESCAPED else 0)
