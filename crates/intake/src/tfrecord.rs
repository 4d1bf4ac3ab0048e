//! TFRecord datasets: record framing, checksums and `tf.train.Example`
//! contents, checked against the dataset definition.
//!
//! Where it sits: a TFRecord upload (one file, or several shards fed to one
//! [`TfrecordValidator`]) is read here before the trainer sees it. Every
//! record's framing is checked:
//!
//! ```text
//! u64   length        (little-endian)
//! u32   masked CRC-32C of the 8 length bytes
//! [u8]  data          (length bytes: a serialized tf.train.Example)
//! u32   masked CRC-32C of data
//! masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8
//! ```
//!
//! then each payload is parsed with a bounded protobuf reader
//! ([`proto`]) and its features, dtypes and element counts compared with
//! the [`TfrecordSpec`]. The result is a [`TfrecordReport`] for the dataset
//! card. Policy and codes: `docs/intake-archives.md` (TFRecord section).

mod proto;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufReader, Read};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::finding::{Finding, Location};
use proto::{ExampleError, Kind, Value};

/// Stable codes of every rejection this module makes.
pub mod codes {
    /// The specification itself is unusable.
    pub const BAD_SPEC: &str = "tfrecord.bad_spec";
    /// The file ends inside a record.
    pub const TRUNCATED: &str = "tfrecord.truncated";
    /// A length field's masked CRC-32C does not match.
    pub const LENGTH_CRC: &str = "tfrecord.length_crc";
    /// A payload's masked CRC-32C does not match.
    pub const DATA_CRC: &str = "tfrecord.data_crc";
    /// The file is GZIP- or ZLIB-compressed TFRecord.
    pub const COMPRESSED: &str = "tfrecord.compressed";
    /// A record is larger than the limit.
    pub const RECORD_TOO_LARGE: &str = "tfrecord.record_too_large";
    /// More records than the limit.
    pub const TOO_MANY_RECORDS: &str = "tfrecord.too_many_records";
    /// More bytes than the limit.
    pub const TOTAL_TOO_LARGE: &str = "tfrecord.total_too_large";
    /// No records at all.
    pub const EMPTY: &str = "tfrecord.empty";
    /// A payload that is not a well-formed `tf.train.Example` within the
    /// allow-list.
    pub const BAD_EXAMPLE: &str = "tfrecord.bad_example";
    /// A feature the definition does not declare.
    pub const UNKNOWN_FEATURE: &str = "tfrecord.unknown_feature";
    /// A declared feature absent from a record.
    pub const MISSING_FEATURE: &str = "tfrecord.missing_feature";
    /// A feature given twice in one record.
    pub const DUPLICATE_FEATURE: &str = "tfrecord.duplicate_feature";
    /// A feature holding another list type than its declared dtype.
    pub const DTYPE_MISMATCH: &str = "tfrecord.dtype_mismatch";
    /// A feature with another element count than its declared shape.
    pub const SHAPE_MISMATCH: &str = "tfrecord.shape_mismatch";
    /// A label outside the declared classes.
    pub const BAD_LABEL: &str = "tfrecord.bad_label";
}

/// A feature's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    /// `Int64List` (`tf.int64`).
    Int64,
    /// `FloatList` (`tf.float32`).
    Float32,
    /// `BytesList` (`tf.string`).
    Bytes,
}

impl Dtype {
    fn kind(self) -> Kind {
        match self {
            Dtype::Int64 => Kind::Int64,
            Dtype::Float32 => Kind::Float,
            Dtype::Bytes => Kind::Bytes,
        }
    }

    fn list_name(kind: Kind) -> &'static str {
        match kind {
            Kind::Int64 => "int64_list",
            Kind::Float => "float_list",
            Kind::Bytes => "bytes_list",
        }
    }
}

/// One declared feature: a fixed-length feature in TensorFlow's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Feature key in the `Example`.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape; the record must hold exactly the product of the dimensions
    /// (1 for `[]`, a scalar). Dimensions must be positive.
    pub shape: Vec<usize>,
}

/// The label: one of the declared features, with optional class names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSpec {
    /// Name of a feature in [`TfrecordSpec::features`].
    pub feature: String,
    /// Class names. With an `int64` label, value `i` means `classes[i]`;
    /// with a `bytes` label, the value must be one of the names (UTF-8).
    /// The label feature must then hold exactly one element.
    pub classes: Option<Vec<String>>,
}

