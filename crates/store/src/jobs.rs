//! Where a job's objects live, and the index of its bundle.
//!
//! Every key of a job is under `jobs/<job id>/`. The uploads are stored by
//! the API under their bundle names; each attempt of a worker writes the
//! rest of the bundle under its own prefix, keeping the bundle paths
//! (`docs/bundle.md`):
//!
//! ```text
//! jobs/<id>/inputs/model.keras                 written by the API at upload
//! jobs/<id>/inputs/definition.yaml             (the API)
//! jobs/<id>/inputs/job.yaml                    (the API)
//! jobs/<id>/inputs/data.<csv|zip|tfrecord>     (the API)
//! jobs/<id>/attempts/<n>/outputs/…, attestations/…, trust/…, aibom.cdx.json
//!                                              written by the worker's attempt n
//! jobs/<id>/attempts/<n>/index.json            that attempt's index of the whole bundle
//! ```
//!
//! Writes are create-only, so an attempt that died half-way leaves its
//! objects behind and the next attempt writes beside them; the job record
//! names the index of the attempt that succeeded. The inputs a user uploaded
//! are stored once: the bundle's copies of them are byte-for-byte the
//! uploads (the worker checks it), so the index lists the uploads' keys.
//!
//! The index is a convenience for listing and fetching artifacts, not a
//! statement of trust: it is unsigned. `GET /v1/jobs/{id}/integrity` checks
//! every object it names against the signed attestations of the bundle.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::key::ObjectKey;

/// Largest index the service reads back.
pub const MAX_INDEX_BYTES: u64 = 1 << 20;

/// The keys of one job. `job` is the job id as text (a UUID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobObjects {
    root: ObjectKey,
}

impl JobObjects {
    /// The keys of job `job`.
    ///
    /// # Errors
    /// `store.bad_key` if `job` is not a valid key segment.
    pub fn new(job: &str) -> Result<Self> {
        Ok(JobObjects {
            root: ObjectKey::new("jobs")?.join(job)?,
        })
    }

    /// `jobs/<id>`: every object of the job is under it.
    pub fn root(&self) -> &ObjectKey {
        &self.root
    }

    /// The uploaded input stored under its bundle file name (`model.keras`,
    /// `data.csv`, ...), i.e. bundle path `inputs/<name>`.
    ///
    /// # Errors
    /// `store.bad_key` if `name` is not a valid key segment.
    pub fn input(&self, name: &str) -> Result<ObjectKey> {
        self.root.join("inputs")?.join(name)
    }

    /// The object attempt `attempt` writes for the bundle file at `path` (a
    /// bundle path such as `outputs/model.keras`; every segment is checked).
    ///
    /// # Errors
    /// `store.bad_key` for a path that is not a valid key.
    pub fn attempt_file(&self, attempt: u32, path: &str) -> Result<ObjectKey> {
        ObjectKey::new(format!("{}/attempts/{attempt}/{path}", self.root.as_str()))
    }

    /// The bundle index attempt `attempt` writes last.
    ///
    /// # Errors
    /// Never for a job made by [`JobObjects::new`]; typed for symmetry.
    pub fn attempt_index(&self, attempt: u32) -> Result<ObjectKey> {
        self.root
            .join("attempts")?
            .join(&attempt.to_string())?
            .join("index.json")
    }
}

/// One file of a stored bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    /// The path inside the bundle (`outputs/model.keras`).
    pub path: String,
    /// The object holding it.
    pub key: String,
    /// Size in bytes, as stored.
    pub size: u64,
    /// SHA-256 (lowercase hex), as measured while it was stored.
    pub sha256: String,
}

/// The index of a stored bundle: every file, sorted by path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleIndex {
    /// Index format version (1).
    pub version: u32,
    /// The files.
    pub files: Vec<IndexEntry>,
}

impl BundleIndex {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// An index of `files`, sorted by path.
    pub fn new(mut files: Vec<IndexEntry>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        BundleIndex {
            version: Self::VERSION,
            files,
        }
    }

    /// The entry for bundle path `path`, if any. Lookups go by exact path,
    /// so a name a client sends is only ever compared, never joined.
    pub fn get(&self, path: &str) -> Option<&IndexEntry> {
        self.files
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .and_then(|i| self.files.get(i))
    }

    /// Parses a stored index, checking that it is sorted, free of
    /// duplicates and of this version.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let index: BundleIndex =
            serde_json::from_slice(bytes).map_err(|e| format!("bundle index: {e}"))?;
        if index.version != Self::VERSION {
            return Err(format!(
                "bundle index version {} is not {}",
                index.version,
                Self::VERSION
            ));
        }
        if index.files.windows(2).any(|w| match w {
            [a, b] => a.path >= b.path,
            _ => false,
        }) {
            return Err("bundle index is not sorted by path, or names a path twice".into());
        }
        Ok(index)
    }

    /// The index as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and integers always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_keep_bundle_paths() {
        let j = JobObjects::new("0b7e3c2a-1d5f-4c1e-9a8b-2f6d4e1c3b5a").unwrap();
        let root = "jobs/0b7e3c2a-1d5f-4c1e-9a8b-2f6d4e1c3b5a";
        assert_eq!(
            j.attempt_file(2, "outputs/model.keras").unwrap().as_str(),
            format!("{root}/attempts/2/outputs/model.keras")
        );
        assert_eq!(
            j.attempt_index(2).unwrap().as_str(),
            format!("{root}/attempts/2/index.json")
        );
        assert_eq!(
            j.input("data.csv").unwrap().as_str(),
            format!("{root}/inputs/data.csv")
        );
        assert!(j.attempt_file(1, "../x").is_err());
        assert!(j.input("a/b").is_err());
        assert!(JobObjects::new("a/b").is_err());
    }

    #[test]
    fn index_round_trips_and_refuses_duplicates() {
        let e = |p: &str| IndexEntry {
            path: p.into(),
            key: format!("k/{p}"),
            size: 1,
            sha256: "00".into(),
        };
        let index = BundleIndex::new(vec![e("b"), e("a")]);
        assert_eq!(index.get("a").unwrap().key, "k/a");
        assert!(index.get("c").is_none());
        assert_eq!(BundleIndex::parse(&index.to_json()).unwrap(), index);
        let dup = BundleIndex {
            version: 1,
            files: vec![e("a"), e("a")],
        };
        assert!(BundleIndex::parse(&dup.to_json()).is_err());
        let old = BundleIndex {
            version: 0,
            files: vec![],
        };
        assert!(BundleIndex::parse(&old.to_json()).is_err());
    }
}
