//! `veritrain keys`: the root key, the online signing keys and the
//! root-signed key set that lets verifiers trust them (`docs/keys.md`).
//!
//! A key directory looks like this:
//! ```text
//! DIR/                       0700
//!   root.key                 0600  root private key (PKCS#8 PEM); keep offline
//!   root.pub                       root public key (SPKI PEM)
//!   signing/<keyid>.key      0600  signing private keys, one per rotation
//!   signing/<keyid>.pub            their public keys
//!   keyset.dsse.json               the key set, signed by the root key
//!   root.layout                    the in-toto layout for every job, signed by the root key
//!   public/root.pub                everything a verifier needs
//!   public/keyset.dsse.json
//!   public/root.layout
//! ```
//! The layout is re-signed whenever the key set changes (init, rotate,
//! revoke) and on demand (`keys layout`), never per job.
//! Every command that reads a key set verifies its root signature first.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, SubsecRound as _, Utc};
use serde_json::json;
use veritrain_attest::Verified;
use veritrain_attest::dsse::Limits;
use veritrain_attest::keys::{Algorithm, FileSigner, PrivateKey, PublicKey, Signer};
use veritrain_attest::keyset::{self, KeySet, KeyStatus};
use zeroize::Zeroizing;

const ROOT_KEY: &str = "root.key";
const ROOT_PUB: &str = "root.pub";
const KEYSET: &str = "keyset.dsse.json";
const SIGNING_DIR: &str = "signing";
const PUBLIC_DIR: &str = "public";
const LAYOUT: &str = veritrain_pipeline::keydir::LAYOUT;

/// Arguments of `veritrain keys`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Create a key directory: root key, first signing key, signed key set
    /// and the public files verifiers need.
    Init(InitArgs),
    /// Add a new signing key and retire the current one; re-sign the key set.
    Rotate(RotateArgs),
    /// Revoke a signing key as of a time; re-sign the key set.
    Revoke(RevokeArgs),
    /// Verify the key set with the root key and list the signing keys.
    Show(ShowArgs),
    /// Re-sign the in-toto layout for the current key set (e.g. before it
    /// expires). Needs the root key.
    Layout(LayoutArgs),
}

