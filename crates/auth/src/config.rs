//! `[auth.oidc]` configuration: which issuer to trust, for which audience, and
//! how token claims map to Veritrain roles.
//!
//! The service reads this from its TOML file at start; [`OidcConfig::validate`]
//! runs inside [`crate::Authenticator::new`], so a bad config stops the
//! service instead of weakening checks at run time. `docs/auth.md` has
//! examples for a generic issuer and for Microsoft Entra ID.

use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::principal::Role;

/// The placeholder in an Entra multi-tenant issuer, as in Entra's own
/// `common`/`organizations` discovery documents.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Trust settings for one OIDC issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The exact `iss` tokens must carry, e.g.
    /// `https://login.microsoftonline.com/<tenant-guid>/v2.0`. In Entra mode it
    /// may contain `{tenantid}` (multi-tenant); the token's `tid` is then
    /// substituted and the result must equal `iss` exactly.
    pub issuer: String,
    /// Where the discovery document is. Defaults to
    /// `<issuer>/.well-known/openid-configuration`; required when `issuer`
    /// contains `{tenantid}` (use Entra's `organizations` document).
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// Accepted `aud` values: the API's client id, optionally its `api://` App ID URI.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Microsoft Entra ID mode: v2.0 tokens only, `tid` checked against the
    /// issuer and `allowed_tenants`, users identified by `(tid, oid)`.
    #[serde(default)]
    pub entra: bool,
    /// Entra tenant ids (GUIDs) whose tokens are accepted; required in Entra mode.
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    /// Which claim values grant which Veritrain role.
    #[serde(default)]
    pub roles: RoleMapping,
    /// JWKS caching and refetch policy.
    #[serde(default)]
    pub jwks: JwksPolicy,
}

fn default_leeway() -> u64 {
    60
}

/// Claim values that grant each Veritrain role.
///
/// `roles` values are matched against the token's `roles` array (Entra app
/// roles, assigned by an administrator to users or to service principals);
/// `scopes` against the space-separated `scp` claim (Entra delegated scopes),
/// or `scope` for a generic RFC 9068 issuer. A scope is what a client may do on
/// a user's behalf, which users can often consent to themselves: map scopes to
/// `developer` at most, and grant `auditor` and `admin` by app role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    /// Values granting [`Role::Developer`].
    #[serde(default)]
    pub developer: ClaimValues,
    /// Values granting [`Role::Auditor`].
    #[serde(default)]
    pub auditor: ClaimValues,
    /// Values granting [`Role::Admin`].
    #[serde(default)]
    pub admin: ClaimValues,
}

impl RoleMapping {
    /// The mapping for one role.
    pub fn for_role(&self, role: Role) -> &ClaimValues {
        match role {
            Role::Developer => &self.developer,
            Role::Auditor => &self.auditor,
            Role::Admin => &self.admin,
        }
    }

    fn is_empty(&self) -> bool {
        Role::ALL.iter().all(|r| self.for_role(*r).is_empty())
    }

    /// Whether any role is granted by a scope (so `scp`/`scope` is read at all).
    pub fn reads_scopes(&self) -> bool {
        Role::ALL
            .iter()
            .any(|r| !self.for_role(*r).scopes.is_empty())
    }
}

/// Values of the `roles` array and of the `scp` string that grant one role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimValues {
    /// Entries of the `roles` array claim, e.g. `Artifacts.ReadWrite.All`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Scopes of the `scp` claim, e.g. `Artifacts.Write`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl ClaimValues {
    fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.scopes.is_empty()
    }
}

/// When the JWKS is fetched again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksPolicy {
    /// A token naming an unknown `kid` triggers a refetch only if the last
    /// fetch is at least this old (default 60 s, at least 1 s): a flood of
    /// tokens with random kids costs the IdP one request per interval.
    #[serde(default = "default_refetch")]
    pub refetch_min_interval_secs: u64,
    /// Keys older than this are refetched before use (default and maximum 24 h).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Timeout of one request to the IdP (default 10 s).
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
}

