//! Offline verification of a bundle ([`verify_bundle`]): what
//! `veritrain verify` runs, and what the service's `POST /v1/verify` runs.
//! It needs the bundle and the root public key the verifier received from
//! the operator through a trusted channel (the pin). Nothing else: no
//! network, no server, no state.
//!
//! Every check runs and is reported on its own (a failure does not hide
//! the others), each failure names the file and what did not match, and
//! the bundle passes only when every check passes. A check that needs what
//! an earlier one failed to establish (a verified key set, verified links)
//! is reported as not run ([`CheckStatus::NotRun`], with what it needed),
//! never as a failure of its own, so the report points at the culprit.
//! The checks, in order:
//!
//! 1. `keyset`: the key set is signed by the pinned root key. Without a pin
//!    the check fails (`verify.root_not_pinned`, naming `trust/root.pub`):
//!    a bundle's own root key only proves that the bundle agrees with
//!    itself. The other checks still run against the bundle's root, so the
//!    report shows everything else;
//! 2. `layout`: the layout is signed by the root key, names only keys of
//!    the key set, and had not expired at the signing time;
//! 3. `links`: each link is signed by a functionary the layout names for
//!    its step, the signing key was valid at the signing time, the
//!    thresholds are met and the artifact rules hold across the chain.
//!    Without a verified signing time (the provenance failed) only the
//!    signatures are checked, and the provenance alone is blamed;
//! 4. `files`: every file in the bundle is re-hashed; each must match the
//!    links or be an attestation, and nothing else may be there;
//! 5. `provenance`: the SLSA provenance envelope's signature (key valid at
//!    its `finishedOn`), and its subjects are the link's products;
//! 6. `aibom`: the AIBoM envelope's signature (key valid at the BOM's
//!    timestamp), schema, subject, and `aibom.cdx.json` is what was signed;
//! 7. `manifest`: the dataset manifest's signature, its root digest, its
//!    subject, and that it is the manifest of the dataset in the bundle;
//! 8. `consistency`: the links, the provenance and the AIBoM name the same
//!    job (a signed document of another job is named as the culprit); the
//!    digests they name for the same thing agree; and every file the signed
//!    AIBoM references (the layout, the links, the provenance, the
//!    manifest) is the one in the bundle. That last part needs only the
//!    verified AIBoM, so a swapped layout is named even when the links fail;
//! 9. `artifact`: each file the user passed matches something in the
//!    bundle by digest.
//!
//! Signatures are checked over the exact bytes in the bundle, never over a
//! re-serialization.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use veritrain_attest::Verified;
use veritrain_attest::dsse::Limits;
use veritrain_attest::hash::{HashOptions, Manifest, hash_path};
use veritrain_attest::intoto::{
    Layout, Link, MetablockLimits, VerifyOptions, parse_metablock, verify_chain,
};
use veritrain_attest::keys::PublicKey;
use veritrain_attest::keyset::{KeySet, verify_keyset};
use veritrain_attest::statement::{SLSA_PROVENANCE_V1, Statement};
use veritrain_intake::zip::ZipLimits;

use crate::bundle::{
    AIBOM, AIBOM_ENVELOPE, ATTESTATIONS_DIR, BUILD_TYPE, DATASET_MANIFEST, INPUT_DATA_PREFIX,
    INPUT_DEFINITION, INPUT_MODEL, LAYOUT, MANIFEST_PREDICATE, OUTPUT_METRICS, OUTPUT_MODEL,
    PROVENANCE, STEP_INTAKE, STEP_TRAIN, TRUST_KEYSET, TRUST_ROOT,
};
use crate::manifest::{DatasetManifest, hash_reader};

/// Largest attestation file read.
const MAX_ATTESTATION_BYTES: u64 = 64 << 20;

/// What a check needs, as its "not run" line says.
const NEEDS_KEYSET: &str = "a key set verified with the root key";
const NEEDS_LINKS: &str = "verified links";
/// The links' signing keys are judged at the provenance's signing time.
const NEEDS_SIGNING_TIME: &str =
    "a verified signing time (the finishedOn of attestations/provenance.dsse.json)";

/// The failure code of a verification without a pinned root key.
pub const ROOT_NOT_PINNED: &str = "verify.root_not_pinned";

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// The pinned root public key. `None` fails the `keyset` check
    /// ([`ROOT_NOT_PINNED`]); the other checks then run against the
    /// bundle's own `trust/root.pub`, so the report still shows them.
    pub root: Option<PublicKey>,
    /// Files (or dataset directories) the user holds, to match by digest.
    pub artifacts: Vec<HeldArtifact>,
    /// A newer key set than the bundle's (the operator's latest
    /// `public/keyset.dsse.json`), so that revocations made after the job
    /// count. It must verify with the root and must not be older than the
    /// bundle's own.
    pub keyset: Option<Vec<u8>>,
}

/// A file (or dataset directory) the user holds, and the name the report
/// calls it by (a service names uploads by the client's file name, never
/// by where it staged them).
#[derive(Debug, Clone)]
pub struct HeldArtifact {
    /// Where it is.
    pub path: PathBuf,
    /// How the report names it.
    pub name: String,
}

impl HeldArtifact {
    /// A file named by its path, as on the command line.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        HeldArtifact {
            name: path.display().to_string(),
            path,
        }
    }
}

/// One failed expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The file at fault (bundle path), or the artifact the user passed.
    /// Where two files disagree and either may be the changed one, both,
    /// separated by `", "`.
    pub file: String,
    /// The stable error code, where there is one (`verify.*`, or the
    /// attestation library's `dsse.*`, `intoto.*`, `keyset.*`, ...); the
    /// message starts with it in brackets too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What did not match.
    pub message: String,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Everything it checks holds.
    Passed,
    /// At least one failure.
    Failed,
    /// It (or part of it) could not run, because something it needs
    /// ([`Check::needs`]) failed in an earlier check; no failure of its own.
    NotRun,
}

/// One reported check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable ID (`keyset`, `layout`, `links`, `files`, `provenance`,
    /// `aibom`, `manifest`, `consistency`, `artifact`).
    pub id: &'static str,
    /// What was checked, in a few words.
    pub title: String,
    /// Passed, failed, or not run.
    pub status: CheckStatus,
    /// Whether it passed (`status == passed`; kept for older readers).
    pub ok: bool,
    /// What it needed that an earlier check failed to establish, when all
    /// or part of it could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
    /// Facts established (shown under a passed check too).
    pub details: Vec<String>,
    /// Every failure.
    pub failures: Vec<Failure>,
}

