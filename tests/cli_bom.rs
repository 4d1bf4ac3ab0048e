//! `veritrain bom show` driven like a user would: with `--bom FILE`, the
//! card, the JSON and the HTML report of a valid BOM, and clear errors with
//! codes for a BOM that breaks the schema, is not JSON, or is missing; with
//! `BUNDLE` (a directory or a bundle ZIP made in-process by the real job
//! with a fake trainer), the signed BOM verified against the pinned root.

mod util;

use std::path::Path;
use std::process::Output;

fn snapshot(job: &str) -> Vec<u8> {
    std::fs::read(util::repo_root().join(format!("crates/bom/tests/fixtures/{job}.cdx.json")))
        .unwrap()
}

fn show(dir: &Path, args: &[&str]) -> Output {
    util::run(
        util::veritrain()
            .current_dir(dir)
            .args(["bom", "show"])
            .args(args),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn shows_the_card_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aibom.cdx.json"), snapshot("image")).unwrap();

    let out = show(dir.path(), &["--bom", "aibom.cdx.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let card = text(&out.stdout);
    for needle in [
        "AIBoM: flower-thumbnails 0.3.0",
        "== Metrics",
        "validation split (250 examples), best (epoch 8)",
        "== Dataset flowers",
        "daisy, dandelion, roses, sunflowers, tulips",
        "NVIDIA L4",
        "== Trust facts",
    ] {
        assert!(card.contains(needle), "{needle:?} missing from\n{card}");
    }

    let out = show(dir.path(), &["--bom", "aibom.cdx.json", "--json"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, snapshot("image"));

    let out = show(
        dir.path(),
        &["--bom", "aibom.cdx.json", "--html", "card.html"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(dir.path().join("card.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("data:image/svg+xml;base64,"));
    assert!(html.contains("flower-thumbnails"));
}

#[test]
fn a_bom_that_breaks_the_schema_is_refused_with_pointers() {
    let dir = tempfile::tempdir().unwrap();
    let mut bom: serde_json::Value = serde_json::from_slice(&snapshot("tabular")).unwrap();
    bom["metadata"]["timestamp"] = "last Tuesday".into();
    bom["components"][0]["type"] = "model".into();
    std::fs::write(dir.path().join("bad.cdx.json"), bom.to_string()).unwrap();

    let out = show(dir.path(), &["--bom", "bad.cdx.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.starts_with("error[bom.schema]"), "{err}");
    assert!(err.contains("at /metadata/timestamp"), "{err}");
    assert!(err.contains("at /components/0/type"), "{err}");

    let out = show(dir.path(), &["--bom", "bad.cdx.json", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "bom.schema");
}

#[test]
fn unreadable_input_has_its_own_codes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.json"), b"{\"bomFormat\": ").unwrap();
    for (file, code) in [("x.json", "bom.malformed"), ("missing.json", "bom.io")] {
        let out = show(dir.path(), &["--bom", file]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let err = text(&out.stderr);
        assert!(err.starts_with(&format!("error[{code}]")), "{file}: {err}");
    }
}

// ----- bom show BUNDLE ---------------------------------------------------------------

/// A bundle made in-process by the real job with a fake trainer
/// (`veritrain_pipeline::testing`), and its root key file.
fn made_bundle(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use chrono::{Duration, Utc};
    let keys =
        veritrain_pipeline::testing::TestKeys::generate(Utc::now() - Duration::days(1)).unwrap();
    let job_keys = keys.job_keys(Utc::now(), 30).unwrap();
    let bundle = dir.join("bundle");
    veritrain_pipeline::testing::build_bundle(&bundle, &job_keys).unwrap();
    let root = dir.join("ROOT.pub");
    std::fs::write(&root, keys.root_pem().unwrap()).unwrap();
    (bundle, root)
}

fn show_bundle(dir: &Path, args: &[&str]) -> Output {
    util::run(
        util::veritrain()
            .current_dir(dir)
            .env_remove("VERITRAIN_ROOT_KEY")
            .args(["bom", "show"])
            .args(args),
    )
}

#[test]
fn shows_a_bundles_signed_bom_from_a_directory_or_a_zip_as_card_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, _) = made_bundle(dir.path());
    veritrain_pipeline::archive::pack(&bundle, &dir.path().join("bundle.zip")).unwrap();
    let signed_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("aibom.cdx.json")).unwrap()).unwrap();
    for target in ["bundle", "bundle.zip"] {
        let out = show_bundle(dir.path(), &[target]);
        assert!(out.status.success(), "{target}: {}", text(&out.stderr));
        let card = text(&out.stdout);
        for needle in [
            &format!("Signed AIBoM from {target}: signature verified"),
            "NOT pinned",
            "== Metrics",
            "== Trust facts",
        ] {
            assert!(
                card.contains(needle),
                "{target}: {needle:?} missing from\n{card}"
            );
        }

        let out = show_bundle(dir.path(), &[target, "--json"]);
        assert!(out.status.success(), "{target}: {}", text(&out.stderr));
        // The BOM inside the signed envelope: the bundle's file says the same.
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            shown == signed_file,
            "{target}: --json is not the bundle's BOM"
        );
        assert!(shown["metadata"]["properties"].is_array(), "{target}");

        let html = format!("{target}.html");
        let out = show_bundle(dir.path(), &[target, "--html", &html]);
        assert!(out.status.success(), "{target}: {}", text(&out.stderr));
        let page = std::fs::read_to_string(dir.path().join(&html)).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"), "{target}");
        assert!(page.contains("data:image/svg+xml;base64,"), "{target}");
    }
}

#[test]
fn a_bundles_bom_is_verified_against_the_pinned_root_by_flag_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, root) = made_bundle(dir.path());
    let out = show_bundle(dir.path(), &["bundle", "--root-key", "ROOT.pub"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(", pinned)"),
        "{}",
        text(&out.stdout)
    );
    let out = util::run(
        util::veritrain()
            .env("VERITRAIN_ROOT_KEY", &root)
            .args(["bom", "show"])
            .arg(&bundle),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(", pinned)"),
        "{}",
        text(&out.stdout)
    );

    // Another root: the key set does not verify, nothing is shown.
    let other = dir.path().join("OTHER.pub");
    let stranger =
        veritrain_attest::keys::PrivateKey::generate(veritrain_attest::keys::Algorithm::EcdsaP256)
            .unwrap();
    std::fs::write(&other, stranger.public_key().to_spki_pem().unwrap()).unwrap();
    let out = show_bundle(dir.path(), &["bundle", "--root-key", "OTHER.pub"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_file_that_is_not_a_bundle_archive_is_refused_with_the_zip_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.zip"), b"not a zip").unwrap();
    let out = show_bundle(dir.path(), &["junk.zip"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error[zip."), "{err}");
    assert!(
        err.contains("junk.zip is not a readable bundle archive"),
        "{err}"
    );
    let out = show_bundle(dir.path(), &["junk.zip", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        body["error"]["code"].as_str().unwrap().starts_with("zip."),
        "{body}"
    );
}
