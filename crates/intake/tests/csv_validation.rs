//! CSV validation through the public API: every rejection class built from
//! raw bytes, statistics checked against hand-computed values, and the
//! fast and general parsing paths checked against each other.
// Helper functions outside #[test] fns unwrap and panic too; clippy.toml
// only covers #[test] fns and #[cfg(test)] modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Read;

use proptest::prelude::*;
use veritrain_intake::Location;
use veritrain_intake::csv::{self, CsvLimits, CsvReport, Number, validate_csv, validate_csv_rows};
use veritrain_intake::definition::{Definition, DefinitionLimits, parse_definition};

fn def(yaml: &str) -> Definition {
    parse_definition(yaml.as_bytes(), &DefinitionLimits::default()).unwrap()
}

/// Columns `id` (string, not an input), `x` (float, nullable), `n` (int),
/// `flag` (bool), `color` (category) and the label `y` (int, three named
/// classes, so cells are class indices 0..3).
fn mixed() -> Definition {
    def(r#"
version: 1
type: csv
columns:
  - {name: id, type: string, input: false}
  - {name: x, type: float, nullable: true}
  - {name: n, type: int}
  - {name: flag, type: bool}
  - {name: color, type: category, values: [red, blue, green, purple]}
  - {name: y, type: int}
label: {column: y, classes: [zero, one, two]}
input_shape: [4]
output_shape: [3]
"#)
}

/// A category label.
fn iris() -> Definition {
    def(r#"
version: 1
type: csv
columns:
  - {name: a, type: float}
  - {name: b, type: float}
  - {name: species, type: category, values: [setosa, versicolor, virginica]}
label: species
input_shape: [2]
output_shape: [3]
"#)
}

fn ok(bytes: &[u8], d: &Definition) -> CsvReport {
    match validate_csv(bytes, d, &CsvLimits::for_testing()) {
        Ok(r) => r,
        Err(e) => panic!("rejected: {e}"),
    }
}

/// The rejection's code, row, 1-based column and column name.
fn rejected_with(
    bytes: &[u8],
    d: &Definition,
    limits: &CsvLimits,
) -> (&'static str, u64, Option<usize>, Option<String>) {
    let e = match validate_csv(bytes, d, limits) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e,
    };
    let f = e.finding().unwrap_or_else(|| panic!("not a finding: {e}"));
    match &f.location {
        Location::Csv { row, column, name } => (f.code, *row, *column, name.clone()),
        other => (f.code, 0, None, Some(format!("{other:?}"))),
    }
}

fn rejected(bytes: &[u8], d: &Definition) -> (&'static str, u64, Option<usize>, Option<String>) {
    rejected_with(bytes, d, &CsvLimits::for_testing())
}

fn name(s: &str) -> Option<String> {
    Some(s.to_owned())
}

const HEADER: &str = "id,x,n,flag,color,y\n";

fn with_header(rows: &str) -> Vec<u8> {
    format!("{HEADER}{rows}").into_bytes()
}

// ---- statistics ------------------------------------------------------------

#[test]
fn statistics_match_hand_computed_values() {
    // Row 5 repeats row 2 with quotes: the same decoded fields, so a
    // duplicate.
    let data = with_header(
        "a,1.5,3,true,red,0\n\
         b,,-2,false,blue,1\n\
         c,2.5,7,1,red,1\n\
         \"a\",1.5,3,true,\"red\",0\n\
         \"d\",-1.0,0,FALSE,green,2\n",
    );
    let r = ok(&data, &mixed());
    assert_eq!(r.rows, 5);
    assert_eq!(r.bytes, data.len() as u64);
    assert!(!r.utf8_bom);
    let c = &r.columns;
    assert_eq!(c.len(), 6);

    assert_eq!((c[0].name.as_str(), c[0].column_type), ("id", "string"));
    assert_eq!((c[0].missing, c[0].present), (0, 5));
    assert_eq!(c[0].distinct.count, 4); // a, b, c, d
    assert_eq!((c[0].min, c[0].max, c[0].mean), (None, None, None));

    // x: 1.5, (missing), 2.5, 1.5, -1.0
    assert_eq!((c[1].missing, c[1].present), (1, 4));
    assert_eq!(c[1].min, Some(Number::Float(-1.0)));
    assert_eq!(c[1].max, Some(Number::Float(2.5)));
    assert_eq!(c[1].mean, Some(1.125));
    assert_eq!(c[1].distinct.count, 3);
    assert!(!c[1].distinct.capped);

    // n: 3, -2, 7, 3, 0
    assert_eq!(c[2].min, Some(Number::Int(-2)));
    assert_eq!(c[2].max, Some(Number::Int(7)));
    assert_eq!(c[2].mean, Some(2.2));
    assert_eq!(c[2].distinct.count, 4);

    // flag: true, false, 1, true, FALSE
    assert_eq!(c[3].mean, Some(0.6));
    assert_eq!(
        (c[3].min, c[3].max),
        (Some(Number::Int(0)), Some(Number::Int(1)))
    );
    assert_eq!(c[3].distinct.count, 2);

    // color: red x3, blue, green; purple never
    let values: Vec<(&str, u64)> = c[4]
        .values
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| (v.value.as_str(), v.count))
        .collect();
    assert_eq!(
        values,
        [("red", 3), ("blue", 1), ("green", 1), ("purple", 0)]
    );
    assert_eq!(c[4].distinct.count, 3);

    // y: 0, 1, 1, 0, 2
    assert_eq!(c[5].mean, Some(0.8));
    let balance = r.class_balance.as_ref().unwrap();
    assert_eq!(balance.column, "y");
    let classes: Vec<(&str, u64)> = balance
        .classes
        .iter()
        .map(|v| (v.value.as_str(), v.count))
        .collect();
    assert_eq!(classes, [("zero", 2), ("one", 2), ("two", 1)]);

    assert_eq!(r.duplicate_rows.count, 1);
    assert_eq!(r.duplicate_rows.tracked_rows, 4);
    assert!(!r.duplicate_rows.capped);

    // The report serializes (it goes into the AIBoM) with exact integers.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["columns"][2]["min"], serde_json::json!(-2));
    assert_eq!(json["columns"][1]["max"], serde_json::json!(2.5));
    assert_eq!(json["duplicate_rows"]["count"], serde_json::json!(1));
}