impl Check {
    fn new(id: &'static str, title: impl Into<String>) -> Check {
        Check {
            id,
            title: title.into(),
            status: CheckStatus::Passed,
            ok: true,
            needs: None,
            details: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, file: impl Into<String>, message: impl Into<String>) {
        self.push_failure(file.into(), None, message.into());
    }

    /// A failure with a stable code, which also starts the message.
    fn fail_code(&mut self, file: impl Into<String>, code: &str, message: impl AsRef<str>) {
        self.push_failure(
            file.into(),
            Some(code.to_owned()),
            format!("[{code}] {}", message.as_ref()),
        );
    }

    fn push_failure(&mut self, file: String, code: Option<String>, message: String) {
        self.status = CheckStatus::Failed;
        self.ok = false;
        self.failures.push(Failure {
            file,
            code,
            message,
        });
    }

    fn detail(&mut self, text: impl Into<String>) {
        self.details.push(text.into());
    }

    /// All or part of the check could not run: it needs `needs`, which an
    /// earlier check did not establish. Not a failure of its own.
    fn blocked(&mut self, needs: &str) {
        self.ok = false;
        if self.status == CheckStatus::Passed {
            self.status = CheckStatus::NotRun;
        }
        self.needs = Some(match self.needs.take() {
            Some(earlier) if earlier != needs => format!("{earlier}; {needs}"),
            _ => needs.to_owned(),
        });
    }
}

/// The verification report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The bundle.
    pub bundle: PathBuf,
    /// Whether the root key was pinned by the caller.
    pub root_pinned: bool,
    /// The root key ID used.
    pub root_keyid: Option<String>,
    /// The job ID the provenance records.
    pub job_id: Option<String>,
    /// The trained model's SHA-256 per the links.
    pub model_sha256: Option<String>,
    /// The signing time the layout's expiry and key validity were judged at.
    pub signing_time: Option<DateTime<Utc>>,
    /// Every check, in report order.
    pub checks: Vec<Check>,
    /// Remarks that do not fail verification.
    pub notes: Vec<String>,
}

impl Report {
    /// True only when every check passed.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// How many checks have `status`.
    pub fn count(&self, status: CheckStatus) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// Every failure, with its check's ID.
    pub fn failures(&self) -> impl Iterator<Item = (&'static str, &Failure)> {
        self.checks
            .iter()
            .flat_map(|c| c.failures.iter().map(move |f| (c.id, f)))
    }
}

impl Report {
    /// The report for a bundle archive that could not be unpacked: one
    /// failed check, `archive`, naming it (`code` is the archive reader's).
    pub fn unreadable_archive(archive: &Path, code: &str, message: impl AsRef<str>) -> Report {
        let mut check = Check::new("archive", "bundle archive readable");
        check.fail_code(
            archive.display().to_string(),
            code,
            format!("not a readable bundle archive: {}", message.as_ref()),
        );
        Report {
            bundle: archive.to_owned(),
            root_pinned: false,
            root_keyid: None,
            job_id: None,
            model_sha256: None,
            signing_time: None,
            checks: vec![check],
            notes: Vec::new(),
        }
    }
}

/// Verify the bundle at `dir`.
pub fn verify_bundle(dir: &Path, opts: &BundleOptions) -> Report {
    let mut v = Verifier {
        dir: dir.to_owned(),
        limits: Limits::default(),
        notes: Vec::new(),
    };
    v.run(opts)
}

struct Verifier {
    dir: PathBuf,
    limits: Limits,
    notes: Vec<String>,
}

/// What the link check established.
struct Chain {
    intake: Link,
    train: Link,
    link_files: Vec<String>,
}