#[derive(Debug, clap::Args)]
struct LayoutArgs {
    /// The key directory made by `keys init`.
    #[arg(long)]
    dir: PathBuf,
    /// The root private key, if it is not at DIR/root.key.
    #[arg(long)]
    root_key: Option<PathBuf>,
    /// Days the layout stays valid.
    #[arg(long, default_value_t = veritrain_pipeline::layout::DEFAULT_VALIDITY_DAYS)]
    days: i64,
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Directory to create (it must not exist, or be empty).
    #[arg(long)]
    dir: PathBuf,
    /// Algorithm of generated keys: ecdsa-p256 (default) or ed25519.
    #[arg(long, default_value = "ecdsa-p256")]
    algorithm: Algorithm,
    /// Use this PEM private key (PKCS#8 or SEC1, e.g. made by OpenSSL) as the
    /// root key instead of generating one.
    #[arg(long)]
    root_key: Option<PathBuf>,
    /// Use this PEM private key as the first signing key instead of
    /// generating one.
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// Days the in-toto layout stays valid.
    #[arg(long, default_value_t = veritrain_pipeline::layout::DEFAULT_VALIDITY_DAYS)]
    layout_days: i64,
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// The key directory made by `keys init`.
    #[arg(long)]
    dir: PathBuf,
    /// The root private key, if it is not at DIR/root.key (e.g. kept on
    /// offline media).
    #[arg(long)]
    root_key: Option<PathBuf>,
    /// Algorithm of the new key (default: that of the current key).
    #[arg(long)]
    algorithm: Option<Algorithm>,
    /// Use this PEM private key as the new signing key instead of generating
    /// one.
    #[arg(long)]
    signing_key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RevokeArgs {
    /// The key directory made by `keys init`.
    #[arg(long)]
    dir: PathBuf,
    /// The root private key, if it is not at DIR/root.key (e.g. kept on
    /// offline media).
    #[arg(long)]
    root_key: Option<PathBuf>,
    /// Key ID of the signing key to revoke (or a unique prefix of at least
    /// 8 characters).
    #[arg(long)]
    keyid: String,
    /// RFC 3339 time from which its signatures are refused (default: now).
    /// Use the earliest moment the key may have left your control.
    #[arg(long)]
    at: Option<String>,
    /// Why, recorded in the key set.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// A key directory, or its `public/` folder.
    #[arg(long)]
    dir: PathBuf,
    /// Verify the key set with this root public key (SPKI PEM) instead of
    /// DIR/root.pub: pin the root you received through a trusted channel.
    #[arg(long)]
    root_pub: Option<PathBuf>,
    /// Print JSON (errors too, as `{"error": {"code", "message"}}`).
    #[arg(long)]
    json: bool,
}

/// An error with a stable code, printed as `code: message`.
#[derive(Debug)]
pub struct CodedError {
    code: &'static str,
    message: String,
}

impl CodedError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        CodedError {
            code,
            message: message.into(),
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl fmt::Display for CodedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CodedError {}

impl From<veritrain_attest::Error> for CodedError {
    fn from(e: veritrain_attest::Error) -> Self {
        CodedError::new(e.code(), e.to_string())
    }
}

type Result<T> = std::result::Result<T, CodedError>;

/// Run `veritrain keys ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let result = match args.command {
        KeysCommand::Init(a) => init(&a),
        KeysCommand::Rotate(a) => rotate(&a),
        KeysCommand::Revoke(a) => revoke(&a),
        KeysCommand::Layout(a) => resign_layout(&a),
        KeysCommand::Show(a) => match show(&a) {
            Err(e) if a.json => {
                let body = json!({"error": {"code": e.code(), "message": e.message}});
                println!("{body:#}");
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
            other => other,
        },
    };
    result
        .map(|()| ExitCode::SUCCESS)
        .map_err(anyhow::Error::new)
}

/// Create a demo key directory at `dir` (ECDSA P-256, root key kept in the
/// directory): what `veritrain quickstart` uses.
pub fn init_demo(dir: &Path) -> anyhow::Result<()> {
    init(&InitArgs {
        dir: dir.to_owned(),
        algorithm: Algorithm::EcdsaP256,
        root_key: None,
        signing_key: None,
        layout_days: veritrain_pipeline::layout::DEFAULT_VALIDITY_DAYS,
    })
    .map_err(anyhow::Error::new)
}

/// The current time, to the second (key set times are compared with
/// timestamps people write by hand).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn init(args: &InitArgs) -> Result<()> {
    let dir = &args.dir;
    // Never overwrite keys: a second `init` on a live directory would orphan
    // every attestation signed under the first root key.
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CodedError::new(
                    "keys.dir_exists",
                    format!(
                        "{} already exists and is not empty; refusing to overwrite keys \
                         (use `keys rotate` to add a signing key)",
                        dir.display()
                    ),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(dir, e)),
    }
    let root = match &args.root_key {
        Some(path) => load_private(path)?,
        None => PrivateKey::generate(args.algorithm)?,
    };
    let signing = match &args.signing_key {
        Some(path) => load_private(path)?,
        None => PrivateKey::generate(args.algorithm)?,
    };
    if root.public_key() == signing.public_key() {
        return Err(CodedError::new(
            "keys.root_reused",
            "the root key and the signing key are the same key; the root key must stay offline",
        ));
    }
    let keyset = KeySet::new(signing.public_key(), now())?;
    let envelope = keyset.sign(&root)?.to_json_pretty()?;

    create_dir_private(dir)?;
    create_dir_private(&dir.join(SIGNING_DIR))?;
    create_dir_public(&dir.join(PUBLIC_DIR))?;
    let root_pub = root.public_key().to_spki_pem()?;
    write_new(&dir.join(ROOT_KEY), root.to_pkcs8_pem()?.as_bytes(), 0o600)?;
    write_new(&dir.join(ROOT_PUB), root_pub.as_bytes(), 0o644)?;
    write_signing_key(dir, &signing)?;
    write_new(&dir.join(KEYSET), &envelope, 0o644)?;
    write_new(
        &dir.join(PUBLIC_DIR).join(ROOT_PUB),
        root_pub.as_bytes(),
        0o644,
    )?;
    write_new(&dir.join(PUBLIC_DIR).join(KEYSET), &envelope, 0o644)?;

    // Read back what a verifier will read.
    let verified = load_keyset(dir)?;
    let expires = publish_layout(dir, &verified, &root, args.layout_days)?;
    println!("created key directory {}", dir.display());
    println!(
        "  root key     {} ({})  {}",
        root.public_key().keyid(),
        root.public_key().algorithm(),
        dir.join(ROOT_KEY).display()
    );
    println!(
        "  signing key  {} ({})  {}",
        signing.public_key().keyid(),
        signing.public_key().algorithm(),
        signing_key_path(dir, signing.public_key().keyid()).display()
    );
    println!(
        "  key set      version {}  {}",
        verified.version,
        dir.join(KEYSET).display()
    );
    println!(
        "  layout       expires {expires}  {}",
        dir.join(LAYOUT).display()
    );
    println!(
        "Move {} offline: it is needed only to rotate or revoke keys. \
         Give verifiers the files in {}.",
        dir.join(ROOT_KEY).display(),
        dir.join(PUBLIC_DIR).display()
    );
    Ok(())
}