fn default_refetch() -> u64 {
    60
}
fn default_max_age() -> u64 {
    24 * 3600
}
fn default_http_timeout() -> u64 {
    10
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            refetch_min_interval_secs: default_refetch(),
            max_age_secs: default_max_age(),
            http_timeout_secs: default_http_timeout(),
        }
    }
}

impl JwksPolicy {
    pub(crate) fn refetch_min_interval(&self) -> Duration {
        Duration::from_secs(self.refetch_min_interval_secs)
    }
    pub(crate) fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_secs)
    }
    pub(crate) fn http_timeout(&self) -> Duration {
        Duration::from_secs(self.http_timeout_secs)
    }
}

const MAX_LEEWAY_SECS: u64 = 300;

impl OidcConfig {
    /// A config for a generic (non-Entra) issuer, with defaults elsewhere.
    pub fn generic(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        OidcConfig {
            issuer: issuer.into(),
            discovery_url: None,
            audiences: vec![audience.into()],
            leeway_secs: default_leeway(),
            entra: false,
            allowed_tenants: Vec::new(),
            roles: RoleMapping::default(),
            jwks: JwksPolicy::default(),
        }
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        match &self.discovery_url {
            Some(u) => u.clone(),
            None => format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            ),
        }
    }

    /// Checks the config; [`crate::Authenticator::new`] calls this.
    pub fn validate(&self) -> Result<()> {
        let cfg = |m: String| Err(Error::Config(m));
        if self.issuer.is_empty() {
            return cfg("`issuer` is empty".into());
        }
        let templated = self.issuer.contains(TENANT_PLACEHOLDER);
        // Parse the issuer with a sample tenant so a template is checked too.
        check_url(
            "issuer",
            &self
                .issuer
                .replace(TENANT_PLACEHOLDER, "00000000-0000-0000-0000-000000000000"),
        )?;
        if templated && self.discovery_url.is_none() {
            return cfg(format!(
                "`issuer` contains {TENANT_PLACEHOLDER}: set `discovery_url` (for Entra, \
                 https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration)"
            ));
        }
        check_url("discovery_url", &self.discovery_url())?;
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return cfg("`audiences` must list the API's client id (and nothing empty)".into());
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return cfg(format!(
                "`leeway_secs` is {}; at most {MAX_LEEWAY_SECS} is allowed",
                self.leeway_secs
            ));
        }
        if self.entra {
            if self.allowed_tenants.is_empty() {
                return cfg("Entra mode needs `allowed_tenants` (tenant GUIDs)".into());
            }
            if let Some(bad) = self.allowed_tenants.iter().find(|t| !is_guid(t)) {
                return cfg(format!("`allowed_tenants` entry {bad:?} is not a GUID"));
            }
            // Only v2.0 issuers: v1 tokens (`https://sts.windows.net/{tid}/`)
            // have other claim shapes and an `aud` that may be the App ID URI.
            let Some(tenant) = entra_issuer_tenant(&self.issuer) else {
                return cfg(
                    "Entra `issuer` must be https://login.microsoftonline.com/<tenant>/v2.0 \
                     (v2.0 tokens; set requestedAccessTokenVersion = 2 on the API registration)"
                        .into(),
                );
            };
            if tenant != TENANT_PLACEHOLDER && !self.tenant_allowed(tenant) {
                return cfg("the tenant in `issuer` is not in `allowed_tenants`".into());
            }
        } else {
            if templated {
                return cfg(format!(
                    "{TENANT_PLACEHOLDER} in `issuer` needs `entra = true`"
                ));
            }
            if !self.allowed_tenants.is_empty() {
                return cfg("`allowed_tenants` is only used with `entra = true`".into());
            }
        }
        if self.roles.is_empty() {
            return cfg(
                "`roles` maps no claim value to any Veritrain role; every token would be refused"
                    .into(),
            );
        }
        let p = &self.jwks;
        if p.refetch_min_interval_secs == 0 {
            return cfg("`jwks.refetch_min_interval_secs` must be at least 1".into());
        }
        if p.max_age_secs == 0 || p.max_age_secs > default_max_age() {
            return cfg("`jwks.max_age_secs` must be between 1 and 86400".into());
        }
        if p.http_timeout_secs == 0 {
            return cfg("`jwks.http_timeout_secs` must be at least 1".into());
        }
        Ok(())
    }

    pub(crate) fn tenant_allowed(&self, tid: &str) -> bool {
        self.allowed_tenants
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tid))
    }
}

