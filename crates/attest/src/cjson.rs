//! OLPC canonical JSON, byte-identical to securesystemslib's `encode_canonical`.
//!
//! in-toto layouts and links are signed over the canonical form of their
//! `signed` member. The rules, checked against securesystemslib 1.x:
//! - object keys sorted by code point (Rust `String` order is UTF-8 byte
//!   order, which is the same thing);
//! - in strings only `"` and `\` are escaped; every other character, control
//!   characters included, is written raw, with no Unicode normalisation;
//! - integers only: floats are refused, as securesystemslib refuses them;
//! - no whitespace.
//!
//! Verification must not lose information between the bytes that arrived and
//! the bytes that were signed, so this module also has its own lossless JSON
//! parser ([`parse`]): integers of any size are kept as their digits,
//! duplicate keys are refused (they are a parser-differential attack: two
//! tools would read two different documents), and nesting depth is bounded.

use crate::error::{Error, Result};

/// Nesting depth beyond which a document is refused. in-toto metadata is
/// four or five levels deep; this bound stops stack exhaustion.
pub const MAX_DEPTH: usize = 128;

/// A JSON value that keeps exactly what canonical JSON needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer, as its normalised decimal digits (optional leading `-`).
    Int(String),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, members in document order; keys are unique.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Canonical bytes of a `serde_json::Value`. Fails on floats.
pub fn encode_json(value: &serde_json::Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_serde(value, &mut out)?;
    Ok(out)
}

/// Canonical bytes of any serializable value. Fails on floats.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(value).map_err(|e| Error::malformed("document", e))?;
    encode_json(&value)
}

/// Canonical bytes of a losslessly parsed [`Value`].
pub fn encode_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_lossless(value, &mut out);
    out
}