fn rotate(args: &RotateArgs) -> Result<()> {
    let dir = &args.dir;
    let root = load_root(dir, args.root_key.as_deref())?;
    let current = load_keyset(dir)?;
    let algorithm = match (args.algorithm, current.current()) {
        (Some(alg), _) => alg,
        (None, Some(entry)) => entry.public_key()?.algorithm(),
        (None, None) => Algorithm::EcdsaP256,
    };
    let new_key = match &args.signing_key {
        Some(path) => load_private(path)?,
        None => PrivateKey::generate(algorithm)?,
    };
    if new_key.public_key() == root.public_key() {
        return Err(CodedError::new(
            "keys.root_reused",
            "the new signing key is the root key; the root key must stay offline",
        ));
    }
    let previous = current.current().map(|e| e.keyid.clone());
    let next = current.rotate(new_key.public_key(), now())?;
    let envelope = next.sign(&root)?.to_json_pretty()?;
    // The new private key is written before the key set that names it, so a
    // crash in between leaves an unused key file, never a listed key whose
    // private half is lost.
    write_signing_key(dir, &new_key)?;
    publish_keyset(dir, &envelope)?;

    let verified = load_keyset(dir)?;
    let expires = publish_layout(
        dir,
        &verified,
        &root,
        veritrain_pipeline::layout::DEFAULT_VALIDITY_DAYS,
    )?;
    if let Some(old) = previous {
        println!("retired signing key {old}");
    }
    println!(
        "new signing key {} ({})  {}",
        new_key.public_key().keyid(),
        new_key.public_key().algorithm(),
        signing_key_path(dir, new_key.public_key().keyid()).display()
    );
    println!(
        "key set version {}; give verifiers the new {}",
        verified.version,
        dir.join(PUBLIC_DIR).join(KEYSET).display()
    );
    println!("layout re-signed for the new key, expires {expires}");
    Ok(())
}

fn revoke(args: &RevokeArgs) -> Result<()> {
    let dir = &args.dir;
    let root = load_root(dir, args.root_key.as_deref())?;
    let current = load_keyset(dir)?;
    let keyid = resolve_keyid(&current, &args.keyid)?;
    let now = now();
    let at = match &args.at {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                CodedError::new(
                    "keys.bad_time",
                    format!(
                        "--at {text:?} is not an RFC 3339 time ({e}); e.g. 2025-01-31T12:00:00Z"
                    ),
                )
            })?,
        None => now,
    };
    let next = current.revoke(&keyid, at, args.reason.clone(), now)?;
    let envelope = next.sign(&root)?.to_json_pretty()?;
    publish_keyset(dir, &envelope)?;
    let verified = load_keyset(dir)?;
    println!(
        "revoked signing key {keyid} as of {}; key set version {}",
        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        verified.version
    );
    if verified.current().is_none() {
        println!(
            "no active signing key is left: run `veritrain keys rotate --dir {}`",
            dir.display()
        );
    } else {
        let expires = publish_layout(
            dir,
            &verified,
            &root,
            veritrain_pipeline::layout::DEFAULT_VALIDITY_DAYS,
        )?;
        println!("layout re-signed without the revoked key, expires {expires}");
    }
    Ok(())
}

fn resign_layout(args: &LayoutArgs) -> Result<()> {
    let dir = &args.dir;
    let root = load_root(dir, args.root_key.as_deref())?;
    let verified = load_keyset(dir)?;
    let expires = publish_layout(dir, &verified, &root, args.days)?;
    println!(
        "layout for key set version {} signed, expires {expires}: {}",
        verified.version,
        dir.join(LAYOUT).display()
    );
    Ok(())
}

