//! The service's configuration: one TOML file for API nodes and workers,
//! plus environment variables. The file holds no secret: the database URL
//! with its password comes from `VERITRAIN_DATABASE_URL` or a file
//! (`[database] url_file`), the S3 secret from `VERITRAIN_S3_SECRET_ACCESS_KEY`
//! or `[store] secret_access_key_file`. Secrets are never taken from
//! command-line arguments and never logged. `docs/server.md` has the whole
//! reference and an example for each deployment.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "/var/lib/veritrain"     # embedded default: SQLite, objects, keys, scratch under it
//!
//! [auth]
//! dev = true                          # loopback only; or an [auth.oidc] table
//!
//! [worker]
//! embedded = true                     # `serve` runs workers in-process
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use veritrain_auth::OidcConfig;
use veritrain_store::StoreConfig;

/// The environment variable holding the database URL (it may carry a password).
pub const DATABASE_URL_ENV: &str = "VERITRAIN_DATABASE_URL";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("configuration: {0}")]
    Parse(String),
    /// A value is out of range or unsafe.
    #[error("configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Io { .. } => "config.io",
            ConfigError::Parse(_) => "config.parse",
            ConfigError::Invalid(_) => "config.invalid",
        }
    }
}

/// The service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The embedded default's home: `veritrain.db` (SQLite), `objects/`
    /// (local store), `keys/` (the key directory), `scratch/`. Every path
    /// below defaults to a place under it.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// The public trust material (`veritrain keys` writes it to
    /// `KEYS/public`): `root.pub`, `keyset.dsse.json`, `root.layout`.
    /// Default: `<data_dir>/keys/public`.
    #[serde(default)]
    pub trust_dir: Option<PathBuf>,
    /// Where uploads are staged. Default: `<data_dir>/scratch`, else the
    /// system temp dir.
    #[serde(default)]
    pub scratch_dir: Option<PathBuf>,
    /// `POST /v1/verify` limits.
    #[serde(default)]
    pub verify: VerifyLimits,
    /// The job database. Default: SQLite at `<data_dir>/veritrain.db`.
    /// Without it and without `data_dir` the node serves only the public
    /// endpoints (a verification node).
    #[serde(default)]
    pub database: Option<DatabaseConfig>,
    /// The object store. Default: local disk at `<data_dir>/objects`.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// Who may call the jobs API.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Upload limits of `POST /v1/jobs`.
    #[serde(default)]
    pub jobs: JobLimits,
    /// Workers: the embedded ones of `veritrain serve`, and `veritrain worker`.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// The web UI served at `/` (`docs/ui.md`).
    #[serde(default)]
    pub ui: UiConfig,
}

/// `[ui]`: what the browser needs to sign users in with `[auth.oidc]`.
/// Nothing here is secret: the UI is a public client (authorization code
/// with PKCE, no client secret).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// The OIDC client id of the web UI, registered at the issuer as a
    /// public client (single-page application) with the redirect URI
    /// `https://<this server>/`. Without it the UI offers no OIDC sign-in.
    pub oidc_client_id: Option<String>,
    /// The scopes the UI asks for, space-separated (for Entra ID, add the
    /// API's scope, e.g. `api://<api client id>/Artifacts.Write`).
    pub oidc_scopes: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            oidc_client_id: None,
            oidc_scopes: "openid profile".into(),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH?mode=rwc` or `postgres://USER@HOST:PORT/DB` without a
    /// password (a URL with a password is refused here: give it in
    /// `VERITRAIN_DATABASE_URL` or `url_file`).
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the URL (trailing newline ignored); it may carry the
    /// password.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

/// `[auth]`: exactly one of `dev = true` and `[auth.oidc]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// A local issuer for development: tokens from `POST /v1/dev/token`,
    /// allowed only when the server listens on a loopback address.
    #[serde(default)]
    pub dev: bool,
    /// The OIDC issuer to trust (`docs/auth.md`).
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
}

