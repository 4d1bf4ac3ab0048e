//! `veritrain train`: run the main job (intake gate, sandboxed training,
//! attestation) into a signed bundle. Only wires arguments and progress
//! output to [`veritrain_pipeline::run_job`].

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use veritrain_bom::input::{Contact, Organization};
use veritrain_intake::gate::GateLimits;
use veritrain_pipeline::{
    JobInputs, JobKeys, JobSettings, JobSummary, PlatformBinary, Progress, Stage, run_job,
};
use veritrain_runtime::TrainerEvent;
use veritrain_sandbox::{Bubblewrap, Policy};

/// Arguments of `veritrain train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Keras v3 model (`.keras`) to train.
    #[arg(long)]
    model: PathBuf,
    /// The dataset: a CSV file, a ZIP of images, or a TFRecord file.
    #[arg(long)]
    data: PathBuf,
    /// The dataset definition (YAML, docs/definition.md).
    #[arg(long)]
    definition: PathBuf,
    /// The job request: model metadata and fit parameters (YAML,
    /// docs/bundle.md). Without it the model is named after its file.
    #[arg(long, value_name = "JOB.yaml")]
    job: Option<PathBuf>,
    /// The key directory made by `veritrain keys init`.
    #[arg(long)]
    keys: PathBuf,
    /// The bundle directory to create (must not exist).
    #[arg(long)]
    out: PathBuf,
    /// The trainer runtime (default: $VERITRAIN_RUNTIME_DIR, else
    /// .venv/runtime).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// The platform operator named as the AIBoM's supplier (default:
    /// $VERITRAIN_OPERATOR, else the user and host running the job).
    #[arg(long, env = "VERITRAIN_OPERATOR")]
    operator: Option<String>,
    /// A web site of the operator, recorded with the supplier (repeatable).
    #[arg(long = "operator-url")]
    operator_url: Vec<String>,
    /// A contact e-mail address of the operator, recorded with the supplier.
    #[arg(long = "operator-email")]
    operator_email: Option<String>,
    /// Wall-clock limit of the training, in seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Memory limit of the training, in MiB.
    #[arg(long, default_value_t = 4096)]
    memory_mib: u64,
    /// CPU cores the training may use (a cgroup quota; default: all).
    #[arg(long)]
    cpus: Option<f64>,
    /// Print the result as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Run `veritrain train`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut policy = Policy::default();
    policy.limits.wall_time = std::time::Duration::from_secs(args.timeout);
    policy.limits.memory_bytes = Some(args.memory_mib.saturating_mul(1 << 20));
    policy.limits.cpu_quota_cores = args.cpus;
    let runtime_dir = args
        .runtime
        .clone()
        .unwrap_or_else(veritrain_runtime::default_dir);
    let mut printer = Printer::new();
    // The key directory first: it is cheap to check, the runtime is not.
    if let Err(e) = JobKeys::load(&args.keys, chrono::Utc::now()) {
        report_error(&e, args.json);
        return Ok(ExitCode::from(1));
    }
    let runtime = match check_runtime(&runtime_dir, &mut printer) {
        Ok(r) => r,
        Err(e) => {
            report_error(&e, args.json);
            return Ok(ExitCode::from(1));
        }
    };
    let job = TrainJob {
        model: &args.model,
        data: &args.data,
        definition: &args.definition,
        request: args.job.as_deref(),
        keys: &args.keys,
        out: &args.out,
        runtime: &runtime,
        operator: operator(
            args.operator.clone(),
            args.operator_url.clone(),
            args.operator_email.clone(),
        ),
        policy,
    };
    match job.run(&mut printer) {
        Ok(summary) => {
            if args.json {
                println!("{}", summary_json(&summary, &args.keys));
            } else {
                print_summary(&summary, &args.keys);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            report_error(&e, args.json);
            Ok(ExitCode::from(1))
        }
    }
}