/// Sign the job layout for `keyset` with the root key and publish it
/// beside the key set; returns its expiry.
fn publish_layout(
    dir: &Path,
    keyset: &Verified<KeySet>,
    root: &PrivateKey,
    days: i64,
) -> Result<String> {
    let bytes = veritrain_pipeline::layout::sign_job_layout(keyset, root, now(), days)
        .map_err(|e| CodedError::new(e.code(), e.to_string()))?;
    replace_file(&dir.join(LAYOUT), &bytes)?;
    replace_file(&dir.join(PUBLIC_DIR).join(LAYOUT), &bytes)?;
    let expires = veritrain_attest::intoto::parse_metablock(
        &bytes,
        &veritrain_attest::intoto::MetablockLimits::default(),
    )
    .and_then(|m| m.verify_layout(&[root.public_key().clone()], now()))
    .map(|l| l.expires.clone())?;
    Ok(expires)
}

fn show(args: &ShowArgs) -> Result<()> {
    let dir = &args.dir;
    let root_path = args.root_pub.clone().unwrap_or_else(|| dir.join(ROOT_PUB));
    let root = load_public(&root_path)?;
    let keyset = load_keyset_with(dir, &root)?;
    let current = keyset.current().map(|e| e.keyid.clone());
    let fmt_time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);

    let mut keys = Vec::new();
    for entry in &keyset.keys {
        let algorithm = entry.public_key()?.algorithm();
        let private_present = signing_key_path(dir, &entry.keyid).is_file();
        keys.push((entry, algorithm, private_present));
    }
    if args.json {
        let keys: Vec<_> = keys
            .iter()
            .map(|(e, alg, private_present)| {
                json!({
                    "keyid": e.keyid,
                    "algorithm": alg.to_string(),
                    "status": e.status.as_str(),
                    "valid_from": fmt_time(&e.valid_from),
                    "valid_until": e.valid_until.as_ref().map(fmt_time),
                    "revoked_at": e.revoked_at.as_ref().map(fmt_time),
                    "revocation_reason": e.revocation_reason,
                    "private_key_present": private_present,
                })
            })
            .collect();
        let body = json!({
            "root": {"keyid": root.keyid(), "algorithm": root.algorithm().to_string()},
            "keyset": {
                "version": keyset.version,
                "issued": fmt_time(&keyset.issued),
                "signature_verified": true,
            },
            "current": current,
            "keys": keys,
        });
        println!("{body:#}");
        return Ok(());
    }
    println!("root key  {} ({})", root.keyid(), root.algorithm());
    println!(
        "key set   version {}, issued {}, root signature verified",
        keyset.version,
        fmt_time(&keyset.issued)
    );
    println!("signing keys:");
    for (e, alg, private_present) in &keys {
        let mut line = format!(
            "  {}  {:<10}  {:<7}  valid from {}",
            e.keyid,
            alg.to_string(),
            e.status.as_str(),
            fmt_time(&e.valid_from)
        );
        if let Some(until) = &e.valid_until {
            line.push_str(&format!(" until {}", fmt_time(until)));
        }
        if e.status == KeyStatus::Revoked
            && let Some(at) = &e.revoked_at
        {
            line.push_str(&format!(", revoked at {}", fmt_time(at)));
            if let Some(reason) = &e.revocation_reason {
                line.push_str(&format!(" ({reason})"));
            }
        }
        if *private_present {
            line.push_str("  [private key here]");
        }
        println!("{line}");
    }
    match current {
        Some(id) => println!("current   {id}"),
        None => println!("current   none (every key is retired or revoked; run `keys rotate`)"),
    }
    Ok(())
}

/// Load the key directory's current signing key and the verified key set:
/// what a worker needs to sign attestations.
#[allow(dead_code)] // Used by the worker once the main job lands.
pub fn current_signer(dir: &Path) -> Result<(FileSigner, Verified<KeySet>)> {
    let keyset = load_keyset(dir)?;
    let entry = keyset.current().ok_or_else(|| {
        CodedError::new(
            "keys.no_active_key",
            "the key set has no active signing key; run `keys rotate`",
        )
    })?;
    let path = signing_key_path(dir, &entry.keyid);
    let signer = FileSigner::load(&path)?;
    if signer.keyid() != entry.keyid {
        return Err(CodedError::new(
            "keys.key_mismatch",
            format!("{} does not hold key {}", path.display(), entry.keyid),
        ));
    }
    Ok((signer, keyset))
}

