//! Streaming SHA-256 manifests of files and directories.
//!
//! Where it sits: every artifact Veritrain attests to (the uploaded dataset,
//! the training config, the trained model) is hashed here into a
//! [`Manifest`]. Its entries become in-toto link materials and products
//! ([`Manifest::artifacts`]), its root digest becomes a statement subject,
//! and `veritrain hash` prints the same manifest so a user can compare the
//! data they hold against a BOM.
//!
//! The rules are specified in `docs/hashing.md`; in short:
//! - an entry is a regular file (or, in [`Mode::Shards`], a byte range of
//!   one) with a relative, `/`-separated UTF-8 path, its size and its SHA-256;
//! - a per-file digest is the plain SHA-256 of the file, what `sha256sum`
//!   prints;
//! - entries are ordered by path, compared component by component with each
//!   component compared as bytes (then by shard start);
//! - the root digest is SHA-256 over the concatenated raw 32-byte entry
//!   digests in that order, the OpenSSF model-signing rule.
//!
//! Only regular files and directories are hashed. Symlinks, FIFOs, sockets,
//! devices, names that are not UTF-8 and relative names that leave the root
//! are refused: a manifest must describe exactly the bytes inside its root.
//!
//! Files are hashed by a pool of worker threads, each with one fixed-size
//! read buffer, so memory stays bounded whatever the file sizes.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read};
use std::num::NonZeroUsize;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize};

use serde::{Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// OpenSSF model-signing's default shard size (1 GB, decimal).
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;

/// The read buffer each worker owns: 1 MiB.
pub const DEFAULT_BUFFER_SIZE: usize = 1 << 20;

/// Upper bound on the read buffer, so that a caller's option cannot turn
/// "bounded memory" into "one buffer the size of the file".
pub const MAX_BUFFER_SIZE: usize = 64 << 20;

/// A raw SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// How files are cut into manifest entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Mode {
    /// One entry per file; its digest is the plain SHA-256 of the file.
    Files,
    /// One entry per `shard_size` bytes of each file (OpenSSF "shards"
    /// serialization), so a single large file is hashed on several cores.
    Shards {
        /// Bytes per shard; the last shard of a file may be shorter.
        shard_size: u64,
    },
}

/// A count of the bytes hashed so far, shared with the hashing workers, so
/// a caller can show progress on large inputs from another thread.
#[derive(Debug, Clone, Default)]
pub struct ByteCounter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ByteCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        ByteCounter::default()
    }

    /// Bytes hashed so far.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Two counters are equal when they are the same counter.
impl PartialEq for ByteCounter {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ByteCounter {}

/// Options for hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashOptions {
    /// How files are cut into entries.
    pub mode: Mode,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    /// Bytes each worker reads at a time (1 to [`MAX_BUFFER_SIZE`]).
    pub buffer_size: usize,
    /// Counts the bytes read, for progress display.
    pub progress: Option<ByteCounter>,
}

impl Default for HashOptions {
    fn default() -> Self {
        HashOptions {
            mode: Mode::Files,
            threads: 0,
            buffer_size: DEFAULT_BUFFER_SIZE,
            progress: None,
        }
    }
}

impl HashOptions {
    /// Per-file entries (the default).
    pub fn files() -> Self {
        HashOptions::default()
    }

    /// Sharded entries of `shard_size` bytes.
    pub fn shards(shard_size: u64) -> Self {
        HashOptions {
            mode: Mode::Shards { shard_size },
            ..HashOptions::default()
        }
    }

    fn validate(&self) -> Result<()> {
        if let Mode::Shards { shard_size: 0 } = self.mode {
            return Err(Error::HashOption(
                "shard size must be at least 1 byte".into(),
            ));
        }
        if self.buffer_size == 0 || self.buffer_size > MAX_BUFFER_SIZE {
            return Err(Error::HashOption(format!(
                "read buffer size must be between 1 and {MAX_BUFFER_SIZE} bytes, got {}",
                self.buffer_size
            )));
        }
        Ok(())
    }

    fn worker_count(&self, jobs: usize) -> usize {
        let wanted = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
        } else {
            self.threads
        };
        wanted.min(jobs).max(1)
    }
}

/// One hashed file, or one shard of a file in [`Mode::Shards`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<u64>,
    size: u64,
    #[serde(serialize_with = "serialize_hex")]
    sha256: Sha256Digest,
}

