//! A hardened ZIP reader for uploaded image datasets and `.keras` models.
//!
//! Where it sits: the worker receives an upload, and before anything else
//! looks inside, [`ZipArchive::open`] parses the whole archive structure
//! (end record, central directory, every local header) and refuses anything
//! outside a narrow allow-list. Members are then read only through
//! [`EntryReader`], which inflates, counts every byte that comes out and
//! checks size and CRC-32 at the end. The image-dataset validator
//! ([`crate::image`]) and the `.keras` scanner are built on it, and
//! [`extract`] writes a checked archive to disk.
//!
//! The ZIP structure is parsed here rather than with the `zip` crate so that
//! every field another unzip tool could read differently is compared (local
//! vs central header, data descriptor vs both) and every byte of the file is
//! accounted for. Only raw DEFLATE comes from a library (`miniz_oxide`).
//! The policy, the codes and the reasons are in `docs/intake-archives.md`.

mod cursor;
pub mod extract;
mod name;
mod nested;
mod read;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testzip;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub(crate) use cursor::Cursor;
pub use read::EntryReader;

use crate::error::{Error, Result};
use crate::finding::{Finding, Location};

/// Stable codes of every rejection this module makes.
pub mod codes {
    /// No end-of-central-directory record: not a ZIP archive.
    pub const NOT_A_ZIP: &str = "zip.not_a_zip";
    /// Bytes after the end record (appended data, a polyglot).
    pub const TRAILING_DATA: &str = "zip.trailing_data";
    /// More than one candidate end record.
    pub const AMBIGUOUS_EOCD: &str = "zip.ambiguous_eocd";
    /// A split or spanned (multi-disk) archive.
    pub const MULTI_DISK: &str = "zip.multi_disk";
    /// A structure extends past the end of the file.
    pub const TRUNCATED: &str = "zip.truncated";
    /// A malformed header, signature or extra field.
    pub const BAD_HEADER: &str = "zip.bad_header";
    /// A malformed ZIP64 end record or extra field.
    pub const BAD_ZIP64: &str = "zip.bad_zip64";
    /// The archive file is larger than the limit.
    pub const ARCHIVE_TOO_LARGE: &str = "zip.archive_too_large";
    /// More entries than the limit.
    pub const TOO_MANY_ENTRIES: &str = "zip.too_many_entries";
    /// The central directory is larger than the limit.
    pub const CENTRAL_DIRECTORY_TOO_LARGE: &str = "zip.central_directory_too_large";
    /// One entry is larger than the per-entry limit.
    pub const ENTRY_TOO_LARGE: &str = "zip.entry_too_large";
    /// All entries together are larger than the total limit.
    pub const TOTAL_TOO_LARGE: &str = "zip.total_too_large";
    /// An entry's compression ratio is above the limit.
    pub const RATIO_TOO_HIGH: &str = "zip.ratio_too_high";
    /// A compression method other than stored or deflate.
    pub const UNSUPPORTED_METHOD: &str = "zip.unsupported_method";
    /// An encrypted entry.
    pub const ENCRYPTED: &str = "zip.encrypted";
    /// General-purpose flags outside the allow-list.
    pub const UNSUPPORTED_FLAGS: &str = "zip.unsupported_flags";
    /// An extra field outside the allow-list.
    pub const UNSUPPORTED_EXTRA: &str = "zip.unsupported_extra";
    /// A host system outside the allow-list in "version made by".
    pub const UNSUPPORTED_HOST: &str = "zip.unsupported_host";
    /// A name that is empty, too long, or has NUL, control characters,
    /// backslashes, `:`, or empty or `.` components.
    pub const BAD_NAME: &str = "zip.bad_name";
    /// An absolute name or one starting with a drive letter.
    pub const ABSOLUTE_PATH: &str = "zip.absolute_path";
    /// A name with a `..` component.
    pub const PATH_TRAVERSAL: &str = "zip.path_traversal";
    /// A name that is not UTF-8, or non-ASCII without the UTF-8 flag.
    pub const NON_UTF8_NAME: &str = "zip.non_utf8_name";
    /// A second name for the entry (Info-ZIP Unicode Path extra field).
    pub const AMBIGUOUS_NAME: &str = "zip.ambiguous_name";
    /// Two entries with the same name.
    pub const DUPLICATE_NAME: &str = "zip.duplicate_name";
    /// Two names that are equal ignoring case.
    pub const CASE_COLLISION: &str = "zip.case_collision";
    /// A name that is both a file and a directory.
    pub const PATH_CONFLICT: &str = "zip.path_conflict";
    /// An entry that is not a regular file or a directory (symlink, device,
    /// FIFO, socket, volume label, reparse point).
    pub const BAD_ENTRY_TYPE: &str = "zip.bad_entry_type";
    /// A directory entry with content.
    pub const BAD_DIRECTORY: &str = "zip.bad_directory";
    /// Local header (or data descriptor) and central directory disagree.
    pub const HEADER_MISMATCH: &str = "zip.header_mismatch";
    /// Two entries share or overlap their bytes.
    pub const OVERLAPPING_ENTRIES: &str = "zip.overlapping_entries";
    /// Bytes before the first entry (a prepended stub or polyglot).
    pub const PREPENDED_DATA: &str = "zip.prepended_data";
    /// Bytes between entries, or between the entries and the central
    /// directory, that belong to no entry.
    pub const HIDDEN_DATA: &str = "zip.hidden_data";
    /// The bytes actually stored or inflated differ from the declared sizes.
    pub const SIZE_MISMATCH: &str = "zip.size_mismatch";
    /// The CRC-32 of the content differs from the declared one.
    pub const CRC_MISMATCH: &str = "zip.crc_mismatch";
    /// A corrupt DEFLATE stream.
    pub const BAD_DEFLATE: &str = "zip.bad_deflate";
    /// An archive inside the archive (by extension or content).
    pub const NESTED_ARCHIVE: &str = "zip.nested_archive";
    /// A member is larger than the caller's cap for it.
    pub const MEMBER_TOO_LARGE: &str = "zip.member_too_large";
}

