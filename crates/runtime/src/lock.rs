//! The runtime lock: `runtime/requirements.lock`, compiled into this crate.
//!
//! Every line pins one wheel by name, version and SHA-256, and names the
//! wheel file in a trailing comment:
//!
//! ```text
//! keras==3.15.1 --hash=sha256:836460e4...  # keras-3.15.1-py3-none-any.whl
//! ```
//!
//! `runtime/lock.sh` writes it. The installer hands the same bytes to
//! `pip install --require-hashes --no-deps --only-binary=:all:`; this parser
//! exists so the identity can say which wheel each installed distribution
//! came from, and it is strict so a hand edit that pip would read
//! differently is refused rather than guessed at.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The lock file this build installs, byte for byte.
pub const LOCK_FILE: &str = include_str!("../../../runtime/requirements.lock");

/// One pinned wheel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockedPackage {
    /// PEP 503 normalized name (lower case, `-` separated).
    pub name: String,
    /// The exact version.
    pub version: String,
    /// SHA-256 of the wheel file, lowercase hex.
    pub sha256: String,
    /// The wheel's file name.
    pub wheel: String,
}

impl LockedPackage {
    /// The package URL: `pkg:pypi/<name>@<version>`.
    pub fn purl(&self) -> String {
        purl(&self.name, &self.version)
    }
}

/// A parsed lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    packages: Vec<LockedPackage>,
    sha256: [u8; 32],
}

impl Lock {
    /// The lock compiled into this build.
    ///
    /// # Errors
    /// [`Error::LockInvalid`] if the committed file is malformed (a build
    /// from a broken checkout; the unit tests catch it first).
    pub fn embedded() -> Result<Lock> {
        Lock::parse(LOCK_FILE)
    }

