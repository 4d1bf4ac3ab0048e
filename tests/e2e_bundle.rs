//! Slow tier: the main job end to end through the real `veritrain` binary,
//! the real trainer runtime and the real bubblewrap sandbox.
//!
//! - a tabular CSV job, an image-ZIP job and a TFRecord job each produce a
//!   bundle that `veritrain verify` (with the pinned root key) and Python's
//!   `in-toto-verify` 3.1.0, run in the bundle directory, both accept;
//! - the tamper matrix: every file of a bundle flipped, truncated, replaced
//!   by the same file of another job, and deleted; links and envelopes
//!   re-signed with a key outside the key set; a key set the root did not
//!   sign; a retired key used after its retirement; swapped layouts. Every
//!   case fails and names the culprit; the untouched bundle passes;
//! - rotation: new jobs are signed by the new key, old bundles still verify;
//! - a gate rejection stops the job with the gate's code and leaves nothing;
//! - `quickstart` (with an installed runtime, and installing one offline
//!   from a wheel directory) passes the verify command it prints; `train`
//!   without `--json` shows every epoch; `make.py` regenerates the example.
//!
//! Needs root, bwrap, the `veritrain-sandbox` user and the runtime
//! (scripts/test); skips without them locally and fails under `CI=true`.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;
use util::{repo_root, run, veritrain};
use veritrain_attest::keys::{Algorithm, PrivateKey, Signer};
use veritrain_pipeline::testing::{bundle_files, copy_dir, resign_envelope, resign_metablock};

fn runtime_dir() -> PathBuf {
    std::env::var_os("VERITRAIN_RUNTIME_DIR")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join(".venv/runtime"))
}

fn runtime_python() -> PathBuf {
    runtime_dir().join("venv/bin/python")
}

/// Whether the slow tier can run here; skips (or fails under CI) if not.
fn available() -> bool {
    if !runtime_python().exists() {
        util::require_or_skip("the trainer runtime is not installed (.venv/runtime)");
        return false;
    }
    if !Path::new("/usr/bin/bwrap").exists() {
        util::require_or_skip("bubblewrap is not installed");
        return false;
    }
    true
}

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/quickstart").join(name)
}

/// Run `tests/runtime/make_fixtures.py` with the runtime's Python.
fn fixture(args: &[&str]) {
    let out = run(std::process::Command::new(runtime_python())
        .args(["-I", "-B"])
        .arg(repo_root().join("tests/runtime/make_fixtures.py"))
        .args(args));
    assert!(
        out.status.success(),
        "make_fixtures {args:?}: {}",
        text(&out)
    );
}

/// A compiled Keras model (`make_fixtures.py model`) at `out`.
fn make_model(arch: &str, input: &str, output: &str, seed: &str, out: &Path) {
    fixture(&[
        "model",
        "--arch",
        arch,
        "--input",
        input,
        "--output",
        output,
        "--seed",
        seed,
        "--compile",
        "adam:sparse_categorical_crossentropy:accuracy",
        "--out",
        out.to_str().unwrap(),
    ]);
}

/// Three classes of 16x16 RGB images, 12 each, as a ZIP or a directory.
fn make_images(out: &Path) {
    fixture(&[
        "images",
        "--classes",
        "3",
        "--per-class",
        "12",
        "--size",
        "16,16",
        "--out",
        out.to_str().unwrap(),
    ]);
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn keys_init(dir: &Path) {
    let out = run(veritrain().args(["keys", "init", "--dir"]).arg(dir));
    assert!(out.status.success(), "keys init: {}", text(&out));
}

/// A scratch directory with a fresh key directory in it.
fn scratch_with_keys() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    keys_init(&keys);
    (dir, keys)
}

fn root_pub(keys: &Path) -> PathBuf {
    keys.join("public/root.pub")
}

struct Job<'a> {
    model: &'a Path,
    data: &'a Path,
    definition: &'a Path,
    request: Option<&'a Path>,
}

/// `veritrain train ... --json`; the parsed stdout on success.
fn train(keys: &Path, job: &Job<'_>, out: &Path) -> Value {
    let mut cmd = veritrain();
    cmd.arg("train")
        .arg("--model")
        .arg(job.model)
        .arg("--data")
        .arg(job.data)
        .arg("--definition")
        .arg(job.definition)
        .arg("--keys")
        .arg(keys)
        .arg("--out")
        .arg(out)
        .arg("--runtime")
        .arg(runtime_dir())
        .arg("--json");
    if let Some(r) = job.request {
        cmd.arg("--job").arg(r);
    }
    let output = run(&mut cmd);
    assert!(output.status.success(), "train failed: {}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `veritrain verify --json` with the pinned root; (exit code, report).
fn verify(bundle: &Path, root: &Path, artifacts: &[&Path]) -> (i32, Value) {
    let mut cmd = veritrain();
    cmd.arg("verify")
        .arg(bundle)
        .arg("--root-key")
        .arg(root)
        .arg("--json");
    for a in artifacts {
        cmd.arg("--artifact").arg(a);
    }
    let out = run(&mut cmd);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify output is not JSON ({e}): {}", text(&out)));
    (out.status.code().unwrap_or(-1), report)
}

fn assert_passes(bundle: &Path, root: &Path) {
    let (code, report) = verify(bundle, root, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["passed"], true);
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "keyset",
            "layout",
            "links",
            "files",
            "provenance",
            "aibom",
            "manifest",
            "consistency"
        ]
    );
}

