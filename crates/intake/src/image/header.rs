//! PNG and JPEG header decoding, bounded.
//!
//! Only the header is decoded: the PNG `IHDR` chunk, or the JPEG frame
//! header (`SOFn`) after skipping the segments before it. That is enough to
//! learn the dimensions and refuse a decompression bomb (a small file that
//! declares a huge canvas) before any decoder allocates for it. The byte
//! budget bounds how far a JPEG's leading segments may push the frame
//! header.

use std::io::{self, Read};

use serde::Serialize;

/// An image container format on the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG (baseline, extended sequential or progressive Huffman).
    Jpeg,
}

impl ImageFormat {
    /// Lower-case name, as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
        }
    }
}

/// What an image header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Container format, from the magic bytes.
    pub format: ImageFormat,
    /// Width in pixels (non-zero).
    pub width: u32,
    /// Height in pixels (non-zero).
    pub height: u32,
    /// Colour channels (PNG: from the colour type; JPEG: components).
    pub channels: u8,
    /// Bits per sample.
    pub bit_depth: u8,
}

/// Why a header was refused.
#[derive(Debug)]
pub enum HeaderError {
    /// The magic bytes are neither PNG nor JPEG.
    UnknownFormat,
    /// The header is malformed or truncated.
    Malformed(String),
    /// A valid but unsupported variant (12-bit JPEG, arithmetic coding...).
    Unsupported(String),
    /// The underlying reader failed (for an archive member, this carries
    /// the archive's own finding).
    Io(io::Error),
}

const PNG_MAGIC: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// A reader that counts what it hands out and stops at a budget.
struct Budget<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Budget<R> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), HeaderError> {
        if (buf.len() as u64) > self.left {
            return Err(HeaderError::Malformed(format!(
                "the image header is not within the first {} bytes",
                self.limit
            )));
        }
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.left -= buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(HeaderError::Malformed(
                "the file ends inside the image header".to_owned(),
            )),
            Err(e) => Err(HeaderError::Io(e)),
        }
    }

    fn u8(&mut self) -> Result<u8, HeaderError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        let [x] = b;
        Ok(x)
    }

    fn u16_be(&mut self) -> Result<u16, HeaderError> {
        let mut b = [0u8; 2];
        self.fill(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }

    fn skip(&mut self, n: u64) -> Result<(), HeaderError> {
        if n > self.left {
            return Err(HeaderError::Malformed(format!(
                "the image header is not within the first {} bytes",
                self.limit
            )));
        }
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                HeaderError::Malformed("the file ends inside the image header".to_owned())
            } else {
                HeaderError::Io(e)
            }
        })?;
        if copied != n {
            return Err(HeaderError::Malformed(
                "the file ends inside the image header".to_owned(),
            ));
        }
        self.left -= n;
        Ok(())
    }
}

/// Reads an image header from the start of `reader`, consuming at most
/// `max_bytes`.
pub fn read_header<R: Read>(reader: R, max_bytes: u64) -> Result<ImageHeader, HeaderError> {
    let mut r = Budget {
        inner: reader,
        left: max_bytes,
        limit: max_bytes,
    };
    let mut magic = [0u8; 8];
    r.fill(&mut magic).map_err(|e| match e {
        HeaderError::Malformed(_) => HeaderError::UnknownFormat,
        other => other,
    })?;
    if &magic == PNG_MAGIC {
        return read_png(&mut r);
    }
    if magic.starts_with(&[0xff, 0xd8, 0xff]) {
        let [_, _, rest @ ..] = magic;
        let mut chained = Budget {
            inner: rest.as_slice().chain(&mut r.inner),
            left: r.left.saturating_add(6),
            limit: r.limit,
        };
        return read_jpeg(&mut chained);
    }
    Err(HeaderError::UnknownFormat)
}

