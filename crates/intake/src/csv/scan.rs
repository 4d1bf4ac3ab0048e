//! RFC 4180 record scanner over a byte slice.
//!
//! Finds the fields of one record without copying: unquoted fields are
//! spans of the input, quoted fields spans of their content (with `""`
//! still doubled; [`unescape`] undoes that). The caller owns the buffer and
//! calls [`scan_record`] again with more data when a record is incomplete,
//! so a record is never longer than the buffer the limits allow.
//!
//! Strict RFC 4180 plus LF line endings: a quote inside an unquoted field,
//! text after a closing quote, a CR not followed by LF and NUL anywhere are
//! errors, not guesses.

/// One field of a record: the byte range of its content within the slice
/// given to [`scan_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field {
    pub start: usize,
    pub end: usize,
    /// The field was quoted (`"..."`).
    pub quoted: bool,
    /// The quoted content holds doubled quotes (`""`) to undo.
    pub escaped: bool,
}

/// The outcome of scanning from the start of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// A whole record: its content ends at `end`, the next record starts
    /// at `next` (after the line terminator).
    Complete { end: usize, next: usize },
    /// The data ends inside the record; call again with more.
    Incomplete,
}

/// Why a record is malformed, and in which field (0-based) at which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScanError {
    /// A NUL byte.
    Nul { field: usize },
    /// A quote inside an unquoted field.
    StrayQuote { field: usize },
    /// Text after a closing quote.
    AfterQuote { field: usize },
    /// The input ends inside a quoted field.
    Unterminated { field: usize },
    /// A CR not followed by LF.
    BareCr { field: usize },
    /// More fields than the header has.
    TooManyFields { fields: usize },
    /// A field longer than the limit.
    FieldTooLong { field: usize },
}

/// Bytes that end the fast scan of an unquoted field.
pub(super) struct Specials([bool; 256]);

impl Specials {
    pub fn new(delimiter: u8) -> Self {
        let mut t = [false; 256];
        for b in [delimiter, b'\n', b'\r', b'"', 0] {
            if let Some(slot) = t.get_mut(usize::from(b)) {
                *slot = true;
            }
        }
        Specials(t)
    }

    #[inline(always)]
    fn is(&self, b: u8) -> bool {
        // A u8 always indexes a 256-entry table; `get` keeps the lint happy
        // and compiles to the same load.
        self.0.get(usize::from(b)).copied().unwrap_or(true)
    }
}

/// Scan one record starting at `data[0]`. `eof` says no more data will
/// follow `data`. `max_fields` is the header's width (more is an error as
/// soon as it is seen); `max_field` the longest field allowed.
#[inline]
pub(super) fn scan_record(
    data: &[u8],
    eof: bool,
    delimiter: u8,
    specials: &Specials,
    max_fields: usize,
    max_field: usize,
    fields: &mut Vec<Field>,
) -> Result<Scan, ScanError> {
    fields.clear();
    let len = data.len();
    let mut pos = 0usize;
    loop {
        let field = fields.len();
        if field >= max_fields {
            return Err(ScanError::TooManyFields {
                fields: field.saturating_add(1),
            });
        }
        if data.get(pos) == Some(&b'"') {
            let start = pos.saturating_add(1);
            let mut i = start;
            let mut escaped = false;
            let end = loop {
                let rest = data.get(i..).unwrap_or_default();
                match rest.iter().position(|&b| b == b'"' || b == 0) {
                    None => {
                        if rest.len() > max_field || i.saturating_sub(start) > max_field {
                            return Err(ScanError::FieldTooLong { field });
                        }
                        return if eof {
                            Err(ScanError::Unterminated { field })
                        } else {
                            Ok(Scan::Incomplete)
                        };
                    }
                    Some(k) => {
                        i = i.saturating_add(k);
                        if data.get(i) == Some(&0) {
                            return Err(ScanError::Nul { field });
                        }
                        match data.get(i.saturating_add(1)) {
                            Some(b'"') => {
                                escaped = true;
                                i = i.saturating_add(2);
                            }
                            None if !eof => return Ok(Scan::Incomplete),
                            _ => break i,
                        }
                    }
                }
            };
            if end.saturating_sub(start) > max_field {
                return Err(ScanError::FieldTooLong { field });
            }
            fields.push(Field {
                start,
                end,
                quoted: true,
                escaped,
            });
            let after = end.saturating_add(1);
            match data.get(after) {
                None => {
                    return Ok(Scan::Complete {
                        end: after,
                        next: after,
                    });
                }
                Some(&b) if b == delimiter => pos = after.saturating_add(1),
                Some(b'\n') => {
                    return Ok(Scan::Complete {
                        end: after,
                        next: after.saturating_add(1),
                    });
                }
                Some(b'\r') => return crlf(data, after, eof, field),
                Some(0) => return Err(ScanError::Nul { field }),
                Some(_) => return Err(ScanError::AfterQuote { field }),
            }
        } else {
            let rest = data.get(pos..).unwrap_or_default();
            let found = rest.iter().position(|&b| specials.is(b));
            let end = match found {
                Some(k) => pos.saturating_add(k),
                None => len,
            };
            if end.saturating_sub(pos) > max_field {
                return Err(ScanError::FieldTooLong { field });
            }
            let Some(&b) = data.get(end) else {
                // No terminator in the data: the record goes on unless the
                // input has ended.
                if !eof {
                    return Ok(Scan::Incomplete);
                }
                fields.push(Field {
                    start: pos,
                    end,
                    quoted: false,
                    escaped: false,
                });
                return Ok(Scan::Complete { end, next: end });
            };
            fields.push(Field {
                start: pos,
                end,
                quoted: false,
                escaped: false,
            });
            match b {
                b'\n' => {
                    return Ok(Scan::Complete {
                        end,
                        next: end.saturating_add(1),
                    });
                }
                b'\r' => return crlf(data, end, eof, field),
                b'"' => return Err(ScanError::StrayQuote { field }),
                0 => return Err(ScanError::Nul { field }),
                _ => pos = end.saturating_add(1), // the delimiter
            }
        }
    }
}

