//! The dataset's per-file manifest: one entry per file the dataset holds
//! (the CSV or TFRecord file itself; every member of an image ZIP, hashed
//! as it is inflated), with the root digest over them (`docs/hashing.md`).
//!
//! It is kept out of the AIBoM, which names only its root digest and the
//! manifest file's digest, so a BOM stays small for a dataset of 100 000
//! images. It is signed on its own as an in-toto Statement v1 whose subject
//! is the uploaded dataset file, so a verifier can check one image against
//! the manifest without trusting anything but the key set.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use veritrain_attest::dsse::Envelope;
use veritrain_attest::hash::Manifest;
use veritrain_attest::keys::Signer;
use veritrain_attest::statement::{ResourceDescriptor, Statement, sign_statement};
use veritrain_intake::zip::{ZipArchive, ZipLimits};

use crate::bundle::MANIFEST_PREDICATE;
use crate::error::{Error, Result};

/// One file of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Its path within the dataset (`/`-separated).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

/// The manifest statement's predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetManifest {
    /// When it was signed (RFC 3339): the time the key set judges the
    /// signing key at.
    pub created: String,
    /// The dataset's kind: `csv`, `image_zip` or `tfrecord`.
    pub kind: String,
    /// The uploaded file, by its path in the bundle.
    pub upload: String,
    /// The root digest over `files` (manifest order, raw digests).
    pub root_sha256: String,
    /// Number of files.
    pub file_count: u64,
    /// Bytes of all files.
    pub size_bytes: u64,
    /// Every file, in manifest order.
    pub files: Vec<ManifestFile>,
}

impl DatasetManifest {
    /// Hash the dataset at `upload` (`kind` as in [`DatasetManifest::kind`]).
    /// `upload_name` is the uploaded file's bundle path; a single-file
    /// dataset's one entry is named by its file name.
    ///
    /// # Errors
    /// I/O errors, and the ZIP reader's rejections (it enforces `zip_limits`).
    pub fn derive(
        upload: &Path,
        upload_name: &str,
        kind: &str,
        zip_limits: &ZipLimits,
        created: DateTime<Utc>,
    ) -> Result<DatasetManifest> {
        let mut entries = Vec::new();
        if kind == "image_zip" {
            entries = hash_zip_members(upload, zip_limits)?;
        } else {
            let file = File::open(upload).map_err(|e| Error::io(upload, e))?;
            let (size, digest) = hash_reader(&mut BufReader::with_capacity(1 << 20, file))
                .map_err(|e| Error::io(upload, e))?;
            let name = upload_name.rsplit('/').next().unwrap_or(upload_name);
            entries.push((name.to_owned(), size, digest));
        }
        let manifest = Manifest::from_file_digests(entries)?;
        Ok(DatasetManifest::from_manifest(
            &manifest,
            kind,
            upload_name,
            created,
        ))
    }

    fn from_manifest(
        manifest: &Manifest,
        kind: &str,
        upload_name: &str,
        created: DateTime<Utc>,
    ) -> DatasetManifest {
        let files: Vec<ManifestFile> = manifest
            .entries()
            .iter()
            .map(|e| ManifestFile {
                path: e.path().to_owned(),
                size: e.size(),
                sha256: e.sha256_hex(),
            })
            .collect();
        DatasetManifest {
            created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            kind: kind.to_owned(),
            upload: upload_name.to_owned(),
            root_sha256: manifest.root_digest_hex(),
            file_count: files.len() as u64,
            size_bytes: manifest.total_size(),
            files,
        }
    }

