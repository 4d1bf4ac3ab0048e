//! `veritrain quickstart`: the main job on the embedded default, on a fresh
//! machine. It installs the trainer runtime if it is missing, creates demo
//! keys, trains the bundled example (a small synthetic tabular dataset and
//! its model, `examples/quickstart/`, compiled into the binary), verifies
//! the bundle with the pinned root key, and prints what a second person
//! needs to check it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use veritrain_pipeline::BundleOptions;
use veritrain_sandbox::Policy;

use super::train::{Printer, TrainJob, report_error, verify_command};

/// The example, compiled in so the command works from any directory.
const EXAMPLE: [(&str, &[u8]); 4] = [
    (
        "model.keras",
        include_bytes!("../../examples/quickstart/model.keras"),
    ),
    (
        "data.csv",
        include_bytes!("../../examples/quickstart/data.csv"),
    ),
    (
        "definition.yaml",
        include_bytes!("../../examples/quickstart/definition.yaml"),
    ),
    (
        "job.yaml",
        include_bytes!("../../examples/quickstart/job.yaml"),
    ),
];

/// Arguments of `veritrain quickstart`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo keys, the example and the bundles go.
    #[arg(long, default_value = "veritrain-quickstart")]
    dir: PathBuf,
    /// The trainer runtime (installed there if missing; default:
    /// $VERITRAIN_RUNTIME_DIR, else .venv/runtime).
    #[arg(long)]
    runtime: Option<PathBuf>,
}

/// Run the quickstart.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let runtime_dir = args
        .runtime
        .clone()
        .unwrap_or_else(veritrain_runtime::default_dir);
    let mut printer = Printer::new();

    printer.line(&format!(
        "== 1. trainer runtime ({})",
        runtime_dir.display()
    ));
    let runtime_dir = std::path::absolute(&runtime_dir)?;
    let runtime = match veritrain_runtime::VerifiedRuntime::verify(&runtime_dir) {
        Ok(r) => {
            printer.line(&format!(
                "  installed and intact ({} packages, hash-pinned; every file re-hashed)",
                r.identity().distributions.len()
            ));
            r
        }
        Err(e) => {
            printer.line(&format!(
                "  not usable yet ([{}] {e}); installing",
                e.code()
            ));
            let opts = veritrain_runtime::InstallOptions::new(&runtime_dir);
            veritrain_runtime::install(&opts, &mut |p| {
                if let veritrain_runtime::install::Progress::Step { index, total, what } = p {
                    eprintln!("  [{index}/{total}] {what}");
                }
            })
            .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
            veritrain_runtime::VerifiedRuntime::verify(&runtime_dir)
                .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?
        }
    };

    let keys = dir.join("keys");
    printer.line(&format!("== 2. demo keys ({})", keys.display()));
    if keys.join(veritrain_pipeline::keydir::KEYSET).is_file() {
        printer.line("  reusing the existing demo keys");
    } else {
        super::keys::init_demo(&keys)?;
    }

    let example = dir.join("example");
    std::fs::create_dir_all(&example)?;
    for (name, bytes) in EXAMPLE {
        std::fs::write(example.join(name), bytes)?;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let bundle = dir.join("bundles").join(format!("quickstart-{stamp}"));
    printer.line(&format!(
        "== 3. training the example ({}) into {}",
        example.display(),
        bundle.display()
    ));
    let job = TrainJob {
        model: &example.join("model.keras"),
        data: &example.join("data.csv"),
        definition: &example.join("definition.yaml"),
        request: Some(&example.join("job.yaml")),
        keys: &keys,
        out: &bundle,
        runtime: &runtime,
        operator: super::train::operator(None, Vec::new(), None),
        policy: Policy::default(),
    };
    let summary = match job.run(&mut printer) {
        Ok(s) => s,
        Err(e) => {
            report_error(&e, false);
            return Ok(ExitCode::from(1));
        }
    };

    printer.line("== 4. verifying the bundle offline with the pinned root key");
    let root_pub = keys
        .join(veritrain_pipeline::keydir::PUBLIC_DIR)
        .join(veritrain_pipeline::keydir::ROOT_PUB);
    let root =
        veritrain_attest::keys::PublicKey::from_spki_pem(&std::fs::read_to_string(&root_pub)?)?;
    let report = veritrain_pipeline::verify_bundle(
        &bundle,
        &BundleOptions {
            root: Some(root),
            artifacts: Vec::new(),
            keyset: None,
        },
    );
    print!("{}", super::verify::render(&report));
    if !report.passed() {
        eprintln!("error: the bundle the quickstart just made did not verify");
        return Ok(ExitCode::from(1));
    }

    println!();
    println!("== summary");
    match card_highlights(&bundle) {
        Ok(text) => print!("{text}"),
        // The bundle verified, so this is unexpected; say so rather than
        // print a summary that silently lacks the card.
        Err(why) => eprintln!(
            "warning: cannot show the model card highlights ({why}); \
             try `veritrain bom show {}`",
            bundle.display()
        ),
    }
    println!("bundle        {}", bundle.display());
    println!("job           {}", summary.job_id);
    println!(
        "time          {:.1}s in all, {:.1}s training in the sandbox",
        summary.timing.total.as_secs_f64(),
        summary.timing.training.as_secs_f64()
    );
    println!();
    println!("A second person checks it, offline, with the root key you give them:");
    println!("  {}", verify_command(&bundle, &keys));
    println!(
        "  cd {} && in-toto-verify --layout attestations/root.layout --verification-keys trust/root.pub --link-dir attestations",
        bundle.display()
    );
    println!("Read the model card:");
    println!(
        "  veritrain bom show {} --html model-card.html",
        bundle.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Model-card highlights from the bundle's AIBoM: the card's first three
/// sections as text, or why they cannot be shown.
fn card_highlights(bundle: &Path) -> Result<String, String> {
    let path = bundle.join(veritrain_pipeline::bundle::AIBOM);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bom = veritrain_bom::read_bom(&bytes)
        .map_err(|e| format!("{}: [{}] {e}", path.display(), e.code()))?;
    Ok(veritrain_bom::render::card(&bom)
        .iter()
        .take(3)
        .map(veritrain_bom::render::section_text)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_highlights_say_why_they_cannot_be_shown() {
        let dir = tempfile::tempdir().unwrap();
        let e = card_highlights(dir.path()).unwrap_err();
        assert!(e.contains("aibom.cdx.json"), "{e}");
        std::fs::write(dir.path().join("aibom.cdx.json"), b"{").unwrap();
        let e = card_highlights(dir.path()).unwrap_err();
        assert!(e.contains("aibom.cdx.json: ["), "{e}");
    }
}