impl Verifier {
    fn run(&mut self, opts: &BundleOptions) -> Report {
        // Files first: one parallel hashing pass over the whole bundle.
        let mut files = Check::new("files", "every file re-hashed against the links");
        let inventory = self.inventory(&mut files);

        let mut keyset_check = Check::new("keyset", "key set signed by the pinned root key");
        let (root, keyset) = self.keyset(opts, &mut keyset_check);

        let mut provenance = Check::new(
            "provenance",
            "SLSA provenance: signature, signing key valid, subjects",
        );
        let prov = match &keyset {
            Some(ks) => self.provenance_envelope(ks, &mut provenance),
            None => {
                provenance.blocked(NEEDS_KEYSET);
                None
            }
        };
        let signing_time = prov.as_ref().and_then(|s| s.recorded_signing_time().ok());

        let mut layout_check = Check::new(
            "layout",
            "in-toto layout: root signature, keys, expiry at the signing time",
        );
        let layout = match (&root, &keyset) {
            (Some(r), Some(ks)) => self.layout(r, ks, signing_time, &mut layout_check),
            _ => {
                layout_check.blocked(NEEDS_KEYSET);
                None
            }
        };

        let mut links = Check::new(
            "links",
            "in-toto links: functionary signatures, key validity, thresholds, artifact rules",
        );
        let chain = match (&layout, &keyset) {
            (Some(l), Some(ks)) => self.links(l, ks, signing_time, &mut links),
            (None, Some(_)) => {
                links.blocked("a verified layout");
                None
            }
            _ => {
                links.blocked(NEEDS_KEYSET);
                None
            }
        };

        match (&chain, &inventory) {
            (Some(c), Some(inv)) => self.files(c, inv, &mut files),
            (None, _) => files.blocked(NEEDS_LINKS),
            (_, None) => {}
        }

        if let (Some(p), Some(c)) = (&prov, &chain) {
            self.provenance_subjects(p, c, &mut provenance);
        } else if prov.is_some() {
            provenance.blocked(NEEDS_LINKS);
        }

        let mut aibom = Check::new(
            "aibom",
            "AIBoM: signature, signing key valid, schema, subject, aibom.cdx.json",
        );
        let bom = match &keyset {
            Some(ks) => self.aibom(ks, chain.as_ref(), &mut aibom),
            None => {
                aibom.blocked(NEEDS_KEYSET);
                None
            }
        };

        let mut manifest = Check::new(
            "manifest",
            "dataset manifest: signature, root digest, subject, re-derived from the data",
        );
        let dataset_manifest = match &keyset {
            Some(ks) => self.manifest(ks, chain.as_ref(), inventory.as_ref(), &mut manifest),
            None => {
                manifest.blocked(NEEDS_KEYSET);
                None
            }
        };

        let mut consistency =
            Check::new("consistency", "AIBoM, provenance, links and manifest agree");
        let bom_is_this_jobs = Self::job_ids(
            chain.as_ref(),
            prov.as_ref(),
            bom.as_ref(),
            &mut consistency,
        );
        // The files the signed AIBoM references need only the AIBoM: a
        // swapped layout or link is named even when the chain failed. An
        // AIBoM of another job would blame this job's own files instead.
        match (&bom, &inventory) {
            (Some(b), Some(inv)) if bom_is_this_jobs => {
                self.references(b, inv, &mut consistency);
            }
            (Some(_), Some(_)) => consistency.blocked("an AIBoM of this job"),
            (None, _) => consistency.blocked("a verified AIBoM"),
            (_, None) => consistency.blocked("a hashed bundle"),
        }
        match (&chain, &prov, &bom, &dataset_manifest) {
            (Some(c), Some(p), Some(b), Some(m)) => {
                self.consistency(c, p, b, m, &mut consistency);
            }
            _ => {
                let missing: Vec<&str> = [
                    (chain.is_none(), "verified links"),
                    (prov.is_none(), "a verified provenance"),
                    (bom.is_none(), "a verified AIBoM"),
                    (dataset_manifest.is_none(), "a verified manifest"),
                ]
                .iter()
                .filter(|(m, _)| *m)
                .map(|(_, what)| *what)
                .collect();
                consistency.blocked(&missing.join(", "));
            }
        }

        let mut checks = vec![
            keyset_check,
            layout_check,
            links,
            files,
            provenance,
            aibom,
            manifest,
            consistency,
        ];
        for artifact in &opts.artifacts {
            checks.push(self.artifact(artifact, chain.as_ref(), dataset_manifest.as_ref()));
        }
        let job_id = prov.as_ref().and_then(|p| {
            p.provenance()
                .ok()
                .and_then(|p| p.run_details.metadata.invocation_id)
        });
        let model_sha256 = chain
            .as_ref()
            .and_then(|c| c.train.products.get(OUTPUT_MODEL))
            .and_then(|d| d.get("sha256"))
            .cloned();
        Report {
            bundle: self.dir.clone(),
            root_pinned: opts.root.is_some(),
            root_keyid: root.map(|r| r.keyid().to_owned()),
            job_id,
            model_sha256,
            signing_time,
            checks,
            notes: std::mem::take(&mut self.notes),
        }
    }

    fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        use std::io::Read as _;
        let path = self.dir.join(rel);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "missing from the bundle".to_owned(),
            _ => e.to_string(),
        })?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        file.take(MAX_ATTESTATION_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_ATTESTATION_BYTES {
            return Err(format!("larger than {MAX_ATTESTATION_BYTES} bytes"));
        }
        Ok(bytes)
    }

    fn inventory(&mut self, check: &mut Check) -> Option<Manifest> {
        match hash_path(&self.dir, &HashOptions::files()) {
            Ok(m) => {
                check.detail(format!(
                    "{} files, {} bytes hashed",
                    m.entries().len(),
                    m.total_size()
                ));
                Some(m)
            }
            Err(e) => {
                let file = match &e {
                    veritrain_attest::Error::HashSymlink { path }
                    | veritrain_attest::Error::HashSpecialFile { path } => path
                        .strip_prefix(&self.dir)
                        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string()),
                    _ => "-".to_owned(),
                };
                check.fail(file, format!("cannot hash the bundle: {e}"));
                None
            }
        }
    }

    fn keyset(
        &mut self,
        opts: &BundleOptions,
        check: &mut Check,
    ) -> (Option<PublicKey>, Option<Verified<KeySet>>) {
        let shipped = self.read(TRUST_ROOT).and_then(|b| {
            PublicKey::from_spki_pem(&String::from_utf8_lossy(&b))
                .map_err(|e| format!("[{}] {e}", e.code()))
        });
        // The one failure that still lets the other checks run: no pin.
        let mut unpinned = 0;
        let root = match (&opts.root, shipped) {
            (Some(pinned), Ok(shipped)) => {
                if shipped.keyid() != pinned.keyid() {
                    check.fail_code(
                        TRUST_ROOT,
                        "verify.root_mismatch",
                        format!(
                            "the bundle's root key {} is not the pinned root key {}",
                            shipped.keyid(),
                            pinned.keyid()
                        ),
                    );
                }
                check.detail(format!("root key {} (pinned)", pinned.keyid()));
                pinned.clone()
            }
            (Some(pinned), Err(e)) => {
                check.fail(TRUST_ROOT, e);
                pinned.clone()
            }
            (None, Ok(shipped)) => {
                // Without a pin, a stranger who replaced the trust material
                // and every signature would pass: the bundle's root key
                // vouches only for itself.
                check.fail_code(
                    TRUST_ROOT,
                    ROOT_NOT_PINNED,
                    format!(
                        "no root key is pinned, so nothing ties this bundle to your operator: its own \
                         root key {} (fingerprint, SHA-256 of its DER: {}) vouches only for itself. \
                         Obtain the operator's root public key (ROOT.pub) out of band, check that its \
                         key ID or fingerprint is the one you were given, and pin it with --root-key \
                         ROOT.pub or VERITRAIN_ROOT_KEY=ROOT.pub. The other checks ran against the \
                         bundle's own root key.",
                        shipped.keyid(),
                        der_fingerprint(&shipped).unwrap_or_else(|| "unknown".to_owned())
                    ),
                );
                check.detail(format!(
                    "root key {} taken from the bundle (not pinned)",
                    shipped.keyid()
                ));
                unpinned = 1;
                shipped
            }
            (None, Err(e)) => {
                check.fail(TRUST_ROOT, e);
                return (None, None);
            }
        };
        let shipped = match self.read(TRUST_KEYSET) {
            Ok(bytes) => match verify_keyset(&bytes, &root, &self.limits) {
                Ok(ks) => Some(ks),
                Err(e) => {
                    check.fail_code(TRUST_KEYSET, e.code(), e.to_string());
                    None
                }
            },
            Err(e) => {
                check.fail(TRUST_KEYSET, e);
                None
            }
        };
        let keyset = match &opts.keyset {
            None => shipped,
            Some(bytes) => match verify_keyset(bytes, &root, &self.limits) {
                Ok(given) => {
                    if let Some(ks) = &shipped
                        && ks.version > given.version
                    {
                        check.fail_code(
                            "--keyset",
                            "verify.keyset_rollback",
                            format!(
                                "the given key set (version {}) is older than the bundle's (version {}); \
                                 an old key set could hide a revocation",
                                given.version, ks.version
                            ),
                        );
                    }
                    check.detail(format!(
                        "using the key set given with --keyset (version {})",
                        given.version
                    ));
                    shipped.is_some().then_some(given)
                }
                Err(e) => {
                    check.fail_code("--keyset", e.code(), e.to_string());
                    None
                }
            },
        };
        if let Some(ks) = &keyset {
            check.detail(format!(
                "key set version {}, issued {}, {} signing key(s)",
                ks.version,
                ks.issued.to_rfc3339(),
                ks.keys.len()
            ));
        }
        if check.failures.len() > unpinned {
            return (Some(root), None);
        }
        (Some(root), keyset)
    }

    fn provenance_envelope(
        &self,
        keyset: &Verified<KeySet>,
        check: &mut Check,
    ) -> Option<Verified<Statement>> {
        let bytes = match self.read(PROVENANCE) {
            Ok(b) => b,
            Err(e) => {
                check.fail(PROVENANCE, e);
                return None;
            }
        };
        match keyset.verify_statement(&bytes, &self.limits) {
            Ok(s) => {
                if s.predicate_type != SLSA_PROVENANCE_V1 {
                    check.fail(
                        PROVENANCE,
                        format!(
                            "predicate type {:?} is not SLSA Provenance v1",
                            s.predicate_type
                        ),
                    );
                    return None;
                }
                match s.provenance() {
                    Ok(p) if p.build_definition.build_type == BUILD_TYPE => {
                        check.detail(format!(
                            "signed by {}; builder {} {}",
                            s.signers().join(", "),
                            p.run_details.builder.id,
                            p.run_details
                                .builder
                                .version
                                .get("veritrain")
                                .map_or("", String::as_str)
                        ));
                    }
                    Ok(p) => check.fail(
                        PROVENANCE,
                        format!(
                            "build type {:?} is not {BUILD_TYPE}",
                            p.build_definition.build_type
                        ),
                    ),
                    Err(e) => check.fail(PROVENANCE, e.to_string()),
                }
                if let Ok(t) = s.recorded_signing_time() {
                    check.detail(format!("finished (signing time) {}", t.to_rfc3339()));
                }
                Some(s)
            }
            Err(e) => {
                check.fail_code(PROVENANCE, e.code(), e.to_string());
                None
            }
        }
    }

    fn layout(
        &mut self,
        root: &PublicKey,
        keyset: &Verified<KeySet>,
        signing_time: Option<DateTime<Utc>>,
        check: &mut Check,
    ) -> Option<Verified<Layout>> {
        let bytes = match self.read(LAYOUT) {
            Ok(b) => b,
            Err(e) => {
                check.fail(LAYOUT, e);
                return None;
            }
        };
        let now = Utc::now();
        let at = signing_time.unwrap_or(now);
        let layout = match parse_metablock(&bytes, &MetablockLimits::default())
            .and_then(|m| m.verify_layout(std::slice::from_ref(root), at))
        {
            Ok(l) => l,
            // Expiry is judged at the signing time; without one it cannot
            // be judged, and the layout is not blamed for the provenance.
            Err(veritrain_attest::Error::LayoutExpired(_)) if signing_time.is_none() => {
                check.blocked(NEEDS_SIGNING_TIME);
                return None;
            }
            Err(e) => {
                let when = if signing_time.is_some() {
                    "at the signing time"
                } else {
                    "now (no verified signing time)"
                };
                check.fail_code(LAYOUT, e.code(), format!("{e} (judged {when})"));
                return None;
            }
        };
        for keyid in layout.keys.keys() {
            if keyset.entry(keyid).is_none() {
                check.fail(
                    LAYOUT,
                    format!("the layout names key {keyid}, which the key set does not list"),
                );
            }
        }
        check.detail(format!(
            "signed by the root key; expires {}",
            layout.expires
        ));
        if let Ok(expires) = layout.expires_at() {
            match signing_time {
                Some(t) => {
                    let today = if expires <= now {
                        format!("it has expired since ({})", layout.expires)
                    } else {
                        "it is still valid today".to_owned()
                    };
                    check.detail(format!(
                        "expiry judged at the signing time {} recorded in the provenance (a signer's claim); {today}",
                        t.to_rfc3339()
                    ));
                }
                None => {
                    check.detail("expiry judged now: the provenance gave no verified signing time")
                }
            }
        }
        if check.ok { Some(layout) } else { None }
    }

    fn links(
        &mut self,
        layout: &Verified<Layout>,
        keyset: &Verified<KeySet>,
        signing_time: Option<DateTime<Utc>>,
        check: &mut Check,
    ) -> Option<Chain> {
        let att_dir = self.dir.join(ATTESTATIONS_DIR);
        // Each link file on its own first, so a bad one is named.
        let mut link_files = Vec::new();
        let entries = match std::fs::read_dir(&att_dir) {
            Ok(e) => e,
            Err(e) => {
                check.fail(ATTESTATIONS_DIR, e.to_string());
                return None;
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".link"))
            .collect();
        names.sort();
        for name in names {
            let rel = format!("{ATTESTATIONS_DIR}/{name}");
            let Some((step_name, prefix)) =
                name.strip_suffix(".link").and_then(|s| s.rsplit_once('.'))
            else {
                check.fail(&rel, "not named <step>.<keyid8>.link");
                continue;
            };
            let Some(step) = layout.steps.iter().find(|s| s.name == step_name) else {
                check.fail(&rel, format!("{LAYOUT} has no step {step_name:?}"));
                continue;
            };
            let bytes = match self.read(&rel) {
                Ok(b) => b,
                Err(e) => {
                    check.fail(&rel, e);
                    continue;
                }
            };
            let block = match parse_metablock(&bytes, &MetablockLimits::default()) {
                Ok(b) => b,
                Err(e) => {
                    check.fail_code(&rel, e.code(), e.to_string());
                    continue;
                }
            };
            let Some(keyid) = step.pubkeys.iter().find(|k| k.starts_with(prefix)) else {
                check.fail(
                    &rel,
                    format!(
                        "key ID prefix {prefix} is not a functionary of step {step_name:?} in {LAYOUT}"
                    ),
                );
                continue;
            };
            let key = match layout.keys.get(keyid).map(|k| k.public_key()) {
                Some(Ok(k)) => k,
                _ => {
                    check.fail(&rel, format!("the layout has no usable key {keyid}"));
                    continue;
                }
            };
            if let Err(e) = block.verify_link(&key) {
                check.fail_code(
                    &rel,
                    e.code(),
                    format!("not validly signed by functionary {keyid}: {e}"),
                );
                continue;
            }
            match (keyset.entry(keyid), signing_time) {
                (Some(entry), Some(t)) => {
                    if let Err(e) = entry.check_valid_at(t) {
                        check.fail_code(&rel, e.code(), format!("signing key {keyid}: {e}"));
                        continue;
                    }
                }
                // Judged once, below: the provenance is at fault, not this link.
                (Some(_), None) => {}
                (None, _) => {
                    check.fail(&rel, format!("signing key {keyid} is not in the key set"));
                    continue;
                }
            }
            link_files.push(rel);
        }
        for step in &layout.steps {
            let present = step.pubkeys.iter().any(|k| {
                att_dir
                    .join(veritrain_attest::intoto::link_file_name(&step.name, k))
                    .exists()
            });
            if !present && let Some(k) = step.pubkeys.first() {
                check.fail(
                    crate::bundle::link_path(&step.name, k),
                    format!(
                        "missing: no link for step {:?} by any of its functionaries",
                        step.name
                    ),
                );
            }
        }
        let Some(signing_time) = signing_time else {
            // Each link's signature was checked above; its key's validity and
            // the chain are judged at the signing time, which is missing.
            check.blocked(NEEDS_SIGNING_TIME);
            return None;
        };
        let opts = VerifyOptions {
            now: signing_time,
            limits: MetablockLimits::default(),
        };
        match verify_chain(layout, att_dir.as_path(), &opts) {
            Ok(report) => {
                for w in &report.warnings {
                    self.notes.push(w.to_string());
                }
                for (step, keys) in &report.functionaries {
                    check.detail(format!("step {step}: signed by {}", keys.join(", ")));
                }
                check.detail("artifact rules hold: run_training's materials match intake's products; nothing else allowed");
                let intake = report.links.get(STEP_INTAKE).cloned();
                let train = report.links.get(STEP_TRAIN).cloned();
                match (intake, train) {
                    (Some(intake), Some(train)) if check.ok => Some(Chain {
                        intake,
                        train,
                        link_files,
                    }),
                    _ => None,
                }
            }
            Err(e) => {
                let culprit = chain_culprit(&e, &link_files);
                check.fail_code(culprit, e.code(), e.to_string());
                None
            }
        }
    }

    fn files(&self, chain: &Chain, inventory: &Manifest, check: &mut Check) {
        let on_disk: BTreeMap<&str, String> = inventory
            .entries()
            .iter()
            .map(|e| (e.path(), e.sha256_hex()))
            .collect();
        let mut covered: BTreeSet<String> = BTreeSet::new();
        for (step, link) in [(STEP_INTAKE, &chain.intake), (STEP_TRAIN, &chain.train)] {
            for (path, digest) in link.materials.iter().chain(link.products.iter()) {
                covered.insert(path.clone());
                let Some(want) = digest.get("sha256") else {
                    check.fail(path, format!("the {step} link records no sha256"));
                    continue;
                };
                match on_disk.get(path.as_str()) {
                    None => check.fail(
                        path,
                        format!("missing from the bundle; the {step} link records sha256 {want}"),
                    ),
                    Some(found) if found != want => check.fail(
                        path,
                        format!("sha256 {found} does not match the {step} link's {want}"),
                    ),
                    Some(_) => {}
                }
            }
        }
        for known in [
            AIBOM,
            AIBOM_ENVELOPE,
            LAYOUT,
            PROVENANCE,
            DATASET_MANIFEST,
            TRUST_ROOT,
            TRUST_KEYSET,
        ] {
            covered.insert(known.to_owned());
        }
        covered.extend(chain.link_files.iter().cloned());
        for path in on_disk.keys() {
            if !covered.contains(*path) {
                check.fail(
                    *path,
                    "is not covered by any attestation (unexpected file in the bundle)",
                );
            }
        }
    }

    fn provenance_subjects(&self, prov: &Verified<Statement>, chain: &Chain, check: &mut Check) {
        let products = &chain.train.products;
        let mut seen = BTreeSet::new();
        for s in &prov.subject {
            let name = s.name.clone().unwrap_or_default();
            let want = products.get(&name).and_then(|d| d.get("sha256"));
            match (want, s.digest.get("sha256")) {
                (Some(w), Some(got)) if w == got => {
                    seen.insert(name);
                }
                (Some(w), got) => check.fail(
                    PROVENANCE,
                    format!(
                        "subject {name} has sha256 {}, the run_training link's product has {w}",
                        got.map_or("(none)", String::as_str)
                    ),
                ),
                (None, _) => check.fail(
                    PROVENANCE,
                    format!("subject {name:?} is not a product of run_training"),
                ),
            }
        }
        for needed in [OUTPUT_MODEL, OUTPUT_METRICS] {
            if !seen.contains(needed) && check.ok {
                check.fail(PROVENANCE, format!("no subject for {needed}"));
            }
        }
        if check.ok {
            check.detail("subjects match the run_training link's products");
        }
    }

    fn aibom(
        &self,
        keyset: &Verified<KeySet>,
        chain: Option<&Chain>,
        check: &mut Check,
    ) -> Option<Value> {
        let bytes = match self.read(AIBOM_ENVELOPE) {
            Ok(b) => b,
            Err(e) => {
                check.fail(AIBOM_ENVELOPE, e);
                return None;
            }
        };
        let signed = match veritrain_bom::verify_bom_with_keyset(&bytes, keyset, &self.limits) {
            Ok(s) => s,
            Err(e) => {
                check.fail_code(AIBOM_ENVELOPE, e.code(), e.to_string());
                return None;
            }
        };
        check.detail(format!(
            "signed by {}; valid CycloneDX 1.6",
            signed.signers().join(", ")
        ));
        let signed_value: Value = match serde_json::from_str(signed.bom_json()) {
            Ok(v) => v,
            Err(e) => {
                check.fail(AIBOM_ENVELOPE, e.to_string());
                return None;
            }
        };
        match self.read(AIBOM) {
            Ok(b) => {
                if let Err(e) = signed.check_file(&b) {
                    check.fail(
                        AIBOM,
                        format!("differs from the BOM in the signed envelope: {e}"),
                    );
                }
            }
            Err(e) => check.fail(AIBOM, e),
        }
        if let Some(chain) = chain {
            let want = chain
                .train
                .products
                .get(OUTPUT_MODEL)
                .and_then(|d| d.get("sha256"));
            match (want, signed.model_sha256()) {
                (Some(w), Some(got)) if w == got => {
                    check.detail("subject is the trained model of the run_training link");
                }
                (w, got) => check.fail(
                    AIBOM_ENVELOPE,
                    format!(
                        "the BOM's subject model has sha256 {}, the run_training link's model has {}",
                        got.unwrap_or("(none)"),
                        w.map_or("(none)", String::as_str)
                    ),
                ),
            }
        } else {
            // The subject is compared with the link's product.
            check.blocked(NEEDS_LINKS);
        }
        Some(signed_value)
    }

    fn manifest(
        &self,
        keyset: &Verified<KeySet>,
        chain: Option<&Chain>,
        inventory: Option<&Manifest>,
        check: &mut Check,
    ) -> Option<DatasetManifest> {
        let bytes = match self.read(DATASET_MANIFEST) {
            Ok(b) => b,
            Err(e) => {
                check.fail(DATASET_MANIFEST, e);
                return None;
            }
        };
        let statement = keyset.verify_statement_at(&bytes, &self.limits, |s| {
            let m: DatasetManifest = serde_json::from_value(s.predicate.clone()).map_err(|e| {
                veritrain_attest::Error::SigningTime(format!("manifest predicate: {e}"))
            })?;
            m.created_at().map_err(veritrain_attest::Error::SigningTime)
        });
        let statement = match statement {
            Ok(s) => s,
            Err(e) => {
                check.fail_code(DATASET_MANIFEST, e.code(), e.to_string());
                return None;
            }
        };
        if statement.predicate_type != MANIFEST_PREDICATE {
            check.fail(
                DATASET_MANIFEST,
                format!(
                    "predicate type {:?} is not {MANIFEST_PREDICATE}",
                    statement.predicate_type
                ),
            );
            return None;
        }
        let manifest: DatasetManifest = match serde_json::from_value(statement.predicate.clone()) {
            Ok(m) => m,
            Err(e) => {
                check.fail(DATASET_MANIFEST, e.to_string());
                return None;
            }
        };
        if let Err(e) = manifest.check_consistent() {
            check.fail(DATASET_MANIFEST, e);
        }
        check.detail(format!(
            "signed by {}; {} file(s), {} bytes, root {}",
            statement.signers().join(", "),
            manifest.file_count,
            manifest.size_bytes,
            manifest.root_sha256
        ));
        let subject = statement.subject.first();
        let subject_name = subject.and_then(|s| s.name.clone()).unwrap_or_default();
        if subject_name != manifest.upload || !manifest.upload.starts_with(INPUT_DATA_PREFIX) {
            check.fail(
                DATASET_MANIFEST,
                format!(
                    "subject {subject_name:?} is not the dataset {:?}",
                    manifest.upload
                ),
            );
        }
        if let Some(chain) = chain {
            let want = chain
                .intake
                .products
                .get(&manifest.upload)
                .and_then(|d| d.get("sha256"));
            let got = subject.and_then(|s| s.digest.get("sha256"));
            if want.is_none() || want != got {
                check.fail(
                    DATASET_MANIFEST,
                    format!(
                        "its subject {} has sha256 {}, the intake link records {}",
                        manifest.upload,
                        got.map_or("(none)", String::as_str),
                        want.map_or("(none)", String::as_str)
                    ),
                );
            }
        } else {
            // The subject is compared with the intake link's product.
            check.blocked(NEEDS_LINKS);
        }
        // Re-derive the manifest from the dataset in the bundle. A single
        // file's manifest is its own digest, already computed.
        let derived_root = if manifest.kind == "image_zip" {
            DatasetManifest::derive(
                &self.dir.join(&manifest.upload),
                &manifest.upload,
                &manifest.kind,
                &ZipLimits::default(),
                Utc::now(),
            )
            .map(|m| m.root_sha256)
            .map_err(|e| e.to_string())
        } else {
            inventory
                .and_then(|inv| inv.entry(&manifest.upload))
                .map(|e| hex::encode(Sha256::digest(e.sha256())))
                .ok_or_else(|| "missing from the bundle".to_owned())
        };
        match derived_root {
            Ok(root) if root == manifest.root_sha256 => {
                check.detail(format!("re-derived from {}: same root", manifest.upload));
            }
            Ok(root) => check.fail(
                &manifest.upload,
                format!(
                    "its manifest root is {root}, the signed manifest records {}",
                    manifest.root_sha256
                ),
            ),
            Err(e) => check.fail(
                &manifest.upload,
                format!("cannot re-derive its manifest: {e}"),
            ),
        }
        Some(manifest)
    }

    fn consistency(
        &self,
        chain: &Chain,
        prov: &Verified<Statement>,
        bom: &Value,
        manifest: &DatasetManifest,
        check: &mut Check,
    ) {
        let link_digest = |link: &Link, path: &str| {
            link.products
                .get(path)
                .and_then(|d| d.get("sha256"))
                .cloned()
        };
        let claims = BomClaims::collect(bom);
        // The AIBoM against the links and the manifest.
        for (what, bom_ref, link, path) in [
            ("trained model", "trained-model", &chain.train, OUTPUT_MODEL),
            ("base model", "base-model", &chain.intake, INPUT_MODEL),
            (
                "dataset definition",
                "dataset-definition",
                &chain.intake,
                INPUT_DEFINITION,
            ),
        ] {
            expect(
                check,
                format!("{what} sha256"),
                AIBOM,
                claims.components.get(bom_ref),
                link_digest(link, path),
            );
        }
        let datasets: Vec<(&String, &String)> = claims
            .components
            .iter()
            .filter(|(r, _)| r.starts_with("dataset/"))
            .collect();
        if datasets.len() != 1 {
            check.fail(AIBOM, format!("names {} datasets, not 1", datasets.len()));
        }
        for (r, sha) in &datasets {
            expect(
                check,
                format!("{r} sha256"),
                AIBOM,
                Some(sha),
                link_digest(&chain.intake, &manifest.upload),
            );
        }
        expect(
            check,
            "dataset manifest root".into(),
            AIBOM,
            claims.manifest_roots.first(),
            Some(manifest.root_sha256.clone()),
        );
        // The provenance against the links, the manifest and the AIBoM.
        let Ok(p) = prov.provenance() else {
            check.fail(PROVENANCE, "unreadable SLSA predicate");
            return;
        };
        let deps: BTreeMap<String, String> = p
            .build_definition
            .resolved_dependencies
            .iter()
            .filter_map(|d| Some((d.name.clone()?, d.digest.get("sha256")?.clone())))
            .collect();
        for (path, truth) in chain.intake.products.iter() {
            expect(
                check,
                format!("resolved dependency {path}"),
                PROVENANCE,
                deps.get(path),
                truth.get("sha256").cloned(),
            );
        }
        expect(
            check,
            "dataset manifest root".into(),
            PROVENANCE,
            deps.get(&format!("{}#manifest", manifest.upload)),
            Some(manifest.root_sha256.clone()),
        );
        for (dep, bom_ref) in [
            ("veritrain", "platform/veritrain"),
            ("trainer/train.py", "platform/trainer"),
            ("runtime/requirements.lock", "platform/lock-file"),
            ("runtime", "runtime"),
        ] {
            expect(
                check,
                format!("{dep} sha256 (AIBoM {bom_ref})"),
                PROVENANCE,
                deps.get(dep),
                claims.components.get(bom_ref).cloned(),
            );
        }
        if check.failures.is_empty() {
            check.detail(format!(
                "{} AIBoM digests, {} provenance dependencies and the manifest root agree with the links",
                claims.components.len(),
                deps.len()
            ));
        }
    }

    /// Every signed document names its job: each link
    /// (`veritrain_job_id`), the provenance (`invocationId`) and the AIBoM
    /// (`veritrain:job:id`). One that names another job than the others is
    /// the culprit (another job's copy, validly signed), not the files it
    /// disagrees with. Returns whether the AIBoM is this job's, so that its
    /// references may be trusted to name culprits.
    fn job_ids(
        chain: Option<&Chain>,
        prov: Option<&Verified<Statement>>,
        bom: Option<&Value>,
        check: &mut Check,
    ) -> bool {
        let mut named: Vec<(String, String, Option<String>)> = Vec::new();
        if let Some(c) = chain {
            for (step, link) in [(STEP_INTAKE, &c.intake), (STEP_TRAIN, &c.train)] {
                let job = link
                    .environment
                    .get("veritrain_job_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                named.push((
                    link_file_of(step, &c.link_files),
                    format!("the {step} link"),
                    job,
                ));
            }
        }
        if let Some(p) = prov {
            let job = p
                .provenance()
                .ok()
                .and_then(|p| p.run_details.metadata.invocation_id);
            named.push((PROVENANCE.to_owned(), "the provenance".to_owned(), job));
        }
        if let Some(b) = bom {
            named.push((
                AIBOM_ENVELOPE.to_owned(),
                "the signed AIBoM".to_owned(),
                bom_job_id(b),
            ));
        }
        let mut votes: BTreeMap<Option<&str>, usize> = BTreeMap::new();
        for (_, _, job) in &named {
            *votes.entry(job.as_deref()).or_default() += 1;
        }
        if votes.len() < 2 {
            return true;
        }
        let shown = |job: Option<&str>| job.unwrap_or("(none)").to_owned();
        // A strict majority decides which job the bundle is; without one
        // every document is named.
        let majority = votes
            .iter()
            .find(|(_, n)| **n * 2 > named.len())
            .map(|(job, _)| *job);
        let Some(job) = majority else {
            let files: Vec<&str> = named.iter().map(|(f, _, _)| f.as_str()).collect();
            let who: Vec<String> = named
                .iter()
                .map(|(_, what, j)| format!("{what}: {}", shown(j.as_deref())))
                .collect();
            check.fail_code(
                files.join(", "),
                "verify.job_mismatch",
                format!("the attestations name different jobs ({})", who.join("; ")),
            );
            return false;
        };
        let mut bom_ok = true;
        for (file, what, other) in &named {
            if other.as_deref() != job {
                check.fail_code(
                    file,
                    "verify.job_mismatch",
                    format!(
                        "{what} is of job {}; the other attestations are of job {}: \
                         this is another job's copy",
                        shown(other.as_deref()),
                        shown(job)
                    ),
                );
                bom_ok &= file != AIBOM_ENVELOPE;
            }
        }
        bom_ok
    }

    /// Every file the signed AIBoM references by digest (the layout, the
    /// links, the provenance, the manifest) must be the one in the bundle.
    /// A mismatch names the file: the AIBoM is signed, the file is not
    /// (the layout and the links are signed by keys that may sign another
    /// job's copy just as well).
    fn references(&self, bom: &Value, inventory: &Manifest, check: &mut Check) {
        let claims = BomClaims::collect(bom);
        let mut agreed = 0;
        for (url, sha) in &claims.references {
            // The key set may be refreshed after signing (rotation,
            // revocation); it was verified against the root on its own.
            if url.starts_with("trust/") {
                continue;
            }
            match inventory.entry(url).map(|e| e.sha256_hex()) {
                Some(on_disk) if on_disk == *sha => agreed += 1,
                Some(on_disk) => check.fail_code(
                    url,
                    "verify.reference_mismatch",
                    format!(
                        "sha256 {on_disk} is not the {sha} the signed AIBoM references; \
                         this is not the file the job produced"
                    ),
                ),
                None => check.fail_code(
                    url,
                    "verify.reference_missing",
                    format!("missing from the bundle; the signed AIBoM references sha256 {sha}"),
                ),
            }
        }
        if check.failures.is_empty() {
            check.detail(format!(
                "the {agreed} attestation files the AIBoM references are the ones in the bundle"
            ));
        }
    }

    fn artifact(
        &self,
        held: &HeldArtifact,
        chain: Option<&Chain>,
        manifest: Option<&DatasetManifest>,
    ) -> Check {
        let path = held.path.as_path();
        let shown = held.name.clone();
        let mut check = Check::new("artifact", format!("{shown} matches the bundle"));
        let Some(chain) = chain else {
            check.blocked("verified links");
            return check;
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                check.fail(&shown, e.to_string());
                return check;
            }
        };
        if meta.is_dir() {
            match hash_path(path, &HashOptions::files()) {
                Ok(m) => {
                    let root = m.root_digest_hex();
                    match manifest {
                        Some(dm) if dm.root_sha256 == root => check.detail(format!(
                            "is the dataset {}: manifest root {root}",
                            dm.upload
                        )),
                        _ => check.fail(
                            &shown,
                            format!("directory root digest {root} matches no dataset manifest in the bundle"),
                        ),
                    }
                }
                Err(e) => check.fail(&shown, e.to_string()),
            }
            return check;
        }
        let digest = match std::fs::File::open(path)
            .and_then(|f| hash_reader(&mut std::io::BufReader::with_capacity(1 << 20, f)))
        {
            Ok((_, d)) => hex::encode(d),
            Err(e) => {
                check.fail(&shown, e.to_string());
                return check;
            }
        };
        let mut matches = Vec::new();
        let named = |p: &str| match p {
            OUTPUT_MODEL => format!("the trained model ({p})"),
            INPUT_MODEL => format!("the base model ({p})"),
            p if p.starts_with(INPUT_DATA_PREFIX) => format!("the dataset as uploaded ({p})"),
            p => p.to_owned(),
        };
        for link in [&chain.train, &chain.intake] {
            for (p, d) in &link.products {
                if d.get("sha256") == Some(&digest) && !matches.contains(&named(p)) {
                    matches.push(named(p));
                }
            }
        }
        if let Some(dm) = manifest {
            for f in dm.files.iter().filter(|f| f.sha256 == digest) {
                if dm.kind == "image_zip" {
                    matches.push(format!("file {:?} of the dataset {}", f.path, dm.upload));
                }
            }
        }
        if matches.is_empty() {
            check.fail(
                &shown,
                format!("sha256 {digest} matches no model, dataset or output in the bundle"),
            );
        } else {
            check.detail(format!("sha256 {digest} is {}", matches.join("; ")));
        }
        check
    }
}

