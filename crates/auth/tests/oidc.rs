//! The auth attack suite against an in-test issuer.
//!
//! The issuer is an axum server on 127.0.0.1:0 serving Entra-shaped metadata
//! (`/{tenant}/v2.0/.well-known/openid-configuration`,
//! `/{tenant}/discovery/v2.0/keys` with Entra's per-key `issuer`), and counting
//! the JWKS requests it answers. Tokens are minted here with RSA-2048 and
//! P-256 keys, in the claim shapes of Entra v2.0 access tokens.

// Test helpers outside `#[test]` functions may unwrap: a panic is a test failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use veritrain_auth::dev::DevIssuer;
use veritrain_auth::{Authenticator, OidcConfig, Role};

const T1: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const T2: &str = "a1b2c3d4-0000-4000-8000-000000000002";
const T3: &str = "a1b2c3d4-0000-4000-8000-000000000003";
const CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const APP_ID_URI: &str = "api://veritrain";
const OID: &str = "00000000-0000-0000-66f3-3332eca7ea81";
const KID_A: &str = "kid-a";
const KID_B: &str = "kid-b";
const KID_EC: &str = "kid-ec";

// ----- keys, generated once per test binary ----------------------------------

struct RsaKey {
    enc: EncodingKey,
    n: String,
    e: String,
    pkcs1_der: Vec<u8>,
}

fn rsa_key(slot: usize) -> &'static RsaKey {
    static KEYS: OnceLock<Vec<RsaKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..3)
            .map(|_| {
                let sk = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
                let der = sk.to_pkcs1_der().unwrap();
                let pk = sk.to_public_key();
                let pub_der = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&pk).unwrap();
                RsaKey {
                    enc: EncodingKey::from_rsa_der(der.as_bytes()),
                    n: URL_SAFE_NO_PAD.encode(pk.n().to_bytes_be()),
                    e: URL_SAFE_NO_PAD.encode(pk.e().to_bytes_be()),
                    pkcs1_der: pub_der.as_bytes().to_vec(),
                }
            })
            .collect()
    });
    &keys[slot]
}
/// The issuer's first key.
fn key_a() -> &'static RsaKey {
    rsa_key(0)
}
/// The key rotated in later.
fn key_b() -> &'static RsaKey {
    rsa_key(1)
}
/// An attacker's key, never published.
fn key_foreign() -> &'static RsaKey {
    rsa_key(2)
}

struct EcKey {
    enc: EncodingKey,
    x: String,
    y: String,
}

fn ec_key() -> &'static EcKey {
    static KEY: OnceLock<EcKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let sk = p256::SecretKey::random(&mut rand_core::OsRng);
        let pt = sk.public_key().to_encoded_point(false);
        EcKey {
            enc: EncodingKey::from_ec_der(sk.to_pkcs8_der().unwrap().as_bytes()),
            x: URL_SAFE_NO_PAD.encode(pt.x().unwrap()),
            y: URL_SAFE_NO_PAD.encode(pt.y().unwrap()),
        }
    })
}

fn rsa_jwk(base: &str, kid: &str, k: &RsaKey) -> Value {
    // Entra's shape: kty/use/kid/x5t/n/e plus the per-key (templated) issuer.
    json!({"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid, "n": k.n, "e": k.e,
           "issuer": format!("{base}/{{tenantid}}/v2.0")})
}

fn ec_jwk(kid: &str) -> Value {
    let k = ec_key();
    json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "x": k.x, "y": k.y})
}

// ----- the issuer ----------------------------------------------------------

#[derive(Default)]
struct IssuerState {
    base: String,
    keys: Mutex<Vec<Value>>,
    jwks_hits: AtomicUsize,
}

struct Issuer {
    base: String,
    state: Arc<IssuerState>,
}