/// The bundle fails verification and some failure's `file` is `culprit`:
/// exactly, or one element of a `", "` list (two files that disagree,
/// either of which may be the changed one). A mention in a message does
/// not count.
fn assert_fails_naming(bundle: &Path, root: &Path, culprit: &str, case: &str) {
    let (code, report) = verify(bundle, root, &[]);
    assert_eq!(code, 1, "{case}: verify passed or crashed: {report:#}");
    assert_eq!(report["passed"], false, "{case}");
    let named = report["checks"].as_array().unwrap().iter().any(|c| {
        c["failures"].as_array().unwrap().iter().any(|f| {
            f["file"]
                .as_str()
                .unwrap()
                .split(", ")
                .any(|file| file == culprit)
        })
    });
    assert!(named, "{case}: no failure's file is {culprit}: {report:#}");
}

fn in_toto_verify(bundle: &Path) -> Option<Output> {
    let python = util::interop_python()?;
    Some(run(std::process::Command::new(
        util::interop_bin(&python).join("in-toto-verify"),
    )
    .current_dir(bundle)
    .args([
        "--verbose",
        "--layout",
        "attestations/root.layout",
        "--verification-keys",
        "trust/root.pub",
        "--link-dir",
        "attestations",
    ])))
}

fn assert_in_toto_verify_passes(bundle: &Path) {
    if let Some(out) = in_toto_verify(bundle) {
        assert!(out.status.success(), "in-toto-verify: {}", text(&out));
        assert!(
            text(&out).contains("passed all verification"),
            "{}",
            text(&out)
        );
    }
}

/// Two CSV jobs under one key directory, made once for the tests that only
/// read them: A is the quickstart example, B differs in every input.
struct World {
    _dir: tempfile::TempDir,
    keys: PathBuf,
    a: PathBuf,
    b: PathBuf,
    a_summary: Value,
}

fn world() -> Option<&'static World> {
    static WORLD: OnceLock<Option<World>> = OnceLock::new();
    WORLD
        .get_or_init(|| {
            if !available() {
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let keys = dir.path().join("keys");
            keys_init(&keys);
            let a = dir.path().join("bundle-a");
            let a_summary = train(
                &keys,
                &Job {
                    model: &example("model.keras"),
                    data: &example("data.csv"),
                    definition: &example("definition.yaml"),
                    request: Some(&example("job.yaml")),
                },
                &a,
            );
            // Job B: another base model, a subset of the rows, another
            // split seed and request.
            let b_model = dir.path().join("b.keras");
            make_model("mlp", "4", "3", "5", &b_model);
            let csv = fs::read_to_string(example("data.csv")).unwrap();
            let b_data = dir.path().join("b.csv");
            fs::write(
                &b_data,
                csv.lines().take(401).collect::<Vec<_>>().join("\n") + "\n",
            )
            .unwrap();
            let b_def = dir.path().join("b.yaml");
            fs::write(
                &b_def,
                fs::read_to_string(example("definition.yaml"))
                    .unwrap()
                    .replace("seed: 7", "seed: 99"),
            )
            .unwrap();
            let b_job = dir.path().join("b-job.yaml");
            fs::write(
                &b_job,
                "model: {name: job-b, version: '2.0'}\nfit: {epochs: 2, seed: 3}\n",
            )
            .unwrap();
            let b = dir.path().join("bundle-b");
            train(
                &keys,
                &Job {
                    model: &b_model,
                    data: &b_data,
                    definition: &b_def,
                    request: Some(&b_job),
                },
                &b,
            );
            Some(World {
                keys,
                a,
                b,
                a_summary,
                _dir: dir,
            })
        })
        .as_ref()
}

// ----- the three dataset kinds ------------------------------------------------

