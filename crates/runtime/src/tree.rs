//! Manifests of the installed runtime tree, and the tamper check.
//!
//! A [`TreeManifest`] lists every directory, regular file and symbolic link
//! under the venv, in path order, with each file's size, permission bits
//! and SHA-256, and each link's target. Its root digest binds all of that:
//!
//! ```text
//! root = SHA-256( line_1 || line_2 || ... )
//!   file:    "F <mode, 4 octal digits> <size> <sha256 hex> <path>\n"
//!   dir:     "D <mode> <path>\n"
//!   symlink: "L <sha256 hex of the target bytes> <path>\n"
//! ```
//!
//! Paths are relative, `/`-separated UTF-8 without control characters,
//! ordered component by component (a directory's entries right after it,
//! sorted by bytes), the order `veritrain_attest::hash` uses.
//!
//! Why not `veritrain_attest::hash::hash_path`: that rule is for user
//! artifacts. It refuses symbolic links (a venv has `bin/python ->
//! /usr/bin/python3.11` and `lib64 -> lib`), and its root digest covers file
//! contents only, not names. For a runtime, renaming a module, adding a
//! `.pth` file (Python executes those at start-up), an empty package
//! directory or a changed link is tampering, so this manifest binds names,
//! types, modes and link targets as well.
//!
//! The check ([`TreeManifest::verify`]) re-walks the tree, compares the
//! structure with the manifest, then re-hashes every file's contents on all
//! cores: the same strength as recomputing the root digest (see
//! docs/runtime.md for why no cheaper metadata check is used).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Change, Error, Result};

/// What a path is, with what the manifest records about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Permission bits (`st_mode & 0o7777`).
        mode: u32,
        /// SHA-256 of the contents, lowercase hex.
        sha256: String,
    },
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link (never followed).
    Symlink {
        /// The link's target, as stored.
        target: String,
    },
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Relative, `/`-separated path.
    pub path: String,
    /// What it is.
    #[serde(flatten)]
    pub kind: EntryKind,
}

impl TreeEntry {
    fn line(&self) -> String {
        match &self.kind {
            EntryKind::File { size, mode, sha256 } => {
                format!("F {mode:04o} {size} {sha256} {}\n", self.path)
            }
            EntryKind::Dir { mode } => format!("D {mode:04o} {}\n", self.path),
            EntryKind::Symlink { target } => {
                format!(
                    "L {} {}\n",
                    hex::encode(Sha256::digest(target.as_bytes())),
                    self.path
                )
            }
        }
    }
}

/// Counts over a manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeStats {
    /// Regular files.
    pub files: u64,
    /// Directories (the root not counted).
    pub directories: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Total bytes of the regular files.
    pub bytes: u64,
}

/// The manifest of a tree: every entry, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeManifest {
    entries: Vec<TreeEntry>,
}

/// What a successful check measured.
#[derive(Debug, Clone, Copy)]
pub struct CheckReport {
    /// Counts of what was checked.
    pub stats: TreeStats,
    /// Wall time of the whole check.
    pub elapsed: Duration,
    /// Threads that hashed.
    pub threads: usize,
}

/// A path found by the walk, before its contents are hashed.
struct Found {
    path: String,
    kind: FoundKind,
}

enum FoundKind {
    File { size: u64, mode: u32 },
    Dir { mode: u32 },
    Symlink { target: String },
}