/// Limits of `POST /v1/jobs` (413 above them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobLimits {
    /// Largest `.keras` model.
    pub max_model_bytes: u64,
    /// Largest dataset.
    pub max_dataset_bytes: u64,
    /// Largest dataset definition.
    pub max_definition_bytes: u64,
    /// Largest job request.
    pub max_request_bytes: u64,
    /// Jobs one user may have queued or running at once (429 beyond).
    pub max_active_per_owner: u32,
    /// Bundle archives and integrity checks assembled at once (503 beyond).
    pub assembly_concurrency: usize,
    /// Authenticated requests per user per minute (429 beyond) ...
    pub requests_per_minute: u32,
    /// ... and at once.
    pub requests_burst: u32,
    /// Failed sign-ins per client address per minute (429 beyond).
    pub failed_auth_per_minute: u32,
    /// How often finished jobs are swept for tampered objects, in seconds
    /// (0: never). Runs on workers (`veritrain worker`, embedded workers).
    pub tamper_sweep_secs: u64,
    /// A URL that gets a JSON POST for every tamper alert (optional).
    pub alert_webhook: Option<String>,
    /// Serve `/metrics` without a token (default: admins only).
    pub public_metrics: bool,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_model_bytes: 2 << 30,
            max_dataset_bytes: 64 << 30,
            max_definition_bytes: 1 << 20,
            max_request_bytes: 256 << 10,
            max_active_per_owner: 20,
            assembly_concurrency: 2,
            requests_per_minute: 600,
            requests_burst: 120,
            failed_auth_per_minute: 30,
            tamper_sweep_secs: 3600,
            alert_webhook: None,
            public_metrics: false,
        }
    }
}

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// `veritrain serve` runs workers in-process (the embedded default).
    /// Set false on API nodes of a scaled deployment: they then never load
    /// a private key.
    pub embedded: bool,
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// The key directory (`veritrain keys init`); only workers read it.
    /// Default: `<data_dir>/keys`.
    pub keys_dir: Option<PathBuf>,
    /// The trainer runtime. Default: `$VERITRAIN_RUNTIME_DIR`, else
    /// `<data_dir>/runtime`.
    pub runtime_dir: Option<PathBuf>,
    /// Lease of a claimed job, in seconds (renewed every quarter).
    pub lease_secs: u64,
    /// Claims per job before an abandoned job fails.
    pub max_attempts: u32,
    /// Wall-clock limit of a training run, in seconds.
    pub timeout_secs: u64,
    /// Memory limit of a training run, in MiB.
    pub memory_mib: u64,
    /// CPU cores a training run may use (default: all).
    pub cpus: Option<f64>,
    /// The platform operator named as the AIBoM's supplier (default: the
    /// user and host running the worker, `USER@HOST`).
    pub operator: Option<String>,
    /// The operator's web sites, recorded with the supplier.
    pub operator_url: Vec<String>,
    /// The operator's contact e-mail address, recorded with the supplier.
    pub operator_email: Option<String>,
    /// Where a standalone `veritrain worker` serves `/healthz` and
    /// `/metrics` (default: not at all).
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            embedded: true,
            concurrency: 1,
            keys_dir: None,
            runtime_dir: None,
            lease_secs: 60,
            max_attempts: 3,
            timeout_secs: 3600,
            memory_mib: 4096,
            cpus: None,
            operator: None,
            operator_url: Vec::new(),
            operator_email: None,
            metrics_listen: None,
        }
    }
}