impl Entry {
    /// The file's path relative to the manifest root, `/`-separated.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes covered by the digest: the file size, or the shard length.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The byte range `start..end` of a shard entry; `None` for a whole file.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.start.zip(self.end)
    }

    /// The raw SHA-256 digest.
    pub fn sha256(&self) -> &Sha256Digest {
        &self.sha256
    }

    /// The SHA-256 digest as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The entry's name as OpenSSF model-signing writes it: the path, or
    /// `path:start:end` for a shard.
    pub fn identifier(&self) -> String {
        match self.range() {
            Some((start, end)) => format!("{}:{start}:{end}", self.path),
            None => self.path.clone(),
        }
    }
}

/// The root digest, serialized as an in-toto digest set `{"sha256": hex}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct RootDigest {
    #[serde(serialize_with = "serialize_hex")]
    sha256: Sha256Digest,
}

/// The hashed contents of one or more inputs. Only this module builds one,
/// so entries are always sorted, unique, and agree with the root digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    mode: Mode,
    entries: Vec<Entry>,
    root_digest: RootDigest,
}

impl Manifest {
    fn new(mode: Mode, mut entries: Vec<Entry>) -> Manifest {
        entries.sort_by(entry_order);
        let mut root = Sha256::new();
        for entry in &entries {
            root.update(entry.sha256);
        }
        Manifest {
            mode,
            entries,
            root_digest: RootDigest {
                sha256: root.finalize().into(),
            },
        }
    }

    /// A per-file manifest from entries hashed elsewhere, e.g. the members
    /// of a ZIP archive hashed as they are inflated, or a manifest read back
    /// from a signed document. The entries are put in manifest order and the
    /// root digest is computed here, so it always agrees with them.
    ///
    /// # Errors
    /// [`Error::HashDuplicatePath`] if two entries have the same path.
    pub fn from_file_digests(
        entries: impl IntoIterator<Item = (String, u64, Sha256Digest)>,
    ) -> Result<Manifest> {
        let entries: Vec<Entry> = entries
            .into_iter()
            .map(|(path, size, sha256)| Entry {
                path,
                start: None,
                end: None,
                size,
                sha256,
            })
            .collect();
        let manifest = Manifest::new(Mode::Files, entries);
        for pair in manifest.entries.windows(2) {
            if let [a, b] = pair
                && a.path == b.path
            {
                return Err(Error::HashDuplicatePath {
                    path: a.path.clone(),
                });
            }
        }
        Ok(manifest)
    }

    /// How the files were cut into entries.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The entries in manifest order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The whole-file entry for `path`, if the manifest has one (entries are
    /// in manifest order, so this is a binary search).
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| path_order(&e.path, path).then(e.start.cmp(&None)))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// SHA-256 over the concatenated raw entry digests in manifest order.
    pub fn root_digest(&self) -> &Sha256Digest {
        &self.root_digest.sha256
    }

    /// The root digest as lowercase hex.
    pub fn root_digest_hex(&self) -> String {
        hex::encode(self.root_digest.sha256)
    }

    /// Total bytes hashed.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// The entries as an in-toto artifact map: path -> `{"sha256": hex}`.
    ///
    /// Meant for per-file manifests, whose keys are file paths. A sharded
    /// manifest is keyed by shard identifier (`path:start:end`), so it never
    /// matches the per-file artifacts of the same data.
    pub fn artifacts(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.entries
            .iter()
            .map(|entry| {
                let digest = BTreeMap::from([("sha256".to_owned(), entry.sha256_hex())]);
                (entry.identifier(), digest)
            })
            .collect()
    }
}

/// Hash one file or directory. A directory's entries are named relative to
/// it; a single file's entry is named by its file name.
pub fn hash_path(path: &Path, options: &HashOptions) -> Result<Manifest> {
    hash_inputs(&[path], options)
}

/// Hash several files and directories into one manifest, as
/// `veritrain hash PATH...` does. Each directory contributes its files
/// named relative to that directory, each file its file name; two inputs
/// that produce the same name are refused.
pub fn hash_inputs<P: AsRef<Path>>(inputs: &[P], options: &HashOptions) -> Result<Manifest> {
    options.validate()?;
    let mut sources = Vec::new();
    for input in inputs {
        collect_input(input.as_ref(), &mut sources)?;
    }
    hash_sources(sources, options)
}

