//! `veritrain bundle pack|unpack`: a bundle directory as one ZIP file and
//! back ([`veritrain_pipeline::archive`]). `veritrain verify` also takes the
//! ZIP file directly.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `veritrain bundle`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write a bundle directory as one ZIP file (stored entries, a fixed
    /// timestamp: the same bundle always packs to the same bytes).
    Pack {
        /// The bundle directory.
        bundle: PathBuf,
        /// The ZIP file to create (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Extract a bundle ZIP with the hardened intake ZIP reader.
    Unpack {
        /// The ZIP file.
        archive: PathBuf,
        /// The directory to create (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run `veritrain bundle`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let result = match &args.command {
        Command::Pack { bundle, out } => veritrain_pipeline::archive::pack(bundle, out),
        Command::Unpack { archive, out } => veritrain_pipeline::archive::unpack(archive, out),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            Ok(ExitCode::from(1))
        }
    }
}