/// Record a failure when a claimed digest differs from the established one.
fn expect(
    check: &mut Check,
    what: String,
    file: &str,
    claimed: Option<&String>,
    truth: Option<String>,
) {
    match (claimed, truth) {
        (Some(c), Some(t)) if *c == t => {}
        (c, t) => check.fail(
            file,
            format!(
                "{what}: {} here, {} in the links/manifest",
                c.map_or("(missing)", String::as_str),
                t.as_deref().unwrap_or("(missing)")
            ),
        ),
    }
}

/// Name the link files an in-toto chain error is about: the failing step's
/// link, and for a `MATCH ... FROM other` rule the other step's link too
/// (either may be the one that was changed).
fn chain_culprit(error: &veritrain_attest::Error, link_files: &[String]) -> String {
    let file_of = |step: &str| link_file_of(step, link_files);
    match error {
        veritrain_attest::Error::StepThreshold { step, .. } => file_of(step),
        // A rule across steps (MATCH ... FROM, or the DISALLOW that catches
        // what such a MATCH left) fails because either link may have been
        // changed: name the failing step's link first, then the others.
        veritrain_attest::Error::ArtifactRule { step, .. } => {
            let mut files = vec![file_of(step)];
            for other in [STEP_INTAKE, STEP_TRAIN] {
                let f = file_of(other);
                if !files.contains(&f) {
                    files.push(f);
                }
            }
            files.join(", ")
        }
        _ => ATTESTATIONS_DIR.to_owned(),
    }
}

