//! Test support (feature `test-support`): real bundles built in-process,
//! without TensorFlow or a sandbox, so that the verifier and the commands
//! that read bundles are tested in the fast tier.
//!
//! [`build_bundle`] runs the real [`run_job`] on the quickstart example
//! (intake gate, hashing, links, provenance, AIBoM, signatures) with a fake
//! runtime (`veritrain_runtime::identity::write_fake_runtime`) and
//! [`FakeTrainer`], a [`Sandbox`] that plays the trainer: it writes the four
//! declared outputs and reports two epochs and `done`. Only training itself
//! is fake; everything the verifier checks is made by the production code.
//!
//! Not for production use: nothing here is hardened.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use veritrain_attest::dsse::Limits;
use veritrain_attest::intoto::{MetablockLimits, parse_metablock};
use veritrain_attest::keys::{Algorithm, PrivateKey, Signer};
use veritrain_attest::keyset::{KeySet, verify_keyset};
use veritrain_bom::input::Organization;
use veritrain_intake::gate::GateLimits;
use veritrain_runtime::VerifiedRuntime;
use veritrain_sandbox::{
    BindRole, Captured, CgroupFacts, CgroupStats, FACTS_SCHEMA, JobStatus, LimitFact, Outcome,
    Policy, PolicyFacts, Sandbox, SandboxCommand, SeccompFacts,
};

use crate::error::{Error, Result};
use crate::job::{JobInputs, JobSettings, JobSummary, PlatformBinary, run_job};
use crate::keydir::JobKeys;
use crate::layout;

/// A root key and one signing key, as `veritrain keys init` makes them.
pub struct TestKeys {
    /// The root key (signs the key set and the layout).
    pub root: PrivateKey,
    /// The signing key (signs links and envelopes).
    pub signing: PrivateKey,
    /// When the signing key became valid and the key set was issued.
    pub since: DateTime<Utc>,
}

impl TestKeys {
    /// Fresh keys; the signing key is valid from `since`.
    ///
    /// # Errors
    /// Key generation errors.
    pub fn generate(since: DateTime<Utc>) -> Result<TestKeys> {
        Ok(TestKeys {
            root: PrivateKey::generate(Algorithm::EcdsaP256)?,
            signing: PrivateKey::generate(Algorithm::EcdsaP256)?,
            since,
        })
    }

    /// The key set, version 1: the signing key, active since `since`.
    ///
    /// # Errors
    /// Key set errors.
    pub fn keyset(&self) -> Result<KeySet> {
        Ok(KeySet::new(self.signing.public_key(), self.since)?)
    }

    /// The root public key as `trust/root.pub` holds it.
    ///
    /// # Errors
    /// Encoding errors.
    pub fn root_pem(&self) -> Result<String> {
        Ok(self.root.public_key().to_spki_pem()?)
    }

    /// What a job needs, with a layout signed at `layout_from` and valid for
    /// `days` from then (which may already have expired: a job does not
    /// check, only `JobKeys::load` does).
    ///
    /// # Errors
    /// Signing errors.
    pub fn job_keys(&self, layout_from: DateTime<Utc>, days: i64) -> Result<JobKeys> {
        let keyset_bytes = self.keyset()?.sign(&self.root)?.to_json_pretty()?;
        let keyset = verify_keyset(&keyset_bytes, self.root.public_key(), &Limits::default())?;
        let layout_bytes = layout::sign_job_layout(&keyset, &self.root, layout_from, days)?;
        let layout = parse_metablock(&layout_bytes, &MetablockLimits::default())?
            .verify_layout(std::slice::from_ref(self.root.public_key()), layout_from)?;
        Ok(JobKeys {
            dir: None,
            root: self.root.public_key().clone(),
            root_pem: self.root_pem()?.into_bytes(),
            keyset_bytes,
            keyset,
            layout_bytes,
            layout,
            signer: Box::new(PrivateKey::from_pem(&self.signing.to_pkcs8_pem()?)?),
        })
    }
}

