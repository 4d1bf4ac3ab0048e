//! A local token issuer for `veritrain serve --dev` and `veritrain token --dev`.
//!
//! It is an ordinary OIDC issuer, only smaller: an ES256 key generated in
//! this process, a discovery document and a JWKS served over HTTP on a
//! loopback address. The API verifies its tokens with the same
//! [`crate::Authenticator`] as production tokens (discovery, JWKS, signature,
//! `iss`/`aud`/`exp`/`nbf`, role mapping); there is no HMAC secret and no
//! "skip verification" switch anywhere. A production config cannot trust it by
//! accident: its key exists only in the process that runs it and it binds only
//! to loopback addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use serde_json::json;
use tokio::sync::oneshot;

use crate::config::{ClaimValues, OidcConfig, RoleMapping};
use crate::error::{Error, Result};
use crate::principal::Role;

/// The audience of dev tokens.
pub const DEV_AUDIENCE: &str = "veritrain-dev";
/// The path under which the dev issuer lives; its issuer is
/// `http://<loopback addr><DEV_ISSUER_PATH>`.
pub const DEV_ISSUER_PATH: &str = "/veritrain-dev";

/// A running dev issuer. Dropping it stops the server.
pub struct DevIssuer {
    issuer: String,
    kid: String,
    encoding: EncodingKey,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing key stays out of Debug output.
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// Generates a fresh ES256 key and serves the issuer on `addr`, which
    /// must be a loopback address (port 0 picks a free port). Must be called
    /// inside a Tokio runtime.
    pub async fn start(addr: SocketAddr) -> Result<DevIssuer> {
        Self::start_with_key(addr, SigningKey::random(&mut rand_core::OsRng)).await
    }

    /// Like [`DevIssuer::start`] with a given key (e.g. one kept in the dev
    /// data directory so `veritrain token --dev` can sign too).
    pub async fn start_with_key(addr: SocketAddr, key: SigningKey) -> Result<DevIssuer> {
        // Dev tokens are for this machine only.
        if !addr.ip().is_loopback() {
            return Err(Error::Config(format!(
                "the dev issuer binds only to loopback addresses, not {addr}"
            )));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Config(format!("dev issuer cannot bind {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("dev issuer address: {e}")))?;
        let issuer = format!("http://{addr}{DEV_ISSUER_PATH}");

        let point = key.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(Error::Config("dev key has no affine coordinates".into()));
        };
        let kid_bytes: Vec<u8> = x.iter().take(12).copied().collect();
        let kid = format!("dev-{}", URL_SAFE_NO_PAD.encode(kid_bytes));
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| Error::Config(format!("dev key encoding: {e}")))?;
        let encoding = EncodingKey::from_ec_der(pkcs8.as_bytes());

        let jwks = Arc::new(json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]}));
        let discovery = Arc::new(json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "id_token_signing_alg_values_supported": ["ES256"],
        }));
        let router = Router::new()
            .route(
                &format!("{DEV_ISSUER_PATH}/.well-known/openid-configuration"),
                get(move || {
                    let d = discovery.clone();
                    async move { Json((*d).clone()) }
                }),
            )
            .route(
                &format!("{DEV_ISSUER_PATH}/jwks"),
                get(move || {
                    let k = jwks.clone();
                    async move { Json((*k).clone()) }
                }),
            );
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(DevIssuer {
            issuer,
            kid,
            encoding,
            addr,
            shutdown: Some(tx),
        })
    }

    /// The issuer URL (`iss` of its tokens).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The config that trusts this issuer: audience [`DEV_AUDIENCE`], and
    /// `roles` values `developer`, `auditor`, `admin` mapped to those roles.
    pub fn oidc_config(&self) -> OidcConfig {
        let values = |r: Role| ClaimValues {
            roles: vec![r.as_str().to_owned()],
            scopes: Vec::new(),
        };
        let mut c = OidcConfig::generic(self.issuer.clone(), DEV_AUDIENCE);
        c.roles = RoleMapping {
            developer: values(Role::Developer),
            auditor: values(Role::Auditor),
            admin: values(Role::Admin),
        };
        c
    }

    /// Mints a token for `subject` with `roles`, valid for `lifetime`.
    pub fn mint(&self, subject: &str, roles: &[Role], lifetime: Duration) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Config("system clock is before 1970".into()))?
            .as_secs();
        let claims = json!({
            "iss": self.issuer,
            "aud": DEV_AUDIENCE,
            "sub": subject,
            "name": subject,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime.as_secs(),
            "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        });
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| Error::Config(format!("dev token signing failed: {e}")))
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