async fn discovery(State(s): State<Arc<IssuerState>>, Path(tenant): Path<String>) -> Json<Value> {
    // Entra's multi-tenant documents carry the templated issuer.
    let iss_tenant = if tenant == "organizations" {
        "{tenantid}"
    } else {
        tenant.as_str()
    };
    Json(json!({
        "issuer": format!("{}/{iss_tenant}/v2.0", s.base),
        "jwks_uri": format!("{}/{tenant}/discovery/v2.0/keys", s.base),
        "token_endpoint": format!("{}/{tenant}/oauth2/v2.0/token", s.base),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn keys(State(s): State<Arc<IssuerState>>) -> Json<Value> {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({"keys": s.keys.lock().unwrap().clone()}))
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let state = Arc::new(IssuerState {
            base: base.clone(),
            keys: Mutex::new(vec![rsa_jwk(&base, KID_A, key_a()), ec_jwk(KID_EC)]),
            jwks_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/{tenant}/discovery/v2.0/keys", get(keys))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer { base, state }
    }

    fn iss(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base)
    }

    fn hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    /// Single-tenant Entra config for T1.
    fn config(&self) -> OidcConfig {
        let mut c = OidcConfig::generic(self.iss(T1), CLIENT_ID);
        c.audiences.push(APP_ID_URI.into());
        c.entra = true;
        c.allowed_tenants = vec![T1.into()];
        c.roles.developer.scopes = vec!["Artifacts.Write".into()];
        c.roles.developer.roles = vec!["Artifacts.ReadWrite.All".into()];
        c.roles.auditor.roles = vec!["Veritrain.Auditor".into()];
        c.roles.admin.roles = vec!["Veritrain.Admin".into()];
        c
    }

    fn auth(&self) -> Authenticator {
        Authenticator::new(self.config()).unwrap()
    }

    /// Claims of an Entra v2.0 user access token from `tenant`.
    fn user_claims(&self, tenant: &str) -> Value {
        let now = now();
        json!({
            "aud": CLIENT_ID, "iss": self.iss(tenant), "iat": now, "nbf": now, "exp": now + 3600,
            "aio": "opaque", "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "azpacr": "0",
            "name": "Ada Lovelace", "preferred_username": "ada@contoso.example",
            "oid": OID, "rh": "opaque", "scp": "Artifacts.Write User.Read",
            "sub": "pairwise-subject-for-this-app", "tid": tenant, "uti": "x", "ver": "2.0",
        })
    }

    /// Claims of an Entra v2.0 app-only (client credentials) token.
    fn app_claims(&self, roles: &[&str]) -> Value {
        let mut c = self.user_claims(T1);
        let o = c.as_object_mut().unwrap();
        for k in ["scp", "name", "preferred_username"] {
            o.remove(k);
        }
        o.insert("roles".into(), json!(roles));
        o.insert("idtyp".into(), json!("app"));
        o.insert("azpacr".into(), json!("2"));
        c
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rs256(kid: &str, key: &RsaKey, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &key.enc).unwrap()
}

fn es256(kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &ec_key().enc).unwrap()
}

fn b64j(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The error code for `token`, checking on the way that the message does
/// not echo the token or its payload.
async fn code(auth: &Authenticator, token: &str) -> &'static str {
    let err = auth.verify(token).await.expect_err("token must be refused");
    let msg = err.to_string();
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(!msg.contains(part), "message echoes the token: {msg}");
    }
    err.code()
}

// ----- accepted ------------------------------------------------------------

#[tokio::test]
async fn ok_user_token_with_scope() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let p = auth
        .authenticate(Some(
            format!("Bearer {}", rs256(KID_A, key_a(), &idp.user_claims(T1))).as_str(),
        ))
        .await
        .unwrap();
    assert_eq!(p.tenant, T1);
    assert_eq!(
        p.object_id, OID,
        "Entra users are keyed by oid, not the pairwise sub"
    );
    assert_eq!(p.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(p.roles, BTreeSet::from([Role::Developer]));
    assert!(p.can_submit() && !p.can_read_all() && !p.is_admin());
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn ok_app_token_with_roles_and_app_id_uri_audience() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let mut claims = idp.app_claims(&["Artifacts.ReadWrite.All", "Veritrain.Auditor"]);
    claims["aud"] = json!(APP_ID_URI);
    let p = auth.verify(&rs256(KID_A, key_a(), &claims)).await.unwrap();
    assert_eq!(p.roles, BTreeSet::from([Role::Developer, Role::Auditor]));
    assert!(p.can_read_all() && !p.is_admin());
    // App tokens have no name: the client id is shown instead.
    assert_eq!(
        p.display_name.as_deref(),
        Some("04b07795-8ddb-461a-bbee-02f9e1bf7b46")
    );
}

#[tokio::test]
async fn ok_es256_token() {
    let idp = Issuer::start().await;
    let p = idp
        .auth()
        .verify(&es256(KID_EC, &idp.user_claims(T1)))
        .await
        .unwrap();
    assert!(p.can_submit());
}

#[tokio::test]
async fn ok_rotated_in_key_via_refetch_and_old_key_still_valid() {
    let idp = Issuer::start().await;
    let mut cfg = idp.config();
    cfg.jwks.refetch_min_interval_secs = 1;
    let auth = Authenticator::new(cfg).unwrap();
    auth.verify(&rs256(KID_A, key_a(), &idp.user_claims(T1)))
        .await
        .unwrap();
    assert_eq!(idp.hits(), 1);

    idp.set_keys(vec![
        rsa_jwk(&idp.base, KID_A, key_a()),
        rsa_jwk(&idp.base, KID_B, key_b()),
    ]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let p = auth
        .verify(&rs256(KID_B, key_b(), &idp.user_claims(T1)))
        .await
        .unwrap();
    assert!(p.can_submit());
    assert_eq!(idp.hits(), 2, "one refetch for the new kid");
    auth.verify(&rs256(KID_A, key_a(), &idp.user_claims(T1)))
        .await
        .unwrap();
    assert_eq!(idp.hits(), 2, "known kids are served from the cache");
}

#[tokio::test]
async fn ok_keys_older_than_max_age_are_refetched_before_use() {
    let idp = Issuer::start().await;
    let mut cfg = idp.config();
    cfg.jwks.refetch_min_interval_secs = 1;
    cfg.jwks.max_age_secs = 1;
    let auth = Authenticator::new(cfg).unwrap();
    let t = rs256(KID_A, key_a(), &idp.user_claims(T1));
    auth.verify(&t).await.unwrap();
    auth.verify(&t).await.unwrap();
    assert_eq!(idp.hits(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The IdP dropped key A meanwhile: the periodic refetch notices.
    idp.set_keys(vec![rsa_jwk(&idp.base, KID_B, key_b())]);
    assert_eq!(code(&auth, &t).await, "auth.unknown_key");
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn ok_leeway_is_applied_to_exp_and_nbf() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let mut c = idp.user_claims(T1);
    c["exp"] = json!(now() - 30);
    c["nbf"] = json!(now() - 3600);
    auth.verify(&rs256(KID_A, key_a(), &c)).await.unwrap();
    let mut c = idp.user_claims(T1);
    c["nbf"] = json!(now() + 30);
    auth.verify(&rs256(KID_A, key_a(), &c)).await.unwrap();
}

#[tokio::test]
async fn ok_multi_tenant_template_with_allow_list() {
    let idp = Issuer::start().await;
    let mut cfg = idp.config();
    cfg.issuer = format!("{}/{{tenantid}}/v2.0", idp.base);
    cfg.discovery_url = Some(format!(
        "{}/organizations/v2.0/.well-known/openid-configuration",
        idp.base
    ));
    cfg.allowed_tenants = vec![T1.into(), T2.into()];
    let auth = Authenticator::new(cfg).unwrap();
    for t in [T1, T2] {
        let p = auth
            .verify(&rs256(KID_A, key_a(), &idp.user_claims(t)))
            .await
            .unwrap();
        assert_eq!(p.tenant, t);
    }
    // A third tenant signs with the same (shared, multi-tenant) Entra keys.
    let t3 = rs256(KID_A, key_a(), &idp.user_claims(T3));
    assert_eq!(code(&auth, &t3).await, "auth.bad_tenant");
}

#[tokio::test]
async fn ok_dev_issuer_tokens_use_the_same_path() {
    let dev = DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let auth = Authenticator::new(dev.oidc_config()).unwrap();
    let t = dev
        .mint(
            "alice",
            &[Role::Developer, Role::Admin],
            Duration::from_secs(600),
        )
        .unwrap();
    let p = auth.verify(&t).await.unwrap();
    assert_eq!(p.tenant, dev.issuer());
    assert_eq!(p.object_id, "alice");
    assert_eq!(p.roles, BTreeSet::from([Role::Developer, Role::Admin]));
    let none = dev.mint("bob", &[], Duration::from_secs(600)).unwrap();
    assert_eq!(code(&auth, &none).await, "auth.no_role");
    // Tokens of another dev issuer (another key, another port) are refused.
    let other = DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let t = other
        .mint("alice", &[Role::Admin], Duration::from_secs(600))
        .unwrap();
    assert_eq!(code(&auth, &t).await, "auth.unknown_key");
}

#[tokio::test]
async fn fail_dev_issuer_on_a_non_loopback_address() {
    let err = DevIssuer::start("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "auth.config");
}

// ----- refused -------------------------------------------------------------

#[tokio::test]
async fn fail_missing_or_malformed_header() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    assert_eq!(
        auth.authenticate(None).await.unwrap_err().code(),
        "auth.missing"
    );
    assert_eq!(
        auth.authenticate(Some("Basic YTpi"))
            .await
            .unwrap_err()
            .code(),
        "auth.missing"
    );
    for bad in [
        "Bearer abc",
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer !!!.e30.sig",
    ] {
        assert_eq!(
            auth.authenticate(Some(bad)).await.unwrap_err().code(),
            "auth.malformed",
            "{bad}"
        );
    }
    let huge = format!("Bearer {}", "a".repeat(20_000));
    assert_eq!(
        auth.authenticate(Some(huge.as_str()))
            .await
            .unwrap_err()
            .code(),
        "auth.malformed"
    );
    assert_eq!(idp.hits(), 0, "malformed tokens never reach the IdP");
}

#[tokio::test]
async fn fail_missing_role() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let mut c = idp.user_claims(T1);
    c["scp"] = json!("User.Read");
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.no_role"
    );
    let app = idp.app_claims(&["Something.Else"]);
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &app)).await,
        "auth.no_role"
    );
    // `scp` as an array is not Entra's shape.
    let mut c = idp.user_claims(T1);
    c["scp"] = json!(["Artifacts.Write"]);
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.malformed"
    );
}

