//! The web UI's routes through the real router: the shell and its assets
//! with their content types and security headers, the allow-list of asset
//! names, and `GET /v1/ui/config` for a verification node, the dev
//! default, and an OIDC deployment. The pages themselves are tested in a
//! real browser in the slow tier (`tests/e2e_ui.rs`, `tests/ui/run.mjs`).

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;
use veritrain_auth::dev::DevIssuer;
use veritrain_auth::{Authenticator, OidcConfig};
use veritrain_db::Database;
use veritrain_server::config::JobLimits;
use veritrain_server::{App, Jobs, ServerConfig, router};
use veritrain_store::Store;

fn config(dir: &Path, extra: &str) -> ServerConfig {
    common::trust_dir(&dir.join("public"));
    common::config(dir, extra)
}

/// A node with the jobs API, authenticating with `auth`.
async fn with_jobs(dir: &Path, extra: &str, auth: OidcConfig, dev: Option<DevIssuer>) -> Arc<App> {
    let db = Database::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("jobs.db").display()
    ))
    .await
    .unwrap();
    let store = Store::local(dir.join("objects")).unwrap();
    let app = App::new(&config(dir, extra)).unwrap().with_jobs(Jobs::new(
        db,
        store,
        Authenticator::new(auth).unwrap(),
        dev,
        JobLimits {
            max_model_bytes: 1000,
            ..JobLimits::default()
        },
    ));
    Arc::new(app)
}

async fn get(app: &Arc<App>, path: &str) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
    let mut req = Request::get(path).body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))));
    let res = router(Arc::clone(app)).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, body, headers)
}

fn header<'a>(h: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_shell_and_assets_have_their_content_types_and_a_strict_csp() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(App::new(&config(dir.path(), "")).unwrap());
    for (path, ty) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/charts.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let (status, body, h) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&h, "content-type"), ty, "{path}");
        assert!(!body.is_empty(), "{path}");
        let csp = header(&h, "content-security-policy");
        // No inline script and no other origin for scripts: an injected
        // string cannot run.
        assert!(
            csp.starts_with("default-src 'self'; script-src 'self';"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert_eq!(header(&h, "x-content-type-options"), "nosniff");
        assert_eq!(header(&h, "cache-control"), "no-cache");
    }
    let (_, html, _) = get(&app, "/").await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains(r#"<script type="module" src="/ui/app.js">"#));
    // Every script is a file: the page has no inline one the CSP would block.
    assert_eq!(html.matches("<script").count(), 1);
}

#[tokio::test]
async fn unknown_ui_files_are_404_and_nothing_is_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(App::new(&config(dir.path(), "")).unwrap());
    for path in [
        "/ui/nope.js",
        "/ui/index.html.bak",
        "/ui/..%2F..%2FCargo.toml",
        "/ui/%2e%2e/src/ui.rs",
    ] {
        let (status, body, h) = get(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            header(&h, "content-type").starts_with("application/json"),
            "{path}"
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["error"]["code"].as_str().unwrap().ends_with("not_found"),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn ui_config_of_a_verification_node_offers_no_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(App::new(&config(dir.path(), "")).unwrap());
    let (status, body, h) = get(&app, "/v1/ui/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "cache-control"), "no-store");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["jobs"], false);
    assert_eq!(v["dev"], false);
    assert!(v["oidc"].is_null());
    assert!(v["verify_max_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn ui_config_in_dev_mode_offers_the_dev_sign_in_and_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevIssuer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let auth = dev.oidc_config();
    let app = with_jobs(dir.path(), "", auth, Some(dev)).await;
    let (status, body, _) = get(&app, "/v1/ui/config").await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["jobs"], true);
    assert_eq!(v["dev"], true);
    assert!(v["oidc"].is_null(), "{v}");
    // The submit form checks sizes against the server's own limits.
    assert_eq!(v["limits"]["max_model_bytes"], 1000);
    assert!(v["limits"]["max_dataset_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn ui_config_with_oidc_names_the_public_client_and_the_csp_allows_the_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let mut auth = OidcConfig::generic("https://login.example.com/tenant/v2.0", "api://veritrain");
    auth.roles.developer.roles = vec!["dev".into()];
    let app = with_jobs(
        dir.path(),
        "[ui]\noidc_client_id = \"ui-client\"\noidc_scopes = \"openid api://veritrain/Artifacts.Write\"\n",
        auth,
        None,
    )
    .await;
    let (_, body, _) = get(&app, "/v1/ui/config").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["dev"], false);
    assert_eq!(v["oidc"]["client_id"], "ui-client");
    assert_eq!(v["oidc"]["issuer"], "https://login.example.com/tenant/v2.0");
    assert_eq!(
        v["oidc"]["discovery_url"],
        "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"
    );
    assert_eq!(
        v["oidc"]["scopes"],
        "openid api://veritrain/Artifacts.Write"
    );
    // The browser fetches discovery and redeems the code at the issuer.
    let (_, _, h) = get(&app, "/").await;
    assert!(
        header(&h, "content-security-policy")
            .contains("connect-src 'self' https://login.example.com;"),
        "{}",
        header(&h, "content-security-policy")
    );
}

#[test]
fn an_unknown_ui_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    common::trust_dir(&dir.path().join("public"));
    let err = ServerConfig::from_toml(&format!(
        "trust_dir = {:?}\n[ui]\noidc_clientid = \"x\"\n",
        dir.path().join("public").to_str().unwrap()
    ))
    .unwrap_err();
    assert!(err.to_string().contains("oidc_clientid"), "{err}");
}