/// Hash the named files and directories under `root`. Each name is a
/// relative `/`-separated path; entries keep it as their path prefix.
/// Names that are empty, absolute, or contain `.`, `..` or empty components
/// are refused, as is a symlink at any level below `root`.
pub fn hash_relative<S: AsRef<str>>(
    root: &Path,
    names: &[S],
    options: &HashOptions,
) -> Result<Manifest> {
    options.validate()?;
    // As for inputs: without the trailing `/`, lstat sees a linked root.
    let root: PathBuf = root.components().collect();
    let root = root.as_path();
    let root_meta = lstat(root)?;
    match kind_of(&root_meta) {
        Kind::Dir => {}
        Kind::Symlink => return Err(Error::HashSymlink { path: root.into() }),
        Kind::File | Kind::Special => {
            return Err(Error::Io {
                path: root.into(),
                source: std::io::Error::new(
                    ErrorKind::NotADirectory,
                    "the root must be a directory",
                ),
            });
        }
    }
    let mut sources = Vec::new();
    for name in names {
        collect_relative(root, name.as_ref(), &mut sources)?;
    }
    hash_sources(sources, options)
}

// ----- collecting inputs ---------------------------------------------------

/// A regular file found while walking the inputs.
#[derive(Debug)]
struct Source {
    /// The manifest path.
    name: String,
    /// Where to open it.
    path: PathBuf,
    /// What lstat saw while walking; the opened file must still match.
    size: u64,
    dev: u64,
    ino: u64,
}

enum Kind {
    File,
    Dir,
    Symlink,
    Special,
}

fn kind_of(meta: &Metadata) -> Kind {
    let t = meta.file_type();
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_file() {
        Kind::File
    } else {
        // Allow-list: anything that is not a plain file or directory (FIFO,
        // socket, block or character device, or a type we do not know) has
        // no stable bytes to hash, and opening a FIFO would hang.
        Kind::Special
    }
}

