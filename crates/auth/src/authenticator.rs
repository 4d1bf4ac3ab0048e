//! [`Authenticator`]: turns an `Authorization: Bearer` header into a
//! [`Principal`], or into an [`Error`] with a stable code.
//!
//! It sits at the front of every non-public API route. The order of checks is
//! fixed so that nothing in the token is trusted before its signature is:
//! 1. shape and size; the header's `alg` must be RS256 or ES256;
//! 2. the key named by `kid` is looked up in the cached JWKS (refetched on an
//!    unknown kid, rate-limited) and must be of the type `alg` implies;
//! 3. signature, then `exp`/`nbf` (with leeway) and `aud`;
//! 4. `iss` (and, for Entra, `ver`, `tid` against the issuer, the allow-list and
//!    the key's own `issuer`);
//! 5. roles and scopes mapped to Veritrain roles; none is an error.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use reqwest::Url;
use serde::Deserialize;

use crate::config::{OidcConfig, TENANT_PLACEHOLDER, check_url, entra_issuer_tenant, is_guid};
use crate::error::{Error, Result};
use crate::jwks::{self, Alg, KeySet, Lookup, VerificationKey};
use crate::principal::{Principal, Role};

/// Tokens longer than this are refused before decoding. Entra access tokens
/// are a few KiB; group overage keeps them well under this.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Verifies bearer tokens of one issuer. Cheap to share: wrap it in an `Arc`.
pub struct Authenticator {
    config: OidcConfig,
    discovery_url: Url,
    http: reqwest::Client,
    keys: Mutex<Option<Arc<KeySet>>>,
    /// Held while fetching, so concurrent requests with the same unknown kid
    /// cause one fetch, not one each.
    refresh: tokio::sync::Mutex<RefreshState>,
    stats: Mutex<FetchStats>,
}

#[derive(Default)]
struct RefreshState {
    /// When the last fetch was attempted, successful or not.
    last_attempt: Option<Instant>,
}

/// Counters for the metrics endpoint and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// JWKS fetches attempted.
    pub jwks_fetches: u64,
    /// JWKS fetches that failed.
    pub jwks_failures: u64,
    /// Unknown-kid refetches skipped because of the rate limit.
    pub refetches_rate_limited: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// No keys yet, or the cached keys are older than `max_age`.
    Stale,
    /// A token named a kid the cached set lacks.
    UnknownKid,
}