/// Limits enforced while a ZIP archive is opened and read.
///
/// Sizes declared in headers are checked when the archive is opened; the
/// bytes actually inflated are counted again while each member is read, so
/// a lying header cannot get past either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipLimits {
    /// Largest archive file accepted.
    pub max_archive_bytes: u64,
    /// Most entries (files and directories).
    pub max_entries: u64,
    /// Largest central directory, read into memory whole.
    pub max_central_directory_bytes: u64,
    /// Largest uncompressed size of one entry.
    pub max_entry_bytes: u64,
    /// Largest uncompressed size of all entries together; also caps the
    /// bytes inflated over the archive's lifetime.
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio of one entry ...
    pub max_ratio: u64,
    /// ... applied to entries larger than this many uncompressed bytes
    /// (tiny files compress oddly and cannot bomb).
    pub ratio_floor_bytes: u64,
    /// Longest entry name in bytes.
    pub max_name_bytes: usize,
    /// Longest archive comment; the end record is searched for in the last
    /// `22 + max_comment_bytes` bytes.
    pub max_comment_bytes: u16,
    /// Accept entries that are archives themselves. Off for uploads (an
    /// image dataset never needs one, and each nesting level multiplies the
    /// bomb budget); on only for a Veritrain bundle archive, which holds the
    /// `.keras` model and the dataset file that the verifier checks on
    /// their own.
    pub allow_nested_archives: bool,
}

impl Default for ZipLimits {
    /// Production limits for image datasets.
    fn default() -> Self {
        ZipLimits {
            max_archive_bytes: 64 << 30,
            max_entries: 500_000,
            max_central_directory_bytes: 128 << 20,
            max_entry_bytes: 256 << 20,
            max_total_bytes: 32 << 30,
            max_ratio: 100,
            ratio_floor_bytes: 64 << 10,
            max_name_bytes: 1024,
            max_comment_bytes: 4096,
            allow_nested_archives: false,
        }
    }
}

impl ZipLimits {
    /// Small limits for tests and fuzzing.
    pub fn for_testing() -> Self {
        ZipLimits {
            max_archive_bytes: 16 << 20,
            max_entries: 64,
            max_central_directory_bytes: 64 << 10,
            max_entry_bytes: 1 << 20,
            max_total_bytes: 4 << 20,
            max_ratio: 20,
            ratio_floor_bytes: 1024,
            max_name_bytes: 255,
            max_comment_bytes: 256,
            allow_nested_archives: false,
        }
    }
}

/// How an entry's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Stored as is (method 0).
    Stored,
    /// Raw DEFLATE (method 8).
    Deflated,
}

/// One checked entry of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    name: String,
    is_dir: bool,
    method: Method,
    size: u64,
    compressed_size: u64,
    crc32: u32,
    local_offset: u64,
    data_offset: u64,
}

impl ZipEntry {
    /// The name, UTF-8, relative, `/`-separated; directories end in `/`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether this is a directory entry.
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }
    /// Declared uncompressed size (enforced while reading).
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Compressed size.
    pub fn compressed_size(&self) -> u64 {
        self.compressed_size
    }
    /// Declared CRC-32 (checked at the end of reading).
    pub fn crc32(&self) -> u32 {
        self.crc32
    }
    /// Compression method.
    pub fn method(&self) -> Method {
        self.method
    }
}

/// A ZIP archive whose structure has been checked in full.
///
/// Members are read through [`ZipArchive::entry_reader`] or
/// [`ZipArchive::read_entry`]; both verify the content against the headers.
#[derive(Debug)]
pub struct ZipArchive<R> {
    reader: R,
    source: PathBuf,
    entries: Vec<ZipEntry>,
    by_name: HashMap<String, usize>,
    limits: ZipLimits,
    /// Bytes inflated so far over all reads, capped by `max_total_bytes`.
    inflated: u64,
}

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;

const EOCD_LEN: u64 = 22;
const ZIP64_EOCD_LEN: u64 = 56;
const ZIP64_LOCATOR_LEN: u64 = 20;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;

const FLAG_ENCRYPTED: u16 = 1 << 0;
const FLAG_DEFLATE_OPTIONS: u16 = 0b110;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_UTF8: u16 = 1 << 11;
const FLAG_MASKED_HEADERS: u16 = 1 << 13;
/// Allow-list of general-purpose flags: DEFLATE level hints, data
/// descriptor, UTF-8 names.
const FLAGS_ALLOWED: u16 = FLAG_DEFLATE_OPTIONS | FLAG_DESCRIPTOR | FLAG_UTF8;

const EXTRA_ZIP64: u16 = 0x0001;
const EXTRA_UNICODE_PATH: u16 = 0x7075;
/// Allow-list of extra fields: ZIP64, NTFS times, extended timestamp,
/// Info-ZIP Unix (old, type 2, new). All carry metadata we ignore.
const EXTRAS_ALLOWED: &[u16] = &[EXTRA_ZIP64, 0x000a, 0x5455, 0x5855, 0x7855, 0x7875];

/// Allow-list of "version made by" hosts: MS-DOS/FAT, Unix, NTFS, MVS (Go
/// writes 11 for NTFS), VFAT, OS X.
const HOSTS_ALLOWED: &[u8] = &[0, 3, 10, 11, 14, 19];
const HOST_UNIX: u8 = 3;
const HOST_OSX: u8 = 19;

/// Unix file-type bits of the mode in the high half of the external
/// attributes.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
/// DOS attribute bits allowed: read-only, hidden, system, directory,
/// archive, normal, temporary, compressed, not-content-indexed. Refused
/// among others: volume label (0x08), device (0x40), reparse point /
/// Windows symlink (0x400), encrypted (0x4000).
const DOS_ALLOWED: u32 = 0x01 | 0x02 | 0x04 | 0x10 | 0x20 | 0x80 | 0x100 | 0x800 | 0x2000;
const DOS_DIRECTORY: u32 = 0x10;

fn entry_at(name: &str) -> Location {
    Location::Entry {
        name: name.chars().take(200).collect(),
    }
}

fn reject<T>(code: &'static str, message: impl Into<String>, location: Location) -> Result<T> {
    Err(Finding::new(code, message, location).into())
}

/// Carries a [`Finding`] through `std::io::Read`.
#[derive(Debug)]
pub(crate) struct FindingError(pub(crate) Box<Finding>);

impl std::fmt::Display for FindingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FindingError {}