fn lstat(path: &Path) -> Result<Metadata> {
    // Never follow links: a link could point anywhere outside the root.
    std::fs::symlink_metadata(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}

fn source(name: String, path: PathBuf, meta: &Metadata) -> Source {
    Source {
        name,
        path,
        size: meta.len(),
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

fn collect_input(input: &Path, out: &mut Vec<Source>) -> Result<()> {
    // Rebuilding the path from its components drops a trailing `/`: lstat on
    // `link/` would resolve the link and hide it from us.
    let input: PathBuf = input.components().collect();
    let meta = lstat(&input)?;
    match kind_of(&meta) {
        Kind::Symlink => Err(Error::HashSymlink { path: input }),
        Kind::Special => Err(Error::HashSpecialFile { path: input }),
        Kind::Dir => walk(&input, "", out),
        Kind::File => {
            let Some(name) = input.file_name().and_then(|n| n.to_str()) else {
                return Err(Error::HashPathEscape { path: input });
            };
            out.push(source(name.to_owned(), input.clone(), &meta));
            Ok(())
        }
    }
}

fn collect_relative(root: &Path, name: &str, out: &mut Vec<Source>) -> Result<()> {
    let escape = || Error::HashPathEscape { path: name.into() };
    // Only plain names: `..` walks out of the root, a leading `/` ignores it,
    // and `.`, empty components or NUL would give one file several names.
    if name.is_empty() || name.starts_with('/') || name.contains('\0') {
        return Err(escape());
    }
    let components: Vec<&str> = name.split('/').collect();
    if components
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(escape());
    }
    let mut path = root.to_path_buf();
    let last = components.len().saturating_sub(1);
    for (i, component) in components.iter().enumerate() {
        path.push(component);
        // Check every level, so a symlinked directory on the way cannot
        // redirect the rest of the name outside the root.
        let meta = lstat(&path)?;
        match (kind_of(&meta), i == last) {
            (Kind::Symlink, _) => return Err(Error::HashSymlink { path }),
            (Kind::Special, _) => return Err(Error::HashSpecialFile { path }),
            (Kind::Dir, false) => {}
            (Kind::Dir, true) => return walk(&path, name, out),
            (Kind::File, true) => {
                out.push(source(name.to_owned(), path.clone(), &meta));
                return Ok(());
            }
            (Kind::File, false) => {
                return Err(Error::Io {
                    path,
                    source: std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
                });
            }
        }
    }
    Ok(())
}

/// Walk a directory without following links; `prefix` is its manifest path
/// ("" for an input directory itself).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<Source>) -> Result<()> {
    let mut pending = vec![(dir.to_path_buf(), prefix.to_owned())];
    while let Some((dir, prefix)) = pending.pop() {
        let io = |source| Error::Io {
            path: dir.clone(),
            source,
        };
        for dirent in std::fs::read_dir(&dir).map_err(io)? {
            let dirent = dirent.map_err(io)?;
            let path = dirent.path();
            // Manifest paths are UTF-8 strings; a name that is not cannot be
            // written down faithfully, so it is refused rather than mangled.
            let Some(name) = dirent.file_name().to_str().map(str::to_owned) else {
                return Err(Error::HashPathEscape { path });
            };
            let name = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = lstat(&path)?;
            match kind_of(&meta) {
                Kind::Symlink => return Err(Error::HashSymlink { path }),
                Kind::Special => return Err(Error::HashSpecialFile { path }),
                Kind::Dir => pending.push((path, name)),
                Kind::File => out.push(source(name, path, &meta)),
            }
        }
    }
    Ok(())
}

// ----- ordering --------------------------------------------------------------

/// Manifest path order: component by component, each compared as bytes.
/// This is how OpenSSF model-signing sorts its `PurePosixPath`s; it differs
/// from plain byte order when a name continues with a byte below `/`
/// (`a/b` sorts before `a.txt` here, after it in byte order).
pub fn path_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

fn entry_order(a: &Entry, b: &Entry) -> Ordering {
    path_order(&a.path, &b.path).then(a.start.cmp(&b.start))
}

// ----- hashing -------------------------------------------------------------

/// One unit of work: a whole file, or one shard of it.
#[derive(Debug)]
struct Job {
    source: usize,
    /// `None` hashes the whole file; `Some((start, end))` one shard.
    range: Option<(u64, u64)>,
    /// Bytes to read, for scheduling the largest jobs first.
    len: u64,
}

fn hash_sources(mut sources: Vec<Source>, options: &HashOptions) -> Result<Manifest> {
    sources.sort_by(|a, b| path_order(&a.name, &b.name));
    for pair in sources.windows(2) {
        if let [a, b] = pair
            && a.name == b.name
        {
            return Err(Error::HashDuplicatePath {
                path: a.name.clone(),
            });
        }
    }

    let mut jobs = Vec::new();
    for (index, src) in sources.iter().enumerate() {
        match options.mode {
            Mode::Files => jobs.push(Job {
                source: index,
                range: None,
                len: src.size,
            }),
            Mode::Shards { shard_size } => {
                // Shards [0, s), [s, 2s), ... with the last one ending at the
                // file size. An empty file has no shard at all: that is what
                // OpenSSF model-signing does, and its root digests must match.
                let mut start: u64 = 0;
                while start < src.size {
                    let end = start.saturating_add(shard_size).min(src.size);
                    jobs.push(Job {
                        source: index,
                        range: Some((start, end)),
                        len: end - start,
                    });
                    start = end;
                }
            }
        }
    }

    let digests = run_jobs(&sources, &jobs, options)?;
    let entries = jobs
        .iter()
        .zip(digests)
        .filter_map(|(job, digest)| {
            let src = sources.get(job.source)?;
            Some(Entry {
                path: src.name.clone(),
                start: job.range.map(|r| r.0),
                end: job.range.map(|r| r.1),
                size: job.len,
                sha256: digest,
            })
        })
        .collect();
    Ok(Manifest::new(options.mode, entries))
}

/// Hash every job on a pool of scoped threads; the digests come back in job
/// order. Each worker owns one read buffer, so memory is
/// `workers * buffer_size` whatever the file sizes.
fn run_jobs(sources: &[Source], jobs: &[Job], options: &HashOptions) -> Result<Vec<Sha256Digest>> {
    // Largest jobs first, so one big file does not start last and leave the
    // other cores idle at the end.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| {
        let len = |i: usize| jobs.get(i).map_or(0, |j| j.len);
        len(b).cmp(&len(a))
    });

    let workers = options.worker_count(jobs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let progress = options.progress.as_ref();
    let work = || {
        worker(
            sources,
            jobs,
            &order,
            &next,
            &failed,
            options.buffer_size,
            progress,
        )
    };

    let outcomes: Vec<Result<Vec<(usize, Sha256Digest)>>> = if workers <= 1 {
        vec![work()]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Io {
                            path: PathBuf::from("(hashing worker)"),
                            source: std::io::Error::other("a hashing thread panicked"),
                        })
                    })
                })
                .collect()
        })
    };

    let mut digests: Vec<Option<Sha256Digest>> = vec![None; jobs.len()];
    for outcome in outcomes {
        for (job, digest) in outcome? {
            if let Some(slot) = digests.get_mut(job) {
                *slot = Some(digest);
            }
        }
    }
    digests
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Io {
            path: PathBuf::from("(hashing worker)"),
            source: std::io::Error::other("a hashing job produced no digest"),
        })
}