/// `IHDR` must be the first chunk: length 13, then width, height, bit
/// depth, colour type, compression, filter, interlace, and a CRC over type
/// and data.
fn read_png<R: Read>(r: &mut Budget<R>) -> Result<ImageHeader, HeaderError> {
    let mut chunk = [0u8; 8 + 13 + 4];
    r.fill(&mut chunk)?;
    let bad = |m: &str| Err(HeaderError::Malformed(format!("PNG: {m}")));
    let [
        l0,
        l1,
        l2,
        l3,
        t0,
        t1,
        t2,
        t3,
        w0,
        w1,
        w2,
        w3,
        h0,
        h1,
        h2,
        h3,
        depth,
        color,
        compression,
        filter,
        interlace,
        c0,
        c1,
        c2,
        c3,
    ] = chunk;
    if u32::from_be_bytes([l0, l1, l2, l3]) != 13 || [t0, t1, t2, t3] != *b"IHDR" {
        return bad("the first chunk is not a 13-byte IHDR");
    }
    let crc = crc32fast::hash(chunk.get(4..21).unwrap_or_default());
    if crc != u32::from_be_bytes([c0, c1, c2, c3]) {
        return bad("IHDR CRC mismatch");
    }
    let width = u32::from_be_bytes([w0, w1, w2, w3]);
    let height = u32::from_be_bytes([h0, h1, h2, h3]);
    // The PNG specification caps both at 2^31 - 1 and forbids zero.
    if width == 0 || height == 0 || width > i32::MAX as u32 || height > i32::MAX as u32 {
        return bad("width and height must be between 1 and 2^31-1");
    }
    let channels = match (color, depth) {
        (0, 1 | 2 | 4 | 8 | 16) => 1,
        (2, 8 | 16) => 3,
        (3, 1 | 2 | 4 | 8) => 3,
        (4, 8 | 16) => 2,
        (6, 8 | 16) => 4,
        _ => return bad("invalid colour type and bit depth combination"),
    };
    if compression != 0 || filter != 0 || interlace > 1 {
        return bad("unknown compression, filter or interlace method");
    }
    Ok(ImageHeader {
        format: ImageFormat::Png,
        width,
        height,
        channels,
        bit_depth: depth,
    })
}

/// Walks JPEG segments after SOI until the frame header.
fn read_jpeg<R: Read>(r: &mut Budget<R>) -> Result<ImageHeader, HeaderError> {
    let bad = |m: &str| Err(HeaderError::Malformed(format!("JPEG: {m}")));
    loop {
        if r.u8()? != 0xff {
            return bad("expected a marker");
        }
        let mut marker = r.u8()?;
        // Fill bytes before a marker are allowed.
        while marker == 0xff {
            marker = r.u8()?;
        }
        match marker {
            // Stand-alone markers without a length.
            0x01 | 0xd0..=0xd7 => continue,
            0xd8 => return bad("a second start-of-image marker"),
            0xd9 => return bad("the image ends before its frame header"),
            0xda => return bad("a scan starts before the frame header"),
            // Allow-list of frame types: baseline, extended sequential and
            // progressive, all Huffman-coded, which every decoder the
            // trainer may use supports.
            0xc0..=0xc2 => {
                let len = r.u16_be()?;
                let precision = r.u8()?;
                let height = r.u16_be()?;
                let width = r.u16_be()?;
                let components = r.u8()?;
                if u32::from(len) != 8 + 3 * u32::from(components) {
                    return bad("frame header length does not match its component count");
                }
                r.skip(3 * u64::from(components))?;
                if precision != 8 {
                    return Err(HeaderError::Unsupported(format!(
                        "JPEG with {precision}-bit samples; only 8-bit is supported"
                    )));
                }
                if height == 0 {
                    return Err(HeaderError::Unsupported(
                        "JPEG whose height is defined later (DNL marker)".to_owned(),
                    ));
                }
                if width == 0 {
                    return bad("width is zero");
                }
                if components != 1 && components != 3 {
                    return Err(HeaderError::Unsupported(format!(
                        "JPEG with {components} components; only greyscale (1) and colour (3) \
                         are supported"
                    )));
                }
                return Ok(ImageHeader {
                    format: ImageFormat::Jpeg,
                    width: u32::from(width),
                    height: u32::from(height),
                    channels: components,
                    bit_depth: precision,
                });
            }
            0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => {
                return Err(HeaderError::Unsupported(format!(
                    "JPEG frame type SOF{} (lossless, hierarchical or arithmetic-coded)",
                    marker - 0xc0
                )));
            }
            // Segments with a length that may come before the frame header:
            // tables, restart interval, DNL/DHP/EXP, application data,
            // comments.
            0xc4 | 0xcc | 0xdb..=0xdf | 0xe0..=0xef | 0xfe => {
                let len = r.u16_be()?;
                if len < 2 {
                    return bad("segment length below 2");
                }
                r.skip(u64::from(len) - 2)?;
            }
            other => return bad(&format!("unexpected marker {other:#04x}")),
        }
    }
}
