//! A test-only ZIP writer that can forge every header field.
//!
//! Each member is written as a local header, payload and optional data
//! descriptor, then the central directory and end record. Every field of
//! either header can be overridden so the hostile archives in the tests are
//! built from raw bytes, field by field.

/// Overrides for one member's local header.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalOverride {
    pub name: Option<Vec<u8>>,
    pub flags: Option<u16>,
    pub method: Option<u16>,
    pub crc: Option<u32>,
    pub size: Option<u32>,
    pub csize: Option<u32>,
    pub extra: Vec<u8>,
}

/// A data descriptor after the payload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Descriptor {
    pub signed: bool,
    pub crc: Option<u32>,
    pub csize: Option<u32>,
    pub size: Option<u32>,
}

/// One member as the forge will write it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub method: u16,
    /// Compressed bytes; computed from `data` and `method` when `None`.
    pub payload: Option<Vec<u8>>,
    pub flags: u16,
    pub made_by: u16,
    pub external_attr: u32,
    pub crc: Option<u32>,
    pub size: Option<u64>,
    pub csize: Option<u64>,
    pub local: LocalOverride,
    pub central_extra: Vec<u8>,
    pub descriptor: Option<Descriptor>,
    /// Point the central header at another member's local header.
    pub local_of: Option<usize>,
    /// Write no local header or payload for this member.
    pub omit_local: bool,
    /// Bytes written after this member's payload (and descriptor).
    pub after: Vec<u8>,
}

impl Member {
    fn new(name: &[u8], data: &[u8], method: u16) -> Self {
        Member {
            name: name.to_vec(),
            data: data.to_vec(),
            method,
            payload: None,
            flags: 0,
            made_by: (3 << 8) | 20,
            external_attr: if name.ends_with(b"/") {
                (0o40755 << 16) | 0x10
            } else {
                0o100644 << 16
            },
            crc: None,
            size: None,
            csize: None,
            local: LocalOverride::default(),
            central_extra: Vec::new(),
            descriptor: None,
            local_of: None,
            omit_local: false,
            after: Vec::new(),
        }
    }

    pub fn payload_bytes(&self) -> Vec<u8> {
        match &self.payload {
            Some(p) => p.clone(),
            None if self.method == 8 => deflate(&self.data),
            None => self.data.clone(),
        }
    }
}

/// Raw DEFLATE of `data`.
pub(crate) fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(data, 6)
}

pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// An archive under construction.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestZip {
    pub members: Vec<Member>,
    pub prefix: Vec<u8>,
    pub suffix: Vec<u8>,
    pub comment: Vec<u8>,
    /// Bytes between the central directory and the end record.
    pub before_eocd: Vec<u8>,
    /// Bytes appended inside the central directory (counted in its size).
    pub cd_tail: Vec<u8>,
    pub entries_override: Option<u16>,
    pub disk_override: Option<u16>,
    /// Write ZIP64 end records and ZIP64 extra fields for every member.
    pub zip64: bool,
}

impl TestZip {
    pub fn new() -> Self {
        TestZip::default()
    }

    /// A stored file.
    pub fn stored(mut self, name: &str, data: &[u8]) -> Self {
        self.members.push(Member::new(name.as_bytes(), data, 0));
        self
    }

    /// A deflated file.
    pub fn deflated(mut self, name: &str, data: &[u8]) -> Self {
        self.members.push(Member::new(name.as_bytes(), data, 8));
        self
    }

    /// A member with a raw (possibly non-UTF-8) name.
    pub fn raw_name(mut self, name: &[u8], data: &[u8]) -> Self {
        self.members.push(Member::new(name, data, 0));
        self
    }

    /// A directory entry.
    pub fn dir(mut self, name: &str) -> Self {
        self.members.push(Member::new(name.as_bytes(), b"", 0));
        self
    }

    /// Edits the last member.
    pub fn with(mut self, f: impl FnOnce(&mut Member)) -> Self {
        f(self.members.last_mut().expect("a member to edit"));
        self
    }

