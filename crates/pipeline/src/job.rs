//! One training job, from uploaded files to a signed bundle
//! ([`run_job`]). `veritrain train` calls it; the service's worker will call
//! the same function.
//!
//! 1. **Intake.** The inputs are copied into the bundle's `inputs/` first,
//!    and the gate runs on those copies (so what was checked is what is
//!    hashed and trained on). A rejection stops the job with the gate's
//!    codes. The inputs are hashed, the dataset's per-file manifest is
//!    derived and signed, and the `intake` link is signed.
//! 2. **Train** in the sandbox ([`veritrain_runtime::sandboxed`]).
//! 3. **Check.** Every input the sandbox could see (the bundle's inputs,
//!    the staged copies, the job spec, the trainer, the runtime venv) is
//!    hashed again; any change fails the job. Only the declared outputs may
//!    come out.
//! 4. **Attest.** The outputs are hashed and the `run_training` link is
//!    signed; the layout and trust material are copied in; the SLSA
//!    provenance and the AIBoM are built and signed.
//!
//! The bundle is assembled in a hidden sibling directory and renamed into
//! place only when everything succeeded: a failed job leaves no bundle, so
//! it can never be mistaken for a successful one.
//!
//! A job can be cancelled ([`JobSettings::cancel`]): the token is checked
//! before each stage, and during training the sandbox kills the trainer
//! when it is cancelled. Either way the job fails with [`Error::Cancelled`]
//! (`job.cancelled`) and, like any failed job, leaves no bundle.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound as _, Utc};
use serde_json::{Map, Value, json};
use veritrain_attest::hash::{HashOptions, Manifest, hash_path, hash_relative};
use veritrain_attest::intoto::{ArtifactMap, Byproducts, Link, Metablock};
use veritrain_attest::keys::Signer;
use veritrain_attest::statement::{
    BuildDefinition, BuildMetadata, Builder, Provenance, ResourceDescriptor, RunDetails, Statement,
    sign_statement,
};
use veritrain_bom::input::{
    AttestationKind, AttestationRef, BaseModel, Binary, BomInput, Compile, Dataset, DatasetKind,
    Environment, EpochLog, Evaluation, FileDigest, Goal, MetricSpec, ModelScan, Organization,
    Package, PlatformCode, ResourceUsage, Span, Split, TaskTimes, TensorSpec, TrainedModel,
    Training,
};
use veritrain_intake::definition::{DataSpec, Definition};
use veritrain_intake::gate::{
    DataReport, GateLimits, check_model_fits, inspect_model, read_definition, validate_data,
};
use veritrain_intake::keras::KerasVerdict;
use veritrain_runtime::events::TrainerEvent;
use veritrain_runtime::sandboxed::{SandboxedJob, SandboxedTraining, train_in_sandbox};
use veritrain_runtime::{ExecutionSettings, FitParams, TrainerLimits, VerifiedRuntime};
use veritrain_sandbox::{CancelToken, Policy, Sandbox};

use crate::bundle::{
    self, AIBOM, AIBOM_ENVELOPE, BUILD_TYPE, BUILDER_ID, DATASET_MANIFEST, INPUT_DEFINITION,
    INPUT_JOB, INPUT_MODEL, LAYOUT, OUTPUT_LOG, OUTPUT_METRICS, OUTPUT_MODEL, OUTPUT_SPLIT,
    OUTPUTS, PROVENANCE, STEP_INTAKE, STEP_TRAIN, TRUST_KEYSET, TRUST_ROOT,
};
use crate::error::{Error, Result};
use crate::keydir::JobKeys;
use crate::manifest::{DatasetManifest, hash_reader, hash_zip_members};
use crate::request::{JobRequest, MAX_REQUEST_BYTES};
use crate::{host, layout};

/// The files a job starts from, as the user holds them.
#[derive(Debug, Clone, Copy)]
pub struct JobInputs<'a> {
    /// The `.keras` model.
    pub model: &'a Path,
    /// The dataset file (CSV, image ZIP or TFRecord).
    pub data: &'a Path,
    /// The dataset definition (YAML).
    pub definition: &'a Path,
    /// The job request (YAML); `None` runs with defaults.
    pub request: Option<&'a Path>,
}

/// The `veritrain` program that runs the job.
#[derive(Debug, Clone)]
pub struct PlatformBinary {
    /// Its version.
    pub version: String,
    /// SHA-256 of the running executable.
    pub sha256: String,
}

impl PlatformBinary {
    /// The running executable, hashed.
    ///
    /// # Errors
    /// When the executable cannot be read.
    pub fn current(version: &str) -> Result<PlatformBinary> {
        // /proc/self/exe opens the running image even if its path was
        // replaced since (a rebuild, an upgrade): the digest is of what runs.
        let exe = Path::new("/proc/self/exe");
        let file = fs::File::open(exe)
            .or_else(|_| std::env::current_exe().and_then(fs::File::open))
            .map_err(|e| Error::io(exe, e))?;
        let (_, digest) = hash_reader(&mut std::io::BufReader::with_capacity(1 << 20, file))
            .map_err(|e| Error::io(exe, e))?;
        Ok(PlatformBinary {
            version: version.to_owned(),
            sha256: hex::encode(digest),
        })
    }
}

/// How and where a job runs.
pub struct JobSettings<'a> {
    /// The bundle directory to create (must not exist).
    pub out: &'a Path,
    /// The verified trainer runtime.
    pub runtime: &'a VerifiedRuntime,
    /// The sandbox backend.
    pub sandbox: &'a dyn Sandbox,
    /// The sandbox policy.
    pub policy: &'a Policy,
    /// Intake limits.
    pub gate: GateLimits,
    /// The platform operator, the AIBoM's supplier.
    pub supplier: Organization,
    /// The job's ID; generated when `None`.
    pub job_id: Option<String>,
    /// The program running the job.
    pub binary: PlatformBinary,
    /// Stops the job when cancelled (checked before each stage; the sandbox
    /// kills the trainer within about 200 ms); `None`: runs to the end.
    pub cancel: Option<CancelToken>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Copying, scanning and hashing the inputs.
    Intake,
    /// Training in the sandbox.
    Train,
    /// Re-hashing what the sandbox could see.
    Check,
    /// Hashing outputs and signing.
    Attest,
}

/// Progress of a job, for a terminal or an event stream.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A stage starts.
    Stage(Stage),
    /// Hashing starts: `what`, `bytes` to read.
    HashStart {
        /// What is hashed.
        what: &'static str,
        /// Bytes to read.
        bytes: u64,
    },
    /// Hashing is under way (reported about five times a second for
    /// inputs over 64 MiB).
    Hashing {
        /// What is hashed.
        what: &'static str,
        /// Bytes read so far.
        done: u64,
        /// Bytes to read.
        total: u64,
    },
    /// Hashing ended.
    HashDone {
        /// What was hashed.
        what: &'static str,
        /// Bytes read.
        bytes: u64,
        /// How long it took.
        elapsed: Duration,
    },
    /// The gate accepted the inputs.
    Accepted {
        /// The job's ID.
        job_id: &'a str,
        /// The resolved fit parameters.
        fit: &'a FitParams,
    },
    /// An event from the trainer.
    Trainer(&'a TrainerEvent),
}

/// Time spent, for the provenance-overhead benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobTiming {
    /// The whole job.
    pub total: Duration,
    /// The sandboxed training call.
    pub training: Duration,
    /// Hashing inputs, outputs, the dataset manifest and re-checks.
    pub hashing: Duration,
}

