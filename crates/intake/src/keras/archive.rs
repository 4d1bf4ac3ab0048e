//! The `.keras` file as a whole: classify it, open it with the hardened ZIP
//! reader, and run the content scans over its members.
//!
//! This is the scanner's entry point for a file on disk; everything else in
//! `keras` works on member bytes through [`KerasArchive`].

use std::io::{Read, Seek};
use std::path::Path;

use super::{
    KerasArchive, KerasLimits, KerasVerdict, classify_model_file, codes, scan_keras_archive,
};
use crate::finding::{Finding, Location};
use crate::zip::{ZipArchive, ZipLimits};

/// Bytes read from the front of the file for [`classify_model_file`]: enough
/// to see an HDF5 signature behind the largest user block it checks.
const SNIFF_BYTES: u64 = 2048 + 8;

impl<R: Read + Seek> KerasArchive for ZipArchive<R> {
    fn members(&self) -> Vec<(String, u64)> {
        // Sizes are the declared ones; `read_member` enforces them while
        // inflating, so a lying size cannot get more bytes through.
        self.entries()
            .iter()
            .map(|e| (e.name().to_owned(), e.size()))
            .collect()
    }

    fn read_member(&mut self, name: &str, max: u64) -> crate::Result<Vec<u8>> {
        self.read_by_name(name, max)?.ok_or_else(|| {
            Finding::new(
                codes::MISSING_MEMBER,
                format!("the archive has no member {name:?}"),
                Location::Entry {
                    name: name.to_owned(),
                },
            )
            .into()
        })
    }
}

/// ZIP limits for a `.keras` archive: a handful of members, the weights
/// member as large as the scanner allows. Keras stores members uncompressed,
/// so the ratio limit stays strict.
pub fn zip_limits_for(limits: &KerasLimits) -> ZipLimits {
    let members_cap = limits.max_config_bytes
        + limits.max_metadata_bytes
        + limits.max_weights_bytes
        + limits.max_asset_bytes * limits.max_assets as u64;
    ZipLimits {
        max_archive_bytes: members_cap + (1 << 20),
        max_entries: 8 + limits.max_assets as u64 * 2,
        max_entry_bytes: limits.max_weights_bytes.max(limits.max_config_bytes),
        max_total_bytes: members_cap,
        ..ZipLimits::default()
    }
}

/// Scan the `.keras` file at `path`: refuse legacy HDF5, pickle, SavedModel
/// and non-ZIP files by their first bytes, open the archive with every ZIP
/// check, then check its members. Never fails: an unreadable or hostile
/// file gives a refusing verdict with the finding that stopped it.
pub fn scan_keras_file(path: &Path, limits: &KerasLimits) -> KerasVerdict {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut head = Vec::new();
    let sniff = std::fs::File::open(path).and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut head));
    if let Err(e) = sniff {
        return KerasVerdict::refused(Finding::new(
            codes::MEMBER_UNREADABLE,
            format!("cannot read the model file: {e}"),
            Location::Entry { name },
        ));
    }
    if let Err(e) = classify_model_file(&head, &name) {
        return refused_by(e, &name);
    }
    match ZipArchive::open_path(path, &zip_limits_for(limits)) {
        Ok(mut archive) => scan_keras_archive(&mut archive, limits),
        Err(e) => refused_by(e, &name),
    }
}

fn refused_by(error: crate::Error, name: &str) -> KerasVerdict {
    let finding = match error {
        crate::Error::Rejected(f) => *f,
        other => Finding::new(
            codes::MEMBER_UNREADABLE,
            other.to_string(),
            Location::Entry {
                name: name.to_owned(),
            },
        ),
    };
    KerasVerdict::refused(finding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keras")
            .join(name)
    }

    #[test]
    fn every_benign_fixture_passes_through_the_real_zip_reader() {
        let dir = std::fs::read_dir(fixture("")).unwrap();
        let mut seen = 0;
        for entry in dir {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "keras") {
                let verdict = scan_keras_file(&path, &KerasLimits::default());
                assert!(
                    verdict.accepted,
                    "{}: {:?}",
                    path.display(),
                    verdict.findings
                );
                assert!(verdict.param_count.unwrap_or(0) > 0, "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 10, "only {seen} fixtures");
    }

    #[test]
    fn legacy_h5_is_refused_before_opening() {
        let verdict = scan_keras_file(
            &fixture("ok_text_lstm_weights_latest.h5"),
            &KerasLimits::default(),
        );
        assert!(!verdict.accepted);
        assert_eq!(verdict.findings[0].code, codes::LEGACY_H5);
    }

    #[test]
    fn a_lambda_model_zipped_for_real_is_refused_with_its_pointer() {
        // Take a benign model, swap its config for one with a Lambda layer,
        // and re-zip it with Python-compatible stored entries.
        let src = fixture("ok_mlp_sequential.keras");
        let mut archive = ZipArchive::open_path(&src, &ZipLimits::default()).unwrap();
        let config = archive
            .read_by_name("config.json", 1 << 20)
            .unwrap()
            .unwrap();
        let metadata = archive
            .read_by_name("metadata.json", 1 << 20)
            .unwrap()
            .unwrap();
        let weights = archive
            .read_by_name("model.weights.h5", 64 << 20)
            .unwrap()
            .unwrap();
        let mut config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        let layers = config["config"]["layers"].as_array_mut().unwrap();
        layers.push(serde_json::json!({
            "module": "keras.layers", "class_name": "Lambda", "registered_name": null,
            "config": {"name": "evil", "function": {"class_name": "__lambda__",
                "config": {"code": "4wEAAAAAAAAA", "defaults": null, "closure": null}}}
        }));
        let config = serde_json::to_vec(&config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.keras");
        // Stored entries, as Keras itself writes them.
        let zip = crate::zip::testzip::TestZip::new()
            .stored("metadata.json", &metadata)
            .stored("config.json", &config)
            .stored("model.weights.h5", &weights)
            .build();
        std::fs::write(&path, zip).unwrap();
        let verdict = scan_keras_file(&path, &KerasLimits::default());
        assert!(!verdict.accepted);
        let lambda = verdict
            .findings
            .iter()
            .find(|f| f.code == codes::LAMBDA)
            .unwrap_or_else(|| panic!("no lambda finding in {:?}", verdict.findings));
        match &lambda.location {
            Location::Pointer { member, pointer } => {
                assert_eq!(member, "config.json");
                assert!(pointer.starts_with("/config/layers/"), "{pointer}");
            }
            other => panic!("unexpected location {other:?}"),
        }
    }
}
