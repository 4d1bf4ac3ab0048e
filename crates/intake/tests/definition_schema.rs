//! Interop: the JSON Schema in docs/schema, run by Python's `jsonschema`
//! (Draft 2020-12), agrees with the Rust validator on every fixture: it
//! accepts every `ok_*` definition, rejects every fixture whose problem is
//! structural (unknown key, wrong type, missing key, bad enum word, out of
//! range), and accepts the ones whose problem only the cross-field checks
//! can see (the division docs/definition.md documents).
//! Interop tier (needs the Python venv with jsonschema); run with
//! `--ignored`.
// Helper functions outside #[test] fns unwrap and panic too; clippy.toml
// only covers #[test] fns and #[cfg(test)] modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use veritrain_intake::definition::{DefinitionLimits, parse_definition, yaml_to_json};

const CHECK: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
job = json.load(sys.stdin)
Draft202012Validator.check_schema(job["schema"])
v = Draft202012Validator(job["schema"])
out = {}
for name, doc in job["docs"].items():
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    out[name] = [e.message for e in errors]
print(json.dumps(out))
"#;

/// Codes the schema must catch on its own.
const STRUCTURAL: &[&str] = &[
    "definition.unknown_key",
    "definition.key_not_for_type",
    "definition.missing_key",
    "definition.wrong_type",
    "definition.unsupported_version",
];

/// `invalid_value` and `duplicate_name` fixtures the schema catches too
/// (enum words, ranges, patterns, uniqueItems).
const ALSO_IN_SCHEMA: &[&str] = &[
    "fail_column_type_word.yaml",
    "fail_unknown_type.yaml",
    "fail_scale_nan.yaml",
    "fail_validation_fraction.yaml",
    "fail_negative_seed.yaml",
    "fail_shape_zero.yaml",
    "fail_labels_csv_traversal.yaml",
    "fail_tfrecord_bad_dtype.yaml",
    "fail_duplicate_category_value.yaml",
];

fn python() -> Option<PathBuf> {
    let path = std::env::var_os("VERITRAIN_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/interop/bin/python")
        });
    let usable = path.exists()
        && Command::new(&path)
            .args(["-c", "import jsonschema"])
            .status()
            .is_ok_and(|s| s.success());
    if usable {
        return Some(path);
    }
    let what = format!("Python with jsonschema not found at {}", path.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}; under CI=true a missing component is a failure (run scripts/test)");
    }
    eprintln!("SKIPPED: {what}; run scripts/test to set it up");
    None
}

#[test]
#[ignore = "interop tier: needs Python jsonschema"]
fn json_schema_agrees_with_the_validator() {
    let Some(python) = python() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("../../docs/schema/definition.schema.json")).unwrap(),
    )
    .unwrap();
    let dir = root.join("tests/fixtures/definition");
    let limits = DefinitionLimits::default();
    let mut docs = serde_json::Map::new();
    // name -> Some(rejected code) for fail fixtures, None for ok ones.
    let mut expect = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        // YAML-level rejections (anchors, tags, duplicate keys, ...) never
        // become a JSON document.
        let Ok(json) = yaml_to_json(&bytes, &limits) else {
            continue;
        };
        let code = parse_definition(&bytes, &limits).err().map(|e| e.code());
        docs.insert(name.clone(), json);
        // Serialized definitions are definitions too.
        if let Ok(d) = parse_definition(&bytes, &limits) {
            let key = format!("{name} (serialized)");
            docs.insert(key.clone(), serde_json::to_value(&d).unwrap());
            expect.push((key, None));
        }
        expect.push((name, code));
    }
    let job = serde_json::json!({ "schema": schema, "docs": docs });
    let mut child = Command::new(&python)
        .args(["-c", CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed");
    let verdicts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut checked = 0;
    for (name, code) in &expect {
        let errors = verdicts[name].as_array().unwrap();
        let schema_rejects = !errors.is_empty();
        let must_reject = code
            .is_some_and(|c| STRUCTURAL.contains(&c) || ALSO_IN_SCHEMA.contains(&name.as_str()));
        assert_eq!(
            schema_rejects, must_reject,
            "{name} (validator: {code:?}); schema errors: {errors:?}"
        );
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} documents checked");
}