/// One `train` run, shared with `quickstart`.
/// The AIBoM's supplier: the operator named on the command line (or
/// `$VERITRAIN_OPERATOR`), else the user and host running the job, with
/// its web sites and contact address when given.
pub fn operator(name: Option<String>, url: Vec<String>, email: Option<String>) -> Organization {
    let name = name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(veritrain_pipeline::host::local_operator);
    let contact = email
        .map(|email| Contact {
            name: name.clone(),
            email: Some(email),
        })
        .into_iter()
        .collect();
    Organization { name, url, contact }
}

pub struct TrainJob<'a> {
    pub model: &'a Path,
    pub data: &'a Path,
    pub definition: &'a Path,
    pub request: Option<&'a Path>,
    pub keys: &'a Path,
    pub out: &'a Path,
    pub runtime: &'a veritrain_runtime::VerifiedRuntime,
    pub operator: Organization,
    pub policy: Policy,
}

impl TrainJob<'_> {
    /// Load the keys, the runtime and the sandbox, then run the job.
    pub fn run(&self, printer: &mut Printer) -> Result<JobSummary, veritrain_pipeline::Error> {
        let keys = JobKeys::load(self.keys, chrono::Utc::now())?;
        let sandbox = Bubblewrap::new()?;
        let settings = JobSettings {
            out: self.out,
            runtime: self.runtime,
            sandbox: &sandbox,
            policy: &self.policy,
            gate: GateLimits::default(),
            supplier: self.operator.clone(),
            job_id: None,
            binary: PlatformBinary::current(env!("CARGO_PKG_VERSION"))?,
            cancel: None,
        };
        let inputs = JobInputs {
            model: self.model,
            data: self.data,
            definition: self.definition,
            request: self.request,
        };
        let result = run_job(&inputs, &settings, &keys, &mut |p| printer.progress(&p));
        printer.finish_line();
        result
    }
}

/// Verify the runtime at `dir` (every file re-hashed), reporting on
/// `printer`. The sandbox binds need an absolute path.
pub fn check_runtime(
    dir: &Path,
    printer: &mut Printer,
) -> Result<veritrain_runtime::VerifiedRuntime, veritrain_pipeline::Error> {
    let dir = std::path::absolute(dir).map_err(|e| veritrain_pipeline::Error::Io {
        path: dir.to_owned(),
        source: e,
    })?;
    printer.line(&format!(
        "checking the trainer runtime at {}",
        dir.display()
    ));
    let t = Instant::now();
    let runtime = veritrain_runtime::VerifiedRuntime::verify(&dir)?;
    printer.line(&format!(
        "  runtime intact ({} files re-hashed in {:.1}s)",
        runtime.identity().tree.stats.files,
        t.elapsed().as_secs_f64()
    ));
    Ok(runtime)
}

/// Terminal progress on stderr: one line per stage, a bar per epoch with
/// its loss and metrics, and hashing progress for large inputs. On a
/// terminal the epoch bar and the hashing line are redrawn in place; when
/// stderr is a pipe or a file (CI logs, `2>log`) there is one plain line per
/// finished epoch, and a hashing line at every further 10 % or every
/// [`PLAIN_HASH_EVERY`], whichever comes first.
pub struct Printer {
    out: Box<dyn Write>,
    tty: bool,
    open_line: bool,
    batch_size: u64,
    steps_per_epoch: Option<u64>,
    epochs: u64,
    initial_epoch: u64,
    /// Off a terminal: what was hashed when the last hashing line was
    /// printed, at which tenth, and when.
    last_hash_line: Option<(&'static str, u64, Instant)>,
}

/// Off a terminal, the longest wait between two hashing progress lines.
const PLAIN_HASH_EVERY: Duration = Duration::from_secs(5);

impl Printer {
    pub fn new() -> Printer {
        Printer::to(Box::new(std::io::stderr()), std::io::stderr().is_terminal())
    }

    /// A printer writing to `out`, drawing in place when `tty`.
    fn to(out: Box<dyn Write>, tty: bool) -> Printer {
        Printer {
            out,
            tty,
            open_line: false,
            batch_size: 32,
            steps_per_epoch: None,
            epochs: 0,
            initial_epoch: 0,
            last_hash_line: None,
        }
    }