/// The tenant segment of an Entra v2.0 issuer `<base>/<tenant>/v2.0`, if the
/// issuer has that shape.
pub(crate) fn entra_issuer_tenant(issuer: &str) -> Option<&str> {
    let rest = issuer.strip_suffix("/v2.0")?;
    let (_, tenant) = rest.rsplit_once('/')?;
    if tenant == TENANT_PLACEHOLDER || is_guid(tenant) {
        Some(tenant)
    } else {
        None
    }
}

/// `8-4-4-4-12` hex digits, the shape of an Entra tenant or object id.
pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8usize, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// IdP metadata must come over HTTPS; plain HTTP only to this machine
/// (loopback), which is what the in-test and dev issuers use. A man in the
/// middle of a plain-HTTP JWKS fetch could otherwise publish its own keys.
pub(crate) fn check_url(what: &str, s: &str) -> Result<Url> {
    let url = Url::parse(s).map_err(|e| Error::Config(format!("`{what}` is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(Error::Config(format!(
            "`{what}` must be an https URL (plain http only to a loopback address)"
        ))),
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts come bracketed: `[::1]`.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn entra() -> OidcConfig {
        let mut c = OidcConfig::generic(
            format!("https://login.microsoftonline.com/{T1}/v2.0"),
            "11111111-2222-3333-4444-555555555555",
        );
        c.entra = true;
        c.allowed_tenants = vec![T1.into()];
        c.roles.developer.scopes = vec!["Artifacts.Write".into()];
        c
    }

    #[test]
    fn ok_entra_single_tenant() {
        entra().validate().unwrap();
        assert_eq!(
            entra().discovery_url(),
            format!("https://login.microsoftonline.com/{T1}/v2.0/.well-known/openid-configuration")
        );
    }

    #[test]
    fn fail_entra_without_allow_list() {
        let mut c = entra();
        c.allowed_tenants.clear();
        assert_eq!(c.validate().unwrap_err().code(), "auth.config");
    }

    #[test]
    fn fail_entra_v1_issuer() {
        let mut c = entra();
        c.issuer = format!("https://sts.windows.net/{T1}/");
        assert!(c.validate().is_err());
    }

    #[test]
    fn fail_template_without_discovery_url() {
        let mut c = entra();
        c.issuer = "https://login.microsoftonline.com/{tenantid}/v2.0".into();
        assert!(c.validate().is_err());
        c.discovery_url = Some(
            "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
                .into(),
        );
        c.validate().unwrap();
    }

    #[test]
    fn fail_plain_http_to_remote_host() {
        let mut c = entra();
        c.entra = false;
        c.allowed_tenants.clear();
        c.issuer = "http://idp.example.com".into();
        assert!(c.validate().is_err());
        c.issuer = "http://127.0.0.1:8080".into();
        c.validate().unwrap();
    }

    #[test]
    fn fail_no_role_mapping_or_zero_refetch_interval() {
        let mut c = entra();
        c.roles = RoleMapping::default();
        assert!(c.validate().is_err());
        let mut c = entra();
        c.jwks.refetch_min_interval_secs = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn toml_shape_defaults() {
        let c: OidcConfig = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example.com",
            "audiences": ["veritrain"],
            "roles": { "developer": { "roles": ["dev"] } }
        }))
        .unwrap();
        assert_eq!(c.leeway_secs, 60);
        assert_eq!(c.jwks.max_age_secs, 86400);
        c.validate().unwrap();
    }

    #[test]
    fn guid_shape() {
        assert!(is_guid(T1));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
        assert!(!is_guid("common"));
    }
}