/// Turns an I/O error from an [`EntryReader`] (or the archive file) into
/// the crate error: rejections come back as [`Error::Rejected`], an early
/// end of file is the input's fault ([`codes::TRUNCATED`]), anything else
/// is a platform I/O error on `source`.
pub fn error_from_io(e: io::Error, source: &Path) -> Error {
    let e = match e.downcast::<FindingError>() {
        Ok(found) => return Error::Rejected(found.0),
        Err(e) => e,
    };
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return Finding::new(
            codes::TRUNCATED,
            "the archive ends in the middle of a structure",
            Location::Input,
        )
        .into();
    }
    Error::Io {
        path: source.to_owned(),
        source: e,
    }
}

/// A parsed extra-field block: the ZIP64 record, if any.
struct Extras<'a> {
    zip64: Option<&'a [u8]>,
}

/// Parses an extra-field block against the allow-list.
fn parse_extras<'a>(extra: &'a [u8], name: &str, which: &str) -> Result<Extras<'a>> {
    let mut c = Cursor::new(extra);
    let mut seen = HashSet::new();
    let mut zip64 = None;
    while c.remaining() > 0 {
        let (Some(id), Some(len)) = (c.u16(), c.u16()) else {
            return reject(
                codes::BAD_HEADER,
                format!("{which} extra field block ends inside a field header"),
                entry_at(name),
            );
        };
        let Some(data) = c.take(usize::from(len)) else {
            return reject(
                codes::BAD_HEADER,
                format!("{which} extra field {id:#06x} runs past the end of its block"),
                entry_at(name),
            );
        };
        // A repeated field is read as the first copy by some tools and the
        // last by others.
        if !seen.insert(id) {
            return reject(
                codes::BAD_HEADER,
                format!("{which} extra field {id:#06x} appears twice"),
                entry_at(name),
            );
        }
        // Stops name confusion: the Info-ZIP Unicode Path field gives the
        // entry a second name that some tools prefer over the checked one.
        if id == EXTRA_UNICODE_PATH {
            return reject(
                codes::AMBIGUOUS_NAME,
                "entry carries a second name (Info-ZIP Unicode Path extra field 0x7075); \
                 write names as UTF-8 with flag bit 11 instead",
                entry_at(name),
            );
        }
        if !EXTRAS_ALLOWED.contains(&id) {
            return reject(
                codes::UNSUPPORTED_EXTRA,
                format!("{which} header has extra field {id:#06x}, which is not on the allow-list"),
                entry_at(name),
            );
        }
        if id == EXTRA_ZIP64 {
            zip64 = Some(data);
        }
    }
    Ok(Extras { zip64 })
}

/// Fields of a central directory header after ZIP64 resolution.
struct Central<'a> {
    made_by: u16,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    name: &'a [u8],
    extra: &'a [u8],
    external_attr: u32,
    local_offset: u64,
    zip64_sizes: bool,
}

/// The end of central directory, after ZIP64 resolution.
struct EndRecord {
    entries: u64,
    cd_offset: u64,
    cd_size: u64,
    /// Where the central directory must end: the ZIP64 end record if there
    /// is one, else the classic end record.
    cd_end: u64,
}

impl<R: Read + Seek> ZipArchive<R> {
    /// Parses and checks the whole archive structure.
    ///
    /// Every entry's central header, local header and data descriptor is
    /// read and compared before this returns; no member content is read
    /// (that happens, with size and CRC checks, in [`Self::entry_reader`]).
    pub fn open(reader: R, limits: &ZipLimits) -> Result<Self> {
        Self::open_named(reader, Path::new("<zip archive>"), limits)
    }