/// Limits of the public verification endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyLimits {
    /// Largest upload, in bytes (413 above).
    pub max_bytes: u64,
    /// Verifications per client address per minute.
    pub per_minute: u32,
    /// Verifications per client address at once.
    pub burst: u32,
    /// Verifications running at the same time (503 when all are busy).
    pub concurrency: usize,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits {
            max_bytes: 2 << 30,
            per_minute: 10,
            burst: 5,
            concurrency: 2,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl ServerConfig {
    /// The embedded default: everything under `data_dir`, dev sign-in,
    /// embedded workers, listening on `127.0.0.1:8080`.
    pub fn embedded(data_dir: &Path) -> ServerConfig {
        ServerConfig {
            listen: default_listen(),
            data_dir: Some(data_dir.to_owned()),
            trust_dir: None,
            scratch_dir: None,
            verify: VerifyLimits::default(),
            database: None,
            store: None,
            auth: AuthConfig {
                dev: true,
                oidc: None,
            },
            jobs: JobLimits::default(),
            worker: WorkerConfig::default(),
            ui: UiConfig::default(),
        }
    }

    /// Parse a TOML configuration and check it. `VERITRAIN_LISTEN`
    /// overrides `listen`.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with the position and key; [`ConfigError::Invalid`].
    pub fn from_toml(text: &str) -> Result<ServerConfig, ConfigError> {
        let mut config: ServerConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        if let Ok(listen) = std::env::var("VERITRAIN_LISTEN") {
            config.listen = listen
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("VERITRAIN_LISTEN {listen:?}: {e}")))?;
        }
        config.check()?;
        Ok(config)
    }

    /// Read and parse the configuration file at `path`.
    ///
    /// # Errors
    /// As [`ServerConfig::from_toml`], and [`ConfigError::Io`].
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        ServerConfig::from_toml(&text)
    }

    /// Checks the values and their combinations.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] saying what to change.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        let v = &self.verify;
        if v.max_bytes == 0 || v.per_minute == 0 || v.burst == 0 || v.concurrency == 0 {
            return invalid("verify.max_bytes, per_minute, burst and concurrency must be positive");
        }
        let j = &self.jobs;
        if j.max_model_bytes == 0
            || j.max_dataset_bytes == 0
            || j.max_definition_bytes == 0
            || j.max_request_bytes == 0
            || j.max_active_per_owner == 0
            || j.assembly_concurrency == 0
            || j.requests_per_minute == 0
            || j.requests_burst == 0
            || j.failed_auth_per_minute == 0
        {
            return invalid("every [jobs] limit must be positive");
        }
        let w = &self.worker;
        if w.concurrency == 0 || w.concurrency > 64 {
            return invalid("worker.concurrency must be 1 to 64");
        }
        if !(10..=3600).contains(&w.lease_secs) {
            return invalid("worker.lease_secs must be 10 to 3600");
        }
        if w.max_attempts == 0 || w.timeout_secs == 0 || w.memory_mib < 256 {
            return invalid(
                "worker.max_attempts and timeout_secs must be positive, memory_mib at least 256",
            );
        }
        if let Some(db) = &self.database {
            if db.url.is_some() == db.url_file.is_some() && std::env::var(DATABASE_URL_ENV).is_err()
            {
                return invalid("[database] needs exactly one of url and url_file");
            }
            if let Some(url) = &db.url
                && has_password(url)
            {
                return invalid(
                    "[database] url carries a password; the configuration file holds no secret: \
                     give the URL in VERITRAIN_DATABASE_URL or in the file named by url_file",
                );
            }
        }
        if self.trust_dir.is_none() && self.data_dir.is_none() {
            return invalid("give trust_dir (the key directory's public/ folder) or data_dir");
        }
        if self.jobs_enabled() {
            match (self.auth.dev, &self.auth.oidc) {
                (true, Some(_)) => return invalid("[auth] has both dev = true and [auth.oidc]"),
                (false, None) => {
                    return invalid(
                        "the jobs API needs [auth]: an [auth.oidc] issuer, or dev = true on a loopback address",
                    );
                }
                (true, None) if !self.listen.ip().is_loopback() => {
                    return invalid(
                        "[auth] dev = true is allowed only when listen is a loopback address",
                    );
                }
                _ => {}
            }
            if self.store.is_none() && self.data_dir.is_none() {
                return invalid("the jobs API needs [store] or data_dir");
            }
        }
        Ok(())
    }

    /// Whether this node serves the jobs API (it has a database).
    pub fn jobs_enabled(&self) -> bool {
        self.database.is_some()
            || self.data_dir.is_some()
            || std::env::var(DATABASE_URL_ENV).is_ok()
    }

    /// The trust directory.
    pub fn trust_dir(&self) -> PathBuf {
        match (&self.trust_dir, &self.data_dir) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.join("keys").join("public"),
            (None, None) => PathBuf::from("public"),
        }
    }

    /// The scratch directory.
    pub fn scratch_dir(&self) -> PathBuf {
        match (&self.scratch_dir, &self.data_dir) {
            (Some(s), _) => s.clone(),
            (None, Some(d)) => d.join("scratch"),
            (None, None) => std::env::temp_dir(),
        }
    }

    /// The key directory workers sign with.
    pub fn keys_dir(&self) -> Option<PathBuf> {
        match (&self.worker.keys_dir, &self.data_dir) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(d)) => Some(d.join("keys")),
            (None, None) => None,
        }
    }

    /// The store configuration.
    pub fn store_config(&self) -> Option<StoreConfig> {
        match (&self.store, &self.data_dir) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(d)) => Some(StoreConfig::Local {
                dir: d.join("objects"),
            }),
            (None, None) => None,
        }
    }

    /// The database URL: `VERITRAIN_DATABASE_URL`, else `[database]`, else
    /// SQLite in `data_dir`.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when `url_file` cannot be read.
    pub fn database_url(&self) -> Result<Option<String>, ConfigError> {
        if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
            return Ok(Some(url));
        }
        if let Some(db) = &self.database {
            if let Some(url) = &db.url {
                return Ok(Some(url.clone()));
            }
            if let Some(path) = &db.url_file {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.clone(),
                    source,
                })?;
                return Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
            }
        }
        Ok(self
            .data_dir
            .as_ref()
            .map(|d| format!("sqlite://{}?mode=rwc", d.join("veritrain.db").display())))
    }
}

