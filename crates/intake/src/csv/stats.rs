//! Per-column accumulators: typed cell parsing and the statistics for the
//! dataset card, in one pass and in memory bounded by the limits.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use serde::Serialize;

use crate::definition::ColumnType;

/// A number as found in the data: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Number {
    /// From an `int` or `bool` column.
    Int(i64),
    /// From a `float` column.
    Float(f64),
}

/// A distinct-value count: exact up to the cap, then a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DistinctCount {
    /// Distinct non-missing values seen (at least this many when `capped`).
    pub count: u64,
    /// The cap ([`super::CsvLimits::max_distinct`]) was reached; the
    /// column has more than `count` distinct values.
    pub capped: bool,
}

/// One value and how many rows hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueCount {
    /// The value as written (or the class name).
    pub value: String,
    /// Rows holding it.
    pub count: u64,
}

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnStats {
    /// The column's name.
    pub name: String,
    /// Its declared type.
    #[serde(rename = "type")]
    pub column_type: &'static str,
    /// Empty cells (only possible in a nullable column).
    pub missing: u64,
    /// Non-empty cells.
    pub present: u64,
    /// Smallest value (numeric and bool columns).
    pub min: Option<Number>,
    /// Largest value (numeric and bool columns).
    pub max: Option<Number>,
    /// Mean (numeric and bool columns; for bool, the fraction `true`).
    pub mean: Option<f64>,
    /// Distinct non-missing values.
    pub distinct: DistinctCount,
    /// For category columns: the count of every declared value, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<ValueCount>>,
}

/// Why a cell was refused.
pub(super) enum CellError {
    /// Not a value of the declared type.
    Type,
    /// A category value that is not declared.
    Category,
}

/// A bounded set of value keys for the distinct count. Keys are exact for
/// numbers (their bit pattern) and a 64-bit keyed hash for text. Once the
/// cap is passed the set is dropped and the count frozen as a lower bound.
struct Distinct {
    set: Option<HashSet<u64, KeyedMix>>,
    cap: usize,
    frozen: u64,
}

impl Distinct {
    fn new(cap: usize) -> Self {
        Distinct {
            set: Some(HashSet::with_hasher(KeyedMix::new())),
            cap,
            frozen: 0,
        }
    }

    #[inline]
    fn add(&mut self, key: u64) {
        if let Some(set) = &mut self.set {
            if set.len() < self.cap {
                set.insert(key);
            } else if !set.contains(&key) {
                // One more than the cap: from here on the count is only a
                // lower bound, and the memory is given back.
                self.frozen = set.len() as u64;
                self.set = None;
            }
        }
    }

    fn result(&self) -> DistinctCount {
        match &self.set {
            Some(set) => DistinctCount {
                count: set.len() as u64,
                capped: false,
            },
            None => DistinctCount {
                count: self.frozen,
                capped: true,
            },
        }
    }
}

/// A fast keyed hash for 64- and 128-bit keys: a folded 64x64->128
/// multiply of the key mixed with a per-run random secret. Values in the
/// distinct sets are chosen by the uploader, so the table's hash must not
/// be predictable (a predictable one lets crafted values pile into one
/// bucket); the sets are also capped, which bounds the worst case anyway.
#[derive(Clone)]
pub(super) struct KeyedMix {
    k0: u64,
    k1: u64,
}

impl KeyedMix {
    pub fn new() -> Self {
        let r = RandomState::new();
        KeyedMix {
            k0: r.hash_one(1u64) | 1,
            k1: r.hash_one(2u64),
        }
    }
}

impl BuildHasher for KeyedMix {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher {
            k0: self.k0,
            h: self.k1,
        }
    }
}

/// The hasher [`KeyedMix`] builds.
pub(super) struct MixHasher {
    k0: u64,
    h: u64,
}

#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a).wrapping_mul(u128::from(b));
    (p as u64) ^ ((p >> 64) as u64)
}

impl std::hash::Hasher for MixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(chunk) {
                *d = *s;
            }
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.h = folded_mul(x ^ self.h, self.k0 ^ 0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

/// Neumaier-compensated sum, so the mean of a million floats keeps its
/// digits.
#[derive(Default)]
struct Sum {
    sum: f64,
    c: f64,
}

impl Sum {
    #[inline]
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.c += (self.sum - t) + x;
        } else {
            self.c += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn total(&self) -> f64 {
        self.sum + self.c
    }
}

enum Acc {
    Int {
        min: i64,
        max: i64,
        sum: i128,
        distinct: Distinct,
    },
    Float {
        min: f64,
        max: f64,
        sum: Sum,
        distinct: Distinct,
    },
    Bool {
        counts: [u64; 2],
    },
    Category {
        values: Vec<String>,
        index: Option<HashMap<String, u32>>,
        counts: Vec<u64>,
    },
    Text {
        hasher: RandomState,
        distinct: Distinct,
    },
}

/// One parsed cell, held until the whole row is known to be valid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Parsed {
    Missing,
    Float(f64),
    Int(i64),
    Bool(bool),
    /// Index into the category's values.
    Category(u32),
    /// Keyed hash of a string cell.
    Text(u64),
}

