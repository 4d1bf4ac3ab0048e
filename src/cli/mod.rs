//! Subcommands of the `veritrain` binary. Each lives in its own module and
//! only wires arguments to the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_job;
mod bench_service;
mod bom;
mod bundle;
mod client;
mod hash;
mod inspect;
mod keys;
mod migrate;
mod quickstart;
mod runtime;
mod serve;
mod service;
mod train;
mod verify;
mod worker;

/// Veritrain: trusted training with signed, offline-verifiable provenance.
#[derive(Debug, Parser)]
#[command(name = "veritrain", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up the embedded default (SQLite + local disk) and run the main job.
    Quickstart(quickstart::Args),
    /// Create, rotate, revoke and show signing keys and the root-signed key set.
    Keys(keys::Args),
    /// Print the SHA-256 manifest and root digest of files or directories.
    Hash(hash::Args),
    /// Measure performance against reference tools.
    Bench(bench::Args),
    /// Show an AIBoM (CycloneDX 1.6 ML-BOM) as a model card, JSON or HTML.
    Bom(bom::Args),
    /// Run the intake gate on a model and, optionally, a dataset with its definition.
    Inspect(inspect::Args),
    /// Install and check the hash-pinned TensorFlow/Keras trainer runtime.
    Runtime(runtime::Args),
    /// Train a model in the sandbox and write a signed bundle.
    Train(train::Args),
    /// Run the service: the HTTP API (jobs, trust material, verification)
    /// with embedded workers; alone, the embedded default in ./veritrain-data.
    Serve(serve::Args),
    /// Run workers as a separate process against the configured database
    /// and object store.
    Worker(worker::Args),
    /// Create or upgrade the job database's schema.
    Migrate(migrate::Args),
    /// Pack a bundle directory into one ZIP file, or unpack one.
    Bundle(bundle::Args),
    /// Verify a bundle fully offline: signatures, key validity, the in-toto
    /// chain, every file, and the AIBoM, provenance and manifest.
    Verify(verify::Args),
    #[command(flatten)]
    Client(client::Command),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Quickstart(args) => quickstart::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Hash(args) => hash::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Bom(args) => bom::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Runtime(args) => runtime::run(args),
        Command::Train(args) => train::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Bundle(args) => bundle::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Worker(args) => worker::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Client(command) => client::run(command),
    }
}
