//! `veritrain inspect` driven like a user: real binary, real files.

mod util;

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    util::repo_root().join("crates/intake/tests/fixtures")
}

fn inspect(args: &[&Path]) -> (i32, String) {
    let mut cmd = util::veritrain();
    cmd.arg("inspect");
    let flags = ["--model", "--data", "--definition"];
    for (flag, path) in flags.iter().zip(args) {
        cmd.arg(flag).arg(path);
    }
    let out = util::run(&mut cmd);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn iris(dir: &Path, body: &str) -> (PathBuf, PathBuf) {
    let data = dir.join("iris.csv");
    std::fs::write(
        &data,
        format!("sepal_length,sepal_width,petal_length,petal_width,species\n{body}"),
    )
    .unwrap();
    (data, fixtures().join("definition/ok_csv_iris.yaml"))
}

#[test]
fn benign_model_is_accepted_with_its_summary() {
    let (code, out) = inspect(&[&fixtures().join("keras/ok_cnn_functional.keras")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("accepted") && out.contains("parameters: 535"),
        "{out}"
    );
    assert!(out.contains("(None, 12, 12, 3)"), "{out}");
}

#[test]
fn legacy_h5_model_is_refused_with_its_code() {
    let (code, out) = inspect(&[&fixtures().join("keras/ok_text_lstm_weights_latest.h5")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[keras.legacy_h5]") && out.contains("verdict: REFUSED"),
        "{out}"
    );
}

#[test]
fn csv_data_is_validated_against_its_definition_and_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let (data, def) = iris(
        dir.path(),
        "5.1,3.5,1.4,0.2,setosa\n6.2,2.9,4.3,1.3,versicolor\n",
    );
    // The CNN takes 12x12x3 images, not four iris measurements.
    let model = fixtures().join("keras/ok_cnn_functional.keras");
    let (code, out) = inspect(&[&model, &data, &def]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rows: 2"), "{out}");
    assert!(out.contains("[gate.model_shape_mismatch]"), "{out}");
}

#[test]
fn bad_csv_cell_is_refused_with_row_column_and_json_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, def) = iris(
        dir.path(),
        "5.1,3.5,1.4,0.2,setosa\n6.2,2.9,4.3,1.3,tulip\n",
    );
    let model = fixtures().join("keras/ok_mlp_sequential.keras");
    let out = util::run(
        util::veritrain()
            .args(["inspect", "--json", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(&data)
            .arg("--definition")
            .arg(&def),
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accepted"], false);
    let finding = &v["data"]["findings"][0];
    assert_eq!(finding["code"], "csv.label_not_in_classes", "{v:#}");
    assert_eq!(finding["location"]["row"], 3);
    assert_eq!(finding["location"]["column"], 5);
}

#[test]
fn data_without_definition_is_a_usage_error() {
    let out =
        util::run(util::veritrain().args(["inspect", "--model", "m.keras", "--data", "d.csv"]));
    assert_eq!(out.status.code(), Some(2));
}
