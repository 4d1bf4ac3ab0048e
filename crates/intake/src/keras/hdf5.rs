//! A bounded, allow-list walker over the HDF5 structure of `model.weights.h5`.
//!
//! This is not an HDF5 library. It reads the structure that h5py writes for
//! Keras 3 weights (superblock v0 with symbol-table groups, or v2/v3 with
//! compact link messages; version 1 and 2 object headers; contiguous or
//! compact datasets of little-endian IEEE floats and integers; one string
//! attribute `name` on groups) and refuses everything else with a stable
//! code. It never reads dataset values, never follows a link outside the
//! file and never decompresses anything, so hostile bytes cannot make it
//! open files, allocate beyond the file's own size, or loop: every address
//! is checked against the file length, every count against a limit, and
//! every object and B-tree node may be visited once.
//!
//! Why not a general HDF5 reader: the crates on crates.io that read HDF5 in
//! pure Rust (hdf5-reader, hdf5-pure, rust-hdf5) implement the whole format
//! (filters, fractal heaps, chunk B-trees, external files) in 30k–130k lines
//! and do not take limits; a libhdf5 binding parses hostile bytes in C. The
//! gate only needs to *inspect* a narrow structure and refuse the rest,
//! which is a few hundred lines that can be read in one sitting.
//!
//! Format reference: the HDF5 File Format Specification, version 3.0.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::KerasLimits;
use super::codes;
use crate::finding::{Finding, Location};

/// "Undefined address": all bits set, at the file's offset size.
const UNDEF: u64 = u64::MAX;
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Element type of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum H5Dtype {
    /// IEEE 754 float of this many bits (16, 32, 64), little-endian.
    Float(u8),
    /// Two's complement signed integer of this many bits, little-endian.
    Int(u8),
    /// Unsigned integer of this many bits, little-endian.
    Uint(u8),
}

impl H5Dtype {
    /// Size of one element in bytes.
    pub fn size(self) -> u64 {
        match self {
            H5Dtype::Float(b) | H5Dtype::Int(b) | H5Dtype::Uint(b) => u64::from(b) / 8,
        }
    }

    /// The numpy-style name (`float32`, `int64`).
    pub fn name(self) -> String {
        match self {
            H5Dtype::Float(b) => format!("float{b}"),
            H5Dtype::Int(b) => format!("int{b}"),
            H5Dtype::Uint(b) => format!("uint{b}"),
        }
    }
}

/// A group in the weights file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct H5Group {
    /// Absolute path (`/layers/dense/vars`); the root is `/`.
    pub path: String,
    /// The string attribute `name` Keras writes on `vars` groups.
    pub name_attr: Option<String>,
}

/// A dataset in the weights file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct H5Dataset {
    /// Absolute path (`/layers/dense/vars/0`).
    pub path: String,
    /// Dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: H5Dtype,
    /// Declared size: product of the shape times the element size, which
    /// the walker checked is stored inside the file.
    pub byte_size: u64,
}

/// The structure of a weights file that passed the walker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct H5Tree {
    /// Every group, parents before children.
    pub groups: Vec<H5Group>,
    /// Every dataset.
    pub datasets: Vec<H5Dataset>,
    /// Superblock version (0, 2 or 3).
    pub superblock_version: u8,
}

/// Internal error: a code and message; the walker adds the object path.
struct H5Err {
    code: &'static str,
    message: String,
}

type R<T> = std::result::Result<T, H5Err>;

fn err<T>(code: &'static str, message: impl Into<String>) -> R<T> {
    Err(H5Err {
        code,
        message: message.into(),
    })
}

fn invalid<T>(message: impl Into<String>) -> R<T> {
    err(codes::H5_INVALID, message)
}

fn unsupported<T>(message: impl Into<String>) -> R<T> {
    err(codes::H5_UNSUPPORTED_STRUCTURE, message)
}

/// A bounds-checked little-endian reader over a slice.
#[derive(Clone, Copy)]
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cur { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => invalid(format!(
                "structure truncated: needs {n} bytes at offset {} of a {}-byte block",
                self.pos,
                self.buf.len()
            )),
        }
    }

    fn skip(&mut self, n: usize) -> R<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    /// An unsigned little-endian integer of `n` bytes (1..=8).
    fn uint(&mut self, n: usize) -> R<u64> {
        let bytes = self.take(n)?;
        if n > 8 {
            return invalid("integer field wider than 8 bytes");
        }
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn u16(&mut self) -> R<u16> {
        Ok(self.uint(2)? as u16)
    }

    fn u32(&mut self) -> R<u32> {
        Ok(self.uint(4)? as u32)
    }

    fn sig(&mut self, want: &[u8; 4], what: &str) -> R<()> {
        if self.take(4)? != want {
            return invalid(format!("bad {what} signature"));
        }
        Ok(())
    }
}

/// One object header message: type, flags, body.
struct Msg<'a> {
    kind: u16,
    body: &'a [u8],
}