/// SHA-256 of the key's SPKI DER, hex: the fingerprint the web UI's Trust
/// page shows (and `openssl pkey -pubin -outform DER | sha256sum`).
fn der_fingerprint(key: &PublicKey) -> Option<String> {
    use base64::Engine as _;
    let pem = key.to_spki_pem().ok()?;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    Some(hex::encode(Sha256::digest(der)))
}

/// The link file of `step` among `link_files`.
fn link_file_of(step: &str, link_files: &[String]) -> String {
    link_files
        .iter()
        .find(|f| {
            f.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(&format!("{step}.")))
        })
        .cloned()
        .unwrap_or_else(|| format!("{ATTESTATIONS_DIR}/{step}.*.link"))
}

/// The job ID an AIBoM records (`metadata.properties`, `veritrain:job:id`).
fn bom_job_id(bom: &Value) -> Option<String> {
    bom.get("metadata")?
        .get("properties")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(veritrain_bom::props::JOB_ID))?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}

/// The digests an AIBoM claims: components by `bom-ref` (including nested
/// ones), external references by URL, and dataset manifest roots.
#[derive(Debug, Default)]
struct BomClaims {
    components: BTreeMap<String, String>,
    references: BTreeMap<String, String>,
    manifest_roots: Vec<String>,
}

