//! Extraction of a checked archive into a fresh directory.
//!
//! Used when a later step needs the members as files (the trainer's input
//! directory). The archive has already passed [`super::ZipArchive::open`],
//! so names are relative, `..`-free and unique; extraction still does not
//! trust the file system it writes to:
//!
//! - the target directory is created here and must not exist before, so
//!   nothing in it predates the extraction;
//! - directories are created one component at a time, and an existing one
//!   is accepted only if `symlink_metadata` says it is a real directory;
//! - files are opened with `O_CREAT | O_EXCL | O_NOFOLLOW`, so an existing
//!   file or a symlink in its place is an error, never followed;
//! - bytes written are counted against the entry's declared size and the
//!   archive's total limit while writing (on top of the reader's checks);
//! - on any error the partial target directory is removed.

use std::collections::HashSet;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ZipArchive, codes, entry_at};
use crate::error::{Error, Result};
use crate::finding::Finding;

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtractReport {
    /// Regular files written.
    pub files: u64,
    /// Directories created (including implied parents, excluding the root).
    pub directories: u64,
    /// Bytes written.
    pub bytes: u64,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Extracts every entry of `archive` into `dest`, which this function
/// creates and which must not exist. Its parent must exist.
pub fn extract_all<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    dest: &Path,
) -> Result<ExtractReport> {
    // A fresh directory: an existing one could hold planted symlinks.
    DirBuilder::new()
        .mode(0o755)
        .create(dest)
        .map_err(io_at(dest))?;
    let result = extract_into(archive, dest);
    if result.is_err() {
        // Best effort; remove_dir_all does not follow symlinks.
        let _ = std::fs::remove_dir_all(dest);
    }
    result
}

fn extract_into<R: Read + Seek>(archive: &mut ZipArchive<R>, root: &Path) -> Result<ExtractReport> {
    let mut report = ExtractReport::default();
    let mut made: HashSet<PathBuf> = HashSet::new();
    let max_total = archive.limits().max_total_bytes;
    let mut buf = vec![0u8; 64 << 10];
    for index in 0..archive.len() {
        let Some(entry) = archive.entries().get(index).cloned() else {
            break;
        };
        let body = entry.name().strip_suffix('/').unwrap_or(entry.name());
        let mut parts: Vec<&str> = body.split('/').collect();
        let file_part = if entry.is_dir() { None } else { parts.pop() };
        let mut path = root.to_path_buf();
        for part in parts {
            path.push(part);
            if made.contains(&path) {
                continue;
            }
            make_dir(&path)?;
            made.insert(path.clone());
            report.directories += 1;
        }
        let Some(file_part) = file_part else {
            continue;
        };
        path.push(file_part);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_at(&path))?;
        let mut reader = archive.entry_reader(index)?;
        let mut written = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(reader.into_error(e)),
            };
            written += n as u64;
            // Re-checked while writing, independent of the reader's count.
            if written > entry.size() || report.bytes + written > max_total {
                return Err(Finding::new(
                    codes::SIZE_MISMATCH,
                    "entry wrote more bytes than the limits allow",
                    entry_at(entry.name()),
                )
                .into());
            }
            file.write_all(buf.get(..n).unwrap_or_default())
                .map_err(io_at(&path))?;
        }
        report.bytes += written;
        report.files += 1;
    }
    Ok(report)
}

/// Creates one directory component, or accepts an existing real directory.
fn make_dir(path: &Path) -> Result<()> {
    match DirBuilder::new().mode(0o755).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path).map_err(io_at(path))?;
            if meta.file_type().is_dir() {
                Ok(())
            } else {
                Err(Error::Io {
                    path: path.to_owned(),
                    source: std::io::Error::other(
                        "exists and is not a directory (not following links)",
                    ),
                })
            }
        }
        Err(e) => Err(Error::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}
