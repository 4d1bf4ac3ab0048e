//! The server's configuration: a TOML file, with `VERITRAIN_LISTEN`
//! overriding the address. It holds no secret: the API node serves only
//! public trust material and never loads a private key (the workers sign;
//! the root key stays offline).
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! trust_dir = "/etc/veritrain/public"   # root.pub, keyset.dsse.json, root.layout from `veritrain keys`
//! scratch_dir = "/var/lib/veritrain/tmp"  # optional; default: the system temp dir
//!
//! [verify]
//! max_bytes = 2147483648   # largest bundle upload to POST /v1/verify
//! per_minute = 10          # verifications per client address per minute ...
//! burst = 5                # ... and at once
//! concurrency = 2          # verifications running at the same time
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

/// The server's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The public trust material (`veritrain keys` writes it to
    /// `KEYS/public`): `root.pub`, `keyset.dsse.json`, `root.layout`.
    pub trust_dir: PathBuf,
    /// Where uploads are staged while they are verified.
    #[serde(default)]
    pub scratch_dir: Option<PathBuf>,
    /// `POST /v1/verify` limits.
    #[serde(default)]
    pub verify: VerifyLimits,
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
    /// Parse a TOML configuration and check it.
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

    fn check(&self) -> Result<(), ConfigError> {
        let v = &self.verify;
        if v.max_bytes == 0 || v.per_minute == 0 || v.burst == 0 || v.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "verify.max_bytes, per_minute, burst and concurrency must be positive".into(),
            ));
        }
        Ok(())
    }
}