/// A finished job.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// The job's ID.
    pub job_id: String,
    /// The bundle.
    pub bundle: PathBuf,
    /// SHA-256 of the trained model.
    pub model_sha256: String,
    /// The signing key's ID.
    pub signer: String,
    /// Final epoch's logs.
    pub final_logs: BTreeMap<String, f64>,
    /// Time spent.
    pub timing: JobTiming,
}

/// Run one job into a new bundle at `settings.out`.
///
/// # Errors
/// [`Error::Rejected`] with the gate's findings; runtime and sandbox errors
/// with their codes (`runtime.*`, `trainer.*`, `sandbox.*`);
/// [`Error::InputChanged`]; [`Error::UnexpectedOutput`]; `runtime.tampered`
/// when the runtime venv changed during the job; `keys.signing_key_invalid`
/// when the signing key was rotated or revoked during the job
/// ([`JobKeys::check_signer_at`]); [`Error::Cancelled`] when
/// `settings.cancel` was cancelled. No bundle is left behind on error.
pub fn run_job(
    inputs: &JobInputs<'_>,
    settings: &JobSettings<'_>,
    keys: &JobKeys,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<JobSummary> {
    let t0 = Instant::now();
    let started = now();
    let job_id = match &settings.job_id {
        Some(id) => {
            check_job_id(id)?;
            id.clone()
        }
        None => new_job_id(started),
    };
    // The sandbox binds need absolute paths.
    let out_abs = std::path::absolute(settings.out).map_err(|e| Error::io(settings.out, e))?;
    let out = out_abs.as_path();
    if fs::symlink_metadata(out).is_ok() {
        return Err(Error::BundleExists(out.to_owned()));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::io(out, std::io::Error::other("the bundle path has no name")))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let staging = parent.join(format!(".{name}.{job_id}.partial"));
    let work = parent.join(format!(".{name}.{job_id}.work"));
    fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    let mut cleanup = Cleanup {
        paths: vec![staging.clone(), work.clone()],
    };
    let mut hashing = Duration::ZERO;
    let signer: &dyn Signer = keys.signer.as_ref();

    // ---- 1. intake --------------------------------------------------------
    check_cancel(settings)?;
    progress(Progress::Stage(Stage::Intake));
    let inputs_dir = staging.join("inputs");
    let att_dir = staging.join(bundle::ATTESTATIONS_DIR);
    for d in [&inputs_dir, &att_dir, &staging.join("trust")] {
        fs::create_dir(d).map_err(|e| Error::io(d, e))?;
    }
    copy_input(inputs.definition, &staging.join(INPUT_DEFINITION))?;
    let definition = read_definition(&staging.join(INPUT_DEFINITION), &settings.gate.definition)
        .map_err(rejected)?;
    let data_name = bundle::data_path(definition.data.type_name());
    copy_input(inputs.model, &staging.join(INPUT_MODEL))?;
    copy_input(inputs.data, &staging.join(&data_name))?;
    let request = match inputs.request {
        Some(path) => {
            let bytes = read_limited(path, MAX_REQUEST_BYTES as u64)?;
            let request = JobRequest::parse(&bytes)?;
            write_file(&staging.join(INPUT_JOB), &bytes)?;
            request
        }
        None => {
            let stem = inputs
                .model
                .file_stem()
                .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned());
            let request = JobRequest::default_for(&stem);
            // JSON is YAML: the file parses back to the same request.
            let bytes =
                serde_json::to_vec_pretty(&request).map_err(|e| Error::Host(e.to_string()))?;
            write_file(&staging.join(INPUT_JOB), &bytes)?;
            request
        }
    };

    let verdict = inspect_model(&staging.join(INPUT_MODEL), &settings.gate);
    if !verdict.accepted {
        return Err(Error::Rejected {
            findings: verdict.findings,
        });
    }
    let report =
        validate_data(&staging.join(&data_name), &definition, &settings.gate).map_err(rejected)?;
    let misfit = check_model_fits(&verdict, &definition);
    if !misfit.is_empty() {
        return Err(Error::Rejected { findings: misfit });
    }
    let dataset_json = serde_json::to_value(&definition).map_err(|e| Error::Host(e.to_string()))?;
    let fit = request
        .fit
        .resolve(&dataset_json, veritrain_runtime::spec::os_seed)?;
    progress(Progress::Accepted {
        job_id: &job_id,
        fit: &fit,
    });

    let input_names = [INPUT_MODEL, INPUT_DEFINITION, INPUT_JOB, data_name.as_str()];
    let input_manifest = timed_hash(progress, &mut hashing, "inputs", &staging, &input_names)?;
    let kind = dataset_kind(&definition);
    let digest_of = |m: &Manifest, path: &str| -> Result<FileDigest> {
        m.entry(path)
            .map(|e| FileDigest {
                name: path.to_owned(),
                sha256: e.sha256_hex(),
                size_bytes: Some(e.size()),
            })
            .ok_or_else(|| Error::Host(format!("{path} was not hashed")))
    };
    let upload = digest_of(&input_manifest, &data_name)?;
    let t = Instant::now();
    let dataset_manifest = DatasetManifest::derive(
        &staging.join(&data_name),
        &data_name,
        kind.as_str(),
        &settings.gate.zip,
        now(),
    )?;
    hashing += t.elapsed();
    let manifest_env = dataset_manifest.sign(&upload.sha256, signer)?;
    write_file(
        &staging.join(DATASET_MANIFEST),
        &manifest_env.to_json_pretty()?,
    )?;

    let mut intake_link = Link::new(
        STEP_INTAKE,
        layout::intake_command(),
        ArtifactMap::new(),
        input_manifest.artifacts(),
        Byproducts {
            stdout: Some(intake_summary(&verdict, &report)),
            return_value: Some(0),
            ..Byproducts::default()
        },
    );
    intake_link
        .environment
        .insert("veritrain_job_id".into(), Value::String(job_id.clone()));
    let intake_file = Metablock::signed_by(intake_link, &[signer])?.write_to_dir(&att_dir)?;
    let intake_end = now();

    // ---- 2. train ------------------------------------------------------------
    check_cancel(settings)?;
    progress(Progress::Stage(Stage::Train));
    let outputs_dir = staging.join("outputs");
    fs::create_dir(&outputs_dir).map_err(|e| Error::io(&outputs_dir, e))?;
    let t_train = Instant::now();
    let training = train_in_sandbox(
        settings.runtime,
        settings.sandbox,
        settings.policy,
        SandboxedJob {
            model: &staging.join(INPUT_MODEL),
            data: &staging.join(&data_name),
            dataset: dataset_json.clone(),
            fit: fit.clone(),
            execution: ExecutionSettings::default(),
            limits: TrainerLimits::default(),
            work_dir: &work,
            output_dir: &outputs_dir,
            cancel: settings.cancel.clone(),
        },
        &mut |e| progress(Progress::Trainer(e)),
    )
    .map_err(|e| match e {
        // One error for a cancel, whether it caught the job between stages
        // or in the sandbox.
        veritrain_runtime::Error::Cancelled => Error::Cancelled,
        other => Error::Runtime(other),
    })?;
    let train_wall = t_train.elapsed();
    let train_end = now();

    // ---- 3. check ------------------------------------------------------------
    check_cancel(settings)?;
    progress(Progress::Stage(Stage::Check));
    check_outputs(&outputs_dir)?;
    let again = timed_hash(
        progress,
        &mut hashing,
        "inputs again",
        &staging,
        &input_names,
    )?;
    compare_manifests(&input_manifest, &again, "")?;
    let t = Instant::now();
    check_staged(&work, &input_manifest, &data_name, &training)?;
    hashing += t.elapsed();
    let venv_bytes = settings.runtime.identity().tree.stats.bytes;
    progress(Progress::HashStart {
        what: "runtime venv",
        bytes: venv_bytes,
    });
    let t = Instant::now();
    check_runtime_unchanged(settings.runtime)?;
    let elapsed = t.elapsed();
    hashing += elapsed;
    progress(Progress::HashDone {
        what: "runtime venv",
        bytes: venv_bytes,
        elapsed,
    });

    // ---- 4. attest -----------------------------------------------------------
    check_cancel(settings)?;
    progress(Progress::Stage(Stage::Attest));
    let output_manifest = timed_hash(progress, &mut hashing, "outputs", &staging, &OUTPUTS)?;
    let mut train_link = Link::new(
        STEP_TRAIN,
        layout::train_command(),
        input_manifest.artifacts(),
        output_manifest.artifacts(),
        Byproducts {
            return_value: Some(0),
            ..Byproducts::default()
        },
    );
    train_link
        .environment
        .insert("veritrain_job_id".into(), Value::String(job_id.clone()));
    train_link.environment.insert(
        "sandbox_policy_sha256".into(),
        Value::String(training.sandbox.facts.digest()),
    );
    let train_file = Metablock::signed_by(train_link, &[signer])?.write_to_dir(&att_dir)?;
    write_file(&staging.join(LAYOUT), &keys.layout_bytes)?;
    write_file(&staging.join(TRUST_ROOT), &keys.root_pem)?;
    write_file(&staging.join(TRUST_KEYSET), &keys.keyset_bytes)?;

    let model_digest = digest_of(&output_manifest, OUTPUT_MODEL)?;
    let metrics_digest = digest_of(&output_manifest, OUTPUT_METRICS)?;
    let base_digest = digest_of(&input_manifest, INPUT_MODEL)?;
    let definition_digest = digest_of(&input_manifest, INPUT_DEFINITION)?;
    let job_digest = digest_of(&input_manifest, INPUT_JOB)?;
    let runtime_identity = settings.runtime.identity();
    let lock = veritrain_runtime::lock::Lock::embedded()?;
    let trainer_digest = FileDigest {
        name: format!("trainer/{}", veritrain_runtime::trainer::FILE_NAME),
        sha256: training.trainer_sha256.clone(),
        size_bytes: Some(veritrain_runtime::trainer::SOURCE.len() as u64),
    };
    let lock_digest = FileDigest {
        name: "runtime/requirements.lock".into(),
        sha256: lock.sha256_hex(),
        size_bytes: Some(veritrain_runtime::lock::LOCK_FILE.len() as u64),
    };

    let rd = |name: &str, sha256: &str| ResourceDescriptor::subject(name, sha256);
    let mut manifest_rd = rd(
        &format!("{data_name}#manifest"),
        &dataset_manifest.root_sha256,
    );
    manifest_rd
        .annotations
        .insert("veritrain_kind".into(), json!("dataset_manifest_root"));
    manifest_rd
        .annotations
        .insert("file_count".into(), json!(dataset_manifest.file_count));
    let mut runtime_rd = rd("runtime", &runtime_identity.tree.root_digest);
    runtime_rd
        .annotations
        .insert("lock_sha256".into(), json!(runtime_identity.lock_sha256));
    runtime_rd
        .annotations
        .insert("python".into(), json!(runtime_identity.interpreter.version));
    // The signed files the provenance and the AIBoM both reference, hashed once.
    let intake_link = file_digest(&staging, &rel(&staging, &intake_file)?)?;
    let train_link = file_digest(&staging, &rel(&staging, &train_file)?)?;
    let manifest_file = file_digest(&staging, DATASET_MANIFEST)?;
    let finished = now();
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.into(),
            external_parameters: object(json!({
                "request": request,
                "inputs": {
                    "model": INPUT_MODEL,
                    "data": data_name,
                    "definition": INPUT_DEFINITION,
                    "job": INPUT_JOB,
                },
            })),
            internal_parameters: object(json!({
                "job_id": job_id,
                "fit": fit,
                "execution": ExecutionSettings::default(),
                "trainer_limits": TrainerLimits::default(),
                "job_spec_sha256": training.spec_sha256,
                "sandbox_policy_sha256": training.sandbox.facts.digest(),
                "keyset_version": keys.keyset.version,
            })),
            resolved_dependencies: vec![
                rd(INPUT_MODEL, &base_digest.sha256),
                rd(&data_name, &upload.sha256),
                manifest_rd,
                rd(INPUT_DEFINITION, &definition_digest.sha256),
                rd(INPUT_JOB, &job_digest.sha256),
                runtime_rd,
                rd(&trainer_digest.name, &trainer_digest.sha256),
                rd(&lock_digest.name, &lock_digest.sha256),
                rd("veritrain", &settings.binary.sha256),
            ],
        },
        run_details: RunDetails {
            builder: Builder {
                id: BUILDER_ID.into(),
                version: BTreeMap::from([(
                    "veritrain".to_owned(),
                    settings.binary.version.clone(),
                )]),
                builder_dependencies: Vec::new(),
            },
            metadata: BuildMetadata {
                invocation_id: Some(job_id.clone()),
                started_on: Some(started),
                finished_on: Some(finished),
            },
            byproducts: [&intake_link, &train_link, &manifest_file]
                .iter()
                .map(|d| ResourceDescriptor::subject(&d.name, &d.sha256))
                .collect(),
        },
    };
    let statement = Statement::slsa_provenance(
        vec![
            rd(OUTPUT_MODEL, &model_digest.sha256),
            rd(OUTPUT_METRICS, &metrics_digest.sha256),
        ],
        &provenance,
    )?;
    write_file(
        &staging.join(PROVENANCE),
        &sign_statement(&statement, &[signer])?.to_json_pretty()?,
    )?;
    let attest_end = now();

    // ---- the AIBoM -----------------------------------------------------------
    let metrics: Value =
        serde_json::from_slice(&read_limited(&staging.join(OUTPUT_METRICS), 256 << 20)?)
            .map_err(|e| report_error(format!("not JSON: {e}")))?;
    let trained = TrainerReport::from_metrics(&metrics)?;
    let trained_verdict = inspect_model(&staging.join(OUTPUT_MODEL), &settings.gate);
    let (model_inputs, model_outputs) = tensors_of(&trained_verdict, &definition);
    let bom_input = BomInput {
        job_id: job_id.clone(),
        created_at: now(),
        supplier: settings.supplier.clone(),
        request: request.model.clone(),
        trained_model: TrainedModel {
            file: model_digest.clone(),
            members: keras_members(&staging.join(OUTPUT_MODEL), &settings.gate)?,
            keras_version: trained_verdict.keras_version.clone(),
            inputs: model_inputs,
            outputs: model_outputs,
            metrics_file: Some(metrics_digest.clone()),
            split_file: Some(digest_of(&output_manifest, OUTPUT_SPLIT)?),
            log_file: Some(digest_of(&output_manifest, OUTPUT_LOG)?),
        },
        base_model: BaseModel {
            file: base_digest.clone(),
            scan: ModelScan::from_verdict(&verdict),
        },
        datasets: vec![Dataset {
            // A definition without a name: the upload's path in the
            // bundle, a fact rather than a placeholder.
            name: definition
                .metadata
                .name
                .clone()
                .unwrap_or_else(|| data_name.clone()),
            kind,
            upload: upload.clone(),
            file_count: dataset_manifest.file_count,
            size_bytes: dataset_manifest.size_bytes,
            manifest: veritrain_bom::input::Manifest {
                root_sha256: dataset_manifest.root_sha256.clone(),
                file: manifest_file,
            },
            classes: classes(&definition).unwrap_or_default(),
            stats: report_stats(&report)?,
            request: request.dataset.clone(),
        }],
        definition: definition_digest.clone(),
        job_request: job_digest.clone(),
        environment: Environment {
            python_version: runtime_identity.interpreter.version.clone(),
            os: host::operating_system(),
            cpu: host::cpu(settings.policy),
            memory_limit_bytes: host::memory_limit(settings.policy),
            gpus: host::gpus(settings.policy),
            packages: runtime_identity
                .distributions
                .iter()
                .map(|d| Package {
                    name: d.name.clone(),
                    version: d.version.clone(),
                    purl: d.purl.clone(),
                    wheel_sha256: d.sha256.clone(),
                })
                .collect(),
            sandbox: serde_json::to_value(&training.sandbox.facts)
                .map_err(|e| Error::Host(e.to_string()))?,
            runtime_tree_root_sha256: runtime_identity.tree.root_digest.clone(),
        },
        platform: PlatformCode {
            veritrain: Binary {
                version: settings.binary.version.clone(),
                sha256: settings.binary.sha256.clone(),
            },
            trainer: trainer_digest,
            lock_file: lock_digest,
        },
        training: Training {
            fit_params: fit_params(&fit)?,
            metrics: metric_specs(&trained.history),
            compile: Some(trained.compile),
            split: Some(trained.split),
            steps_run: Some(trained.steps_run),
            final_evaluation: trained.final_evaluation,
            history: trained.history,
            usage: ResourceUsage {
                wall_seconds: training.sandbox.wall_time.as_secs_f64(),
                // Left out, not 0, when the cgroup did not report it.
                cpu_seconds: training
                    .sandbox
                    .usage
                    .cpu_usage_usec
                    .map(|u| u as f64 / 1e6),
                // Nothing measures GPU time or energy yet; the BOM says
                // nothing rather than an estimate.
                gpu_seconds: None,
                energy_kwh: None,
            },
        },
        tasks: TaskTimes {
            intake: Span {
                start: started,
                end: intake_end,
            },
            train: Span {
                start: intake_end,
                end: train_end,
            },
            attest: Span {
                start: train_end,
                end: attest_end,
            },
        },
        attestations: vec![
            attestation(
                file_digest(&staging, LAYOUT)?,
                AttestationKind::InTotoLayout,
                "steps intake, run_training",
            ),
            attestation(intake_link, AttestationKind::InTotoLink, "step intake"),
            attestation(train_link, AttestationKind::InTotoLink, "step run_training"),
            attestation(
                file_digest(&staging, PROVENANCE)?,
                AttestationKind::SlsaProvenance,
                "SLSA Provenance v1",
            ),
            attestation(
                file_digest(&staging, TRUST_KEYSET)?,
                AttestationKind::KeySet,
                "root-signed key set",
            ),
        ],
    };
    let bom = veritrain_bom::build_bom(&bom_input)?;
    let bom_json = veritrain_bom::to_json(&bom)?;
    write_file(&staging.join(AIBOM), &bom_json)?;
    let bom_env = veritrain_bom::sign_bom(&bom_json, &model_digest.sha256, OUTPUT_MODEL, signer)?;
    write_file(&staging.join(AIBOM_ENVELOPE), &bom_env.to_json_pretty()?)?;

    // ---- publish ---------------------------------------------------------------
    // Now is no earlier than any signing time the bundle records: a key
    // rotated or revoked while the job ran fails the job here instead of
    // leaving a bundle the operator's current key set refuses.
    keys.check_signer_at(now())?;
    let _ = fs::remove_dir_all(&work);
    fs::rename(&staging, out).map_err(|e| Error::io(out, e))?;
    cleanup.paths.clear();
    let final_logs = training_final_logs(&training);
    Ok(JobSummary {
        job_id,
        bundle: out.to_owned(),
        model_sha256: model_digest.sha256,
        signer: signer.keyid().to_owned(),
        final_logs,
        timing: JobTiming {
            total: t0.elapsed(),
            training: train_wall,
            hashing,
        },
    })
}