    /// Recompute the root digest, count and size from `files`; they must
    /// agree with the recorded values, and the files must be in manifest
    /// order without duplicates.
    ///
    /// # Errors
    /// A sentence naming the first disagreement.
    pub fn check_consistent(&self) -> std::result::Result<(), String> {
        let mut entries = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let raw = hex::decode(&f.sha256)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("file {:?} has a malformed sha256", f.path))?;
            entries.push((f.path.clone(), f.size, raw));
        }
        let manifest = Manifest::from_file_digests(entries).map_err(|e| e.to_string())?;
        let recomputed = DatasetManifest::from_manifest(
            &manifest,
            &self.kind,
            &self.upload,
            DateTime::<Utc>::UNIX_EPOCH,
        );
        if recomputed.files != self.files {
            return Err("the files are not in manifest order".into());
        }
        if recomputed.root_sha256 != self.root_sha256 {
            return Err(format!(
                "the recorded root digest {} is not the root of the listed files ({})",
                self.root_sha256, recomputed.root_sha256
            ));
        }
        if recomputed.file_count != self.file_count || recomputed.size_bytes != self.size_bytes {
            return Err(format!(
                "the recorded count/size {}/{} differ from the listed files ({}/{})",
                self.file_count, self.size_bytes, recomputed.file_count, recomputed.size_bytes
            ));
        }
        Ok(())
    }

    /// The signing time.
    ///
    /// # Errors
    /// When `created` is not RFC 3339.
    pub fn created_at(&self) -> std::result::Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(&self.created)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("created {:?} is not an RFC 3339 time: {e}", self.created))
    }

    /// Sign as an in-toto Statement about the uploaded file.
    ///
    /// # Errors
    /// Serialization and signing errors.
    pub fn sign(&self, upload_sha256: &str, signer: &dyn Signer) -> Result<Envelope> {
        let predicate = serde_json::to_value(self).map_err(|e| Error::Host(e.to_string()))?;
        let statement = Statement::new(
            vec![ResourceDescriptor::subject(&self.upload, upload_sha256)],
            MANIFEST_PREDICATE,
            predicate,
        );
        Ok(sign_statement(&statement, &[signer])?)
    }
}

/// Every file member of the ZIP archive at `path`, hashed as it is inflated
/// (the archive is checked by the intake ZIP reader under `limits`):
/// `(name, size, sha256)` in archive order.
pub(crate) fn hash_zip_members(
    path: &Path,
    limits: &ZipLimits,
) -> Result<Vec<(String, u64, [u8; 32])>> {
    let mut archive = ZipArchive::open_path(path, limits)?;
    let members: Vec<(usize, String)> = archive
        .entries()
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_dir())
        .map(|(i, e)| (i, e.name().to_owned()))
        .collect();
    let mut out = Vec::with_capacity(members.len());
    for (index, name) in members {
        let mut reader = archive.entry_reader(index)?;
        let (size, digest) = hash_reader(&mut reader).map_err(|e| reader.into_error(e))?;
        out.push((name, size, digest));
    }
    Ok(out)
}

/// SHA-256 and length of everything `reader` yields.
pub fn hash_reader(reader: &mut dyn Read) -> std::io::Result<(u64, [u8; 32])> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
    Ok((total, hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn csv_manifest() -> (tempfile::TempDir, DatasetManifest) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.csv");
        std::fs::write(&path, b"a,b\n1,2\n").unwrap();
        let m = DatasetManifest::derive(
            &path,
            "inputs/data.csv",
            "csv",
            &ZipLimits::default(),
            Utc::now(),
        )
        .unwrap();
        (dir, m)
    }

    #[test]
    fn a_single_file_dataset_is_one_entry_and_its_root_is_the_hash_of_its_digest() {
        let (_dir, m) = csv_manifest();
        let digest = Sha256::digest(b"a,b\n1,2\n");
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.files[0].path, "data.csv");
        assert_eq!(m.files[0].sha256, hex::encode(digest));
        assert_eq!(m.root_sha256, hex::encode(Sha256::digest(digest)));
        assert_eq!((m.file_count, m.size_bytes), (1, 8));
        m.check_consistent().unwrap();
    }

    #[test]
    fn an_edited_manifest_is_inconsistent() {
        let (_dir, m) = csv_manifest();
        let mut bad = m.clone();
        bad.files[0].sha256 = "00".repeat(32);
        assert!(bad.check_consistent().unwrap_err().contains("root digest"));
        let mut bad = m.clone();
        bad.size_bytes += 1;
        assert!(bad.check_consistent().is_err());
        let mut bad = m;
        bad.files.push(bad.files[0].clone());
        assert!(bad.check_consistent().is_err());
    }
}
