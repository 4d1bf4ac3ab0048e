//! `veritrain bom show --bom FILE`: read an AIBoM (`aibom.cdx.json`), check
//! it against the CycloneDX 1.6 schema, and show it as a model card in the
//! terminal, as its JSON, or as a one-page HTML report.
//!
//! Reading a job's bundle (`veritrain bom show BUNDLE`, which also checks
//! the envelope's signature) comes with the bundle format. This command
//! only wires arguments to [`veritrain_bom`]; the card itself is
//! [`veritrain_bom::render`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `veritrain bom`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show an AIBoM: identity, metrics, datasets, environment, trust facts.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The BOM file (CycloneDX 1.6 JSON). It is validated against the
    /// official schema before anything is shown.
    #[arg(long, value_name = "FILE")]
    bom: PathBuf,
    /// Print the BOM's JSON (as in the file) instead of the card.
    #[arg(long)]
    json: bool,
    /// Also write the card as a self-contained HTML page to this file.
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
}

/// Run `veritrain bom`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Show(args) => show(args),
    }
}

/// Show the BOM. A file that cannot be read, is not JSON or breaks the
/// schema prints its error code (and each violation's JSON pointer) and
/// exits 1.
fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let (bytes, bom) =
        match veritrain_bom::read_bom_file(&args.bom, veritrain_bom::MAX_BOM_FILE_BYTES) {
            Ok(read) => read,
            Err(err) => {
                eprintln!("error[{}]: {err}", err.code());
                if let veritrain_bom::Error::Schema { violations } = &err {
                    for v in violations {
                        eprintln!("  {v}");
                    }
                }
                if args.json {
                    let body = serde_json::json!({
                        "error": {"code": err.code(), "message": err.to_string()}
                    });
                    writeln!(out, "{body}")?;
                }
                return Ok(ExitCode::from(1));
            }
        };
    if let Some(path) = &args.html {
        std::fs::write(path, veritrain_bom::render_html(&bom))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        out.write_all(&bytes)?;
        if !bytes.ends_with(b"\n") {
            writeln!(out)?;
        }
    } else {
        out.write_all(veritrain_bom::render_text(&bom).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