impl Parsed {
    /// The class index this cell stands for, if it is a class-like value.
    pub fn class_index(self) -> Option<i64> {
        match self {
            Parsed::Int(v) => Some(v),
            Parsed::Bool(b) => Some(i64::from(b)),
            Parsed::Category(i) => Some(i64::from(i)),
            _ => None,
        }
    }
}

/// One column's parser and statistics.
pub(super) struct ColumnAcc {
    name: String,
    column_type: &'static str,
    pub nullable: bool,
    missing: u64,
    present: u64,
    acc: Acc,
}

/// Above this many values a category lookup uses a hash map instead of a
/// linear scan.
const LINEAR_CATEGORY_MAX: usize = 16;

impl ColumnAcc {
    pub fn new(name: &str, t: &ColumnType, nullable: bool, max_distinct: usize) -> Self {
        let acc = match t {
            ColumnType::Int => Acc::Int {
                min: i64::MAX,
                max: i64::MIN,
                sum: 0,
                distinct: Distinct::new(max_distinct),
            },
            ColumnType::Float => Acc::Float {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                sum: Sum::default(),
                distinct: Distinct::new(max_distinct),
            },
            ColumnType::Bool => Acc::Bool { counts: [0; 2] },
            ColumnType::String => Acc::Text {
                hasher: RandomState::new(),
                distinct: Distinct::new(max_distinct),
            },
            ColumnType::Category { values } => Acc::Category {
                index: (values.len() > LINEAR_CATEGORY_MAX).then(|| {
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.clone(), u32::try_from(i).unwrap_or(u32::MAX)))
                        .collect()
                }),
                counts: vec![0; values.len()],
                values: values.clone(),
            },
        };
        ColumnAcc {
            name: name.to_owned(),
            column_type: t.name(),
            nullable,
            missing: 0,
            present: 0,
            acc,
        }
    }

    /// Whether the column holds numbers the fused fast path parses in place.
    #[inline]
    pub fn is_numeric(&self) -> bool {
        matches!(self.acc, Acc::Int { .. } | Acc::Float { .. })
    }

    /// Parse a non-empty cell.
    #[inline]
    pub fn parse(&self, cell: &str) -> Result<Parsed, CellError> {
        Ok(match &self.acc {
            Acc::Float { .. } => {
                // fast-float2 is exact (Eisel-Lemire with a big-number
                // fallback) and takes the whole cell or fails; like std it
                // also reads "inf", "nan" and overflows to infinity, which
                // the finiteness check refuses.
                let v: f64 = fast_float2::parse(cell).map_err(|_| CellError::Type)?;
                if !v.is_finite() {
                    return Err(CellError::Type);
                }
                Parsed::Float(v)
            }
            Acc::Int { .. } => Parsed::Int(parse_int(cell.as_bytes()).ok_or(CellError::Type)?),
            Acc::Bool { .. } => Parsed::Bool(parse_bool(cell).ok_or(CellError::Type)?),
            Acc::Category { values, index, .. } => {
                let i = match index {
                    Some(map) => map.get(cell).copied(),
                    None => values
                        .iter()
                        .position(|v| v == cell)
                        .and_then(|i| u32::try_from(i).ok()),
                }
                .ok_or(CellError::Category)?;
                Parsed::Category(i)
            }
            Acc::Text { hasher, .. } => Parsed::Text(hasher.hash_one(cell)),
        })
    }

    /// Parse a number at the start of `bytes` (the rest of a line) and
    /// return it with the bytes it took; `None` when no number starts
    /// there. Only for numeric columns; the caller checks what follows.
    #[inline]
    pub fn parse_prefix(&self, bytes: &[u8]) -> Option<(Parsed, usize)> {
        match &self.acc {
            Acc::Float { .. } => {
                let (v, n) = fast_float2::parse_partial::<f64, _>(bytes).ok()?;
                v.is_finite().then_some((Parsed::Float(v), n))
            }
            Acc::Int { .. } => {
                let n = int_prefix_len(bytes);
                let v = parse_int(bytes.get(..n)?)?;
                Some((Parsed::Int(v), n))
            }
            _ => None,
        }
    }

    /// Count a parsed cell.
    #[inline]
    pub fn commit(&mut self, p: Parsed) {
        if p == Parsed::Missing {
            self.missing = self.missing.saturating_add(1);
            return;
        }
        self.present = self.present.saturating_add(1);
        match (&mut self.acc, p) {
            (
                Acc::Float {
                    min,
                    max,
                    sum,
                    distinct,
                },
                Parsed::Float(v),
            ) => {
                *min = min.min(v);
                *max = max.max(v);
                sum.add(v);
                // +0.0 turns -0.0 into 0.0: one value, one key.
                distinct.add((v + 0.0).to_bits());
            }
            (
                Acc::Int {
                    min,
                    max,
                    sum,
                    distinct,
                },
                Parsed::Int(v),
            ) => {
                *min = (*min).min(v);
                *max = (*max).max(v);
                *sum = sum.saturating_add(i128::from(v));
                distinct.add(v as u64);
            }
            (Acc::Bool { counts }, Parsed::Bool(b)) => {
                if let Some(c) = counts.get_mut(usize::from(b)) {
                    *c = c.saturating_add(1);
                }
            }
            (Acc::Category { counts, .. }, Parsed::Category(i)) => {
                if let Some(c) = counts.get_mut(i as usize) {
                    *c = c.saturating_add(1);
                }
            }
            (Acc::Text { distinct, .. }, Parsed::Text(h)) => distinct.add(h),
            // A parsed value always comes from this column's own parser.
            _ => {}
        }
    }

    pub fn stats(&self) -> ColumnStats {
        let n = self.present;
        let (min, max, mean, distinct, values) = match &self.acc {
            Acc::Int {
                min,
                max,
                sum,
                distinct,
            } => (
                (n > 0).then_some(Number::Int(*min)),
                (n > 0).then_some(Number::Int(*max)),
                (n > 0).then(|| *sum as f64 / n as f64),
                distinct.result(),
                None,
            ),
            Acc::Float {
                min,
                max,
                sum,
                distinct,
            } => (
                (n > 0).then_some(Number::Float(*min)),
                (n > 0).then_some(Number::Float(*max)),
                (n > 0)
                    .then(|| sum.total() / n as f64)
                    .filter(|m| m.is_finite()),
                distinct.result(),
                None,
            ),
            Acc::Bool { counts: [f, t] } => (
                (n > 0).then_some(Number::Int(if *f > 0 { 0 } else { 1 })),
                (n > 0).then_some(Number::Int(if *t > 0 { 1 } else { 0 })),
                (n > 0).then(|| *t as f64 / n as f64),
                DistinctCount {
                    count: u64::from(*f > 0) + u64::from(*t > 0),
                    capped: false,
                },
                None,
            ),
            Acc::Category { values, counts, .. } => (
                None,
                None,
                None,
                DistinctCount {
                    count: counts.iter().filter(|&&c| c > 0).count() as u64,
                    capped: false,
                },
                Some(
                    values
                        .iter()
                        .zip(counts)
                        .map(|(v, &count)| ValueCount {
                            value: v.clone(),
                            count,
                        })
                        .collect(),
                ),
            ),
            Acc::Text { distinct, .. } => (None, None, None, distinct.result(), None),
        };
        ColumnStats {
            name: self.name.clone(),
            column_type: self.column_type,
            missing: self.missing,
            present: self.present,
            min,
            max,
            mean,
            distinct,
            values,
        }
    }
}

