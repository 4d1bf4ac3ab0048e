//! A bundle as one file: a ZIP archive of the bundle directory, for
//! downloading (the service's `GET /v1/jobs/{id}/bundle`) and for
//! `veritrain verify BUNDLE.zip`.
//!
//! Writing ([`pack`]): every file of the bundle, in path order, stored (not
//! compressed: models and datasets rarely compress, and a stored archive is
//! written at disk speed), with a fixed timestamp and mode so the same
//! bundle always packs to the same bytes; ZIP64 where a file needs it.
//!
//! Reading ([`unpack`]) treats the archive as hostile: it goes through the
//! intake's own ZIP reader (central directory against local headers,
//! overlapping entries, unsafe or duplicate names, sizes and ratios, all
//! under limits) and its extractor (a fresh directory, `O_NOFOLLOW`,
//! counted writes). Nothing in the archive is trusted until the verifier
//! has checked the extracted bundle like any other.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use veritrain_attest::hash::{HashOptions, hash_path};
use veritrain_intake::zip::extract::extract_all;
use veritrain_intake::zip::{ZipArchive, ZipLimits};
use zip::write::SimpleFileOptions;

use crate::error::{Error, Result};

/// Limits for reading a bundle archive: large entries (datasets) are
/// allowed, compression bombs are not.
pub fn bundle_zip_limits() -> ZipLimits {
    ZipLimits {
        max_archive_bytes: 256 << 30,
        max_entries: 64,
        max_entry_bytes: 128 << 30,
        max_total_bytes: 256 << 30,
        // The model is a .keras archive and an image dataset a ZIP; the
        // verifier re-hashes and re-derives them on their own.
        allow_nested_archives: true,
        ..ZipLimits::default()
    }
}

/// Write the bundle directory `dir` as a ZIP archive to `out` (which must
/// not exist).
///
/// # Errors
/// I/O errors; [`veritrain_attest::Error`] for symlinks or special files
/// in the bundle (they are refused, as when hashing).
pub fn pack(dir: &Path, out: &Path) -> Result<()> {
    // The walk refuses symlinks and special files and orders the paths.
    let listing = hash_path(
        dir,
        &HashOptions {
            threads: 1,
            ..HashOptions::files()
        },
    )?;
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| Error::io(out, e))?;
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o644)
        .large_file(true);
    let zip_err = |e: zip::result::ZipError| Error::io(out, std::io::Error::other(e.to_string()));
    for entry in listing.entries() {
        let src = dir.join(entry.path());
        zip.start_file(entry.path(), options).map_err(zip_err)?;
        let mut reader =
            BufReader::with_capacity(1 << 20, File::open(&src).map_err(|e| Error::io(&src, e))?);
        std::io::copy(&mut reader, &mut zip).map_err(|e| Error::io(&src, e))?;
    }
    let mut writer = zip.finish().map_err(zip_err)?;
    writer.flush().map_err(|e| Error::io(out, e))?;
    Ok(())
}

/// Extract the bundle archive at `archive` into `dest` (created here; it
/// must not exist).
///
/// # Errors
/// The intake ZIP reader's rejections (`zip.*` codes) and I/O errors.
pub fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let mut zip = ZipArchive::open_path(archive, &bundle_zip_limits())?;
    extract_all(&mut zip, dest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pack_then_unpack_gives_the_same_files_and_packing_is_deterministic() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("b");
        std::fs::create_dir_all(bundle.join("inputs")).unwrap();
        std::fs::write(bundle.join("inputs/data.csv"), b"a,b\n1,2\n").unwrap();
        std::fs::write(bundle.join("aibom.cdx.json"), b"{}").unwrap();
        pack(&bundle, &tmp.path().join("one.zip")).unwrap();
        pack(&bundle, &tmp.path().join("two.zip")).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("one.zip")).unwrap(),
            std::fs::read(tmp.path().join("two.zip")).unwrap()
        );
        unpack(&tmp.path().join("one.zip"), &tmp.path().join("x")).unwrap();
        let a = hash_path(&bundle, &HashOptions::files()).unwrap();
        let b = hash_path(&tmp.path().join("x"), &HashOptions::files()).unwrap();
        assert_eq!(a, b);
        // An existing output is never overwritten.
        assert!(pack(&bundle, &tmp.path().join("one.zip")).is_err());
    }

    #[test]
    fn a_symlink_in_the_bundle_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("b");
        std::fs::create_dir(&bundle).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", bundle.join("leak")).unwrap();
        let e = pack(&bundle, &tmp.path().join("o.zip")).unwrap_err();
        assert_eq!(e.code(), "hash.symlink");
    }
}
