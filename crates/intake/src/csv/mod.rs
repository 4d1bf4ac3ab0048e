//! CSV validation and statistics.
//!
//! A CSV dataset is checked against its [`Definition`] in one streaming
//! pass before any Python process reads it: the header must equal the
//! declared columns, every cell must parse as its column's type, labels
//! must be among the declared classes, and the file must be well-formed
//! RFC 4180 in UTF-8 without NUL bytes. The same pass computes the
//! statistics the dataset card and the AIBoM record ([`CsvReport`]).
//!
//! Memory is bounded by [`CsvLimits`]: one read buffer of at most
//! `max_record_bytes` plus a fixed chunk, one distinct-value set per column
//! of at most `max_distinct` keys, and at most `max_tracked_rows` 128-bit
//! row digests for the duplicate count. Time is linear in the input.
//! Format details and every code are in `docs/csv.md`.

mod scan;
mod stats;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::Read;

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::definition::{ColumnType, CsvSpec, DataSpec, Definition};
use crate::error::{Error, Result};
use crate::finding::{Finding, Location};
use scan::{Field, Scan, ScanError, Specials, scan_record, unescape, unescape_bytes};
use stats::{CellError, ColumnAcc, Parsed};
pub use stats::{ColumnStats, DistinctCount, Number, ValueCount};

// ---- stable codes -----------------------------------------------------------

/// The definition given is not a CSV definition.
pub const NOT_CSV: &str = "csv.not_csv_definition";
/// The input is empty: no header row.
pub const EMPTY: &str = "csv.empty";
/// A header but no data rows.
pub const NO_ROWS: &str = "csv.no_rows";
/// The header is not exactly the declared column names, in order.
pub const HEADER_MISMATCH: &str = "csv.header_mismatch";
/// A row with more or fewer fields than the header.
pub const RAGGED_ROW: &str = "csv.ragged_row";
/// A NUL byte.
pub const NUL_BYTE: &str = "csv.nul_byte";
/// Bytes that are not UTF-8.
pub const INVALID_UTF8: &str = "csv.invalid_utf8";
/// A quote inside an unquoted field, text after a closing quote, or a
/// quoted field that never closes.
pub const QUOTE: &str = "csv.quote";
/// A CR not followed by LF.
pub const LINE_ENDING: &str = "csv.line_ending";
/// A cell that does not parse as its column's declared type.
pub const TYPE_MISMATCH: &str = "csv.type_mismatch";
/// A category cell that is not one of the column's declared values.
pub const UNKNOWN_CATEGORY: &str = "csv.unknown_category";
/// A label outside the declared classes.
pub const LABEL_NOT_IN_CLASSES: &str = "csv.label_not_in_classes";
/// An empty cell in a column that is not nullable.
pub const MISSING_VALUE: &str = "csv.missing_value";
/// More data rows than [`CsvLimits::max_rows`].
pub const LIMIT_ROWS: &str = "csv.limit_rows";
/// A field longer than [`CsvLimits::max_field_bytes`].
pub const LIMIT_FIELD: &str = "csv.limit_field";
/// A record longer than [`CsvLimits::max_record_bytes`].
pub const LIMIT_RECORD: &str = "csv.limit_record";
/// More input than [`CsvLimits::max_bytes`].
pub const LIMIT_BYTES: &str = "csv.limit_bytes";

/// Every code this module can return.
pub const CODES: &[&str] = &[
    NOT_CSV,
    EMPTY,
    NO_ROWS,
    HEADER_MISMATCH,
    RAGGED_ROW,
    NUL_BYTE,
    INVALID_UTF8,
    QUOTE,
    LINE_ENDING,
    TYPE_MISMATCH,
    UNKNOWN_CATEGORY,
    LABEL_NOT_IN_CLASSES,
    MISSING_VALUE,
    LIMIT_ROWS,
    LIMIT_FIELD,
    LIMIT_RECORD,
    LIMIT_BYTES,
];

// ---- limits -----------------------------------------------------------------

