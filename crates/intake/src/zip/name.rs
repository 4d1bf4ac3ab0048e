//! Entry-name rules: what a member of an uploaded archive may be called.
//!
//! A name is accepted only if it is a relative path of plain components that
//! means the same thing to every unzip tool and every file system the data
//! may touch. See `docs/intake-archives.md` for the policy and its reasons.

use super::codes;
use crate::finding::{Finding, Location};

/// The archive-wide name of an entry, decoded and checked.
pub(crate) struct CheckedName {
    /// The name as stored (UTF-8), including the trailing `/` of a directory.
    pub(crate) name: String,
    /// Whether the name ends in `/`.
    pub(crate) is_dir: bool,
}

/// Decodes and checks a raw entry name.
///
/// `utf8_flag` is general-purpose bit 11 of the entry.
pub(crate) fn check_name(
    raw: &[u8],
    utf8_flag: bool,
    max_bytes: usize,
) -> Result<CheckedName, Finding> {
    let lossy = || {
        String::from_utf8_lossy(raw)
            .chars()
            .take(200)
            .collect::<String>()
    };
    let at = || Location::Entry { name: lossy() };
    if raw.is_empty() {
        return Err(Finding::new(
            codes::BAD_NAME,
            "entry has an empty name",
            at(),
        ));
    }
    if raw.len() > max_bytes {
        return Err(Finding::new(
            codes::BAD_NAME,
            format!(
                "entry name is {} bytes long; the limit is {max_bytes}",
                raw.len()
            ),
            at(),
        ));
    }
    // Stops names that decode differently per tool: without bit 11 the
    // specification says CP437, most tools use the local code page, and
    // some guess. Pure ASCII means the same under all of them; anything
    // else must be declared UTF-8.
    if !utf8_flag && !raw.is_ascii() {
        return Err(Finding::new(
            codes::NON_UTF8_NAME,
            "entry name has non-ASCII bytes but the archive does not mark it as UTF-8 \
             (general-purpose flag bit 11); re-create the archive with a tool that writes UTF-8 names",
            at(),
        ));
    }
    let Ok(name) = std::str::from_utf8(raw) else {
        return Err(Finding::new(
            codes::NON_UTF8_NAME,
            "entry name is marked UTF-8 but is not valid UTF-8",
            at(),
        ));
    };
    let at = || Location::Entry {
        name: name.chars().take(200).collect(),
    };
    // Stops NUL truncation (`a.png\0.exe` is `a.png` to C code) and control
    // characters that rewrite terminals and logs.
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        let what = if c == '\0' {
            "a NUL byte"
        } else {
            "a control character"
        };
        return Err(Finding::new(
            codes::BAD_NAME,
            format!("entry name contains {what} (U+{:04X})", u32::from(c)),
            at(),
        ));
    }
    // Stops absolute paths: extraction would escape the target directory.
    if name.starts_with('/') {
        return Err(Finding::new(
            codes::ABSOLUTE_PATH,
            "entry name is an absolute path",
            at(),
        ));
    }
    // Stops Windows-style traversal (`..\x`, `\\server\share`): a backslash is
    // a separator to Windows tools and a name character to ours, so the two
    // would disagree about where the file goes.
    if name.contains('\\') {
        return Err(Finding::new(
            codes::BAD_NAME,
            "entry name contains a backslash; ZIP paths use `/`",
            at(),
        ));
    }
    // Stops drive-relative and drive-absolute paths (`C:x`, `C:/x`) and NTFS
    // alternate data streams (`a.png:hidden`).
    if name.contains(':') {
        let mut chars = name.chars();
        let drive =
            matches!((chars.next(), chars.next()), (Some(d), Some(':')) if d.is_ascii_alphabetic());
        return Err(if drive {
            Finding::new(
                codes::ABSOLUTE_PATH,
                "entry name starts with a drive letter",
                at(),
            )
        } else {
            Finding::new(codes::BAD_NAME, "entry name contains `:`", at())
        });
    }
    let is_dir = name.ends_with('/');
    let body = name.strip_suffix('/').unwrap_or(name);
    for component in body.split('/') {
        match component {
            // Stops path traversal out of the extraction directory.
            ".." => {
                return Err(Finding::new(
                    codes::PATH_TRAVERSAL,
                    "entry name contains a `..` component",
                    at(),
                ));
            }
            // `a//b`, `./a` and a bare `/` name the same file as another
            // spelling would, which defeats the duplicate-name check.
            "" | "." => {
                return Err(Finding::new(
                    codes::BAD_NAME,
                    "entry name has an empty or `.` path component",
                    at(),
                ));
            }
            _ => {}
        }
    }
    Ok(CheckedName {
        name: name.to_owned(),
        is_dir,
    })
}

/// The key under which two names collide on a case-insensitive file system.
///
/// Full Unicode case folding approximated with the standard library as
/// upper-then-lower case, so that `ß`/`SS`/`ss`, `ﬁ`/`FI`, `ς`/`σ` and the
/// Kelvin sign fold together as well as ASCII letters. Unicode normalisation
/// (NFC vs NFD, as macOS applies) is not done; see `docs/intake-archives.md`.
pub(crate) fn fold_case(name: &str) -> String {
    name.to_uppercase().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &[u8], utf8: bool) -> &'static str {
        match check_name(raw, utf8, 255) {
            Ok(_) => "ok",
            Err(f) => f.code,
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(code(b"a/b.png", false), "ok");
        assert_eq!(code(b"a/", false), "ok");
        assert_eq!(code("\u{e9}t\u{e9}.png".as_bytes(), true), "ok");
        assert_eq!(code(b"", false), codes::BAD_NAME);
        assert_eq!(code(b"../x", false), codes::PATH_TRAVERSAL);
        assert_eq!(code(b"a/../../x", false), codes::PATH_TRAVERSAL);
        assert_eq!(code(b"a/..", false), codes::PATH_TRAVERSAL);
        assert_eq!(code(b"/etc/passwd", false), codes::ABSOLUTE_PATH);
        assert_eq!(code(b"C:x", false), codes::ABSOLUTE_PATH);
        assert_eq!(code(b"c:/x", false), codes::ABSOLUTE_PATH);
        assert_eq!(code(b"a.png:s", false), codes::BAD_NAME);
        assert_eq!(code(b"a\\b", false), codes::BAD_NAME);
        assert_eq!(code(b"..\\x", false), codes::BAD_NAME);
        assert_eq!(code(b"a\0.png", false), codes::BAD_NAME);
        assert_eq!(code(b"a\x1b[2J.png", false), codes::BAD_NAME);
        assert_eq!(code("a\u{85}b".as_bytes(), true), codes::BAD_NAME);
        assert_eq!(code(b"a//b", false), codes::BAD_NAME);
        assert_eq!(code(b"./a", false), codes::BAD_NAME);
        assert_eq!(code(b"/", false), codes::ABSOLUTE_PATH);
        assert_eq!(code(b"\xe9.png", false), codes::NON_UTF8_NAME);
        assert_eq!(code(b"\xff.png", true), codes::NON_UTF8_NAME);
        assert_eq!(code(&[b'a'; 256], false), codes::BAD_NAME);
    }

    #[test]
    fn fold_case_covers_beyond_ascii() {
        assert_eq!(fold_case("A.PNG"), fold_case("a.png"));
        assert_eq!(fold_case("stra\u{df}e"), fold_case("STRASSE"));
        assert_eq!(fold_case("\u{212a}"), fold_case("k"));
        assert_eq!(fold_case("\u{3c2}"), fold_case("\u{3c3}"));
        assert_ne!(fold_case("a.png"), fold_case("b.png"));
    }
}