/// What the dataset definition declares about a TFRecord dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfrecordSpec {
    /// Every feature a record must hold, and nothing else.
    pub features: Vec<FeatureSpec>,
    /// The label, if any.
    pub label: Option<LabelSpec>,
}

/// Limits for TFRecord files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfrecordLimits {
    /// Most records over all files.
    pub max_records: u64,
    /// Largest payload; checked (after its CRC) before it is allocated.
    pub max_record_bytes: u64,
    /// Most bytes over all files, framing included.
    pub max_total_bytes: u64,
}

impl Default for TfrecordLimits {
    /// Production limits.
    fn default() -> Self {
        TfrecordLimits {
            max_records: 100_000_000,
            max_record_bytes: 64 << 20,
            max_total_bytes: 64 << 30,
        }
    }
}

impl TfrecordLimits {
    /// Small limits for tests and fuzzing.
    pub fn for_testing() -> Self {
        TfrecordLimits {
            max_records: 1000,
            max_record_bytes: 64 << 10,
            max_total_bytes: 1 << 20,
        }
    }
}

/// Per-feature statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "dtype", rename_all = "snake_case")]
pub enum FeatureStats {
    /// Over all elements of an `int64` feature.
    Int64 {
        /// Smallest element.
        min: Option<i64>,
        /// Largest element.
        max: Option<i64>,
    },
    /// Over all elements of a `float32` feature.
    Float32 {
        /// Smallest finite element.
        min: Option<f32>,
        /// Largest finite element.
        max: Option<f32>,
        /// NaN and infinite elements.
        non_finite: u64,
    },
    /// Over all elements of a `bytes` feature.
    Bytes {
        /// Shortest element in bytes.
        min_len: Option<u64>,
        /// Longest element in bytes.
        max_len: Option<u64>,
        /// Bytes over all elements.
        total_bytes: u64,
    },
}

impl FeatureStats {
    fn new(dtype: Dtype) -> Self {
        match dtype {
            Dtype::Int64 => FeatureStats::Int64 {
                min: None,
                max: None,
            },
            Dtype::Float32 => FeatureStats::Float32 {
                min: None,
                max: None,
                non_finite: 0,
            },
            Dtype::Bytes => FeatureStats::Bytes {
                min_len: None,
                max_len: None,
                total_bytes: 0,
            },
        }
    }

    fn add(&mut self, v: Value<'_>) {
        fn lo<T: PartialOrd + Copy>(slot: &mut Option<T>, v: T) {
            if slot.is_none_or(|m| v < m) {
                *slot = Some(v);
            }
        }
        fn hi<T: PartialOrd + Copy>(slot: &mut Option<T>, v: T) {
            if slot.is_none_or(|m| v > m) {
                *slot = Some(v);
            }
        }
        match (self, v) {
            (FeatureStats::Int64 { min, max }, Value::Int64(x)) => {
                lo(min, x);
                hi(max, x);
            }
            (
                FeatureStats::Float32 {
                    min,
                    max,
                    non_finite,
                },
                Value::Float(x),
            ) => {
                if x.is_finite() {
                    lo(min, x);
                    hi(max, x);
                } else {
                    *non_finite += 1;
                }
            }
            (
                FeatureStats::Bytes {
                    min_len,
                    max_len,
                    total_bytes,
                },
                Value::Bytes(b),
            ) => {
                let n = b.len() as u64;
                lo(min_len, n);
                hi(max_len, n);
                *total_bytes += n;
            }
            // Dtypes are checked before values are added.
            _ => {}
        }
    }
}

/// One feature in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureReport {
    /// Feature key.
    pub name: String,
    /// Declared shape.
    pub shape: Vec<usize>,
    /// Statistics (tagged with the dtype).
    pub stats: FeatureStats,
}

/// Statistics of an accepted TFRecord dataset, for the dataset card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TfrecordReport {
    /// Records over all files.
    pub records: u64,
    /// Bytes over all files, framing included.
    pub bytes: u64,
    /// Files (shards) read.
    pub files: u64,
    /// Per-feature statistics, in declaration order.
    pub features: Vec<FeatureReport>,
    /// Records per class, when the label has class names.
    pub class_balance: Option<BTreeMap<String, u64>>,
}

