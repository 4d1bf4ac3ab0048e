//! The issuer's signing keys: discovery document and JWKS, fetched over HTTP
//! with size limits, and parsed into an allow-list of RS256 and ES256 keys.
//!
//! Only `RSA` keys of at least 2048 bits and `EC` keys on P-256 are kept. Keys
//! of any other type (`oct` above all: an HMAC secret published as a JWK would
//! let anyone who reads the JWKS forge tokens) are dropped at parse time, so no
//! token can ever be checked against them.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use reqwest::Url;
use serde::Deserialize;

use crate::config::check_url;
use crate::error::{Error, Result};

/// Discovery documents and JWKS are small (Entra's JWKS is under 10 KiB);
/// a larger body is refused rather than buffered.
pub(crate) const MAX_METADATA_BYTES: usize = 512 * 1024;
/// At most this many keys are kept from one JWKS.
const MAX_KEYS: usize = 64;
/// RSA keys shorter than this are refused (bytes of modulus: 2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// The token algorithms we accept; every other `alg` is refused before any
/// key is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what Entra ID signs with).
    Rs256,
    /// ECDSA P-256 with SHA-256 (what the dev issuer signs with).
    Es256,
}

impl Alg {
    pub(crate) fn parse(alg: &str) -> Option<Alg> {
        match alg {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::Rs256 => jsonwebtoken::Algorithm::RS256,
            Alg::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// One usable verification key.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) kid: String,
    /// The only algorithm this key verifies: a key's type fixes it, so an RSA
    /// key is never tried with ES256 nor an EC key with RS256.
    pub(crate) alg: Alg,
    pub(crate) key: DecodingKey,
    /// Entra's per-key `issuer` (possibly `{tenantid}`-templated).
    pub(crate) issuer: Option<String>,
}

/// The keys of one JWKS fetch.
pub(crate) struct KeySet {
    pub(crate) keys: Vec<VerificationKey>,
    pub(crate) fetched_at: Instant,
}

/// Result of looking a `kid` up.
pub(crate) enum Lookup<'a> {
    Found(&'a VerificationKey),
    /// The kid exists, but only for another key type than the token's `alg`.
    WrongType,
    Unknown,
}

impl KeySet {
    pub(crate) fn find(&self, kid: &str, alg: Alg) -> Lookup<'_> {
        let mut wrong_type = false;
        for k in self.keys.iter().filter(|k| k.kid == kid) {
            if k.alg == alg {
                return Lookup::Found(k);
            }
            wrong_type = true;
        }
        if wrong_type {
            Lookup::WrongType
        } else {
            Lookup::Unknown
        }
    }

    pub(crate) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.fetched_at)
    }
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    issuer: Option<String>,
}

/// Parses a JWKS document, keeping only usable signature keys.
pub(crate) fn parse_jwks(body: &[u8], fetched_at: Instant) -> Result<KeySet> {
    let raw: RawJwks = serde_json::from_slice(body)
        .map_err(|e| Error::IdpUnreachable(format!("JWKS is not a JSON key set: {e}")))?;
    let keys: Vec<VerificationKey> = raw
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<RawJwk>(v).ok())
        .filter_map(usable_key)
        .take(MAX_KEYS)
        .collect();
    Ok(KeySet { keys, fetched_at })
}

