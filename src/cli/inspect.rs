//! `veritrain inspect`: run the intake gate on a model and, optionally, a
//! dataset with its definition, and print the verdicts.
//!
//! Exit status: 0 when everything given was accepted, 1 when anything was
//! refused. The gate's rules and codes are in `docs/keras-scanner.md`,
//! `docs/definition.md`, `docs/csv.md` and `docs/intake-archives.md`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use veritrain_intake::Finding;
use veritrain_intake::gate::{self, DataReport, DataVerdict, GateLimits};
use veritrain_intake::keras::KerasVerdict;

/// Arguments of `veritrain inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Keras v3 model (`.keras`) to scan.
    #[arg(long, value_name = "M")]
    model: PathBuf,
    /// A dataset to validate: CSV file, image ZIP or TFRecord file.
    #[arg(long, value_name = "D", requires = "definition")]
    data: Option<PathBuf>,
    /// The dataset definition (YAML) that describes `--data`.
    #[arg(long, value_name = "DEF", requires = "data")]
    definition: Option<PathBuf>,
    /// Print the verdicts as JSON.
    #[arg(long)]
    json: bool,
}

/// Run the gate and print its verdicts.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let limits = GateLimits::default();
    let mut model = gate::inspect_model(&args.model, &limits);
    let data = match (&args.data, &args.definition) {
        (Some(data), Some(def)) => Some(gate::inspect_dataset(data, def, &limits)),
        _ => None,
    };
    // The model must be able to consume the data it will be trained on.
    if let Some(def) = data.as_ref().and_then(|d| d.definition.as_ref()) {
        let misfit = gate::check_model_fits(&model, def);
        if !misfit.is_empty() {
            model.accepted = false;
            model.findings.extend(misfit);
        }
    }
    let accepted = model.accepted && data.as_ref().is_none_or(|d| d.accepted);

    let mut out = std::io::stdout().lock();
    if args.json {
        let body = serde_json::json!({"accepted": accepted, "model": model, "data": data});
        serde_json::to_writer_pretty(&mut out, &body)?;
        writeln!(out)?;
    } else {
        write_model(&mut out, &args.model, &model)?;
        if let (Some(verdict), Some(path)) = (&data, &args.data) {
            write_data(&mut out, path, verdict)?;
        }
        writeln!(
            out,
            "{}",
            if accepted {
                "verdict: accepted"
            } else {
                "verdict: REFUSED"
            }
        )?;
    }
    out.flush()?;
    Ok(if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn status(accepted: bool) -> &'static str {
    if accepted { "accepted" } else { "REFUSED" }
}

fn write_findings(out: &mut impl Write, findings: &[Finding]) -> std::io::Result<()> {
    for f in findings {
        writeln!(out, "  ✗ {f}")?;
    }
    Ok(())
}

fn write_model(
    out: &mut impl Write,
    path: &std::path::Path,
    v: &KerasVerdict,
) -> std::io::Result<()> {
    writeln!(out, "model {}: {}", path.display(), status(v.accepted))?;
    writeln!(
        out,
        "  keras {} · allow-list {}",
        v.keras_version.as_deref().unwrap_or("?"),
        v.allowlist_version
    )?;
    if let Some(m) = &v.model {
        let inputs: Vec<String> = m
            .input_shapes
            .iter()
            .map(|shape| {
                let dims: Vec<String> = shape
                    .iter()
                    .map(|d| d.map_or("None".to_owned(), |d| d.to_string()))
                    .collect();
                format!("({})", dims.join(", "))
            })
            .collect();
        writeln!(
            out,
            "  {} {:?}: {} layers, inputs {}, {}",
            m.class_name,
            m.name,
            m.layers.len(),
            inputs.join(" "),
            if m.compiled {
                "compiled"
            } else {
                "not compiled"
            }
        )?;
    }
    if let Some(n) = v.param_count {
        writeln!(out, "  parameters: {n}")?;
    }
    write_findings(out, &v.findings)
}

fn write_data(
    out: &mut impl Write,
    path: &std::path::Path,
    v: &DataVerdict,
) -> std::io::Result<()> {
    writeln!(out, "data {}: {}", path.display(), status(v.accepted))?;
    if let Some(def) = &v.definition {
        writeln!(
            out,
            "  definition: type {}, input_shape {:?}, output_shape {:?}",
            def.data.type_name(),
            def.input_shape,
            def.output_shape
        )?;
    }
    match &v.report {
        Some(DataReport::Csv(r)) => writeln!(out, "  rows: {}", r.rows)?,
        Some(DataReport::Image(r)) => writeln!(out, "  images: {}", r.images)?,
        Some(DataReport::Tfrecord(r)) => writeln!(out, "  records: {}", r.records)?,
        None => {}
    }
    write_findings(out, &v.findings)
}