/// Bounds on a CSV file, enforced while it streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvLimits {
    /// Most input bytes.
    pub max_bytes: u64,
    /// Most data rows (the header not counted).
    pub max_rows: u64,
    /// Longest record in bytes (one line, or several when a quoted field
    /// holds line breaks), terminator excluded. Sizes the read buffer.
    pub max_record_bytes: usize,
    /// Longest field in bytes.
    pub max_field_bytes: usize,
    /// Distinct values counted exactly per column; past it the count is
    /// reported as "at least".
    pub max_distinct: usize,
    /// Row digests kept for the duplicate count, 16 bytes each. When the
    /// store is full, repeats are removed; if that frees less than half of
    /// it, rows after that point are not tracked.
    pub max_tracked_rows: u64,
}

impl Default for CsvLimits {
    /// Production limits: 64 GiB, 500 million rows, 1 MiB records, 64 KiB
    /// fields; at most 64 MiB for duplicate tracking (4 Mi digests).
    fn default() -> Self {
        CsvLimits {
            max_bytes: 64 << 30,
            max_rows: 500_000_000,
            max_record_bytes: 1 << 20,
            max_field_bytes: 64 << 10,
            max_distinct: 10_000,
            max_tracked_rows: 4 << 20,
        }
    }
}

impl CsvLimits {
    /// Small limits for tests and fuzzing.
    pub fn for_testing() -> Self {
        CsvLimits {
            max_bytes: 1 << 20,
            max_rows: 1_000,
            max_record_bytes: 1024,
            max_field_bytes: 256,
            max_distinct: 16,
            max_tracked_rows: 64,
        }
    }
}

// ---- report -------------------------------------------------------------------

/// What a valid CSV holds: the facts for the dataset card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsvReport {
    /// Data rows (the header not counted).
    pub rows: u64,
    /// Input bytes read.
    pub bytes: u64,
    /// The file started with a UTF-8 byte-order mark (skipped).
    pub utf8_bom: bool,
    /// Per-column statistics, in column order.
    pub columns: Vec<ColumnStats>,
    /// Rows per label class, when the label has classes.
    pub class_balance: Option<ClassBalance>,
    /// Rows identical to an earlier row.
    pub duplicate_rows: DuplicateRows,
}

/// Rows per label class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassBalance {
    /// The label column.
    pub column: String,
    /// Every declared class with its row count, in declaration order.
    pub classes: Vec<ValueCount>,
}

/// Exact duplicate rows: rows whose decoded fields all equal those of an
/// earlier row, counted by 128-bit digest (XXH3-128 with a per-run random
/// seed; two different rows share a digest with probability about
/// 2^-128 per pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DuplicateRows {
    /// Rows that repeat an earlier row (a row seen three times counts 2).
    pub count: u64,
    /// Distinct rows whose digest was kept.
    pub tracked_rows: u64,
    /// The digest store filled up with mostly distinct rows (see
    /// [`CsvLimits::max_tracked_rows`]): rows after that point were not
    /// tracked, so `count` is a lower bound.
    pub capped: bool,
}

// ---- entry points -------------------------------------------------------------------

/// Validate a CSV file against a CSV definition and compute its statistics.
///
/// # Errors
/// [`Error::Rejected`] with a `csv.*` code and a [`Location::Csv`] (row,
/// column, column name) for the first problem; [`Error::Io`] if reading
/// fails.
pub fn validate_csv<R: Read>(input: R, def: &Definition, limits: &CsvLimits) -> Result<CsvReport> {
    match &def.data {
        DataSpec::Csv(spec) => validate_csv_spec(input, spec, limits),
        other => Err(Finding::new(
            NOT_CSV,
            format!("the definition is for type {}, not csv", other.type_name()),
            Location::Input,
        )
        .into()),
    }
}

/// [`validate_csv`] for a bare [`CsvSpec`] (for example the labels CSV of a
/// flat image layout, described by a spec the caller builds).
///
/// # Errors
/// As [`validate_csv`].
pub fn validate_csv_spec<R: Read>(
    input: R,
    spec: &CsvSpec,
    limits: &CsvLimits,
) -> Result<CsvReport> {
    type NoVisit = fn(u64, &[&str]) -> std::result::Result<(), Finding>;
    Validator::<NoVisit>::new(spec, limits, None).run(input)
}

