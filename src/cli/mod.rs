//! Subcommands of the `veritrain` binary. Each lives in its own module and
//! only wires arguments to the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod keys;
mod quickstart;
mod runtime;

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
    /// Install and check the hash-pinned TensorFlow/Keras trainer runtime.
    Runtime(runtime::Args),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Quickstart(args) => quickstart::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Runtime(args) => runtime::run(args),
    }
}
