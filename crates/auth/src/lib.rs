//! Authentication for Veritrain's API: OIDC bearer tokens, verified against
//! the issuer's published keys, mapped to Veritrain roles.
//!
//! Every non-public API request passes through [`Authenticator::authenticate`]
//! before a handler runs; the handler then authorises on the returned
//! [`Principal`] (`can_submit`, `can_read_all`, `is_admin`) and keys job
//! ownership by `(tenant, object_id)`. Errors carry stable codes
//! ([`Error::code`]) for API bodies, the audit log and metrics.
//!
//! Works with any OIDC issuer that signs RS256 or ES256 access tokens, and
//! with Microsoft Entra ID v2.0 tokens (`entra = true`). [`dev::DevIssuer`] is
//! a loopback-only issuer for local development whose tokens go through the
//! same checks. `docs/auth.md` has the configuration and the threat model.

mod authenticator;
mod config;
pub mod dev;
mod error;
mod jwks;
mod principal;

pub use authenticator::{Authenticator, FetchStats, MAX_TOKEN_BYTES, bearer_token};
pub use config::{ClaimValues, JwksPolicy, OidcConfig, RoleMapping, TENANT_PLACEHOLDER};
pub use error::{Error, Result};
pub use principal::{Principal, Role};