    /// Edits the whole archive.
    pub fn tweak(mut self, f: impl FnOnce(&mut TestZip)) -> Self {
        f(&mut self);
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        let mut offsets = Vec::new();
        for m in &self.members {
            offsets.push(out.len() as u64);
            if m.omit_local {
                continue;
            }
            let payload = m.payload_bytes();
            let crc = crc32(&m.data);
            let size = m.data.len() as u32;
            let csize = payload.len() as u32;
            let name = m.local.name.clone().unwrap_or_else(|| m.name.clone());
            let dd = m.descriptor.is_some();
            let mut extra = m.local.extra.clone();
            let (mut l_size, mut l_csize) = (
                m.local.size.unwrap_or(if dd { 0 } else { size }),
                m.local.csize.unwrap_or(if dd { 0 } else { csize }),
            );
            if self.zip64 {
                extra.extend_from_slice(&1u16.to_le_bytes());
                extra.extend_from_slice(&16u16.to_le_bytes());
                extra.extend_from_slice(&u64::from(l_size).to_le_bytes());
                extra.extend_from_slice(&u64::from(l_csize).to_le_bytes());
                l_size = u32::MAX;
                l_csize = u32::MAX;
            }
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&(if self.zip64 { 45u16 } else { 20u16 }).to_le_bytes());
            out.extend_from_slice(&m.local.flags.unwrap_or(m.flags).to_le_bytes());
            out.extend_from_slice(&m.local.method.unwrap_or(m.method).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&0x21u16.to_le_bytes());
            out.extend_from_slice(
                &m.local
                    .crc
                    .unwrap_or(if dd { 0 } else { crc })
                    .to_le_bytes(),
            );
            out.extend_from_slice(&l_csize.to_le_bytes());
            out.extend_from_slice(&l_size.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            out.extend_from_slice(&name);
            out.extend_from_slice(&extra);
            out.extend_from_slice(&payload);
            if let Some(d) = &m.descriptor {
                if d.signed {
                    out.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
                }
                out.extend_from_slice(&d.crc.unwrap_or(crc).to_le_bytes());
                if self.zip64 {
                    out.extend_from_slice(&u64::from(d.csize.unwrap_or(csize)).to_le_bytes());
                    out.extend_from_slice(&u64::from(d.size.unwrap_or(size)).to_le_bytes());
                } else {
                    out.extend_from_slice(&d.csize.unwrap_or(csize).to_le_bytes());
                    out.extend_from_slice(&d.size.unwrap_or(size).to_le_bytes());
                }
            }
            out.extend_from_slice(&m.after);
        }
        let cd_offset = out.len() as u64;
        for (i, m) in self.members.iter().enumerate() {
            let payload = m.payload_bytes();
            let crc = m.crc.unwrap_or_else(|| crc32(&m.data));
            let size = m.size.unwrap_or(m.data.len() as u64);
            let csize = m.csize.unwrap_or(payload.len() as u64);
            let offset = offsets[m.local_of.unwrap_or(i)];
            let mut extra = m.central_extra.clone();
            let (c_size, c_csize, c_offset) = if self.zip64 {
                extra.extend_from_slice(&1u16.to_le_bytes());
                extra.extend_from_slice(&24u16.to_le_bytes());
                extra.extend_from_slice(&size.to_le_bytes());
                extra.extend_from_slice(&csize.to_le_bytes());
                extra.extend_from_slice(&offset.to_le_bytes());
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (size as u32, csize as u32, offset as u32)
            };
            out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            out.extend_from_slice(&m.made_by.to_le_bytes());
            out.extend_from_slice(&(if self.zip64 { 45u16 } else { 20u16 }).to_le_bytes());
            out.extend_from_slice(&m.flags.to_le_bytes());
            out.extend_from_slice(&m.method.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&0x21u16.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&c_csize.to_le_bytes());
            out.extend_from_slice(&c_size.to_le_bytes());
            out.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&m.external_attr.to_le_bytes());
            out.extend_from_slice(&c_offset.to_le_bytes());
            out.extend_from_slice(&m.name);
            out.extend_from_slice(&extra);
        }
        out.extend_from_slice(&self.cd_tail);
        let cd_size = out.len() as u64 - cd_offset;
        out.extend_from_slice(&self.before_eocd);
        let n = self.members.len() as u64;
        if self.zip64 {
            let z64_offset = out.len() as u64;
            out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&45u16.to_le_bytes());
            out.extend_from_slice(&45u16.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&cd_size.to_le_bytes());
            out.extend_from_slice(&cd_offset.to_le_bytes());
            out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&z64_offset.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        let count = self
            .entries_override
            .unwrap_or(if self.zip64 { u16::MAX } else { n as u16 });
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&self.disk_override.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        if self.zip64 {
            out.extend_from_slice(&u32::MAX.to_le_bytes());
            out.extend_from_slice(&u32::MAX.to_le_bytes());
        } else {
            out.extend_from_slice(&(cd_size as u32).to_le_bytes());
            out.extend_from_slice(&(cd_offset as u32).to_le_bytes());
        }
        out.extend_from_slice(&(self.comment.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.comment);
        out.extend_from_slice(&self.suffix);
        out
    }
}

/// Little-endian local file header bytes for the Fifield construction.
pub(crate) fn local_header(name: &[u8], crc: u32, csize: u32, size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0x21u16.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&csize.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out
}

/// Central directory header bytes for the Fifield construction.
pub(crate) fn central_header(name: &[u8], crc: u32, csize: u32, size: u32, offset: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0x21u16.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&csize.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(name);
    out
}

/// An end record for `n` entries.
pub(crate) fn end_record(n: u16, cd_size: u32, cd_offset: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}