    pub fn line(&mut self, text: &str) {
        self.finish_line();
        let _ = writeln!(self.out, "{text}");
    }

    fn finish_line(&mut self) {
        if self.open_line {
            let _ = writeln!(self.out);
            self.open_line = false;
        }
    }

    fn redraw(&mut self, text: &str) {
        if self.tty {
            let _ = write!(self.out, "\r\x1b[2K{text}");
            let _ = self.out.flush();
            self.open_line = true;
        }
    }

    /// Off a terminal, whether a hashing line at `pct` % of `what` is due:
    /// the first one, one at each further tenth, or one after
    /// [`PLAIN_HASH_EVERY`] without.
    fn hash_line_due(&mut self, what: &'static str, pct: u64) -> bool {
        let now = Instant::now();
        let tenth = pct / 10;
        let due = match self.last_hash_line {
            Some((w, t, at)) if w == what => {
                tenth > t || now.duration_since(at) >= PLAIN_HASH_EVERY
            }
            _ => true,
        };
        if due {
            self.last_hash_line = Some((what, tenth, now));
        }
        due
    }

    fn progress(&mut self, p: &Progress<'_>) {
        match p {
            Progress::Stage(stage) => self.line(match stage {
                Stage::Intake => {
                    "[1/4] intake: copying the inputs into the bundle and running the gate"
                }
                Stage::Train => "[2/4] training in the sandbox",
                Stage::Check => "[3/4] re-hashing every input the sandbox could see",
                Stage::Attest => "[4/4] hashing the outputs and signing the attestations",
            }),
            Progress::Accepted { job_id, fit } => {
                self.batch_size = u64::from(fit.batch_size.max(1));
                self.steps_per_epoch = fit.steps_per_epoch.map(u64::from);
                self.epochs = u64::from(fit.epochs);
                self.initial_epoch = u64::from(fit.initial_epoch);
                self.line(&format!(
                    "  accepted by the intake gate; job {job_id}: {} epochs, batch size {}, seed {}",
                    fit.epochs, fit.batch_size, fit.seed
                ));
            }
            Progress::HashStart { what, bytes } => {
                self.last_hash_line = None;
                self.redraw(&format!("  hashing {what} ({}) ...", human_bytes(*bytes)));
            }
            Progress::Hashing { what, done, total } => {
                // Reported only for inputs over 64 MiB, about five times a
                // second.
                let pct = if *total > 0 { done * 100 / total } else { 100 };
                let text = format!(
                    "  hashing {what}: {} of {} ({pct}%)",
                    human_bytes(*done),
                    human_bytes(*total)
                );
                if self.tty {
                    self.redraw(&text);
                } else if self.hash_line_due(what, pct) {
                    self.line(&text);
                }
            }
            Progress::HashDone {
                what,
                bytes,
                elapsed,
            } => {
                self.last_hash_line = None;
                let secs = elapsed.as_secs_f64();
                let rate = if secs > 0.0 {
                    format!(", {:.0} MB/s", *bytes as f64 / 1e6 / secs)
                } else {
                    String::new()
                };
                self.line(&format!(
                    "  hashed {what}: {} in {secs:.2}s{rate}",
                    human_bytes(*bytes)
                ));
            }
            Progress::Trainer(e) => self.trainer(e),
        }
    }

