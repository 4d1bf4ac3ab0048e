//! The benchmarks of the main job (issue #6), both recorded in
//! `docs/benchmarks.md`:
//!
//! - [`provenance`]: `veritrain bench provenance` runs the quickstart job
//!   through [`veritrain_pipeline::run_job`] several times and splits its
//!   wall time into the sandboxed training, hashing, and the rest (the
//!   provenance overhead: gate, copies, signing, provenance, AIBoM).
//! - [`verify`]: `veritrain bench verify` builds one real bundle around a
//!   large dataset and times [`veritrain_pipeline::verify_bundle`] (in
//!   process and as `veritrain verify`) against `openssl dgst -sha256`
//!   over the same files.
//!
//! Both drive the same library calls as `veritrain train` and
//! `veritrain verify`, with demo keys made in a scratch directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use veritrain_attest::keys::PublicKey;
use veritrain_pipeline::keydir::{KEYSET, PUBLIC_DIR, ROOT_PUB};
use veritrain_runtime::VerifiedRuntime;

use super::bench::{load_average, machine_description};

pub mod provenance;
pub mod verify;

/// The demo key directory under `scratch`, created on first use (as
/// `veritrain quickstart` does) and reused afterwards.
fn demo_keys(scratch: &Path) -> anyhow::Result<PathBuf> {
    let keys = scratch.join("keys");
    if !keys.join(KEYSET).is_file() {
        super::keys::init_demo(&keys)?;
    }
    Ok(keys)
}

/// The pinned root public key of a key directory, and its path.
fn root_key(keys: &Path) -> anyhow::Result<(PublicKey, PathBuf)> {
    let path = keys.join(PUBLIC_DIR).join(ROOT_PUB);
    let pem =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let key = PublicKey::from_spki_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{}: [{}] {e}", path.display(), e.code()))?;
    Ok((key, path))
}

/// The runtime directory as `veritrain train` resolves it, made absolute
/// (the sandbox binds need an absolute path).
fn runtime_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = arg.map_or_else(veritrain_runtime::default_dir, Path::to_path_buf);
    Ok(std::path::absolute(&dir)?)
}

/// The per-job tamper check of the trainer runtime, timed.
fn check_runtime(dir: &Path) -> anyhow::Result<(VerifiedRuntime, Duration)> {
    let t = Instant::now();
    let runtime = VerifiedRuntime::verify(dir)
        .map_err(|e| anyhow::anyhow!("[{}] {e} (or pass --runtime)", e.code()))?;
    Ok((runtime, t.elapsed()))
}

/// A pipeline error as `[code] sentence`.
fn job_error(e: &veritrain_pipeline::Error) -> anyhow::Error {
    anyhow::anyhow!("[{}] {e}", e.code())
}

/// The facts every report starts with: the machine, how loaded it is, and
/// whether this binary was built with optimisations.
fn print_machine(title: &str) {
    println!("# {title}");
    println!("{}", machine_description());
    println!(
        "build: {} (workspace crates {}optimised)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        if cfg!(debug_assertions) { "not " } else { "" }
    );
    println!("load average before: {}", load_average());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