#[tokio::test]
async fn fail_wrong_audience() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let mut c = idp.user_claims(T1);
    // A Microsoft Graph token, say.
    c["aud"] = json!("00000003-0000-0000-c000-000000000000");
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.bad_audience"
    );
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.malformed"
    );
}

#[tokio::test]
async fn fail_v1_issuer_and_version() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let mut c = idp.user_claims(T1);
    c["iss"] = json!(format!("https://sts.windows.net/{T1}/"));
    c["ver"] = json!("1.0");
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.bad_issuer"
    );
    // The v2 issuer but a v1.0 token.
    let mut c = idp.user_claims(T1);
    c["ver"] = json!("1.0");
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.bad_issuer"
    );
    // Another issuer altogether.
    let mut c = idp.user_claims(T1);
    c["iss"] = json!(format!("https://evil.example/{T1}/v2.0"));
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.bad_issuer"
    );
}

#[tokio::test]
async fn fail_tid_not_matching_issuer() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let mut c = idp.user_claims(T1);
    c["tid"] = json!(T2);
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.bad_tenant"
    );
    let mut c = idp.user_claims(T1);
    c.as_object_mut().unwrap().remove("tid");
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c)).await,
        "auth.bad_tenant"
    );

    // Both tenants allowed, single-tenant or templated issuer: a token issued
    // by T1 still cannot claim to be about T2's user.
    let mut cfg = idp.config();
    cfg.allowed_tenants = vec![T1.into(), T2.into()];
    let single = Authenticator::new(cfg.clone()).unwrap();
    cfg.issuer = format!("{}/{{tenantid}}/v2.0", idp.base);
    cfg.discovery_url = Some(format!(
        "{}/organizations/v2.0/.well-known/openid-configuration",
        idp.base
    ));
    let multi = Authenticator::new(cfg).unwrap();
    let mut c = idp.user_claims(T1);
    c["tid"] = json!(T2);
    let t = rs256(KID_A, key_a(), &c);
    assert_eq!(code(&single, &t).await, "auth.bad_tenant");
    assert_eq!(code(&multi, &t).await, "auth.bad_tenant");
}