/// [`Error::Cancelled`] once the job's token is cancelled.
fn check_cancel(settings: &JobSettings<'_>) -> Result<()> {
    if settings
        .cancel
        .as_ref()
        .is_some_and(CancelToken::is_cancelled)
    {
        return Err(Error::Cancelled);
    }
    Ok(())
}

/// Removes the staging and work directories of a job that did not finish.
struct Cleanup {
    paths: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = fs::remove_dir_all(p);
        }
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// `job-YYYYMMDDTHHMMSSZ-<8 hex>`.
fn new_job_id(t: DateTime<Utc>) -> String {
    use rand_core::RngCore as _;
    let r = rand_core::OsRng.next_u32();
    format!("job-{}-{r:08x}", t.format("%Y%m%dT%H%M%SZ"))
}

/// Job IDs become file names and BOM serial numbers: ASCII letters, digits,
/// `.`, `_` and `-`, 1 to 64 characters, not starting with `.`.
fn check_job_id(id: &str) -> Result<()> {
    let ok = (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Request {
            path: "job_id".into(),
            message: format!(
                "{id:?} is not a job ID: use 1 to 64 ASCII letters, digits, '.', '_' or '-'"
            ),
        })
    }
}

fn rejected(e: veritrain_intake::Error) -> Error {
    match e {
        veritrain_intake::Error::Rejected(f) => Error::Rejected { findings: vec![*f] },
        other => Error::Intake(other),
    }
}