/// The quickstart example's files (`examples/quickstart`).
pub fn quickstart(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/quickstart")
        .join(name)
}

/// A verified fake runtime at `dir/runtime`, its interpreter a stub at
/// `dir/python3.11` (`veritrain_runtime::identity::write_fake_runtime`).
///
/// # Errors
/// I/O and runtime errors.
pub fn fake_runtime(dir: &Path) -> Result<VerifiedRuntime> {
    let interpreter = dir.join("python3.11");
    fs::write(&interpreter, b"#!fake interpreter\n").map_err(|e| Error::io(&interpreter, e))?;
    let rt_dir = dir.join("runtime");
    let lock = veritrain_runtime::lock::Lock::embedded()?;
    veritrain_runtime::identity::write_fake_runtime(&rt_dir, &interpreter, &lock)?;
    Ok(VerifiedRuntime::verify(&rt_dir)?)
}

/// The quickstart example's four files, as a job's inputs.
pub struct QuickstartInputs {
    model: PathBuf,
    data: PathBuf,
    definition: PathBuf,
    request: PathBuf,
}

impl Default for QuickstartInputs {
    fn default() -> Self {
        QuickstartInputs {
            model: quickstart("model.keras"),
            data: quickstart("data.csv"),
            definition: quickstart("definition.yaml"),
            request: quickstart("job.yaml"),
        }
    }
}

impl QuickstartInputs {
    /// The inputs of [`run_job`].
    pub fn inputs(&self) -> JobInputs<'_> {
        JobInputs {
            model: &self.model,
            data: &self.data,
            definition: &self.definition,
            request: Some(&self.request),
        }
    }
}

/// The settings of a test job into `out`: the test operator, no job ID,
/// a test binary, default gate limits, no cancel token. Tests override
/// fields with struct update syntax.
pub fn test_settings<'a>(
    out: &'a Path,
    runtime: &'a VerifiedRuntime,
    sandbox: &'a dyn Sandbox,
    policy: &'a Policy,
) -> JobSettings<'a> {
    JobSettings {
        out,
        runtime,
        sandbox,
        policy,
        gate: GateLimits::default(),
        supplier: Organization {
            name: "Veritrain test operator".into(),
            ..Organization::default()
        },
        job_id: None,
        binary: PlatformBinary {
            version: "0.0.0-test".into(),
            sha256: "0".repeat(64),
        },
        cancel: None,
    }
}

/// Run the quickstart job into a new bundle at `out` with `keys`, trained by
/// [`FakeTrainer`]. The fake runtime is made next to `out` and removed after.
///
/// # Errors
/// As [`run_job`].
pub fn build_bundle(out: &Path, keys: &JobKeys) -> Result<JobSummary> {
    let name = out
        .file_name()
        .map_or_else(|| "bundle".to_owned(), |n| n.to_string_lossy().into_owned());
    let scratch = out.with_file_name(format!(".{name}.fake-runtime"));
    fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    let result = fake_runtime(&scratch).and_then(|runtime| {
        let policy = Policy::for_testing();
        let settings = test_settings(out, &runtime, &FakeTrainer, &policy);
        run_job(
            &QuickstartInputs::default().inputs(),
            &settings,
            keys,
            &mut |_| {},
        )
    });
    let _ = fs::remove_dir_all(&scratch);
    result
}

/// What a fake sandbox returns for a run that succeeded after `wall_time`
/// with the cgroup's `usage`.
pub fn succeeded(policy: &Policy, wall_time: Duration, usage: CgroupStats) -> Outcome {
    Outcome {
        job_id: "fake".into(),
        status: JobStatus::Succeeded,
        exit_code: Some(0),
        timed_out: false,
        oom_killed: false,
        wall_time,
        usage,
        leftover_processes: 0,
        stdout: Captured::default(),
        stderr: Captured::default(),
        output: None,
        facts: fake_facts(policy),
    }
}