    fn trainer(&mut self, e: &TrainerEvent) {
        match e {
            TrainerEvent::Start {
                python,
                tensorflow,
                keras,
            } => self.line(&format!(
                "  trainer started: Python {python}, TensorFlow {tensorflow}, Keras {keras}"
            )),
            TrainerEvent::ModelLoaded { parameters, .. } => {
                self.line(&format!("  model loaded: {parameters} parameters"));
            }
            TrainerEvent::Data {
                kind,
                examples,
                train,
                validation,
            } => {
                if self.steps_per_epoch.is_none() {
                    self.steps_per_epoch = Some(train.div_ceil(self.batch_size).max(1));
                }
                self.line(&format!(
                    "  data: {examples} {kind} examples, {train} for training, {validation} held out"
                ));
            }
            TrainerEvent::EpochBegin { epoch } => {
                self.redraw(&self.bar(*epoch, 0, &[]));
            }
            TrainerEvent::Step {
                epoch,
                step,
                loss,
                metrics,
            } => {
                let mut m: Vec<(String, f64)> = Vec::new();
                if let Some(l) = loss {
                    m.push(("loss".into(), *l));
                }
                m.extend(
                    metrics
                        .iter()
                        .filter(|(k, _)| k.as_str() != "loss")
                        .filter_map(|(k, v)| Some((k.clone(), (*v)?))),
                );
                let text = self.bar(*epoch, *step, &m);
                self.redraw(&text);
            }
            TrainerEvent::Epoch { epoch, metrics } => {
                let m: Vec<(String, f64)> = metrics
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), (*v)?)))
                    .collect();
                let steps = self.steps_per_epoch.unwrap_or(1);
                let text = self.bar(*epoch, steps, &m);
                self.line(&text);
            }
            TrainerEvent::Evaluation { examples, metrics } => {
                let m: Vec<String> = metrics
                    .iter()
                    .filter_map(|(k, v)| Some(format!("{k} {:.4}", (*v)?)))
                    .collect();
                self.line(&format!(
                    "  final evaluation on {examples} held-out examples: {}",
                    m.join(", ")
                ));
            }
            TrainerEvent::Error { code, message } => {
                self.line(&format!("  trainer error [{code}]: {message}"));
            }
            _ => {}
        }
    }

    fn bar(&self, epoch: u64, step: u64, metrics: &[(String, f64)]) -> String {
        const WIDTH: u64 = 24;
        let total = self.steps_per_epoch.unwrap_or(1).max(1);
        let filled = (step.min(total) * WIDTH) / total;
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let m: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        format!(
            "  epoch {epoch:>3}/{} [{bar}] {:>4}/{total}  {}",
            self.epochs,
            step.min(total),
            m.join("  ")
        )
    }
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// The command a second person runs to check `bundle`.
pub fn verify_command(bundle: &Path, keys: &Path) -> String {
    format!(
        "veritrain verify {} --root-key {}",
        bundle.display(),
        keys.join(veritrain_pipeline::keydir::PUBLIC_DIR)
            .join(veritrain_pipeline::keydir::ROOT_PUB)
            .display()
    )
}

fn print_summary(s: &JobSummary, keys: &Path) {
    println!("bundle written: {}", s.bundle.display());
    println!("  job            {}", s.job_id);
    println!(
        "  trained model  outputs/model.keras  sha256 {}",
        s.model_sha256
    );
    println!("  signed by      {}", s.signer);
    let logs: Vec<String> = s
        .final_logs
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    if !logs.is_empty() {
        println!("  last epoch     {}", logs.join(", "));
    }
    println!(
        "  time           {:.1}s total, {:.1}s training in the sandbox, {:.2}s hashing",
        s.timing.total.as_secs_f64(),
        s.timing.training.as_secs_f64(),
        s.timing.hashing.as_secs_f64()
    );
    println!("verify it with: {}", verify_command(&s.bundle, keys));
}

fn summary_json(s: &JobSummary, keys: &Path) -> serde_json::Value {
    serde_json::json!({
        "job_id": s.job_id,
        "bundle": s.bundle,
        "model_sha256": s.model_sha256,
        "signer": s.signer,
        "final_logs": s.final_logs,
        "timing_seconds": {
            "total": s.timing.total.as_secs_f64(),
            "training": s.timing.training.as_secs_f64(),
            "hashing": s.timing.hashing.as_secs_f64(),
        },
        "verify_command": verify_command(&s.bundle, keys),
    })
}

