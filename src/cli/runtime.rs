//! `veritrain runtime`: install and check the trainer runtime
//! (`docs/runtime.md`).
//!
//! - `install [--dir DIR]`: build the hash-pinned TensorFlow/Keras venv
//!   from the lock compiled into this binary, or confirm in seconds that the
//!   installed one is intact;
//! - `check [--dir DIR] [--json]`: the tamper check that runs before every
//!   job, with the runtime's identity (inventory and root digest).
//!
//! DIR defaults to `$VERITRAIN_RUNTIME_DIR`, else `$VERITRAIN_HOME/runtime`,
//! else `.venv/runtime` in the current directory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use veritrain_runtime::install::Progress;
use veritrain_runtime::{Error, InstallOptions, VerifiedRuntime};

/// Arguments of `veritrain runtime`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RuntimeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RuntimeCommand {
    /// Create or confirm the runtime venv (tensorflow-cpu 2.21.0, keras
    /// 3.15.1) from the hash-pinned lock. Idempotent.
    Install(InstallArgs),
    /// Verify every file of the runtime against its recorded identity and
    /// print the identity.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct InstallArgs {
    /// Runtime directory (default: $VERITRAIN_RUNTIME_DIR, else
    /// $VERITRAIN_HOME/runtime, else .venv/runtime).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Runtime directory (default as for install).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the result and identity as JSON.
    #[arg(long)]
    json: bool,
}

/// Run `veritrain runtime ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        RuntimeCommand::Install(a) => install(&a),
        RuntimeCommand::Check(a) => check(&a),
    }
}

fn coded(e: &Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {e}", e.code())
}

fn install(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(veritrain_runtime::default_dir);
    let opts = InstallOptions::new(&dir);
    let mut stderr = std::io::stderr().lock();
    let start = std::time::Instant::now();
    let report = veritrain_runtime::install(&opts, &mut |p| {
        let _ = match p {
            Progress::Step { index, total, what } => writeln!(
                stderr,
                "[{index}/{total}] {what} (at {:.1}s)",
                start.elapsed().as_secs_f64()
            ),
            Progress::Output(line) => writeln!(stderr, "    {line}"),
            Progress::Note(note) => writeln!(stderr, "    {note}"),
        };
    })
    .map_err(|e| coded(&e))?;
    let id = &report.identity;
    print_out(&format!(
        "runtime {} at {}: {} distributions, {} files, {:.2} GB, root digest {} ({:.1}s)\n",
        if report.reused { "intact" } else { "installed" },
        dir.display(),
        id.distributions.len(),
        id.tree.stats.files,
        id.tree.stats.bytes as f64 / 1e9,
        id.tree.root_digest,
        report.elapsed.as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(veritrain_runtime::default_dir);
    let result = VerifiedRuntime::verify(&dir);
    let trainer = veritrain_runtime::trainer::sha256_hex();
    match result {
        Ok(v) => {
            let r = v.check_report();
            let id = v.identity();
            let mut out = String::new();
            if args.json {
                let body = json!({
                    "status": "intact",
                    "dir": dir,
                    "check": {
                        "files": r.stats.files,
                        "bytes": r.stats.bytes,
                        "seconds": r.elapsed.as_secs_f64(),
                        "threads": r.threads,
                    },
                    "trainer_sha256": trainer,
                    "identity": id.summary(),
                });
                let _ = writeln!(out, "{body:#}");
            } else {
                let _ = writeln!(out, "runtime {}: intact", dir.display());
                let _ = writeln!(
                    out,
                    "  checked {} files, {} directories, {} links, {:.2} GB in {:.2}s on {} threads",
                    r.stats.files,
                    r.stats.directories,
                    r.stats.symlinks,
                    r.stats.bytes as f64 / 1e9,
                    r.elapsed.as_secs_f64(),
                    r.threads
                );
                let _ = writeln!(out, "  root digest   {}", id.tree.root_digest);
                let _ = writeln!(
                    out,
                    "  interpreter   {} {} sha256:{}",
                    id.interpreter.path, id.interpreter.version, id.interpreter.sha256
                );
                let _ = writeln!(out, "  lock          sha256:{}", id.lock_sha256);
                let _ = writeln!(out, "  trainer       sha256:{trainer}");
                let _ = writeln!(out, "  installed at  {}", id.installed_at);
                let _ = writeln!(out, "  distributions ({}):", id.distributions.len());
                for d in &id.distributions {
                    let _ = writeln!(out, "    {:<40} {}  sha256:{}", d.purl, d.wheel, d.sha256);
                }
            }
            print_out(&out);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                let mut error = json!({"code": e.code(), "message": e.to_string()});
                if let Error::Tampered {
                    path,
                    change,
                    others,
                    ..
                } = &e
                {
                    error["path"] = json!(path);
                    error["change"] = json!(change);
                    error["others"] = json!(others);
                }
                print_out(&format!(
                    "{:#}\n",
                    json!({"status": "failed", "dir": dir, "error": error})
                ));
            }
            eprintln!("error: {}: {e}", e.code());
            Ok(ExitCode::from(1))
        }
    }
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