    /// Like [`Self::open`], naming the source for I/O error messages.
    pub fn open_named(mut reader: R, source: &Path, limits: &ZipLimits) -> Result<Self> {
        let io = |e: io::Error| error_from_io(e, source);
        let file_len = reader.seek(SeekFrom::End(0)).map_err(io)?;
        if file_len > limits.max_archive_bytes {
            return reject(
                codes::ARCHIVE_TOO_LARGE,
                format!(
                    "archive is {file_len} bytes; the limit is {}",
                    limits.max_archive_bytes
                ),
                Location::Input,
            );
        }
        let end = find_end_record(&mut reader, file_len, limits).map_err(|e| match e {
            Error::Io { source: s, .. } => io(s),
            other => other,
        })?;
        // Both checked before anything is allocated for the entries.
        if end.entries > limits.max_entries {
            return reject(
                codes::TOO_MANY_ENTRIES,
                format!(
                    "archive declares {} entries; the limit is {}",
                    end.entries, limits.max_entries
                ),
                Location::Input,
            );
        }
        if end.cd_size > limits.max_central_directory_bytes {
            return reject(
                codes::CENTRAL_DIRECTORY_TOO_LARGE,
                format!(
                    "central directory is {} bytes; the limit is {}",
                    end.cd_size, limits.max_central_directory_bytes
                ),
                Location::Input,
            );
        }
        if end.entries.saturating_mul(CENTRAL_LEN as u64) > end.cd_size {
            return reject(
                codes::BAD_HEADER,
                format!(
                    "{} entries cannot fit in a {}-byte central directory",
                    end.entries, end.cd_size
                ),
                Location::Input,
            );
        }
        let cd_len = usize::try_from(end.cd_size).map_err(|_| {
            Error::from(Finding::new(
                codes::CENTRAL_DIRECTORY_TOO_LARGE,
                "central directory does not fit in memory",
                Location::Input,
            ))
        })?;
        let mut cd = vec![0u8; cd_len];
        reader.seek(SeekFrom::Start(end.cd_offset)).map_err(io)?;
        reader.read_exact(&mut cd).map_err(io)?;

        let mut archive = ZipArchive {
            reader,
            source: source.to_owned(),
            entries: Vec::with_capacity(usize::try_from(end.entries).unwrap_or(0)),
            by_name: HashMap::new(),
            limits: limits.clone(),
            inflated: 0,
        };
        // Names for the duplicate, case and file/directory checks.
        let mut folded: HashMap<String, String> = HashMap::new();
        let mut dirs = DirTree::default();
        // (parent directory, folded last component, index) of every file.
        let mut files: Vec<(u32, String, usize)> = Vec::new();
        let mut declared_total: u64 = 0;
        // [local header, end of data or descriptor) of every entry.
        let mut spans: Vec<(u64, u64, usize)> = Vec::new();

        let mut c = Cursor::new(&cd);
        for _ in 0..end.entries {
            let central = parse_central(&mut c)?;
            let (entry, span_end) =
                archive.check_entry(&central, end.cd_offset, &mut declared_total)?;
            let index = archive.entries.len();

            // Stops two entries that are the same file to one tool and two
            // files to another: later-wins vs first-wins extraction.
            if archive.by_name.contains_key(&entry.name) {
                return reject(
                    codes::DUPLICATE_NAME,
                    "two entries have this name",
                    entry_at(&entry.name),
                );
            }
            // Stops `A.png` vs `a.png`: one file on a case-insensitive file
            // system (macOS, Windows), two on Linux, so what is checked here
            // and what is trained on there can differ.
            let key = name::fold_case(&entry.name);
            if let Some(other) = folded.get(&key) {
                return reject(
                    codes::CASE_COLLISION,
                    format!("name collides with {other:?} when case is ignored"),
                    entry_at(&entry.name),
                );
            }
            folded.insert(key.clone(), entry.name.clone());
            // Directories, explicit and implied, spelled as first written.
            // `A/x.png` and `a/y.png` are one directory on a case-insensitive
            // file system and two on Linux.
            let body = entry.name.strip_suffix('/').unwrap_or(&entry.name);
            let mut components: Vec<&str> = body.split('/').collect();
            let last = if entry.is_dir { None } else { components.pop() };
            let parent = dirs.walk(&components).map_err(|(component, spelled)| {
                Error::from(Finding::new(
                    codes::CASE_COLLISION,
                    format!(
                        "directory {component:?} collides with {spelled:?} when case is ignored"
                    ),
                    entry_at(&entry.name),
                ))
            })?;
            if let Some(last) = last {
                files.push((parent, name::fold_case(last), index));
            }
            spans.push((entry.local_offset, span_end, index));
            archive.by_name.insert(entry.name.clone(), index);
            archive.entries.push(entry);
        }
        if c.remaining() != 0 {
            return reject(
                codes::HIDDEN_DATA,
                format!(
                    "central directory has {} bytes after its {} declared entries",
                    c.remaining(),
                    end.entries
                ),
                Location::Input,
            );
        }
        // Stops a name that is a file and also a directory (`a` and `a/b`):
        // extraction would fail half-way or replace one with the other.
        for (parent, last, index) in files {
            if let Some(dir) = dirs.get(parent, last) {
                let name = archive.entries.get(index).map(|e| e.name.as_str());
                return reject(
                    codes::PATH_CONFLICT,
                    format!("name is a file, and {dir:?} is also a directory"),
                    entry_at(name.unwrap_or_default()),
                );
            }
        }
        archive.check_layout(&mut spans, &end)?;
        Ok(archive)
    }

    /// Checks one central header and its local header; returns the entry.
    fn check_entry(
        &mut self,
        central: &Central<'_>,
        cd_offset: u64,
        declared_total: &mut u64,
    ) -> Result<(ZipEntry, u64)> {
        let lossy = String::from_utf8_lossy(central.name).into_owned();
        let at = || entry_at(&lossy);
        let limits = &self.limits;
        // Stops entries we could not verify: their content is hidden from
        // the gate, and traditional PKWARE encryption has no integrity.
        if central.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS) != 0 {
            return reject(codes::ENCRYPTED, "entry is encrypted", at());
        }
        if central.flags & !FLAGS_ALLOWED != 0 {
            return reject(
                codes::UNSUPPORTED_FLAGS,
                format!(
                    "entry has general-purpose flags {:#06x}; only data descriptor, UTF-8 and \
                     deflate-level flags are allowed",
                    central.flags & !FLAGS_ALLOWED
                ),
                at(),
            );
        }
        // Allow-list of methods: every other one is code we would have to
        // trust (and most unzip tools cannot read them anyway).
        let method = match central.method {
            0 => Method::Stored,
            8 => Method::Deflated,
            99 => return reject(codes::ENCRYPTED, "entry is AES-encrypted (method 99)", at()),
            m => {
                return reject(
                    codes::UNSUPPORTED_METHOD,
                    format!("compression method {m} is not allowed; use stored (0) or deflate (8)"),
                    at(),
                );
            }
        };
        let checked = name::check_name(
            central.name,
            central.flags & FLAG_UTF8 != 0,
            limits.max_name_bytes,
        )?;
        let name = checked.name;
        let at = || entry_at(&name);
        parse_extras(central.extra, &name, "central")?;
        check_entry_type(
            central.made_by,
            central.external_attr,
            checked.is_dir,
            &name,
        )?;

