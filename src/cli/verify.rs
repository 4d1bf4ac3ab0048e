//! `veritrain verify BUNDLE`: check a bundle fully offline and report every
//! check as ✓ (passed), ✗ (failed) or – (not run, because a check it needs
//! failed) ([`veritrain_pipeline::verify_bundle`]). Exit status 0 only when
//! every check passes, 1 when any fails (an unreadable bundle archive
//! included), 2 on a usage error.
//!
//! The root key is pinned with `--root-key ROOT.pub` or, failing that, the
//! file named by `VERITRAIN_ROOT_KEY`; without either the `keyset` check
//! fails (`verify.root_not_pinned`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use veritrain_attest::keys::PublicKey;
use veritrain_pipeline::{BundleOptions, CheckStatus, HeldArtifact, Report, verify_bundle};

/// The environment variable naming the pinned root key file, used when
/// `--root-key` is not given.
pub const ROOT_KEY_ENV: &str = "VERITRAIN_ROOT_KEY";

/// Arguments of `veritrain verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle: a directory, or a ZIP file made by `veritrain bundle
    /// pack` (or downloaded from the service), extracted with the hardened
    /// intake ZIP reader into a temporary directory first.
    bundle: PathBuf,
    /// The operator's root public key (SPKI PEM), received through a
    /// channel you trust. Default: the file named by VERITRAIN_ROOT_KEY.
    /// Without either, verification fails (verify.root_not_pinned): the
    /// bundle's own trust/root.pub proves only that it agrees with itself.
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

/// The pinned root key file: `--root-key`, else `VERITRAIN_ROOT_KEY`.
pub fn root_key_path(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_owned).or_else(|| {
        std::env::var_os(ROOT_KEY_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Read a pinned root key file.
pub fn read_root_key(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the root key {}: {e}", path.display()))?;
    PublicKey::from_spki_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{}: [{}] {e}", path.display(), e.code()))
}

/// Run `veritrain verify`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = root_key_path(args.root_key.as_deref())
        .map(|p| read_root_key(&p))
        .transpose()?;
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
            // A bundle that cannot be read fails verification like any
            // other: a ✗ line naming the archive, exit 1.
            let report = Report::unreadable_archive(&args.bundle, e.code(), e.to_string());
            print_report(&report, args.json)?;
            return Ok(ExitCode::from(1));
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
    print_report(&report, args.json)?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        let mut body = serde_json::to_value(report)?;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("passed".into(), report.passed().into());
        }
        println!("{body:#}");
    } else {
        print!("{}", render(report));
    }
    Ok(())
}

/// The report as text: one line per check (✓ passed, ✗ failed, – not
/// run), its facts and failures, and a verdict that counts failed and
/// not-run checks apart.
pub fn render(report: &Report) -> String {
    let mut out = format!("verifying {}\n", report.bundle.display());
    if let Some(job) = &report.job_id {
        out.push_str(&format!("  job {job}\n"));
    }
    for check in &report.checks {
        let mark = match check.status {
            CheckStatus::Passed => "✓",
            CheckStatus::Failed => "✗",
            CheckStatus::NotRun => "–",
        };
        out.push_str(&format!("{mark} {:<12} {}\n", check.id, check.title));
        for d in &check.details {
            out.push_str(&format!("      {d}\n"));
        }
        for f in &check.failures {
            out.push_str(&format!("      ✗ {}: {}\n", f.file, f.message));
        }
        if let Some(needs) = &check.needs {
            let what = if check.details.is_empty() && check.failures.is_empty() {
                "not run"
            } else {
                "the rest not run"
            };
            out.push_str(&format!("      – {what} (needs {needs})\n"));
        }
    }
    for n in &report.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    if report.passed() {
        out.push_str(&format!(
            "PASSED: all {} checks passed against the pinned root key\n",
            report.checks.len()
        ));
    } else {
        let plural = |n: usize| if n == 1 { "check" } else { "checks" };
        let failed = report.count(CheckStatus::Failed);
        let mut parts = vec![format!("{failed} {} failed", plural(failed))];
        for (status, what) in [
            (CheckStatus::NotRun, "not run"),
            (CheckStatus::Passed, "passed"),
        ] {
            let n = report.count(status);
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        out.push_str(&format!("FAILED: {}\n", parts.join(", ")));
    }
    out
}
