//! Every fixture under `tests/fixtures/definition/`: `ok_*.yaml` must parse,
//! `fail_*.yaml` must be rejected with the code, key path and position its
//! first line names (`# expect: <code> <path> <line>:<column>`).
// Helper functions outside #[test] fns unwrap and panic too; clippy.toml
// only covers #[test] fns and #[cfg(test)] modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use veritrain_intake::Location;
use veritrain_intake::definition::{DefinitionLimits, parse_definition};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/definition");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "fixtures missing in {}", dir.display());
    files
}

#[test]
fn ok_fixtures_parse() {
    let mut n = 0;
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("ok_") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        // Production limits and the small testing limits both accept them.
        for limits in [DefinitionLimits::default(), DefinitionLimits::for_testing()] {
            if let Err(e) = parse_definition(&bytes, &limits) {
                panic!("{name}: {e}");
            }
        }
        n += 1;
    }
    assert!(n >= 8);
}

#[test]
fn fail_fixtures_fail_where_they_say() {
    let mut n = 0;
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("fail_") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        let mut words = header
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{name}: first line must be '# expect: ...'"))
            .split_whitespace();
        let (code, want_path, at) = (
            words.next().unwrap(),
            words.next().unwrap(),
            words
                .next()
                .unwrap_or_else(|| panic!("{name}: no line:column")),
        );
        let err = match parse_definition(text.as_bytes(), &DefinitionLimits::default()) {
            Ok(d) => panic!("{name}: accepted: {d:?}"),
            Err(e) => e,
        };
        let finding = err.finding().unwrap();
        assert_eq!(finding.code, code, "{name}: {finding}");
        let Location::Document { line, column, path } = &finding.location else {
            panic!("{name}: not a document location: {finding}")
        };
        assert_eq!(path, want_path, "{name}: {finding}");
        let got = format!(
            "{}:{}",
            line.map_or("-".into(), |l| l.to_string()),
            column.map_or("-".into(), |c| c.to_string())
        );
        assert_eq!(got, at, "{name}: {finding}");
        n += 1;
    }
    assert!(n >= 30);
}

fn ok_fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/definition")
        .join(name);
    std::fs::read(path).unwrap()
}

/// The serialized definition (what the AIBoM records) is itself a valid
/// definition (JSON is YAML) that parses back to an equal value: nothing
/// the user wrote is dropped or changed on the way.
#[test]
fn serialized_definitions_round_trip() {
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("ok_") {
            continue;
        }
        let d1 = parse_definition(&ok_fixture(&name), &DefinitionLimits::default()).unwrap();
        let json = serde_json::to_string(&d1).unwrap();
        let d2 = parse_definition(json.as_bytes(), &DefinitionLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
        assert_eq!(d1, d2, "{name}");
    }
}

#[test]
fn serialized_definition_keeps_metadata_and_explicit_defaults() {
    let d = parse_definition(
        &ok_fixture("ok_csv_iris.yaml"),
        &DefinitionLimits::default(),
    )
    .unwrap();
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["type"], "csv");
    assert_eq!(v["version"], 1);
    assert_eq!(v["metadata"]["name"], "iris");
    assert_eq!(
        v["metadata"]["description"],
        "Fisher's iris measurements.\n150 flowers, three species.\n"
    );
    assert_eq!(v["metadata"]["license"], "CC-BY-4.0");
    assert_eq!(v["metadata"]["citation"], "Fisher, R. A. (1936)");
    assert_eq!(v["metadata"]["version"], "1.0");
    assert_eq!(v["metadata"]["authors"][0], "R. A. Fisher");
    assert_eq!(v["delimiter"], ",");
    assert_eq!(v["columns"][0]["name"], "sepal_length");
    assert_eq!(v["columns"][0]["nullable"], false);
    assert_eq!(v["columns"][0]["input"], true);
    assert_eq!(v["columns"][3]["nullable"], true);
    assert_eq!(v["columns"][4]["type"], "category");
    assert_eq!(v["columns"][4]["values"][2], "virginica");
    assert_eq!(v["columns"][4]["input"], false);
    assert_eq!(v["label"]["column"], "species");
    assert_eq!(v["preprocessing"]["normalize"], true);
    assert_eq!(v["preprocessing"]["clip"], serde_json::json!([-5.0, 5.0]));
    assert_eq!(v["split"]["validation_fraction"], 0.2);
    assert_eq!(v["split"]["seed"], 42);

    // Defaults written out: an image definition without preprocessing gets
    // `resize: bilinear` and the folders layout; the split gets 0.2.
    let d = parse_definition(
        b"version: 1\ntype: image\nimage_size: [4, 4]\nlabel: {classes: [a, b]}\n\
          input_shape: [4, 4, 3]\noutput_shape: [2]\n",
        &DefinitionLimits::default(),
    )
    .unwrap();
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["preprocessing"]["resize"], "bilinear");
    assert_eq!(v["layout"]["kind"], "folders");
    assert_eq!(v["color_mode"], "rgb");
    assert_eq!(v["split"]["validation_fraction"], 0.2);
}