/// Masked CRC-32C as TensorFlow's `crc32c::Mask`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

fn reject<T>(code: &'static str, message: impl Into<String>, location: Location) -> Result<T> {
    Err(Finding::new(code, message, location).into())
}

/// How the label's classes are looked up.
#[derive(Debug)]
enum LabelClasses {
    None,
    ByIndex(usize),
    ByName(HashMap<Vec<u8>, usize>),
}

/// Validates TFRecord files (shards) against one spec, accumulating
/// statistics and limits across them.
#[derive(Debug)]
pub struct TfrecordValidator {
    features: Vec<FeatureSpec>,
    index: HashMap<Vec<u8>, usize>,
    expected: Vec<u64>,
    stats: Vec<FeatureStats>,
    label: Option<usize>,
    classes: LabelClasses,
    class_names: Vec<String>,
    class_counts: Vec<u64>,
    limits: TfrecordLimits,
    records: u64,
    bytes: u64,
    files: u64,
    seen: Vec<bool>,
}

impl TfrecordValidator {
    /// A validator for `spec`; refuses an unusable spec with
    /// [`codes::BAD_SPEC`].
    pub fn new(spec: &TfrecordSpec, limits: &TfrecordLimits) -> Result<Self> {
        let bad = |m: String| reject(codes::BAD_SPEC, m, Location::Input);
        if spec.features.is_empty() {
            return bad("the definition declares no features".to_owned());
        }
        let mut index = HashMap::new();
        let mut expected = Vec::new();
        for (i, f) in spec.features.iter().enumerate() {
            if f.name.is_empty() {
                return bad("a feature has an empty name".to_owned());
            }
            if index.insert(f.name.as_bytes().to_vec(), i).is_some() {
                return bad(format!("feature {:?} is declared twice", f.name));
            }
            let mut n: u64 = 1;
            for &d in &f.shape {
                if d == 0 {
                    return bad(format!("feature {:?} has a zero dimension", f.name));
                }
                n = n
                    .checked_mul(d as u64)
                    .filter(|&n| n <= limits.max_record_bytes)
                    .ok_or_else(|| {
                        Error::from(Finding::new(
                            codes::BAD_SPEC,
                            format!(
                                "feature {:?} has more elements than a record can hold",
                                f.name
                            ),
                            Location::Input,
                        ))
                    })?;
            }
            expected.push(n);
        }
        let mut label = None;
        let mut classes = LabelClasses::None;
        let mut class_names = Vec::new();
        if let Some(l) = &spec.label {
            let Some(&at) = index.get(l.feature.as_bytes()) else {
                return bad(format!(
                    "the label {:?} is not a declared feature",
                    l.feature
                ));
            };
            label = Some(at);
            if let Some(names) = &l.classes {
                let dtype = spec.features.get(at).map(|f| f.dtype);
                if names.is_empty() {
                    return bad("the label declares an empty class list".to_owned());
                }
                let unique: HashSet<&String> = names.iter().collect();
                if unique.len() != names.len() {
                    return bad("the label's class names repeat".to_owned());
                }
                if expected.get(at) != Some(&1) {
                    return bad("a label with classes must have shape [] or [1]".to_owned());
                }
                classes = match dtype {
                    Some(Dtype::Int64) => LabelClasses::ByIndex(names.len()),
                    Some(Dtype::Bytes) => LabelClasses::ByName(
                        names
                            .iter()
                            .enumerate()
                            .map(|(i, n)| (n.as_bytes().to_vec(), i))
                            .collect(),
                    ),
                    _ => return bad("a label with classes must be int64 or bytes".to_owned()),
                };
                class_names = names.clone();
            }
        }
        Ok(TfrecordValidator {
            stats: spec
                .features
                .iter()
                .map(|f| FeatureStats::new(f.dtype))
                .collect(),
            seen: vec![false; spec.features.len()],
            class_counts: vec![0; class_names.len()],
            features: spec.features.clone(),
            index,
            expected,
            label,
            classes,
            class_names,
            limits: limits.clone(),
            records: 0,
            bytes: 0,
            files: 0,
        })
    }