/// Print a job error: the code, the sentence, and every gate finding.
pub fn report_error(e: &veritrain_pipeline::Error, json: bool) {
    eprintln!("error[{}]: {e}", e.code());
    let findings = match e {
        veritrain_pipeline::Error::Rejected { findings } => findings.clone(),
        _ => Vec::new(),
    };
    if json {
        let body = serde_json::json!({
            "error": {
                "code": e.code(),
                "message": e.to_string(),
                "findings": findings.iter().map(|f| serde_json::json!({
                    "code": f.code,
                    "message": f.to_string(),
                })).collect::<Vec<_>>(),
            }
        });
        println!("{body:#}");
    }
}

#[cfg(test)]
mod tests {
    //! What `veritrain train` prints on stderr, from synthetic progress
    //! events, on a terminal and off one; and whom it names as the supplier.

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use veritrain_runtime::FitParams;

    use super::*;

    /// A `Write` whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn printer(tty: bool) -> (Printer, Captured) {
        let out = Captured::default();
        (Printer::to(Box::new(out.clone()), tty), out)
    }

    fn fit() -> FitParams {
        FitParams {
            epochs: 2,
            batch_size: 32,
            validation_split: 0.2,
            initial_epoch: 0,
            steps_per_epoch: None,
            validation_steps: None,
            validation_freq: 1,
            shuffle: true,
            seed: 7,
            split_seed: 7,
            optimizer: None,
            loss: None,
            metrics: None,
        }
    }

    fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, Option<f64>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(*v)))
            .collect()
    }

    /// A two-epoch training run as the trainer reports it: 480 training
    /// examples in batches of 32 (15 steps), a step event every 5 steps.
    fn train(p: &mut Printer) {
        let fit = fit();
        p.progress(&Progress::Accepted {
            job_id: "job-1",
            fit: &fit,
        });
        p.progress(&Progress::Stage(Stage::Train));
        let events = [
            TrainerEvent::Data {
                kind: "csv".into(),
                examples: 600,
                train: 480,
                validation: 120,
            },
            TrainerEvent::EpochBegin { epoch: 1 },
            TrainerEvent::Step {
                epoch: 1,
                step: 5,
                loss: Some(1.2),
                metrics: metrics(&[("accuracy", 0.3)]),
            },
            TrainerEvent::Step {
                epoch: 1,
                step: 10,
                loss: Some(0.9),
                metrics: metrics(&[("accuracy", 0.5)]),
            },
            TrainerEvent::Epoch {
                epoch: 1,
                metrics: metrics(&[("loss", 0.8), ("accuracy", 0.6), ("val_loss", 0.7)]),
            },
            TrainerEvent::EpochBegin { epoch: 2 },
            TrainerEvent::Step {
                epoch: 2,
                step: 5,
                loss: Some(0.6),
                metrics: metrics(&[("accuracy", 0.7)]),
            },
            TrainerEvent::Epoch {
                epoch: 2,
                metrics: metrics(&[("loss", 0.5), ("accuracy", 0.8), ("val_loss", 0.55)]),
            },
            TrainerEvent::Evaluation {
                examples: 120,
                metrics: metrics(&[("loss", 0.55), ("accuracy", 0.79)]),
            },
        ];
        for e in &events {
            p.progress(&Progress::Trainer(e));
        }
    }

    #[test]
    fn off_a_terminal_each_epoch_is_one_plain_line_with_its_loss_and_metrics() {
        let (mut p, out) = printer(false);
        train(&mut p);
        let text = out.text();
        assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
        let epochs: Vec<&str> = text.lines().filter(|l| l.contains("epoch ")).collect();
        assert_eq!(
            epochs,
            [
                "  epoch   1/2 [########################]   15/15  accuracy 0.6000  loss 0.8000  val_loss 0.7000",
                "  epoch   2/2 [########################]   15/15  accuracy 0.8000  loss 0.5000  val_loss 0.5500",
            ],
            "{text}"
        );
        assert!(
            text.contains(
                "final evaluation on 120 held-out examples: accuracy 0.7900, loss 0.5500"
            ),
            "{text}"
        );
        assert!(text.contains("[2/4] training in the sandbox"), "{text}");
    }

    #[test]
    fn on_a_terminal_the_epoch_bar_is_redrawn_in_place_with_the_running_loss() {
        let (mut p, out) = printer(true);
        train(&mut p);
        p.finish_line();
        let text = out.text();
        // The step after 10 of 15 batches: 16 of 24 cells filled.
        assert!(
            text.contains(
                "\r\x1b[2K  epoch   1/2 [################........]   10/15  loss 0.9000  accuracy 0.5000"
            ),
            "{text:?}"
        );
        // Each finished epoch stays on its own line.
        assert!(
            text.contains("15/15  accuracy 0.6000  loss 0.8000  val_loss 0.7000\n"),
            "{text:?}"
        );
    }

    /// Hashing 1 GB reported every 2 %, as `run_job` reports inputs over
    /// 64 MiB.
    fn hash_a_gigabyte(p: &mut Printer) {
        let total = 1_000_000_000;
        p.progress(&Progress::HashStart {
            what: "inputs",
            bytes: total,
        });
        for pct in (2..=100).step_by(2) {
            p.progress(&Progress::Hashing {
                what: "inputs",
                done: total / 100 * pct,
                total,
            });
        }
        p.progress(&Progress::HashDone {
            what: "inputs",
            bytes: total,
            elapsed: Duration::from_secs(4),
        });
    }

    #[test]
    fn off_a_terminal_hashing_a_large_input_prints_a_line_every_tenth() {
        let (mut p, out) = printer(false);
        hash_a_gigabyte(&mut p);
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        let mut expected = vec!["  hashing inputs: 20.0 MB of 1.00 GB (2%)".to_owned()];
        expected.extend((1..=9).map(|t| {
            format!(
                "  hashing inputs: {}.0 MB of 1.00 GB ({}%)",
                t * 100,
                t * 10
            )
        }));
        expected.push("  hashing inputs: 1.00 GB of 1.00 GB (100%)".to_owned());
        expected.push("  hashed inputs: 1.00 GB in 4.00s, 250 MB/s".to_owned());
        assert_eq!(lines, expected, "{text}");
    }

    #[test]
    fn on_a_terminal_hashing_progress_is_redrawn_in_place() {
        let (mut p, out) = printer(true);
        hash_a_gigabyte(&mut p);
        let text = out.text();
        assert!(
            text.starts_with("\r\x1b[2K  hashing inputs (1.00 GB) ..."),
            "{text:?}"
        );
        assert!(
            text.contains("\r\x1b[2K  hashing inputs: 500.0 MB of 1.00 GB (50%)"),
            "{text:?}"
        );
        assert!(
            text.ends_with("\n  hashed inputs: 1.00 GB in 4.00s, 250 MB/s\n"),
            "{text:?}"
        );
    }

    #[test]
    fn off_a_terminal_a_small_input_prints_only_the_hashed_line() {
        // No `Hashing` events below 64 MiB: the start is not drawn either.
        let (mut p, out) = printer(false);
        p.progress(&Progress::HashStart {
            what: "outputs",
            bytes: 21_000,
        });
        p.progress(&Progress::HashDone {
            what: "outputs",
            bytes: 21_000,
            elapsed: Duration::from_millis(1),
        });
        assert_eq!(out.text(), "  hashed outputs: 21.0 kB in 0.00s, 21 MB/s\n");
    }

    #[test]
    fn the_supplier_is_the_named_operator_else_the_user_and_host() {
        let named = super::operator(
            Some("Example ML Platform".into()),
            vec!["https://ml.example.com".into()],
            Some("ml@example.com".into()),
        );
        assert_eq!(named.name, "Example ML Platform");
        assert_eq!(named.url, ["https://ml.example.com"]);
        assert_eq!(named.contact.len(), 1);
        assert_eq!(named.contact[0].email.as_deref(), Some("ml@example.com"));

        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        for unnamed in [None, Some("  ".to_owned())] {
            let local = super::operator(unnamed, Vec::new(), None);
            assert!(local.name.ends_with(host.trim()), "{}", local.name);
            assert!(local.contact.is_empty() && local.url.is_empty());
        }
    }
}
