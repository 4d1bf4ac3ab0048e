//! `veritrain quickstart`: the main job on the embedded default.
//!
//! The training pipeline (intake, sandboxed trainer, AIBoM) lands with the
//! main-job issue; until then this command says so and fails, rather than
//! pretending to have trained anything.

use std::process::ExitCode;

/// Arguments of `veritrain quickstart`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Report that the main job is not available yet.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    eprintln!(
        "veritrain quickstart: not yet available. The training pipeline (intake gate, \
         sandboxed trainer, AIBoM) is still being built; see the open issues. \
         What works today: `veritrain hash` and `veritrain keys`."
    );
    Ok(ExitCode::from(3))
}