#[test]
#[ignore = "slow tier: run with --ignored"]
fn csv_job_bundle_verifies_with_our_verifier_and_python_in_toto() {
    let Some(w) = world() else { return };
    assert_eq!(
        bundle_files(&w.a),
        [
            "aibom.cdx.json",
            "attestations/aibom.dsse.json",
            "attestations/dataset.manifest.dsse.json",
            &format!(
                "attestations/intake.{}.link",
                &w.a_summary["signer"].as_str().unwrap()[..8]
            ),
            "attestations/provenance.dsse.json",
            "attestations/root.layout",
            &format!(
                "attestations/run_training.{}.link",
                &w.a_summary["signer"].as_str().unwrap()[..8]
            ),
            "inputs/data.csv",
            "inputs/definition.yaml",
            "inputs/job.yaml",
            "inputs/model.keras",
            "outputs/metrics.json",
            "outputs/model.keras",
            "outputs/split.json",
            "outputs/training.log",
            "trust/keyset.dsse.json",
            "trust/root.pub",
        ]
    );
    assert_passes(&w.a, &root_pub(&w.keys));
    assert_in_toto_verify_passes(&w.a);
    assert_passes(&w.b, &root_pub(&w.keys));
    assert_in_toto_verify_passes(&w.b);

    // The inputs in the bundle are the files the user gave, byte for byte.
    for (name, bundled) in [
        ("model.keras", "inputs/model.keras"),
        ("data.csv", "inputs/data.csv"),
        ("definition.yaml", "inputs/definition.yaml"),
        ("job.yaml", "inputs/job.yaml"),
    ] {
        assert_eq!(
            fs::read(example(name)).unwrap(),
            fs::read(w.a.join(bundled)).unwrap(),
            "{bundled}"
        );
    }
    // The real job's AIBoM, as file and as signed predicate, passes
    // cyclonedx-python-lib's strict CycloneDX 1.6 validator.
    if let Some(python) = util::interop_python() {
        let out = run(util::python_script(&python, "bom_validate.py")
            .arg(w.a.join("aibom.cdx.json"))
            .arg(w.a.join("attestations/aibom.dsse.json")));
        assert!(
            out.status.success(),
            "strict CycloneDX validator: {}",
            text(&out)
        );
    }
    // The AIBoM names the job and every field of the request.
    let bom: Value =
        serde_json::from_slice(&fs::read(w.a.join("aibom.cdx.json")).unwrap()).unwrap();
    let card = bom.to_string();
    for needle in [
        "quickstart-classifier",
        "demo@example.org",
        "multilayer perceptron",
        "Real greenhouse or plant-care decisions",
        "Presenting the demo model's accuracy",
        "Veritrain contributors",
        w.a_summary["job_id"].as_str().unwrap(),
    ] {
        assert!(card.contains(needle), "AIBoM lacks {needle:?}");
    }
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn image_zip_job_bundle_verifies_with_our_verifier_and_python_in_toto() {
    if !available() {
        return;
    }
    let (dir, keys) = scratch_with_keys();
    let data = dir.path().join("images.zip");
    let model = dir.path().join("cnn.keras");
    make_images(&data);
    make_model("cnn", "16,16,3", "3", "1", &model);
    let def = dir.path().join("images.yaml");
    fs::write(
        &def,
        "version: 1\ntype: image\nmetadata: {name: brightness-bands}\nimage_size: [16, 16]\n\
         color_mode: rgb\nlayout: folders\nlabel: {classes: [class0, class1, class2]}\n\
         input_shape: [16, 16, 3]\noutput_shape: [3]\npreprocessing: {rescale: 0.00392156862745098}\n\
         split: {validation_fraction: 0.25, seed: 4}\n",
    )
    .unwrap();
    let request = dir.path().join("job.yaml");
    fs::write(
        &request,
        "model: {name: brightness-cnn, version: '1', task: classification}\nfit: {epochs: 2, batch_size: 8}\n",
    )
    .unwrap();
    let bundle = dir.path().join("bundle");
    train(
        &keys,
        &Job {
            model: &model,
            data: &data,
            definition: &def,
            request: Some(&request),
        },
        &bundle,
    );
    assert!(bundle.join("inputs/data.zip").is_file());
    assert_passes(&bundle, &root_pub(&keys));
    assert_in_toto_verify_passes(&bundle);

    // The signed manifest lists every image, and one image the user holds
    // is found in it by digest.
    let env: Value = serde_json::from_slice(
        &fs::read(bundle.join("attestations/dataset.manifest.dsse.json")).unwrap(),
    )
    .unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["predicate"]["file_count"], 36);
    assert_eq!(statement["predicate"]["kind"], "image_zip");
    let one = dir.path().join("one.png");
    let extract = dir.path().join("x");
    make_images(&extract);
    fs::copy(extract.join("class1/img0003.png"), &one).unwrap();
    let (code, report) = verify(&bundle, &root_pub(&keys), &[&one, &extract]);
    assert_eq!(code, 0, "{report:#}");
    let text = report.to_string();
    assert!(text.contains("class1/img0003.png"), "{text}");
    assert!(text.contains("is the dataset inputs/data.zip"), "{text}");
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn tfrecord_job_bundle_verifies_with_our_verifier_and_python_in_toto() {
    if !available() {
        return;
    }
    let (dir, keys) = scratch_with_keys();
    let data = dir.path().join("data.tfrecord");
    let model = dir.path().join("mlp.keras");
    fixture(&[
        "tfrecord",
        "--rows",
        "240",
        "--features",
        "4",
        "--classes",
        "3",
        "--out",
        data.to_str().unwrap(),
    ]);
    make_model("mlp", "4", "3", "1", &model);
    let def = dir.path().join("tfrecord.yaml");
    fs::write(
        &def,
        "version: 1\ntype: tfrecord\nfeatures:\n  - {name: x, dtype: float32, shape: [4]}\n  \
         - {name: label, dtype: int64, shape: []}\nlabel: {feature: label, dtype: int64, classes: [a, b, c]}\n\
         input_shape: [4]\noutput_shape: [3]\npreprocessing: {normalize: true}\n\
         split: {validation_fraction: 0.2, seed: 2}\n",
    )
    .unwrap();
    let bundle = dir.path().join("bundle");
    // No --job: the model is named after its file, everything else defaults.
    let summary = train(
        &keys,
        &Job {
            model: &model,
            data: &data,
            definition: &def,
            request: None,
        },
        &bundle,
    );
    assert!(summary["final_logs"]["loss"].as_f64().unwrap().is_finite());
    assert!(bundle.join("inputs/data.tfrecord").is_file());
    let job: Value =
        serde_json::from_slice(&fs::read(bundle.join("inputs/job.yaml")).unwrap()).unwrap();
    assert_eq!(job["model"]["name"], "mlp");
    assert_passes(&bundle, &root_pub(&keys));
    assert_in_toto_verify_passes(&bundle);
    // --artifact: the model the user holds is the trained model; another
    // file is not.
    let held = dir.path().join("held.keras");
    fs::copy(bundle.join("outputs/model.keras"), &held).unwrap();
    let (code, report) = verify(&bundle, &root_pub(&keys), &[&held]);
    assert_eq!(code, 0, "{report:#}");
    assert!(report.to_string().contains("the trained model"));
    let stranger = dir.path().join("stranger.bin");
    fs::write(&stranger, b"not in the bundle").unwrap();
    let (code, report) = verify(&bundle, &root_pub(&keys), &[&stranger]);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        report
            .to_string()
            .contains("matches no model, dataset or output")
    );
}