/// [`validate_csv_spec`] that also hands every valid data row to `visit`
/// (its 1-based row number in the file and its decoded fields), so a
/// caller can collect what it needs (file names of a labels CSV). A
/// finding returned by `visit` stops the validation.
///
/// # Errors
/// As [`validate_csv`], plus what `visit` returns.
pub fn validate_csv_rows<R, F>(
    input: R,
    spec: &CsvSpec,
    limits: &CsvLimits,
    visit: F,
) -> Result<CsvReport>
where
    R: Read,
    F: FnMut(u64, &[&str]) -> std::result::Result<(), Finding>,
{
    Validator::new(spec, limits, Some(visit)).run(input)
}

/// A cell for a message: quoted and escaped (no control characters reach
/// a terminal), cut to 64 characters so the message stays one short line.
fn shown(cell: &str) -> String {
    let mut chars = cell.chars();
    let head: String = chars.by_ref().take(64).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// Class names for a message: the first ten, then how many more.
fn list(names: &[String]) -> String {
    let head: Vec<String> = names.iter().take(10).map(|n| shown(n)).collect();
    match names.len().saturating_sub(10) {
        0 => format!("[{}]", head.join(", ")),
        more => format!("[{}, and {more} more]", head.join(", ")),
    }
}

// ---- the validator -------------------------------------------------------------------

/// Bytes read per `read` call; the buffer holds one such chunk plus the
/// longest record the limits allow.
const CHUNK: usize = 256 * 1024;

/// The read buffer's first size.
const INITIAL_BUFFER: usize = 16 * 1024;

/// What was wrong with a cell.
enum Problem {
    Missing,
    Cell(CellError),
    ClassIndex,
}

/// Where a label's value maps to a class.
enum LabelClasses {
    /// Category or bool label: the cell's value index is the class.
    Index,
    /// Int label with `k` class names: the integer is the class index.
    IntIndex(u64),
    /// Numeric label without classes: no class balance.
    None,
}

struct Validator<'a, F> {
    spec: &'a CsvSpec,
    limits: &'a CsvLimits,
    visit: Option<F>,
    columns: Vec<ColumnAcc>,
    label: usize,
    label_classes: LabelClasses,
    class_counts: Vec<u64>,
    specials: Specials,
    fields: Vec<Field>,
    parsed: Vec<Parsed>,
    scratch: String,
    canonical: Vec<u8>,
    seed: u64,
    /// Row digests, appended in row order and sorted when full or at the
    /// end: sorting a flat array is several times cheaper than a hash
    /// table's cache misses and needs no table overhead.
    digests: Vec<u128>,
    /// Duplicates removed by compactions so far.
    duplicates: u64,
    digests_capped: bool,
    rows: u64,
    /// 1-based record number of the record being read (header = 1).
    record: u64,
}