/// Bob Jenkins' lookup3 `hashlittle`, as the HDF5 spec uses for v2
/// structure checksums. Written from the algorithm's description.
fn lookup3(data: &[u8]) -> u32 {
    #[inline]
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }
    #[inline]
    fn fin(a: &mut u32, b: &mut u32, c: &mut u32) {
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(14));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(11));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(25));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(16));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(4));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(14));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(24));
    }
    fn word(chunk: &[u8], i: usize) -> u32 {
        let mut w = [0u8; 4];
        for (j, slot) in w.iter_mut().enumerate() {
            *slot = chunk.get(i * 4 + j).copied().unwrap_or(0);
        }
        u32::from_le_bytes(w)
    }
    let init = 0xdead_beef_u32.wrapping_add(data.len() as u32);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = data;
    while rest.len() > 12 {
        let (block, tail) = rest.split_at(12);
        a = a.wrapping_add(word(block, 0));
        b = b.wrapping_add(word(block, 1));
        c = c.wrapping_add(word(block, 2));
        mix(&mut a, &mut b, &mut c);
        rest = tail;
    }
    if rest.is_empty() {
        return c;
    }
    // Last 1..=12 bytes, zero-padded little-endian words.
    a = a.wrapping_add(word(rest, 0));
    b = b.wrapping_add(word(rest, 1));
    c = c.wrapping_add(word(rest, 2));
    fin(&mut a, &mut b, &mut c);
    c
}

/// [`lookup3`] for the tests' HDF5 writer.
#[cfg(test)]
pub(crate) fn lookup3_for_tests(data: &[u8]) -> u32 {
    lookup3(data)
}

/// What an object header turned out to be.
enum Object {
    Group {
        children: Vec<(String, u64)>,
        name_attr: Option<String>,
    },
    Dataset {
        shape: Vec<u64>,
        dtype: H5Dtype,
        byte_size: u64,
        /// File range of the stored bytes (`None` for compact or empty).
        storage: Option<(u64, u64)>,
    },
}

struct Walker<'a> {
    file: &'a [u8],
    /// Size of file offsets and of lengths, in bytes (8 for h5py).
    so: usize,
    sl: usize,
    /// B-tree K values from a v0 superblock.
    leaf_k: u16,
    internal_k: u16,
    limits: &'a KerasLimits,
    objects: usize,
    btree_nodes: usize,
    visited_objects: HashSet<u64>,
    visited_nodes: HashSet<u64>,
    tree: H5Tree,
    storage: Vec<(u64, u64, String)>,
    /// Global heap collections indexed so far: address -> object index ->
    /// (address, size) of the object's bytes.
    collections: HashMap<u64, HashMap<u32, (u64, u64)>>,
    collection_bytes: u64,
    /// Path being inspected, for error locations.
    current: String,
}

/// Walks the structure of an HDF5 file held in memory.
///
/// `member` names the archive member in findings. Every problem is fatal:
/// the first one is returned as the error, with the HDF5 path it was found
/// at.
pub fn parse_weights_structure(
    h5: &[u8],
    member: &str,
    limits: &KerasLimits,
) -> crate::Result<H5Tree> {
    let mut w = Walker {
        file: h5,
        so: 8,
        sl: 8,
        leaf_k: 4,
        internal_k: 16,
        limits,
        objects: 0,
        btree_nodes: 0,
        visited_objects: HashSet::new(),
        visited_nodes: HashSet::new(),
        tree: H5Tree::default(),
        storage: Vec::new(),
        collections: HashMap::new(),
        collection_bytes: 0,
        current: "/".to_owned(),
    };
    match w.run() {
        Ok(()) => Ok(w.tree),
        Err(e) => Err(Finding::new(
            e.code,
            e.message,
            Location::Hdf5 {
                member: member.to_owned(),
                path: w.current.clone(),
            },
        )
        .into()),
    }
}

impl<'a> Walker<'a> {
    fn run(&mut self) -> R<()> {
        if (self.file.len() as u64) > self.limits.max_weights_bytes {
            return err(
                codes::H5_LIMIT_EXCEEDED,
                format!(
                    "weights file is {} bytes, over the limit of {}",
                    self.file.len(),
                    self.limits.max_weights_bytes
                ),
            );
        }
        let root = self.superblock()?;
        self.walk(root, "/".to_owned(), 0)?;
        self.check_storage_overlap()?;
        Ok(())
    }