#[test]
fn typed_definition_exposes_what_validators_need() {
    use veritrain_intake::definition::{ColumnType, DataSpec, ImageLayout, TfDtype};
    let d = parse_definition(
        &ok_fixture("ok_csv_int_classes.yaml"),
        &DefinitionLimits::default(),
    )
    .unwrap();
    let DataSpec::Csv(csv) = &d.data else {
        panic!()
    };
    assert_eq!(csv.label_index(), Some(2));
    assert_eq!(csv.classes().unwrap(), ["low", "mid", "high"]);
    assert_eq!(csv.input_width(), 2);
    assert_eq!(csv.columns[1].column_type, ColumnType::Bool);

    let d = parse_definition(
        &ok_fixture("ok_image_flat.yaml"),
        &DefinitionLimits::default(),
    )
    .unwrap();
    let DataSpec::Image(img) = &d.data else {
        panic!()
    };
    assert_eq!(img.image_size, [28, 28]);
    assert_eq!(img.color_mode.channels(), 1);
    assert_eq!(
        img.layout,
        ImageLayout::Flat {
            labels_csv: "meta/labels.csv".into(),
            file_column: "filename".into(),
            label_column: "digit".into()
        }
    );

    let d = parse_definition(
        &ok_fixture("ok_tfrecord_multi.yaml"),
        &DefinitionLimits::default(),
    )
    .unwrap();
    let DataSpec::Tfrecord(tf) = &d.data else {
        panic!()
    };
    assert_eq!(tf.label_feature().unwrap().shape, [2]);
    assert_eq!(tf.input_features().map(|f| f.elements()).sum::<u64>(), 17);
    assert_eq!(tf.features[1].dtype, TfDtype::Int64);
}

#[test]
fn yaml_scalars_resolve_like_yaml_1_2() {
    let base = |name: &str| {
        format!(
            "version: 1\ntype: csv\ncolumns:\n  - {{name: {name}, type: float}}\n  - {{name: y, type: float}}\n\
             label: y\ninput_shape: [1]\noutput_shape: [1]\n"
        )
    };
    let limits = DefinitionLimits::default();
    // A plain number is not a name; quoted it is.
    let e = parse_definition(base("2024").as_bytes(), &limits).unwrap_err();
    assert_eq!(e.code(), "definition.wrong_type");
    assert!(e.to_string().contains("quote it"), "{e}");
    parse_definition(base("\"2024\"").as_bytes(), &limits).unwrap();
    // YAML 1.1 booleans and octal-looking words are strings in YAML 1.2.
    parse_definition(base("yes").as_bytes(), &limits).unwrap();
    parse_definition(base("0o17").as_bytes(), &limits).unwrap();
    // Null and booleans are not names.
    for bad in ["~", "null", "true", "1.5", ".inf"] {
        let e = parse_definition(base(bad).as_bytes(), &limits).unwrap_err();
        assert_eq!(e.code(), "definition.wrong_type", "{bad}");
    }
    // Escapes cannot smuggle control characters into a name.
    let e = parse_definition(base("\"a\\u0000b\"").as_bytes(), &limits).unwrap_err();
    assert_eq!(e.code(), "definition.invalid_value");
    let e = parse_definition(base("\"\\e[31mred\"").as_bytes(), &limits).unwrap_err();
    assert_eq!(e.code(), "definition.invalid_value");
}

