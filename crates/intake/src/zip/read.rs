//! Reading one member: inflate, count, verify.
//!
//! Declared sizes are only claims. The reader never produces more than the
//! declared size plus one byte (the byte that proves the claim false), never
//! consumes more than the declared compressed size, and at the end requires
//! the DEFLATE stream to end exactly at the compressed size, the output to
//! be exactly the declared size and its CRC-32 to match. This is what
//! catches lying headers and data descriptors.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::{FindingError, Method, ZipEntry, codes, entry_at, error_from_io, nested};
use crate::error::{Error, Result};
use crate::finding::Finding;

/// Compressed bytes read from the archive per refill.
const INPUT_CHUNK: usize = 32 << 10;

/// A streaming, verifying reader of one archive member.
///
/// Returned by [`super::ZipArchive::entry_reader`]. Reads yield the member's
/// content; a lie in the headers, a corrupt stream, a CRC mismatch, a nested
/// archive or the archive-wide inflation limit surface as an error from
/// `read` (an `io::Error` carrying the finding; see [`Self::into_error`]).
pub struct EntryReader<'a, R> {
    src: &'a mut R,
    source: &'a Path,
    name: String,
    method: Method,
    /// Compressed bytes not yet read from `src`.
    remaining_in: u64,
    inflater: Option<Box<InflateState>>,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    declared: u64,
    expected_crc: u32,
    produced: u64,
    hasher: crc32fast::Hasher,
    total: &'a mut u64,
    max_total: u64,
    head: Vec<u8>,
    head_checked: bool,
    stream_ended: bool,
    done: bool,
    failed: Option<Finding>,
}

impl<R> std::fmt::Debug for EntryReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryReader")
            .field("name", &self.name)
            .field("produced", &self.produced)
            .field("declared", &self.declared)
            .finish_non_exhaustive()
    }
}

impl<'a, R: Read + Seek> EntryReader<'a, R> {
    pub(super) fn new(
        src: &'a mut R,
        source: &'a Path,
        entry: &ZipEntry,
        total: &'a mut u64,
        max_total: u64,
        allow_nested: bool,
    ) -> Result<Self> {
        src.seek(SeekFrom::Start(entry.data_offset))
            .map_err(|e| error_from_io(e, source))?;
        let inflater = match entry.method {
            Method::Stored => None,
            Method::Deflated => Some(InflateState::new_boxed(DataFormat::Raw)),
        };
        let chunk = usize::try_from(entry.compressed_size)
            .unwrap_or(INPUT_CHUNK)
            .min(INPUT_CHUNK);
        Ok(EntryReader {
            src,
            source,
            name: entry.name.clone(),
            method: entry.method,
            remaining_in: entry.compressed_size,
            inflater,
            input: if entry.method == Method::Deflated {
                vec![0; chunk]
            } else {
                Vec::new()
            },
            in_pos: 0,
            in_len: 0,
            declared: entry.size,
            expected_crc: entry.crc32,
            produced: 0,
            hasher: crc32fast::Hasher::new(),
            total,
            max_total,
            head: Vec::new(),
            // With nested archives allowed there is no magic to look for.
            head_checked: allow_nested,
            stream_ended: false,
            done: false,
            failed: None,
        })
    }
}

