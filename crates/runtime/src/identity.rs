//! The runtime's identity, and the check that turns a runtime directory into
//! a [`VerifiedRuntime`].
//!
//! A runtime directory looks like this:
//!
//! ```text
//! DIR/
//!   venv/                    the Python environment; the sandbox binds it read-only
//!   wheels/                  the hash-checked wheels it was installed from (a cache)
//!   requirements.lock        the lock it was installed from (this build's)
//!   runtime-identity.json    written last, at install
//! ```
//!
//! `runtime-identity.json` holds the interpreter (path, version, SHA-256),
//! the lock's digest, the inventory (every installed distribution: name,
//! version, the wheel file and its SHA-256 from the lock, and a purl), and
//! the manifest of `venv/` with its root digest (`tree`). The inventory feeds
//! the AIBoM; the manifest is what the tamper check compares against.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::lock::{Lock, normalize_name, purl};
use crate::tree::{CheckReport, TreeEntry, TreeManifest, TreeStats};

/// File name of the identity inside the runtime directory.
pub const IDENTITY_FILE: &str = "runtime-identity.json";
/// The identity format.
pub const IDENTITY_SCHEMA: &str = "veritrain.runtime-identity/v1";
/// The venv, inside the runtime directory.
pub const VENV_DIR: &str = "venv";
/// Where distributions live inside the venv (the lock is for CPython 3.11).
pub const SITE_PACKAGES: &str = "lib/python3.11/site-packages";

/// Largest identity file read (the manifest of a 25,000-file venv is ~4 MB).
const MAX_IDENTITY_BYTES: u64 = 64 << 20;
/// Largest `METADATA` header read per distribution.
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// The interpreter the venv runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interpreter {
    /// Its path (Debian's `/usr/bin/python3.11`).
    pub path: String,
    /// `sys.version`'s first word, e.g. `3.11.2`.
    pub version: String,
    /// SHA-256 of the executable, lowercase hex.
    pub sha256: String,
}

/// One installed distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    /// PEP 503 normalized name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// The wheel file it was installed from.
    pub wheel: String,
    /// SHA-256 of that wheel (pip checked it against the lock).
    pub sha256: String,
    /// `pkg:pypi/<name>@<version>`.
    pub purl: String,
}

/// Summary of the venv manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSummary {
    /// The manifest's root digest (`tree` module docs), lowercase hex.
    pub root_digest: String,
    /// Counts.
    #[serde(flatten)]
    pub stats: TreeStats,
}

/// The identity file's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeIdentity {
    /// [`IDENTITY_SCHEMA`].
    pub schema: String,
    /// RFC 3339 time of the install.
    pub installed_at: String,
    /// The interpreter.
    pub interpreter: Interpreter,
    /// SHA-256 of the lock file installed from.
    pub lock_sha256: String,
    /// Every installed distribution, sorted by name.
    pub distributions: Vec<Distribution>,
    /// Root digest and counts of `venv/`.
    pub tree: TreeSummary,
    /// Every path of `venv/`.
    pub manifest: Vec<TreeEntry>,
}

impl RuntimeIdentity {
    /// Measure an installed runtime: inventory against the lock, manifest
    /// of the venv, digest of the interpreter.
    ///
    /// # Errors
    /// [`Error::InventoryMismatch`] when the installed distributions are not
    /// exactly the lock's; [`Error::Io`] and tree errors.
    pub fn measure(
        dir: &Path,
        interpreter: &Path,
        version: &str,
        lock: &Lock,
    ) -> Result<RuntimeIdentity> {
        let venv = dir.join(VENV_DIR);
        let distributions = inventory(&venv, lock)?;
        let manifest = TreeManifest::measure(&venv)?;
        Ok(RuntimeIdentity {
            schema: IDENTITY_SCHEMA.to_owned(),
            installed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            interpreter: Interpreter {
                path: interpreter.to_string_lossy().into_owned(),
                version: version.to_owned(),
                sha256: sha256_file(interpreter)?,
            },
            lock_sha256: lock.sha256_hex(),
            distributions,
            tree: TreeSummary {
                root_digest: manifest.root_digest_hex(),
                stats: manifest.stats(),
            },
            manifest: manifest.entries().to_vec(),
        })
    }