#[tokio::test]
async fn fail_tenant_not_allowed() {
    let idp = Issuer::start().await;
    // A single-tenant config for T2's issuer, but T2 not in the allow-list,
    // is refused at start; T1's config refuses T2's tokens at the issuer check.
    let mut cfg = idp.config();
    cfg.issuer = idp.iss(T2);
    assert_eq!(Authenticator::new(cfg).unwrap_err().code(), "auth.config");
    let auth = idp.auth();
    let t2 = rs256(KID_A, key_a(), &idp.user_claims(T2));
    assert_eq!(code(&auth, &t2).await, "auth.bad_issuer");
}

#[tokio::test]
async fn fail_key_published_for_another_issuer() {
    let idp = Issuer::start().await;
    let mut k = rsa_jwk(&idp.base, KID_A, key_a());
    k["issuer"] = json!(format!("https://login.microsoftonline.com/{T2}/v2.0"));
    idp.set_keys(vec![k]);
    let auth = idp.auth();
    let t = rs256(KID_A, key_a(), &idp.user_claims(T1));
    assert_eq!(code(&auth, &t).await, "auth.bad_issuer");
}

#[tokio::test]
async fn fail_expired() {
    let idp = Issuer::start().await;
    let mut c = idp.user_claims(T1);
    c["iat"] = json!(now() - 7200);
    c["nbf"] = json!(now() - 7200);
    c["exp"] = json!(now() - 120);
    assert_eq!(
        code(&idp.auth(), &rs256(KID_A, key_a(), &c)).await,
        "auth.expired"
    );
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        code(&idp.auth(), &rs256(KID_A, key_a(), &c)).await,
        "auth.malformed"
    );
}