impl BomClaims {
    fn collect(bom: &Value) -> BomClaims {
        let mut claims = BomClaims::default();
        claims.walk(bom);
        claims
    }

    fn walk(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                let sha = map.get("hashes").and_then(sha256_of);
                if let (Some(r), Some(sha)) = (map.get("bom-ref").and_then(Value::as_str), &sha) {
                    self.components.insert(r.to_owned(), sha.clone());
                }
                if let (Some(url), Some(sha), Some(_)) = (
                    map.get("url").and_then(Value::as_str),
                    &sha,
                    map.get("type"),
                ) && !url.contains("://")
                {
                    self.references.insert(url.to_owned(), sha.clone());
                }
                if let (Some(name), Some(value)) = (
                    map.get("name").and_then(Value::as_str),
                    map.get("value").and_then(Value::as_str),
                ) && name == veritrain_bom::props::DATASET_MANIFEST_ROOT
                {
                    self.manifest_roots.push(value.to_owned());
                }
                for child in map.values() {
                    self.walk(child);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item);
                }
            }
            _ => {}
        }
    }
}

fn sha256_of(hashes: &Value) -> Option<String> {
    hashes.as_array()?.iter().find_map(|h| {
        (h.get("alg")?.as_str()? == "SHA-256")
            .then(|| h.get("content")?.as_str().map(str::to_owned))?
    })
}