#[test]
fn category_label_balance_and_distinct_cap() {
    let mut data = String::from("a,b,species\n");
    for i in 0..40 {
        let s = ["setosa", "versicolor", "virginica"][i % 3];
        data.push_str(&format!("{i}.5,{},{s}\n", i % 2));
    }
    let r = ok(data.as_bytes(), &iris());
    let counts: Vec<u64> = r
        .class_balance
        .unwrap()
        .classes
        .iter()
        .map(|c| c.count)
        .collect();
    assert_eq!(counts, [14, 13, 13]);
    // 40 distinct values in `a`, more than the testing cap of 16.
    assert_eq!(r.columns[0].distinct.count, 16);
    assert!(r.columns[0].distinct.capped);
    assert_eq!(r.columns[1].distinct.count, 2);
    assert!(!r.columns[1].distinct.capped);
}

#[test]
fn duplicate_tracking_is_capped() {
    let mut data = String::from("a,b,species\n");
    // 80 distinct rows (more than the testing cap of 64), then a repeat.
    for i in 0..80 {
        data.push_str(&format!("{i},0,setosa\n"));
    }
    data.push_str("0,0,setosa\n");
    let r = ok(data.as_bytes(), &iris());
    assert!(r.duplicate_rows.capped);
    assert_eq!(r.duplicate_rows.tracked_rows, 64);
    // Row 0 was among the tracked rows, but its repeat came after the cap.
    assert_eq!(r.duplicate_rows.count, 0);

    // A full store that compacts to more than half its size stops
    // tracking: 40 distinct rows plus 24 repeats fill the 64 slots.
    let mut data = String::from("a,b,species\n");
    for i in 0..64 {
        data.push_str(&format!("{},0,setosa\n", if i < 40 { i } else { 0 }));
    }
    data.push_str("1000,0,setosa\n0,0,setosa\n");
    let r = ok(data.as_bytes(), &iris());
    assert!(r.duplicate_rows.capped);
    assert_eq!(r.duplicate_rows.tracked_rows, 40);
    assert_eq!(r.duplicate_rows.count, 24);

    // Repeats compact away: 200 copies of 2 rows stay well under the cap.
    let mut data = String::from("a,b,species\n");
    for i in 0..200 {
        data.push_str(&format!("{},0,setosa\n", i % 2));
    }
    let r = ok(data.as_bytes(), &iris());
    assert_eq!(r.duplicate_rows.count, 198);
    assert_eq!(r.duplicate_rows.tracked_rows, 2);
    assert!(!r.duplicate_rows.capped);
}

