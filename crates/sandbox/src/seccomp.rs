//! The seccomp filter: a classic-BPF program generated here, in Rust, and
//! handed to the backend (`bwrap --seccomp FD`), which loads it just before
//! it executes the job.
//!
//! The profile is a deny-list over the kernel's attack surface that a
//! training job never needs (the list in `docs/sandbox.md` and
//! `shared/notes/trainer-runtime.md` §2.1; TensorFlow trained under it):
//!
//! * a syscall from a foreign ABI (32-bit `int 0x80`, x32) kills the process:
//!   a deny-list keyed on native numbers would otherwise be bypassed by
//!   calling the same syscall through another ABI's number;
//! * `clone3` fails with `ENOSYS`, so libc falls back to `clone`, whose flags
//!   a BPF program can inspect (`clone3` passes them in memory);
//! * `clone` with any `CLONE_NEW*` flag fails with `EPERM` (no namespaces);
//! * every other listed syscall fails with `EPERM`;
//! * everything else is allowed.
//!
//! The program is a straight line of `jeq`/`ret` pairs, so every jump offset
//! is 0 or 1 and needs no fix-ups. Its bytes are the `struct sock_filter`
//! array the kernel takes; [`SeccompProgram::digest`] is their SHA-256,
//! recorded in the facts.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

// Return values (linux/seccomp.h).
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// Offsets into struct seccomp_data.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// Low 32 bits of args[0] on a little-endian machine (`clone` flags).
#[cfg(target_endian = "little")]
const OFFSET_ARG0_LO: u32 = 16;
#[cfg(target_endian = "big")]
const OFFSET_ARG0_LO: u32 = 20;

/// Every `CLONE_NEW*` flag `clone` accepts: NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET. (`CLONE_NEWTIME` is only valid for
/// `unshare`/`clone3`, both denied.)
pub const CLONE_NEW_MASK: u32 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// x32 system calls set this bit in the syscall number on x86_64.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Name of the native architecture, for the facts.
#[cfg(target_arch = "x86_64")]
const ARCH_NAME: &str = "x86_64";
#[cfg(target_arch = "aarch64")]
const ARCH_NAME: &str = "aarch64";

/// What a denied syscall returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyAction {
    /// Fails with `EPERM`.
    Eperm,
    /// Fails with `ENOSYS` (as if the kernel did not have it).
    Enosys,
}

impl DenyAction {
    fn ret(self) -> u32 {
        let errno = match self {
            DenyAction::Eperm => libc::EPERM,
            DenyAction::Enosys => libc::ENOSYS,
        };
        SECCOMP_RET_ERRNO | (errno as u32 & 0xffff)
    }
}

/// One denied syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeniedSyscall {
    /// The syscall's name.
    pub name: &'static str,
    /// Its number on this architecture.
    pub nr: u32,
    /// What it returns.
    pub action: DenyAction,
}

macro_rules! sys {
    ($name:ident) => {
        (stringify!($name), libc::$name as u32)
    };
}

/// The denied syscalls (all `EPERM` except `clone3`), as (name, number).
/// Grouped by the attack each group stops.
fn deny_list() -> Vec<(&'static str, u32)> {
    let mut v = vec![
        // Debugging / reading other processes' memory: sandbox neighbours, the
        // backend's init.
        sys!(SYS_ptrace),
        sys!(SYS_process_vm_readv),
        sys!(SYS_process_vm_writev),
        sys!(SYS_kcmp),
        sys!(SYS_pidfd_getfd),
        sys!(SYS_process_madvise),
        // Filesystem view changes: mounts, new mount API, chroot.
        sys!(SYS_mount),
        sys!(SYS_umount2),
        sys!(SYS_pivot_root),
        sys!(SYS_chroot),
        sys!(SYS_open_tree),
        sys!(SYS_move_mount),
        sys!(SYS_fsopen),
        sys!(SYS_fsconfig),
        sys!(SYS_fsmount),
        sys!(SYS_fspick),
        sys!(SYS_mount_setattr),
        // open_tree_attr (Linux 6.15); numbers from 424 up are shared by all
        // architectures.
        ("SYS_open_tree_attr", 467),
        // Namespaces: a new user namespace hands out capabilities over it.
        sys!(SYS_unshare),
        sys!(SYS_setns),
        // Kernel attack surface unprivileged code can reach.
        sys!(SYS_bpf),
        sys!(SYS_perf_event_open),
        sys!(SYS_userfaultfd),
        sys!(SYS_io_uring_setup),
        sys!(SYS_io_uring_enter),
        sys!(SYS_io_uring_register),
        sys!(SYS_keyctl),
        sys!(SYS_add_key),
        sys!(SYS_request_key),
        sys!(SYS_fanotify_init),
        sys!(SYS_name_to_handle_at),
        sys!(SYS_open_by_handle_at),
        sys!(SYS_landlock_create_ruleset),
        sys!(SYS_quotactl),
        sys!(SYS_quotactl_fd),
        // Modules, kexec, reboot, swap, accounting, clocks, host names.
        sys!(SYS_init_module),
        sys!(SYS_finit_module),
        sys!(SYS_delete_module),
        sys!(SYS_kexec_load),
        sys!(SYS_kexec_file_load),
        sys!(SYS_reboot),
        sys!(SYS_swapon),
        sys!(SYS_swapoff),
        sys!(SYS_acct),
        sys!(SYS_settimeofday),
        sys!(SYS_clock_settime),
        sys!(SYS_clock_adjtime),
        sys!(SYS_sethostname),
        sys!(SYS_setdomainname),
        sys!(SYS_vhangup),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        // x86-only legacy calls: port I/O, obsolete module and sysctl
        // interfaces.
        sys!(SYS_iopl),
        sys!(SYS_ioperm),
        sys!(SYS_uselib),
        sys!(SYS_ustat),
        sys!(SYS_sysfs),
        sys!(SYS__sysctl),
        sys!(SYS_lookup_dcookie),
        sys!(SYS_nfsservctl),
        // create_module, get_kernel_syms, query_module: removed from the
        // kernel long ago, denied so a kernel that still routes them cannot.
        ("SYS_create_module", 174),
        ("SYS_get_kernel_syms", 177),
        ("SYS_query_module", 178),
    ]);
    v
}

