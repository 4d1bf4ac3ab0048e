//! `veritrain bom show --bom FILE` driven like a user would: the card, the
//! JSON and the HTML report of a valid BOM, and clear errors with codes for
//! a BOM that breaks the schema, is not JSON, or is missing.

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