/// Copy a user's input into the bundle. It must be a regular file (after
/// following a symlink the user gave on purpose).
fn copy_input(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::metadata(from).map_err(|e| Error::io(from, e))?;
    if !meta.is_file() {
        return Err(Error::io(from, std::io::Error::other("not a regular file")));
    }
    fs::copy(from, to).map_err(|e| Error::io(from, e))?;
    Ok(())
}

pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::io(
            path,
            std::io::Error::other(format!("larger than {max} bytes")),
        ));
    }
    Ok(bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Hash `names` under `root`, reporting progress for large inputs, and add
/// the time to `total`.
fn timed_hash(
    progress: &mut dyn FnMut(Progress<'_>),
    total: &mut Duration,
    what: &'static str,
    root: &Path,
    names: &[&str],
) -> Result<Manifest> {
    const SHOW_PROGRESS_ABOVE: u64 = 64 << 20;
    let bytes: u64 = names
        .iter()
        .filter_map(|n| fs::metadata(root.join(n)).ok())
        .map(|m| m.len())
        .sum();
    progress(Progress::HashStart { what, bytes });
    let t = Instant::now();
    let counter = veritrain_attest::hash::ByteCounter::new();
    let opts = HashOptions {
        progress: Some(counter.clone()),
        ..HashOptions::files()
    };
    let result = if bytes > SHOW_PROGRESS_ABOVE {
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| hash_relative(root, names, &opts));
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(200));
                progress(Progress::Hashing {
                    what,
                    done: counter.get(),
                    total: bytes,
                });
            }
            worker.join().unwrap_or_else(|_| {
                Err(veritrain_attest::Error::Io {
                    path: root.to_owned(),
                    source: std::io::Error::other("the hashing thread panicked"),
                })
            })
        })
    } else {
        hash_relative(root, names, &opts)
    };
    let m = result?;
    let elapsed = t.elapsed();
    *total += elapsed;
    progress(Progress::HashDone {
        what,
        bytes: m.total_size(),
        elapsed,
    });
    Ok(m)
}

fn compare_manifests(before: &Manifest, after: &Manifest, prefix: &str) -> Result<()> {
    for b in before.entries() {
        let found = after
            .entry(b.path())
            .map_or_else(|| "nothing (deleted)".to_owned(), |a| a.sha256_hex());
        if found != b.sha256_hex() {
            return Err(Error::InputChanged {
                file: format!("{prefix}{}", b.path()),
                expected: b.sha256_hex(),
                found,
            });
        }
    }
    Ok(())
}