fn usable_key(jwk: RawJwk) -> Option<VerificationKey> {
    // Keys without a kid cannot be selected by a token; encryption keys
    // (`use: enc`) must not verify signatures.
    let kid = jwk.kid.filter(|k| !k.is_empty())?;
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let (alg, key) = match jwk.kty.as_str() {
        "RSA" => {
            let n = URL_SAFE_NO_PAD.decode(jwk.n?).ok()?;
            let e = URL_SAFE_NO_PAD.decode(jwk.e?).ok()?;
            let n_len = n.iter().skip_while(|b| **b == 0).count();
            if n_len < MIN_RSA_MODULUS_BYTES || e.is_empty() || e.len() > 8 {
                return None;
            }
            (Alg::Rs256, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            if jwk.crv.as_deref() != Some("P-256") {
                return None;
            }
            let x = URL_SAFE_NO_PAD.decode(jwk.x?).ok()?;
            let y = URL_SAFE_NO_PAD.decode(jwk.y?).ok()?;
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            // Refuse points that are not on the curve now, not at verify time.
            p256::PublicKey::from_sec1_bytes(&sec1).ok()?;
            (Alg::Es256, DecodingKey::from_ec_der(&sec1))
        }
        // `oct` (HMAC secrets), `OKP` and anything else: never a verification key here.
        _ => return None,
    };
    // A key that declares an algorithm must declare the one its type implies.
    let declared_ok = matches!(
        (jwk.alg.as_deref(), alg),
        (None, _) | (Some("RS256"), Alg::Rs256) | (Some("ES256"), Alg::Es256)
    );
    if !declared_ok {
        return None;
    }
    Some(VerificationKey {
        kid,
        alg,
        key,
        issuer: jwk.issuer,
    })
}

/// The two fields of the discovery document we use.
#[derive(Deserialize)]
pub(crate) struct Discovery {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: String,
}

/// Fetches the discovery document, checks it names our issuer, and returns
/// the JWKS URL.
pub(crate) async fn discover(
    client: &reqwest::Client,
    url: &Url,
    expected_issuer: &str,
) -> Result<Url> {
    let body = fetch(client, url).await?;
    let doc: Discovery = serde_json::from_slice(&body).map_err(|e| {
        Error::IdpUnreachable(format!("discovery document at {url} is unusable: {e}"))
    })?;
    // A discovery document for another issuer means a misconfiguration (or
    // a hijacked URL): its keys would not be our issuer's keys.
    if doc.issuer != expected_issuer {
        return Err(Error::IdpUnreachable(format!(
            "discovery document at {url} is for issuer {:?}, not the configured {expected_issuer:?}",
            doc.issuer
        )));
    }
    check_url("jwks_uri", &doc.jwks_uri)
        .map_err(|e| Error::IdpUnreachable(format!("discovery document at {url}: {e}")))
}

/// GET `url`, refusing non-2xx answers and bodies over [`MAX_METADATA_BYTES`]
/// (counted while streaming, before buffering more).
pub(crate) async fn fetch(client: &reqwest::Client, url: &Url) -> Result<Vec<u8>> {
    let unreachable = |e: reqwest::Error| Error::IdpUnreachable(format!("GET {url}: {e}"));
    let mut resp = client.get(url.clone()).send().await.map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(Error::IdpUnreachable(format!(
            "GET {url}: HTTP {}",
            resp.status()
        )));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
    {
        return Err(too_large(url));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(too_large(url));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(url: &Url) -> Error {
    Error::IdpUnreachable(format!(
        "GET {url}: body over {MAX_METADATA_BYTES} bytes; refused"
    ))
}

/// Parses any JSON body (used by tests of this module).
#[cfg(test)]
fn json<T: serde::de::DeserializeOwned>(b: &[u8]) -> T {
    serde_json::from_slice(b).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    fn ec_jwk(kid: &str) -> serde_json::Value {
        let sk = p256::SecretKey::random(&mut rand_core::OsRng);
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let pt = sk.public_key().to_encoded_point(false);
        serde_json::json!({"kty":"EC","crv":"P-256","kid":kid,"use":"sig",
            "x": b64(pt.x().unwrap()), "y": b64(pt.y().unwrap())})
    }

    #[test]
    fn keeps_only_rs256_and_es256_signature_keys() {
        let doc = serde_json::json!({"keys":[
            ec_jwk("ec1"),
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"RSA","kid":"short","n": b64(&[0xc5; 128]),"e":"AQAB"},
            {"kty":"RSA","kid":"rsa","n": b64(&[0xc5; 256]),"e":"AQAB"},
            {"kty":"RSA","kid":"enc","use":"enc","n": b64(&[0xc5; 256]),"e":"AQAB"},
            {"kty":"RSA","kid":"ps","alg":"PS256","n": b64(&[0xc5; 256]),"e":"AQAB"},
            {"kty":"EC","crv":"P-256","kid":"offcurve","x": b64(&[1;32]),"y": b64(&[2;32])},
            {"kty":"EC","crv":"P-384","kid":"p384","x": b64(&[1;48]),"y": b64(&[2;48])},
            "not an object"
        ]});
        let set = parse_jwks(doc.to_string().as_bytes(), Instant::now()).unwrap();
        let kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["ec1", "rsa"]);
        assert!(matches!(set.find("rsa", Alg::Rs256), Lookup::Found(_)));
        assert!(matches!(set.find("rsa", Alg::Es256), Lookup::WrongType));
        assert!(matches!(set.find("hmac", Alg::Rs256), Lookup::Unknown));
    }

    #[test]
    fn fail_not_a_key_set() {
        let v: serde_json::Value = json(b"{\"keys\": 5}");
        let err = parse_jwks(v.to_string().as_bytes(), Instant::now())
            .err()
            .unwrap();
        assert_eq!(err.code(), "auth.idp_unreachable");
    }
}
