//! TFRecord: a benign file passes; every framing and content attack is
//! refused. Records come from the test writer below, built field by field.

use proptest::prelude::*;

use super::*;

// ---- test writer ------------------------------------------------------------

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn len_field(field: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(field << 3 | 2), &mut out);
    varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

fn int64s(values: &[i64], packed: bool) -> Vec<u8> {
    let list = if packed {
        let mut body = Vec::new();
        for &v in values {
            varint(v as u64, &mut body);
        }
        len_field(1, &body)
    } else {
        let mut out = Vec::new();
        for &v in values {
            out.push(0x08);
            varint(v as u64, &mut out);
        }
        out
    };
    len_field(3, &list)
}

fn floats(values: &[f32], packed: bool) -> Vec<u8> {
    let list = if packed {
        let body: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        len_field(1, &body)
    } else {
        values
            .iter()
            .flat_map(|v| {
                let mut f = vec![0x0d];
                f.extend(v.to_le_bytes());
                f
            })
            .collect()
    };
    len_field(2, &list)
}

fn bytes(values: &[&[u8]]) -> Vec<u8> {
    let list: Vec<u8> = values.iter().flat_map(|v| len_field(1, v)).collect();
    len_field(1, &list)
}

/// A serialized Example from (name, serialized Feature) pairs.
fn example(features: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut map = Vec::new();
    for (name, feature) in features {
        let mut entry = len_field(1, name.as_bytes());
        entry.extend(len_field(2, feature));
        map.extend(len_field(1, &entry));
    }
    len_field(1, &map)
}

fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = len.to_vec();
    out.extend(masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend(masked_crc32c(data).to_le_bytes());
    out
}

fn spec() -> TfrecordSpec {
    TfrecordSpec {
        features: vec![
            FeatureSpec {
                name: "image".into(),
                dtype: Dtype::Bytes,
                shape: vec![],
            },
            FeatureSpec {
                name: "coords".into(),
                dtype: Dtype::Float32,
                shape: vec![2, 2],
            },
            FeatureSpec {
                name: "label".into(),
                dtype: Dtype::Int64,
                shape: vec![1],
            },
        ],
        label: Some(LabelSpec {
            feature: "label".into(),
            classes: Some(vec!["cat".into(), "dog".into()]),
        }),
    }
}

fn good_record(label: i64, packed: bool) -> Vec<u8> {
    example(&[
        ("image", bytes(&[b"\x89PNG..."])),
        ("coords", floats(&[0.5, -1.0, 2.0, 3.5], packed)),
        ("label", int64s(&[label], packed)),
    ])
}

fn run(file: &[u8]) -> Result<TfrecordReport> {
    validate_tfrecord(file, &spec(), &TfrecordLimits::for_testing())
}

fn code(file: &[u8]) -> &'static str {
    match run(file) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn file_of(records: &[Vec<u8>]) -> Vec<u8> {
    records.iter().flat_map(|r| frame(r)).collect()
}

// ---- tests -----------------------------------------------------------------

#[test]
#[expect(
    clippy::manual_rotate,
    reason = "spelled as TensorFlow's crc32c::Mask spells it"
)]
fn masked_crc_matches_tensorflow_definition() {
    // crc32c("123456789") = 0xE3069283 (the CRC-32C check value).
    let crc: u32 = 0xe306_9283;
    let masked = ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8);
    assert_eq!(masked_crc32c(b"123456789"), masked);
}

#[test]
fn ok_benign_file_and_report() {
    let file = file_of(&[
        good_record(0, true),
        good_record(1, false),
        good_record(1, true),
    ]);
    let report = run(&file).unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.bytes, file.len() as u64);
    assert_eq!(report.files, 1);
    let balance = report.class_balance.clone().unwrap();
    assert_eq!(balance["cat"], 1);
    assert_eq!(balance["dog"], 2);
    assert_eq!(
        report.features[1].stats,
        FeatureStats::Float32 {
            min: Some(-1.0),
            max: Some(3.5),
            non_finite: 0
        }
    );
    assert_eq!(
        report.features[0].stats,
        FeatureStats::Bytes {
            min_len: Some(7),
            max_len: Some(7),
            total_bytes: 21
        }
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["features"][2]["stats"]["dtype"], "int64");
    assert_eq!(json["features"][2]["stats"]["max"], 1);
}

