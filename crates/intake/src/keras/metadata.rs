//! `metadata.json`: the Keras version and save date, recorded in the verdict.
//!
//! Keras 3 writes exactly `{"keras_version": "3.x.y", "date_saved":
//! "YYYY-MM-DD@HH:MM:SS"}`. Anything else is refused: the version goes into
//! the AIBoM as an observed fact, so it must be the plain value Keras wrote.

use serde::Serialize;

use super::json::{self, Json};
use super::{KerasLimits, codes};
use crate::finding::{Finding, Location};

const MEMBER: &str = "metadata.json";

/// What `metadata.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KerasMetadata {
    /// The Keras version that saved the model (`3.15.1`).
    pub keras_version: String,
    /// When it was saved, as Keras wrote it (`2026-11-26@18:13:26`).
    pub date_saved: Option<String>,
}

fn refuse(code: &'static str, message: impl Into<String>, pointer: &str) -> crate::Error {
    Finding::new(
        code,
        message,
        Location::Pointer {
            member: MEMBER.to_owned(),
            pointer: pointer.to_owned(),
        },
    )
    .into()
}

/// The major version of `<major>.<minor>.<patch>` with an optional
/// pre-release/dev suffix of `[0-9A-Za-z.+-]`, at most 32 characters.
fn version_major(v: &str) -> Option<&str> {
    let mut parts = v.splitn(3, '.');
    let (major, minor, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    let patch_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let suffix = rest.get(patch_len..).unwrap_or_default();
    let ok = digits(major)
        && digits(minor)
        && (1..=6).contains(&patch_len)
        && v.len() <= 32
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    ok.then_some(major)
}

/// `YYYY-MM-DD@HH:MM:SS`.
fn date_ok(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'@',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Reads `metadata.json`. Any shape other than the one Keras 3 writes is
/// refused; a major version other than 3 is refused with its own code.
pub fn scan_metadata(metadata_json: &[u8], limits: &KerasLimits) -> crate::Result<KerasMetadata> {
    if metadata_json.len() as u64 > limits.max_metadata_bytes {
        return Err(refuse(
            codes::MEMBER_TOO_LARGE,
            format!(
                "metadata.json is {} bytes, over the limit of {}",
                metadata_json.len(),
                limits.max_metadata_bytes
            ),
            "",
        ));
    }
    // Two levels are all a valid document has.
    let doc = json::parse(metadata_json, 4, 64).map_err(|e| {
        let code = if e.code == codes::DUPLICATE_KEY {
            e.code
        } else {
            codes::METADATA_INVALID
        };
        refuse(code, format!("metadata.json: {}", e.message), "")
    })?;
    let Json::Obj(entries) = &doc else {
        return Err(refuse(
            codes::METADATA_INVALID,
            "metadata.json must be an object",
            "",
        ));
    };
    let mut version = None;
    let mut date = None;
    for (k, v) in entries {
        let p = json::push_pointer("", k);
        match (k.as_str(), v) {
            ("keras_version", Json::Str(s)) => version = Some(s.clone()),
            ("date_saved", Json::Str(s)) if date_ok(s) => date = Some(s.clone()),
            ("keras_version" | "date_saved", _) => {
                return Err(refuse(
                    codes::METADATA_INVALID,
                    format!("{k} is not what Keras writes"),
                    &p,
                ));
            }
            _ => {
                return Err(refuse(
                    codes::METADATA_INVALID,
                    format!("unexpected key {k:?} in metadata.json"),
                    &p,
                ));
            }
        }
    }
    let Some(keras_version) = version else {
        return Err(refuse(
            codes::METADATA_INVALID,
            "metadata.json has no keras_version",
            "",
        ));
    };
    let code = match version_major(&keras_version) {
        Some("3") => None,
        Some(_) => Some(codes::UNSUPPORTED_KERAS_VERSION),
        None => Some(codes::METADATA_INVALID),
    };
    if let Some(code) = code {
        let shown: String = keras_version.chars().take(32).collect();
        return Err(refuse(
            code,
            format!("keras_version {shown:?} is not a Keras 3 version"),
            "/keras_version",
        ));
    }
    Ok(KerasMetadata {
        keras_version,
        date_saved: date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> &'static str {
        scan_metadata(bytes, &KerasLimits::for_testing())
            .unwrap_err()
            .code()
    }

    #[test]
    fn what_keras_writes_is_read() {
        let m = scan_metadata(
            br#"{"keras_version": "3.15.1", "date_saved": "2026-11-26@18:13:26"}"#,
            &KerasLimits::for_testing(),
        )
        .unwrap();
        assert_eq!(m.keras_version, "3.15.1");
        assert_eq!(m.date_saved.as_deref(), Some("2026-11-26@18:13:26"));
        assert!(
            scan_metadata(
                br#"{"keras_version": "3.16.0.dev2026"}"#,
                &KerasLimits::for_testing()
            )
            .is_ok()
        );
    }

    #[test]
    fn other_shapes_are_refused() {
        assert_eq!(
            code(br#"{"keras_version": "2.15.0"}"#),
            codes::UNSUPPORTED_KERAS_VERSION
        );
        assert_eq!(
            code(br#"{"keras_version": "3.15.1", "safe_mode": false}"#),
            codes::METADATA_INVALID
        );
        assert_eq!(code(br#"{"keras_version": 3}"#), codes::METADATA_INVALID);
        assert_eq!(
            code(br#"{"date_saved": "2026-11-26@18:13:26"}"#),
            codes::METADATA_INVALID
        );
        assert_eq!(
            code(br#"{"keras_version": "3.1.0", "date_saved": "../../x"}"#),
            codes::METADATA_INVALID
        );
        assert_eq!(
            code(br#"{"keras_version": "3.15.1<script>"}"#),
            codes::METADATA_INVALID
        );
        assert_eq!(code(br#"["3.15.1"]"#), codes::METADATA_INVALID);
        assert_eq!(
            code(br#"{"keras_version": "3.1.0", "keras_version": "3.2.0"}"#),
            codes::DUPLICATE_KEY
        );
        assert_eq!(code(&[b' '; 5000]), codes::MEMBER_TOO_LARGE);
    }
}