/// A compiled seccomp program.
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    bytes: Vec<u8>,
    instructions: usize,
    denied: Vec<DeniedSyscall>,
}

/// Facts about the seccomp profile, for the AIBoM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompFacts {
    /// Whether a filter is applied at all.
    pub enabled: bool,
    /// `sha256:<hex>` of the BPF program bytes.
    pub digest: Option<String>,
    /// The architecture the numbers are for.
    pub arch: String,
    /// Number of BPF instructions.
    pub instructions: usize,
    /// What happens to calls not on the list.
    pub default_action: String,
    /// What happens to a call from a non-native ABI.
    pub foreign_arch_action: String,
    /// The denied syscalls.
    pub denied: Vec<String>,
    /// Syscalls denied with `ENOSYS` instead of `EPERM`.
    pub enosys: Vec<String>,
    /// Calls allowed only without some argument bits.
    pub conditional: Vec<String>,
}

#[derive(Clone, Copy)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

impl Insn {
    fn stmt(code: u16, k: u32) -> Self {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        Insn { code, jt, jf, k }
    }
}

impl SeccompProgram {
    /// Build the default profile for this architecture.
    pub fn default_profile() -> Result<Self> {
        if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            return Err(Error::Seccomp(format!(
                "no seccomp profile for architecture {}",
                std::env::consts::ARCH
            )));
        }
        let mut denied: Vec<DeniedSyscall> = deny_list()
            .into_iter()
            .map(|(name, nr)| DeniedSyscall {
                name: name.trim_start_matches("SYS_"),
                nr,
                action: DenyAction::Eperm,
            })
            .collect();
        denied.push(DeniedSyscall {
            name: "clone3",
            nr: libc::SYS_clone3 as u32,
            action: DenyAction::Enosys,
        });

