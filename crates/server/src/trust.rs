//! The public trust material the API serves at
//! `/.well-known/veritrain/`: the root public key, the root-signed key set
//! and the current job layout, read from the key directory's `public/`
//! folder and checked at start-up (the key set and the layout must verify
//! with the root key). A directory that holds a private key is refused:
//! API nodes never load one.

use std::path::Path;

use chrono::Utc;
use veritrain_attest::Verified;
use veritrain_attest::dsse::Limits;
use veritrain_attest::intoto::{MetablockLimits, parse_metablock};
use veritrain_attest::keys::PublicKey;
use veritrain_attest::keyset::{KeySet, verify_keyset};
use veritrain_pipeline::keydir::{KEYSET, LAYOUT, ROOT_PUB};

use crate::config::ConfigError;

/// The checked trust material, with the exact bytes served.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The root public key.
    pub root: PublicKey,
    /// `root.pub` as served.
    pub root_pem: Vec<u8>,
    /// The key set envelope as served.
    pub keyset_bytes: Vec<u8>,
    /// The verified key set.
    pub keyset: Verified<KeySet>,
    /// The layout as served.
    pub layout_bytes: Vec<u8>,
}

impl Trust {
    /// Load and check the material in `dir`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the file and what is wrong.
    pub fn load(dir: &Path) -> Result<Trust, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Io {
            path: dir.to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".key") || name == "signing" {
                return Err(ConfigError::Invalid(format!(
                    "{} holds private key material ({name}); point trust_dir at the key directory's \
                     public/ folder: API nodes never load a private key",
                    dir.display()
                )));
            }
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ConfigError::Io { path, source })
        };
        let root_pem = read(ROOT_PUB)?;
        let root = PublicKey::from_spki_pem(&String::from_utf8_lossy(&root_pem))
            .map_err(|e| ConfigError::Invalid(format!("{ROOT_PUB}: {e}")))?;
        let keyset_bytes = read(KEYSET)?;
        let keyset = verify_keyset(&keyset_bytes, &root, &Limits::default())
            .map_err(|e| ConfigError::Invalid(format!("{KEYSET}: [{}] {e}", e.code())))?;
        let layout_bytes = read(LAYOUT)?;
        parse_metablock(&layout_bytes, &MetablockLimits::default())
            .and_then(|m| m.verify_layout(std::slice::from_ref(&root), Utc::now()))
            .map_err(|e| ConfigError::Invalid(format!("{LAYOUT}: [{}] {e}", e.code())))?;
        Ok(Trust {
            root,
            root_pem,
            keyset_bytes,
            keyset,
            layout_bytes,
        })
    }
}
