//! The job's staging directory on the host: `<work_dir>/<job id>/`, 0711
//! root, holding read-only bind mounts of the job's bind sources (`b0`,
//! `b1`, ...) and the output tmpfs (`out`).
//!
//! bwrap runs as the unprivileged service user and resolves its bind
//! sources by path, so a source below a directory the service user cannot
//! search (say `/root/...`) could not be bound directly. The supervisor,
//! still root, bind-mounts each source here first; bwrap then only needs
//! to reach the staging directory. The sources' real host paths never reach
//! bwrap's arguments, and each staging bind is already read-only, `nosuid`
//! and `nodev` on the host side.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::output::OutputMount;
use crate::sys;

/// A job's staging directory; everything is unmounted and removed on
/// [`finish`](Staging::finish) or drop.
#[derive(Debug)]
pub(crate) struct Staging {
    dir: PathBuf,
    binds: Vec<PathBuf>,
    output: Option<OutputMount>,
}

impl Staging {
    /// Create `<work_dir>/<name>`.
    pub(crate) fn create(work_dir: &Path, name: &str) -> Result<Self> {
        fs::create_dir_all(work_dir)
            .map_err(|e| Error::io(format!("creating {}", work_dir.display()), e))?;
        // Searchable, not listable: bwrap (as the service user) reaches the
        // staged mounts below it by path.
        fs::set_permissions(work_dir, fs::Permissions::from_mode(0o711))
            .map_err(|e| Error::io(format!("chmod {}", work_dir.display()), e))?;
        let dir = work_dir.join(name);
        fs::create_dir(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711))
            .map_err(|e| Error::io(format!("chmod {}", dir.display()), e))?;
        Ok(Staging {
            dir,
            binds: Vec::new(),
            output: None,
        })
    }

    /// Bind `source` (canonical, a directory or a regular file) read-only at
    /// `b<index>`; returns the staged path.
    pub(crate) fn bind(&mut self, index: usize, source: &Path, is_dir: bool) -> Result<String> {
        let target = self.dir.join(format!("b{index}"));
        let made = if is_dir {
            fs::create_dir(&target)
        } else {
            fs::File::create(&target).map(drop)
        };
        made.map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
        sys::bind_mount_ro(source, &target).map_err(|e| {
            let _ = remove(&target);
            if e.raw_os_error() == Some(libc::EPERM) {
                Error::NotPrivileged {
                    what: "to bind-mount the job's directories".into(),
                }
            } else {
                Error::io(format!("bind-mounting {}", source.display()), e)
            }
        })?;
        self.binds.push(target.clone());
        target
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::InvalidCommand("work directory path is not UTF-8".into()))
    }

    /// Mount the size-capped output tmpfs at `out`.
    pub(crate) fn mount_output(
        &mut self,
        bytes: u64,
        inodes: u64,
        uid: u32,
        gid: u32,
    ) -> Result<&OutputMount> {
        let m = OutputMount::mount(&self.dir.join("out"), bytes, inodes, uid, gid)?;
        Ok(self.output.insert(m))
    }

    /// The output mount, if any.
    pub(crate) fn output(&self) -> Option<&OutputMount> {
        self.output.as_ref()
    }

    /// Unmount everything and remove the directory.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        let mut first: Option<Error> = None;
        if let Some(m) = self.output.take()
            && let Err(e) = m.unmount()
        {
            first.get_or_insert(e);
        }
        for b in std::mem::take(&mut self.binds) {
            let r = sys::umount_detach(&b)
                .and_then(|()| remove(&b))
                .map_err(|e| Error::io(format!("unmounting {}", b.display()), e));
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        match fs::remove_dir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first.get_or_insert(Error::io(format!("removing {}", self.dir.display()), e));
            }
        }
        match first {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

fn remove(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = self.release();
    }
}