    /// Parse a lock file.
    ///
    /// # Errors
    /// [`Error::LockInvalid`] naming the first bad line.
    pub fn parse(text: &str) -> Result<Lock> {
        let mut packages = Vec::new();
        let mut names = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let bad = |reason: String| Error::LockInvalid { line, reason };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (body, comment) = match trimmed.split_once('#') {
                Some((b, c)) => (b.trim(), Some(c.trim())),
                None => (trimmed, None),
            };
            let mut parts = body.split_whitespace();
            let (Some(req), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(
                    "expected `name==version --hash=sha256:HEX  # wheel`".into()
                ));
            };
            let Some((name, version)) = req.split_once("==") else {
                return Err(bad(format!("{req:?} is not pinned with ==")));
            };
            if name.is_empty() || normalize_name(name) != name {
                return Err(bad(format!("{name:?} is not a normalized package name")));
            }
            if version.is_empty()
                || !version
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+!-".contains(c))
            {
                return Err(bad(format!("{version:?} is not a plain version")));
            }
            let Some(hex_digest) = hash.strip_prefix("--hash=sha256:") else {
                return Err(bad(format!("{hash:?} is not --hash=sha256:HEX")));
            };
            if hex_digest.len() != 64
                || !hex_digest
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err(bad("the sha256 must be 64 lowercase hex digits".into()));
            }
            let Some(wheel) =
                comment.filter(|c| c.ends_with(".whl") && !c.contains(char::is_whitespace))
            else {
                return Err(bad("the trailing comment must name the wheel file".into()));
            };
            // The wheel's own name and version must be the ones pinned, so the
            // inventory cannot attribute a file to the wrong package.
            let mut fields = wheel.split('-');
            let (Some(w_name), Some(w_version)) = (fields.next(), fields.next()) else {
                return Err(bad(format!("{wheel:?} is not a wheel file name")));
            };
            if normalize_name(w_name) != name || w_version != version {
                return Err(bad(format!("{wheel:?} is not {name} {version}")));
            }
            if !names.insert(name.to_owned()) {
                return Err(bad(format!("{name} is pinned twice")));
            }
            packages.push(LockedPackage {
                name: name.to_owned(),
                version: version.to_owned(),
                sha256: hex_digest.to_owned(),
                wheel: wheel.to_owned(),
            });
        }
        if packages.is_empty() {
            return Err(Error::LockInvalid {
                line: 0,
                reason: "no packages".into(),
            });
        }
        Ok(Lock {
            packages,
            sha256: Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// The pinned wheels, in file order (sorted by name).
    pub fn packages(&self) -> &[LockedPackage] {
        &self.packages
    }

    /// A package by (normalized) name.
    pub fn get(&self, name: &str) -> Option<&LockedPackage> {
        let name = normalize_name(name);
        self.packages.iter().find(|p| p.name == name)
    }

    /// SHA-256 of the lock file's bytes, lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// PEP 503 name normalization: lower case, runs of `-`, `_`, `.` become `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `pkg:pypi/<name>@<version>` per the purl spec's PyPI type: the name
/// normalized, the version percent-encoded outside the unreserved set
/// (a local version's `+` becomes `%2B`).
pub fn purl(name: &str, version: &str) -> String {
    let mut v = String::with_capacity(version.len());
    for b in version.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            v.push(char::from(b));
        } else {
            v.push_str(&format!("%{b:02X}"));
        }
    }
    format!("pkg:pypi/{}@{v}", normalize_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "836460e480930acbd19bb7a17e62f9ecad40e8a9af9a651fc8d0586a96d27e20";

    #[test]
    fn committed_lock_parses_and_pins_the_required_versions() {
        let lock = Lock::embedded().unwrap();
        let tf = lock.get("tensorflow_cpu").unwrap();
        assert_eq!(tf.version, "2.21.0");
        assert_eq!(
            tf.sha256,
            "2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c"
        );
        assert_eq!(lock.get("keras").unwrap().version, "3.15.1");
        assert_eq!(lock.get("keras").unwrap().sha256, H);
        assert!(lock.get("pillow").is_some());
        // The closure the notes list (31) plus wheel and setuptools, which
        // a venv built --without-pip must get from the lock.
        assert_eq!(lock.packages().len(), 33);
        assert!(lock.packages().iter().all(|p| p.wheel.ends_with(".whl")));
    }

    #[test]
    fn parses_a_line_and_computes_purl() {
        let text =
            format!("# c\n\nkeras==3.15.1 --hash=sha256:{H}  # keras-3.15.1-py3-none-any.whl\n");
        let lock = Lock::parse(&text).unwrap();
        let p = &lock.packages()[0];
        assert_eq!((p.name.as_str(), p.version.as_str()), ("keras", "3.15.1"));
        assert_eq!(p.purl(), "pkg:pypi/keras@3.15.1");
        assert_eq!(
            purl("Typing_Extensions", "1.0+local"),
            "pkg:pypi/typing-extensions@1.0%2Blocal"
        );
    }

    #[test]
    fn refuses_malformed_lines_with_their_line_number() {
        let cases = [
            (
                "keras>=3.15.1 --hash=sha256:H  # keras-3.15.1-py3-none-any.whl",
                "pinned",
            ),
            ("keras==3.15.1  # keras-3.15.1-py3-none-any.whl", "expected"),
            (
                "keras==3.15.1 --hash=md5:abc  # keras-3.15.1-py3-none-any.whl",
                "sha256",
            ),
            (
                "keras==3.15.1 --hash=sha256:ABC  # keras-3.15.1-py3-none-any.whl",
                "64 lowercase",
            ),
            ("keras==3.15.1 --hash=sha256:H", "wheel"),
            (
                "keras==3.15.1 --hash=sha256:H  # tensorflow-2.0-py3-none-any.whl",
                "is not keras",
            ),
            (
                "Keras==3.15.1 --hash=sha256:H  # keras-3.15.1-py3-none-any.whl",
                "normalized",
            ),
            (
                "keras==3.15.1 --hash=sha256:H --no-deps  # keras-3.15.1-py3-none-any.whl",
                "expected",
            ),
        ];
        for (line, want) in cases {
            let text = format!("# header\n{}\n", line.replace('H', H));
            let err = Lock::parse(&text).unwrap_err();
            assert_eq!(err.code(), "runtime.lock_invalid");
            let msg = err.to_string();
            assert!(
                msg.contains("line 2") && msg.contains(want),
                "{line}: {msg}"
            );
        }
        let twice = format!(
            "keras==3.15.1 --hash=sha256:{H}  # keras-3.15.1-py3-none-any.whl\nkeras==3.15.1 --hash=sha256:{H}  # keras-3.15.1-py3-none-any.whl\n"
        );
        assert!(
            Lock::parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(Lock::parse("# nothing\n").is_err());
    }

    #[test]
    fn normalizes_names_like_pep_503() {
        assert_eq!(normalize_name("Foo.Bar__baz-Q"), "foo-bar-baz-q");
        assert_eq!(normalize_name("ml_dtypes"), "ml-dtypes");
    }
}