    /// Write `DIR/runtime-identity.json` atomically (temp file + rename).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(IDENTITY_FILE);
        let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io(&tmp, std::io::Error::other(e)))?;
        fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Read and sanity-check `DIR/runtime-identity.json`.
    ///
    /// # Errors
    /// [`Error::NotInstalled`] when absent; [`Error::IdentityInvalid`] when
    /// unreadable, of another schema, or inconsistent with itself.
    pub fn load(dir: &Path) -> Result<RuntimeIdentity> {
        let path = dir.join(IDENTITY_FILE);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotInstalled {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let invalid = |reason: String| Error::IdentityInvalid {
            path: path.clone(),
            reason,
        };
        let mut bytes = Vec::new();
        file.take(MAX_IDENTITY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 > MAX_IDENTITY_BYTES {
            return Err(invalid("larger than 64 MiB".into()));
        }
        let identity: RuntimeIdentity =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if identity.schema != IDENTITY_SCHEMA {
            return Err(invalid(format!(
                "schema {:?}, expected {IDENTITY_SCHEMA}",
                identity.schema
            )));
        }
        let manifest = TreeManifest::from_entries(identity.manifest.clone()).map_err(invalid)?;
        if manifest.root_digest_hex() != identity.tree.root_digest {
            return Err(invalid(
                "the manifest does not match its recorded root digest".into(),
            ));
        }
        Ok(identity)
    }

    /// The manifest of `venv/`.
    ///
    /// # Errors
    /// [`Error::IdentityInvalid`] if the entries are out of order (checked by
    /// [`RuntimeIdentity::load`] already).
    pub fn manifest(&self) -> std::result::Result<TreeManifest, String> {
        TreeManifest::from_entries(self.manifest.clone())
    }

    /// The identity without the per-file manifest (for printing and the AIBoM).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "schema": self.schema,
            "installed_at": self.installed_at,
            "interpreter": self.interpreter,
            "lock_sha256": self.lock_sha256,
            "distributions": self.distributions,
            "tree": self.tree,
        })
    }
}

/// A runtime whose identity was checked against this build's lock, its
/// interpreter and every byte of its tree. Only [`VerifiedRuntime::verify`]
/// makes one, so code that runs the trainer can only run a checked runtime.
#[derive(Debug, Clone)]
pub struct VerifiedRuntime {
    dir: PathBuf,
    identity: RuntimeIdentity,
    check: CheckReport,
}

impl VerifiedRuntime {
    /// The tamper check that runs before every job.
    ///
    /// # Errors
    /// [`Error::NotInstalled`], [`Error::IdentityInvalid`],
    /// [`Error::LockMismatch`], [`Error::InterpreterChanged`],
    /// [`Error::Tampered`] (naming the path), or I/O errors.
    pub fn verify(dir: &Path) -> Result<VerifiedRuntime> {
        Self::verify_with_lock(dir, &Lock::embedded()?)
    }

    /// [`VerifiedRuntime::verify`] against a given lock.
    ///
    /// # Errors
    /// As [`VerifiedRuntime::verify`].
    pub fn verify_with_lock(dir: &Path, lock: &Lock) -> Result<VerifiedRuntime> {
        let identity = RuntimeIdentity::load(dir)?;
        if identity.lock_sha256 != lock.sha256_hex() {
            return Err(Error::LockMismatch {
                dir: dir.to_path_buf(),
                installed: identity.lock_sha256.clone(),
                expected: lock.sha256_hex(),
            });
        }
        let interp = PathBuf::from(&identity.interpreter.path);
        let actual = sha256_file(&interp).unwrap_or_else(|e| e.to_string());
        if actual != identity.interpreter.sha256 {
            return Err(Error::InterpreterChanged {
                path: interp,
                expected: identity.interpreter.sha256.clone(),
                actual,
            });
        }
        let manifest = identity
            .manifest()
            .map_err(|reason| Error::IdentityInvalid {
                path: dir.join(IDENTITY_FILE),
                reason,
            })?;
        let check = manifest.verify(&dir.join(VENV_DIR))?;
        Ok(VerifiedRuntime {
            dir: dir.to_path_buf(),
            identity,
            check,
        })
    }

    /// The runtime directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The venv (bind this read-only into the sandbox).
    pub fn venv(&self) -> PathBuf {
        self.dir.join(VENV_DIR)
    }

    /// `venv/bin/python`.
    pub fn python(&self) -> PathBuf {
        self.venv().join("bin/python")
    }

    /// The identity that was checked.
    pub fn identity(&self) -> &RuntimeIdentity {
        &self.identity
    }

    /// What the check measured (counts, time, threads).
    pub fn check_report(&self) -> &CheckReport {
        &self.check
    }
}