#[test]
fn ok_shards_accumulate_and_bytes_labels() {
    let spec = TfrecordSpec {
        features: vec![FeatureSpec {
            name: "y".into(),
            dtype: Dtype::Bytes,
            shape: vec![],
        }],
        label: Some(LabelSpec {
            feature: "y".into(),
            classes: Some(vec!["cat".into(), "dog".into()]),
        }),
    };
    let mut v = TfrecordValidator::new(&spec, &TfrecordLimits::for_testing()).unwrap();
    v.read(file_of(&[example(&[("y", bytes(&[b"cat"]))])]).as_slice())
        .unwrap();
    v.read(
        file_of(&[
            example(&[("y", bytes(&[b"dog"]))]),
            example(&[("y", bytes(&[b"dog"]))]),
        ])
        .as_slice(),
    )
    .unwrap();
    let report = v.finish().unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.files, 2);
    assert_eq!(report.class_balance.unwrap()["dog"], 2);
    let bad = file_of(&[example(&[("y", bytes(&[b"cow"]))])]);
    assert_eq!(
        validate_tfrecord(bad.as_slice(), &spec, &TfrecordLimits::for_testing())
            .unwrap_err()
            .code(),
        codes::BAD_LABEL
    );
}

#[test]
fn fail_bad_length_crc() {
    let mut file = file_of(&[good_record(0, true)]);
    file[8] ^= 1;
    assert_eq!(code(&file), codes::LENGTH_CRC);
    // A forged huge length is refused by its checksum, before allocation.
    let mut forged = file_of(&[good_record(0, true)]);
    forged[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(code(&forged), codes::LENGTH_CRC);
}

#[test]
fn fail_bad_data_crc() {
    let mut file = file_of(&[good_record(0, true), good_record(1, true)]);
    let last = file.len() - 6;
    file[last] ^= 0x40;
    let err = run(&file).unwrap_err();
    assert_eq!(err.code(), codes::DATA_CRC);
    let half = file.len() as u64 / 2;
    assert_eq!(
        err.finding().unwrap().location,
        Location::Record {
            index: 1,
            offset: half
        }
    );
}

#[test]
fn fail_truncated_records() {
    let file = file_of(&[good_record(0, true)]);
    for cut in [1, 8, 11, 12, 20, file.len() - 4, file.len() - 1] {
        assert_eq!(code(&file[..cut]), codes::TRUNCATED, "cut at {cut}");
    }
}

#[test]
fn fail_limits() {
    let big = example(&[("image", bytes(&[&vec![0u8; 70_000]]))]);
    assert_eq!(code(&frame(&big)), codes::RECORD_TOO_LARGE);
    let many = file_of(&vec![good_record(0, true); 1001]);
    assert_eq!(code(&many), codes::TOO_MANY_RECORDS);
    let rec = example(&[
        ("image", bytes(&[&vec![0u8; 60_000]])),
        ("coords", floats(&[0.0; 4], true)),
        ("label", int64s(&[0], true)),
    ]);
    let total = file_of(&vec![rec; 18]);
    assert_eq!(code(&total), codes::TOTAL_TOO_LARGE);
    assert_eq!(code(b""), codes::EMPTY);
}

#[test]
fn fail_compressed_file() {
    let mut gz = vec![0x1f, 0x8b, 0x08, 0x00];
    gz.extend([0u8; 20]);
    assert_eq!(code(&gz), codes::COMPRESSED);
    let zlib = miniz_oxide::deflate::compress_to_vec_zlib(&file_of(&[good_record(0, true)]), 6);
    assert_eq!(code(&zlib), codes::COMPRESSED);
}

#[test]
fn fail_wrong_dtype() {
    let rec = example(&[
        ("image", bytes(&[b"x"])),
        ("coords", int64s(&[1, 2, 3, 4], true)),
        ("label", int64s(&[0], true)),
    ]);
    assert_eq!(code(&frame(&rec)), codes::DTYPE_MISMATCH);
    let label_float = example(&[
        ("image", bytes(&[b"x"])),
        ("coords", floats(&[0.0; 4], true)),
        ("label", floats(&[0.0], true)),
    ]);
    assert_eq!(code(&frame(&label_float)), codes::DTYPE_MISMATCH);
}

#[test]
fn fail_wrong_shape() {
    let rec = example(&[
        ("image", bytes(&[b"x"])),
        ("coords", floats(&[0.0; 3], true)),
        ("label", int64s(&[0], true)),
    ]);
    assert_eq!(code(&frame(&rec)), codes::SHAPE_MISMATCH);
    let two_images = example(&[
        ("image", bytes(&[b"x", b"y"])),
        ("coords", floats(&[0.0; 4], false)),
        ("label", int64s(&[0], true)),
    ]);
    assert_eq!(code(&frame(&two_images)), codes::SHAPE_MISMATCH);
    let no_label = example(&[
        ("image", bytes(&[b"x"])),
        ("coords", floats(&[0.0; 4], false)),
        ("label", int64s(&[], true)),
    ]);
    assert_eq!(code(&frame(&no_label)), codes::SHAPE_MISMATCH);
}

#[test]
fn fail_missing_unknown_and_duplicate_features() {
    let missing = example(&[("image", bytes(&[b"x"])), ("label", int64s(&[0], true))]);
    assert_eq!(code(&frame(&missing)), codes::MISSING_FEATURE);
    assert_eq!(code(&frame(&[])), codes::MISSING_FEATURE);
    let unknown = example(&[
        ("image", bytes(&[b"x"])),
        ("coords", floats(&[0.0; 4], true)),
        ("label", int64s(&[0], true)),
        ("extra", int64s(&[0], true)),
    ]);
    assert_eq!(code(&frame(&unknown)), codes::UNKNOWN_FEATURE);
    let duplicate = example(&[
        ("image", bytes(&[b"x"])),
        ("coords", floats(&[0.0; 4], true)),
        ("label", int64s(&[0], true)),
        ("label", int64s(&[1], true)),
    ]);
    assert_eq!(code(&frame(&duplicate)), codes::DUPLICATE_FEATURE);
}

#[test]
fn fail_labels_outside_classes() {
    assert_eq!(code(&frame(&good_record(2, true))), codes::BAD_LABEL);
    assert_eq!(code(&frame(&good_record(-1, true))), codes::BAD_LABEL);
}

#[test]
fn fail_malformed_examples() {
    let good = good_record(0, true);
    // Trailing garbage, a group wire type, an unknown Example field, a
    // repeated features field, an entry without a value, a feature with two
    // lists, a truncated length.
    let mut trailing = good.clone();
    trailing.push(0x80);
    let mut group = good.clone();
    group.extend([0x0b]);
    let mut unknown = good.clone();
    unknown.extend([0x10, 0x01]);
    let mut twice = good.clone();
    twice.extend(good.clone());
    let no_value = len_field(1, &len_field(1, &len_field(1, b"label")));
    let mut two_lists = int64s(&[0], true);
    two_lists.extend(floats(&[0.0], true));
    let two = example(&[("label", two_lists)]);
    let short = vec![0x0a, 0x05, 0x0a];
    let bad_utf8 = {
        let mut entry = len_field(1, b"\xff");
        entry.extend(len_field(2, &int64s(&[0], true)));
        len_field(1, &len_field(1, &entry))
    };
    for (what, rec) in [
        ("trailing", trailing),
        ("group", group),
        ("unknown", unknown),
        ("twice", twice),
        ("no value", no_value),
        ("two lists", two),
        ("short", short),
        ("bad utf8", bad_utf8),
    ] {
        assert_eq!(code(&frame(&rec)), codes::BAD_EXAMPLE, "{what}");
    }
}

#[test]
fn fail_bad_specs() {
    let limits = TfrecordLimits::for_testing();
    let mut s = spec();
    s.features.clear();
    assert_eq!(
        TfrecordValidator::new(&s, &limits).unwrap_err().code(),
        codes::BAD_SPEC
    );
    let mut s = spec();
    s.features.push(s.features[0].clone());
    assert_eq!(
        TfrecordValidator::new(&s, &limits).unwrap_err().code(),
        codes::BAD_SPEC
    );
    let mut s = spec();
    s.features[1].shape = vec![0];
    assert_eq!(
        TfrecordValidator::new(&s, &limits).unwrap_err().code(),
        codes::BAD_SPEC
    );
    let mut s = spec();
    s.features[1].shape = vec![usize::MAX, 2];
    assert_eq!(
        TfrecordValidator::new(&s, &limits).unwrap_err().code(),
        codes::BAD_SPEC
    );
    let mut s = spec();
    s.label.as_mut().unwrap().feature = "nope".into();
    assert_eq!(
        TfrecordValidator::new(&s, &limits).unwrap_err().code(),
        codes::BAD_SPEC
    );
    let mut s = spec();
    s.label.as_mut().unwrap().feature = "coords".into();
    assert_eq!(
        TfrecordValidator::new(&s, &limits).unwrap_err().code(),
        codes::BAD_SPEC
    );
    let mut s = spec();
    s.label.as_mut().unwrap().classes = Some(vec!["a".into(), "a".into()]);
    assert_eq!(
        TfrecordValidator::new(&s, &limits).unwrap_err().code(),
        codes::BAD_SPEC
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = run(&data);
        // Also as a correctly framed payload, to reach the protobuf parser.
        let _ = run(&frame(&data));
    }

    #[test]
    fn mutated_examples_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut rec = good_record(1, false);
        for (at, v) in flips {
            let i = at.index(rec.len());
            rec[i] = v;
        }
        let _ = run(&frame(&rec));
    }
}