    /// Reads and checks every record of one file. Offsets in findings are
    /// relative to this file; record indexes count over all files.
    pub fn read<R: Read>(&mut self, reader: R) -> Result<()> {
        let mut r = BufReader::with_capacity(64 << 10, reader);
        let mut buf: Vec<u8> = Vec::new();
        let mut offset: u64 = 0;
        self.files += 1;
        loop {
            let at = Location::Record {
                index: self.records,
                offset,
            };
            let mut head = [0u8; 12];
            match read_full(&mut r, &mut head)? {
                0 => return Ok(()),
                12 => {}
                n => {
                    return reject(
                        codes::TRUNCATED,
                        format!("the file ends {n} bytes into a record header"),
                        at,
                    );
                }
            }
            let (len_bytes, crc_bytes) = head.split_at(8);
            let mut len_arr = [0u8; 8];
            len_arr.copy_from_slice(len_bytes);
            let mut crc_arr = [0u8; 4];
            crc_arr.copy_from_slice(crc_bytes);
            // Stops a corrupted or forged length from driving the reads and
            // allocation below: it must be checksummed before it is used.
            if masked_crc32c(len_bytes) != u32::from_le_bytes(crc_arr) {
                let compressed = offset == 0
                    && (head.starts_with(&[0x1f, 0x8b])
                        || matches!(head, [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..]));
                if compressed {
                    return reject(
                        codes::COMPRESSED,
                        "the file is a compressed TFRecord (GZIP or ZLIB); upload it uncompressed",
                        at,
                    );
                }
                return reject(
                    codes::LENGTH_CRC,
                    "the record's length does not match its checksum",
                    at,
                );
            }
            let len = u64::from_le_bytes(len_arr);
            if len > self.limits.max_record_bytes {
                return reject(
                    codes::RECORD_TOO_LARGE,
                    format!(
                        "the record is {len} bytes; the limit is {}",
                        self.limits.max_record_bytes
                    ),
                    at,
                );
            }
            if self.records >= self.limits.max_records {
                return reject(
                    codes::TOO_MANY_RECORDS,
                    format!("more than {} records", self.limits.max_records),
                    at,
                );
            }
            let framed = 16 + len;
            self.bytes = self.bytes.saturating_add(framed);
            if self.bytes > self.limits.max_total_bytes {
                return reject(
                    codes::TOTAL_TOO_LARGE,
                    format!("more than {} bytes", self.limits.max_total_bytes),
                    at,
                );
            }
            // Bounded by max_record_bytes, checked above.
            buf.resize(usize::try_from(len).unwrap_or(0), 0);
            let mut crc = [0u8; 4];
            let got = read_full(&mut r, &mut buf)?;
            let got_crc = if got == buf.len() {
                read_full(&mut r, &mut crc)?
            } else {
                0
            };
            if got != buf.len() || got_crc != 4 {
                return reject(
                    codes::TRUNCATED,
                    format!("the file ends inside a {len}-byte record"),
                    at,
                );
            }
            if masked_crc32c(&buf) != u32::from_le_bytes(crc) {
                return reject(
                    codes::DATA_CRC,
                    "the record's data does not match its checksum",
                    at,
                );
            }
            self.check_example(&buf, &at)?;
            self.records += 1;
            offset += framed;
        }
    }