#[test]
fn format_variants_give_the_same_report() {
    let plain = with_header("a,1.5,3,true,red,0\nb,,-2,false,blue,1\nc,2.5,7,1,red,1\n");
    let base = ok(&plain, &mixed());
    // CRLF line endings, no final newline, a byte-order mark, every field
    // quoted: all the same data.
    let crlf = String::from_utf8(plain.clone())
        .unwrap()
        .replace('\n', "\r\n");
    let no_final = &plain[..plain.len() - 1];
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&plain);
    let quoted: String = String::from_utf8(plain.clone())
        .unwrap()
        .lines()
        .map(|l| {
            l.split(',')
                .map(|f| format!("\"{f}\""))
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    for (what, bytes) in [
        ("crlf", crlf.as_bytes()),
        ("no final newline", no_final),
        ("bom", &bom[..]),
        ("quoted", quoted.as_bytes()),
    ] {
        let r = ok(bytes, &mixed());
        assert_eq!(r.columns, base.columns, "{what}");
        assert_eq!(r.class_balance, base.class_balance, "{what}");
        assert_eq!(r.duplicate_rows, base.duplicate_rows, "{what}");
        assert_eq!(r.utf8_bom, what == "bom");
    }
}

#[test]
fn quoted_fields_hold_delimiters_quotes_and_newlines() {
    let d = def(r#"
version: 1
type: csv
delimiter: ";"
columns:
  - {name: note, type: string, input: false}
  - {name: v, type: float}
  - {name: k, type: category, values: ["a;b", "say \"hi\""]}
label: k
input_shape: [1]
output_shape: [2]
"#);
    let data =
        b"note;v;k\n\"line one\nline two; still\";1e3;\"a;b\"\nplain;-0.5;\"say \"\"hi\"\"\"\n";
    let mut seen = Vec::new();
    let r = validate_csv_rows(
        &data[..],
        match &d.data {
            veritrain_intake::definition::DataSpec::Csv(s) => s,
            _ => unreachable!(),
        },
        &CsvLimits::for_testing(),
        |row, cells| {
            seen.push((row, cells.iter().map(|c| c.to_string()).collect::<Vec<_>>()));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(r.rows, 2);
    assert_eq!(
        seen,
        vec![
            (
                2,
                vec![
                    "line one\nline two; still".to_owned(),
                    "1e3".to_owned(),
                    "a;b".to_owned()
                ]
            ),
            (
                3,
                vec![
                    "plain".to_owned(),
                    "-0.5".to_owned(),
                    "say \"hi\"".to_owned()
                ]
            ),
        ]
    );
    assert_eq!(r.columns[1].max, Some(Number::Float(1000.0)));
}

// ---- rejections, each from raw bytes ------------------------------------------

#[test]
fn header_must_equal_the_columns() {
    let d = mixed();
    assert_eq!(
        rejected(b"id,x,n,flag,colour,y\n", &d),
        (csv::HEADER_MISMATCH, 1, Some(5), name("color"))
    );
    // Reordered.
    assert_eq!(
        rejected(b"x,id,n,flag,color,y\na,1,1,1,red,0\n", &d).0,
        csv::HEADER_MISMATCH
    );
    // Missing and extra columns.
    assert_eq!(
        rejected(b"id,x,n,flag,color\n", &d),
        (csv::HEADER_MISMATCH, 1, Some(6), name("y"))
    );
    assert_eq!(
        rejected(b"id,x,n,flag,color,y,z\n", &d).0,
        csv::HEADER_MISMATCH
    );
    // Case and whitespace matter.
    assert_eq!(
        rejected(b"ID,x,n,flag,color,y\n", &d).0,
        csv::HEADER_MISMATCH
    );
    assert_eq!(
        rejected(b"id ,x,n,flag,color,y\n", &d).0,
        csv::HEADER_MISMATCH
    );
}

#[test]
fn ragged_rows() {
    let d = mixed();
    assert_eq!(
        rejected(&with_header("a,1,2,true,red,0\nb,1,2,true,red\n"), &d),
        (csv::RAGGED_ROW, 3, None, None)
    );
    assert_eq!(
        rejected(&with_header("a,1,2,true,red,0,extra\n"), &d),
        (csv::RAGGED_ROW, 2, None, None)
    );
    // A blank line is a row with one empty field.
    assert_eq!(
        rejected(&with_header("a,1,2,true,red,0\n\nb,1,2,true,red,0\n"), &d).0,
        csv::RAGGED_ROW
    );
}

#[test]
fn nul_bytes() {
    let d = mixed();
    assert_eq!(
        rejected(&with_header("a,1\x00,2,true,red,0\n"), &d),
        (csv::NUL_BYTE, 2, Some(2), name("x"))
    );
    assert_eq!(
        rejected(&with_header("\"a\x00\",1,2,true,red,0\n"), &d),
        (csv::NUL_BYTE, 2, Some(1), name("id"))
    );
    assert_eq!(rejected(b"id,x\x00,n,flag,color,y\n", &d).0, csv::NUL_BYTE);
}

#[test]
fn invalid_utf8() {
    let d = mixed();
    let mut data = with_header("");
    data.extend_from_slice(b"a\xff,1,2,true,red,0\n");
    assert_eq!(
        rejected(&data, &d),
        (csv::INVALID_UTF8, 2, Some(1), name("id"))
    );
    let mut data = with_header("a,1,2,true,red,0\n");
    data.extend_from_slice(b"b,1.5\xc3,2,true,red,0\n");
    assert_eq!(
        rejected(&data, &d),
        (csv::INVALID_UTF8, 3, Some(2), name("x"))
    );
    // An overlong encoding of '/' is not UTF-8 either.
    let mut data = with_header("");
    data.extend_from_slice(b"\xc0\xaf,1,2,true,red,0\n");
    assert_eq!(rejected(&data, &d).0, csv::INVALID_UTF8);
}

#[test]
fn quotes_and_line_endings() {
    let d = mixed();
    assert_eq!(
        rejected(&with_header("a\"b,1,2,true,red,0\n"), &d),
        (csv::QUOTE, 2, Some(1), name("id"))
    );
    assert_eq!(
        rejected(&with_header("\"a\"b,1,2,true,red,0\n"), &d),
        (csv::QUOTE, 2, Some(1), name("id"))
    );
    assert_eq!(
        rejected(&with_header("a,1,2,true,\"red,0\n"), &d),
        (csv::QUOTE, 2, Some(5), name("color"))
    );
    assert_eq!(
        rejected(&with_header("a,1,2\r,true,red,0\n"), &d),
        (csv::LINE_ENDING, 2, Some(3), name("n"))
    );
    assert_eq!(
        rejected(b"id,x,n,flag,color,y\ra,1,2,true,red,0\r", &d).0,
        csv::LINE_ENDING
    );
}

#[test]
fn cells_must_parse_as_their_type() {
    let d = mixed();
    for (row, column, col_name) in [
        ("a,1,2.0,true,red,0\n", 3, "n"), // int with a fraction
        ("a,1,99999999999999999999,true,red,0\n", 3, "n"), // int overflow
        ("a,1, 2,true,red,0\n", 3, "n"),  // padded int
        ("a,abc,2,true,red,0\n", 2, "x"),
        ("a,inf,2,true,red,0\n", 2, "x"),
        ("a,NaN,2,true,red,0\n", 2, "x"),
        ("a,1e999,2,true,red,0\n", 2, "x"), // overflows to infinity
        ("a,1.5e,2,true,red,0\n", 2, "x"),
        ("a,0x10,2,true,red,0\n", 2, "x"),
        ("a,1,2,yes,red,0\n", 4, "flag"),
        ("a,1,2,2,red,0\n", 4, "flag"),
    ] {
        assert_eq!(
            rejected(&with_header(row), &d),
            (csv::TYPE_MISMATCH, 2, Some(column), name(col_name)),
            "{row:?}"
        );
    }
    assert_eq!(
        rejected(&with_header("a,1,2,true,Red,0\n"), &d),
        (csv::UNKNOWN_CATEGORY, 2, Some(5), name("color"))
    );
}

#[test]
fn labels_outside_the_classes() {
    // Int label with three class names: 0..3 only.
    let d = mixed();
    for y in ["3", "-1", "9223372036854775807"] {
        assert_eq!(
            rejected(&with_header(&format!("a,1,2,true,red,{y}\n")), &d),
            (csv::LABEL_NOT_IN_CLASSES, 2, Some(6), name("y")),
            "{y}"
        );
    }
    // Category label.
    assert_eq!(
        rejected(b"a,b,species\n1,2,setosa\n1,2,rose\n", &iris()),
        (csv::LABEL_NOT_IN_CLASSES, 3, Some(3), name("species"))
    );
}

#[test]
fn missing_values_need_nullable() {
    let d = mixed();
    // `x` is nullable, `n` is not; `""` is empty too.
    ok(&with_header("a,,2,true,red,0\n"), &d);
    assert_eq!(
        rejected(&with_header("a,1,,true,red,0\n"), &d),
        (csv::MISSING_VALUE, 2, Some(3), name("n"))
    );
    assert_eq!(
        rejected(&with_header("a,1,\"\",true,red,0\n"), &d),
        (csv::MISSING_VALUE, 2, Some(3), name("n"))
    );
    assert_eq!(
        rejected(&with_header("a,1,2,true,red,\n"), &d),
        (csv::MISSING_VALUE, 2, Some(6), name("y"))
    );
}

#[test]
fn limits_are_enforced_while_streaming() {
    let d = iris();
    let limits = CsvLimits {
        max_rows: 3,
        ..CsvLimits::for_testing()
    };
    let data = b"a,b,species\n1,1,setosa\n1,1,setosa\n1,1,setosa\n1,1,setosa\n";
    assert_eq!(
        rejected_with(data, &d, &limits),
        (csv::LIMIT_ROWS, 5, None, None)
    );

    let long = format!("a,b,species\n{},1,setosa\n", "1".repeat(300));
    assert_eq!(
        rejected(long.as_bytes(), &d),
        (csv::LIMIT_FIELD, 2, Some(1), name("a"))
    );
    let long = format!("a,b,species\n\"{}\",1,setosa\n", "1".repeat(300));
    assert_eq!(rejected(long.as_bytes(), &d).0, csv::LIMIT_FIELD);

    // Fields under the field limit, a record over the record limit.
    let limits = CsvLimits {
        max_record_bytes: 100,
        ..CsvLimits::for_testing()
    };
    let wide = format!("a,b,species\n{0},{0},setosa\n", "1".repeat(60));
    assert_eq!(
        rejected_with(wide.as_bytes(), &d, &limits).0,
        csv::LIMIT_RECORD
    );

    // An endless stream stops at max_bytes, never buffering it whole.
    let limits = CsvLimits {
        max_bytes: 10_000,
        ..CsvLimits::for_testing()
    };
    let endless = std::io::repeat(b'1');
    let e = validate_csv(endless, &d, &limits).unwrap_err();
    assert!(
        e.code() == csv::LIMIT_BYTES || e.code() == csv::LIMIT_RECORD,
        "{e}"
    );
    let endless_rows = b"a,b,species\n"
        .iter()
        .copied()
        .chain(b"1,1,setosa\n".iter().copied().cycle());
    let e = validate_csv(Iter(endless_rows), &d, &limits).unwrap_err();
    assert_eq!(e.code(), csv::LIMIT_BYTES);
}

#[test]
fn empty_inputs_and_wrong_definitions() {
    let d = iris();
    assert_eq!(rejected(b"", &d).0, csv::EMPTY);
    assert_eq!(rejected(b"a,b,species\n", &d).0, csv::NO_ROWS);
    let image = def(r#"
version: 1
type: image
image_size: [8, 8]
label: {classes: [a, b]}
input_shape: [8, 8, 3]
output_shape: [2]
"#);
    let e = validate_csv(&b"a\n1\n"[..], &image, &CsvLimits::for_testing()).unwrap_err();
    assert_eq!(e.code(), csv::NOT_CSV);
}

#[test]
fn messages_stay_short_whatever_the_cell() {
    let d = mixed();
    let long = "Z".repeat(250);
    for row in [
        format!("a,1,2,true,{long},0\n"),
        format!("a,{long},2,true,red,0\n"),
        format!("a,1,2,true,red,{long}\n"),
    ] {
        let e = validate_csv(&with_header(&row)[..], &d, &CsvLimits::for_testing()).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
    }
    let e = validate_csv(
        format!("{long},x,n,flag,color,y\n").as_bytes(),
        &d,
        &CsvLimits::for_testing(),
    )
    .unwrap_err();
    assert!(e.to_string().len() < 300, "{e}");
}

// ---- fast path, general path and chunk boundaries agree -------------------------

/// A reader over an iterator of bytes.
struct Iter<I>(I);
impl<I: Iterator<Item = u8>> Read for Iter<I> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            match self.0.next() {
                Some(b) => *slot = b,
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }
}

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn table() -> impl Strategy<Value = Vec<(f64, i64, bool, usize)>> {
    prop::collection::vec(
        (
            prop_oneof![
                any::<f64>().prop_filter("finite", |f| f.is_finite()),
                (-1000i32..1000).prop_map(f64::from)
            ],
            any::<i64>(),
            any::<bool>(),
            0usize..3,
        ),
        1..40,
    )
}

proptest! {
    #[test]
    fn fast_and_general_paths_agree(rows in table(), step in 1usize..64) {
        let d = def(r#"
version: 1
type: csv
columns:
  - {name: f, type: float}
  - {name: i, type: int}
  - {name: b, type: bool}
  - {name: c, type: category, values: [x, y, z]}
label: c
input_shape: [3]
output_shape: [3]
"#);
        let mut plain = String::from("f,i,b,c\n");
        let mut quoted = String::from("\"f\",\"i\",\"b\",\"c\"\r\n");
        for (f, i, b, c) in &rows {
            let c = ["x", "y", "z"][*c];
            plain.push_str(&format!("{f:?},{i},{b},{c}\n"));
            quoted.push_str(&format!("\"{f:e}\",\"{i}\",\"{b}\",\"{c}\"\r\n"));
        }
        let limits = CsvLimits::default();
        let a = validate_csv(plain.as_bytes(), &d, &limits).unwrap();
        let b = validate_csv(quoted.as_bytes(), &d, &limits).unwrap();
        let t = validate_csv(Trickle { data: plain.as_bytes(), step }, &d, &limits).unwrap();
        prop_assert_eq!(&a.columns, &b.columns);
        prop_assert_eq!(&a.class_balance, &b.class_balance);
        prop_assert_eq!(&a.duplicate_rows, &b.duplicate_rows);
        prop_assert_eq!(&a.columns, &t.columns);
        prop_assert_eq!(&a.duplicate_rows, &t.duplicate_rows);
        prop_assert_eq!(a.rows, rows.len() as u64);
        // Exact min and max survive the text round trip.
        let min = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        prop_assert_eq!(a.columns[0].min, Some(Number::Float(min)));
        let imax = rows.iter().map(|r| r.1).max().unwrap();
        prop_assert_eq!(a.columns[1].max, Some(Number::Int(imax)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = validate_csv(&data[..], &mixed(), &CsvLimits::for_testing());
    }

    #[test]
    fn near_valid_bytes_never_panic(
        rows in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    Just(b",".to_vec()), Just(b"\"".to_vec()), Just(b"\n".to_vec()),
                    Just(b"\r".to_vec()), Just(b"1.5".to_vec()), Just(b"red".to_vec()),
                    Just(b"true".to_vec()), Just(b"\xff".to_vec()), Just(b"\x00".to_vec()),
                    Just(b"0".to_vec()),
                ],
                0..20,
            ),
            0..20,
        ),
        step in 1usize..16,
    ) {
        let mut data = HEADER.as_bytes().to_vec();
        for r in rows {
            data.extend(r.concat());
        }
        let whole = validate_csv(&data[..], &mixed(), &CsvLimits::for_testing());
        let trickled = validate_csv(Trickle { data: &data, step }, &mixed(), &CsvLimits::for_testing());
        // Chunking never changes the verdict.
        match (whole, trickled) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.columns, b.columns),
            (Err(a), Err(b)) => prop_assert_eq!(a.finding(), b.finding()),
            (a, b) => prop_assert!(false, "whole {a:?} vs trickled {b:?}"),
        }
    }
}