fn resolve_keyid(keyset: &KeySet, given: &str) -> Result<String> {
    if given.len() < 8 {
        return Err(CodedError::new(
            "keys.unknown_key",
            format!("key ID {given:?} is too short; give at least 8 characters"),
        ));
    }
    let matches: Vec<&str> = keyset
        .keys
        .iter()
        .map(|e| e.keyid.as_str())
        .filter(|id| id.starts_with(given))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(CodedError::new(
            "keys.unknown_key",
            format!("no signing key in the key set has an ID starting with {given:?}"),
        )),
        _ => Err(CodedError::new(
            "keys.unknown_key",
            format!("{given:?} matches several keys; give more characters"),
        )),
    }
}

fn signing_key_path(dir: &Path, keyid: &str) -> PathBuf {
    dir.join(SIGNING_DIR).join(format!("{keyid}.key"))
}

fn write_signing_key(dir: &Path, key: &PrivateKey) -> Result<()> {
    let id = key.public_key().keyid();
    write_new(
        &signing_key_path(dir, id),
        key.to_pkcs8_pem()?.as_bytes(),
        0o600,
    )?;
    write_new(
        &dir.join(SIGNING_DIR).join(format!("{id}.pub")),
        key.public_key().to_spki_pem()?.as_bytes(),
        0o644,
    )
}

/// Replace the key set in the key directory and in `public/`.
fn publish_keyset(dir: &Path, envelope: &[u8]) -> Result<()> {
    replace_file(&dir.join(KEYSET), envelope)?;
    replace_file(&dir.join(PUBLIC_DIR).join(KEYSET), envelope)
}

fn load_private(path: &Path) -> Result<PrivateKey> {
    let pem = Zeroizing::new(fs::read_to_string(path).map_err(|e| io_error(path, e))?);
    PrivateKey::from_pem(&pem)
        .map_err(|e| CodedError::new(e.code(), format!("{}: {e}", path.display())))
}

fn load_public(path: &Path) -> Result<PublicKey> {
    let pem = fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    PublicKey::from_spki_pem(&pem)
        .map_err(|e| CodedError::new(e.code(), format!("{}: {e}", path.display())))
}

/// The root private key, checked against `root.pub` (the key verifiers
/// were given).
fn load_root(dir: &Path, path: Option<&Path>) -> Result<PrivateKey> {
    let default = dir.join(ROOT_KEY);
    let path = path.unwrap_or(&default);
    let root = load_private(path)?;
    let published = load_public(&dir.join(ROOT_PUB))?;
    if root.public_key() != &published {
        return Err(CodedError::new(
            "keys.root_mismatch",
            format!(
                "{} does not match {}; verifiers trust the published root key",
                path.display(),
                dir.join(ROOT_PUB).display()
            ),
        ));
    }
    Ok(root)
}

/// The key set of `dir`, verified with `dir/root.pub`.
fn load_keyset(dir: &Path) -> Result<Verified<KeySet>> {
    load_keyset_with(dir, &load_public(&dir.join(ROOT_PUB))?)
}

/// The key set of `dir`, verified with `root`.
fn load_keyset_with(dir: &Path, root: &PublicKey) -> Result<Verified<KeySet>> {
    let path = dir.join(KEYSET);
    let bytes = fs::read(&path).map_err(|e| io_error(&path, e))?;
    keyset::verify_keyset(&bytes, root, &Limits::default())
        .map_err(|e| CodedError::new(e.code(), format!("{}: {e}", path.display())))
}

fn io_error(path: &Path, e: std::io::Error) -> CodedError {
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        "keys.missing_file"
    } else {
        "keys.io"
    };
    CodedError::new(code, format!("{}: {e}", path.display()))
}

fn create_dir_private(path: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|e| io_error(path, e))?;
    set_mode(path, 0o700)
}

fn create_dir_public(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| io_error(path, e))?;
    set_mode(path, 0o755)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Create `path` with `mode` from the start (a private key is never
/// readable by others, not even for an instant); fail if it exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| io_error(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(path, e))
}

/// Replace `path` atomically: write a temporary file beside it, then rename.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&tmp, e)),
    }
    write_new(&tmp, bytes, 0o644)?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}
