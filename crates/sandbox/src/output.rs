//! The job's one writable directory.
//!
//! `bwrap --bind` has no quota, so `/out` is a tmpfs the supervisor mounts
//! on the host with `size=` and `nr_inodes=` (hard caps the kernel enforces
//! at write time, against "fill the disk" and "create a million files"),
//! `nosuid,nodev,noexec`, owned by the service user. The job's writes are
//! charged to its memory cgroup. After the job has ended and its cgroup is
//! empty, the supervisor copies regular files and directories to the
//! caller's output directory and refuses everything else: a symlink left in
//! `/out` (say `model.keras -> /etc/shadow`) must never be followed by the
//! platform that later reads the outputs as root.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::sys;

/// Deepest directory nesting copied out.
const MAX_DEPTH: usize = 32;

/// What came out of `/out`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputReport {
    /// Regular files copied.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// The output tmpfs was full (bytes or inodes) when the job ended: its
    /// outputs may be truncated.
    pub full: bool,
    /// Entries not copied, with the reason (`symlink`, `special_file`,
    /// `too_deep`, `not_utf8`).
    pub refused: Vec<RefusedEntry>,
}

/// An entry of `/out` that was not copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedEntry {
    /// Path relative to `/out` (lossy UTF-8).
    pub path: String,
    /// Why.
    pub reason: &'static str,
}

/// A mounted output tmpfs; unmounted and removed on drop.
#[derive(Debug)]
pub(crate) struct OutputMount {
    dir: PathBuf,
    mounted: bool,
}

impl OutputMount {
    /// Create `dir` (must not exist) and mount a tmpfs there.
    pub(crate) fn mount(dir: &Path, bytes: u64, inodes: u64, uid: u32, gid: u32) -> Result<Self> {
        fs::create_dir(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let mut m = OutputMount {
            dir: dir.to_owned(),
            mounted: false,
        };
        let opts = format!("size={bytes},nr_inodes={inodes},mode=0700,uid={uid},gid={gid}");
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        sys::mount_tmpfs(dir, flags, &opts).map_err(|e| {
            if e.raw_os_error() == Some(libc::EPERM) {
                Error::NotPrivileged {
                    what: "to mount the size-capped output tmpfs".into(),
                }
            } else {
                Error::io(format!("mounting the output tmpfs on {}", dir.display()), e)
            }
        })?;
        m.mounted = true;
        Ok(m)
    }

    /// The mount point on the host.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Copy the contents to `dest` (an existing empty directory). Call only
    /// once no process of the job is left.
    pub(crate) fn copy_out(&self, dest: &Path) -> Result<OutputReport> {
        let mut report = OutputReport::default();
        let space = sys::statvfs(&self.dir)
            .map_err(|e| Error::io(format!("statvfs {}", self.dir.display()), e))?;
        // tmpfs rounds to pages: "full" means less than a page left.
        report.full = space.free_bytes < 4096 || space.free_inodes == 0;
        // Iterative walk: (source dir, dest dir, relative path, depth).
        let mut stack = vec![(self.dir.clone(), dest.to_owned(), String::new(), 0usize)];
        while let Some((src, dst, rel, depth)) = stack.pop() {
            let mut entries: Vec<_> = fs::read_dir(&src)
                .map_err(|e| Error::io(format!("reading {}", src.display()), e))?
                .collect::<io::Result<_>>()
                .map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let name = entry.file_name();
                let name_str = name.to_string_lossy().into_owned();
                let rel_path = if rel.is_empty() {
                    name_str.clone()
                } else {
                    format!("{rel}/{name_str}")
                };
                if name.to_str().is_none() {
                    report.refused.push(RefusedEntry {
                        path: rel_path,
                        reason: "not_utf8",
                    });
                    continue;
                }
                // lstat: never follow what the job left.
                let meta = fs::symlink_metadata(entry.path())
                    .map_err(|e| Error::io(format!("lstat {rel_path}"), e))?;
                let ft = meta.file_type();
                if ft.is_dir() {
                    if depth + 1 > MAX_DEPTH {
                        report.refused.push(RefusedEntry {
                            path: rel_path,
                            reason: "too_deep",
                        });
                        continue;
                    }
                    let d = dst.join(&name);
                    fs::create_dir(&d).map_err(|e| {
                        Error::io(format!("creating output dir {}", d.display()), e)
                    })?;
                    fs::set_permissions(&d, fs::Permissions::from_mode(0o755))
                        .map_err(|e| Error::io(format!("chmod {}", d.display()), e))?;
                    report.dirs += 1;
                    stack.push((entry.path(), d, rel_path, depth + 1));
                } else if ft.is_file() {
                    let n = copy_regular(&entry.path(), &dst.join(&name), meta.mode())
                        .map_err(|e| Error::io(format!("copying output {rel_path}"), e))?;
                    report.files += 1;
                    report.bytes += n;
                } else {
                    report.refused.push(RefusedEntry {
                        path: rel_path,
                        reason: if ft.is_symlink() {
                            "symlink"
                        } else {
                            "special_file"
                        },
                    });
                }
            }
        }
        Ok(report)
    }

    /// Unmount and remove the mount point.
    pub(crate) fn unmount(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        if self.mounted {
            sys::umount_detach(&self.dir)
                .map_err(|e| Error::io(format!("unmounting {}", self.dir.display()), e))?;
            self.mounted = false;
        }
        match fs::remove_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", self.dir.display()), e)),
        }
    }
}

impl Drop for OutputMount {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// Copy one regular file without following links; permissions become 0644
/// (0755 if the job made it executable): no setuid/setgid bits survive.
fn copy_regular(src: &Path, dst: &Path, mode: u32) -> io::Result<u64> {
    let mut from = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)?;
    let n = io::copy(&mut from, &mut to)?;
    let perm = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    to.set_permissions(fs::Permissions::from_mode(perm))?;
    drop::<File>(to);
    Ok(n)
}

/// Check that `dir` exists, is a directory and is empty.
pub(crate) fn check_output_dir(dir: &Path) -> Result<()> {
    let err = |reason: String| Error::OutputDir {
        path: dir.to_owned(),
        reason,
    };
    let meta = fs::symlink_metadata(dir).map_err(|e| err(e.to_string()))?;
    if !meta.is_dir() {
        return Err(err("not a directory (symlinks are not followed)".into()));
    }
    let mut it = fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
    if it.next().is_some() {
        return Err(err("not empty".into()));
    }
    Ok(())
}