#[test]
fn limits_on_items_and_shapes() {
    let limits = DefinitionLimits::for_testing();
    let mut y = String::from("version: 1\ntype: csv\ncolumns:\n");
    for i in 0..=limits.max_columns {
        y.push_str(&format!("  - {{name: c{i}, type: float}}\n"));
    }
    y.push_str("label: c0\ninput_shape: [1]\noutput_shape: [1]\n");
    let e = parse_definition(y.as_bytes(), &limits).unwrap_err();
    assert_eq!(e.code(), "definition.limit_items");

    let huge = "version: 1\ntype: image\nimage_size: [8, 8]\nlabel: {classes: [a, b]}\n\
                input_shape: [65536, 65536, 65536]\noutput_shape: [2]\n";
    let e = parse_definition(huge.as_bytes(), &DefinitionLimits::default()).unwrap_err();
    assert_eq!(e.code(), "definition.limit_shape");
    // Products that overflow u64 are caught, not wrapped.
    let wrap = "version: 1\ntype: tfrecord\nfeatures:\n  - {name: x, dtype: float32, shape: \
                [4294967296, 4294967296, 2]}\n  - {name: y, dtype: float32, shape: []}\n\
                label: {feature: y, dtype: float32}\ninput_shape: [1]\noutput_shape: [1]\n";
    let e = parse_definition(wrap.as_bytes(), &DefinitionLimits::default()).unwrap_err();
    assert_eq!(e.code(), "definition.limit_shape");
}

#[test]
fn messages_stay_short_whatever_the_key() {
    let long = "k".repeat(10_000);
    for yaml in [
        format!("version: 1\ntype: csv\n{long}: 1\n"),
        format!("version: 1\ntype: {long}\n"),
        format!("version: 1\n{long}: 1\n{long}: 2\n"),
    ] {
        let e = parse_definition(yaml.as_bytes(), &DefinitionLimits::default()).unwrap_err();
        let Location::Document { .. } = e.finding().unwrap().location else {
            panic!()
        };
        assert!(
            e.finding().unwrap().message.len() < 400,
            "{}",
            e.finding().unwrap().message
        );
    }
}

mod props {
    use proptest::prelude::*;
    use veritrain_intake::definition::{DefinitionLimits, parse_definition};

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..1024)) {
            let _ = parse_definition(&data, &DefinitionLimits::for_testing());
        }

        #[test]
        fn yamlish_text_never_panics(
            parts in prop::collection::vec(
                prop_oneof![
                    Just("version: 1\n"), Just("type: csv\n"), Just("type: image\n"),
                    Just("columns:\n"), Just("  - {name: a, type: float}\n"),
                    Just("  - name: b\n    type: category\n    values: [x, y]\n"),
                    Just("label: a\n"), Just("label: {classes: [p, q]}\n"),
                    Just("input_shape: [1]\n"), Just("output_shape: [2]\n"),
                    Just("image_size: [2, 2]\n"), Just("features:\n"),
                    Just("  - {name: f, dtype: int64, shape: []}\n"),
                    Just("&a "), Just("*a"), Just("!!str "), Just("---\n"), Just("[["),
                    Just("]]"), Just("{"), Just("}"), Just(": "), Just("- "), Just("\"\\"),
                    Just("'"), Just("\t"), Just("? "), Just("|\n  "), Just(">-\n  "),
                    Just("%YAML 1.2\n"), Just("\u{feff}"), Just("#"),
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let _ = parse_definition(text.as_bytes(), &DefinitionLimits::for_testing());
            let _ = parse_definition(text.as_bytes(), &DefinitionLimits::default());
        }
    }
}
