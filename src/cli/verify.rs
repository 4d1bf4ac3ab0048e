//! `veritrain verify BUNDLE`: check a bundle fully offline and report every
//! check as ✓ or ✗ ([`veritrain_pipeline::verify_bundle`]). Exit status 0
//! only when every check passes, 1 when any fails, 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use veritrain_attest::keys::PublicKey;
use veritrain_pipeline::{BundleOptions, HeldArtifact, Report, verify_bundle};

/// Arguments of `veritrain verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle: a directory, or a ZIP file made by `veritrain bundle
    /// pack` (or downloaded from the service), extracted with the hardened
    /// intake ZIP reader into a temporary directory first.
    bundle: PathBuf,
    /// The operator's root public key (SPKI PEM), received through a
    /// channel you trust. Without it, the bundle's own trust/root.pub is
    /// used and the report says so.
    #[arg(long, value_name = "ROOT.pub")]
    root_key: Option<PathBuf>,
    /// A model or dataset you hold (a file, or a dataset directory): it
    /// must match the bundle by digest. Repeatable.
    #[arg(long, value_name = "FILE")]
    artifact: Vec<PathBuf>,
    /// A newer key set than the bundle's (the operator's latest
    /// public/keyset.dsse.json), so that keys revoked after the job are
    /// judged by it. It must not be older than the bundle's own.
    #[arg(long, value_name = "KEYSET.dsse.json")]
    keyset: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Run `veritrain verify`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = match &args.root_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the root key {}: {e}", path.display()))?;
            Some(
                PublicKey::from_spki_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{}: [{}] {e}", path.display(), e.code()))?,
            )
        }
        None => None,
    };
    let keyset = match &args.keyset {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read the key set {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let extracted = if args.bundle.is_dir() {
        None
    } else if args.bundle.is_file() {
        let dir = tempfile::Builder::new()
            .prefix("veritrain-verify-")
            .tempdir()?;
        let dest = dir.path().join("bundle");
        if let Err(e) = veritrain_pipeline::archive::unpack(&args.bundle, &dest) {
            anyhow::bail!(
                "{} is not a readable bundle archive: [{}] {e}",
                args.bundle.display(),
                e.code()
            );
        }
        Some((dir, dest))
    } else {
        anyhow::bail!(
            "{} is neither a bundle directory nor a bundle ZIP file",
            args.bundle.display()
        );
    };
    let dir = extracted.as_ref().map_or(args.bundle.as_path(), |(_, d)| d);
    let mut report = verify_bundle(
        dir,
        &BundleOptions {
            root,
            artifacts: args.artifact.iter().map(HeldArtifact::at).collect(),
            keyset,
        },
    );
    report.bundle = args.bundle.clone();
    if args.json {
        let mut body = serde_json::to_value(&report)?;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("passed".into(), report.passed().into());
        }
        println!("{body:#}");
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The report as text: one ✓/✗ line per check, its facts and failures.
pub fn render(report: &Report) -> String {
    let mut out = format!("verifying {}\n", report.bundle.display());
    if let Some(job) = &report.job_id {
        out.push_str(&format!("  job {job}\n"));
    }
    for check in &report.checks {
        let mark = if check.ok { "✓" } else { "✗" };
        out.push_str(&format!("{mark} {:<12} {}\n", check.id, check.title));
        for d in &check.details {
            out.push_str(&format!("      {d}\n"));
        }
        for f in &check.failures {
            out.push_str(&format!("      ✗ {}: {}\n", f.file, f.message));
        }
    }
    for n in &report.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    if report.passed() {
        out.push_str(&format!(
            "PASSED: all {} checks passed{}\n",
            report.checks.len(),
            if report.root_pinned {
                " against the pinned root key"
            } else {
                " (root key NOT pinned)"
            }
        ));
    } else {
        out.push_str(&format!(
            "FAILED: {failed} of {} checks failed\n",
            report.checks.len()
        ));
    }
    out
}
