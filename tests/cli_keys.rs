//! `veritrain keys` driven like a user would: init, show, rotate, revoke,
//! refusals, and keys made by OpenSSL. Attestations are then signed with the
//! key files the CLI wrote and verified against the key set it published.

mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use veritrain_attest::dsse::Limits;
use veritrain_attest::keys::{FileSigner, PublicKey, Signer};
use veritrain_attest::keyset;
use veritrain_attest::statement::{
    BuildDefinition, BuildMetadata, Builder, Provenance, ResourceDescriptor, RunDetails, Statement,
    sign_statement,
};

fn keys(args: &[&str]) -> Output {
    let mut cmd = util::veritrain();
    cmd.arg("keys").args(args);
    util::run(&mut cmd)
}

fn ok(args: &[&str]) -> String {
    let out = keys(args);
    assert!(
        out.status.success(),
        "veritrain keys {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn show_json(dir: &Path) -> Value {
    serde_json::from_str(&ok(&["show", "--dir", dir.to_str().unwrap(), "--json"])).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A SLSA provenance statement whose run finished at `finished`.
fn statement(finished: chrono::DateTime<chrono::Utc>) -> Statement {
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: "https://veritrain.dev/buildtypes/test/v1".into(),
            external_parameters: Default::default(),
            internal_parameters: Default::default(),
            resolved_dependencies: vec![],
        },
        run_details: RunDetails {
            builder: Builder {
                id: "https://veritrain.dev/worker/v1".into(),
                version: Default::default(),
                builder_dependencies: vec![],
            },
            metadata: BuildMetadata {
                invocation_id: Some("job".into()),
                started_on: Some(finished),
                finished_on: Some(finished),
            },
            byproducts: vec![],
        },
    };
    Statement::slsa_provenance(
        vec![ResourceDescriptor::subject("model.keras", "ab".repeat(32))],
        &provenance,
    )
    .unwrap()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

fn signer(dir: &Path, keyid: &str) -> FileSigner {
    FileSigner::load(&dir.join("signing").join(format!("{keyid}.key"))).unwrap()
}

/// Verify `envelope` the way an auditor does: with `public/` only.
fn verify_public(dir: &Path, envelope: &[u8]) -> Result<(), veritrain_attest::Error> {
    let public = dir.join("public");
    let root =
        PublicKey::from_spki_pem(&fs::read_to_string(public.join("root.pub")).unwrap()).unwrap();
    let ks = fs::read(public.join("keyset.dsse.json")).unwrap();
    keyset::verify_attested(envelope, &ks, &root, &Limits::default()).map(|_| ())
}

#[test]
fn init_writes_private_and_public_files_and_a_root_signed_key_set() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let out = ok(&["init", "--dir", s(&dir)]);
    assert!(out.contains("created key directory"), "{out}");

    let shown = show_json(&dir);
    let root_id = shown["root"]["keyid"].as_str().unwrap();
    assert_eq!(shown["root"]["algorithm"], "ecdsa-p256");
    assert_eq!(shown["keyset"]["version"], 1);
    assert_eq!(shown["keyset"]["signature_verified"], true);
    let keys = shown["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let id = keys[0]["keyid"].as_str().unwrap();
    assert_eq!(keys[0]["status"], "active");
    assert_eq!(keys[0]["private_key_present"], true);
    assert_eq!(shown["current"], id);

    // The files a user is told about, with private keys readable only by
    // the owner.
    for f in [
        "root.key",
        "root.pub",
        "keyset.dsse.json",
        "public/root.pub",
        "public/keyset.dsse.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let key_path = dir.join("signing").join(format!("{id}.key"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.join("root.key")), 0o600);
        assert_eq!(mode(&key_path), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    // Public files carry no private key, and root.pub is the root key.
    for entry in fs::read_dir(dir.join("public")).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("PRIVATE KEY"));
    }
    let root = PublicKey::from_spki_pem(&fs::read_to_string(dir.join("public/root.pub")).unwrap())
        .unwrap();
    assert_eq!(root.keyid(), root_id);
    assert_eq!(
        fs::read(dir.join("keyset.dsse.json")).unwrap(),
        fs::read(dir.join("public/keyset.dsse.json")).unwrap()
    );

    // The signing key the CLI wrote signs attestations that verify with the
    // public files alone.
    let valid_from = time(&keys[0]["valid_from"]);
    let env = sign_statement(&statement(valid_from), &[&signer(&dir, id)])
        .unwrap()
        .to_json()
        .unwrap();
    verify_public(&dir, &env).unwrap();
    // `show` works on the public folder too.
    assert_eq!(show_json(&dir.join("public"))["current"], id);
}

#[test]
fn rotate_retires_the_old_key_and_its_attestations_keep_verifying() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    ok(&["init", "--dir", s(&dir), "--algorithm", "ed25519"]);
    let before = show_json(&dir);
    let old_id = before["current"].as_str().unwrap().to_owned();
    let old_from = time(&before["keys"][0]["valid_from"]);
    let old_att = sign_statement(&statement(old_from), &[&signer(&dir, &old_id)])
        .unwrap()
        .to_json()
        .unwrap();
    verify_public(&dir, &old_att).unwrap();

    let out = ok(&["rotate", "--dir", s(&dir), "--algorithm", "ecdsa-p256"]);
    assert!(
        out.contains(&format!("retired signing key {old_id}")),
        "{out}"
    );

    let after = show_json(&dir);
    assert_eq!(after["keyset"]["version"], 2);
    assert_eq!(after["root"]["keyid"], before["root"]["keyid"]);
    let keys = after["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k["keyid"] == old_id.as_str()).unwrap();
    let new = keys.iter().find(|k| k["keyid"] != old_id.as_str()).unwrap();
    assert_eq!(old["status"], "retired");
    let until = time(&old["valid_until"]);
    assert_eq!(new["status"], "active");
    assert_eq!(new["algorithm"], "ecdsa-p256");
    assert_eq!(after["current"], new["keyid"]);

    // The attestation signed before the rotation verifies with the new key
    // set ...
    verify_public(&dir, &old_att).unwrap();
    // ... but the retired key cannot sign for a time after its retirement.
    let late = until + chrono::Duration::hours(1);
    let late_att = sign_statement(&statement(late), &[&signer(&dir, &old_id)])
        .unwrap()
        .to_json()
        .unwrap();
    assert_eq!(
        verify_public(&dir, &late_att).unwrap_err().code(),
        "keyset.key_not_valid"
    );
    // The new key signs from now on.
    let new_id = new["keyid"].as_str().unwrap();
    let new_att = sign_statement(&statement(late), &[&signer(&dir, new_id)])
        .unwrap()
        .to_json()
        .unwrap();
    verify_public(&dir, &new_att).unwrap();

    // The human-readable listing says the same.
    let text = ok(&["show", "--dir", s(&dir)]);
    assert!(
        text.contains("retired") && text.contains("active") && text.contains("version 2"),
        "{text}"
    );
}

#[test]
fn revoke_stops_verification_from_the_revocation_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    ok(&["init", "--dir", s(&dir)]);
    let shown = show_json(&dir);
    let id = shown["current"].as_str().unwrap().to_owned();
    let from = time(&shown["keys"][0]["valid_from"]);
    let at = from + chrono::Duration::days(1);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    ok(&[
        "revoke",
        "--dir",
        s(&dir),
        "--keyid",
        &id[..12],
        "--at",
        &at_text,
        "--reason",
        "key leaked",
    ]);

    let shown = show_json(&dir);
    assert_eq!(shown["keyset"]["version"], 2);
    assert_eq!(shown["keys"][0]["status"], "revoked");
    assert_eq!(shown["keys"][0]["revocation_reason"], "key leaked");
    assert_eq!(shown["current"], Value::Null);

    let key = signer(&dir, &id);
    let before = sign_statement(&statement(at - chrono::Duration::seconds(1)), &[&key])
        .unwrap()
        .to_json()
        .unwrap();
    verify_public(&dir, &before).unwrap();
    let after = sign_statement(&statement(at), &[&key])
        .unwrap()
        .to_json()
        .unwrap();
    let err = verify_public(&dir, &after).unwrap_err();
    assert_eq!(err.code(), "keyset.key_not_valid");
    assert!(err.to_string().contains("key leaked"), "{err}");

    // Rotating afterwards brings an active key back.
    ok(&["rotate", "--dir", s(&dir)]);
    assert_ne!(show_json(&dir)["current"], Value::Null);

    let out = keys(&["revoke", "--dir", s(&dir), "--keyid", "ffffffffffff"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.unknown_key"));
}

#[test]
fn init_refuses_to_overwrite_an_existing_key_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    ok(&["init", "--dir", s(&dir)]);
    let root_before = fs::read(dir.join("root.key")).unwrap();
    let keyset_before = fs::read(dir.join("keyset.dsse.json")).unwrap();

    let out = keys(&["init", "--dir", s(&dir)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keys.dir_exists"), "{err}");
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(fs::read(dir.join("root.key")).unwrap(), root_before);
    assert_eq!(
        fs::read(dir.join("keyset.dsse.json")).unwrap(),
        keyset_before
    );

    // Any non-empty directory is refused; an empty one is used.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), "mine").unwrap();
    assert!(!keys(&["init", "--dir", s(&other)]).status.success());
    assert_eq!(fs::read_to_string(other.join("notes.txt")).unwrap(), "mine");
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    ok(&["init", "--dir", s(&empty)]);
}

#[test]
fn show_refuses_a_key_set_not_signed_by_the_root_key() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    ok(&["init", "--dir", s(&a)]);
    ok(&["init", "--dir", s(&b)]);
    // b's key set, presented with a's root key.
    fs::copy(
        b.join("keyset.dsse.json"),
        a.join("public/keyset.dsse.json"),
    )
    .unwrap();
    let out = keys(&["show", "--dir", s(&a.join("public")), "--json"]);
    assert!(!out.status.success());
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "signature.threshold");
    let out = keys(&["show", "--dir", s(&a.join("public"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature.threshold"));

    // A pinned root public key overrides the one in the directory: b's
    // directory is self-consistent, but not under a's root.
    ok(&["show", "--dir", s(&b)]);
    let out = keys(&["show", "--dir", s(&b), "--root-pub", s(&a.join("root.pub"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature.threshold"));
    ok(&[
        "show",
        "--dir",
        s(&b),
        "--root-pub",
        s(&b.join("public/root.pub")),
    ]);

    // Rotating with a root key that is not the published one is refused.
    let out = keys(&[
        "rotate",
        "--dir",
        s(&a),
        "--root-key",
        s(&b.join("root.key")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.root_mismatch"));

    // A missing directory is a clear error, not a panic.
    let out = keys(&["show", "--dir", s(&tmp.path().join("nope"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.missing_file"));
}

fn openssl(args: &[&str]) -> bool {
    match Command::new("openssl").args(args).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => false,
    }
}

#[test]
fn keys_made_by_openssl_are_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { tmp.path().join(name) };
    // PKCS#8 P-256 root, SEC1 ("EC PRIVATE KEY") P-256 signing key, PKCS#8
    // Ed25519 key for the rotation.
    if !openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&p("root.pem")),
    ]) {
        util::require_or_skip("openssl not found");
        return;
    }
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        s(&p("sec1.pem")),
    ]);
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&p("ed.pem"))]);
    assert!(
        fs::read_to_string(p("sec1.pem"))
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    for (key, public) in [
        ("root.pem", "root.pub.pem"),
        ("sec1.pem", "sec1.pub.pem"),
        ("ed.pem", "ed.pub.pem"),
    ] {
        openssl(&["pkey", "-in", s(&p(key)), "-pubout", "-out", s(&p(public))]);
    }
    let keyid = |public: &str| {
        PublicKey::from_spki_pem(&fs::read_to_string(p(public)).unwrap())
            .unwrap()
            .keyid()
            .to_owned()
    };

    let dir = p("keys");
    ok(&[
        "init",
        "--dir",
        s(&dir),
        "--root-key",
        s(&p("root.pem")),
        "--signing-key",
        s(&p("sec1.pem")),
    ]);
    let shown = show_json(&dir);
    assert_eq!(shown["root"]["keyid"], keyid("root.pub.pem"));
    assert_eq!(shown["current"], keyid("sec1.pub.pem"));
    // The stored root.pub is OpenSSL's public key.
    assert_eq!(
        PublicKey::from_spki_pem(&fs::read_to_string(dir.join("root.pub")).unwrap())
            .unwrap()
            .keyid(),
        keyid("root.pub.pem")
    );

    ok(&["rotate", "--dir", s(&dir), "--signing-key", s(&p("ed.pem"))]);
    let shown = show_json(&dir);
    assert_eq!(shown["current"], keyid("ed.pub.pem"));
    let listed = shown["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed
            .iter()
            .find(|k| k["keyid"] == keyid("sec1.pub.pem").as_str())
            .unwrap()["status"],
        "retired"
    );

    // The imported Ed25519 key signs attestations that verify.
    let ed = FileSigner::load(&p("ed.pem")).unwrap();
    let from = time(&listed.iter().find(|k| k["status"] == "active").unwrap()["valid_from"]);
    let env = sign_statement(&statement(from), &[&ed])
        .unwrap()
        .to_json()
        .unwrap();
    verify_public(&dir, &env).unwrap();
    assert_eq!(ed.keyid(), keyid("ed.pub.pem"));

    // Garbage key files are refused with a code.
    fs::write(
        p("junk.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = keys(&[
        "init",
        "--dir",
        s(&p("k2")),
        "--root-key",
        s(&p("junk.pem")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key.invalid"));
    assert!(
        !p("k2").exists(),
        "a failed init must not leave a key directory behind"
    );
}

/// The layout in `dir` (or `dir/public`), verified with `dir/root.pub`.
fn layout(dir: &Path) -> veritrain_attest::intoto::Layout {
    let root =
        PublicKey::from_spki_pem(&fs::read_to_string(dir.join("root.pub")).unwrap()).unwrap();
    let bytes = fs::read(dir.join("public/root.layout")).unwrap();
    assert_eq!(bytes, fs::read(dir.join("root.layout")).unwrap());
    let block = veritrain_attest::intoto::parse_metablock(
        &bytes,
        &veritrain_attest::intoto::MetablockLimits::default(),
    )
    .unwrap();
    (*block.verify_layout(&[root], chrono::Utc::now()).unwrap()).clone()
}

#[test]
fn init_and_rotate_sign_the_job_layout_for_the_active_key_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    ok(&["init", "--dir", s(&dir)]);
    let first = show_json(&dir)["current"].as_str().unwrap().to_owned();
    let l = layout(&dir);
    assert_eq!(l.keys.keys().collect::<Vec<_>>(), [&first]);
    let names: Vec<&str> = l.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["intake", "run_training"]);
    for step in &l.steps {
        assert_eq!(step.pubkeys, std::slice::from_ref(&first));
        // Every rule list ends with DISALLOW *, so the rules constrain.
        for rules in [&step.expected_materials, &step.expected_products] {
            assert_eq!(rules.last().unwrap(), &["DISALLOW", "*"], "{}", step.name);
        }
    }
    let train = &l.steps[1];
    assert_eq!(
        train.expected_materials[0],
        ["MATCH", "inputs/*", "WITH", "PRODUCTS", "FROM", "intake"]
    );
    let expires = l.expires_at().unwrap();
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((364..=365).contains(&days), "{days}");

    ok(&["rotate", "--dir", s(&dir)]);
    let second = show_json(&dir)["current"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let l = layout(&dir);
    assert_eq!(l.keys.keys().collect::<Vec<_>>(), [&second]);
    assert!(
        l.steps
            .iter()
            .all(|s| s.pubkeys == std::slice::from_ref(&second))
    );

    // keys layout re-signs on demand, for the given number of days.
    ok(&["layout", "--dir", s(&dir), "--days", "30"]);
    let l = layout(&dir);
    let days = (l.expires_at().unwrap() - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{days}");
    let out = keys(&["layout", "--dir", s(&dir), "--days", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.layout_validity"));
}
