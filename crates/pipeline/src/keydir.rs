//! What a job needs from a key directory made by `veritrain keys init`
//! (`docs/keys.md`): the root public key, the root-signed key set, the
//! root-signed layout and the current signing key. Everything is checked
//! before the job starts, so a job never produces a bundle that its own
//! verifier would refuse for reasons known in advance (an expired layout, a
//! retired key, a layout that does not name the key), and the signing key's
//! validity is checked again, against the key set then in the directory,
//! before the job publishes ([`JobKeys::check_signer_at`]): keys rotated or
//! revoked during a job fail it rather than leave a bundle the current key
//! set refuses.
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
    /// The key directory it was loaded from. Before a job publishes its
    /// bundle it re-reads the key set there ([`JobKeys::check_signer_at`]),
    /// so a `keys rotate` or `keys revoke` during the job is seen; `None`
    /// consults only the key set loaded here.
    pub dir: Option<PathBuf>,
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
            dir: Some(dir.to_owned()),
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

impl JobKeys {
    /// Check that the signing key is still valid at `t` (a job passes the
    /// time it publishes, which is no earlier than any signing time its
    /// bundle records): per the key set loaded with the job, and per the key
    /// set now in [`JobKeys::dir`]. A key retired by a `keys rotate`, or
    /// revoked, while the job ran would make the bundle fail verification
    /// against the operator's current key set, so the job must not publish
    /// it. (Re-signing with the new key is not an option: the layout the job
    /// carries names the key that signed its links.)
    ///
    /// # Errors
    /// `keys.signing_key_invalid` naming the key, the time, the key set and
    /// why; the errors of reading and verifying the key set again.
    pub fn check_signer_at(&self, t: DateTime<Utc>) -> Result<()> {
        let keyid = self.signer.keyid();
        let invalid = |source: &str, reason: &str| {
            Error::keys(
                "keys.signing_key_invalid",
                format!(
                    "the signing key {keyid} is not valid at {} per {source}: {reason}; the keys were \
                     rotated or revoked while the job ran, so its bundle would not verify against the \
                     current key set. No bundle was written: run the job again to sign with the current key",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
            )
        };
        let check = |keyset: &KeySet, source: &str| match keyset.entry(keyid) {
            None => Err(invalid(source, "the key set no longer lists it")),
            Some(entry) => entry
                .check_valid_at(t)
                .map_err(|e| invalid(source, &e.to_string())),
        };
        check(&self.keyset, "the key set the job started with")?;
        if let Some(dir) = &self.dir {
            let path = dir.join(KEYSET);
            let current = verify_keyset(&read(&path)?, &self.root, &Limits::default())?;
            check(&current, &path.display().to_string())?;
        }
        Ok(())
    }
}

/// Where the private signing key `keyid` lives.
pub fn signing_key_path(dir: &Path, keyid: &str) -> PathBuf {
    dir.join(SIGNING_DIR).join(format!("{keyid}.key"))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    crate::job::read_limited(path, MAX_FILE_BYTES)
}
