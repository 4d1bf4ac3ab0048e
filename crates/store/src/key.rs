//! Object keys: the only names the store accepts.
//!
//! The service builds every key itself from identifiers it generated (job ids,
//! fixed artifact names). A client's file name never becomes a key: the prior
//! art joined client file names into paths unsanitised, which let `../` and
//! absolute names write outside the upload directory. An [`ObjectKey`] can only
//! be made by [`ObjectKey::new`] or [`ObjectKey::join`], which check it against
//! an allow-list, so a key is the same harmless relative path on local disk and
//! on S3.

use std::fmt;

use crate::error::{Error, Result};

/// Longest key accepted, in bytes. S3 allows 1024; we stay well under it and
/// under the local filesystem's `PATH_MAX` once joined to the data directory.
pub const MAX_KEY_LEN: usize = 512;

/// Longest segment accepted, in bytes. Local filesystems cap a file name at
/// 255 bytes, and the local backend appends a short `#N` suffix to the file it
/// writes while an upload is in progress.
pub const MAX_SEGMENT_LEN: usize = 200;

/// A validated object key: ASCII segments of `[A-Za-z0-9._-]` joined by `/`.
///
/// Rules, each stopping a way a name could escape or alias:
/// - not empty, at most [`MAX_KEY_LEN`] bytes, segments at most
///   [`MAX_SEGMENT_LEN`] bytes;
/// - no empty segment (no leading, trailing or doubled `/`), so one object has
///   one name on every backend;
/// - each segment starts with an ASCII letter or digit: this refuses `.` and
///   `..` (path traversal on the local backend), hidden files, names that read
///   as command-line options, and keeps the store's own `.staging/` area out of
///   reach of any caller;
/// - only `[A-Za-z0-9._-]` otherwise: no `\`, `:`, `%`, `#`, spaces, control
///   characters or non-ASCII, which backends and URL encoders treat differently.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks `key` against the rules above.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        check_key(&key).map_err(|reason| Error::BadKey {
            key: printable(&key),
            reason,
        })?;
        Ok(Self(key))
    }

    /// This key with one more segment, itself checked (`segment` may not hold `/`).
    pub fn join(&self, segment: &str) -> Result<Self> {
        if segment.contains('/') {
            return Err(Error::BadKey {
                key: printable(segment),
                reason: "a joined segment may not contain '/'",
            });
        }
        Self::new(format!("{}/{segment}", self.0))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `prefix` is this key or a whole-segment prefix of it
    /// (`jobs/1` is a prefix of `jobs/1/model.keras`, not of `jobs/10`).
    pub fn starts_with(&self, prefix: &ObjectKey) -> bool {
        match self.0.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    pub(crate) fn to_path(&self) -> object_store::path::Path {
        // Every allowed character is legal in an object_store path segment, so
        // this conversion neither encodes nor drops anything.
        object_store::path::Path::from(self.0.as_str())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

impl std::str::FromStr for ObjectKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn check_key(key: &str) -> std::result::Result<(), &'static str> {
    if key.is_empty() {
        return Err("the key is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("the key is longer than 512 bytes");
    }
    for segment in key.split('/') {
        check_segment(segment)?;
    }
    Ok(())
}

fn check_segment(segment: &str) -> std::result::Result<(), &'static str> {
    let bytes = segment.as_bytes();
    let Some(first) = bytes.first() else {
        return Err("the key has an empty segment (leading, trailing or doubled '/')");
    };
    if bytes.len() > MAX_SEGMENT_LEN {
        return Err("a segment is longer than 200 bytes");
    }
    // Refuses ".", "..", hidden names and the store's own ".staging" area.
    if !first.is_ascii_alphanumeric() {
        return Err("each segment must start with an ASCII letter or digit");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("segments may only contain ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// The rejected key as it may appear in an error message: escaped, and cut to
/// a length a log line can carry (the key comes from a caller and may be huge).
fn printable(key: &str) -> String {
    const SHOWN: usize = 80;
    let mut shown: String = key.chars().take(SHOWN).collect();
    if key.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_service_shaped_keys() {
        for ok in [
            "a",
            "jobs/0b5f-22/model.keras",
            "jobs/42/uploads/dataset.zip",
            "bundles/2026-11-26_job-7.tar",
            "A/B/c.d.e",
            "9",
        ] {
            let key = ObjectKey::new(ok).unwrap();
            assert_eq!(key.as_str(), ok);
        }
    }

    #[test]
    fn refuses_traversal_and_odd_names() {
        let long_segment = "a".repeat(MAX_SEGMENT_LEN + 1);
        let long_key = format!("{}/x", ["a"; 300].join("/"));
        for bad in [
            "",
            "/",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            ".",
            "..",
            "a//b",
            "a/",
            ".staging/x",
            ".hidden",
            "-rf",
            "a\\b",
            "C:x",
            "a b",
            "a%2e%2e",
            "a#1",
            "a\nb",
            "a\0b",
            "caf\u{e9}",
            "a/\u{202e}txt",
            long_segment.as_str(),
            long_key.as_str(),
        ] {
            let err = ObjectKey::new(bad).unwrap_err();
            assert_eq!(err.code(), "store.bad_key", "{bad:?}");
        }
    }

    #[test]
    fn join_checks_the_segment() {
        let jobs = ObjectKey::new("jobs/7").unwrap();
        assert_eq!(
            jobs.join("model.keras").unwrap().as_str(),
            "jobs/7/model.keras"
        );
        for bad in ["..", "a/b", "", ".x", "x y"] {
            assert_eq!(
                jobs.join(bad).unwrap_err().code(),
                "store.bad_key",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefix_is_segment_wise() {
        let key = ObjectKey::new("jobs/1/model.keras").unwrap();
        assert!(key.starts_with(&ObjectKey::new("jobs/1").unwrap()));
        assert!(key.starts_with(&key));
        assert!(!key.starts_with(&ObjectKey::new("jobs/10").unwrap()));
        assert!(
            !ObjectKey::new("jobs/10")
                .unwrap()
                .starts_with(&ObjectKey::new("jobs/1").unwrap())
        );
    }

    #[test]
    fn error_message_is_bounded_and_escaped() {
        let hostile = format!("{}\n{}", "x".repeat(10_000), "y");
        let message = ObjectKey::new(hostile).unwrap_err().to_string();
        assert!(message.len() < 400, "{message}");
        assert!(!message.contains('\n'));
    }
}
