//! A bounded JSON tree for `config.json` and `metadata.json`.
//!
//! serde_json does the lexing (UTF-8, escapes, numbers); this module builds
//! the tree itself through a `DeserializeSeed` so that it can enforce, while
//! parsing and before allocating more: the nesting depth, the number of
//! values, and unique keys in every object. Duplicate keys matter because
//! Python's `json` keeps the last value while other readers keep the first:
//! a scanner and a loader that disagree on the document are a bypass.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::codes;

/// A parsed JSON value. Objects keep their keys in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// An integer that fits i64 or u64 (as i128 to hold both).
    Int(i128),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Int(i) => i64::try_from(*i).ok(),
            _ => None,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) | Json::Float(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }
}

/// Why a document was refused: a code, a message, and the position.
#[derive(Debug)]
pub(crate) struct JsonError {
    pub code: &'static str,
    pub message: String,
    pub line: usize,
    pub column: usize,
}

struct Budget {
    max_depth: usize,
    nodes_left: Cell<usize>,
    /// The code of the limit that stopped parsing, if one did.
    hit: Cell<Option<&'static str>>,
}

struct Seed<'b> {
    depth: usize,
    budget: &'b Budget,
}

impl<'b> Seed<'b> {
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let left = self.budget.nodes_left.get();
        if left == 0 {
            self.budget.hit.set(Some(codes::CONFIG_TOO_COMPLEX));
            return Err(E::custom("too many JSON values"));
        }
        self.budget.nodes_left.set(left - 1);
        Ok(())
    }

    fn child<E: de::Error>(&self) -> Result<Seed<'b>, E> {
        if self.depth >= self.budget.max_depth {
            self.budget.hit.set(Some(codes::CONFIG_TOO_DEEP));
            return Err(E::custom("JSON nests too deep"));
        }
        Ok(Seed {
            depth: self.depth + 1,
            budget: self.budget,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        self.count()?;
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        self.count()?;
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        self.count()?;
        Ok(Json::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        self.count()?;
        Ok(Json::Int(i128::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        self.count()?;
        Ok(Json::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        self.count()?;
        Ok(Json::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        self.count()?;
        Ok(Json::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        self.count()?;
        let mut out = Vec::new();
        loop {
            let child = self.child()?;
            match seq.next_element_seed(child)? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Json::Arr(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        self.count()?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            self.count()?;
            if !seen.insert(key.clone()) {
                self.budget.hit.set(Some(codes::DUPLICATE_KEY));
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let child = self.child()?;
            let value = map.next_value_seed(child)?;
            out.push((key, value));
        }
        Ok(Json::Obj(out))
    }
}

/// Parses `bytes` as one JSON document within the limits.
pub(crate) fn parse(bytes: &[u8], max_depth: usize, max_nodes: usize) -> Result<Json, JsonError> {
    let budget = Budget {
        max_depth,
        nodes_left: Cell::new(max_nodes),
        hit: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Seed {
        depth: 0,
        budget: &budget,
    };
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    result.map_err(|e| {
        let message = e.to_string();
        // serde_json's own recursion guard (128) is a depth limit too.
        let code = budget
            .hit
            .get()
            .unwrap_or(if message.contains("recursion limit") {
                codes::CONFIG_TOO_DEEP
            } else {
                codes::INVALID_JSON
            });
        JsonError {
            code,
            message,
            line: e.line(),
            column: e.column(),
        }
    })
}

/// Appends one reference token to an RFC 6901 JSON pointer.
pub(crate) fn push_pointer(base: &str, token: &str) -> String {
    let escaped = token.replace('~', "~0").replace('/', "~1");
    format!("{base}/{escaped}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse(br#"{"a": 1, "b": {"c": 1, "c": 2}}"#, 16, 100).unwrap_err();
        assert_eq!(e.code, codes::DUPLICATE_KEY);
        assert_eq!(e.line, 1);
    }

    #[test]
    fn depth_and_node_limits_hold() {
        let deep = format!("{}{}", "[".repeat(20), "]".repeat(20));
        assert_eq!(
            parse(deep.as_bytes(), 10, 1000).unwrap_err().code,
            codes::CONFIG_TOO_DEEP
        );
        assert!(parse(deep.as_bytes(), 30, 1000).is_ok());
        // Deeper than serde_json's own guard: still the depth code.
        let deeper = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert_eq!(
            parse(deeper.as_bytes(), 1000, 10_000).unwrap_err().code,
            codes::CONFIG_TOO_DEEP
        );
        let wide = format!("[{}]", vec!["1"; 50].join(","));
        assert_eq!(
            parse(wide.as_bytes(), 10, 20).unwrap_err().code,
            codes::CONFIG_TOO_COMPLEX
        );
    }

    #[test]
    fn values_parse() {
        let v = parse(
            br#"{"n": null, "i": -3, "u": 18446744073709551615, "f": 0.5, "s": "x", "a": [true]}"#,
            8,
            100,
        )
        .unwrap();
        assert_eq!(v.get("i").and_then(Json::as_i64), Some(-3));
        assert_eq!(v.get("u").and_then(Json::as_u64), Some(u64::MAX));
        assert_eq!(v.get("s").and_then(Json::as_str), Some("x"));
        assert!(parse(b"{} trailing", 8, 100).is_err());
        assert_eq!(
            parse(b"\xff", 8, 100).unwrap_err().code,
            codes::INVALID_JSON
        );
    }

    #[test]
    fn pointer_escapes() {
        assert_eq!(push_pointer("/a", "b/c~d"), "/a/b~1c~0d");
    }
}