/// Parse JSON text and return the canonical bytes of the value it holds.
pub fn canonicalize(json: &[u8]) -> Result<Vec<u8>> {
    Ok(encode_value(&parse(json)?))
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        // securesystemslib: string.replace("\\", "\\\\").replace('"', '\\"')
        if b == b'\\' || b == b'"' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn encode_serde(value: &serde_json::Value, out: &mut Vec<u8>) -> Result<()> {
    use serde_json::Value as J;
    match value {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(true) => out.extend_from_slice(b"true"),
        J::Bool(false) => out.extend_from_slice(b"false"),
        J::Number(n) => {
            if n.is_f64() {
                return Err(Error::CanonicalFloat(n.to_string()));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        J::String(s) => write_str(s, out),
        J::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_serde(item, out)?;
            }
            out.push(b']');
        }
        J::Object(map) => {
            let mut members: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                encode_serde(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn encode_lossless(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(digits) => out.extend_from_slice(digits.as_bytes()),
        Value::Str(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode_lossless(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<&(String, Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(b'{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                encode_lossless(v, out);
            }
            out.push(b'}');
        }
    }
}

/// Parse strict JSON (RFC 8259) into a lossless [`Value`].
///
/// Refused: floats and exponents, duplicate object keys, unpaired
/// surrogates, raw control characters inside strings (strict JSON, as
/// Python's `json.loads` also refuses them), nesting deeper than
/// [`MAX_DEPTH`], and trailing data.
pub fn parse(input: &[u8]) -> Result<Value> {
    let mut p = Parser { input, pos: 0 };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != input.len() {
        return Err(p.err("trailing data after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        Error::malformed("JSON", format!("{what} at byte {}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect_lit(&mut self, lit: &[u8]) -> Result<()> {
        let end = self.pos + lit.len();
        if self.input.get(self.pos..end) == Some(lit) {
            self.pos = end;
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            Some(b'n') => self.expect_lit(b"null").map(|()| Value::Null),
            Some(b't') => self.expect_lit(b"true").map(|()| Value::Bool(true)),
            Some(b'f') => self.expect_lit(b"false").map(|()| Value::Bool(false)),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.bump() {
                        Some(b',') => continue,
                        Some(b']') => return Ok(Value::Array(items)),
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut members: Vec<(String, Value)> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected an object key"));
                    }
                    let key = self.string()?;
                    if !seen.insert(key.clone()) {
                        return Err(self.err(&format!("duplicate object key {key:?}")));
                    }
                    self.skip_ws();
                    if self.bump() != Some(b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.skip_ws();
                    let v = self.value(depth + 1)?;
                    members.push((key, v));
                    self.skip_ws();
                    match self.bump() {
                        Some(b',') => continue,
                        Some(b'}') => return Ok(Value::Object(members)),
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        match self.bump() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            let text = String::from_utf8_lossy(self.input.get(start..).unwrap_or_default());
            let text: String = text.chars().take(32).collect();
            return Err(Error::CanonicalFloat(text));
        }
        let digits =
            std::str::from_utf8(self.input.get(digits_start..self.pos).unwrap_or_default())
                .map_err(|_| self.err("invalid number"))?;
        // Python's int("-0") is 0; keep the same normal form.
        let text = if negative && digits != "0" {
            format!("-{digits}")
        } else {
            digits.to_owned()
        };
        Ok(Value::Int(text))
    }

    fn hex4(&mut self) -> Result<u16> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let b = self
                .bump()
                .ok_or_else(|| self.err("truncated \\u escape"))?;
            let d = (b as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            v = (v << 4) | d as u16;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        // Caller checked the opening quote.
        self.pos += 1;
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let b = self.bump().ok_or_else(|| self.err("unterminated string"))?;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.bump().ok_or_else(|| self.err("unterminated escape"))?;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.bump() != Some(b'\\') || self.bump() != Some(b'u') {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                0x10000 + (((hi as u32) - 0xD800) << 10) + ((lo as u32) - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err("unpaired surrogate"));
                            } else {
                                hi as u32
                            };
                            char::from_u32(code).ok_or_else(|| self.err("invalid code point"))?
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                0x00..=0x1F => return Err(self.err("raw control character in string")),
                _ => buf.push(b),
            }
        }
        String::from_utf8(buf).map_err(|_| self.err("invalid UTF-8 in string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonicalize(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": [true, null] }"#),
            r#"{"a":[true,null],"b":1}"#
        );
    }

    #[test]
    fn control_characters_stay_raw_and_only_quote_and_backslash_are_escaped() {
        assert_eq!(
            canon(r#"["a\tb\n\u0000", "C:\\new", "q\"", "\u00e9"]"#),
            "[\"a\tb\n\u{0}\",\"C:\\\\new\",\"q\\\"\",\"é\"]"
        );
    }

    #[test]
    fn key_order_is_code_point_order_not_escaped_order() {
        // olpc-cjson gets this wrong: it sorts the escaped bytes.
        assert_eq!(canon(r#"{"a#":1,"a\"b":2}"#), r#"{"a\"b":2,"a#":1}"#);
    }

    #[test]
    fn floats_refused_big_ints_kept() {
        assert!(matches!(
            canonicalize(b"1.5"),
            Err(Error::CanonicalFloat(_))
        ));
        assert!(matches!(
            canonicalize(b"1e3"),
            Err(Error::CanonicalFloat(_))
        ));
        assert_eq!(
            canon("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(canon("-0"), "0");
    }

    #[test]
    fn hostile_inputs_refused() {
        for bad in [
            &br#"{"a":1,"a":2}"#[..],
            b"\"\\ud800\"",
            b"\"\x01\"",
            b"[1,]",
            b"01",
            b"\"\xff\"",
            b"{} x",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn serde_and_lossless_encoders_agree() {
        let doc = r#"{"z":[1,-2,"x\\y"],"a":{"k":"\t"}}"#;
        let via_serde = encode_json(&serde_json::from_str(doc).unwrap()).unwrap();
        assert_eq!(via_serde, canonicalize(doc.as_bytes()).unwrap());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::Bool),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<u64>().prop_map(serde_json::Value::from),
                any::<String>().prop_map(serde_json::Value::String),
            ];
            leaf.prop_recursive(4, 64, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                    prop::collection::btree_map(any::<String>(), inner, 0..6)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Both encoders give the same bytes, whatever the document, and
            /// the output does not depend on how the input was formatted.
            #[test]
            fn serde_and_lossless_paths_agree(v in json_value()) {
                let via_serde = encode_json(&v).unwrap();
                prop_assert_eq!(&via_serde, &canonicalize(&serde_json::to_vec(&v).unwrap()).unwrap());
                prop_assert_eq!(&via_serde, &canonicalize(&serde_json::to_vec_pretty(&v).unwrap()).unwrap());
            }

            /// Arbitrary bytes never panic the parser.
            #[test]
            fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = parse(&bytes);
            }
        }
    }
}