fn worker(
    sources: &[Source],
    jobs: &[Job],
    order: &[usize],
    next: &AtomicUsize,
    failed: &AtomicBool,
    buffer_size: usize,
    progress: Option<&ByteCounter>,
) -> Result<Vec<(usize, Sha256Digest)>> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut buffer = vec![0u8; buffer_size];
    let mut done = Vec::new();
    while !failed.load(Relaxed) {
        let Some(&index) = order.get(next.fetch_add(1, Relaxed)) else {
            break;
        };
        let job = jobs.get(index);
        let src = job.and_then(|j| sources.get(j.source));
        let (Some(job), Some(src)) = (job, src) else {
            break;
        };
        match hash_job(src, job.range, &mut buffer, progress) {
            Ok(digest) => done.push((index, digest)),
            Err(err) => {
                failed.store(true, Relaxed);
                return Err(err);
            }
        }
    }
    Ok(done)
}

/// Open a walked file again and check it is still the same regular file.
fn open_checked(src: &Source) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        // O_NOFOLLOW: a file swapped for a link since the walk is refused,
        // not followed. O_NONBLOCK: a file swapped for a FIFO cannot hang us
        // in open(); it has no effect on reads of regular files.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&src.path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                Error::HashSymlink {
                    path: src.path.clone(),
                }
            } else {
                Error::Io {
                    path: src.path.clone(),
                    source,
                }
            }
        })?;
    let meta = file.metadata().map_err(|source| Error::Io {
        path: src.path.clone(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(Error::HashSpecialFile {
            path: src.path.clone(),
        });
    }
    if (meta.dev(), meta.ino()) != (src.dev, src.ino) {
        return Err(changed(src, "it was replaced by another file".into()));
    }
    if meta.len() != src.size {
        return Err(changed(
            src,
            format!("its size went from {} to {} bytes", src.size, meta.len()),
        ));
    }
    Ok(file)
}

fn changed(src: &Source, detail: String) -> Error {
    Error::HashChanged {
        path: src.path.clone(),
        detail,
    }
}

fn hash_job(
    src: &Source,
    range: Option<(u64, u64)>,
    buffer: &mut [u8],
    progress: Option<&ByteCounter>,
) -> Result<Sha256Digest> {
    let count = |n: usize| {
        if let Some(p) = progress {
            p.add(n);
        }
    };
    let mut file = open_checked(src)?;
    let io = |source| Error::Io {
        path: src.path.clone(),
        source,
    };
    let mut hasher = Sha256::new();
    match range {
        None => {
            let mut total: u64 = 0;
            loop {
                let n = match file.read(buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io(e)),
                };
                hasher.update(filled(buffer, n, src)?);
                count(n);
                total = total.saturating_add(n as u64);
            }
            if total != src.size {
                return Err(changed(
                    src,
                    format!("read {total} bytes, expected {}", src.size),
                ));
            }
        }
        Some((start, end)) => {
            let mut offset = start;
            while offset < end {
                let want =
                    usize::try_from(end - offset).map_or(buffer.len(), |r| r.min(buffer.len()));
                let chunk = buffer.get_mut(..want).unwrap_or_default();
                let n = match file.read_at(chunk, offset) {
                    Ok(0) => {
                        return Err(changed(
                            src,
                            format!("it ended at byte {offset}, expected {end}"),
                        ));
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io(e)),
                };
                hasher.update(filled(chunk, n, src)?);
                count(n);
                offset = offset.saturating_add(n as u64);
            }
        }
    }
    Ok(hasher.finalize().into())
}

/// The first `n` bytes of the buffer a read just filled.
fn filled<'a>(buffer: &'a [u8], n: usize, src: &Source) -> Result<&'a [u8]> {
    buffer.get(..n).ok_or_else(|| Error::Io {
        path: src.path.clone(),
        source: std::io::Error::other("read reported more bytes than the buffer holds"),
    })
}

