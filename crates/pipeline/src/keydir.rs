//! What a job needs from a key directory made by `veritrain keys init`
//! (`docs/keys.md`): the root public key, the root-signed key set, the
//! root-signed layout and the current signing key. Everything is checked
//! before the job starts, so a job never produces a bundle that its own
//! verifier would refuse for reasons known in advance (an expired layout, a
//! retired key, a layout that does not name the key).
//!
//! The root *private* key is never read here.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use veritrain_attest::Verified;
use veritrain_attest::dsse::Limits;
use veritrain_attest::intoto::{Layout, MetablockLimits, parse_metablock};
use veritrain_attest::keys::{FileSigner, PublicKey, Signer};
use veritrain_attest::keyset::{KeySet, verify_keyset};

use crate::error::{Error, Result};

/// The root public key.
pub const ROOT_PUB: &str = "root.pub";
/// The signed key set.
pub const KEYSET: &str = "keyset.dsse.json";
/// The signed layout.
pub const LAYOUT: &str = "root.layout";
/// Private and public signing keys, by key ID.
pub const SIGNING_DIR: &str = "signing";
/// What verifiers need.
pub const PUBLIC_DIR: &str = "public";

/// The most bytes read from a key-directory file.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// The trust material and signer of one job, all checked.
pub struct JobKeys {
    /// The root public key.
    pub root: PublicKey,
    /// Its PEM file, as shipped in the bundle.
    pub root_pem: Vec<u8>,
    /// The key set envelope's bytes.
    pub keyset_bytes: Vec<u8>,
    /// The verified key set.
    pub keyset: Verified<KeySet>,
    /// The layout metablock's bytes.
    pub layout_bytes: Vec<u8>,
    /// The verified layout.
    pub layout: Verified<Layout>,
    /// The current signing key.
    pub signer: Box<dyn Signer>,
}

impl std::fmt::Debug for JobKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobKeys")
            .field("root", &self.root.keyid())
            .field("keyset_version", &self.keyset.version)
            .field("signer", &self.signer.public_key().keyid())
            .finish_non_exhaustive()
    }
}

impl JobKeys {
    /// Load and check the key directory `dir` at time `now`.
    ///
    /// # Errors
    /// `keys.*` codes naming the file and what to run: a missing layout
    /// (`keys layout`), no active key (`keys rotate`), an expired layout.
    pub fn load(dir: &Path, now: DateTime<Utc>) -> Result<JobKeys> {
        let root_pem = read(&dir.join(ROOT_PUB))?;
        let root = PublicKey::from_spki_pem(&String::from_utf8_lossy(&root_pem))?;
        let keyset_bytes = read(&dir.join(KEYSET))?;
        let keyset = verify_keyset(&keyset_bytes, &root, &Limits::default())?;
        let entry = keyset.current().ok_or_else(|| {
            Error::keys(
                "keys.no_active_key",
                format!(
                    "the key set in {} has no active signing key; run `veritrain keys rotate --dir {}`",
                    dir.display(),
                    dir.display()
                ),
            )
        })?;
        entry.check_valid_at(now)?;
        let keyid = entry.keyid.clone();

        let layout_path = dir.join(LAYOUT);
        let layout_bytes = match read(&layout_path) {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::keys(
                    "keys.no_layout",
                    format!(
                        "{} has no signed layout ({LAYOUT}); sign one with `veritrain keys layout --dir {}` \
                         (needs the root key)",
                        dir.display(),
                        dir.display()
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        let layout = parse_metablock(&layout_bytes, &MetablockLimits::default())?
            .verify_layout(std::slice::from_ref(&root), now)
            .map_err(|e| match e {
                veritrain_attest::Error::LayoutExpired(when) => Error::keys(
                    "keys.layout_expired",
                    format!(
                        "the layout in {} expired at {when}; sign a new one with `veritrain keys layout --dir {}`",
                        dir.display(),
                        dir.display()
                    ),
                ),
                other => other.into(),
            })?;
        if !layout.steps.iter().all(|s| s.pubkeys.contains(&keyid)) {
            return Err(Error::keys(
                "keys.layout_stale",
                format!(
                    "the layout in {} does not name the current signing key {keyid}; \
                     re-sign it with `veritrain keys layout --dir {}`",
                    dir.display(),
                    dir.display()
                ),
            ));
        }

        let key_path = signing_key_path(dir, &keyid);
        let signer = FileSigner::load(&key_path).map_err(|e| {
            Error::keys(
                "keys.signing_key_missing",
                format!(
                    "cannot load the current signing key {}: {e}",
                    key_path.display()
                ),
            )
        })?;
        if signer.public_key().keyid() != keyid {
            return Err(Error::keys(
                "keys.signing_key_mismatch",
                format!(
                    "{} holds key {}, not the key set's current key {keyid}",
                    key_path.display(),
                    signer.public_key().keyid()
                ),
            ));
        }
        Ok(JobKeys {
            root,
            root_pem,
            keyset_bytes,
            keyset,
            layout_bytes,
            layout,
            signer: Box::new(signer),
        })
    }
}

/// Where the private signing key `keyid` lives.
pub fn signing_key_path(dir: &Path, keyid: &str) -> PathBuf {
    dir.join(SIGNING_DIR).join(format!("{keyid}.key"))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    crate::job::read_limited(path, MAX_FILE_BYTES)
}