/// The staged copies the sandbox saw (`work/in`, `work/app`) must still be
/// the inputs, the job spec and the trainer that were recorded.
fn check_staged(
    work: &Path,
    inputs: &Manifest,
    data_name: &str,
    training: &SandboxedTraining,
) -> Result<()> {
    let staged_in = hash_path(&work.join("in"), &HashOptions::files())?;
    let staged_app = hash_path(&work.join("app"), &HashOptions::files())?;
    let digest = |m: &Manifest, name: &str| {
        m.entry(name)
            .map_or_else(|| "nothing (deleted)".to_owned(), |e| e.sha256_hex())
    };
    let data_file = data_name.rsplit('/').next().unwrap_or(data_name);
    let expected = [
        ("model.keras", digest(inputs, INPUT_MODEL), &staged_in),
        (data_file, digest(inputs, data_name), &staged_in),
        ("job.json", training.spec_sha256.clone(), &staged_in),
        (
            veritrain_runtime::trainer::FILE_NAME,
            training.trainer_sha256.clone(),
            &staged_app,
        ),
    ];
    for (name, want, manifest) in expected {
        let found = digest(manifest, name);
        if found != want {
            return Err(Error::InputChanged {
                file: format!("sandbox input {name}"),
                expected: want,
                found,
            });
        }
    }
    Ok(())
}

/// The runtime venv was bound read-only into the sandbox: it must still be
/// the tree [`VerifiedRuntime::verify`] checked before the job, compared
/// with the manifest held in memory (not re-read from disk). Every file is
/// re-hashed, 1.1–2.2 s for the TensorFlow venv (`docs/benchmarks.md`).
fn check_runtime_unchanged(runtime: &VerifiedRuntime) -> Result<()> {
    let manifest = runtime.identity().manifest().map_err(|reason| {
        veritrain_runtime::Error::IdentityInvalid {
            path: runtime
                .dir()
                .join(veritrain_runtime::identity::IDENTITY_FILE),
            reason,
        }
    })?;
    // `runtime.tampered` names the first changed path inside the venv.
    manifest.verify(&runtime.venv())?;
    Ok(())
}

/// Only the declared outputs, as regular files, may come out.
fn check_outputs(dir: &Path) -> Result<()> {
    let declared: Vec<&str> = OUTPUTS
        .iter()
        .filter_map(|p| p.strip_prefix("outputs/"))
        .collect();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !declared.contains(&name.as_str()) || !is_file {
            return Err(Error::UnexpectedOutput { file: name });
        }
    }
    Ok(())
}

fn dataset_kind(def: &Definition) -> DatasetKind {
    match def.data {
        DataSpec::Csv(_) => DatasetKind::Csv,
        DataSpec::Image(_) => DatasetKind::ImageZip,
        DataSpec::Tfrecord(_) => DatasetKind::Tfrecord,
    }
}

/// Class names in label order, when the definition has them.
pub fn classes(def: &Definition) -> Option<Vec<String>> {
    match &def.data {
        DataSpec::Csv(c) => c.classes(),
        DataSpec::Image(i) => Some(i.label.classes.clone()),
        DataSpec::Tfrecord(t) => t.label.classes.clone(),
    }
}

fn input_description(def: &Definition) -> String {
    match &def.data {
        DataSpec::Csv(c) => {
            let names: Vec<&str> = c
                .columns
                .iter()
                .filter(|col| col.input)
                .map(|col| col.name.as_str())
                .collect();
            format!("CSV columns: {}", names.join(", "))
        }
        DataSpec::Image(i) => format!(
            "{}x{} images, {} channel(s)",
            i.image_size[0],
            i.image_size[1],
            i.color_mode.channels()
        ),
        DataSpec::Tfrecord(t) => {
            let names: Vec<&str> = t.input_features().map(|f| f.name.as_str()).collect();
            format!("TFRecord features: {}", names.join(", "))
        }
    }
}

fn batch_shape(dims: &[u64]) -> Vec<Option<u64>> {
    std::iter::once(None)
        .chain(dims.iter().copied().map(Some))
        .collect()
}

/// Intake's statistics as JSON. A report that does not serialize is an
/// error, never an empty set of statistics.
fn report_stats(report: &DataReport) -> Result<Value> {
    let inner = match report {
        DataReport::Csv(r) => serde_json::to_value(r),
        DataReport::Image(r) => serde_json::to_value(r),
        DataReport::Tfrecord(r) => serde_json::to_value(r),
    };
    inner.map_err(|e| Error::Host(format!("intake statistics: {e}")))
}

/// The fit parameters the job passed to the trainer, each with its JSON
/// type. They always serialize to an object; anything else is an error,
/// never an empty map.
fn fit_params(fit: &FitParams) -> Result<BTreeMap<String, Value>> {
    match serde_json::to_value(fit) {
        Ok(Value::Object(m)) => Ok(m.into_iter().collect()),
        Ok(other) => Err(Error::Host(format!(
            "the fit parameters serialize to {other}, not an object"
        ))),
        Err(e) => Err(Error::Host(format!("the fit parameters: {e}"))),
    }
}

/// The model's inputs and outputs for the AIBoM, from the trained model's
/// scan: each tensor's name and dtype as its config declares them; its
/// shape from the config where the config determines it, else the dataset
/// definition's (which the trainer checked the model against before
/// training, `trainer.bad_shape`).
fn tensors_of(verdict: &KerasVerdict, def: &Definition) -> (Vec<TensorSpec>, Vec<TensorSpec>) {
    let spec = |t: &veritrain_intake::keras::TensorSummary,
                declared: &[u64],
                description: Option<String>| TensorSpec {
        name: Some(t.name.clone()),
        dtype: t.dtype.clone(),
        shape: t.shape.clone().unwrap_or_else(|| batch_shape(declared)),
        description,
    };
    let (inputs, outputs) = verdict
        .model
        .as_ref()
        .map(|m| (m.inputs.as_slice(), m.outputs.as_slice()))
        .unwrap_or_default();
    let classes = classes(def).map(|c| format!("classes: {}", c.join(", ")));
    // The trainer takes exactly one input and one output; the definition
    // describes those.
    let described = |n: usize, text: Option<String>| if n == 1 { text } else { None };
    (
        inputs
            .iter()
            .map(|t| {
                spec(
                    t,
                    &def.input_shape,
                    described(inputs.len(), Some(input_description(def))),
                )
            })
            .collect(),
        outputs
            .iter()
            .map(|t| {
                spec(
                    t,
                    &def.output_shape,
                    described(outputs.len(), classes.clone()),
                )
            })
            .collect(),
    )
}

fn report_error(message: String) -> Error {
    Error::TrainerReport {
        file: OUTPUT_METRICS.to_owned(),
        message,
    }
}

/// What the trainer's `metrics.json` says about the run, for the AIBoM.
/// Every fact the BOM records must be there in its documented shape
/// (`trainer/train.py`, schema `veritrain.metrics/v1`); a missing one fails
/// the job rather than vanishing from the BOM.
#[derive(Debug, Clone, PartialEq)]
struct TrainerReport {
    history: Vec<EpochLog>,
    compile: Compile,
    split: Split,
    steps_run: u64,
    final_evaluation: Option<Evaluation>,
}