#[tokio::test]
async fn fail_future_nbf() {
    let idp = Issuer::start().await;
    let mut c = idp.user_claims(T1);
    c["nbf"] = json!(now() + 3600);
    c["exp"] = json!(now() + 7200);
    assert_eq!(
        code(&idp.auth(), &rs256(KID_A, key_a(), &c)).await,
        "auth.not_yet_valid"
    );
}

#[tokio::test]
async fn fail_tampered_payload() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let good = rs256(KID_A, key_a(), &idp.user_claims(T1));
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = idp.user_claims(T1);
    c["roles"] = json!(["Veritrain.Admin"]);
    let forged = format!("{}.{}.{}", parts[0], b64j(&c), parts[2]);
    assert_eq!(code(&auth, &forged).await, "auth.bad_signature");
    // One flipped signature bit.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(code(&auth, &flipped).await, "auth.bad_signature");
}

#[tokio::test]
async fn fail_alg_none() {
    let idp = Issuer::start().await;
    let auth = idp.auth();
    let payload = b64j(&idp.user_claims(T1));
    for alg in ["none", "None", "NONE", ""] {
        let h = b64j(&json!({"alg": alg, "typ": "JWT", "kid": KID_A}));
        assert_eq!(
            code(&auth, &format!("{h}.{payload}.")).await,
            "auth.unsupported_alg"
        );
    }
    // No alg at all.
    let h = b64j(&json!({"typ": "JWT", "kid": KID_A}));
    assert_eq!(
        code(&auth, &format!("{h}.{payload}.")).await,
        "auth.malformed"
    );
    assert_eq!(idp.hits(), 0, "refused before any key lookup");
}

#[tokio::test]
async fn fail_hs256_key_confusion() {
    let idp = Issuer::start().await;
    // The JWKS also (wrongly) publishes an HMAC key: it must never be used.
    idp.set_keys(vec![
        rsa_jwk(&idp.base, KID_A, key_a()),
        ec_jwk(KID_EC),
        json!({"kty": "oct", "kid": "kid-oct", "k": URL_SAFE_NO_PAD.encode(b"shared-secret")}),
    ]);
    let auth = idp.auth();
    let claims = idp.user_claims(T1);
    let public = key_a();
    // HMAC "keyed" with the public key in the forms an attacker would try.
    let secrets: Vec<Vec<u8>> = vec![
        public.pkcs1_der.clone(),
        public.n.clone().into_bytes(),
        rsa_jwk(&idp.base, KID_A, public).to_string().into_bytes(),
    ];
    for secret in &secrets {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut h = Header::new(alg);
            h.kid = Some(KID_A.into());
            let t = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(secret)).unwrap();
            assert_eq!(code(&auth, &t).await, "auth.unsupported_alg");
        }
    }
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("kid-oct".into());
    let t = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(b"shared-secret")).unwrap();
    assert_eq!(code(&auth, &t).await, "auth.unsupported_alg");
    // Key-type confusion between the accepted algorithms: RS256 naming the EC
    // key, ES256 naming the RSA key.
    assert_eq!(
        code(&auth, &rs256(KID_EC, key_a(), &claims)).await,
        "auth.unsupported_alg"
    );
    assert_eq!(
        code(&auth, &es256(KID_A, &claims)).await,
        "auth.unsupported_alg"
    );
    // Other asymmetric algorithms are refused too.
    let mut h = Header::new(Algorithm::PS256);
    h.kid = Some(KID_A.into());
    let t = jsonwebtoken::encode(&h, &claims, &key_a().enc).unwrap();
    assert_eq!(code(&auth, &t).await, "auth.unsupported_alg");
}