impl<'a, F> Validator<'a, F>
where
    F: FnMut(u64, &[&str]) -> std::result::Result<(), Finding>,
{
    fn new(spec: &'a CsvSpec, limits: &'a CsvLimits, visit: Option<F>) -> Self {
        let columns = spec
            .columns
            .iter()
            .map(|c| ColumnAcc::new(&c.name, &c.column_type, c.nullable, limits.max_distinct))
            .collect();
        let label = spec.label_index().unwrap_or(usize::MAX);
        let classes = spec.classes();
        let label_classes = match spec.columns.get(label).map(|c| &c.column_type) {
            Some(ColumnType::Category { .. } | ColumnType::Bool) => LabelClasses::Index,
            Some(ColumnType::Int) => match &classes {
                Some(c) => LabelClasses::IntIndex(c.len() as u64),
                None => LabelClasses::None,
            },
            _ => LabelClasses::None,
        };
        let n_classes = classes.as_ref().map_or(0, Vec::len);
        let hasher = RandomState::new();
        Validator {
            spec,
            limits,
            visit,
            columns,
            label,
            label_classes,
            class_counts: vec![0; n_classes],
            specials: Specials::new(spec.delimiter),
            fields: Vec::with_capacity(spec.columns.len()),
            parsed: Vec::with_capacity(spec.columns.len()),
            scratch: String::new(),
            canonical: Vec::new(),
            // A per-run secret seed: nobody can prepare rows whose digests
            // collide, which would make distinct rows count as duplicates.
            seed: hasher.hash_one(0x5eed_u64),
            digests: Vec::new(),
            duplicates: 0,
            digests_capped: false,
            rows: 0,
            record: 1,
        }
    }

    fn at(&self, column: Option<usize>) -> Location {
        Location::Csv {
            row: self.record,
            column: column.map(|c| c.saturating_add(1)),
            name: column
                .and_then(|c| self.spec.columns.get(c))
                .map(|c| c.name.clone()),
        }
    }

    fn reject(&self, code: &'static str, msg: String, column: Option<usize>) -> Error {
        Finding::new(code, msg, self.at(column)).into()
    }

    fn run<R: Read>(mut self, mut input: R) -> Result<CsvReport> {
        // The buffer starts small (small inputs, fuzzing) and doubles: up to
        // one chunk while the input keeps coming, and up to one chunk plus
        // the longest record only while a record does not fit.
        let cap = self.limits.max_record_bytes.saturating_add(CHUNK);
        let mut buf = vec![0u8; cap.min(INITIAL_BUFFER)];
        let (mut start, mut end) = (0usize, 0usize);
        let mut eof = false;
        let mut total: u64 = 0;
        let mut header_done = false;
        let mut utf8_bom = false;
        loop {
            // Fill: keep the partial record, then read after it.
            if !eof {
                if start > 0 {
                    buf.copy_within(start..end, 0);
                    end = end.saturating_sub(start);
                    start = 0;
                }
                let len = buf.len();
                let big_input = len < CHUNK && total >= len as u64;
                if len < cap && (end == len || big_input) {
                    buf.resize(len.saturating_mul(2).min(cap), 0);
                }
                // Read a whole chunk past the kept partial record (or fill
                // the buffer): a partial record is rescanned only after that
                // much new data, so short reads cannot make scanning
                // quadratic.
                let want = end.saturating_add(CHUNK);
                while end < buf.len() && !eof {
                    let free = buf.get_mut(end..).unwrap_or_default();
                    let n = loop {
                        match input.read(free) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                return Err(Error::Io {
                                    path: "<csv input>".into(),
                                    source: e,
                                });
                            }
                        }
                    };
                    if n == 0 {
                        eof = true;
                    }
                    end = end.saturating_add(n);
                    total = total.saturating_add(n as u64);
                    // Stops an endless or huge stream before it is parsed.
                    if total > self.limits.max_bytes {
                        return Err(self.reject(
                            LIMIT_BYTES,
                            format!("the CSV is larger than {} bytes", self.limits.max_bytes),
                            None,
                        ));
                    }
                    if end >= want {
                        break;
                    }
                }
                // A byte-order mark from spreadsheet exports: skipped and
                // reported, not made part of the first column's name.
                if !header_done
                    && !utf8_bom
                    && buf
                        .get(..end)
                        .is_some_and(|b| b.starts_with(b"\xEF\xBB\xBF"))
                {
                    utf8_bom = true;
                    start = 3;
                }
            }
            // Offsets in `buf` change on every fill: find the clean region
            // again.
            let mut clean_end = start;
            // Parse every complete record in the buffer.
            loop {
                let data = buf.get(start..end).unwrap_or_default();
                if data.is_empty() && eof {
                    break;
                }
                if header_done {
                    // Lines before the next quote, CR or NUL take the fused
                    // fast path; the rest goes through the scanner.
                    if clean_end <= start {
                        clean_end = start.saturating_add(
                            memchr::memchr3(b'"', b'\r', 0, data).unwrap_or(data.len()),
                        );
                    }
                    if let Some(nl) = memchr::memchr(b'\n', data)
                        && start.saturating_add(nl) < clean_end
                    {
                        let line = data.get(..nl).unwrap_or_default();
                        if self.fast_line(line) {
                            self.next_row()?;
                            self.commit_row(line)?;
                            self.record = self.record.saturating_add(1);
                            start = start.saturating_add(nl).saturating_add(1);
                            continue;
                        }
                    }
                }
                let scanned = scan_record(
                    data,
                    eof,
                    self.spec.delimiter,
                    &self.specials,
                    self.spec.columns.len(),
                    self.limits.max_field_bytes,
                    &mut self.fields,
                );
                match scanned {
                    Err(e) => return Err(self.scan_error(e)),
                    Ok(Scan::Incomplete) => {
                        // A record that does not fit the limit is refused
                        // before the buffer would have to grow.
                        if data.len() > self.limits.max_record_bytes {
                            return Err(self.record_too_long());
                        }
                        break;
                    }
                    Ok(Scan::Complete { end: rec_end, next }) => {
                        if rec_end > self.limits.max_record_bytes {
                            return Err(self.record_too_long());
                        }
                        let record = data.get(..rec_end).unwrap_or_default();
                        if header_done {
                            self.row(record)?;
                        } else {
                            self.header(record)?;
                            header_done = true;
                        }
                        self.record = self.record.saturating_add(1);
                        start = start.saturating_add(next);
                    }
                }
            }
            if eof {
                break;
            }
        }
        if !header_done {
            return Err(self.reject(EMPTY, "the CSV is empty: no header row".into(), None));
        }
        if self.rows == 0 {
            return Err(self.reject(
                NO_ROWS,
                "the CSV has a header but no data rows".into(),
                None,
            ));
        }
        Ok(self.report(total, utf8_bom))
    }

    fn record_too_long(&self) -> Error {
        self.reject(
            LIMIT_RECORD,
            format!(
                "a record is longer than {} bytes",
                self.limits.max_record_bytes
            ),
            None,
        )
    }

    fn scan_error(&self, e: ScanError) -> Error {
        match e {
            ScanError::Nul { field } => self.reject(
                NUL_BYTE,
                "NUL byte in the CSV (a text file never holds one)".into(),
                Some(field),
            ),
            ScanError::StrayQuote { field } => self.reject(
                QUOTE,
                "a quote inside an unquoted field; quote the whole field and double inner quotes"
                    .into(),
                Some(field),
            ),
            ScanError::AfterQuote { field } => self.reject(
                QUOTE,
                "text after a closing quote; a quoted field must end at a delimiter or line end"
                    .into(),
                Some(field),
            ),
            ScanError::Unterminated { field } => {
                self.reject(QUOTE, "a quoted field is never closed".into(), Some(field))
            }
            ScanError::BareCr { field } => self.reject(
                LINE_ENDING,
                "a carriage return not followed by a line feed; use LF or CRLF line endings".into(),
                Some(field),
            ),
            ScanError::TooManyFields { fields } if self.record == 1 => self.reject(
                HEADER_MISMATCH,
                format!(
                    "the header has more than the {} declared columns",
                    self.spec.columns.len()
                ),
                Some(fields.saturating_sub(1)),
            ),
            ScanError::TooManyFields { fields } => self.reject(
                RAGGED_ROW,
                format!(
                    "the row has more than {} fields ({fields} seen)",
                    self.spec.columns.len()
                ),
                None,
            ),
            ScanError::FieldTooLong { field } => self.reject(
                LIMIT_FIELD,
                format!(
                    "a field is longer than {} bytes",
                    self.limits.max_field_bytes
                ),
                Some(field),
            ),
        }
    }

    /// The record as UTF-8, or the invalid-UTF-8 finding naming the field.
    fn utf8<'r>(&self, record: &'r [u8]) -> Result<&'r str> {
        std::str::from_utf8(record).map_err(|e| {
            let at = e.valid_up_to();
            let field = self
                .fields
                .iter()
                .position(|f| at < f.end.saturating_add(1))
                .unwrap_or(0);
            self.reject(
                INVALID_UTF8,
                "bytes that are not UTF-8; the CSV must be UTF-8 text".into(),
                Some(field),
            )
        })
    }

    /// A field's decoded text (quotes removed, `""` undone into `scratch`).
    fn decoded<'r>(text: &'r str, f: &Field, scratch: &'r mut String) -> &'r str {
        let raw = text.get(f.start..f.end).unwrap_or_default();
        if f.escaped {
            unescape(raw, scratch);
            scratch.as_str()
        } else {
            raw
        }
    }

    fn header(&mut self, record: &[u8]) -> Result<()> {
        let text = self.utf8(record)?;
        let n = self.spec.columns.len();
        let mut names = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            names.push(Self::decoded(text, f, &mut self.scratch).to_owned());
        }
        // Column by column, so a reordered or renamed column is named.
        for (i, col) in self.spec.columns.iter().enumerate() {
            match names.get(i) {
                Some(name) if *name == col.name => {}
                Some(name) => {
                    return Err(self.reject(
                        HEADER_MISMATCH,
                        format!(
                            "header column {} is {}; the definition declares {:?}",
                            i.saturating_add(1),
                            shown(name),
                            col.name
                        ),
                        Some(i),
                    ));
                }
                None => {
                    return Err(self.reject(
                        HEADER_MISMATCH,
                        format!(
                            "the header has {} columns; the definition declares {n}",
                            names.len()
                        ),
                        Some(i),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Count one more data row; refused when it is one too many, as soon
    /// as it is seen.
    #[inline]
    fn next_row(&mut self) -> Result<()> {
        self.rows = self.rows.saturating_add(1);
        if self.rows > self.limits.max_rows {
            return Err(self.reject(
                LIMIT_ROWS,
                format!("more than {} data rows", self.limits.max_rows),
                None,
            ));
        }
        Ok(())
    }

    /// The general path: a record the scanner delimited (quotes, CRLF and
    /// every malformation handled there).
    fn row(&mut self, record: &[u8]) -> Result<()> {
        self.next_row()?;
        let n = self.spec.columns.len();
        if self.fields.len() != n {
            return Err(self.reject(
                RAGGED_ROW,
                format!(
                    "the row has {} fields; the header has {n}",
                    self.fields.len()
                ),
                None,
            ));
        }
        let text = self.utf8(record)?;
        if let Some((column, cell, problem)) = self.parse_cells(text) {
            return Err(match problem {
                Problem::Missing => {
                    let name = self
                        .spec
                        .columns
                        .get(column)
                        .map_or("", |c| c.name.as_str());
                    self.reject(
                        MISSING_VALUE,
                        format!("empty cell in column {name:?}, which is not nullable"),
                        Some(column),
                    )
                }
                Problem::Cell(e) => self.cell_error(column, &cell, e),
                Problem::ClassIndex => self.label_error(column, &cell),
            });
        }
        self.commit_row(record)
    }

    /// Parse every cell of a scanned row into `parsed`; the first bad
    /// cell's column, text and problem. Touches no statistics.
    fn parse_cells(&mut self, text: &str) -> Option<(usize, String, Problem)> {
        self.parsed.clear();
        for (i, (f, col)) in self.fields.iter().zip(&self.columns).enumerate() {
            let cell = Self::decoded(text, f, &mut self.scratch);
            let p = if cell.is_empty() {
                if !col.nullable {
                    return Some((i, String::new(), Problem::Missing));
                }
                Parsed::Missing
            } else {
                match col.parse(cell) {
                    Ok(p) => p,
                    Err(e) => return Some((i, cell.to_owned(), Problem::Cell(e))),
                }
            };
            if i == self.label && !Self::label_in_range(&self.label_classes, p) {
                return Some((i, cell.to_owned(), Problem::ClassIndex));
            }
            self.parsed.push(p);
        }
        None
    }

    /// An int label with class names must be a class index.
    #[inline]
    fn label_in_range(classes: &LabelClasses, p: Parsed) -> bool {
        match (classes, p) {
            (LabelClasses::IntIndex(k), Parsed::Int(x)) => u64::try_from(x).is_ok_and(|x| x < *k),
            (LabelClasses::IntIndex(_), _) => false,
            _ => true,
        }
    }

    /// The fused fast path for one line known to hold no quote, CR or NUL:
    /// numbers are parsed straight from the line (the parser finds where
    /// each one ends, so the line is read once), other cells are found
    /// with a SIMD delimiter search. Fills `fields` and `parsed` and
    /// returns `true` only if the whole line is a valid row; on anything
    /// unusual it returns `false` having changed no statistics, and the
    /// caller runs the general path, which finds and reports the problem.
    #[inline]
    fn fast_line(&mut self, line: &[u8]) -> bool {
        if line.len() > self.limits.max_record_bytes {
            return false;
        }
        self.fields.clear();
        self.parsed.clear();
        let delimiter = self.spec.delimiter;
        let n = self.columns.len();
        let mut pos = 0usize;
        for (j, col) in self.columns.iter().enumerate() {
            let last = j.saturating_add(1) == n;
            let rest = line.get(pos..).unwrap_or_default();
            let starts_empty = rest.first().is_none_or(|&b| b == delimiter);
            let (p, len) = if col.is_numeric() && !starts_empty {
                match col.parse_prefix(rest) {
                    Some(x) => x,
                    None => return false,
                }
            } else {
                let len = if last {
                    if memchr::memchr(delimiter, rest).is_some() {
                        return false;
                    }
                    rest.len()
                } else {
                    match memchr::memchr(delimiter, rest) {
                        Some(k) => k,
                        None => return false,
                    }
                };
                let cell = rest.get(..len).unwrap_or_default();
                if cell.is_empty() {
                    if !col.nullable {
                        return false;
                    }
                    (Parsed::Missing, 0)
                } else {
                    match std::str::from_utf8(cell).ok().map(|c| col.parse(c)) {
                        Some(Ok(p)) => (p, len),
                        _ => return false,
                    }
                }
            };
            if len > self.limits.max_field_bytes {
                return false;
            }
            let end = pos.saturating_add(len);
            let terminated = if last {
                end == line.len()
            } else {
                line.get(end) == Some(&delimiter)
            };
            if !terminated || (j == self.label && !Self::label_in_range(&self.label_classes, p)) {
                return false;
            }
            self.fields.push(Field {
                start: pos,
                end,
                quoted: false,
                escaped: false,
            });
            self.parsed.push(p);
            pos = end.saturating_add(1);
        }
        true
    }

    /// Count a fully parsed, valid row: column statistics, class balance,
    /// the visitor and the duplicate digest.
    #[inline]
    fn commit_row(&mut self, record: &[u8]) -> Result<()> {
        for (col, &p) in self.columns.iter_mut().zip(&self.parsed) {
            col.commit(p);
        }
        if !matches!(self.label_classes, LabelClasses::None)
            && let Some(slot) = self
                .parsed
                .get(self.label)
                .and_then(|p| p.class_index())
                .and_then(|c| usize::try_from(c).ok())
                .and_then(|c| self.class_counts.get_mut(c))
        {
            *slot = slot.saturating_add(1);
        }
        if self.visit.is_some() {
            let text = self.utf8(record)?;
            self.visit_row(text)?;
        }
        self.digest(record);
        Ok(())
    }

    /// Hand the row's decoded fields to the visitor.
    fn visit_row(&mut self, text: &str) -> Result<()> {
        let mut owned: Vec<String> = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            owned.push(Self::decoded(text, f, &mut self.scratch).to_owned());
        }
        let cells: Vec<&str> = owned.iter().map(String::as_str).collect();
        if let Some(visit) = &mut self.visit {
            visit(self.record, &cells)?;
        }
        Ok(())
    }

    /// Count the row as a duplicate if its digest was seen.
    #[inline]
    fn digest(&mut self, record: &[u8]) {
        // The digest covers the row's canonical form: fields joined by the
        // delimiter, quoted only where needed. For a row without quotes that
        // is the raw record, so the common case hashes in place; `"a",b`
        // and `a,b` are the same row.
        let bytes: &[u8] = if self.fields.iter().any(|f| f.quoted) {
            let delimiter = self.spec.delimiter;
            let mut scratch = Vec::new();
            self.canonical.clear();
            for (i, f) in self.fields.iter().enumerate() {
                if i > 0 {
                    self.canonical.push(delimiter);
                }
                let raw = record.get(f.start..f.end).unwrap_or_default();
                let cell: &[u8] = if f.escaped {
                    unescape_bytes(raw, &mut scratch);
                    &scratch
                } else {
                    raw
                };
                let needs_quotes = cell
                    .iter()
                    .any(|&b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
                if needs_quotes {
                    self.canonical.push(b'"');
                    for &b in cell {
                        if b == b'"' {
                            self.canonical.push(b'"');
                        }
                        self.canonical.push(b);
                    }
                    self.canonical.push(b'"');
                } else {
                    self.canonical.extend_from_slice(cell);
                }
            }
            &self.canonical
        } else {
            record
        };
        let d = xxh3_128_with_seed(bytes, self.seed);
        if self.digests_capped {
            return;
        }
        let cap = usize::try_from(self.limits.max_tracked_rows).unwrap_or(usize::MAX);
        if self.digests.len() >= cap {
            // Full: drop repeats. Unless that frees at least half the space,
            // the cap counts as reached and later rows are not tracked: each
            // sort is then followed by at least cap/2 new rows, so sorting
            // stays linear in the rows overall.
            self.compact_digests();
            if self.digests.len() > cap / 2 {
                self.digests_capped = true;
                return;
            }
        }
        self.digests.push(d);
    }

    /// Sort the digests and remove repeats, counting them as duplicates.
    fn compact_digests(&mut self) {
        self.digests.sort_unstable();
        let before = self.digests.len();
        self.digests.dedup();
        self.duplicates = self
            .duplicates
            .saturating_add((before.saturating_sub(self.digests.len())) as u64);
    }

    fn label_error(&self, column: usize, cell: &str) -> Error {
        let classes = self.spec.classes().unwrap_or_default();
        self.reject(
            LABEL_NOT_IN_CLASSES,
            format!(
                "label {} is not a class index 0..{} (classes {})",
                shown(cell),
                classes.len(),
                list(&classes)
            ),
            Some(column),
        )
    }

    fn cell_error(&self, column: usize, cell: &str, e: CellError) -> Error {
        let Some(col) = self.spec.columns.get(column) else {
            return self.reject(TYPE_MISMATCH, "bad cell".into(), Some(column));
        };
        let shown = shown(cell);
        match (e, column == self.label) {
            (CellError::Category, true) => self.reject(
                LABEL_NOT_IN_CLASSES,
                format!(
                    "label {shown} is not one of the declared classes {}",
                    list(&self.spec.classes().unwrap_or_default())
                ),
                Some(column),
            ),
            (CellError::Category, false) => self.reject(
                UNKNOWN_CATEGORY,
                format!("{shown} is not one of column {:?}'s values", col.name),
                Some(column),
            ),
            (CellError::Type, _) => self.reject(
                TYPE_MISMATCH,
                format!(
                    "{shown} is not {} value",
                    match col.column_type {
                        ColumnType::Int => "an int (a decimal 64-bit integer)",
                        ColumnType::Float => "a float (a finite decimal number)",
                        ColumnType::Bool => "a bool (true/false, True/False, TRUE/FALSE, 1/0)",
                        ColumnType::String | ColumnType::Category { .. } => "a valid",
                    }
                ),
                Some(column),
            ),
        }
    }

    fn report(mut self, bytes: u64, utf8_bom: bool) -> CsvReport {
        self.compact_digests();
        let class_balance = self.spec.classes().map(|classes| ClassBalance {
            column: self.spec.label.column.clone(),
            classes: classes
                .into_iter()
                .zip(self.class_counts.iter())
                .map(|(value, &count)| ValueCount { value, count })
                .collect(),
        });
        CsvReport {
            rows: self.rows,
            bytes,
            utf8_bom,
            columns: self.columns.iter().map(ColumnAcc::stats).collect(),
            class_balance,
            duplicate_rows: DuplicateRows {
                count: self.duplicates,
                tracked_rows: self.digests.len() as u64,
                capped: self.digests_capped,
            },
        }
    }
}