/// Whether a URL's user-info carries a password (`scheme://user:pass@host`).
fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => userinfo.contains(':'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn passwords_in_the_file_are_refused() {
        assert!(has_password("postgres://u:secret@db:5432/v"));
        assert!(!has_password("postgres://u@db:5432/v"));
        assert!(!has_password("sqlite:///x/y.db?mode=rwc"));
        let e = ServerConfig::from_toml(
            "data_dir = \"/tmp/x\"\n[auth]\ndev = true\n[database]\nurl = \"postgres://u:pw@h/db\"\n",
        )
        .unwrap_err();
        assert_eq!(e.code(), "config.invalid");
        assert!(e.to_string().contains("VERITRAIN_DATABASE_URL"));
    }

    #[test]
    fn dev_auth_needs_loopback_and_jobs_need_auth() {
        let e = ServerConfig::from_toml(
            "listen = \"0.0.0.0:8080\"\ndata_dir = \"/tmp/x\"\n[auth]\ndev = true\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = ServerConfig::from_toml("data_dir = \"/tmp/x\"\n").unwrap_err();
        assert!(e.to_string().contains("[auth]"), "{e}");
        let c = ServerConfig::from_toml("trust_dir = \"/tmp/p\"\n").unwrap();
        assert!(!c.jobs_enabled());
    }

    #[test]
    fn embedded_defaults_live_under_the_data_dir() {
        let c = ServerConfig::embedded(Path::new("/srv/vt"));
        c.check().unwrap();
        assert_eq!(c.trust_dir(), Path::new("/srv/vt/keys/public"));
        assert_eq!(c.keys_dir().unwrap(), Path::new("/srv/vt/keys"));
        assert_eq!(
            c.database_url().unwrap().unwrap(),
            "sqlite:///srv/vt/veritrain.db?mode=rwc"
        );
    }
}