impl TreeManifest {
    /// Walk `root` and hash every file.
    ///
    /// # Errors
    /// [`Error::UnsupportedPath`] for names that are not UTF-8 or contain
    /// control characters and for special files; [`Error::Io`].
    pub fn measure(root: &Path) -> Result<TreeManifest> {
        let found = walk(root)?;
        let files: Vec<(&str, u64)> = found
            .iter()
            .filter_map(|f| match f.kind {
                FoundKind::File { size, .. } => Some((f.path.as_str(), size)),
                _ => None,
            })
            .collect();
        let digests = hash_files(root, &files, threads())?;
        let mut digests = digests.into_iter();
        let mut entries = Vec::with_capacity(found.len());
        for f in found {
            let kind = match f.kind {
                FoundKind::File { size, mode } => {
                    let (actual_size, digest) = digests.next().ok_or_else(|| {
                        Error::io(root.join(&f.path), std::io::Error::other("hash missing"))
                    })?;
                    if actual_size != size {
                        return Err(Error::io(
                            root.join(&f.path),
                            std::io::Error::other("file changed while it was hashed"),
                        ));
                    }
                    EntryKind::File {
                        size,
                        mode,
                        sha256: hex::encode(digest),
                    }
                }
                FoundKind::Dir { mode } => EntryKind::Dir { mode },
                FoundKind::Symlink { target } => EntryKind::Symlink { target },
            };
            entries.push(TreeEntry { path: f.path, kind });
        }
        Ok(TreeManifest { entries })
    }

    /// Build from recorded entries (an identity file), checking the order.
    ///
    /// # Errors
    /// A description of the first entry out of order or duplicated.
    pub fn from_entries(entries: Vec<TreeEntry>) -> std::result::Result<TreeManifest, String> {
        for pair in entries.windows(2) {
            if let [a, b] = pair
                && path_order(&a.path, &b.path) != std::cmp::Ordering::Less
            {
                return Err(format!("entries out of order at {:?}", b.path));
            }
        }
        Ok(TreeManifest { entries })
    }