    /// A slice of the file at an absolute address.
    fn at(&self, addr: u64, len: u64, what: &str) -> R<&'a [u8]> {
        if addr == UNDEF {
            return invalid(format!("{what} at an undefined address"));
        }
        let end = addr.checked_add(len);
        let file: &'a [u8] = self.file;
        match end
            .and_then(|end| usize::try_from(end).ok())
            .zip(usize::try_from(addr).ok())
            .and_then(|(end, start)| file.get(start..end))
        {
            Some(s) => Ok(s),
            None => invalid(format!(
                "{what} at {addr}+{len} lies outside the {}-byte file",
                self.file.len()
            )),
        }
    }

    /// The rest of the file from an address (for structures whose length
    /// is only known after parsing their header).
    fn from(&self, addr: u64, what: &str) -> R<Cur<'a>> {
        let file: &'a [u8] = self.file;
        match usize::try_from(addr).ok().and_then(|a| file.get(a..)) {
            Some(s) if addr != UNDEF => Ok(Cur::new(s)),
            _ => invalid(format!("{what} address {addr} lies outside the file")),
        }
    }

    fn offset(&self, c: &mut Cur<'_>) -> R<u64> {
        let v = c.uint(self.so)?;
        // An all-ones value at the file's offset size is "undefined".
        let undef = if self.so >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.so)) - 1
        };
        Ok(if v == undef { UNDEF } else { v })
    }

    fn length(&self, c: &mut Cur<'_>) -> R<u64> {
        c.uint(self.sl)
    }

    fn superblock(&mut self) -> R<u64> {
        let mut c = Cur::new(self.file);
        // Allow-list: the superblock must be at offset 0. HDF5 also looks at
        // 512, 1024, ... (a "user block" before it); h5py never writes one,
        // and a user block is where a polyglot file would hide its payload.
        if c.take(8)? != SIGNATURE {
            return invalid("no HDF5 signature at offset 0");
        }
        let version = c.u8()?;
        self.tree.superblock_version = version;
        match version {
            0 | 1 => {
                if version == 1 {
                    return unsupported("superblock version 1 is not written by h5py");
                }
                let free_space_version = c.u8()?;
                let root_entry_version = c.u8()?;
                c.skip(1)?;
                let shared_header_version = c.u8()?;
                if free_space_version != 0 || root_entry_version != 0 || shared_header_version != 0
                {
                    return unsupported("superblock v0 with unexpected sub-versions");
                }
                self.so = usize::from(c.u8()?);
                self.sl = usize::from(c.u8()?);
                self.check_sizes()?;
                c.skip(1)?;
                self.leaf_k = c.u16()?;
                self.internal_k = c.u16()?;
                if self.leaf_k == 0 || self.internal_k == 0 {
                    return invalid("B-tree K of zero");
                }
                let _flags = c.u32()?;
                let base = self.offset(&mut c)?;
                let _free_space = self.offset(&mut c)?;
                let eof = self.offset(&mut c)?;
                let driver = self.offset(&mut c)?;
                self.check_base_eof(base, eof)?;
                // A driver information block selects the "family" or "multi"
                // drivers, which spread the file over several files on disk:
                // external storage by another name (CVE-2026-1669).
                if driver != UNDEF {
                    return err(
                        codes::H5_EXTERNAL_STORAGE,
                        "superblock names a file driver (multi-file or family storage)",
                    );
                }
                // Root group symbol table entry.
                let _name_off = self.offset(&mut c)?;
                let root = self.offset(&mut c)?;
                let cache = c.u32()?;
                if cache == 2 {
                    return err(codes::H5_SOFT_LINK, "the root group is a soft link");
                }
                Ok(root)
            }
            2 | 3 => {
                self.so = usize::from(c.u8()?);
                self.sl = usize::from(c.u8()?);
                self.check_sizes()?;
                let _flags = c.u8()?;
                let base = self.offset(&mut c)?;
                let ext = self.offset(&mut c)?;
                let eof = self.offset(&mut c)?;
                let root = self.offset(&mut c)?;
                let covered = c.pos;
                let stored = c.u32()?;
                let computed = lookup3(self.file.get(..covered).unwrap_or_default());
                if stored != computed {
                    return err(codes::H5_CHECKSUM, "superblock checksum mismatch");
                }
                self.check_base_eof(base, eof)?;
                // The superblock extension can carry driver info and shared
                // message tables; h5py does not write one for Keras weights.
                if ext != UNDEF {
                    return unsupported("superblock extension present");
                }
                Ok(root)
            }
            v => unsupported(format!("superblock version {v}")),
        }
    }

    fn check_sizes(&self) -> R<()> {
        if !matches!(self.so, 2 | 4 | 8) || !matches!(self.sl, 2 | 4 | 8) {
            return invalid(format!(
                "unsupported sizes of offsets/lengths: {}/{}",
                self.so, self.sl
            ));
        }
        Ok(())
    }

    fn check_base_eof(&self, base: u64, eof: u64) -> R<()> {
        // Allow-list: a base address other than 0 only occurs with a user
        // block, which is refused above.
        if base != 0 {
            return unsupported(format!("base address {base} is not 0"));
        }
        if eof == UNDEF || eof > self.file.len() as u64 {
            return invalid(format!(
                "end-of-file address {eof} is beyond the {}-byte member: the file is truncated",
                self.file.len()
            ));
        }
        Ok(())
    }

    /// Visits one object (group or dataset) and, for groups, its children.
    fn walk(&mut self, addr: u64, path: String, depth: usize) -> R<()> {
        self.current.clone_from(&path);
        if depth > self.limits.max_h5_depth {
            return err(
                codes::H5_LIMIT_EXCEEDED,
                format!("groups nest deeper than {}", self.limits.max_h5_depth),
            );
        }
        self.objects += 1;
        if self.objects > self.limits.max_h5_objects {
            return err(
                codes::H5_LIMIT_EXCEEDED,
                format!("more than {} objects", self.limits.max_h5_objects),
            );
        }
        // Each object header is visited once. Reaching one again means a
        // cycle (a group linking to an ancestor: infinite traversal in naive
        // readers) or a second hard link to the same object, which Keras
        // never writes and which would let one dataset be counted twice.
        if !self.visited_objects.insert(addr) {
            return err(
                codes::H5_CYCLE,
                format!("object at address {addr} is reached a second time"),
            );
        }
        match self.object(addr)? {
            Object::Group {
                children,
                name_attr,
            } => {
                self.tree.groups.push(H5Group {
                    path: path.clone(),
                    name_attr,
                });
                for (name, child) in children {
                    let child_path = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    self.walk(child, child_path, depth + 1)?;
                }
                Ok(())
            }
            Object::Dataset {
                shape,
                dtype,
                byte_size,
                storage,
            } => {
                if let Some((start, len)) = storage {
                    self.storage.push((start, len, path.clone()));
                }
                self.tree.datasets.push(H5Dataset {
                    path,
                    shape,
                    dtype,
                    byte_size,
                });
                Ok(())
            }
        }
    }

    /// Reads an object header (v1 or v2) and collects its messages.
    fn messages(&mut self, addr: u64) -> R<Vec<Msg<'a>>> {
        let mut out = Vec::new();
        let mut head = self.from(addr, "object header")?;
        let first = *head.buf.first().unwrap_or(&0);
        // Continuation blocks still to read: (address, length).
        let mut pending: Vec<(u64, u64)> = Vec::new();
        let v2 = head.buf.get(..4) == Some(b"OHDR");
        let mut creation_order = false;
        if v2 {
            head.skip(4)?;
            if head.u8()? != 2 {
                return unsupported("object header v2 with an unknown version");
            }
            let flags = head.u8()?;
            creation_order = flags & 0x04 != 0;
            if flags & 0x20 != 0 {
                head.skip(16)?; // access/modification/change/birth times
            }
            if flags & 0x10 != 0 {
                head.skip(4)?; // attribute storage phase change values
            }
            let size = head.uint(1 << (flags & 0x03))?;
            let size = usize::try_from(size).or_else(|_| invalid("object header too large"))?;
            let body = head.take(size)?;
            let covered = head.pos;
            let stored = head.u32()?;
            if lookup3(head.buf.get(..covered).unwrap_or_default()) != stored {
                return err(codes::H5_CHECKSUM, "object header checksum mismatch");
            }
            self.parse_messages(body, true, creation_order, &mut out, &mut pending)?;
        } else {
            if first != 1 {
                return unsupported(format!(
                    "object header version {first} (expected 1, or an OHDR v2 header)"
                ));
            }
            head.skip(2)?; // version, reserved
            let _count = head.u16()?;
            let _refcount = head.u32()?;
            let size = head.u32()?;
            head.skip(4)?; // alignment padding of the v1 prefix
            let body = head.take(size as usize)?;
            self.parse_messages(body, false, false, &mut out, &mut pending)?;
        }
        let mut blocks = 0usize;
        let mut seen_blocks = HashSet::new();
        while let Some((caddr, clen)) = pending.pop() {
            blocks += 1;
            if blocks > self.limits.max_h5_messages || !seen_blocks.insert(caddr) {
                return err(
                    codes::H5_LIMIT_EXCEEDED,
                    "too many or repeated object header continuation blocks",
                );
            }
            let block = self.at(caddr, clen, "continuation block")?;
            if v2 {
                let mut c = Cur::new(block);
                c.sig(b"OCHK", "continuation block")?;
                let body_len = block
                    .len()
                    .checked_sub(8)
                    .map_or_else(|| invalid("continuation block too short"), Ok)?;
                let body = c.take(body_len)?;
                let covered = c.pos;
                let stored = c.u32()?;
                if lookup3(block.get(..covered).unwrap_or_default()) != stored {
                    return err(codes::H5_CHECKSUM, "continuation block checksum mismatch");
                }
                self.parse_messages(body, true, creation_order, &mut out, &mut pending)?;
            } else {
                self.parse_messages(block, false, false, &mut out, &mut pending)?;
            }
        }
        Ok(out)
    }

    fn parse_messages(
        &self,
        body: &'a [u8],
        v2: bool,
        creation_order: bool,
        out: &mut Vec<Msg<'a>>,
        pending: &mut Vec<(u64, u64)>,
    ) -> R<()> {
        let mut c = Cur::new(body);
        let header_len = if v2 {
            4 + if creation_order { 2 } else { 0 }
        } else {
            8
        };
        while c.remaining() >= header_len {
            let (kind, size, flags) = if v2 {
                let kind = u16::from(c.u8()?);
                let size = c.u16()?;
                let flags = c.u8()?;
                if creation_order {
                    c.skip(2)?;
                }
                (kind, size, flags)
            } else {
                let kind = c.u16()?;
                let size = c.u16()?;
                let flags = c.u8()?;
                c.skip(3)?;
                (kind, size, flags)
            };
            let data = c.take(usize::from(size))?;
            if out.len() >= self.limits.max_h5_messages {
                return err(
                    codes::H5_LIMIT_EXCEEDED,
                    format!(
                        "more than {} messages in one object header",
                        self.limits.max_h5_messages
                    ),
                );
            }
            // Shared messages live in another object or a shared message
            // table: h5py does not write them for Keras weights.
            if flags & 0x02 != 0 {
                return unsupported(format!("shared object header message (type {kind})"));
            }
            if kind == 0x0010 {
                let mut m = Cur::new(data);
                let addr = self.offset(&mut m)?;
                let len = self.length(&mut m)?;
                pending.push((addr, len));
                continue;
            }
            if kind != 0x0000 {
                out.push(Msg { kind, body: data });
            }
        }
        Ok(())
    }

    fn object(&mut self, addr: u64) -> R<Object> {
        let msgs = self.messages(addr)?;
        // Allow-list of message types. Everything h5py writes for groups and
        // datasets of Keras weights is here; anything else is refused.
        for m in &msgs {
            match m.kind {
                0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x0005 | 0x0006 | 0x0008 | 0x000A | 0x000C
                | 0x000E | 0x0011 | 0x0012 | 0x0015 | 0x0016 => {}
                // External Data Files: the dataset's bytes live in other
                // files on disk, read at load time (CVE-2026-1669).
                0x0007 => {
                    return err(
                        codes::H5_EXTERNAL_STORAGE,
                        "dataset stores its data in external files",
                    );
                }
                0x000B => {
                    return unsupported("filter pipeline (compression) is not supported");
                }
                k => return unsupported(format!("object header message type {k:#06x}")),
            }
        }
        let has = |k: u16| msgs.iter().any(|m| m.kind == k);
        let is_group = has(0x0011) || has(0x0002) || has(0x0006);
        let is_dataset = has(0x0008);
        match (is_group, is_dataset) {
            (true, false) => self.group(&msgs),
            (false, true) => self.dataset(&msgs),
            (true, true) => unsupported("object is both a group and a dataset"),
            (false, false) => unsupported("object is neither a group nor a dataset"),
        }
    }

    fn group(&mut self, msgs: &[Msg<'a>]) -> R<Object> {
        let mut children = Vec::new();
        let mut name_attr = None;
        for m in msgs {
            match m.kind {
                0x0011 => {
                    let mut c = Cur::new(m.body);
                    let btree = self.offset(&mut c)?;
                    let heap = self.offset(&mut c)?;
                    self.symbol_table(btree, heap, &mut children)?;
                }
                0x0002 => {
                    let mut c = Cur::new(m.body);
                    if c.u8()? != 0 {
                        return unsupported("link info message version");
                    }
                    let flags = c.u8()?;
                    if flags & 0x01 != 0 {
                        c.skip(8)?;
                    }
                    let heap = self.offset(&mut c)?;
                    // Dense link storage (fractal heap + v2 B-tree): only
                    // written for groups with many links; refused rather
                    // than parsed.
                    if heap != UNDEF {
                        return unsupported("dense link storage (fractal heap)");
                    }
                }
                0x0006 => children.push(self.link(m.body)?),
                0x000A => {}
                0x000C => {
                    let (name, value) = self.attribute(m.body)?;
                    // Allow-list: Keras writes exactly one attribute, the
                    // layer's `name`, on each `vars` group.
                    if name != "name" || name_attr.is_some() {
                        return unsupported(format!("group attribute {name:?}"));
                    }
                    name_attr = Some(value);
                }
                0x0015 => self.attribute_info(m.body)?,
                0x000E | 0x0012 | 0x0016 => {}
                k => return unsupported(format!("message type {k:#06x} on a group")),
            }
        }
        let mut names = HashSet::new();
        for (name, _) in &children {
            if !names.insert(name.as_str()) {
                return invalid(format!("duplicate link name {name:?}"));
            }
        }
        Ok(Object::Group {
            children,
            name_attr,
        })
    }

    fn attribute_info(&self, body: &[u8]) -> R<()> {
        let mut c = Cur::new(body);
        if c.u8()? != 0 {
            return unsupported("attribute info message version");
        }
        let flags = c.u8()?;
        if flags & 0x01 != 0 {
            c.skip(2)?;
        }
        if self.offset(&mut c)? != UNDEF {
            return unsupported("dense attribute storage (fractal heap)");
        }
        Ok(())
    }

    /// A link message (v2 groups): hard links only.
    fn link(&self, body: &[u8]) -> R<(String, u64)> {
        let mut c = Cur::new(body);
        if c.u8()? != 1 {
            return unsupported("link message version");
        }
        let flags = c.u8()?;
        let link_type = if flags & 0x08 != 0 { c.u8()? } else { 0 };
        if flags & 0x04 != 0 {
            c.skip(8)?; // creation order
        }
        if flags & 0x10 != 0 {
            let charset = c.u8()?;
            if charset > 1 {
                return invalid("link name character set");
            }
        }
        let len = c.uint(1 << (flags & 0x03))?;
        let len = usize::try_from(len).or_else(|_| invalid("link name length"))?;
        let name = self.link_name(c.take(len)?)?;
        match link_type {
            0 => Ok((name, self.offset(&mut c)?)),
            // A soft link resolves by path at read time; Keras refuses them
            // too (`safe_get_h5_group`), so nothing benign uses one.
            1 => err(codes::H5_SOFT_LINK, format!("{name:?} is a soft link")),
            // An external link points into another HDF5 file on the loading
            // machine: reading it discloses that file (CVE-2026-1669).
            64 => err(
                codes::H5_EXTERNAL_LINK,
                format!("{name:?} is an external link to another file"),
            ),
            t => unsupported(format!("{name:?} has link type {t}")),
        }
    }

    fn link_name(&self, raw: &[u8]) -> R<String> {
        let Ok(name) = std::str::from_utf8(raw) else {
            return invalid("link name is not UTF-8");
        };
        if name.is_empty()
            || name == "."
            || name.contains('/')
            || name.contains('\0')
            || name.len() > self.limits.max_h5_name_len
        {
            return invalid(format!("invalid link name {name:?}"));
        }
        Ok(name.to_owned())
    }

    /// Walks a v1 group B-tree and its symbol table nodes.
    fn symbol_table(&mut self, btree: u64, heap: u64, out: &mut Vec<(String, u64)>) -> R<()> {
        // Local heap: names of the links.
        let mut h = self.from(heap, "local heap")?;
        h.sig(b"HEAP", "local heap")?;
        if h.u8()? != 0 {
            return unsupported("local heap version");
        }
        h.skip(3)?;
        let data_size = self.length(&mut h)?;
        let _free = self.length(&mut h)?;
        let data_addr = self.offset(&mut h)?;
        let names = self.at(data_addr, data_size, "local heap data")?;
        self.btree_node(btree, None, names, out)
    }

    fn btree_node(
        &mut self,
        addr: u64,
        parent_level: Option<u8>,
        names: &'a [u8],
        out: &mut Vec<(String, u64)>,
    ) -> R<()> {
        self.btree_nodes += 1;
        if self.btree_nodes > self.limits.max_h5_objects || !self.visited_nodes.insert(addr) {
            return err(
                codes::H5_LIMIT_EXCEEDED,
                "too many or repeated B-tree nodes",
            );
        }
        let mut c = self.from(addr, "B-tree node")?;
        c.sig(b"TREE", "B-tree node")?;
        if c.u8()? != 0 {
            return unsupported("B-tree node that is not a group node");
        }
        let level = c.u8()?;
        // Levels strictly decrease towards the leaves, which also rules out
        // cycles between nodes.
        if let Some(p) = parent_level
            && level.checked_add(1) != Some(p)
        {
            return invalid("B-tree levels do not decrease by one");
        }
        let entries = c.u16()?;
        let max_entries = 2 * u32::from(self.internal_k.max(self.leaf_k));
        if u32::from(entries) > max_entries {
            return invalid(format!(
                "B-tree node with {entries} entries (max {max_entries})"
            ));
        }
        let _left = self.offset(&mut c)?;
        let _right = self.offset(&mut c)?;
        let mut children = Vec::with_capacity(usize::from(entries));
        for _ in 0..entries {
            let _key = self.length(&mut c)?;
            children.push(self.offset(&mut c)?);
        }
        for child in children {
            if level > 0 {
                self.btree_node(child, Some(level), names, out)?;
            } else {
                self.symbol_node(child, names, out)?;
            }
        }
        Ok(())
    }

    fn symbol_node(&mut self, addr: u64, names: &'a [u8], out: &mut Vec<(String, u64)>) -> R<()> {
        self.btree_nodes += 1;
        if self.btree_nodes > self.limits.max_h5_objects || !self.visited_nodes.insert(addr) {
            return err(
                codes::H5_LIMIT_EXCEEDED,
                "too many or repeated symbol table nodes",
            );
        }
        let mut c = self.from(addr, "symbol table node")?;
        c.sig(b"SNOD", "symbol table node")?;
        if c.u8()? != 1 {
            return unsupported("symbol table node version");
        }
        c.skip(1)?;
        let count = c.u16()?;
        if u32::from(count) > 2 * u32::from(self.leaf_k) {
            return invalid(format!("symbol table node with {count} entries"));
        }
        for _ in 0..count {
            let name_off = self.offset(&mut c)?;
            let header = self.offset(&mut c)?;
            let cache = c.u32()?;
            c.skip(4 + 16)?; // reserved, scratch pad
            let name = self.heap_name(names, name_off)?;
            match cache {
                0 | 1 => out.push((name, header)),
                2 => return err(codes::H5_SOFT_LINK, format!("{name:?} is a soft link")),
                t => return unsupported(format!("{name:?} has symbol cache type {t}")),
            }
            if out.len() > self.limits.max_h5_objects {
                return err(codes::H5_LIMIT_EXCEEDED, "too many links in one group");
            }
        }
        Ok(())
    }

    fn heap_name(&self, names: &[u8], off: u64) -> R<String> {
        let rest = usize::try_from(off)
            .ok()
            .and_then(|o| names.get(o..))
            .map_or_else(|| invalid("link name offset outside the local heap"), Ok)?;
        let limit = rest.len().min(self.limits.max_h5_name_len + 1);
        let raw = rest.get(..limit).unwrap_or_default();
        let Some(end) = raw.iter().position(|&b| b == 0) else {
            return invalid("link name is not terminated within the limit");
        };
        self.link_name(raw.get(..end).unwrap_or_default())
    }

    /// Parses an attribute message; returns its name and string value.
    fn attribute(&mut self, body: &[u8]) -> R<(String, String)> {
        let mut c = Cur::new(body);
        let version = c.u8()?;
        if !(1..=3).contains(&version) {
            return unsupported(format!("attribute message version {version}"));
        }
        let flags = c.u8()?;
        if flags != 0 {
            return unsupported("shared attribute datatype or dataspace");
        }
        let name_len = usize::from(c.u16()?);
        let type_len = usize::from(c.u16()?);
        let space_len = usize::from(c.u16()?);
        if version == 3 {
            let _charset = c.u8()?;
        }
        let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
        let raw_name = c.take(pad(name_len))?;
        let name_bytes = raw_name.get(..name_len).unwrap_or_default();
        let name_bytes = name_bytes.strip_suffix(b"\0").unwrap_or(name_bytes);
        let name = std::str::from_utf8(name_bytes)
            .map_or_else(|_| invalid("attribute name is not UTF-8"), Ok)?
            .to_owned();
        let dtype = c.take(pad(type_len))?;
        let space = c.take(pad(space_len))?;
        let shape = self.dataspace(space)?;
        if !shape.is_empty() {
            return unsupported(format!("attribute {name:?} is not a scalar"));
        }
        let data = c.buf.get(c.pos..).unwrap_or_default();
        let value = self.string_value(dtype, data)?;
        Ok((name, value))
    }

    /// Reads a scalar string value: fixed-length or variable-length (whose
    /// bytes live in a global heap collection).
    fn string_value(&mut self, dtype: &[u8], data: &[u8]) -> R<String> {
        let mut t = Cur::new(dtype);
        let class_version = t.u8()?;
        let bits0 = t.u8()?;
        t.skip(2)?;
        let size = t.u32()?;
        let bytes = match class_version & 0x0f {
            // Fixed-length string.
            3 => {
                let raw = data
                    .get(..size as usize)
                    .map_or_else(|| invalid("attribute value truncated"), Ok)?;
                raw.split(|&b| b == 0).next().unwrap_or_default()
            }
            // Variable-length string: only `type == string` (bits 0-3).
            9 if bits0 & 0x0f == 1 => {
                let mut d = Cur::new(data);
                let len = d.u32()?;
                let collection = self.offset(&mut d)?;
                let index = d.u32()?;
                self.global_heap_object(collection, index, u64::from(len))?
            }
            k => return unsupported(format!("attribute datatype class {k}")),
        };
        if bytes.len() > self.limits.max_h5_name_len {
            return err(codes::H5_LIMIT_EXCEEDED, "attribute string too long");
        }
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .or_else(|_| invalid("attribute string is not UTF-8"))
    }

    /// One object of a global heap collection. Each collection is indexed
    /// once; the bytes of all collections indexed may not add up to more
    /// than the file, so overlapping "collections" cannot make the walk
    /// quadratic.
    fn global_heap_object(&mut self, addr: u64, index: u32, len: u64) -> R<&'a [u8]> {
        if !self.collections.contains_key(&addr) {
            let objects = self.index_collection(addr)?;
            self.collections.insert(addr, objects);
        }
        let found = self
            .collections
            .get(&addr)
            .and_then(|objects| objects.get(&index))
            .copied();
        let Some((start, size)) = found else {
            return invalid(format!("global heap object {index} not found"));
        };
        if size != len {
            return invalid("global heap object length mismatch");
        }
        self.at(start, size, "global heap object")
    }

    fn index_collection(&mut self, addr: u64) -> R<HashMap<u32, (u64, u64)>> {
        let mut h = self.from(addr, "global heap")?;
        h.sig(b"GCOL", "global heap collection")?;
        if h.u8()? != 1 {
            return unsupported("global heap version");
        }
        h.skip(3)?;
        let size = self.length(&mut h)?;
        let collection = self.at(addr, size, "global heap collection")?;
        self.collection_bytes = self.collection_bytes.saturating_add(size);
        if self.collection_bytes > self.file.len() as u64 {
            return err(codes::H5_LIMIT_EXCEEDED, "global heap collections overlap");
        }
        let mut objects = HashMap::new();
        let mut c = Cur::new(collection);
        c.skip(8 + self.sl)?;
        // Objects follow one another; each takes at least 16 bytes.
        while c.remaining() >= 8 + self.sl {
            let idx = c.u16()?;
            let _refs = c.u16()?;
            c.skip(4)?;
            let osize = self.length(&mut c)?;
            if idx == 0 {
                break; // free space: end of the objects
            }
            let start = addr + c.pos as u64;
            let padded = osize
                .checked_add(7)
                .map(|n| n / 8 * 8)
                .and_then(|n| usize::try_from(n).ok())
                .map_or_else(|| invalid("global heap object size"), Ok)?;
            c.skip(padded)?;
            objects.insert(u32::from(idx), (start, osize));
        }
        Ok(objects)
    }

    fn dataspace(&self, body: &[u8]) -> R<Vec<u64>> {
        let mut c = Cur::new(body);
        let version = c.u8()?;
        let rank = c.u8()?;
        let flags = c.u8()?;
        match version {
            1 => {
                c.skip(5)?;
                if flags & 0x02 != 0 {
                    return unsupported("dataspace permutation index");
                }
            }
            2 => {
                let kind = c.u8()?;
                match kind {
                    0 | 1 => {}
                    2 => return unsupported("null dataspace"),
                    k => return invalid(format!("dataspace type {k}")),
                }
            }
            v => return unsupported(format!("dataspace version {v}")),
        }
        if usize::from(rank) > self.limits.max_rank {
            return err(
                codes::H5_SHAPE_EXCEEDS_SIZE,
                format!("rank {rank} is over the limit of {}", self.limits.max_rank),
            );
        }
        let mut dims = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            dims.push(self.length(&mut c)?);
        }
        Ok(dims)
    }

    fn datatype(body: &[u8]) -> R<H5Dtype> {
        let mut c = Cur::new(body);
        let class_version = c.u8()?;
        let bits = [c.u8()?, c.u8()?, c.u8()?];
        let size = c.u32()?;
        let class = class_version & 0x0f;
        let [b0, _, _] = bits;
        // Allow-list: little-endian (bit 0 clear; bit 6 is the VAX order
        // for floats) IEEE floats and two's complement integers that fill
        // their bytes. Anything else (strings, compounds, references,
        // enums, vlen, opaque/bfloat16) is not a Keras weight here.
        match class {
            0 => {
                let offset = c.u16()?;
                let precision = c.u16()?;
                if b0 & 0x01 != 0 || offset != 0 || u64::from(precision) != u64::from(size) * 8 {
                    return err(
                        codes::H5_UNSUPPORTED_DTYPE,
                        "integer type that is big-endian or padded",
                    );
                }
                let bitsz = match size {
                    1 => 8,
                    2 => 16,
                    4 => 32,
                    8 => 64,
                    s => return err(codes::H5_UNSUPPORTED_DTYPE, format!("{s}-byte integer")),
                };
                Ok(if b0 & 0x08 != 0 {
                    H5Dtype::Int(bitsz)
                } else {
                    H5Dtype::Uint(bitsz)
                })
            }
            1 => {
                let offset = c.u16()?;
                let precision = c.u16()?;
                let exp_loc = c.u8()?;
                let exp_size = c.u8()?;
                let mant_loc = c.u8()?;
                let mant_size = c.u8()?;
                let bias = c.u32()?;
                let ieee = match size {
                    2 => (16, 10, 5, 10, 15, 16),
                    4 => (32, 23, 8, 23, 127, 32),
                    8 => (64, 52, 11, 52, 1023, 64),
                    s => return err(codes::H5_UNSUPPORTED_DTYPE, format!("{s}-byte float")),
                };
                let got = (
                    u32::from(precision),
                    exp_loc,
                    exp_size,
                    mant_size,
                    bias,
                    ieee.5,
                );
                if b0 & 0x41 != 0
                    || offset != 0
                    || mant_loc != 0
                    || got != (ieee.0, ieee.1, ieee.2, ieee.3, ieee.4, ieee.5)
                {
                    return err(
                        codes::H5_UNSUPPORTED_DTYPE,
                        "float type that is not little-endian IEEE 754",
                    );
                }
                Ok(H5Dtype::Float(ieee.5))
            }
            k => err(
                codes::H5_UNSUPPORTED_DTYPE,
                format!("datatype class {k} is not a number"),
            ),
        }
    }

    fn dataset(&mut self, msgs: &[Msg<'a>]) -> R<Object> {
        let mut shape = None;
        let mut dtype = None;
        let mut layout = None;
        for m in msgs {
            match m.kind {
                0x0001 => shape = Some(self.dataspace(m.body)?),
                0x0003 => dtype = Some(Self::datatype(m.body)?),
                0x0008 => layout = Some(m.body),
                // Fill value (old and new), modification times, reference
                // counts: not used for the decision.
                0x0004 | 0x0005 | 0x000E | 0x0012 | 0x0016 => {}
                0x000C => {
                    let (name, _) = self.attribute(m.body)?;
                    return unsupported(format!("dataset attribute {name:?}"));
                }
                0x0015 => self.attribute_info(m.body)?,
                k => return unsupported(format!("message type {k:#06x} on a dataset")),
            }
        }
        let (Some(shape), Some(dtype), Some(layout)) = (shape, dtype, layout) else {
            return invalid("dataset without dataspace, datatype or layout");
        };
        // Declared size, computed without overflow: a shape bomb declares
        // a huge shape while storing next to nothing (CVE-2026-0897).
        let elements = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .map_or_else(
                || {
                    err(
                        codes::H5_SHAPE_EXCEEDS_SIZE,
                        format!("shape {shape:?} overflows"),
                    )
                },
                Ok,
            )?;
        let byte_size = elements.checked_mul(dtype.size()).map_or_else(
            || err(codes::H5_SHAPE_EXCEEDS_SIZE, "byte size overflows"),
            Ok,
        )?;
        if byte_size > self.limits.max_dataset_bytes {
            return err(
                codes::H5_SHAPE_EXCEEDS_SIZE,
                format!(
                    "shape {shape:?} declares {byte_size} bytes, over the limit of {}",
                    self.limits.max_dataset_bytes
                ),
            );
        }
        let mut c = Cur::new(layout);
        let version = c.u8()?;
        if !(3..=4).contains(&version) {
            return unsupported(format!("data layout version {version}"));
        }
        let storage = match c.u8()? {
            0 => {
                let size = u64::from(c.u16()?);
                c.skip(size as usize)?;
                if size != byte_size {
                    return err(
                        codes::H5_SHAPE_EXCEEDS_SIZE,
                        format!("compact data holds {size} bytes, shape declares {byte_size}"),
                    );
                }
                None
            }
            1 => {
                let addr = self.offset(&mut c)?;
                let size = self.length(&mut c)?;
                if addr == UNDEF {
                    // Storage never allocated: reading it yields the fill
                    // value for the whole declared shape.
                    if byte_size > 0 {
                        return err(
                            codes::H5_SHAPE_EXCEEDS_SIZE,
                            format!("declares {byte_size} bytes but stores none"),
                        );
                    }
                    None
                } else {
                    if size != byte_size {
                        return err(
                            codes::H5_SHAPE_EXCEEDS_SIZE,
                            format!("stores {size} bytes, shape declares {byte_size}"),
                        );
                    }
                    let end = addr.checked_add(size);
                    if end.is_none_or(|e| e > self.file.len() as u64) {
                        return err(
                            codes::H5_SHAPE_EXCEEDS_SIZE,
                            format!(
                                "data at {addr}+{size} extends past the {}-byte member",
                                self.file.len()
                            ),
                        );
                    }
                    Some((addr, size))
                }
            }
            2 => return unsupported("chunked dataset layout"),
            // Virtual datasets map regions of other HDF5 files (CVE-2026-1669).
            3 => {
                return err(
                    codes::H5_VIRTUAL_DATASET,
                    "virtual dataset maps data from other files",
                );
            }
            k => return invalid(format!("data layout class {k}")),
        };
        Ok(Object::Dataset {
            shape,
            dtype,
            byte_size,
            storage,
        })
    }

    /// Refuses datasets whose stored bytes overlap: one region counted as
    /// several weights, the HDF5 cousin of overlapping ZIP entries.
    fn check_storage_overlap(&mut self) -> R<()> {
        self.storage.sort_unstable();
        let mut prev_end = 0u64;
        let mut prev_path = String::new();
        for (start, len, path) in &self.storage {
            if *len > 0 && *start < prev_end {
                self.current.clone_from(path);
                return err(
                    codes::H5_OVERLAPPING_DATA,
                    format!("storage overlaps that of {prev_path}"),
                );
            }
            if *len > 0 {
                prev_end = start.saturating_add(*len);
                prev_path.clone_from(path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup3_known_values() {
        // Reference values of hashlittle(key, len, 0) from lookup3.c's
        // self-test (driver5): "" -> 0xdeadbeef, "Four score and seven
        // years ago" -> 0x17770551.
        assert_eq!(lookup3(b""), 0xdead_beef);
        assert_eq!(lookup3(b"Four score and seven years ago"), 0x1777_0551);
    }

    #[test]
    fn an_integer_datatype_of_absurd_size_is_refused_not_an_overflow() {
        // Class 0 (fixed-point), version 1, little-endian signed; size
        // 0x2000_0000 bytes, whose bit count overflows a u32; offset 0,
        // precision 64. Found by `mutated_real_weights_never_panic`.
        let mut body = vec![0x10, 0x08, 0, 0];
        body.extend_from_slice(&0x2000_0000_u32.to_le_bytes());
        body.extend_from_slice(&0_u16.to_le_bytes());
        body.extend_from_slice(&64_u16.to_le_bytes());
        let Err(e) = Walker::datatype(&body) else {
            panic!("a 512 MiB integer type was accepted");
        };
        assert_eq!(e.code, codes::H5_UNSUPPORTED_DTYPE, "{}", e.message);
    }
}