    /// Checks one `tf.train.Example` against the spec.
    fn check_example(&mut self, data: &[u8], at: &Location) -> Result<()> {
        self.seen.fill(false);
        let mut label_value: Option<Value<'_>> = None;
        let label = self.label;
        let result = proto::parse_example(data, |name, kind, list| -> Result<()> {
            // Allow-list of features: the definition's and nothing else.
            let Some(&i) = self.index.get(name.as_bytes()) else {
                return reject(
                    codes::UNKNOWN_FEATURE,
                    format!("feature {name:?} is not declared in the definition"),
                    at.clone(),
                );
            };
            let (Some(spec), Some(seen), Some(stats), Some(&expected)) = (
                self.features.get(i),
                self.seen.get_mut(i),
                self.stats.get_mut(i),
                self.expected.get(i),
            ) else {
                return Ok(());
            };
            // Map keys are unique in protobuf; a repeat means readers
            // disagree on the value (last one wins in most of them).
            if *seen {
                return reject(
                    codes::DUPLICATE_FEATURE,
                    format!("feature {name:?} appears twice in the record"),
                    at.clone(),
                );
            }
            *seen = true;
            if spec.dtype.kind() != kind {
                return reject(
                    codes::DTYPE_MISMATCH,
                    format!(
                        "feature {name:?} holds a {}; the definition declares {}",
                        Dtype::list_name(kind),
                        Dtype::list_name(spec.dtype.kind())
                    ),
                    at.clone(),
                );
            }
            let is_label = label == Some(i);
            let count = proto::for_each_value(kind, list, |v| {
                stats.add(v);
                if is_label && label_value.is_none() {
                    label_value = Some(v);
                }
            })
            .map_err(|m| Error::from(Finding::new(codes::BAD_EXAMPLE, m, at.clone())))?;
            if count != expected {
                return reject(
                    codes::SHAPE_MISMATCH,
                    format!(
                        "feature {name:?} holds {count} elements; its shape {:?} needs {expected}",
                        spec.shape
                    ),
                    at.clone(),
                );
            }
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(ExampleError::Proto(m)) => {
                return reject(
                    codes::BAD_EXAMPLE,
                    format!("the record is not a valid tf.train.Example: {m}"),
                    at.clone(),
                );
            }
            Err(ExampleError::Visit(e)) => return Err(e),
        }
        if let Some(missing) = self
            .seen
            .iter()
            .position(|s| !s)
            .and_then(|i| self.features.get(i))
        {
            return reject(
                codes::MISSING_FEATURE,
                format!("the record lacks feature {:?}", missing.name),
                at.clone(),
            );
        }
        let class = match (&self.classes, label_value) {
            (LabelClasses::None, _) => return Ok(()),
            (LabelClasses::ByIndex(n), Some(Value::Int64(v))) => {
                usize::try_from(v).ok().filter(|v| v < n).ok_or_else(|| {
                    Error::from(Finding::new(
                        codes::BAD_LABEL,
                        format!("label {v} is outside the {n} declared classes (0..{n})"),
                        at.clone(),
                    ))
                })?
            }
            (LabelClasses::ByName(names), Some(Value::Bytes(b))) => {
                names.get(b).copied().ok_or_else(|| {
                    Error::from(Finding::new(
                        codes::BAD_LABEL,
                        format!(
                            "label {:?} is not a declared class",
                            String::from_utf8_lossy(b)
                                .chars()
                                .take(100)
                                .collect::<String>()
                        ),
                        at.clone(),
                    ))
                })?
            }
            _ => {
                return reject(
                    codes::BAD_LABEL,
                    "the record has no usable label",
                    at.clone(),
                );
            }
        };
        if let Some(c) = self.class_counts.get_mut(class) {
            *c += 1;
        }
        Ok(())
    }

    /// The report over all files read; [`codes::EMPTY`] if there were no
    /// records.
    pub fn finish(self) -> Result<TfrecordReport> {
        if self.records == 0 {
            return reject(
                codes::EMPTY,
                "the dataset holds no records",
                Location::Input,
            );
        }
        let class_balance = (!self.class_names.is_empty()).then(|| {
            self.class_names
                .iter()
                .cloned()
                .zip(self.class_counts.iter().copied())
                .collect()
        });
        Ok(TfrecordReport {
            records: self.records,
            bytes: self.bytes,
            files: self.files,
            features: self
                .features
                .into_iter()
                .zip(self.stats)
                .map(|(f, stats)| FeatureReport {
                    name: f.name,
                    shape: f.shape,
                    stats,
                })
                .collect(),
            class_balance,
        })
    }
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(rest) = buf.get_mut(n..) else { break };
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    path: "<tfrecord>".into(),
                    source,
                });
            }
        }
    }
    Ok(n)
}

/// Validates one TFRecord file against `spec`.
pub fn validate_tfrecord<R: Read>(
    reader: R,
    spec: &TfrecordSpec,
    limits: &TfrecordLimits,
) -> Result<TfrecordReport> {
    let mut v = TfrecordValidator::new(spec, limits)?;
    v.read(reader)?;
    v.finish()
}