// ----- the tamper matrix --------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Tamper {
    FlipByte,
    Truncate,
    ReplaceFromOtherJob,
    Delete,
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn tamper_matrix_every_file_every_way_fails_and_names_the_file() {
    let Some(w) = world() else { return };
    let root = root_pub(&w.keys);
    assert_passes(&w.a, &root);
    let scratch = tempfile::tempdir().unwrap();
    let files = bundle_files(&w.a);
    assert_eq!(files.len(), 17);
    // The files one key directory shares across its jobs (the trust
    // material and the layout) are replaced by a job's made with another
    // key directory.
    let other_keys = scratch.path().join("other-keys");
    keys_init(&other_keys);
    let c = scratch.path().join("bundle-c");
    train(
        &other_keys,
        &Job {
            model: &example("model.keras"),
            data: &example("data.csv"),
            definition: &example("definition.yaml"),
            request: Some(&example("job.yaml")),
        },
        &c,
    );
    let mut cases = 0;
    let mut identical = Vec::new();
    for file in &files {
        for tamper in [
            Tamper::FlipByte,
            Tamper::Truncate,
            Tamper::ReplaceFromOtherJob,
            Tamper::Delete,
        ] {
            let case = format!("{tamper:?} {file}");
            let copy = scratch.path().join(format!("case{cases}"));
            copy_dir(&w.a, &copy);
            let target = copy.join(file);
            let original = fs::read(&target).unwrap();
            match tamper {
                Tamper::FlipByte => {
                    let mut bytes = original.clone();
                    let i = bytes.len() / 2;
                    bytes[i] ^= 0x01;
                    fs::write(&target, bytes).unwrap();
                }
                Tamper::Truncate => fs::write(&target, &original[..original.len() / 2]).unwrap(),
                Tamper::ReplaceFromOtherJob => {
                    let mut replacement = fs::read(w.b.join(file)).unwrap();
                    if replacement == original {
                        // The same bytes in both jobs (the trust material
                        // and layout of one key directory): take the other
                        // key directory's job's copy.
                        identical.push(file.clone());
                        replacement = fs::read(c.join(file)).unwrap();
                        assert_ne!(replacement, original, "{case}");
                    }
                    fs::write(&target, replacement).unwrap();
                }
                Tamper::Delete => fs::remove_file(&target).unwrap(),
            }
            assert_fails_naming(&copy, &root, file, &case);
            fs::remove_dir_all(&copy).unwrap();
            cases += 1;
        }
    }
    // Only the files one key directory shares across jobs are identical.
    assert_eq!(
        identical,
        [
            "attestations/root.layout",
            "trust/keyset.dsse.json",
            "trust/root.pub"
        ]
    );
    assert_eq!(cases, 17 * 4);
    // The untouched bundle still passes: no false positives.
    assert_passes(&w.a, &root);
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn an_extra_file_in_the_bundle_fails_verification() {
    let Some(w) = world() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("b");
    copy_dir(&w.a, &copy);
    fs::write(copy.join("outputs/backdoor.py"), b"print('hi')\n").unwrap();
    assert_fails_naming(
        &copy,
        &root_pub(&w.keys),
        "outputs/backdoor.py",
        "extra file",
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn signatures_by_keys_outside_the_key_set_and_foreign_key_sets_fail() {
    let Some(w) = world() else { return };
    let root = root_pub(&w.keys);
    let scratch = tempfile::tempdir().unwrap();
    let stranger = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let link_of = |step: &str| {
        bundle_files(&w.a)
            .into_iter()
            .find(|f| f.starts_with(&format!("attestations/{step}.")))
            .unwrap()
    };
    let (intake, train) = (link_of("intake"), link_of("run_training"));
    for file in [
        intake.as_str(),
        train.as_str(),
        "attestations/provenance.dsse.json",
        "attestations/aibom.dsse.json",
        "attestations/dataset.manifest.dsse.json",
        "trust/keyset.dsse.json",
    ] {
        let copy = scratch.path().join(file.replace('/', "_"));
        copy_dir(&w.a, &copy);
        if file.ends_with(".link") {
            resign_metablock(&copy.join(file), &stranger);
        } else {
            resign_envelope(&copy.join(file), &stranger);
        }
        assert_fails_naming(&copy, &root, file, &format!("re-signed {file}"));
    }
    // A key set from another key directory: signed by a root that is not
    // the pinned one.
    let other_keys = scratch.path().join("other-keys");
    keys_init(&other_keys);
    let copy = scratch.path().join("foreign-keyset");
    copy_dir(&w.a, &copy);
    fs::copy(
        other_keys.join("keyset.dsse.json"),
        copy.join("trust/keyset.dsse.json"),
    )
    .unwrap();
    assert_fails_naming(&copy, &root, "trust/keyset.dsse.json", "foreign key set");
    // The bundle's own root.pub swapped for the other root does not help:
    // the pinned root decides.
    fs::copy(other_keys.join("root.pub"), copy.join("trust/root.pub")).unwrap();
    assert_fails_naming(&copy, &root, "trust/root.pub", "foreign root.pub");
    // The other key directory's layout too: not signed by the pinned root.
    let copy = scratch.path().join("foreign-layout");
    copy_dir(&w.a, &copy);
    fs::copy(
        other_keys.join("root.layout"),
        copy.join("attestations/root.layout"),
    )
    .unwrap();
    assert_fails_naming(&copy, &root, "attestations/root.layout", "foreign layout");
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn artifacts_the_csv_dataset_and_the_trained_model_match_and_another_csv_does_not() {
    let Some(w) = world() else { return };
    let root = root_pub(&w.keys);
    let (code, report) = verify(
        &w.a,
        &root,
        &[&example("data.csv"), &w.a.join("outputs/model.keras")],
    );
    assert_eq!(code, 0, "{report:#}");
    let details: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "artifact")
        .map(|c| c["details"].to_string())
        .collect();
    assert_eq!(details.len(), 2);
    assert!(
        details[0].contains("the dataset as uploaded (inputs/data.csv)"),
        "{report:#}"
    );
    assert!(details[1].contains("the trained model"), "{report:#}");
    // Job B's CSV (a subset of the rows) is not this bundle's dataset.
    let (code, report) = verify(&w.a, &root, &[&w.b.join("inputs/data.csv")]);
    assert_eq!(code, 1, "{report:#}");
    let artifact = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "artifact")
        .unwrap();
    assert_eq!(artifact["status"], "failed", "{report:#}");
    assert!(
        artifact["failures"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("bundle-b/inputs/data.csv"),
        "{report:#}"
    );
}

// ----- rotation -------------------------------------------------------------------

#[test]
#[ignore = "slow tier: run with --ignored"]
fn rotation_signs_new_jobs_with_the_new_key_and_old_bundles_still_verify() {
    if !available() {
        return;
    }
    let (dir, keys) = scratch_with_keys();
    let job = Job {
        model: &example("model.keras"),
        data: &example("data.csv"),
        definition: &example("definition.yaml"),
        request: None,
    };
    let old = dir.path().join("old");
    let old_summary = train(&keys, &job, &old);
    let keyset_v1 = dir.path().join("keyset-v1.dsse.json");
    fs::copy(keys.join("public/keyset.dsse.json"), &keyset_v1).unwrap();
    let old_key = old_summary["signer"].as_str().unwrap().to_owned();

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = run(veritrain().args(["keys", "rotate", "--dir"]).arg(&keys));
    assert!(out.status.success(), "{}", text(&out));
    let new = dir.path().join("new");
    let new_summary = train(&keys, &job, &new);
    let new_key = new_summary["signer"].as_str().unwrap().to_owned();
    assert_ne!(
        old_key, new_key,
        "the new job must be signed by the new key"
    );

    let root = root_pub(&keys);
    assert_passes(&old, &root);
    assert_passes(&new, &root);
    assert_in_toto_verify_passes(&new);
    // The old bundle with the *current* key set (its key now retired) still
    // verifies: the key was valid when it signed.
    let old_now = dir.path().join("old-with-new-keyset");
    copy_dir(&old, &old_now);
    fs::copy(
        keys.join("keyset.dsse.json"),
        old_now.join("trust/keyset.dsse.json"),
    )
    .unwrap();
    assert_passes(&old_now, &root);

    // The retired key used after its retirement: the old job's provenance
    // re-dated to now and re-signed with the retired key.
    let forged = dir.path().join("forged");
    copy_dir(&old_now, &forged);
    let path = forged.join("attestations/provenance.dsse.json");
    let env: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let mut statement: Value = serde_json::from_slice(&payload).unwrap();
    statement["predicate"]["runDetails"]["metadata"]["finishedOn"] =
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let retired = PrivateKey::from_pem(
        &fs::read_to_string(keys.join(format!("signing/{old_key}.key"))).unwrap(),
    )
    .unwrap();
    let signed = veritrain_attest::dsse::sign(
        "application/vnd.in-toto+json",
        &serde_json::to_vec(&statement).unwrap(),
        &[&retired as &dyn Signer],
    )
    .unwrap();
    fs::write(&path, signed.to_json().unwrap()).unwrap();
    assert_fails_naming(
        &forged,
        &root,
        "attestations/provenance.dsse.json",
        "retired key",
    );
    let (_, report) = verify(&forged, &root, &[]);
    assert!(report.to_string().contains("retired"), "{report:#}");

    // Swapped layouts: each bundle with the other's layout fails.
    for (bundle, other, case) in [
        (&old, &new, "new layout in old bundle"),
        (&new, &old, "old layout in new bundle"),
    ] {
        let swapped = dir.path().join(case.replace(' ', "-"));
        copy_dir(bundle, &swapped);
        fs::copy(
            other.join("attestations/root.layout"),
            swapped.join("attestations/root.layout"),
        )
        .unwrap();
        assert_fails_naming(&swapped, &root, "attestations/root.layout", case);
    }
    // A layout equally valid for the new bundle: re-signed by the root for
    // the same key set (same functionaries) with another expiry. Every
    // signature holds; the AIBoM's reference to the job's layout names it.
    let out = run(veritrain()
        .args(["keys", "layout", "--days", "30", "--dir"])
        .arg(&keys));
    assert!(out.status.success(), "{}", text(&out));
    let resigned = dir.path().join("re-signed-layout");
    copy_dir(&new, &resigned);
    fs::copy(
        keys.join("root.layout"),
        resigned.join("attestations/root.layout"),
    )
    .unwrap();
    assert_ne!(
        fs::read(resigned.join("attestations/root.layout")).unwrap(),
        fs::read(new.join("attestations/root.layout")).unwrap()
    );
    assert_fails_naming(
        &resigned,
        &root,
        "attestations/root.layout",
        "re-signed layout",
    );
    let (_, report) = verify(&resigned, &root, &[]);
    let layout_check = &report["checks"][1];
    assert_eq!(layout_check["status"], "passed", "{report:#}");

    // A key set older than the bundle's, given with --keyset, is refused:
    // a rolled-back key set could hide a revocation.
    let out = run(veritrain()
        .arg("verify")
        .arg(&new)
        .arg("--root-key")
        .arg(&root)
        .arg("--keyset")
        .arg(&keyset_v1)
        .arg("--json"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("older than the bundle's"),
        "{}",
        text(&out)
    );

    // Revoking the old key as of before the old job: with the operator's
    // latest key set the old bundle fails; with its own it still passes
    // (revocation reaches verifiers through the key set they use).
    // The job ID starts with the job's start time: job-YYYYMMDDTHHMMSSZ-...
    let id = old_summary["job_id"].as_str().unwrap();
    let started = chrono::NaiveDateTime::parse_from_str(&id[4..20], "%Y%m%dT%H%M%SZ").unwrap();
    let at = started
        .and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let out = run(veritrain()
        .args(["keys", "revoke", "--dir"])
        .arg(&keys)
        .args(["--keyid", &old_key, "--at", &at, "--reason", "test"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(veritrain()
        .arg("verify")
        .arg(&old)
        .arg("--root-key")
        .arg(&root)
        .arg("--keyset")
        .arg(keys.join("public/keyset.dsse.json"))
        .arg("--json"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("revoked"), "{}", text(&out));
    assert_passes(&old, &root);
}

// ----- refusals ------------------------------------------------------------------

#[test]
#[ignore = "slow tier: run with --ignored"]
fn a_gate_rejection_or_bad_request_stops_the_job_and_leaves_no_bundle() {
    if !available() {
        return;
    }
    let (dir, keys) = scratch_with_keys();
    let ragged = dir.path().join("ragged.csv");
    let csv = fs::read_to_string(example("data.csv")).unwrap();
    fs::write(&ragged, csv.replacen("\n", "\n1.0,2.0\n", 2)).unwrap();
    let misspelt = dir.path().join("job.yaml");
    fs::write(&misspelt, "model: {name: m, version: '1', licence: MIT}\n").unwrap();
    for (data, request, code) in [
        (ragged.as_path(), None, "csv.ragged_row"),
        (
            example("data.csv").as_path(),
            Some(misspelt.as_path()),
            "job.request_invalid",
        ),
    ] {
        let bundle = dir.path().join("bundle");
        let mut cmd = veritrain();
        cmd.args(["train", "--model"])
            .arg(example("model.keras"))
            .arg("--data")
            .arg(data)
            .arg("--definition")
            .arg(example("definition.yaml"))
            .arg("--keys")
            .arg(&keys)
            .arg("--out")
            .arg(&bundle)
            .arg("--runtime")
            .arg(runtime_dir())
            .arg("--json");
        if let Some(r) = request {
            cmd.arg("--job").arg(r);
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(body["error"]["code"], code, "{body:#}");
        assert!(!bundle.exists(), "a failed job left a bundle");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    }
    // An existing bundle is never overwritten.
    fs::create_dir(dir.path().join("taken")).unwrap();
    let out = run(veritrain()
        .args(["train", "--model"])
        .arg(example("model.keras"))
        .arg("--data")
        .arg(example("data.csv"))
        .arg("--definition")
        .arg(example("definition.yaml"))
        .arg("--keys")
        .arg(&keys)
        .arg("--out")
        .arg(dir.path().join("taken"))
        .arg("--runtime")
        .arg(runtime_dir()));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("job.bundle_exists"), "{}", text(&out));
}

// ----- bom show BUNDLE and quickstart ----------------------------------------------

#[test]
#[ignore = "slow tier: run with --ignored"]
fn bom_show_reads_the_signed_aibom_of_a_bundle() {
    let Some(w) = world() else { return };
    let out = run(veritrain()
        .args(["bom", "show"])
        .arg(&w.a)
        .arg("--root-key")
        .arg(root_pub(&w.keys)));
    assert!(out.status.success(), "{}", text(&out));
    let card = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "signature verified",
        "pinned",
        "quickstart-classifier",
        "== Metrics",
        "accuracy",
        "quickstart-greenhouse",
    ] {
        assert!(card.contains(needle), "card lacks {needle:?}:\n{card}");
    }
    let html = tempfile::NamedTempFile::new().unwrap();
    let out = run(veritrain()
        .args(["bom", "show"])
        .arg(&w.a)
        .arg("--html")
        .arg(html.path()));
    assert!(out.status.success(), "{}", text(&out));
    let page = fs::read_to_string(html.path()).unwrap();
    assert!(
        page.contains("src=\"data:image/svg+xml;base64,"),
        "the HTML report has no training curves"
    );
    // A bundle whose AIBoM envelope was tampered with is refused.
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("c");
    copy_dir(&w.a, &copy);
    let env = copy.join("attestations/aibom.dsse.json");
    let mut bytes = fs::read(&env).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    fs::write(&env, bytes).unwrap();
    let out = run(veritrain().args(["bom", "show"]).arg(&copy));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn quickstart_trains_verifies_and_prints_the_verify_command() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(veritrain()
        .arg("quickstart")
        .arg("--dir")
        .arg(dir.path())
        .arg("--runtime")
        .arg(runtime_dir()));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("PASSED: all 8 checks passed against the pinned root key"),
        "{all}"
    );
    assert!(all.contains("== Metrics"), "{all}");
    assert!(!all.contains("cannot show the model card"), "{all}");
    let bundles: Vec<_> = fs::read_dir(dir.path().join("bundles")).unwrap().collect();
    assert_eq!(bundles.len(), 1);
    run_printed_verify_command(&out);
}

/// Run the `veritrain verify BUNDLE --root-key ROOT` line that a quickstart
/// printed for a second person, as printed, and require it to pass.
fn run_printed_verify_command(quickstart: &Output) {
    let stdout = String::from_utf8_lossy(&quickstart.stdout);
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("veritrain verify "))
        .unwrap_or_else(|| panic!("no verify command printed: {stdout}"));
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    assert!(
        args.len() == 4 && args[2] == "--root-key",
        "unexpected command {line:?}"
    );
    let out = run(veritrain().args(&args));
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{line}: {report}");
    assert!(
        report.contains("PASSED: all 8 checks passed against the pinned root key"),
        "{line}: {report}"
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn quickstart_installs_a_missing_runtime_offline_from_a_wheel_directory() {
    // The install branch without a network: pip honours PIP_NO_INDEX and
    // PIP_FIND_LINKS (crates/runtime/src/install.rs), so the locked wheels
    // come from the installed runtime's wheel cache, each still checked
    // against the lock's hashes. About 45 s to install on the development VM.
    if !available() {
        return;
    }
    let wheels = runtime_dir().join("wheels");
    let pip = fs::read_dir("/usr/share/python-wheels")
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("pip-"))
        })
        .unwrap_or(false);
    if !wheels.is_dir() || !pip || !Path::new("/usr/bin/python3.11").exists() {
        util::require_or_skip(&format!(
            "an offline install needs {}, Debian's python3.11 and python3-pip-whl",
            wheels.display()
        ));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("runtime");
    let out = run(veritrain()
        .arg("quickstart")
        .arg("--dir")
        .arg(dir.path())
        .arg("--runtime")
        .arg(&fresh)
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", &wheels));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("not usable yet ([runtime.not_installed]") && all.contains("installing"),
        "{all}"
    );
    assert!(
        all.contains("[5/7] installing from the checked wheels"),
        "{all}"
    );
    assert!(
        all.contains("PASSED: all 8 checks passed against the pinned root key"),
        "{all}"
    );
    // The fresh runtime holds exactly the locked distributions.
    let distributions = |dir: &Path| {
        let id: Value =
            serde_json::from_slice(&fs::read(dir.join("runtime-identity.json")).unwrap()).unwrap();
        id["distributions"].clone()
    };
    assert_eq!(distributions(&fresh), distributions(&runtime_dir()));
    run_printed_verify_command(&out);
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn train_without_json_shows_each_epoch_with_loss_and_metrics_and_the_hashing() {
    if !available() {
        return;
    }
    let (dir, keys) = scratch_with_keys();
    let bundle = dir.path().join("bundle");
    let out = run(veritrain()
        .arg("train")
        .arg("--model")
        .arg(example("model.keras"))
        .arg("--data")
        .arg(example("data.csv"))
        .arg("--definition")
        .arg(example("definition.yaml"))
        .arg("--job")
        .arg(example("job.yaml"))
        .arg("--keys")
        .arg(&keys)
        .arg("--out")
        .arg(&bundle)
        .arg("--runtime")
        .arg(runtime_dir()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", text(&out));
    // stderr is a pipe here: plain lines, nothing drawn in place.
    assert!(!stderr.contains('\r'), "{stderr:?}");
    // examples/quickstart/job.yaml: 10 epochs, each one line with the bar
    // full, the loss, the accuracy and the validation metrics.
    let epochs: Vec<&str> = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("epoch "))
        .collect();
    assert_eq!(epochs.len(), 10, "{stderr}");
    for (i, line) in epochs.iter().enumerate() {
        assert!(
            line.contains(&format!("epoch {:>3}/10 [########################]", i + 1))
                && line.contains("  loss ")
                && line.contains("  accuracy ")
                && line.contains("  val_loss "),
            "{line}"
        );
    }
    for hashed in [
        "hashed inputs: ",
        "hashed inputs again: ",
        "hashed runtime venv: ",
        "hashed outputs: ",
    ] {
        assert!(stderr.contains(hashed), "{hashed:?} missing: {stderr}");
    }
    assert!(
        stderr.contains("final evaluation on 120 held-out examples: "),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("bundle written: "), "{stdout}");
    assert!(
        stdout.contains("verify it with: veritrain verify "),
        "{stdout}"
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn make_py_regenerates_the_quickstart_fixtures() {
    // data.csv byte for byte. model.keras: the same members in the same
    // order, config.json and the weights byte for byte; metadata.json
    // differs only in the save date Keras writes (`date_saved`), and the
    // ZIP entry times differ too, so the archive's bytes are not compared.
    if !runtime_python().exists() {
        util::require_or_skip("the trainer runtime is not installed (.venv/runtime)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(std::process::Command::new(runtime_python())
        .args(["-I", "-B"])
        .arg(example("make.py"))
        .arg("--out")
        .arg(dir.path()));
    assert!(out.status.success(), "make.py: {}", text(&out));
    assert!(
        fs::read(dir.path().join("data.csv")).unwrap() == fs::read(example("data.csv")).unwrap(),
        "make.py no longer makes examples/quickstart/data.csv"
    );
    // Each member's name and SHA-256, metadata.json without its date.
    const DESCRIBE: &str = r#"
import hashlib, json, sys, zipfile
for info in zipfile.ZipFile(sys.argv[1]).infolist():
    data = zipfile.ZipFile(sys.argv[1]).read(info.filename)
    if info.filename == "metadata.json":
        meta = json.loads(data)
        assert "date_saved" in meta, meta
        del meta["date_saved"]
        data = json.dumps(meta, sort_keys=True).encode()
    print(info.filename, hashlib.sha256(data).hexdigest())
"#;
    let describe = |model: &Path| {
        let out = run(std::process::Command::new(runtime_python())
            .args(["-I", "-B", "-c", DESCRIBE])
            .arg(model));
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let made = describe(&dir.path().join("model.keras"));
    assert_eq!(made.lines().count(), 3, "{made}");
    assert_eq!(made, describe(&example("model.keras")));
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn a_packed_bundle_verifies_as_one_file_and_a_tampered_archive_fails() {
    let Some(w) = world() else { return };
    let root = root_pub(&w.keys);
    let scratch = tempfile::tempdir().unwrap();
    let zip = scratch.path().join("bundle.zip");
    let out = run(veritrain()
        .args(["bundle", "pack"])
        .arg(&w.a)
        .arg("--out")
        .arg(&zip));
    assert!(out.status.success(), "{}", text(&out));
    let (code, report) = verify(&zip, &root, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["bundle"], zip.to_str().unwrap());
    // Unpacked again, it is the same bundle.
    let back = scratch.path().join("back");
    let out = run(veritrain()
        .args(["bundle", "unpack"])
        .arg(&zip)
        .arg("--out")
        .arg(&back));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(bundle_files(&back), bundle_files(&w.a));
    // One byte of the trained model changed inside the archive (stored, so
    // the bytes are there as they are): the ZIP reader's CRC check or the
    // verifier refuses it.
    let mut bytes = fs::read(&zip).unwrap();
    let model = fs::read(w.a.join("outputs/model.keras")).unwrap();
    let at = bytes
        .windows(model.len())
        .position(|win| win == model.as_slice())
        .unwrap();
    bytes[at + model.len() / 2] ^= 0x01;
    let tampered = scratch.path().join("tampered.zip");
    fs::write(&tampered, bytes).unwrap();
    let out = run(veritrain()
        .arg("verify")
        .arg(&tampered)
        .arg("--root-key")
        .arg(&root));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
}

/// `veritrain serve` on a free port; killed on drop.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(trust_dir: &Path) -> Server {
    use std::io::BufRead as _;
    let mut child = veritrain()
        .arg("serve")
        .arg("--trust-dir")
        .arg(trust_dir)
        .args(["--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stderr)
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Server { child, url }
}

fn curl(args: &[&str]) -> Value {
    let out = run(std::process::Command::new("curl").args(["-sS"]).args(args));
    assert!(out.status.success(), "curl {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("curl {args:?}: not JSON ({e}): {}", text(&out)))
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn the_api_verifies_an_uploaded_bundle_against_the_operators_trust_material() {
    let Some(w) = world() else { return };
    let server = serve(&w.keys.join("public"));
    let scratch = tempfile::tempdir().unwrap();
    let zip = scratch.path().join("bundle.zip");
    let out = run(veritrain()
        .args(["bundle", "pack"])
        .arg(&w.a)
        .arg("--out")
        .arg(&zip));
    assert!(out.status.success(), "{}", text(&out));
    let url = format!("{}/v1/verify", server.url);
    let data = format!("@{}", zip.display());
    let report = curl(&[
        "-H",
        "Content-Type: application/zip",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["root_pinned"], true);
    assert_eq!(report["bundle"], "upload");
    // As a form, with the trained model the user holds as an artifact.
    let bundle_part = format!("bundle=@{}", zip.display());
    let artifact_part = format!("artifact=@{}", w.a.join("outputs/model.keras").display());
    let report = curl(&["-F", &bundle_part, "-F", &artifact_part, &url]);
    assert_eq!(report["passed"], true, "{report:#}");
    let shown = report.to_string();
    assert!(shown.contains("model.keras"), "{shown}");
    assert!(!shown.contains(&scratch.path().display().to_string()));
    assert!(
        !shown.contains("/tmp/veritrain-verify-"),
        "server paths leaked: {shown}"
    );
    // Another job's metrics in this bundle: verified, and failed.
    let tampered = scratch.path().join("tampered");
    copy_dir(&w.a, &tampered);
    fs::copy(
        w.b.join("outputs/metrics.json"),
        tampered.join("outputs/metrics.json"),
    )
    .unwrap();
    let tampered_zip = scratch.path().join("tampered.zip");
    let out = run(veritrain()
        .args(["bundle", "pack"])
        .arg(&tampered)
        .arg("--out")
        .arg(&tampered_zip));
    assert!(out.status.success(), "{}", text(&out));
    let data = format!("@{}", tampered_zip.display());
    let report = curl(&[
        "-H",
        "Content-Type: application/zip",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(report["passed"], false, "{report:#}");
    assert!(report.to_string().contains("outputs/metrics.json"));
    // The trust material is public.
    let keyset = run(std::process::Command::new("curl")
        .args(["-sS"])
        .arg(format!("{}/.well-known/veritrain/keyset.json", server.url)));
    assert_eq!(
        keyset.stdout,
        fs::read(w.keys.join("public/keyset.dsse.json")).unwrap()
    );
}