/// SHA-256 of a file, lowercase hex.
///
/// # Errors
/// [`Error::Io`].
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(h.finalize()))
}

/// Every `*.dist-info` in the venv's site-packages, matched to the lock:
/// each locked package installed exactly once at its pinned version, and
/// nothing else.
///
/// # Errors
/// [`Error::InventoryMismatch`] naming the first difference; [`Error::Io`].
pub fn inventory(venv: &Path, lock: &Lock) -> Result<Vec<Distribution>> {
    let site = venv.join(SITE_PACKAGES);
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for entry in fs::read_dir(&site).map_err(|e| Error::io(&site, e))? {
        let entry = entry.map_err(|e| Error::io(&site, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".dist-info") {
            continue;
        }
        let (dist, version) = read_metadata(&entry.path().join("METADATA"))?;
        let dist = normalize_name(&dist);
        if found.insert(dist.clone(), version).is_some() {
            return Err(Error::InventoryMismatch {
                reason: format!("{dist} is installed twice"),
            });
        }
    }
    let mut out = Vec::new();
    for p in lock.packages() {
        match found.remove(&p.name) {
            None => {
                return Err(Error::InventoryMismatch {
                    reason: format!("{} {} is in the lock but not installed", p.name, p.version),
                });
            }
            Some(v) if v != p.version => {
                return Err(Error::InventoryMismatch {
                    reason: format!(
                        "{} is installed at {v}, the lock pins {}",
                        p.name, p.version
                    ),
                });
            }
            Some(_) => out.push(Distribution {
                name: p.name.clone(),
                version: p.version.clone(),
                wheel: p.wheel.clone(),
                sha256: p.sha256.clone(),
                purl: purl(&p.name, &p.version),
            }),
        }
    }
    if let Some((name, version)) = found.into_iter().next() {
        return Err(Error::InventoryMismatch {
            reason: format!("{name} {version} is installed but not in the lock"),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `Name` and `Version` from a core-metadata header (RFC 822 style; the
/// header ends at the first empty line).
fn read_metadata(path: &Path) -> Result<(String, String)> {
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_METADATA_BYTES).read_to_string(&mut text))
        .map_err(|e| Error::io(path, e))?;
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert_with(|| v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert_with(|| v.trim().to_owned());
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => Ok((n, v)),
        _ => Err(Error::InventoryMismatch {
            reason: format!("{} has no Name/Version header", path.display()),
        }),
    }
}

/// Test support: a small fake runtime directory, shaped like a real one (a
/// `venv/` with one `*.dist-info` per locked package, `bin/python` linking
/// to `interpreter`), with its identity written. Tamper tests modify it
/// instead of the real 1.6 GB runtime.
///
/// # Errors
/// [`Error::Io`] and measurement errors.
#[cfg(any(test, feature = "test-support"))]
pub fn write_fake_runtime(dir: &Path, interpreter: &Path, lock: &Lock) -> Result<RuntimeIdentity> {
    let venv = dir.join(VENV_DIR);
    let site = venv.join(SITE_PACKAGES);
    fs::create_dir_all(venv.join("bin")).map_err(|e| Error::io(&venv, e))?;
    for p in lock.packages() {
        let info = site.join(format!(
            "{}-{}.dist-info",
            p.name.replace('-', "_"),
            p.version
        ));
        fs::create_dir_all(&info).map_err(|e| Error::io(&info, e))?;
        let meta = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n\nfake\n",
            p.name, p.version
        );
        fs::write(info.join("METADATA"), meta).map_err(|e| Error::io(&info, e))?;
    }
    let pkg = site.join("fakepkg");
    fs::create_dir_all(&pkg).map_err(|e| Error::io(&pkg, e))?;
    fs::write(pkg.join("__init__.py"), b"VALUE = 1\n").map_err(|e| Error::io(&pkg, e))?;
    fs::write(pkg.join("core.so"), vec![0x7fu8; 1 << 20]).map_err(|e| Error::io(&pkg, e))?;
    fs::write(venv.join("pyvenv.cfg"), b"home = /usr/bin\n").map_err(|e| Error::io(&venv, e))?;
    let link = venv.join("bin/python");
    if fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(interpreter, &link).map_err(|e| Error::io(&link, e))?;
    }
    let identity = RuntimeIdentity::measure(dir, interpreter, "3.11.test", lock)?;
    identity.write(dir)?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> (tempfile::TempDir, tempfile::NamedTempFile, Lock) {
        let d = tempfile::tempdir().unwrap();
        let interp = tempfile::NamedTempFile::new().unwrap();
        fs::write(interp.path(), b"#!fake interpreter\n").unwrap();
        let lock = Lock::embedded().unwrap();
        write_fake_runtime(d.path(), interp.path(), &lock).unwrap();
        (d, interp, lock)
    }

    #[test]
    fn identity_round_trips_and_verifies() {
        let (d, _interp, lock) = fake();
        let id = RuntimeIdentity::load(d.path()).unwrap();
        assert_eq!(id.distributions.len(), lock.packages().len());
        let keras = id.distributions.iter().find(|x| x.name == "keras").unwrap();
        assert_eq!(keras.purl, "pkg:pypi/keras@3.15.1");
        assert_eq!(keras.sha256, lock.get("keras").unwrap().sha256);
        assert_eq!(id.tree.root_digest.len(), 64);
        let v = VerifiedRuntime::verify(d.path()).unwrap();
        assert_eq!(v.check_report().stats, id.tree.stats);
        assert!(v.python().ends_with("venv/bin/python"));
        let summary = id.summary();
        assert!(summary.get("manifest").is_none());
        assert_eq!(summary["lock_sha256"], lock.sha256_hex());
    }

    #[test]
    fn tampered_fake_runtime_is_refused_naming_the_file() {
        let (d, _interp, _) = fake();
        let target = d
            .path()
            .join(VENV_DIR)
            .join(SITE_PACKAGES)
            .join("fakepkg/__init__.py");
        fs::write(&target, b"VALUE = 2\n").unwrap();
        let err = VerifiedRuntime::verify(d.path()).unwrap_err();
        assert_eq!(err.code(), "runtime.tampered");
        assert!(
            err.to_string()
                .contains("lib/python3.11/site-packages/fakepkg/__init__.py was modified"),
            "{err}"
        );
    }

    #[test]
    fn lock_interpreter_and_identity_problems_have_their_own_codes() {
        let (d, interp, _) = fake();
        let other = Lock::parse(
            "keras==3.15.1 --hash=sha256:836460e480930acbd19bb7a17e62f9ecad40e8a9af9a651fc8d0586a96d27e20  # keras-3.15.1-py3-none-any.whl\n",
        )
        .unwrap();
        let err = VerifiedRuntime::verify_with_lock(d.path(), &other).unwrap_err();
        assert_eq!(err.code(), "runtime.lock_mismatch");

        fs::write(interp.path(), b"#!another interpreter\n").unwrap();
        let err = VerifiedRuntime::verify(d.path()).unwrap_err();
        assert_eq!(err.code(), "runtime.interpreter_changed");

        // An edited identity whose manifest no longer matches its root.
        let path = d.path().join(IDENTITY_FILE);
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        v["manifest"].as_array_mut().unwrap().pop();
        fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let err = VerifiedRuntime::verify(d.path()).unwrap_err();
        assert_eq!(err.code(), "runtime.identity_invalid");

        fs::write(&path, b"{").unwrap();
        assert_eq!(
            RuntimeIdentity::load(d.path()).unwrap_err().code(),
            "runtime.identity_invalid"
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            VerifiedRuntime::verify(empty.path()).unwrap_err().code(),
            "runtime.not_installed"
        );
    }

    #[test]
    fn inventory_must_equal_the_lock() {
        let (d, interp, lock) = fake();
        let site = d.path().join(VENV_DIR).join(SITE_PACKAGES);
        let extra = site.join("evil-1.0.dist-info");
        fs::create_dir_all(&extra).unwrap();
        fs::write(extra.join("METADATA"), "Name: evil\nVersion: 1.0\n").unwrap();
        let err = RuntimeIdentity::measure(d.path(), interp.path(), "3.11", &lock).unwrap_err();
        assert_eq!(err.code(), "runtime.inventory_mismatch");
        assert!(
            err.to_string()
                .contains("evil 1.0 is installed but not in the lock"),
            "{err}"
        );
        fs::remove_dir_all(&extra).unwrap();
        fs::write(
            site.join("keras-3.15.1.dist-info/METADATA"),
            "Name: keras\nVersion: 3.14.0\n",
        )
        .unwrap();
        let err = RuntimeIdentity::measure(d.path(), interp.path(), "3.11", &lock).unwrap_err();
        assert!(
            err.to_string().contains("keras is installed at 3.14.0"),
            "{err}"
        );
    }
}