/// Five Examples serialized by Google's protobuf runtime (Python) from the
/// `tf.train.Example` descriptors, framed by the fixture script (TensorFlow
/// itself is not installed here). See `tests/fixtures/generate.py`.
#[test]
fn ok_examples_serialized_by_google_protobuf() {
    let file = include_bytes!("../../tests/fixtures/tfrecord/ok_protobuf.tfrecord");
    let spec = TfrecordSpec {
        features: vec![
            FeatureSpec {
                name: "image".into(),
                dtype: Dtype::Bytes,
                shape: vec![],
            },
            FeatureSpec {
                name: "coords".into(),
                dtype: Dtype::Float32,
                shape: vec![4],
            },
            FeatureSpec {
                name: "label".into(),
                dtype: Dtype::Int64,
                shape: vec![],
            },
        ],
        label: Some(LabelSpec {
            feature: "label".into(),
            classes: Some(vec!["a".into(), "b".into(), "c".into()]),
        }),
    };
    let report = validate_tfrecord(file.as_slice(), &spec, &TfrecordLimits::for_testing()).unwrap();
    assert_eq!(report.records, 5);
    let balance = report.class_balance.unwrap();
    assert_eq!((balance["a"], balance["b"], balance["c"]), (2, 2, 1));
    assert_eq!(
        report.features[1].stats,
        FeatureStats::Float32 {
            min: Some(-1.5),
            max: Some(4.0),
            non_finite: 0
        }
    );
    let png = include_bytes!("../../tests/fixtures/images/rgb_13x7.png").len() as u64;
    let jpg = include_bytes!("../../tests/fixtures/images/baseline_17x9.jpg").len() as u64;
    assert_eq!(
        report.features[0].stats,
        FeatureStats::Bytes {
            min_len: Some(png.min(jpg)),
            max_len: Some(png.max(jpg)),
            total_bytes: 2 * png + 3 * jpg
        }
    );
    // The same file against a definition that calls coords a 2×3 tensor.
    let mut wrong = spec.clone();
    wrong.features[1].shape = vec![2, 3];
    let err =
        validate_tfrecord(file.as_slice(), &wrong, &TfrecordLimits::for_testing()).unwrap_err();
    assert_eq!(err.code(), codes::SHAPE_MISMATCH);
}