impl TrainerReport {
    fn from_metrics(metrics: &Value) -> Result<TrainerReport> {
        let field = |key: &str| {
            metrics
                .get(key)
                .ok_or_else(|| report_error(format!("no `{key}`")))
        };
        let record = field("compile")?;
        let text = |v: Option<&Value>, path: &str| -> Result<String> {
            match v {
                Some(v) if !v.is_null() => Ok(keras_name(v)),
                _ => Err(report_error(format!("no `{path}`"))),
            }
        };
        let source = record
            .get("source")
            .and_then(Value::as_str)
            .ok_or_else(|| report_error("no `compile.source`".into()))?;
        let optimizer = record.get("optimizer");
        let learning_rate = optimizer.and_then(|o| {
            o.get("learning_rate")
                .or_else(|| o.get("config")?.get("learning_rate"))?
                .as_f64()
        });
        let metric_names = match record.get("metrics") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().map(keras_name).collect(),
            Some(other) => vec![keras_name(other)],
        };
        let compile = Compile {
            source: source.to_owned(),
            optimizer: text(optimizer, "compile.optimizer")?,
            learning_rate,
            loss: text(record.get("loss"), "compile.loss")?,
            metrics: metric_names,
            record: record.clone(),
        };
        let split = serde_json::from_value::<SplitRecord>(field("split")?.clone())
            .map_err(|e| report_error(format!("`split`: {e}")))?
            .into();
        let steps_run = field("steps_run")?
            .as_u64()
            .ok_or_else(|| report_error("`steps_run` is not a whole number".into()))?;
        let final_evaluation = match field("final_evaluation")? {
            Value::Null => None,
            Value::Object(m) => {
                let mut metrics = BTreeMap::new();
                for (k, v) in m {
                    if k == "split" || k == "examples" {
                        continue;
                    }
                    let value = match v {
                        Value::Null => None,
                        v => Some(v.as_f64().ok_or_else(|| {
                            report_error(format!("`final_evaluation.{k}` is not a number"))
                        })?),
                    };
                    metrics.insert(k.clone(), value);
                }
                Some(Evaluation {
                    split: m
                        .get("split")
                        .and_then(Value::as_str)
                        .ok_or_else(|| report_error("no `final_evaluation.split`".into()))?
                        .to_owned(),
                    examples: m
                        .get("examples")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| report_error("no `final_evaluation.examples`".into()))?,
                    metrics,
                })
            }
            _ => return Err(report_error("`final_evaluation` is not an object".into())),
        };
        Ok(TrainerReport {
            history: history_of(metrics)?,
            compile,
            split,
            steps_run,
            final_evaluation,
        })
    }
}

/// `metrics.json` `split`, as the trainer writes it.
#[derive(Debug, serde::Deserialize)]
struct SplitRecord {
    algorithm: String,
    seed: u64,
    validation_fraction: f64,
    examples: u64,
    train: u64,
    validation: u64,
    #[serde(default)]
    train_indices_sha256: Option<String>,
    #[serde(default)]
    validation_indices_sha256: Option<String>,
}

impl From<SplitRecord> for Split {
    fn from(r: SplitRecord) -> Split {
        Split {
            algorithm: r.algorithm,
            seed: r.seed,
            validation_fraction: r.validation_fraction,
            examples: r.examples,
            train: r.train,
            validation: r.validation,
            train_indices_sha256: r.train_indices_sha256,
            validation_indices_sha256: r.validation_indices_sha256,
        }
    }
}

/// A Keras object's name as the BOM shows it: a string as it is; a
/// serialized object by its `class_name` (`Adam`), else its `name`
/// (`{"name": "adam", "learning_rate": ...}`, the trainer's record of a job's
/// choice); anything else as JSON text.
fn keras_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .get("class_name")
            .or_else(|| m.get("name"))
            .and_then(Value::as_str)
            .map_or_else(|| v.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

fn intake_summary(verdict: &KerasVerdict, report: &DataReport) -> String {
    let data = match report {
        DataReport::Csv(r) => format!("csv: {} rows, {} columns", r.rows, r.columns.len()),
        DataReport::Image(r) => format!("image zip: {} images", r.images),
        DataReport::Tfrecord(r) => format!("tfrecord: {} records", r.records),
    };
    format!(
        "model accepted (allow-list {}, {} finding(s)); dataset accepted ({data})\n",
        verdict.allowlist_version,
        verdict.findings.len()
    )
}

/// Digests of the `.keras` archive's members.
fn keras_members(path: &Path, limits: &GateLimits) -> Result<Vec<FileDigest>> {
    Ok(hash_zip_members(path, &limits.zip)?
        .into_iter()
        .map(|(name, size, digest)| FileDigest {
            name,
            sha256: hex::encode(digest),
            size_bytes: Some(size),
        })
        .collect())
}

/// The per-epoch history from `metrics.json`. A value the trainer wrote as
/// `null` (it was NaN or infinite) is kept as `None`; any other row or value
/// that is not what the trainer writes is an error.
fn history_of(metrics: &Value) -> Result<Vec<EpochLog>> {
    let list = metrics
        .get("history")
        .and_then(Value::as_array)
        .ok_or_else(|| report_error("no `history` array".into()))?;
    list.iter()
        .enumerate()
        .map(|(i, row)| {
            let obj = row
                .as_object()
                .ok_or_else(|| report_error(format!("`history[{i}]` is not an object")))?;
            let epoch = obj
                .get("epoch")
                .and_then(Value::as_u64)
                .and_then(|e| u32::try_from(e).ok())
                .ok_or_else(|| report_error(format!("`history[{i}].epoch` is not an epoch")))?;
            let logs =
                obj.iter()
                    .filter(|(k, _)| k.as_str() != "epoch")
                    .map(|(k, v)| match v {
                        Value::Null => Ok((k.clone(), None)),
                        v => v.as_f64().map(|x| (k.clone(), Some(x))).ok_or_else(|| {
                            report_error(format!("`history[{i}].{k}` is not a number"))
                        }),
                    })
                    .collect::<Result<_>>()?;
            Ok(EpochLog { epoch, logs })
        })
        .collect()
}

/// The compiled metrics, `loss` first, each with the direction that is
/// better where the table of Keras metrics knows it (`Goal::of_metric`).
fn metric_specs(history: &[EpochLog]) -> Vec<MetricSpec> {
    let mut names: Vec<String> = history
        .iter()
        .flat_map(|e| e.logs.keys())
        .filter(|k| !k.starts_with("val_"))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names.sort_by_key(|n| n != "loss");
    names
        .into_iter()
        .map(|name| MetricSpec {
            goal: Goal::of_metric(&name),
            name,
        })
        .collect()
}

fn training_final_logs(training: &SandboxedTraining) -> BTreeMap<String, f64> {
    training
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            TrainerEvent::Epoch { metrics, .. } => Some(
                metrics
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), (*v)?)))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn rel(root: &Path, path: &Path) -> Result<String> {
    path.strip_prefix(root)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .map_err(|_| Error::Host(format!("{} is outside the bundle", path.display())))
}

fn file_digest(root: &Path, rel_path: &str) -> Result<FileDigest> {
    let path = root.join(rel_path);
    let file = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let (size, digest) =
        hash_reader(&mut std::io::BufReader::new(file)).map_err(|e| Error::io(&path, e))?;
    Ok(FileDigest {
        name: rel_path.to_owned(),
        sha256: hex::encode(digest),
        size_bytes: Some(size),
    })
}