        if checked.is_dir && central.size != 0 {
            return reject(
                codes::BAD_DIRECTORY,
                format!("directory entry holds {} bytes", central.size),
                at(),
            );
        }
        if method == Method::Stored && central.compressed != central.size {
            return reject(
                codes::SIZE_MISMATCH,
                format!(
                    "stored entry declares {} compressed and {} uncompressed bytes",
                    central.compressed, central.size
                ),
                at(),
            );
        }
        if central.size > limits.max_entry_bytes {
            return reject(
                codes::ENTRY_TOO_LARGE,
                format!(
                    "entry is {} bytes uncompressed; the limit is {}",
                    central.size, limits.max_entry_bytes
                ),
                at(),
            );
        }
        // Stops single-entry deflate bombs early (a deflate stream can reach
        // about 1032:1); the inflated bytes are counted again while reading.
        if central.size > limits.ratio_floor_bytes
            && central.size > central.compressed.saturating_mul(limits.max_ratio)
        {
            return reject(
                codes::RATIO_TOO_HIGH,
                format!(
                    "entry inflates {} bytes to {}; the ratio limit is {}:1",
                    central.compressed, central.size, limits.max_ratio
                ),
                at(),
            );
        }
        *declared_total = declared_total.saturating_add(central.size);
        if *declared_total > limits.max_total_bytes {
            return reject(
                codes::TOTAL_TOO_LARGE,
                format!(
                    "entries add up to more than the limit of {} uncompressed bytes",
                    limits.max_total_bytes
                ),
                at(),
            );
        }
        if !limits.allow_nested_archives
            && let Some(kind) = nested::archive_extension(&name)
        {
            return reject(
                codes::NESTED_ARCHIVE,
                format!(
                    "entry is a nested archive (.{kind}); archives inside archives are refused"
                ),
                at(),
            );
        }
        let (data_offset, span_end) = self.check_local(central, &name, cd_offset)?;
        let entry = ZipEntry {
            name,
            is_dir: checked.is_dir,
            method,
            size: central.size,
            compressed_size: central.compressed,
            crc32: central.crc,
            local_offset: central.local_offset,
            data_offset,
        };
        Ok((entry, span_end))
    }

    /// Reads the local header and any data descriptor of an entry and
    /// requires them to agree with the central header. Returns the offset of
    /// the entry's data.
    ///
    /// Stops archives that unpack differently depending on which header a
    /// tool trusts: streaming readers use the local header, others the
    /// central directory.
    fn check_local(
        &mut self,
        central: &Central<'_>,
        name: &str,
        cd_offset: u64,
    ) -> Result<(u64, u64)> {
        let at = || entry_at(name);
        let source = self.source.clone();
        let io = |e: io::Error| error_from_io(e, &source);
        let fixed_end = central.local_offset.saturating_add(LOCAL_LEN as u64);
        if fixed_end > cd_offset {
            return reject(
                codes::OVERLAPPING_ENTRIES,
                "local header overlaps the central directory",
                at(),
            );
        }
        let mut fixed = [0u8; LOCAL_LEN];
        self.reader
            .seek(SeekFrom::Start(central.local_offset))
            .map_err(io)?;
        self.reader.read_exact(&mut fixed).map_err(io)?;
        let mut c = Cursor::new(&fixed);
        let fields = (|| {
            Some((
                c.u32()?,
                c.u16()?,
                c.u16()?,
                c.u16()?,
                c.u32()?,
                c.u32()?,
                c.u32()?,
                c.u32()?,
                c.u16()?,
                c.u16()?,
            ))
        })();
        let Some((sig, _needed, flags, method, _time_date, crc, csize, usize_, nlen, elen)) =
            fields
        else {
            return reject(codes::BAD_HEADER, "short local header", at());
        };
        if sig != LOCAL_SIG {
            return reject(
                codes::BAD_HEADER,
                "no local header where the central directory points",
                at(),
            );
        }
        let var_len = usize::from(nlen) + usize::from(elen);
        let data_offset = fixed_end.saturating_add(var_len as u64);
        if data_offset > cd_offset {
            return reject(
                codes::OVERLAPPING_ENTRIES,
                "local header overlaps the central directory",
                at(),
            );
        }
        let mut var = vec![0u8; var_len];
        self.reader.read_exact(&mut var).map_err(io)?;
        let (local_name, local_extra) = var.split_at(usize::from(nlen));

        let mismatch = |what: &str| -> Error {
            Finding::new(
                codes::HEADER_MISMATCH,
                format!("local header and central directory disagree on the {what}"),
                at(),
            )
            .into()
        };
        if local_name != central.name {
            return Err(mismatch("name"));
        }
        if flags != central.flags {
            return Err(mismatch("flags"));
        }
        if method != central.method {
            return Err(mismatch("compression method"));
        }
        let extras = parse_extras(local_extra, name, "local")?;
        // Local ZIP64 record: both sizes, uncompressed first.
        let (local_size, local_compressed) = match extras.zip64 {
            Some(z) => {
                let mut zc = Cursor::new(z);
                match (zc.u64(), zc.u64()) {
                    (Some(u), Some(cz)) if matches!(z.len(), 16 | 24 | 28) => (u, cz),
                    _ => {
                        return reject(
                            codes::BAD_ZIP64,
                            "local ZIP64 extra field must hold both sizes",
                            at(),
                        );
                    }
                }
            }
            None => (u64::from(usize_), u64::from(csize)),
        };
        let descriptor = flags & FLAG_DESCRIPTOR != 0;
        // With a data descriptor the local header may leave CRC and sizes
        // zero (they follow the data); anything non-zero must still agree.
        let agrees = |local: u64, central: u64| local == central || (descriptor && local == 0);
        if !agrees(u64::from(crc), u64::from(central.crc)) {
            return Err(mismatch("CRC-32"));
        }
        if !agrees(local_compressed, central.compressed) {
            return Err(mismatch("compressed size"));
        }
        if !agrees(local_size, central.size) {
            return Err(mismatch("uncompressed size"));
        }
        let data_end = data_offset.saturating_add(central.compressed);
        if data_end > cd_offset {
            return reject(
                codes::OVERLAPPING_ENTRIES,
                "entry data runs into the central directory",
                at(),
            );
        }
        let mut span_end = data_end;
        if descriptor {
            // Sizes are 8 bytes when the local header has a ZIP64 record.
            let wide = extras.zip64.is_some() || central.zip64_sizes;
            let body = if wide { 20 } else { 12 };
            let avail = usize::try_from((cd_offset - data_end).min(24)).unwrap_or(24);
            let mut d = vec![0u8; avail];
            self.reader.seek(SeekFrom::Start(data_end)).map_err(io)?;
            self.reader.read_exact(&mut d).map_err(io)?;
            let matches = |bytes: &[u8]| -> bool {
                let mut dc = Cursor::new(bytes);
                let crc = dc.u32();
                let (cz, u) = if wide {
                    (dc.u64(), dc.u64())
                } else {
                    (dc.u32().map(u64::from), dc.u32().map(u64::from))
                };
                crc == Some(central.crc)
                    && cz == Some(central.compressed)
                    && u == Some(central.size)
            };
            let signed = d.get(..4) == Some(&DESCRIPTOR_SIG.to_le_bytes()[..])
                && d.get(4..4 + body).is_some_and(matches);
            let unsigned = d.get(..body).is_some_and(matches);
            let len = if signed {
                4 + body
            } else if unsigned {
                body
            } else {
                return reject(
                    codes::HEADER_MISMATCH,
                    "data descriptor is missing or disagrees with the central directory",
                    at(),
                );
            };
            span_end = data_end.saturating_add(len as u64);
        }
        Ok((data_offset, span_end))
    }

    /// Requires the entries, the central directory and the end records to
    /// tile the file exactly: no byte overlaps two structures and no byte
    /// belongs to none.
    fn check_layout(&self, spans: &mut [(u64, u64, usize)], end: &EndRecord) -> Result<()> {
        spans.sort_unstable();
        let name_of = |index: Option<usize>| {
            index
                .and_then(|i| self.entries.get(i))
                .map(|e| e.name.clone())
                .unwrap_or_default()
        };
        let mut expected = 0u64;
        let mut prev: Option<usize> = None;
        for &(start, stop, index) in spans.iter() {
            // Stops the non-recursive "better zip bomb" (David Fifield,
            // 2019): many central entries whose data ranges all reach into one
            // shared, highly compressed kernel, so a small file inflates to
            // terabytes while every entry's own ratio looks modest. Also
            // stops two entries pointing at the same local header.
            if start < expected {
                return reject(
                    codes::OVERLAPPING_ENTRIES,
                    format!(
                        "entry's bytes overlap those of {:?} (shared or overlapping entry data)",
                        name_of(prev)
                    ),
                    entry_at(&name_of(Some(index))),
                );
            }
            if start > expected {
                return Err(gap(start - expected, prev.map(|_| name_of(prev))));
            }
            expected = stop;
            prev = Some(index);
        }
        if end.cd_offset < expected {
            return reject(
                codes::OVERLAPPING_ENTRIES,
                "entry data runs into the central directory",
                entry_at(&name_of(prev)),
            );
        }
        if end.cd_offset > expected {
            return Err(gap(end.cd_offset - expected, prev.map(|_| name_of(prev))));
        }
        Ok(())
    }

    /// All entries, in central-directory order.
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Index of the entry with exactly this name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The entry with exactly this name.
    pub fn entry(&self, name: &str) -> Option<&ZipEntry> {
        self.index_of(name).and_then(|i| self.entries.get(i))
    }

    /// The source name used in I/O error messages.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The limits the archive was opened with.
    pub fn limits(&self) -> &ZipLimits {
        &self.limits
    }

    /// Total bytes inflated by all reads so far.
    pub fn inflated_bytes(&self) -> u64 {
        self.inflated
    }

    /// A streaming reader of entry `index` that enforces the declared size
    /// while inflating and checks the CRC-32 and the nested-archive rule.
    ///
    /// The verdict is final only when the reader has returned end of file:
    /// content handed out before then is provisional. Errors are
    /// `std::io::Error`s; [`EntryReader::into_error`] or [`error_from_io`]
    /// turn them into the crate error with its stable code.
    pub fn entry_reader(&mut self, index: usize) -> Result<EntryReader<'_, R>> {
        let Some(entry) = self.entries.get(index) else {
            return reject(
                codes::BAD_HEADER,
                format!("no entry number {index}"),
                Location::Input,
            );
        };
        EntryReader::new(
            &mut self.reader,
            &self.source,
            entry,
            &mut self.inflated,
            self.limits.max_total_bytes,
            self.limits.allow_nested_archives,
        )
    }

    /// Reads entry `index` whole, refusing it if it declares more than
    /// `max_bytes`. Size, CRC-32 and the nested-archive rule are checked.
    pub fn read_entry(&mut self, index: usize, max_bytes: u64) -> Result<Vec<u8>> {
        let (size, name) = match self.entries.get(index) {
            Some(e) => (e.size, e.name.clone()),
            None => {
                return reject(
                    codes::BAD_HEADER,
                    format!("no entry number {index}"),
                    Location::Input,
                );
            }
        };
        if size > max_bytes {
            return reject(
                codes::MEMBER_TOO_LARGE,
                format!("member is {size} bytes; the limit for it is {max_bytes}"),
                entry_at(&name),
            );
        }
        let mut reader = self.entry_reader(index)?;
        reader.read_all(max_bytes)
    }

    /// Reads the entry called `name` whole (see [`Self::read_entry`]);
    /// `None` if there is no such entry.
    pub fn read_by_name(&mut self, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>> {
        match self.index_of(name) {
            Some(i) => self.read_entry(i, max_bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

impl ZipArchive<std::fs::File> {
    /// Opens and checks the archive file at `path`.
    pub fn open_path(path: &Path, limits: &ZipLimits) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::open_named(file, path, limits)
    }
}

/// Directories seen so far (explicit entries and implied parents) as a tree
/// of case-folded components, so that checking a name costs time linear in
/// its length (keying whole prefixes would be quadratic in the depth).
#[derive(Debug, Default)]
struct DirTree {
    /// (parent id, folded component) → (id, component as first spelled).
    /// The root is id 0.
    nodes: HashMap<(u32, String), (u32, String)>,
}

impl DirTree {
    /// Walks, creating as needed, the directories `components` below the
    /// root; returns the id of the last. `Err((component, spelled))` when a
    /// component matches an existing one only when case is ignored.
    fn walk(&mut self, components: &[&str]) -> std::result::Result<u32, (String, String)> {
        let mut parent = 0u32;
        for &component in components {
            let next_id = u32::try_from(self.nodes.len() + 1).unwrap_or(u32::MAX);
            let (id, spelled) = self
                .nodes
                .entry((parent, name::fold_case(component)))
                .or_insert_with(|| (next_id, component.to_owned()));
            if spelled != component {
                return Err((component.to_owned(), spelled.clone()));
            }
            parent = *id;
        }
        Ok(parent)
    }

    /// The spelling of directory `folded` under `parent`, if there is one.
    fn get(&self, parent: u32, folded: String) -> Option<&str> {
        self.nodes.get(&(parent, folded)).map(|(_, s)| s.as_str())
    }
}

/// The finding for bytes that belong to no structure.
fn gap(len: u64, after: Option<String>) -> Error {
    match after {
        // Stops self-extractor stubs and polyglots (a file that is both a
        // valid image or script and a ZIP): whatever reads the file from the
        // front sees something other than what we checked.
        None => Finding::new(
            codes::PREPENDED_DATA,
            format!("archive has {len} bytes before its first entry"),
            Location::Input,
        )
        .into(),
        // Stops data hidden from the central directory: a streaming reader
        // walking local headers would find entries we never checked.
        Some(name) => Finding::new(
            codes::HIDDEN_DATA,
            format!("{len} bytes after this entry belong to no entry"),
            entry_at(&name),
        )
        .into(),
    }
}

/// Reads one central directory header.
fn parse_central<'a>(c: &mut Cursor<'a>) -> Result<Central<'a>> {
    let start = c.position();
    let short = || -> Error {
        Finding::new(
            codes::BAD_HEADER,
            format!("central directory entry at directory offset {start} is cut short"),
            Location::Input,
        )
        .into()
    };
    let sig = c.u32().ok_or_else(short)?;
    if sig != CENTRAL_SIG {
        return reject(
            codes::BAD_HEADER,
            format!("bad central directory signature at directory offset {start}"),
            Location::Input,
        );
    }
    let fixed = (|| {
        Some((
            c.u16()?,
            c.u16()?,
            c.u16()?,
            c.u16()?,
            c.u32()?,
            c.u32()?,
            c.u32()?,
            c.u32()?,
        ))
    })();
    let (made_by, _needed, flags, method, _time_date, crc, csize32, size32) =
        fixed.ok_or_else(short)?;
    let rest = (|| {
        Some((
            c.u16()?,
            c.u16()?,
            c.u16()?,
            c.u16()?,
            c.u16()?,
            c.u32()?,
            c.u32()?,
        ))
    })();
    let (nlen, elen, klen, disk16, _internal, external_attr, offset32) = rest.ok_or_else(short)?;
    let name = c.take(usize::from(nlen)).ok_or_else(short)?;
    let extra = c.take(usize::from(elen)).ok_or_else(short)?;
    c.take(usize::from(klen)).ok_or_else(short)?;

    let lossy = String::from_utf8_lossy(name).into_owned();
    let extras = parse_extras(extra, &lossy, "central")?;
    // ZIP64: the extra record holds, in this order, exactly the fields whose
    // header value is the all-ones sentinel.
    let mut z = Cursor::new(extras.zip64.unwrap_or(&[]));
    let bad64 = |what: &str| -> Error {
        Finding::new(
            codes::BAD_ZIP64,
            format!("ZIP64 extra field {what}"),
            entry_at(&lossy),
        )
        .into()
    };
    let mut widen32 = |v: u32| -> Result<u64> {
        if v == u32::MAX {
            z.u64().ok_or_else(|| bad64("is missing a deferred value"))
        } else {
            Ok(u64::from(v))
        }
    };
    let size = widen32(size32)?;
    let compressed = widen32(csize32)?;
    let local_offset = widen32(offset32)?;
    let disk = if disk16 == u16::MAX {
        z.u32().ok_or_else(|| bad64("is missing the disk number"))?
    } else {
        u32::from(disk16)
    };
    if z.remaining() != 0 {
        return Err(bad64("holds values the header does not defer to it"));
    }
    if disk != 0 {
        return reject(
            codes::MULTI_DISK,
            "entry starts on another disk of a split archive",
            entry_at(&lossy),
        );
    }
    Ok(Central {
        made_by,
        flags,
        method,
        crc,
        compressed,
        size,
        name,
        extra,
        external_attr,
        local_offset,
        zip64_sizes: size32 == u32::MAX || csize32 == u32::MAX,
    })
}

/// Only regular files and directories: the entry type comes from the Unix
/// mode (hosts Unix and OS X) and the DOS attributes, and must agree with
/// the trailing `/` of the name.
fn check_entry_type(made_by: u16, attr: u32, is_dir: bool, name: &str) -> Result<()> {
    let at = || entry_at(name);
    let host = made_by.to_be_bytes()[0];
    if !HOSTS_ALLOWED.contains(&host) {
        return reject(
            codes::UNSUPPORTED_HOST,
            format!("entry was made on host system {host}, which is not on the allow-list"),
            at(),
        );
    }
    let unix = host == HOST_UNIX || host == HOST_OSX;
    let dos = if unix { attr & 0xffff } else { attr };
    // Stops volume labels, devices, reparse points (Windows symlinks and
    // junctions) and encrypted files.
    if dos & !DOS_ALLOWED != 0 {
        return reject(
            codes::BAD_ENTRY_TYPE,
            format!(
                "entry has DOS attributes {:#x}, which mark it as something other than a file or directory",
                dos & !DOS_ALLOWED
            ),
            at(),
        );
    }
    if dos & DOS_DIRECTORY != 0 && !is_dir {
        return reject(
            codes::BAD_ENTRY_TYPE,
            "attributes mark a directory but the name has no trailing `/`",
            at(),
        );
    }
    if unix {
        // Stops symlinks (extraction would write through them, e.g. to
        // `/etc`), device nodes, FIFOs (a reader blocks forever) and sockets.
        let kind = match (attr >> 16) & S_IFMT {
            0 => return Ok(()),
            S_IFREG if !is_dir => return Ok(()),
            S_IFDIR if is_dir => return Ok(()),
            S_IFREG => "a regular file, but the name ends in `/`",
            S_IFDIR => "a directory, but the name has no trailing `/`",
            0o120_000 => "a symbolic link",
            0o020_000 => "a character device",
            0o060_000 => "a block device",
            0o010_000 => "a FIFO",
            0o140_000 => "a socket",
            _ => "of an unknown file type",
        };
        return reject(
            codes::BAD_ENTRY_TYPE,
            format!(
                "entry's Unix mode marks it as {kind}; only regular files and directories are allowed"
            ),
            at(),
        );
    }
    Ok(())
}

/// Finds and parses the end of central directory record (and its ZIP64
/// form), requiring it to end the file exactly.
fn find_end_record<R: Read + Seek>(
    reader: &mut R,
    file_len: u64,
    limits: &ZipLimits,
) -> Result<EndRecord> {
    let io = |e: io::Error| error_from_io(e, Path::new("<zip archive>"));
    if file_len < EOCD_LEN {
        return reject(
            codes::NOT_A_ZIP,
            "file is too short to be a ZIP archive",
            Location::Input,
        );
    }
    let tail_len = file_len.min(EOCD_LEN + u64::from(limits.max_comment_bytes));
    let tail_start = file_len - tail_len;
    let mut tail = vec![0u8; usize::try_from(tail_len).unwrap_or(0)];
    reader.seek(SeekFrom::Start(tail_start)).map_err(io)?;
    reader.read_exact(&mut tail).map_err(io)?;

    let sig = EOCD_SIG.to_le_bytes();
    let mut candidates = Vec::new();
    let mut trailing = false;
    for pos in (0..=tail.len().saturating_sub(EOCD_LEN as usize)).rev() {
        if tail.get(pos..pos + 4) != Some(&sig[..]) {
            continue;
        }
        let Some(comment_len) = tail
            .get(pos + 20..pos + 22)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
        else {
            continue;
        };
        let end = pos + EOCD_LEN as usize + usize::from(comment_len);
        if end == tail.len() {
            candidates.push(pos);
        } else if end < tail.len() {
            trailing = true;
        }
    }
    let pos = match candidates.as_slice() {
        [pos] => *pos,
        [] if trailing => {
            // Stops appended payloads and polyglots: tools that scan from the
            // front or the back would see different files.
            return reject(
                codes::TRAILING_DATA,
                "archive has bytes after its end-of-central-directory record",
                Location::Input,
            );
        }
        [] => {
            return reject(
                codes::NOT_A_ZIP,
                format!(
                    "no end-of-central-directory record: not a ZIP archive, or its comment is \
                     longer than {} bytes",
                    limits.max_comment_bytes
                ),
                Location::Input,
            );
        }
        // Stops an archive comment that holds a second end record: tools
        // that take the first and the last candidate see different archives.
        _ => {
            return reject(
                codes::AMBIGUOUS_EOCD,
                "archive has more than one end-of-central-directory record",
                Location::Input,
            );
        }
    };
    let eocd_offset = tail_start + pos as u64;
    let mut c = Cursor::new(tail.get(pos + 4..).unwrap_or(&[]));
    let fields = (|| Some((c.u16()?, c.u16()?, c.u16()?, c.u16()?, c.u32()?, c.u32()?)))();
    let Some((disk, cd_disk, n_disk, n_total, cd_size32, cd_offset32)) = fields else {
        return reject(codes::TRUNCATED, "end record is cut short", Location::Input);
    };
    let sentinel = disk == u16::MAX
        || cd_disk == u16::MAX
        || n_disk == u16::MAX
        || n_total == u16::MAX
        || cd_size32 == u32::MAX
        || cd_offset32 == u32::MAX;
    let locator_offset = eocd_offset.checked_sub(ZIP64_LOCATOR_LEN);
    let mut locator = [0u8; ZIP64_LOCATOR_LEN as usize];
    let has_locator = match (sentinel, locator_offset) {
        (true, Some(at)) => {
            reader.seek(SeekFrom::Start(at)).map_err(io)?;
            reader.read_exact(&mut locator).map_err(io)?;
            locator.get(..4) == Some(&ZIP64_LOCATOR_SIG.to_le_bytes()[..])
        }
        _ => false,
    };
    let bad64 = |what: &str| -> Result<EndRecord> {
        reject(
            codes::BAD_ZIP64,
            format!("ZIP64 end record: {what}"),
            Location::Input,
        )
    };
    let end = if has_locator {
        let mut lc = Cursor::new(locator.get(4..).unwrap_or_default());
        let (Some(l_disk), Some(z64_offset), Some(l_disks)) = (lc.u32(), lc.u64(), lc.u32()) else {
            return bad64("locator is cut short");
        };
        if l_disk != 0 || l_disks > 1 {
            return reject(
                codes::MULTI_DISK,
                "archive is split over several disks",
                Location::Input,
            );
        }
        let locator_at = locator_offset.unwrap_or(0);
        if z64_offset.checked_add(ZIP64_EOCD_LEN) != Some(locator_at) {
            return bad64("it must immediately precede its locator, with no extensible data");
        }
        let mut rec = [0u8; ZIP64_EOCD_LEN as usize];
        reader.seek(SeekFrom::Start(z64_offset)).map_err(io)?;
        reader.read_exact(&mut rec).map_err(io)?;
        let mut rc = Cursor::new(&rec);
        let fields = (|| {
            Some((
                rc.u32()?,
                rc.u64()?,
                rc.u16()?,
                rc.u16()?,
                rc.u32()?,
                rc.u32()?,
                rc.u64()?,
                rc.u64()?,
                rc.u64()?,
                rc.u64()?,
            ))
        })();
        let Some((
            sig64,
            size,
            _made,
            _needed,
            d64,
            cd_d64,
            n_disk64,
            n_total64,
            cd_size,
            cd_offset,
        )) = fields
        else {
            return bad64("record is cut short");
        };
        if sig64 != ZIP64_EOCD_SIG || size != ZIP64_EOCD_LEN - 12 {
            return bad64("bad signature or record size");
        }
        if d64 != 0 || cd_d64 != 0 || n_disk64 != n_total64 {
            return reject(
                codes::MULTI_DISK,
                "archive is split over several disks",
                Location::Input,
            );
        }
        // The classic record may only defer to the ZIP64 one, not contradict it.
        let agrees16 = |v: u16, w: u64| v == u16::MAX || u64::from(v) == w;
        let agrees32 = |v: u32, w: u64| v == u32::MAX || u64::from(v) == w;
        if !(agrees16(disk, 0)
            && agrees16(cd_disk, 0)
            && agrees16(n_disk, n_disk64)
            && agrees16(n_total, n_total64)
            && agrees32(cd_size32, cd_size)
            && agrees32(cd_offset32, cd_offset))
        {
            return bad64("the classic end record contradicts it");
        }
        EndRecord {
            entries: n_total64,
            cd_offset,
            cd_size,
            cd_end: z64_offset,
        }
    } else {
        if disk != 0 || cd_disk != 0 || n_disk != n_total {
            return reject(
                codes::MULTI_DISK,
                "archive is split over several disks",
                Location::Input,
            );
        }
        EndRecord {
            entries: u64::from(n_total),
            cd_offset: u64::from(cd_offset32),
            cd_size: u64::from(cd_size32),
            cd_end: eocd_offset,
        }
    };
    match end.cd_offset.checked_add(end.cd_size) {
        Some(cd_stop) if cd_stop == end.cd_end => Ok(end),
        Some(cd_stop) if cd_stop < end.cd_end => reject(
            codes::HIDDEN_DATA,
            format!(
                "{} bytes between the central directory and the end record belong to nothing",
                end.cd_end - cd_stop
            ),
            Location::Input,
        ),
        _ => reject(
            codes::BAD_HEADER,
            "central directory runs past the end record",
            Location::Input,
        ),
    }
}
