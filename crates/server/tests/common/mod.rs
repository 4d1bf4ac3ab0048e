//! What the server's API tests share.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use veritrain_attest::keys::{Algorithm, PrivateKey};
use veritrain_attest::keyset::{KeySet, verify_keyset};
use veritrain_server::ServerConfig;

/// A key directory's public/ folder at `dir`, made with the libraries: a
/// fresh root key, one signing key, the key set and the job layout.
pub fn trust_dir(dir: &Path) {
    let now = chrono::Utc::now();
    let root = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let signing = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let envelope = KeySet::new(signing.public_key(), now)
        .unwrap()
        .sign(&root)
        .unwrap()
        .to_json()
        .unwrap();
    let keyset = verify_keyset(&envelope, root.public_key(), &Default::default()).unwrap();
    let layout = veritrain_pipeline::layout::sign_job_layout(&keyset, &root, now, 30).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("root.pub"),
        root.public_key().to_spki_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("keyset.dsse.json"), envelope).unwrap();
    std::fs::write(dir.join("root.layout"), layout).unwrap();
}

/// A verification-node configuration over `dir/public` (which must exist)
/// with `dir` as scratch space, plus `extra` TOML.
pub fn config(dir: &Path, extra: &str) -> ServerConfig {
    ServerConfig::from_toml(&format!(
        "trust_dir = {:?}\nscratch_dir = {:?}\n{extra}",
        dir.join("public").to_str().unwrap(),
        dir.to_str().unwrap()
    ))
    .unwrap()
}