/// Length of the `[+-]?[0-9]*` prefix of `b`.
#[inline]
fn int_prefix_len(b: &[u8]) -> usize {
    let sign = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = b
        .get(sign..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    sign.saturating_add(digits)
}

/// A decimal `i64`: optional sign, ASCII digits, no overflow.
#[inline]
pub(super) fn parse_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so i64::MIN parses.
    let mut v: i64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if neg { Some(v) } else { v.checked_neg() }
}

/// The bool spellings accepted: `true`/`false` in lower, Title or UPPER
/// case, and `1`/`0`.
#[inline]
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "1" => Some(true),
        "false" | "False" | "FALSE" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"+7"), Some(7));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"",
            b"-",
            b"1.0",
            b" 1",
            b"1e3",
            b"0x10",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn distinct_caps_and_frees() {
        let mut d = Distinct::new(3);
        for k in [1, 2, 2, 3, 3] {
            d.add(k);
        }
        assert_eq!(
            d.result(),
            DistinctCount {
                count: 3,
                capped: false
            }
        );
        d.add(3);
        assert!(d.set.is_some());
        d.add(4);
        assert_eq!(
            d.result(),
            DistinctCount {
                count: 3,
                capped: true
            }
        );
        assert!(d.set.is_none());
    }

    #[test]
    fn compensated_sum() {
        let mut s = Sum::default();
        s.add(1e16);
        for _ in 0..10 {
            s.add(1.0);
        }
        s.add(-1e16);
        assert_eq!(s.total(), 10.0);
    }
}
