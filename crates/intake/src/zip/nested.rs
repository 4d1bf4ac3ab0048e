//! Nested-archive detection, by name and by content.
//!
//! An archive inside an archive is refused outright: its limits would not be
//! the outer limits (the recursive zip bomb, `42.zip`), and whatever reads it
//! later would run a second, unchecked extraction. The name check runs when
//! the archive is opened; the content check runs on the first bytes of every
//! member as it is read, so a renamed archive is caught as well.

/// Extensions of archive and compressed-stream formats (lower case).
const ARCHIVE_EXTENSIONS: &[&str] = &[
    "7z", "a", "apk", "ar", "arj", "br", "bz2", "cab", "cpio", "deb", "dmg", "docx", "ear", "egg",
    "gz", "iso", "jar", "keras", "lha", "lz", "lz4", "lzh", "lzma", "npz", "nupkg", "odp", "ods",
    "odt", "pptx", "rar", "rpm", "shar", "sz", "tar", "taz", "tbz", "tbz2", "tgz", "tlz", "txz",
    "tzst", "war", "whl", "xar", "xlsx", "xz", "z", "zip", "zipx", "zst", "zstd",
];

/// How many leading bytes [`archive_magic`] needs (the tar magic sits at 257).
pub(crate) const MAGIC_PREFIX_LEN: usize = 262;

/// Leading-byte signatures of archive and compressed-stream formats.
const MAGICS: &[(&[u8], &str)] = &[
    (b"PK\x03\x04", "ZIP"),
    (b"PK\x05\x06", "ZIP (empty)"),
    (b"PK\x07\x08", "ZIP (spanned)"),
    (b"PK00", "ZIP (spanned)"),
    (b"\x1f\x8b", "gzip"),
    (b"\x1f\x9d", "compress (.Z)"),
    (b"\x1f\xa0", "LZH compress"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "LZMA"),
    (b"LZIP", "lzip"),
    (b"\x28\xb5\x2f\xfd", "Zstandard"),
    (b"\x04\x22\x4d\x18", "LZ4"),
    (b"\x02\x21\x4c\x18", "LZ4 (legacy)"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"Rar!\x1a\x07", "RAR"),
    (b"MSCF", "CAB"),
    (b"!<arch>\n", "ar"),
    (b"070701", "cpio"),
    (b"070702", "cpio"),
    (b"070707", "cpio"),
    (b"\xc7\x71", "cpio (binary)"),
    (b"\x71\xc7", "cpio (binary)"),
    (b"xar!", "xar"),
    (b"\x60\xea", "ARJ"),
    (b"\xed\xab\xee\xdb", "RPM"),
    // zlib headers whose second byte is not printable ASCII (so text that
    // happens to start with `x` is not flagged).
    (b"\x78\x01", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
];

/// The archive format whose extension `name` carries, if any.
pub(crate) fn archive_extension(name: &str) -> Option<&'static str> {
    let file = name.rsplit('/').next().unwrap_or(name);
    let (_, ext) = file.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    ARCHIVE_EXTENSIONS.iter().copied().find(|e| *e == ext)
}

/// The archive format whose signature `head` (the first bytes of a member,
/// up to [`MAGIC_PREFIX_LEN`]) starts with, if any.
pub(crate) fn archive_magic(head: &[u8]) -> Option<&'static str> {
    if let Some((_, what)) = MAGICS.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(what);
    }
    // POSIX and GNU tar: "ustar" at offset 257.
    if head.get(257..262) == Some(b"ustar".as_slice()) {
        return Some("tar");
    }
    // Zstandard skippable frames: 0x184D2A50..=0x184D2A5F, little-endian.
    if let Some([lo, 0x2a, 0x4d, 0x18]) = head.get(..4)
        && lo & 0xf0 == 0x50
    {
        return Some("Zstandard");
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(archive_extension("x/inner.ZIP"), Some("zip"));
        assert_eq!(archive_extension("a.tar.gz"), Some("gz"));
        assert_eq!(archive_extension("a.png"), None);
        assert_eq!(archive_extension("zip"), None);
        assert_eq!(archive_extension("dir.zip/a.png"), None);
    }

    #[test]
    fn magics() {
        assert_eq!(archive_magic(b"PK\x03\x04rest"), Some("ZIP"));
        assert_eq!(archive_magic(b"\x1f\x8b\x08"), Some("gzip"));
        assert_eq!(archive_magic(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(archive_magic(b"\xff\xd8\xff"), None);
        assert_eq!(archive_magic(b"{\"a\": 1}"), None);
        assert_eq!(archive_magic(b"x^2,label\n"), None);
        let mut tar = vec![0u8; 262];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(archive_magic(&tar), Some("tar"));
        assert_eq!(archive_magic(b"\x5a\x2a\x4d\x18"), Some("Zstandard"));
        assert_eq!(archive_magic(b""), None);
    }
}