    /// The entries, in path order.
    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    /// The root digest (module docs), lowercase hex.
    pub fn root_digest_hex(&self) -> String {
        let mut h = Sha256::new();
        for e in &self.entries {
            h.update(e.line().as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Counts of files, directories, links and bytes.
    pub fn stats(&self) -> TreeStats {
        let mut s = TreeStats::default();
        for e in &self.entries {
            match e.kind {
                EntryKind::File { size, .. } => {
                    s.files += 1;
                    s.bytes += size;
                }
                EntryKind::Dir { .. } => s.directories += 1,
                EntryKind::Symlink { .. } => s.symlinks += 1,
            }
        }
        s
    }

    /// The tamper check: `root` must hold exactly this manifest, contents
    /// included. Structure is compared first (cheap), then every file is
    /// re-hashed in parallel.
    ///
    /// # Errors
    /// [`Error::Tampered`] naming the first differing path in path order
    /// and how many others differ; [`Error::UnsupportedPath`] / [`Error::Io`]
    /// when the tree cannot be read.
    pub fn verify(&self, root: &Path) -> Result<CheckReport> {
        let start = Instant::now();
        let found = walk(root)?;
        let mut diffs: BTreeMap<String, Change> = BTreeMap::new();
        let mut to_hash: Vec<(&str, u64)> = Vec::new();
        let mut expected: Vec<&str> = Vec::new();
        let recorded: BTreeMap<&str, &EntryKind> = self
            .entries
            .iter()
            .map(|e| (e.path.as_str(), &e.kind))
            .collect();
        let mut seen = 0usize;
        for f in &found {
            let Some(kind) = recorded.get(f.path.as_str()) else {
                diffs.insert(f.path.clone(), Change::Added);
                continue;
            };
            seen += 1;
            let change = match (&f.kind, kind) {
                (
                    FoundKind::File { size, mode },
                    EntryKind::File {
                        size: rsize,
                        mode: rmode,
                        sha256,
                    },
                ) => {
                    if size != rsize {
                        Some(Change::Resized)
                    } else if mode != rmode {
                        Some(Change::ModeChanged)
                    } else {
                        to_hash.push((f.path.as_str(), *size));
                        expected.push(sha256.as_str());
                        None
                    }
                }
                (FoundKind::Dir { mode }, EntryKind::Dir { mode: rmode }) => {
                    (mode != rmode).then_some(Change::ModeChanged)
                }
                (FoundKind::Symlink { target }, EntryKind::Symlink { target: rtarget }) => {
                    (target != rtarget).then_some(Change::LinkChanged)
                }
                _ => Some(Change::TypeChanged),
            };
            if let Some(c) = change {
                diffs.insert(f.path.clone(), c);
            }
        }
        if seen != self.entries.len() {
            let present: std::collections::HashSet<&str> =
                found.iter().map(|f| f.path.as_str()).collect();
            for e in &self.entries {
                if !present.contains(e.path.as_str()) {
                    diffs.insert(e.path.clone(), Change::Missing);
                }
            }
        }
        let threads = threads();
        let digests = hash_files(root, &to_hash, threads)?;
        for (((path, _), (_, digest)), want) in to_hash.iter().zip(&digests).zip(&expected) {
            if hex::encode(digest) != *want {
                diffs.insert((*path).to_owned(), Change::Modified);
            }
        }
        // BTreeMap order is byte order; report the first in path order.
        let first = diffs
            .iter()
            .min_by(|a, b| path_order(a.0, b.0))
            .map(|(p, c)| (p.clone(), *c));
        if let Some((path, change)) = first {
            return Err(Error::Tampered {
                dir: root.to_path_buf(),
                path,
                change,
                others: diffs.len() - 1,
            });
        }
        Ok(CheckReport {
            stats: self.stats(),
            elapsed: start.elapsed(),
            threads,
        })
    }
}

/// Component-by-component path order (`a/b` < `a-b` < `a.txt`), the order
/// of a depth-first walk with each directory's entries sorted by bytes.
pub fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn rel_name(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let Some(text) = rel.to_str() else {
        return Err(Error::UnsupportedPath {
            path: path.to_path_buf(),
            reason: "the name is not UTF-8",
        });
    };
    if text.chars().any(char::is_control) {
        return Err(Error::UnsupportedPath {
            path: path.to_path_buf(),
            reason: "the name contains a control character",
        });
    }
    Ok(text.to_owned())
}

/// Every path under `root`, in component order. Iterative (a tampered tree
/// may nest arbitrarily deep); never follows links.
fn walk(root: &Path) -> Result<Vec<Found>> {
    let meta = fs::symlink_metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        return Err(Error::UnsupportedPath {
            path: root.to_path_buf(),
            reason: "the runtime tree must be a directory",
        });
    }
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let child = entry.map_err(|e| Error::io(&dir, e))?.path();
            let meta = fs::symlink_metadata(&child).map_err(|e| Error::io(&child, e))?;
            let path = rel_name(root, &child)?;
            let ft = meta.file_type();
            let mode = meta.permissions().mode() & 0o7777;
            let kind = if ft.is_symlink() {
                let target = fs::read_link(&child).map_err(|e| Error::io(&child, e))?;
                let Some(target) = target.to_str() else {
                    return Err(Error::UnsupportedPath {
                        path: child,
                        reason: "the link target is not UTF-8",
                    });
                };
                FoundKind::Symlink {
                    target: target.to_owned(),
                }
            } else if ft.is_dir() {
                stack.push(child);
                FoundKind::Dir { mode }
            } else if ft.is_file() {
                FoundKind::File {
                    size: meta.size(),
                    mode,
                }
            } else {
                return Err(Error::UnsupportedPath {
                    path: child,
                    reason: "a device, socket or FIFO has no place in a runtime tree",
                });
            };
            out.push(Found { path, kind });
        }
    }
    out.sort_by(|a, b| path_order(&a.path, &b.path));
    Ok(out)
}

/// Bytes read and SHA-256 of one file.
type Hashed = (u64, [u8; 32]);

