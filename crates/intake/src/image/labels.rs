//! The labels CSV of a flat image dataset: file name → class, parsed
//! strictly.
//!
//! The file is small and read whole (bounded by the caller's limit). The
//! dialect is RFC 4180: comma separators, `"`-quoted fields with `""` for a
//! quote, LF or CRLF line ends, an optional final line end and an optional
//! UTF-8 byte-order mark. Anything else (bare CR, quotes inside unquoted
//! fields, control characters, blank lines, ragged rows) is refused.

use super::codes;
use crate::error::Result;
use crate::finding::{Finding, Location};

/// One data row: the file (archive member path), its label, and its
/// 1-based row number in the file (the header is row 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelRow {
    pub file: String,
    pub label: String,
    pub row: u64,
}

fn at(row: u64, column: Option<usize>, name: Option<&str>) -> Location {
    Location::Csv {
        row,
        column,
        name: name.map(str::to_owned),
    }
}

fn bad<T>(member: &str, row: u64, message: impl std::fmt::Display) -> Result<T> {
    Err(Finding::new(
        codes::BAD_LABELS,
        format!("labels file {member:?}: {message}"),
        at(row, None, None),
    )
    .into())
}

/// Splits `text` into records of fields.
fn records(text: &str, member: &str, max_rows: u64) -> Result<Vec<Vec<String>>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut row: u64 = 1;
    let mut chars = text.chars().peekable();
    // Whether the current field was quoted, and whether the record has
    // started (so that a final line end does not make an empty record).
    let mut quoted = false;
    let mut started = false;
    while let Some(c) = chars.next() {
        match c {
            // A quote opens a quoted field only as the field's first character.
            '"' if field.is_empty() && !quoted => {
                quoted = true;
                started = true;
                // Quoted field body.
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) if c.is_control() && c != '\n' && c != '\r' => {
                            return bad(member, row, "a control character in a field");
                        }
                        Some('\n') | Some('\r') => {
                            return bad(member, row, "a line break inside a quoted field");
                        }
                        Some(c) => field.push(c),
                        None => return bad(member, row, "an unterminated quoted field"),
                    }
                }
                match chars.peek() {
                    None | Some(',') | Some('\n') | Some('\r') => {}
                    Some(_) => return bad(member, row, "text after a closing quote"),
                }
            }
            '"' => return bad(member, row, "a quote inside an unquoted field"),
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
                started = true;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.next() != Some('\n') {
                    return bad(member, row, "a carriage return without a line feed");
                }
                if !started && field.is_empty() {
                    return bad(member, row, "a blank line");
                }
                fields.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut fields));
                quoted = false;
                started = false;
                row += 1;
                if row > max_rows.saturating_add(1) {
                    return bad(member, row, format!("more than {max_rows} rows"));
                }
            }
            c if c.is_control() => {
                return bad(member, row, "a control character in a field");
            }
            c => {
                if quoted {
                    return bad(member, row, "text after a closing quote");
                }
                field.push(c);
                started = true;
            }
        }
    }
    if started || !field.is_empty() {
        fields.push(field);
        rows.push(fields);
    }
    Ok(rows)
}

/// Parses the labels CSV. The header must consist of exactly the two named
/// columns (in either order); every row must have a non-empty file and
/// label.
pub(crate) fn parse_labels(
    bytes: &[u8],
    member: &str,
    file_column: &str,
    label_column: &str,
    max_rows: u64,
) -> Result<Vec<LabelRow>> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let prefix = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let row = 1 + prefix.iter().filter(|&&b| b == b'\n').count() as u64;
            return bad(member, row, "not valid UTF-8");
        }
    };
    let mut rows = records(text, member, max_rows)?.into_iter();
    let Some(header) = rows.next() else {
        return bad(member, 1, "the file is empty");
    };
    let (file_at, label_at) = match header.as_slice() {
        [a, b] if a == file_column && b == label_column => (0, 1),
        [a, b] if a == label_column && b == file_column => (1, 0),
        _ => {
            return bad(
                member,
                1,
                format!(
                    "the header must be exactly the columns {file_column:?} and {label_column:?}, found {header:?}"
                ),
            );
        }
    };
    let mut out = Vec::new();
    for (i, fields) in rows.enumerate() {
        let row = i as u64 + 2;
        if fields.len() != 2 {
            return bad(
                member,
                row,
                format!("the row has {} fields; the header has 2", fields.len()),
            );
        }
        let mut it = fields.into_iter();
        let (Some(first), Some(second)) = (it.next(), it.next()) else {
            return bad(member, row, "the row has fewer than 2 fields");
        };
        let (file, label) = if file_at == 0 {
            (first, second)
        } else {
            (second, first)
        };
        for (value, column, at_col) in [
            (&file, file_column, file_at),
            (&label, label_column, label_at),
        ] {
            if value.is_empty() {
                return Err(Finding::new(
                    codes::BAD_LABELS,
                    format!("labels file {member:?}: empty value"),
                    at(row, Some(at_col + 1), Some(column)),
                )
                .into());
            }
        }
        out.push(LabelRow { file, label, row });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<LabelRow>> {
        parse_labels(text.as_bytes(), "labels.csv", "file", "label", 100)
    }

    #[test]
    fn accepts_rfc4180() {
        let rows = parse("\u{feff}file,label\r\na.png,cat\n\"b,\"\"x\"\".png\",dog\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].file, "b,\"x\".png");
        assert_eq!(rows[1].label, "dog");
        assert_eq!(rows[1].row, 3);
        let swapped = parse("label,file\ncat,a.png").unwrap();
        assert_eq!(swapped[0].file, "a.png");
        assert_eq!(swapped[0].label, "cat");
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "",
            "file\na.png\n",
            "file,label,extra\na.png,cat,x\n",
            "name,label\na.png,cat\n",
            "file,label\na.png,cat,more\n",
            "file,label\na.png\n",
            "file,label\n\na.png,cat\n",
            "file,label\na.png,cat\rb.png,dog\n",
            "file,label\na\"b.png,cat\n",
            "file,label\n\"a.png\"x,cat\n",
            "file,label\n\"a.png,cat\n",
            "file,label\na\u{0}.png,cat\n",
            "file,label\na.png,\n",
            "file,label\n,cat\n",
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.code(), codes::BAD_LABELS, "{text:?}");
        }
        let not_utf8 = parse_labels(b"file,label\na\xff,cat\n", "l.csv", "file", "label", 10);
        assert_eq!(not_utf8.unwrap_err().code(), codes::BAD_LABELS);
        let mut many = "file,label\n".to_owned();
        for i in 0..101 {
            many.push_str(&format!("{i}.png,cat\n"));
        }
        assert_eq!(parse(&many).unwrap_err().code(), codes::BAD_LABELS);
    }
}
