//! The API through the real router (no socket): trust material, health,
//! OpenAPI, and every refusal of `POST /v1/verify`. A real bundle verified
//! over HTTP is in the slow tier (`tests/e2e_bundle.rs`).

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;
use veritrain_attest::keys::{Algorithm, PrivateKey};
use veritrain_attest::keyset::{KeySet, verify_keyset};
use veritrain_server::{App, ServerConfig, router};

fn app(dir: &Path, extra: &str) -> Arc<App> {
    common::trust_dir(&dir.join("public"));
    Arc::new(App::new(&common::config(dir, extra)).unwrap())
}

async fn call(
    app: &Arc<App>,
    mut req: Request<Body>,
) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 5000))));
    let res = router(Arc::clone(app)).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, body, headers)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post_zip(bytes: &[u8]) -> Request<Body> {
    Request::post("/v1/verify")
        .header(header::CONTENT_TYPE, "application/zip")
        .body(Body::from(bytes.to_vec()))
        .unwrap()
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn trust_material_is_served_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app(tmp.path(), "");
    let public = tmp.path().join("public");
    for (path, file) in [
        ("/.well-known/veritrain/root.pub", "root.pub"),
        ("/.well-known/veritrain/keyset.json", "keyset.dsse.json"),
        ("/.well-known/veritrain/layout", "root.layout"),
    ] {
        let (status, body, _) = call(&app, get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, std::fs::read(public.join(file)).unwrap(), "{path}");
    }
    let (status, body, _) = call(&app, get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["status"],
        "ok"
    );
    let (status, body, _) = call(&app, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    let ready: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ready["trust"]["keyset_version"], 1);
    assert_eq!(ready["scratch_writable"], true);
    let (status, body, _) = call(&app, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "api.not_found");
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app(tmp.path(), "");
    let (status, body, _) = call(&app, get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/.well-known/veritrain/root.pub",
        "/.well-known/veritrain/keyset.json",
        "/.well-known/veritrain/layout",
        "/v1/verify",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
        // And the route exists.
        let (status, _, _) = call(&app, get(path)).await;
        assert_ne!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_trust_dir_holding_a_private_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    common::trust_dir(&tmp.path().join("public"));
    std::fs::write(
        tmp.path().join("public/root.key"),
        b"-----BEGIN PRIVATE KEY-----",
    )
    .unwrap();
    let err = App::new(&common::config(tmp.path(), "")).unwrap_err();
    assert_eq!(err.code(), "config.invalid");
    assert!(
        err.to_string().contains("never load a private key"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_config_keys_are_refused() {
    let err =
        ServerConfig::from_toml("trust_dir = \"/x\"\nlisten_addr = \"1.2.3.4:5\"\n").unwrap_err();
    assert_eq!(err.code(), "config.parse");
    assert!(err.to_string().contains("listen_addr"), "{err}");
}

#[tokio::test]
async fn verify_refuses_bad_uploads_with_their_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app(
        tmp.path(),
        "[verify]\nmax_bytes = 1000\nburst = 50\nper_minute = 600\n",
    );
    // Not a ZIP.
    let (status, body, _) = call(&app, post_zip(b"hello, not a zip")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error_code(&body).starts_with("zip."),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Too large.
    let (status, body, _) = call(&app, post_zip(&vec![0u8; 5000])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "verify.too_large");
    // Wrong media type.
    let req = Request::post("/v1/verify")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("x"))
        .unwrap();
    let (status, body, _) = call(&app, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&body), "verify.media_type");
    // A form without a bundle part.
    let form = "--XX\r\nContent-Disposition: form-data; name=\"artifact\"; filename=\"m.keras\"\r\n\r\nabc\r\n--XX--\r\n";
    let req = Request::post("/v1/verify")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XX")
        .body(Body::from(form))
        .unwrap();
    let (status, body, _) = call(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "verify.no_bundle");
    // Nothing was left in the scratch directory.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("veritrain-verify-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The metrics counted the refusals.
    let (_, body, _) = call(&app, get("/metrics")).await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("veritrain_verify_refused_total{reason=\"too_large\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("veritrain_verify_refused_total{reason=\"bad_archive\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn verify_is_rate_limited_per_address_with_retry_after() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app(tmp.path(), "[verify]\nburst = 2\nper_minute = 1\n");
    for _ in 0..2 {
        let (status, _, _) = call(&app, post_zip(b"x")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, body, headers) = call(&app, post_zip(b"x")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "verify.rate_limited");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn a_rotation_is_served_without_a_restart_and_older_key_sets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let public = tmp.path().join("public");
    let now = chrono::Utc::now();
    let root = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let first = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let v1 = KeySet::new(first.public_key(), now).unwrap();
    let write = |ks: &KeySet| {
        let envelope = ks.sign(&root).unwrap().to_json().unwrap();
        let verified = verify_keyset(&envelope, root.public_key(), &Default::default()).unwrap();
        let layout =
            veritrain_pipeline::layout::sign_job_layout(&verified, &root, now, 30).unwrap();
        std::fs::create_dir_all(&public).unwrap();
        std::fs::write(
            public.join("root.pub"),
            root.public_key().to_spki_pem().unwrap(),
        )
        .unwrap();
        std::fs::write(public.join("keyset.dsse.json"), &envelope).unwrap();
        std::fs::write(public.join("root.layout"), layout).unwrap();
        envelope
    };
    let old = write(&v1);
    let app = Arc::new(App::new(&common::config(tmp.path(), "")).unwrap());
    assert!(!app.reload_trust().unwrap(), "nothing changed yet");
    let second = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let v2 = v1.rotate(second.public_key(), now).unwrap();
    let new = write(&v2);
    assert!(app.reload_trust().unwrap());
    let (_, body, _) = call(&app, get("/.well-known/veritrain/keyset.json")).await;
    assert_eq!(body, new);
    // Putting the older key set back (a rollback) is refused; the newer one stays.
    std::fs::write(public.join("keyset.dsse.json"), &old).unwrap();
    let e = app.reload_trust().unwrap_err();
    assert!(e.to_string().contains("older"), "{e}");
    let (_, body, _) = call(&app, get("/.well-known/veritrain/keyset.json")).await;
    assert_eq!(body, new);
}