/// Every file under `dir`, relative to it, sorted.
///
/// # Panics
/// When `dir` cannot be read (test support).
#[allow(clippy::unwrap_used)]
pub fn bundle_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A copy of the tree `from` at `to`.
///
/// # Panics
/// On an I/O error (test support).
#[allow(clippy::unwrap_used)]
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap_or_default());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A [`Sandbox`] that plays the trainer without running anything: the
/// "trained" model is the base model re-packed with a ZIP comment (so its
/// digest differs), with fixed metrics, split and log, two epoch events and
/// `done`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FakeTrainer;

/// The ZIP comment that marks the fake trainer's model.
pub const FAKE_MODEL_COMMENT: &str = "trained by veritrain_pipeline::testing::FakeTrainer";

impl Sandbox for FakeTrainer {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn facts(&self, _: &SandboxCommand, policy: &Policy) -> veritrain_sandbox::Result<PolicyFacts> {
        Ok(fake_facts(policy))
    }

    fn run_streaming(
        &self,
        cmd: &SandboxCommand,
        policy: &Policy,
        on_line: &mut dyn FnMut(&str),
    ) -> veritrain_sandbox::Result<Outcome> {
        let fail = |m: String| veritrain_sandbox::Error::InvalidCommand(m);
        let out = cmd
            .output_dir()
            .ok_or_else(|| fail("no output directory".into()))?;
        let inputs = cmd
            .binds()
            .iter()
            .find(|b| b.role == BindRole::Inputs)
            .ok_or_else(|| fail("no inputs bind".into()))?;
        repack(&inputs.source.join("model.keras"), &out.join("model.keras"))
            .map_err(|e| fail(format!("fake training: {e}")))?;
        let history = [(1, 0.9, 0.6, 0.95, 0.55), (2, 0.5, 0.8, 0.6, 0.75)];
        let rows: Vec<serde_json::Value> = history
            .iter()
            .map(|(epoch, loss, acc, val_loss, val_acc)| {
                serde_json::json!({"epoch": epoch, "loss": loss, "accuracy": acc,
                    "val_loss": val_loss, "val_accuracy": val_acc})
            })
            .collect();
        // Every fact the job reads from a real `metrics.json` (schema
        // `veritrain.metrics/v1`, `trainer/train.py`) for the AIBoM.
        let metrics = serde_json::json!({
            "schema": "veritrain.metrics/v1",
            "history": rows,
            "steps_run": 30,
            "compile": {
                "source": "compile_config",
                "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                "loss": "sparse_categorical_crossentropy",
                "metrics": ["accuracy"],
            },
            "split": {"algorithm": "sha256-rank-v1", "seed": 7, "validation_fraction": 0.2,
                "examples": 600, "train": 480, "validation": 120},
            "final_evaluation": {"split": "validation", "examples": 120,
                "loss": 0.6, "accuracy": 0.75},
        });
        let files: [(&str, Vec<u8>); 3] = [
            (
                "metrics.json",
                serde_json::to_vec_pretty(&metrics).unwrap_or_default(),
            ),
            (
                "split.json",
                br#"{"train": 400, "validation": 100, "seed": 7}"#.to_vec(),
            ),
            ("training.log", b"epoch 1\nepoch 2\n".to_vec()),
        ];
        for (name, bytes) in files {
            fs::write(out.join(name), bytes).map_err(|e| fail(format!("{name}: {e}")))?;
        }
        for row in &rows {
            let mut m = row.clone();
            let epoch = m
                .as_object_mut()
                .and_then(|o| o.remove("epoch"))
                .unwrap_or_default();
            on_line(
                &serde_json::json!({"event": "epoch", "epoch": epoch, "metrics": m}).to_string(),
            );
        }
        on_line(r#"{"event":"done","epochs":2}"#);
        Ok(succeeded(
            policy,
            Duration::from_millis(10),
            CgroupStats::default(),
        ))
    }
}

/// Re-sign a DSSE envelope's exact payload with `key`, as an attacker (or a
/// test) holding some key would.
///
/// # Panics
/// When the file is not a DSSE envelope or cannot be written (test support).
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub fn resign_envelope(path: &Path, key: &PrivateKey) {
    let env: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    sign_payload(path, env["payloadType"].as_str().unwrap(), &payload, key);
}

/// Write at `path` a DSSE envelope of `payload` signed by `key`.
///
/// # Panics
/// When signing or writing fails (test support).
#[allow(clippy::unwrap_used)]
pub fn sign_payload(path: &Path, payload_type: &str, payload: &[u8], key: &PrivateKey) {
    let signed =
        veritrain_attest::dsse::sign(payload_type, payload, &[key as &dyn Signer]).unwrap();
    fs::write(path, signed.to_json().unwrap()).unwrap();
}

/// Re-sign an in-toto metablock's `signed` part with `key`.
///
/// # Panics
/// When the file is not a metablock or cannot be written (test support).
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub fn resign_metablock(path: &Path, key: &PrivateKey) {
    let mut block: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let canonical = veritrain_attest::cjson::encode(&block["signed"]).unwrap();
    let sig = key.sign(&canonical).unwrap();
    block["signatures"] =
        serde_json::json!([{"keyid": key.public_key().keyid(), "sig": hex::encode(sig)}]);
    fs::write(path, serde_json::to_vec(&block).unwrap()).unwrap();
}

/// The base model's members copied into a new archive with a comment.
fn repack(from: &Path, to: &Path) -> std::result::Result<(), String> {
    let file = fs::File::open(from).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let out = fs::File::create(to).map_err(|e| e.to_string())?;
    let mut writer = zip::ZipWriter::new(out);
    for i in 0..archive.len() {
        let member = archive.by_index_raw(i).map_err(|e| e.to_string())?;
        writer.raw_copy_file(member).map_err(|e| e.to_string())?;
    }
    writer
        .set_comment(FAKE_MODEL_COMMENT)
        .map_err(|e| e.to_string())?;
    writer
        .finish()
        .map_err(|e| e.to_string())?
        .flush()
        .map_err(|e| e.to_string())
}

/// The policy facts a fake sandbox reports: nothing enforced (no
/// namespaces, no seccomp, no cgroup), and the limits `policy` asks for, as
/// the AIBoM records them.
pub fn fake_facts(policy: &Policy) -> PolicyFacts {
    let l = &policy.limits;
    let limit = |name: &str, value: Option<u64>, unit: &str| LimitFact {
        name: name.into(),
        value,
        unit: unit.into(),
        mechanism: "none (fake sandbox)".into(),
    };
    PolicyFacts {
        schema: FACTS_SCHEMA.into(),
        backend: "fake".into(),
        backend_version: "0".into(),
        namespaces: Vec::new(),
        nested_user_namespaces: false,
        network: "none (fake trainer)".into(),
        host_uid: 0,
        host_gid: 0,
        uid: 0,
        gid: 0,
        capabilities: Vec::new(),
        no_new_privs: true,
        seccomp: SeccompFacts {
            enabled: false,
            digest: None,
            arch: std::env::consts::ARCH.into(),
            instructions: 0,
            default_action: "allow".into(),
            foreign_arch_action: "allow".into(),
            denied: Vec::new(),
            enosys: Vec::new(),
            conditional: Vec::new(),
        },
        mounts: Vec::new(),
        environment: Vec::new(),
        limits: vec![
            limit("memory", l.memory_bytes, "bytes"),
            limit(
                "cpu_quota",
                l.cpu_quota_cores.map(|c| (c * 1000.0).round() as u64),
                "millicores",
            ),
        ],
        cgroup: CgroupFacts {
            layout: "none".into(),
            controllers: Vec::new(),
            v2_tracking: false,
        },
        gpu_devices: Vec::new(),
    }
}