/// Hash files relative to `root` on `threads` threads, largest first so one
/// big library does not end up last on a busy thread. Returns (size, digest)
/// per input, in input order.
fn hash_files(root: &Path, files: &[(&str, u64)], threads: usize) -> Result<Vec<Hashed>> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files.get(i).map_or(0, |f| f.1)));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Hashed>>> = Mutex::new(vec![None; files.len()]);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { break };
                    let Some((rel, _)) = files.get(i) else { break };
                    let path = root.join(rel);
                    match hash_one(&path, &mut buf) {
                        Ok(r) => {
                            if let Ok(mut v) = results.lock()
                                && let Some(slot) = v.get_mut(i)
                            {
                                *slot = Some(r);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(Error::io(path, e));
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let results = results
        .into_inner()
        .map_err(|_| Error::io(root, std::io::Error::other("a hashing thread panicked")))?;
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| Error::io(root, std::io::Error::other("a file was not hashed"))))
        .collect()
}

fn hash_one(path: &Path, buf: &mut [u8]) -> std::io::Result<Hashed> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = f.read(buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok((total, h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn sample() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("lib/site/pkg")).unwrap();
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::write(r.join("lib/site/pkg/__init__.py"), b"x = 1\n").unwrap();
        fs::write(r.join("lib/site/a-b.py"), b"").unwrap();
        fs::write(r.join("lib/site/a.txt"), vec![7u8; 3 << 20]).unwrap();
        fs::write(r.join("pyvenv.cfg"), b"home = /usr/bin\n").unwrap();
        symlink("/usr/bin/python3.11", r.join("bin/python")).unwrap();
        symlink("lib", r.join("lib64")).unwrap();
        d
    }

    #[test]
    fn measures_in_component_order_and_verifies_unchanged_tree() {
        let d = sample();
        let m = TreeManifest::measure(d.path()).unwrap();
        let paths: Vec<&str> = m.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin",
                "bin/python",
                "lib",
                "lib/site",
                "lib/site/a-b.py",
                "lib/site/a.txt",
                "lib/site/pkg",
                "lib/site/pkg/__init__.py",
                "lib64",
                "pyvenv.cfg"
            ]
        );
        let s = m.stats();
        assert_eq!((s.files, s.directories, s.symlinks), (4, 4, 2));
        assert_eq!(s.bytes, (3 << 20) + 6 + 16);
        // The digest of a known file is what sha256sum prints.
        let init = m
            .entries()
            .iter()
            .find(|e| e.path == "lib/site/pkg/__init__.py")
            .unwrap();
        let EntryKind::File { sha256, .. } = &init.kind else {
            panic!()
        };
        assert_eq!(sha256, &hex::encode(Sha256::digest(b"x = 1\n")));
        m.verify(d.path()).unwrap();
        assert_eq!(
            TreeManifest::measure(d.path()).unwrap().root_digest_hex(),
            m.root_digest_hex()
        );
    }

    fn tamper_case(f: impl FnOnce(&Path)) -> (String, Change, String) {
        let d = sample();
        let m = TreeManifest::measure(d.path()).unwrap();
        f(d.path());
        let err = m.verify(d.path()).unwrap_err();
        assert_eq!(err.code(), "runtime.tampered");
        let Error::Tampered { path, change, .. } = &err else {
            panic!()
        };
        let root_after = TreeManifest::measure(d.path()).unwrap().root_digest_hex();
        assert_ne!(
            root_after,
            m.root_digest_hex(),
            "root digest must change too"
        );
        (path.clone(), *change, err.to_string())
    }

    #[test]
    fn every_kind_of_tampering_is_refused_and_named() {
        // Same size, one byte flipped deep in a large file: only content
        // hashing sees this.
        let (p, c, msg) = tamper_case(|r| {
            let mut bytes = fs::read(r.join("lib/site/a.txt")).unwrap();
            bytes[2 << 20] ^= 1;
            let mtime = fs::metadata(r.join("lib/site/a.txt"))
                .unwrap()
                .modified()
                .unwrap();
            fs::write(r.join("lib/site/a.txt"), bytes).unwrap();
            File::options()
                .write(true)
                .open(r.join("lib/site/a.txt"))
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        });
        assert_eq!((p.as_str(), c), ("lib/site/a.txt", Change::Modified));
        assert!(msg.contains("lib/site/a.txt was modified"), "{msg}");

        let (p, c, _) =
            tamper_case(|r| fs::write(r.join("lib/site/evil.pth"), b"import os\n").unwrap());
        assert_eq!((p.as_str(), c), ("lib/site/evil.pth", Change::Added));
        let (p, c, _) = tamper_case(|r| fs::create_dir(r.join("lib/site/keras_nlp")).unwrap());
        assert_eq!((p.as_str(), c), ("lib/site/keras_nlp", Change::Added));
        let (p, c, _) =
            tamper_case(|r| fs::remove_file(r.join("lib/site/pkg/__init__.py")).unwrap());
        assert_eq!(
            (p.as_str(), c),
            ("lib/site/pkg/__init__.py", Change::Missing)
        );
        let (p, c, _) =
            tamper_case(|r| fs::write(r.join("pyvenv.cfg"), b"home = /tmp/evil\n").unwrap());
        assert_eq!((p.as_str(), c), ("pyvenv.cfg", Change::Resized));
        let (p, c, _) = tamper_case(|r| {
            fs::set_permissions(
                r.join("lib/site/a-b.py"),
                fs::Permissions::from_mode(0o4755),
            )
            .unwrap()
        });
        assert_eq!((p.as_str(), c), ("lib/site/a-b.py", Change::ModeChanged));
        let (p, c, _) = tamper_case(|r| {
            fs::remove_file(r.join("bin/python")).unwrap();
            symlink("/tmp/python", r.join("bin/python")).unwrap();
        });
        assert_eq!((p.as_str(), c), ("bin/python", Change::LinkChanged));
        let (p, c, _) = tamper_case(|r| {
            fs::remove_file(r.join("lib64")).unwrap();
            fs::create_dir(r.join("lib64")).unwrap();
        });
        assert_eq!((p.as_str(), c), ("lib64", Change::TypeChanged));
        // Two renamed files with swapped contents: names are bound.
        let (p, _, msg) = tamper_case(|r| {
            fs::rename(
                r.join("lib/site/pkg/__init__.py"),
                r.join("lib/site/pkg/__init__.pyx"),
            )
            .unwrap();
        });
        assert_eq!(p, "lib/site/pkg/__init__.py");
        assert!(msg.contains("1 more path"), "{msg}");
    }

    #[test]
    fn refuses_special_files_and_bad_names() {
        use std::os::unix::ffi::OsStrExt;
        let d = sample();
        fs::write(d.path().join("new\nline"), b"").unwrap();
        let err = TreeManifest::measure(d.path()).unwrap_err();
        assert_eq!(err.code(), "runtime.unsupported_path");
        assert!(err.to_string().contains("control character"), "{err}");

        let d = sample();
        fs::write(d.path().join(std::ffi::OsStr::from_bytes(b"x\xff")), b"").unwrap();
        let err = TreeManifest::measure(d.path()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");

        let d = sample();
        let _sock = std::os::unix::net::UnixListener::bind(d.path().join("lib/sock")).unwrap();
        let err = TreeManifest::measure(d.path()).unwrap_err();
        assert!(err.to_string().contains("socket"), "{err}");
    }

    #[test]
    fn from_entries_checks_order() {
        let d = sample();
        let m = TreeManifest::measure(d.path()).unwrap();
        let mut entries = m.entries().to_vec();
        assert!(TreeManifest::from_entries(entries.clone()).is_ok());
        entries.swap(0, 1);
        assert!(TreeManifest::from_entries(entries).is_err());
    }

    #[test]
    fn path_order_is_by_component() {
        let mut v = vec!["a.txt", "a-b/c", "a/b", "a", "A"];
        v.sort_by(|a, b| path_order(a, b));
        assert_eq!(v, ["A", "a", "a/b", "a-b/c", "a.txt"]);
    }
}