impl<R: Read> EntryReader<'_, R> {
    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Converts an error returned by `read` into the crate error.
    pub fn into_error(&self, e: io::Error) -> Error {
        error_from_io(e, self.source)
    }

    /// Reads the rest of the member, discarding it, and returns once the
    /// content has been verified. Returns the number of bytes discarded.
    pub fn drain(&mut self) -> Result<u64> {
        let mut buf = [0u8; 16 << 10];
        let mut n = 0u64;
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(n),
                Ok(k) => n += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.into_error(e)),
            }
        }
    }

    /// Reads the rest of the member into memory, refusing more than
    /// `max_bytes`, and returns it once verified.
    pub fn read_all(&mut self, max_bytes: u64) -> Result<Vec<u8>> {
        let cap = self.declared.saturating_sub(self.produced).min(max_bytes);
        let mut out = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
        let mut buf = [0u8; 16 << 10];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(k) => {
                    if (out.len() + k) as u64 > max_bytes {
                        return Err(Finding::new(
                            codes::MEMBER_TOO_LARGE,
                            format!("member is larger than the limit of {max_bytes} bytes for it"),
                            entry_at(&self.name),
                        )
                        .into());
                    }
                    out.extend_from_slice(buf.get(..k).unwrap_or_default());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.into_error(e)),
            }
        }
    }

    fn fail(&mut self, code: &'static str, message: String) -> io::Error {
        let finding = Finding::new(code, message, entry_at(&self.name));
        self.failed = Some(finding.clone());
        io::Error::other(FindingError(Box::new(finding)))
    }

    /// Counts, hashes and sniffs `out`, the bytes just produced.
    fn account(&mut self, out: &[u8]) -> io::Result<()> {
        let n = out.len() as u64;
        self.produced = self.produced.saturating_add(n);
        // Stops lying sizes and data descriptors: the declared size (which the
        // limits were checked against) is a hard cap on what comes out.
        if self.produced > self.declared {
            let msg = format!(
                "entry inflates to more than the {} bytes its headers declare",
                self.declared
            );
            return Err(self.fail(codes::SIZE_MISMATCH, msg));
        }
        // Re-checks the archive-wide limit on what was actually produced.
        *self.total = self.total.saturating_add(n);
        if *self.total > self.max_total {
            let msg = format!(
                "archive inflates to more than the limit of {} bytes",
                self.max_total
            );
            return Err(self.fail(codes::TOTAL_TOO_LARGE, msg));
        }
        self.hasher.update(out);
        if !self.head_checked {
            let want = nested::MAGIC_PREFIX_LEN.saturating_sub(self.head.len());
            self.head
                .extend_from_slice(out.get(..want.min(out.len())).unwrap_or_default());
            if self.head.len() >= nested::MAGIC_PREFIX_LEN {
                self.check_head()?;
            }
        }
        Ok(())
    }

    /// Stops nested archives whatever their name says.
    fn check_head(&mut self) -> io::Result<()> {
        self.head_checked = true;
        if let Some(kind) = nested::archive_magic(&self.head) {
            let msg = format!(
                "entry's content is a {kind} archive; archives inside archives are refused"
            );
            return Err(self.fail(codes::NESTED_ARCHIVE, msg));
        }
        Ok(())
    }

    /// End-of-member checks: size, CRC, nested archive.
    fn finish(&mut self) -> io::Result<()> {
        if self.produced != self.declared {
            let msg = format!(
                "entry holds {} bytes but its headers declare {}",
                self.produced, self.declared
            );
            return Err(self.fail(codes::SIZE_MISMATCH, msg));
        }
        let crc = self.hasher.clone().finalize();
        if crc != self.expected_crc {
            let msg = format!(
                "entry's CRC-32 is {crc:#010x} but its headers declare {:#010x}",
                self.expected_crc
            );
            return Err(self.fail(codes::CRC_MISMATCH, msg));
        }
        if !self.head_checked {
            self.check_head()?;
        }
        self.done = true;
        Ok(())
    }

    fn read_stored(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.remaining_in == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = usize::try_from(self.remaining_in)
            .unwrap_or(usize::MAX)
            .min(out.len());
        let Some(dst) = out.get_mut(..want) else {
            return Ok(0);
        };
        let n = self.src.read(dst)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining_in -= n as u64;
        self.account(dst.get(..n).unwrap_or_default())?;
        Ok(n)
    }

    fn read_deflated(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.stream_ended {
            self.finish()?;
            return Ok(0);
        }
        loop {
            if self.in_pos == self.in_len && self.remaining_in > 0 {
                let n = usize::try_from(self.remaining_in)
                    .unwrap_or(usize::MAX)
                    .min(self.input.len());
                let Some(dst) = self.input.get_mut(..n) else {
                    return Err(io::Error::other("input buffer"));
                };
                self.src.read_exact(dst)?;
                self.remaining_in -= n as u64;
                self.in_pos = 0;
                self.in_len = n;
            }
            // At most one byte beyond the declared size: enough to prove a lie.
            let room = self
                .declared
                .saturating_sub(self.produced)
                .saturating_add(1)
                .min(out.len() as u64);
            let room = usize::try_from(room).unwrap_or(out.len());
            let (Some(state), Some(input), Some(dst)) = (
                self.inflater.as_mut(),
                self.input.get(self.in_pos..self.in_len),
                out.get_mut(..room),
            ) else {
                return Err(io::Error::other("inflater state"));
            };
            let res = miniz_oxide::inflate::stream::inflate(state, input, dst, MZFlush::None);
            self.in_pos += res.bytes_consumed;
            let written = res.bytes_written;
            self.account(dst.get(..written).unwrap_or_default())?;
            match res.status {
                Ok(MZStatus::StreamEnd) => {
                    // Stops data hidden after the end of the DEFLATE stream but
                    // inside the entry's compressed size.
                    let unread = (self.in_len - self.in_pos) as u64 + self.remaining_in;
                    if unread != 0 {
                        let msg = format!(
                            "DEFLATE stream ends {unread} bytes before the entry's compressed size"
                        );
                        return Err(self.fail(codes::SIZE_MISMATCH, msg));
                    }
                    self.stream_ended = true;
                    if written == 0 {
                        self.finish()?;
                    }
                    return Ok(written);
                }
                Ok(_) if written > 0 => return Ok(written),
                Ok(_) => {
                    if res.bytes_consumed == 0
                        && self.in_pos == self.in_len
                        && self.remaining_in == 0
                    {
                        return Err(self.truncated());
                    }
                }
                Err(MZError::Buf) => {
                    if self.in_pos == self.in_len && self.remaining_in == 0 {
                        return Err(self.truncated());
                    }
                    if written > 0 {
                        return Ok(written);
                    }
                }
                Err(_) => {
                    let msg = "entry's DEFLATE data is corrupt".to_owned();
                    return Err(self.fail(codes::BAD_DEFLATE, msg));
                }
            }
        }
    }

    fn truncated(&mut self) -> io::Error {
        let msg = format!(
            "DEFLATE stream does not end within the entry's {} compressed bytes",
            self.remaining_in + self.in_len as u64
        );
        self.fail(codes::BAD_DEFLATE, msg)
    }
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.failed {
            return Err(io::Error::other(FindingError(Box::new(f.clone()))));
        }
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let r = match self.method {
            Method::Stored => self.read_stored(out),
            Method::Deflated => self.read_deflated(out),
        };
        if let Err(e) = &r
            && self.failed.is_none()
            && e.kind() != io::ErrorKind::Interrupted
        {
            // Any error ends the reader; remember a plain I/O error as
            // truncation so that a retry cannot resume mid-stream.
            self.failed = Some(Finding::new(
                codes::TRUNCATED,
                "the archive ends in the middle of an entry",
                entry_at(&self.name),
            ));
        }
        r
    }
}