fn attestation(file: FileDigest, kind: AttestationKind, comment: &str) -> AttestationRef {
    AttestationRef {
        kind,
        file,
        comment: Some(comment.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    //! Jobs without TensorFlow or a sandbox: a fake runtime (the runtime
    //! crate's test support), fresh keys and the quickstart example, with
    //! either a sandbox that records whether it was asked to run (the cancel
    //! tests) or the test-support fake trainer followed by tampering with
    //! what it could see (the check-stage and publish tests).

    use std::sync::atomic::{AtomicBool, Ordering};

    use veritrain_attest::dsse::Limits;
    use veritrain_attest::intoto::{MetablockLimits, parse_metablock};
    use veritrain_attest::keys::{Algorithm, PrivateKey};
    use veritrain_attest::keyset::{KeySet, verify_keyset};
    use veritrain_sandbox::{BindRole, Outcome, PolicyFacts, SandboxCommand};

    use super::*;

    /// A sandbox that must not be reached: it records the call and refuses.
    #[derive(Default)]
    struct NoSandbox {
        ran: AtomicBool,
    }

    impl Sandbox for NoSandbox {
        fn name(&self) -> &'static str {
            "none"
        }

        fn facts(&self, _: &SandboxCommand, _: &Policy) -> veritrain_sandbox::Result<PolicyFacts> {
            Err(veritrain_sandbox::Error::InvalidCommand(
                "no sandbox".into(),
            ))
        }

        fn run_streaming(
            &self,
            _: &SandboxCommand,
            _: &Policy,
            _: &mut dyn FnMut(&str),
        ) -> veritrain_sandbox::Result<Outcome> {
            self.ran.store(true, Ordering::Relaxed);
            Err(veritrain_sandbox::Error::InvalidCommand(
                "no sandbox".into(),
            ))
        }
    }

    fn keys() -> JobKeys {
        keys_issued(Utc::now(), None).0
    }

    /// Fresh keys whose key set was issued at `issued`, written to `dir`
    /// (as `keyset.dsse.json`, the file the job re-reads before publishing)
    /// when given; with the root key and the key set, to rotate it.
    fn keys_issued(issued: DateTime<Utc>, dir: Option<&Path>) -> (JobKeys, PrivateKey, KeySet) {
        let now = issued;
        let root = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let signing = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let plain = KeySet::new(signing.public_key(), now).unwrap();
        let keyset_bytes = plain.sign(&root).unwrap().to_json_pretty().unwrap();
        if let Some(dir) = dir {
            fs::write(dir.join(crate::keydir::KEYSET), &keyset_bytes).unwrap();
        }
        let keyset = verify_keyset(&keyset_bytes, root.public_key(), &Limits::default()).unwrap();
        let layout_bytes = layout::sign_job_layout(&keyset, &root, now, 1).unwrap();
        let layout = parse_metablock(&layout_bytes, &MetablockLimits::default())
            .unwrap()
            .verify_layout(std::slice::from_ref(root.public_key()), now)
            .unwrap();
        let keys = JobKeys {
            dir: dir.map(Path::to_owned),
            root: root.public_key().clone(),
            root_pem: root.public_key().to_spki_pem().unwrap().into_bytes(),
            keyset_bytes,
            keyset,
            layout_bytes,
            layout,
            signer: Box::new(signing),
        };
        (keys, root, plain)
    }

    struct Run {
        result: Result<JobSummary>,
        stages: Vec<Stage>,
        accepted: bool,
        sandbox_ran: bool,
        /// What is left next to the bundle path (hidden staging included).
        left: Vec<String>,
    }

    /// Run the quickstart job into an empty directory with `token`;
    /// `cancel_at` cancels it when that stage is reported.
    fn run_cancelled(token: &CancelToken, cancel_at: Option<Stage>) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let runtime = crate::testing::fake_runtime(dir.path()).unwrap();
        let jobs = dir.path().join("jobs");
        fs::create_dir(&jobs).unwrap();
        let sandbox = NoSandbox::default();
        let policy = Policy::for_testing();
        let out = jobs.join("bundle");
        let settings = JobSettings {
            supplier: Organization::default(),
            cancel: Some(token.clone()),
            ..crate::testing::test_settings(&out, &runtime, &sandbox, &policy)
        };
        let quickstart = crate::testing::QuickstartInputs::default();
        let inputs = quickstart.inputs();
        let mut stages = Vec::new();
        let mut accepted = false;
        let result = run_job(&inputs, &settings, &keys(), &mut |p| match p {
            Progress::Stage(s) => {
                stages.push(s);
                if cancel_at == Some(s) {
                    token.cancel();
                }
            }
            Progress::Accepted { .. } => accepted = true,
            _ => {}
        });
        let left = fs::read_dir(&jobs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        Run {
            result,
            stages,
            accepted,
            sandbox_ran: sandbox.ran.load(Ordering::Relaxed),
            left,
        }
    }

    #[track_caller]
    fn assert_cancelled(run: &Run) {
        match &run.result {
            Err(e @ Error::Cancelled) => {
                assert_eq!(e.code(), "job.cancelled");
                assert!(e.to_string().contains("cancelled on request"), "{e}");
            }
            Err(e) => panic!("not cancelled: [{}] {e}", e.code()),
            Ok(s) => panic!("the job finished: {}", s.bundle.display()),
        }
        assert!(!run.sandbox_ran, "the trainer was started");
        assert_eq!(
            run.left,
            Vec::<String>::new(),
            "a bundle or partial dir is left"
        );
    }

    #[test]
    fn a_job_cancelled_before_it_starts_does_nothing_and_leaves_nothing() {
        let token = CancelToken::new();
        token.cancel();
        let run = run_cancelled(&token, None);
        assert_cancelled(&run);
        assert_eq!(run.stages, []);
        assert!(!run.accepted);
    }

    #[test]
    fn a_job_cancelled_during_intake_stops_before_training_and_leaves_nothing() {
        let run = run_cancelled(&CancelToken::new(), Some(Stage::Intake));
        assert_cancelled(&run);
        // Intake ran to its end (the gate accepted, the staging directory
        // held inputs and a signed link), then the check before training
        // stopped the job and the staging was removed.
        assert!(run.accepted);
        assert_eq!(run.stages, [Stage::Intake]);
    }

    #[test]
    fn without_a_cancel_the_same_job_reaches_the_sandbox() {
        // The control: the fake sandbox refuses, so the job fails there, but
        // it got past intake and asked to train.
        let run = run_cancelled(&CancelToken::new(), None);
        assert!(run.sandbox_ran);
        assert_eq!(run.stages, [Stage::Intake, Stage::Train]);
        let e = run.result.unwrap_err();
        assert_eq!(e.code(), "runtime.sandbox", "{e}");
        assert_eq!(run.left, Vec::<String>::new());
    }
    /// The host directories behind the fake trainer's binds.
    struct Seen<'a> {
        runtime: &'a Path,
        code: &'a Path,
        inputs: &'a Path,
        output: &'a Path,
    }

    impl Seen<'_> {
        /// The bundle's staging directory (the outputs land in its
        /// `outputs/`).
        fn staging(&self) -> &Path {
            self.output.parent().unwrap()
        }
    }

    type Mischief = Box<dyn Fn(&Seen<'_>) + Send + Sync>;

    /// [`crate::testing::FakeTrainer`] (it reports two epochs and done and
    /// writes the four outputs), then mischief with what it could see.
    struct MeddlingTrainer {
        mischief: Mischief,
    }

    impl Sandbox for MeddlingTrainer {
        fn name(&self) -> &'static str {
            "fake"
        }

        fn facts(
            &self,
            cmd: &SandboxCommand,
            policy: &Policy,
        ) -> veritrain_sandbox::Result<PolicyFacts> {
            crate::testing::FakeTrainer.facts(cmd, policy)
        }

        fn run_streaming(
            &self,
            cmd: &SandboxCommand,
            policy: &Policy,
            on_line: &mut dyn FnMut(&str),
        ) -> veritrain_sandbox::Result<Outcome> {
            let outcome = crate::testing::FakeTrainer.run_streaming(cmd, policy, on_line)?;
            let bind = |role: BindRole| {
                cmd.binds()
                    .iter()
                    .find(|b| b.role == role)
                    .map(|b| b.source.as_path())
                    .unwrap()
            };
            (self.mischief)(&Seen {
                runtime: bind(BindRole::Runtime),
                code: bind(BindRole::Code),
                inputs: bind(BindRole::Inputs),
                output: cmd.output_dir().unwrap(),
            });
            Ok(outcome)
        }
    }

    /// Make `path` differ: one byte appended (read-only staged copies made
    /// writable first, so this works without root too).
    fn append_byte(path: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut bytes = fs::read(path).unwrap();
        bytes.push(b'\n');
        fs::write(path, bytes).unwrap();
    }

    struct Trained {
        result: Result<JobSummary>,
        /// What is left next to the bundle path (hidden staging included).
        left: Vec<String>,
        /// Holds the bundle.
        _dir: tempfile::TempDir,
    }

    /// Run the quickstart job with the fake trainer doing `mischief`, and
    /// `keys`.
    fn run_trained(keys: &JobKeys, mischief: Mischief) -> Trained {
        let dir = tempfile::tempdir().unwrap();
        let runtime = crate::testing::fake_runtime(dir.path()).unwrap();
        let jobs = dir.path().join("jobs");
        fs::create_dir(&jobs).unwrap();
        let sandbox = MeddlingTrainer { mischief };
        let policy = Policy::for_testing();
        let out = jobs.join("bundle");
        let settings = crate::testing::test_settings(&out, &runtime, &sandbox, &policy);
        let quickstart = crate::testing::QuickstartInputs::default();
        let result = run_job(&quickstart.inputs(), &settings, keys, &mut |_| {});
        let mut left: Vec<String> = fs::read_dir(&jobs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        Trained {
            result,
            left,
            _dir: dir,
        }
    }

    /// The job failed with `code`, its message names `culprit`, and it
    /// left no bundle and no staging or work directory.
    #[track_caller]
    fn assert_failed(run: &Trained, code: &str, culprit: &str) {
        match &run.result {
            Err(e) => {
                assert_eq!(e.code(), code, "{e}");
                assert!(e.to_string().contains(culprit), "{culprit:?} not in: {e}");
            }
            Ok(s) => panic!("the job published {}", s.bundle.display()),
        }
        assert_eq!(
            run.left,
            Vec::<String>::new(),
            "a bundle or partial dir is left"
        );
    }

    #[test]
    fn the_fake_trainer_job_publishes_a_bundle_when_nothing_changes() {
        // The control for the tests below: the same job, untouched, passes
        // every check (with a key directory to re-read before publishing).
        let keydir = tempfile::tempdir().unwrap();
        let (keys, _, _) = keys_issued(Utc::now(), Some(keydir.path()));
        let run = run_trained(&keys, Box::new(|_| {}));
        let summary = run.result.unwrap();
        assert_eq!(run.left, ["bundle"]);
        assert_eq!(summary.final_logs.get("accuracy"), Some(&0.8));
        for f in [OUTPUT_MODEL, AIBOM_ENVELOPE, PROVENANCE, LAYOUT] {
            assert!(summary.bundle.join(f).is_file(), "{f} missing");
        }
    }

    #[test]
    fn every_input_the_sandbox_could_see_is_hashed_again_and_a_change_fails_the_job() {
        type Touch = fn(&Seen<'_>) -> PathBuf;
        // (what the trainer modifies, the file the error must name)
        let cases: [(Touch, &str); 8] = [
            // The bundle's own inputs (a sibling of the output directory).
            (|s| s.staging().join(INPUT_MODEL), "inputs/model.keras"),
            (|s| s.staging().join("inputs/data.csv"), "inputs/data.csv"),
            (
                |s| s.staging().join(INPUT_DEFINITION),
                "inputs/definition.yaml",
            ),
            (|s| s.staging().join(INPUT_JOB), "inputs/job.yaml"),
            // The staged copies the sandbox read through its /in bind.
            (
                |s| s.inputs.join("model.keras"),
                "sandbox input model.keras",
            ),
            (|s| s.inputs.join("data.csv"), "sandbox input data.csv"),
            (|s| s.inputs.join("job.json"), "sandbox input job.json"),
            // The trainer program, bound at /opt/app.
            (
                |s| s.code.join(veritrain_runtime::trainer::FILE_NAME),
                "sandbox input train.py",
            ),
        ];
        for (touch, culprit) in cases {
            let run = run_trained(&keys(), Box::new(move |s| append_byte(&touch(s))));
            assert_failed(&run, "job.input_changed", culprit);
        }
    }

    #[test]
    fn a_staged_input_the_trainer_deleted_fails_the_job() {
        let run = run_trained(
            &keys(),
            Box::new(|s| fs::remove_file(s.inputs.join("data.csv")).unwrap()),
        );
        assert_failed(&run, "job.input_changed", "sandbox input data.csv");
        let e = run.result.unwrap_err().to_string();
        assert!(e.contains("nothing (deleted)"), "{e}");
    }

    #[test]
    fn a_changed_runtime_venv_fails_the_job_naming_the_file() {
        // The venv is bound read-only, and verified before the job; it is
        // re-verified after training all the same.
        let run = run_trained(
            &keys(),
            Box::new(|s| {
                append_byte(
                    &s.runtime
                        .join(veritrain_runtime::identity::SITE_PACKAGES)
                        .join("fakepkg/__init__.py"),
                );
            }),
        );
        assert_failed(
            &run,
            "runtime.tampered",
            "lib/python3.11/site-packages/fakepkg/__init__.py was modified",
        );
        // A file added to the venv (a `.pth` runs at interpreter start).
        let run = run_trained(
            &keys(),
            Box::new(|s| {
                let site = s.runtime.join(veritrain_runtime::identity::SITE_PACKAGES);
                fs::write(site.join("evil.pth"), "import os\n").unwrap();
            }),
        );
        assert_failed(
            &run,
            "runtime.tampered",
            "lib/python3.11/site-packages/evil.pth was added",
        );
    }

    #[test]
    fn an_undeclared_output_fails_the_job() {
        let run = run_trained(
            &keys(),
            Box::new(|s| fs::write(s.output.join("extra.txt"), "smuggled").unwrap()),
        );
        assert_failed(&run, "job.unexpected_output", "\"extra.txt\"");
        // A directory is not a declared output either.
        let run = run_trained(
            &keys(),
            Box::new(|s| fs::create_dir(s.output.join("cache")).unwrap()),
        );
        assert_failed(&run, "job.unexpected_output", "\"cache\"");
    }

    #[test]
    fn keys_rotated_during_the_job_fail_it_before_it_publishes() {
        // The key directory's key set is replaced by its rotation while the
        // trainer runs, as `veritrain keys rotate` would: the job's key is
        // retired before the job finishes, so the bundle would fail against
        // the operator's current key set.
        let keydir = tempfile::tempdir().unwrap();
        let issued = Utc::now() - chrono::Duration::minutes(1);
        let (keys, root, keyset) = keys_issued(issued, Some(keydir.path()));
        let signer = keys.signer.keyid().to_owned();
        let path = keydir.path().join(crate::keydir::KEYSET);
        let run = run_trained(
            &keys,
            Box::new(move |_| {
                let new = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
                // One second back: the key set's times are whole seconds.
                let at = (Utc::now() - chrono::Duration::seconds(1)).trunc_subsecs(0);
                let rotated = keyset.rotate(new.public_key(), at).unwrap();
                let bytes = rotated.sign(&root).unwrap().to_json_pretty().unwrap();
                fs::write(&path, bytes).unwrap();
            }),
        );
        assert_failed(&run, "keys.signing_key_invalid", &signer);
        let e = run.result.unwrap_err().to_string();
        assert!(e.contains("retired key, valid only until"), "{e}");
        assert!(e.contains("keyset.dsse.json"), "{e}");
    }
}

#[cfg(test)]
mod bom_tests;