/// A CR at `at`: it must start a CRLF.
fn crlf(data: &[u8], at: usize, eof: bool, field: usize) -> Result<Scan, ScanError> {
    match data.get(at.saturating_add(1)) {
        Some(b'\n') => Ok(Scan::Complete {
            end: at,
            next: at.saturating_add(2),
        }),
        None if !eof => Ok(Scan::Incomplete),
        _ => Err(ScanError::BareCr { field }),
    }
}

/// Undo `""` doubling in quoted content.
pub(super) fn unescape(content: &str, out: &mut String) {
    out.clear();
    let mut rest = content;
    while let Some(i) = rest.find("\"\"") {
        out.push_str(rest.get(..i).unwrap_or_default());
        out.push('"');
        rest = rest.get(i.saturating_add(2)..).unwrap_or_default();
    }
    out.push_str(rest);
}

/// [`unescape`] on bytes.
pub(super) fn unescape_bytes(content: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut quote = false;
    for &b in content {
        // Every quote in quoted content is doubled: keep the first of each
        // pair.
        if b == b'"' {
            quote = !quote;
            if !quote {
                continue;
            }
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(data: &[u8], eof: bool) -> (Result<Scan, ScanError>, Vec<(String, bool)>) {
        let mut fields = Vec::new();
        let r = scan_record(data, eof, b',', &Specials::new(b','), 8, 64, &mut fields);
        let f = fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&data[f.start..f.end]).into_owned(),
                    f.quoted,
                )
            })
            .collect();
        (r, f)
    }

    #[test]
    fn fields_and_terminators() {
        let (r, f) = scan(b"a,b,c\nnext", false);
        assert_eq!(r, Ok(Scan::Complete { end: 5, next: 6 }));
        assert_eq!(f.len(), 3);
        let (r, f) = scan(b"a,,\r\n", false);
        assert_eq!(r, Ok(Scan::Complete { end: 3, next: 5 }));
        assert_eq!(
            f,
            vec![("a".into(), false), ("".into(), false), ("".into(), false)]
        );
        let (r, _) = scan(b"a,b", true);
        assert_eq!(r, Ok(Scan::Complete { end: 3, next: 3 }));
        let (r, _) = scan(b"a,b", false);
        assert_eq!(r, Ok(Scan::Incomplete));
        let (r, _) = scan(b"a,b\r", false);
        assert_eq!(r, Ok(Scan::Incomplete));
    }

    #[test]
    fn quoted_fields() {
        let (r, f) = scan(b"\"x,\"\"y\"\"\nz\",w\n", false);
        assert_eq!(r, Ok(Scan::Complete { end: 13, next: 14 }));
        assert_eq!(f[0], ("x,\"\"y\"\"\nz".into(), true));
        let mut out = String::new();
        unescape(&f[0].0, &mut out);
        assert_eq!(out, "x,\"y\"\nz");
        // A closing quote at the end of the data might be the first half of
        // a doubled quote.
        assert_eq!(scan(b"\"ab\"", false).0, Ok(Scan::Incomplete));
        assert_eq!(
            scan(b"\"ab\"", true).0,
            Ok(Scan::Complete { end: 4, next: 4 })
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(
            scan(b"a\"b\n", true).0,
            Err(ScanError::StrayQuote { field: 0 })
        );
        assert_eq!(
            scan(b"\"a\"b\n", true).0,
            Err(ScanError::AfterQuote { field: 0 })
        );
        assert_eq!(
            scan(b"x,\"abc", true).0,
            Err(ScanError::Unterminated { field: 1 })
        );
        assert_eq!(scan(b"a\rb\n", true).0, Err(ScanError::BareCr { field: 0 }));
        assert_eq!(scan(b"a,b\x00\n", true).0, Err(ScanError::Nul { field: 1 }));
        assert_eq!(
            scan(b"\"a\x00\"\n", true).0,
            Err(ScanError::Nul { field: 0 })
        );
        assert_eq!(
            scan(b"1,2,3,4,5,6,7,8,9\n", true).0,
            Err(ScanError::TooManyFields { fields: 9 })
        );
        let long = [b'x'; 65];
        assert_eq!(
            scan(&long, true).0,
            Err(ScanError::FieldTooLong { field: 0 })
        );
    }
}
