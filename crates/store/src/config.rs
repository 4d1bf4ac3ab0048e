//! Store configuration: what the service's TOML file says, and where the S3
//! secret comes from.
//!
//! The TOML file holds no secret. `[store]` names the backend and its public
//! settings; the S3 secret access key is read from the file named by
//! `secret_access_key_file`, or else from the environment variable
//! [`SECRET_ENV`]. A secret is a [`SecretString`]: its `Debug` prints
//! `[redacted]` and its memory is wiped on drop.
//!
//! ```toml
//! [store]
//! kind = "local"
//! dir = "/var/lib/veritrain/objects"
//! ```
//!
//! ```toml
//! [store]
//! kind = "s3"
//! endpoint = "https://minio.internal:9000"
//! bucket = "veritrain"
//! region = "us-east-1"
//! access_key_id = "veritrain-api"
//! # optional; without it VERITRAIN_S3_SECRET_ACCESS_KEY is read
//! secret_access_key_file = "/run/secrets/s3-secret"
//! # optional, default false: plain http only for loopback test servers
//! allow_http = false
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The environment variable that holds the S3 secret access key when the
/// configuration names no `secret_access_key_file`.
pub const SECRET_ENV: &str = "VERITRAIN_S3_SECRET_ACCESS_KEY";

/// A secret string: redacted `Debug`, no `Display`, wiped on drop.
#[derive(Clone)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself, for handing to the S3 client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// Everything needed to reach an S3-compatible bucket (MinIO, AWS, s3s-fs).
/// Requests use path-style addressing (`endpoint/bucket/key`), which every
/// S3-compatible server accepts.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// The server, e.g. `https://minio.internal:9000`.
    pub endpoint: Url,
    /// The bucket; it must exist.
    pub bucket: String,
    /// The region the server signs for (`us-east-1` for MinIO and s3s-fs).
    pub region: String,
    /// The access key id (not secret: it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// Allow a plain `http://` endpoint; only for test servers on loopback.
    pub allow_http: bool,
}

/// The `[store]` table of the service configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum StoreConfig {
    /// Objects are files under `dir` (the embedded default).
    Local {
        /// The data directory; created if missing.
        dir: PathBuf,
    },
    /// Objects live in an S3-compatible bucket.
    S3 {
        /// The server URL.
        endpoint: Url,
        /// The bucket.
        bucket: String,
        /// The region.
        region: String,
        /// The access key id.
        access_key_id: String,
        /// A file holding the secret access key (trailing newline ignored);
        /// without it the secret comes from [`SECRET_ENV`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key_file: Option<PathBuf>,
        /// Allow a plain `http://` endpoint.
        #[serde(default)]
        allow_http: bool,
    },
}

impl StoreConfig {
    /// Opens the configured store, reading the S3 secret from its file or
    /// from [`SECRET_ENV`].
    pub fn open(&self) -> Result<crate::Store> {
        match self {
            StoreConfig::Local { dir } => crate::Store::local(dir),
            StoreConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key_file,
                allow_http,
            } => {
                let env = std::env::var(SECRET_ENV).ok().map(SecretString::new);
                let secret = resolve_secret(secret_access_key_file.as_deref(), env)?;
                crate::Store::s3(S3Config {
                    endpoint: endpoint.clone(),
                    bucket: bucket.clone(),
                    region: region.clone(),
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret,
                    allow_http: *allow_http,
                })
            }
        }
    }
}

/// The secret from `file` if one is named, else from the environment value.
/// Neither error message contains the secret or the file's content.
fn resolve_secret(file: Option<&Path>, env: Option<SecretString>) -> Result<SecretString> {
    match file {
        Some(path) => {
            let text =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
                    path: path.to_path_buf(),
                    source,
                })?);
            let secret = text.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(Error::Config(format!(
                    "the S3 secret file {} is empty",
                    path.display()
                )));
            }
            Ok(SecretString::new(secret))
        }
        None => match env {
            Some(secret) if !secret.expose().is_empty() => Ok(secret),
            _ => Err(Error::Config(format!(
                "no S3 secret access key: set {SECRET_ENV} or secret_access_key_file"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{secret:?}"), "SecretString([redacted])");
        let config = S3Config {
            endpoint: Url::parse("http://127.0.0.1:8014").unwrap(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIA".into(),
            secret_access_key: secret,
            allow_http: true,
        };
        assert!(!format!("{config:?}").contains("wJalr"));
    }

    #[test]
    fn config_parses_both_kinds() {
        let local: StoreConfig =
            serde_json::from_str(r#"{"kind": "local", "dir": "/var/lib/veritrain"}"#).unwrap();
        assert_eq!(
            local,
            StoreConfig::Local {
                dir: "/var/lib/veritrain".into()
            }
        );
        let s3: StoreConfig = serde_json::from_str(
            r#"{"kind": "s3", "endpoint": "http://127.0.0.1:8014", "bucket": "b",
                "region": "us-east-1", "access_key_id": "AKIA", "allow_http": true}"#,
        )
        .unwrap();
        let StoreConfig::S3 {
            allow_http,
            secret_access_key_file,
            ..
        } = s3
        else {
            panic!("expected s3: {s3:?}");
        };
        assert!(allow_http);
        assert_eq!(secret_access_key_file, None);
    }

    #[test]
    fn config_refuses_an_inline_secret() {
        // Secrets never live in the config file: the field does not exist.
        let err = serde_json::from_str::<StoreConfig>(
            r#"{"kind": "s3", "endpoint": "http://127.0.0.1:8014", "bucket": "b",
                "region": "us-east-1", "access_key_id": "AKIA",
                "secret_access_key": "wJalrXUtnFEMI"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("secret_access_key"), "{err}");
        assert!(serde_json::from_str::<StoreConfig>(r#"{"kind": "ftp"}"#).is_err());
    }

    #[test]
    fn secret_comes_from_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let env = Some(SecretString::new("from-env"));
        assert_eq!(
            resolve_secret(Some(&file), env.clone()).unwrap().expose(),
            "from-file"
        );
        assert_eq!(resolve_secret(None, env).unwrap().expose(), "from-env");

        let err = resolve_secret(None, None).unwrap_err();
        assert_eq!(err.code(), "store.config");
        assert!(err.to_string().contains(SECRET_ENV));

        std::fs::write(&file, "\n").unwrap();
        assert_eq!(
            resolve_secret(Some(&file), None).unwrap_err().code(),
            "store.config"
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            resolve_secret(Some(&missing), None).unwrap_err().code(),
            "store.io"
        );
    }
}