#[tokio::test]
async fn fail_foreign_key_reusing_a_known_kid() {
    let idp = Issuer::start().await;
    let t = rs256(KID_A, key_foreign(), &idp.user_claims(T1));
    assert_eq!(code(&idp.auth(), &t).await, "auth.bad_signature");
}

#[tokio::test]
async fn fail_unknown_kid_after_refetch_and_flood_is_rate_limited() {
    let idp = Issuer::start().await;
    let mut cfg = idp.config();
    cfg.jwks.refetch_min_interval_secs = 1;
    let auth = Authenticator::new(cfg).unwrap();
    auth.verify(&rs256(KID_A, key_a(), &idp.user_claims(T1)))
        .await
        .unwrap();
    assert_eq!(idp.hits(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let t = rs256("kid-nobody-published", key_foreign(), &idp.user_claims(T1));
    assert_eq!(code(&auth, &t).await, "auth.unknown_key");
    assert_eq!(idp.hits(), 2, "the unknown kid caused exactly one refetch");

    for i in 0..50 {
        let t = rs256(&format!("random-{i}"), key_foreign(), &idp.user_claims(T1));
        assert_eq!(code(&auth, &t).await, "auth.unknown_key");
    }
    assert_eq!(
        idp.hits(),
        2,
        "a flood of unknown kids within the interval fetches nothing"
    );
    assert_eq!(auth.stats().refetches_rate_limited, 50);
    // Known kids keep working during the flood.
    auth.verify(&rs256(KID_A, key_a(), &idp.user_claims(T1)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_concurrent_unknown_kid_flood_on_a_cold_cache_fetches_once() {
    let idp = Issuer::start().await;
    let auth = Arc::new(idp.auth());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let auth = auth.clone();
        let t = rs256(&format!("flood-{i}"), key_foreign(), &idp.user_claims(T1));
        tasks.spawn(async move { auth.verify(&t).await.unwrap_err().code() });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), "auth.unknown_key");
    }
    assert_eq!(idp.hits(), 1, "default interval: one fetch, no refetches");
}

#[tokio::test]
async fn fail_idp_unreachable_and_wrong_discovery_issuer() {
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let idp = Issuer::start().await;
    let t = rs256(KID_A, key_a(), &idp.user_claims(T1));

    let mut cfg = idp.config();
    cfg.discovery_url = Some(format!(
        "http://{closed}/{T1}/v2.0/.well-known/openid-configuration"
    ));
    let auth = Authenticator::new(cfg).unwrap();
    let err = auth.verify(&t).await.unwrap_err();
    assert_eq!(err.code(), "auth.idp_unreachable");
    assert!(!err.is_client_error());
    // The failure is rate-limited too: the next request does not retry at once.
    assert_eq!(
        auth.verify(&t).await.unwrap_err().code(),
        "auth.idp_unreachable"
    );
    assert_eq!(auth.stats().jwks_fetches, 1);

    // The discovery document of another tenant names another issuer.
    let mut cfg = idp.config();
    cfg.discovery_url = Some(format!(
        "{}/{T2}/v2.0/.well-known/openid-configuration",
        idp.base
    ));
    let auth = Authenticator::new(cfg).unwrap();
    assert_eq!(
        auth.verify(&t).await.unwrap_err().code(),
        "auth.idp_unreachable"
    );
    assert_eq!(
        idp.hits(),
        0,
        "the JWKS of a mismatched issuer is not even fetched"
    );
}

#[tokio::test]
async fn fail_generic_issuer_checks_iss_and_keys_users_by_iss_sub() {
    let idp = Issuer::start().await;
    let iss = idp.iss(T1);
    let mut cfg = OidcConfig::generic(iss.clone(), "veritrain");
    cfg.roles.developer.scopes = vec!["jobs:write".into()];
    let auth = Authenticator::new(cfg).unwrap();
    let now = now();
    let c = json!({"iss": iss, "aud": "veritrain", "sub": "user-1", "exp": now + 600,
                   "iat": now, "scope": "openid jobs:write"});
    let p = auth.verify(&rs256(KID_A, key_a(), &c)).await.unwrap();
    assert_eq!(
        (p.tenant.as_str(), p.object_id.as_str()),
        (iss.as_str(), "user-1")
    );
    let mut c2 = c.clone();
    c2["iss"] = json!(idp.iss(T2));
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c2)).await,
        "auth.bad_issuer"
    );
    let mut c3 = c.clone();
    c3.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        code(&auth, &rs256(KID_A, key_a(), &c3)).await,
        "auth.malformed"
    );
}