/// The parts of the JOSE header we read before verifying. Our own small
/// parser, so that `alg: none`, `HS256` and friends get a precise error, and
/// so that nothing else in the header (`jku`, `x5u`, `jwk`: key locations
/// chosen by the token's author) can influence which key is used.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// The claims we read after the signature and time checks passed.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    ver: Option<String>,
    tid: Option<String>,
    oid: Option<String>,
    /// Entra: a space-separated string of delegated scopes.
    scp: Option<String>,
    /// RFC 9068 (generic issuers): space-separated scopes.
    scope: Option<String>,
    /// Entra app roles: an array (a string here fails decoding: malformed).
    #[serde(default)]
    roles: Vec<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    azp: Option<String>,
    appid: Option<String>,
    // Typed here, though jsonwebtoken checks them, so that a non-numeric
    // `exp` or `nbf` (which it would skip) makes the token malformed.
    #[serde(rename = "exp")]
    _exp: f64,
    #[serde(rename = "nbf")]
    _nbf: Option<f64>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.config.issuer)
            .field("discovery_url", &self.discovery_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Checks `config` and builds an authenticator. Nothing is fetched yet:
    /// the first token triggers discovery (see [`Authenticator::prefetch`]).
    pub fn new(config: OidcConfig) -> Result<Self> {
        config.validate()?;
        let discovery_url = check_url("discovery_url", &config.discovery_url())?;
        let http = reqwest::Client::builder()
            .timeout(config.jwks.http_timeout())
            // Metadata comes from the configured URLs, not from wherever a
            // redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Authenticator {
            config,
            discovery_url,
            http,
            keys: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            stats: Mutex::new(FetchStats::default()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Fetch counters.
    pub fn stats(&self) -> FetchStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches discovery and JWKS now (e.g. at start, so `/readyz` can say
    /// whether the IdP is reachable).
    pub async fn prefetch(&self) -> Result<()> {
        self.refresh(Why::Stale).await.map(|_| ())
    }

    /// Authenticates the value of an `Authorization` header (`None` when absent).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        self.verify(bearer_token(authorization)?).await
    }

    /// Verifies a bare token.
    pub async fn verify(&self, token: &str) -> Result<Principal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Malformed("token is longer than 16 KiB"));
        }
        let header = parse_header(token)?;
        // Allow-list of algorithms: `none` (no signature), HS256/384/512 (an
        // HMAC "keyed" with the public key is the key-confusion attack) and
        // everything else are refused before any key is touched.
        let alg = Alg::parse(&header.alg)
            .ok_or(Error::UnsupportedAlg("only RS256 and ES256 are accepted"))?;
        // We understand no critical header extension, so RFC 7515 §4.1.11
        // says refuse any.
        if header.crit.is_some() {
            return Err(Error::Malformed(
                "critical header extensions are not supported",
            ));
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty())
            .ok_or(Error::Malformed("header has no kid"))?;
        let key = self.key_for(&kid, alg).await?;

        let mut validation = Validation::new(alg.jwt());
        validation.leeway = self.config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // `iss` is compared below: Entra's templated issuers need the token's
        // `tid`, which we only read once the signature is checked.
        let claims: Claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)?.claims;
        self.check_issuer(&claims, &key)?;
        self.principal(claims)
    }

    fn check_issuer(&self, c: &Claims, key: &VerificationKey) -> Result<()> {
        if !self.config.entra {
            if c.iss != self.config.issuer {
                return Err(Error::BadIssuer("iss is not the configured issuer"));
            }
            return Ok(());
        }
        // Entra v1.0 tokens (`https://sts.windows.net/{tid}/`, `ver: 1.0`)
        // differ in `aud` and claim names; only v2.0 is accepted.
        if c.ver.as_deref() != Some("2.0") {
            return Err(Error::BadIssuer(
                "not an Entra v2.0 token (set requestedAccessTokenVersion = 2 on the API registration)",
            ));
        }
        let tid = c
            .tid
            .as_deref()
            .ok_or(Error::BadTenant("token has no tid"))?;
        if !is_guid(tid) {
            return Err(Error::BadTenant("tid is not a tenant GUID"));
        }
        let Some(iss_tenant) = entra_issuer_tenant(&c.iss) else {
            return Err(Error::BadIssuer("iss is not an Entra v2.0 issuer"));
        };
        // A token from tenant A claiming to be about tenant B: the tenant in
        // the signed issuer and the tid must agree before either is used.
        if !iss_tenant.eq_ignore_ascii_case(tid) {
            return Err(Error::BadTenant("tid does not match the issuer"));
        }
        if c.iss != self.config.issuer.replace(TENANT_PLACEHOLDER, tid) {
            return Err(Error::BadIssuer("iss is not the configured issuer"));
        }
        if !self.config.tenant_allowed(tid) {
            return Err(Error::BadTenant("tenant is not in the allow-list"));
        }
        // Entra JWKS carry a per-key `issuer`: a key published for one
        // issuer (e.g. an app's custom signing key) must not vouch for another.
        if let Some(key_iss) = &key.issuer
            && key_iss.replace(TENANT_PLACEHOLDER, tid) != c.iss
        {
            return Err(Error::BadIssuer(
                "the signing key belongs to another issuer",
            ));
        }
        Ok(())
    }

    fn principal(&self, c: Claims) -> Result<Principal> {
        let mapping = &self.config.roles;
        let scope_claim = if self.config.entra {
            c.scp.as_deref()
        } else {
            c.scp.as_deref().or(c.scope.as_deref())
        };
        let scopes: Vec<&str> = if mapping.reads_scopes() {
            scope_claim.unwrap_or("").split_whitespace().collect()
        } else {
            Vec::new()
        };
        let roles: BTreeSet<Role> = Role::ALL
            .into_iter()
            .filter(|r| {
                let want = mapping.for_role(*r);
                want.roles.iter().any(|v| c.roles.contains(v))
                    || want.scopes.iter().any(|v| scopes.contains(&v.as_str()))
            })
            .collect();
        if roles.is_empty() {
            return Err(Error::NoRole);
        }
        let display_name = c
            .name
            .or(c.preferred_username)
            .or(c.azp)
            .or(c.appid)
            .filter(|n| !n.is_empty());
        let (tenant, object_id) = if self.config.entra {
            // `sub` is pairwise per app; `oid` is the user's (or service
            // principal's) id across the tenant.
            let oid = c
                .oid
                .filter(|o| !o.is_empty())
                .ok_or(Error::Malformed("Entra token has no oid"))?;
            let tid = c.tid.ok_or(Error::BadTenant("token has no tid"))?;
            (tid.to_ascii_lowercase(), oid)
        } else {
            let sub = c
                .sub
                .filter(|s| !s.is_empty())
                .ok_or(Error::Malformed("token has no sub"))?;
            (c.iss, sub)
        };
        Ok(Principal {
            tenant,
            object_id,
            display_name,
            roles,
        })
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn bump(&self, f: impl FnOnce(&mut FetchStats)) {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    async fn key_for(&self, kid: &str, alg: Alg) -> Result<VerificationKey> {
        let max_age = self.config.jwks.max_age();
        let set = match self.current() {
            Some(set) if set.age(Instant::now()) < max_age => set,
            _ => self.refresh(Why::Stale).await?,
        };
        match set.find(kid, alg) {
            Lookup::Found(k) => return Ok(k.clone()),
            Lookup::WrongType => return Err(wrong_type()),
            Lookup::Unknown => {}
        }
        // Perhaps the IdP rotated a new key in: look again (rate-limited).
        let set = self.refresh(Why::UnknownKid).await?;
        match set.find(kid, alg) {
            Lookup::Found(k) => Ok(k.clone()),
            Lookup::WrongType => Err(wrong_type()),
            Lookup::Unknown => Err(Error::UnknownKey),
        }
    }

    /// Fetches discovery + JWKS unless the rate limit says no. Returns the key
    /// set to use: the new one, or the cached one when no fetch was allowed.
    async fn refresh(&self, why: Why) -> Result<Arc<KeySet>> {
        let mut state = self.refresh.lock().await;
        let now = Instant::now();
        let current = self.current();
        // Another request refreshed while we waited for the lock.
        if why == Why::Stale
            && let Some(set) = &current
            && set.age(now) < self.config.jwks.max_age()
        {
            return Ok(set.clone());
        }
        // At most one fetch per interval, whatever the tokens say: a flood of
        // random kids (or a failing IdP) costs the IdP one request per interval.
        if let Some(last) = state.last_attempt
            && now.saturating_duration_since(last) < self.config.jwks.refetch_min_interval()
        {
            if why == Why::UnknownKid {
                self.bump(|s| s.refetches_rate_limited += 1);
            }
            return current.ok_or_else(|| {
                Error::IdpUnreachable(
                    "the last fetch of the issuer's keys failed; retrying after the refetch interval"
                        .into(),
                )
            });
        }
        state.last_attempt = Some(now);
        self.bump(|s| s.jwks_fetches += 1);
        match self.fetch_keys().await {
            Ok(set) => {
                let set = Arc::new(set);
                *self.keys.lock().unwrap_or_else(PoisonError::into_inner) = Some(set.clone());
                Ok(set)
            }
            Err(e) => {
                self.bump(|s| s.jwks_failures += 1);
                match (why, current) {
                    // Keys past their age are kept while the IdP is down:
                    // refusing every user is worse than a day-old key set,
                    // and retries stay rate-limited.
                    (Why::Stale, Some(set)) => Ok(set),
                    _ => Err(e),
                }
            }
        }
    }

    async fn fetch_keys(&self) -> Result<KeySet> {
        let jwks_uri = jwks::discover(&self.http, &self.discovery_url, &self.config.issuer).await?;
        let body = jwks::fetch(&self.http, &jwks_uri).await?;
        jwks::parse_jwks(&body, Instant::now())
    }
}

fn wrong_type() -> Error {
    Error::UnsupportedAlg("the token's alg does not match the type of the key it names")
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str> {
    let value = authorization.map(str::trim).unwrap_or("");
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // Other schemes (Basic, ...) carry no bearer token: same answer as none.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Missing);
    }
    Ok(token)
}

fn parse_header(token: &str) -> Result<JoseHeader> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed("not three dot-separated segments"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Error::Malformed("header is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| Error::Malformed("header is not a JSON object with an alg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_shapes() {
        assert_eq!(bearer_token(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer_token(Some("bearer   abc ")).unwrap(), "abc");
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer  "),
            Some("Basic dXNlcjpw"),
        ] {
            assert_eq!(bearer_token(bad).unwrap_err().code(), "auth.missing");
        }
    }

    #[test]
    fn header_parse_errors_do_not_echo_the_token() {
        let secretish = "eyJzZWNyZXQiOiJ0b2tlbi12YWx1ZSJ9";
        for t in [
            secretish.to_string(),
            format!("{secretish}.{secretish}"),
            format!("!!!.{secretish}.sig"),
            format!("{secretish}.{secretish}.sig"),
        ] {
            let e = parse_header(&t).err().unwrap();
            assert_eq!(e.code(), "auth.malformed");
            assert!(!e.to_string().contains(secretish), "{e}");
        }
    }
}