fn serialize_hex<S: Serializer>(digest: &Sha256Digest, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(digest))
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::net::UnixListener;

    use super::*;

    /// SHA-256 of the empty string.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// SHA-256 of "abc" (FIPS 180-2 test vector).
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn write(root: &Path, name: &str, bytes: &[u8]) {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }

    fn sha(bytes: &[u8]) -> Sha256Digest {
        Sha256::digest(bytes).into()
    }

    /// Pseudo-random bytes, so shard boundaries fall inside varied data.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x9e37_79b9;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    fn paths(m: &Manifest) -> Vec<&str> {
        m.entries().iter().map(Entry::path).collect()
    }

    #[test]
    fn entries_sorted_component_wise_not_by_raw_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a.txt", "a/z", "a-b/c", "A", "a/y/x"] {
            write(dir.path(), name, name.as_bytes());
        }
        let m = hash_path(dir.path(), &HashOptions::files()).unwrap();
        // Plain byte order would put "a-b/c" and "a.txt" before "a/y/x".
        assert_eq!(paths(&m), ["A", "a/y/x", "a/z", "a-b/c", "a.txt", "b"]);
    }

    #[test]
    fn root_digest_is_sha256_of_concatenated_raw_digests() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.bin", b"abc");
        write(dir.path(), "a/empty", b"");
        let m = hash_path(dir.path(), &HashOptions::files()).unwrap();

        assert_eq!(paths(&m), ["a/empty", "b.bin"]);
        assert_eq!(m.entries()[0].sha256_hex(), EMPTY);
        assert_eq!(m.entries()[1].sha256_hex(), ABC);
        assert_eq!(m.entries()[1].size(), 3);
        // By hand: the 64 raw bytes of the two digests, in path order.
        let mut concatenated = hex::decode(EMPTY).unwrap();
        concatenated.extend(hex::decode(ABC).unwrap());
        assert_eq!(m.root_digest(), &sha(&concatenated));
        // Hex of the raw digests would give a different root.
        assert_ne!(m.root_digest(), &sha(format!("{EMPTY}{ABC}").as_bytes()));
    }

    #[test]
    fn empty_dir_has_no_entries_and_root_of_empty_input() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let m = hash_path(dir.path(), &HashOptions::files()).unwrap();
        assert!(m.entries().is_empty());
        assert_eq!(m.root_digest_hex(), EMPTY);
        let s = hash_path(dir.path(), &HashOptions::shards(4)).unwrap();
        assert!(s.entries().is_empty());
    }

    #[test]
    fn empty_file_is_an_entry_per_file_but_has_no_shard() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "e", b"");
        let m = hash_path(&dir.path().join("e"), &HashOptions::files()).unwrap();
        assert_eq!(paths(&m), ["e"]);
        assert_eq!((m.entries()[0].size(), m.entries()[0].range()), (0, None));
        assert_eq!(m.entries()[0].sha256_hex(), EMPTY);

        // OpenSSF's shard serialization lists no shard for an empty file.
        write(dir.path(), "f", b"abc");
        let s = hash_path(dir.path(), &HashOptions::shards(10)).unwrap();
        let ids: Vec<_> = s.entries().iter().map(Entry::identifier).collect();
        assert_eq!(ids, ["f:0:3"]);
    }

    #[test]
    fn file_digest_is_plain_sha256_whatever_the_buffer_size() {
        let dir = tempfile::tempdir().unwrap();
        let data = noise(100_003);
        write(dir.path(), "f", &data);
        for buffer_size in [1, 7, 4096, 100_003, 1 << 20] {
            let options = HashOptions {
                buffer_size,
                ..HashOptions::files()
            };
            let m = hash_path(&dir.path().join("f"), &options).unwrap();
            assert_eq!(m.entries()[0].sha256(), &sha(&data), "buffer {buffer_size}");
            assert_eq!(m.entries()[0].size(), 100_003);
        }
    }

    #[test]
    fn shards_cover_the_file_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let data = noise(10_000);
        write(dir.path(), "f", &data);
        for (shard_size, expected) in [
            (
                3000,
                vec![(0, 3000), (3000, 6000), (6000, 9000), (9000, 10_000)],
            ),
            (
                2500,
                vec![(0, 2500), (2500, 5000), (5000, 7500), (7500, 10_000)],
            ),
            (10_000, vec![(0, 10_000)]),
            (u64::MAX, vec![(0, 10_000)]),
        ] {
            let options = HashOptions {
                buffer_size: 1024,
                ..HashOptions::shards(shard_size)
            };
            let m = hash_path(dir.path(), &options).unwrap();
            let ranges: Vec<_> = m.entries().iter().filter_map(Entry::range).collect();
            assert_eq!(ranges, expected, "shard size {shard_size}");
            for entry in m.entries() {
                let (start, end) = entry.range().unwrap();
                let slice = &data[start as usize..end as usize];
                assert_eq!(entry.sha256(), &sha(slice));
                assert_eq!(entry.size(), end - start);
                assert_eq!(entry.identifier(), format!("f:{start}:{end}"));
            }
            let mut concatenated = Vec::new();
            for entry in m.entries() {
                concatenated.extend_from_slice(entry.sha256());
            }
            assert_eq!(m.root_digest(), &sha(&concatenated));
            assert_eq!(m.mode(), Mode::Shards { shard_size });
        }
    }

    #[test]
    fn entry_finds_whole_files_by_path_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"1");
        write(dir.path(), "a/b", b"22");
        write(dir.path(), "z", b"333");
        let m = hash_path(dir.path(), &HashOptions::files()).unwrap();
        for e in m.entries() {
            assert_eq!(m.entry(e.path()), Some(e));
        }
        assert_eq!(m.entry("a/b").unwrap().size(), 2);
        assert!(m.entry("a").is_none());
        assert!(m.entry("missing").is_none());
        // A sharded manifest has no whole-file entries.
        let sharded = hash_path(dir.path(), &HashOptions::shards(1)).unwrap();
        assert!(sharded.entry("z").is_none());
    }

    #[test]
    fn the_progress_counter_counts_every_byte_read_in_both_modes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a", &noise(100_000));
        write(dir.path(), "d/b", &noise(12_345));
        for base in [HashOptions::files(), HashOptions::shards(4096)] {
            let counter = ByteCounter::new();
            let options = HashOptions {
                progress: Some(counter.clone()),
                threads: 3,
                ..base
            };
            hash_path(dir.path(), &options).unwrap();
            assert_eq!(counter.get(), 112_345);
        }
    }

    #[test]
    fn shards_ordered_by_path_then_start() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b", &noise(25));
        write(dir.path(), "a/x", &noise(12));
        let m = hash_path(dir.path(), &HashOptions::shards(10)).unwrap();
        let ids: Vec<_> = m.entries().iter().map(Entry::identifier).collect();
        assert_eq!(
            ids,
            ["a/x:0:10", "a/x:10:12", "b:0:10", "b:10:20", "b:20:25"]
        );
    }

    #[test]
    fn parallel_and_serial_hashing_agree() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..40 {
            write(dir.path(), &format!("d{}/f{i}", i % 3), &noise(i * 997));
        }
        let serial = HashOptions {
            threads: 1,
            ..HashOptions::files()
        };
        let parallel = HashOptions {
            threads: 4,
            buffer_size: 512,
            ..HashOptions::files()
        };
        let a = hash_path(dir.path(), &serial).unwrap();
        let b = hash_path(dir.path(), &parallel).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.entries().len(), 40);
        for entry in a.entries() {
            let bytes = std::fs::read(dir.path().join(entry.path())).unwrap();
            assert_eq!(entry.sha256(), &sha(&bytes));
        }
    }

    #[test]
    fn several_inputs_name_files_relative_to_their_input() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "data/train.csv", b"x,y\n");
        write(dir.path(), "data/sub/val.csv", b"x,y\n1,2\n");
        write(dir.path(), "other/model.keras", b"model");
        let inputs = [
            dir.path().join("data"),
            dir.path().join("other/model.keras"),
        ];
        let m = hash_inputs(&inputs, &HashOptions::files()).unwrap();
        assert_eq!(paths(&m), ["model.keras", "sub/val.csv", "train.csv"]);
    }

    #[test]
    fn duplicate_names_from_two_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "one/model.keras", b"1");
        write(dir.path(), "two/model.keras", b"2");
        let inputs = [dir.path().join("one/model.keras"), dir.path().join("two")];
        let err = hash_inputs(&inputs, &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.duplicate_path");
        assert!(err.to_string().contains("model.keras"), "{err}");
    }

    #[test]
    fn symlink_inside_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "data/ok", b"ok");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("data/passwd")).unwrap();
        let err = hash_path(&dir.path().join("data"), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.symlink");
        assert!(err.to_string().contains("passwd"), "{err}");
    }

    #[test]
    fn symlinked_directory_and_dangling_link_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "real/f", b"f");
        write(dir.path(), "data/ok", b"ok");
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("data/linked"))
            .unwrap();
        let err = hash_path(&dir.path().join("data"), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.symlink");

        let dangling = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/nonexistent/target", dangling.path().join("x")).unwrap();
        let err = hash_path(dangling.path(), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.symlink");
    }

    #[test]
    fn symlink_given_as_input_is_refused_even_with_trailing_slash() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "real/f", b"f");
        write(dir.path(), "file", b"f");
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("dirlink")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("file"), dir.path().join("filelink")).unwrap();
        for input in ["dirlink", "dirlink/", "dirlink/.", "filelink"] {
            let path = PathBuf::from(format!("{}/{input}", dir.path().display()));
            let err = hash_path(&path, &HashOptions::files()).unwrap_err();
            assert_eq!(err.code(), "hash.symlink", "{input}: {err}");
        }
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ok", b"ok");
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let err = hash_path(dir.path(), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.special_file");
        let err = hash_path(&fifo, &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.special_file");
    }

    #[test]
    fn socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _listener = UnixListener::bind(dir.path().join("sock")).unwrap();
        let err = hash_path(dir.path(), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.special_file");
        assert!(err.to_string().contains("sock"), "{err}");
    }

    #[test]
    fn device_is_refused() {
        let err = hash_path(Path::new("/dev/null"), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.special_file");
    }

    #[test]
    fn non_utf8_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"bad\xff\xfename");
        std::fs::write(dir.path().join(name), b"x").unwrap();
        let err = hash_path(dir.path(), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.path_escape");
        let err = hash_path(&dir.path().join(name), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.path_escape");
    }

    #[test]
    fn relative_names_that_leave_the_root_are_refused() {
        let base = tempfile::tempdir().unwrap();
        write(base.path(), "secret", b"outside the root");
        write(base.path(), "root/a/b", b"inside");
        let root = base.path().join("root");
        for name in [
            "../secret",
            "a/../../secret",
            "/etc/passwd",
            "",
            "a//b",
            "./a/b",
            "a/./b",
            "a/b/",
        ] {
            let err = hash_relative(&root, &[name], &HashOptions::files()).unwrap_err();
            assert_eq!(err.code(), "hash.path_escape", "{name:?}: {err}");
        }
        let m = hash_relative(&root, &["a/b"], &HashOptions::files()).unwrap();
        assert_eq!(paths(&m), ["a/b"]);
        assert_eq!(m.entries()[0].sha256(), &sha(b"inside"));
        let m = hash_relative(&root, &["a"], &HashOptions::files()).unwrap();
        assert_eq!(paths(&m), ["a/b"]);
    }

    #[test]
    fn relative_name_through_a_symlinked_directory_is_refused() {
        let base = tempfile::tempdir().unwrap();
        write(base.path(), "outside/secret", b"outside the root");
        std::fs::create_dir(base.path().join("root")).unwrap();
        std::os::unix::fs::symlink(base.path().join("outside"), base.path().join("root/a"))
            .unwrap();
        let err = hash_relative(
            &base.path().join("root"),
            &["a/secret"],
            &HashOptions::files(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "hash.symlink", "{err}");

        // A linked root is refused too, even written with a trailing `/`.
        std::os::unix::fs::symlink(base.path().join("outside"), base.path().join("rootlink"))
            .unwrap();
        let linked_root = PathBuf::from(format!("{}/rootlink/", base.path().display()));
        let err = hash_relative(&linked_root, &["secret"], &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.symlink", "{err}");
    }

    #[test]
    fn file_changed_after_listing_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "f", b"hello");
        let path = dir.path().join("f");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mut listed = source("f".into(), path.clone(), &meta);
        let mut buffer = vec![0; 16];

        listed.size = 4;
        let err = hash_job(&listed, None, &mut buffer, None).unwrap_err();
        assert_eq!(err.code(), "hash.changed");

        listed.size = 5;
        listed.ino += 1;
        let err = hash_job(&listed, None, &mut buffer, None).unwrap_err();
        assert_eq!(err.code(), "hash.changed");

        // Swapped for a symlink after the walk: O_NOFOLLOW refuses it.
        listed.ino -= 1;
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        let err = hash_job(&listed, None, &mut buffer, None).unwrap_err();
        assert_eq!(err.code(), "hash.symlink");
    }

    #[test]
    fn bad_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = hash_path(dir.path(), &HashOptions::shards(0)).unwrap_err();
        assert_eq!(err.code(), "hash.invalid_option");
        for buffer_size in [0, MAX_BUFFER_SIZE + 1] {
            let options = HashOptions {
                buffer_size,
                ..HashOptions::files()
            };
            let err = hash_path(dir.path(), &options).unwrap_err();
            assert_eq!(err.code(), "hash.invalid_option");
        }
    }

    #[test]
    fn missing_input_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = hash_path(&dir.path().join("nope"), &HashOptions::files()).unwrap_err();
        assert_eq!(err.code(), "hash.io");
    }

    #[test]
    fn artifacts_and_json_shape() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x/abc", b"abc");
        let m = hash_path(dir.path(), &HashOptions::files()).unwrap();
        let artifacts = m.artifacts();
        assert_eq!(artifacts.len(), 1);
        assert_eq!(artifacts["x/abc"]["sha256"], ABC);

        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "mode": {"method": "files"},
                "entries": [{"path": "x/abc", "size": 3, "sha256": ABC}],
                "root_digest": {"sha256": hex::encode(sha(&hex::decode(ABC).unwrap()))},
            })
        );

        let s = hash_path(dir.path(), &HashOptions::shards(2)).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["mode"],
            serde_json::json!({"method": "shards", "shard_size": 2})
        );
        assert_eq!(
            json["entries"][1],
            serde_json::json!({"path": "x/abc", "start": 2, "end": 3, "size": 1, "sha256": hex::encode(sha(b"c"))})
        );
        assert_eq!(
            s.artifacts().keys().collect::<Vec<_>>(),
            ["x/abc:0:2", "x/abc:2:3"]
        );
    }
}
