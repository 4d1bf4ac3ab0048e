//! `veritrain bom show BUNDLE` / `--bom FILE`: show a job's AIBoM as a
//! model card in the terminal, as its JSON, or as a one-page HTML report.
//!
//! From a bundle (a directory, or a bundle ZIP unpacked with the hardened
//! reader into a temporary directory, as `veritrain verify` does), the BOM
//! shown is the one inside the signed envelope
//! (`attestations/aibom.dsse.json`), verified against the bundle's
//! root-signed key set first (pin the root with `--root-key` or
//! `VERITRAIN_ROOT_KEY`); a bare
//! `--bom FILE` is only checked against the CycloneDX 1.6 schema. This
//! command only wires arguments to [`veritrain_bom`]; the card itself is
//! [`veritrain_bom::render`].

use std::io::Write;
use std::path::{Path, PathBuf};
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
    /// A job's bundle (a directory or a bundle ZIP): the signed AIBoM in it
    /// is verified and shown.
    #[arg(
        value_name = "BUNDLE",
        required_unless_present = "bom",
        conflicts_with = "bom"
    )]
    bundle: Option<PathBuf>,
    /// A bare BOM file (CycloneDX 1.6 JSON) instead of a bundle. It is
    /// validated against the official schema; it carries no signature.
    #[arg(long, value_name = "FILE")]
    bom: Option<PathBuf>,
    /// With BUNDLE: the operator's root public key to verify the key set
    /// with (default: the file named by VERITRAIN_ROOT_KEY, else the
    /// bundle's own trust/root.pub, which the card then says).
    #[arg(long, value_name = "ROOT.pub", requires = "bundle")]
    root_key: Option<PathBuf>,
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
    let mut header = String::new();
    // A bundle ZIP is unpacked first; the directory lives until the end.
    let mut unpacked = None;
    if let Some(bundle) = args.bundle.as_deref().filter(|b| b.is_file()) {
        let dir = tempfile::Builder::new()
            .prefix("veritrain-bom-")
            .tempdir()?;
        let dest = dir.path().join("bundle");
        if let Err(e) = veritrain_pipeline::archive::unpack(bundle, &dest) {
            let message = format!("{} is not a readable bundle archive: {e}", bundle.display());
            eprintln!("error[{}]: {message}", e.code());
            if args.json {
                let body = serde_json::json!({"error": {"code": e.code(), "message": message}});
                writeln!(out, "{body}")?;
            }
            return Ok(ExitCode::from(1));
        }
        unpacked = Some((dir, dest));
    }
    let root_key = super::verify::root_key_path(args.root_key.as_deref());
    let read = match (&args.bundle, &args.bom) {
        (Some(bundle), _) => read_bundle_bom(
            unpacked.as_ref().map_or(bundle.as_path(), |(_, d)| d),
            bundle,
            root_key.as_deref(),
            &mut header,
        ),
        (None, Some(file)) => veritrain_bom::read_bom_file(file, veritrain_bom::MAX_BOM_FILE_BYTES),
        (None, None) => anyhow::bail!("give a BUNDLE or --bom FILE"),
    };
    let (bytes, bom) = match read {
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
        out.write_all(header.as_bytes())?;
        out.write_all(veritrain_bom::render_text(&bom).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The signed BOM of the bundle in directory `bundle` (named `shown`),
/// verified against the bundle's key set; the trust facts go to `header`.
fn read_bundle_bom(
    bundle: &Path,
    shown: &Path,
    root_key: Option<&Path>,
    header: &mut String,
) -> veritrain_bom::Result<(Vec<u8>, veritrain_bom::Bom)> {
    use veritrain_attest::dsse::Limits;
    use veritrain_attest::keys::PublicKey;
    use veritrain_pipeline::bundle::{AIBOM_ENVELOPE, TRUST_KEYSET, TRUST_ROOT};
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| veritrain_bom::Error::Io {
            path: p.to_owned(),
            source,
        })
    };
    let root_path = root_key.map_or_else(|| bundle.join(TRUST_ROOT), Path::to_owned);
    let root = PublicKey::from_spki_pem(&String::from_utf8_lossy(&read(&root_path)?))?;
    let keyset = veritrain_attest::keyset::verify_keyset(
        &read(&bundle.join(TRUST_KEYSET))?,
        &root,
        &Limits::default(),
    )?;
    let signed = veritrain_bom::verify_bom_with_keyset(
        &read(&bundle.join(AIBOM_ENVELOPE))?,
        &keyset,
        &Limits::default(),
    )?;
    header.push_str(&format!(
        "Signed AIBoM from {}: signature verified, signed by {} (key set version {}, root key {}{})\n\n",
        shown.display(),
        signed.signers().join(", "),
        keyset.version,
        root.keyid(),
        if root_key.is_some() {
            ", pinned"
        } else {
            ", taken from the bundle, NOT pinned: pin it with --root-key ROOT.pub or VERITRAIN_ROOT_KEY"
        }
    ));
    let bytes = signed.bom_json().as_bytes().to_vec();
    Ok((bytes, signed.bom().clone()))
}