        let mut p = Vec::with_capacity(2 * denied.len() + 12);
        // 1. Architecture: anything but the native ABI is killed.
        p.push(Insn::stmt(BPF_LD_W_ABS, OFFSET_ARCH));
        p.push(Insn::jump(BPF_JEQ_K, AUDIT_ARCH_NATIVE, 1, 0));
        p.push(Insn::stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS));
        p.push(Insn::stmt(BPF_LD_W_ABS, OFFSET_NR));
        // 2. x32 numbers share AUDIT_ARCH_X86_64: kill them too.
        #[cfg(target_arch = "x86_64")]
        {
            p.push(Insn::jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
            p.push(Insn::stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS));
        }
        // 3. The deny-list.
        for d in &denied {
            p.push(Insn::jump(BPF_JEQ_K, d.nr, 0, 1));
            p.push(Insn::stmt(BPF_RET_K, d.action.ret()));
        }
        // 4. clone with a namespace flag.
        p.push(Insn::jump(BPF_JEQ_K, libc::SYS_clone as u32, 0, 3));
        p.push(Insn::stmt(BPF_LD_W_ABS, OFFSET_ARG0_LO));
        p.push(Insn::jump(BPF_JSET_K, CLONE_NEW_MASK, 0, 1));
        p.push(Insn::stmt(BPF_RET_K, DenyAction::Eperm.ret()));
        // 5. Everything else.
        p.push(Insn::stmt(BPF_RET_K, SECCOMP_RET_ALLOW));

        let mut bytes = Vec::with_capacity(p.len() * 8);
        for i in &p {
            // struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }
            // in native byte order, as the kernel reads it.
            bytes.extend_from_slice(&i.code.to_ne_bytes());
            bytes.push(i.jt);
            bytes.push(i.jf);
            bytes.extend_from_slice(&i.k.to_ne_bytes());
        }
        Ok(SeccompProgram {
            bytes,
            instructions: p.len(),
            denied,
        })
    }

    /// The program as the kernel's `struct sock_filter` array.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `sha256:<hex>` of [`bytes`](Self::bytes).
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.bytes)))
    }

    /// The denied syscalls.
    pub fn denied(&self) -> &[DeniedSyscall] {
        &self.denied
    }

    /// Facts for the AIBoM.
    pub fn facts(&self) -> SeccompFacts {
        SeccompFacts {
            enabled: true,
            digest: Some(self.digest()),
            arch: ARCH_NAME.to_owned(),
            instructions: self.instructions,
            default_action: "allow".into(),
            foreign_arch_action: "kill_process".into(),
            denied: self
                .denied
                .iter()
                .filter(|d| d.action == DenyAction::Eperm)
                .map(|d| d.name.to_owned())
                .collect(),
            enosys: self
                .denied
                .iter()
                .filter(|d| d.action == DenyAction::Enosys)
                .map(|d| d.name.to_owned())
                .collect(),
            conditional: vec![format!(
                "clone: EPERM if flags & {CLONE_NEW_MASK:#x} (CLONE_NEW*)"
            )],
        }
    }

    /// Facts for a policy without seccomp.
    pub fn disabled_facts() -> SeccompFacts {
        SeccompFacts {
            enabled: false,
            digest: None,
            arch: ARCH_NAME.to_owned(),
            instructions: 0,
            default_action: "allow".into(),
            foreign_arch_action: "allow".into(),
            denied: Vec::new(),
            enosys: Vec::new(),
            conditional: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the subset we emit, so the tests
    /// check what the program *does*, not how it is laid out.
    fn eval(bytes: &[u8], nr: u32, arch: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[16..24].copy_from_slice(&arg0.to_ne_bytes());
        let insns: Vec<Insn> = bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let mut pc = 0usize;
        let mut a = 0u32;
        loop {
            let i = insns[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => {
                    let o = i.k as usize;
                    a = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                BPF_JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
                BPF_JGE_K => pc += if a >= i.k { i.jt } else { i.jf } as usize,
                BPF_JSET_K => pc += if a & i.k != 0 { i.jt } else { i.jf } as usize,
                BPF_RET_K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn eperm() -> u32 {
        SECCOMP_RET_ERRNO | libc::EPERM as u32
    }

    #[test]
    fn denies_listed_and_allows_the_rest() {
        let p = SeccompProgram::default_profile().unwrap();
        let b = p.bytes();
        let native = AUDIT_ARCH_NATIVE;
        for nr in [
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_bpf,
            libc::SYS_keyctl,
            libc::SYS_io_uring_setup,
            libc::SYS_userfaultfd,
            libc::SYS_process_vm_readv,
            libc::SYS_kexec_load,
            libc::SYS_finit_module,
            libc::SYS_perf_event_open,
            libc::SYS_pivot_root,
            libc::SYS_umount2,
        ] {
            assert_eq!(eval(b, nr as u32, native, 0), eperm(), "nr {nr}");
        }
        assert_eq!(
            eval(b, libc::SYS_clone3 as u32, native, 0),
            SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_mmap,
            libc::SYS_futex,
            libc::SYS_execve,
            libc::SYS_socket,
        ] {
            assert_eq!(eval(b, nr as u32, native, 0), SECCOMP_RET_ALLOW, "nr {nr}");
        }
    }

    #[test]
    fn clone_namespace_flags_are_denied_threads_and_forks_are_not() {
        let p = SeccompProgram::default_profile().unwrap();
        let b = p.bytes();
        let clone = libc::SYS_clone as u32;
        // glibc pthread_create flags and fork()'s SIGCHLD.
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(
            eval(b, clone, AUDIT_ARCH_NATIVE, thread_flags),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            eval(b, clone, AUDIT_ARCH_NATIVE, libc::SIGCHLD as u64),
            SECCOMP_RET_ALLOW
        );
        for f in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWCGROUP,
        ] {
            assert_eq!(
                eval(b, clone, AUDIT_ARCH_NATIVE, (f | libc::SIGCHLD) as u64),
                eperm(),
                "flag {f:#x}"
            );
        }
    }

    #[test]
    fn foreign_abis_are_killed() {
        let p = SeccompProgram::default_profile().unwrap();
        let b = p.bytes();
        // AUDIT_ARCH_I386: a 32-bit int 0x80 call of any number.
        assert_eq!(eval(b, 1, 0x4000_0003, 0), SECCOMP_RET_KILL_PROCESS);
        #[cfg(target_arch = "x86_64")]
        // x32 read (0x40000000 | 0).
        assert_eq!(
            eval(b, X32_SYSCALL_BIT, AUDIT_ARCH_NATIVE, 0),
            SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn digest_is_stable_and_covers_the_bytes() {
        let a = SeccompProgram::default_profile().unwrap();
        let b = SeccompProgram::default_profile().unwrap();
        assert_eq!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:"));
        assert_eq!(a.bytes().len() % 8, 0);
        assert_eq!(a.bytes().len() / 8, a.facts().instructions);
        // Jump offsets stay within u8 by construction; the program stays
        // well under the kernel's 4096-instruction cap.
        assert!(a.facts().instructions < 256);
        let f = a.facts();
        assert!(f.denied.contains(&"ptrace".to_string()));
        assert_eq!(f.enosys, vec!["clone3".to_string()]);
    }
}
