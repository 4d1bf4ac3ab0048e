//! Veritrain's HTTP API (`veritrain serve`): the public trust material,
//! bundle verification over HTTP, health and metrics.
//!
//! Where it sits: an API node holds no private key (the key directory's
//! `public/` folder only, checked at start-up). `POST /v1/verify` runs the
//! same verifier as `veritrain verify` ([`veritrain_pipeline::verify`]),
//! pinned to the operator's root key and judged with the operator's latest
//! key set, so a bundle signed by a key revoked since is refused. The jobs
//! API (upload, queue, workers, storage, OIDC) is not built yet (issue 7).
//!
//! Routes:
//!
//! | method | path | auth | what |
//! | --- | --- | --- | --- |
//! | GET | `/healthz` | none | the process is up |
//! | GET | `/readyz` | none | trust material loaded, scratch directory writable |
//! | GET | `/metrics` | none | Prometheus counters |
//! | GET | `/openapi.json` | none | OpenAPI 3.1 description |
//! | GET | `/.well-known/veritrain/root.pub` | none | the root public key |
//! | GET | `/.well-known/veritrain/keyset.json` | none | the root-signed key set |
//! | GET | `/.well-known/veritrain/layout` | none | the current in-toto layout |
//! | POST | `/v1/verify` | none; rate-limited, size-bounded | verify an uploaded bundle ZIP |

pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod trust;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Semaphore;
use veritrain_pipeline::{BundleOptions, HeldArtifact, verify_bundle};

pub use config::{ConfigError, ServerConfig, VerifyLimits};
pub use error::ApiError;
pub use metrics::Metrics;
pub use trust::Trust;

/// Everything a request handler may use.
#[derive(Debug)]
pub struct App {
    /// The trust material served and verified against.
    pub trust: Trust,
    /// Verification limits.
    pub limits: VerifyLimits,
    /// Where uploads are staged.
    pub scratch: PathBuf,
    /// Counters.
    pub metrics: Metrics,
    rate: ratelimit::RateLimiter,
    slots: Arc<Semaphore>,
}

impl App {
    /// The application state for `config`, with its trust material loaded
    /// and checked.
    ///
    /// # Errors
    /// [`ConfigError`] when the trust material is missing, invalid, or next
    /// to a private key.
    pub fn new(config: &ServerConfig) -> Result<App, ConfigError> {
        let trust = Trust::load(&config.trust_dir)?;
        let scratch = config
            .scratch_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        Ok(App {
            trust,
            limits: config.verify.clone(),
            scratch,
            metrics: Metrics::default(),
            rate: ratelimit::RateLimiter::new(config.verify.per_minute, config.verify.burst),
            slots: Arc::new(Semaphore::new(config.verify.concurrency)),
        })
    }
}

/// The API's router.
pub fn router(app: Arc<App>) -> Router {
    // The body limit is enforced while streaming (413); axum's own limit
    // is raised to match so that it does not cut uploads short first.
    let body_limit =
        usize::try_from(app.limits.max_bytes.saturating_add(1 << 20)).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/.well-known/veritrain/root.pub", get(root_pub))
        .route("/.well-known/veritrain/keyset.json", get(keyset))
        .route("/.well-known/veritrain/layout", get(layout))
        .route(
            "/v1/verify",
            post(verify).layer(DefaultBodyLimit::max(body_limit)),
        )
        .fallback(not_found)
        .with_state(app)
}

/// Serve `config` until Ctrl-C or SIGTERM.
///
/// # Errors
/// Configuration and bind errors, as text with their code.
pub async fn serve(config: ServerConfig) -> Result<(), String> {
    let app = Arc::new(App::new(&config).map_err(|e| format!("[{}] {e}", e.code()))?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("[server.bind] cannot listen on {}: {e}", config.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("[server.bind] {e}"))?;
    eprintln!(
        "veritrain serve: listening on http://{local} (root key {}, key set version {})",
        app.trust.root.keyid(),
        app.trust.keyset.version
    );
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| format!("[server.io] {e}"))
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn not_found() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "api.not_found", "no such endpoint")
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let writable = tempfile::tempdir_in(&app.scratch).is_ok();
    let body = serde_json::json!({
        "status": if writable { "ready" } else { "not_ready" },
        "trust": {"root": app.trust.root.keyid(), "keyset_version": app.trust.keyset.version},
        "scratch_writable": writable,
    });
    let status = if writable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    axum::Json(openapi::document()).into_response()
}

fn bytes(content_type: &'static str, body: &[u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.to_vec()).into_response()
}

async fn root_pub(State(app): State<Arc<App>>) -> Response {
    bytes("application/x-pem-file", &app.trust.root_pem)
}

async fn keyset(State(app): State<Arc<App>>) -> Response {
    bytes("application/json", &app.trust.keyset_bytes)
}

async fn layout(State(app): State<Arc<App>>) -> Response {
    bytes("application/json", &app.trust.layout_bytes)
}

/// The client's address: the socket peer (no proxy headers are trusted).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// `POST /v1/verify`: a bundle ZIP as the body (`application/zip`), or a
/// `multipart/form-data` form with a `bundle` part and optional `artifact`
/// parts (files to match against the bundle by digest).
async fn verify(State(app): State<Arc<App>>, req: Request) -> Result<Response, ApiError> {
    if let Err(wait) = app.rate.check(client_ip(&req), Instant::now()) {
        app.metrics
            .rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(ApiError::busy(
            StatusCode::TOO_MANY_REQUESTS,
            "verify.rate_limited",
            "too many verifications from this address; retry later",
            wait.as_secs().max(1),
        ));
    }
    let Ok(_slot) = Arc::clone(&app.slots).try_acquire_owned() else {
        app.metrics
            .busy
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(ApiError::busy(
            StatusCode::SERVICE_UNAVAILABLE,
            "verify.busy",
            "every verification slot is busy; retry shortly",
            5,
        ));
    };
    let dir = tempfile::Builder::new()
        .prefix("veritrain-verify-")
        .tempdir_in(&app.scratch)
        .map_err(scratch_error)?;
    let upload = receive(&app, req, dir.path()).await?;

    let app2 = Arc::clone(&app);
    let root = dir.path().to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let bundle = root.join("bundle");
        veritrain_pipeline::archive::unpack(&upload.bundle, &bundle)?;
        let report = verify_bundle(
            &bundle,
            &BundleOptions {
                root: Some(app2.trust.root.clone()),
                artifacts: upload.artifacts,
                keyset: Some(app2.trust.keyset_bytes.clone()),
            },
        );
        Ok::<_, veritrain_pipeline::Error>(report)
    })
    .await
    .map_err(|e| ApiError::internal("verify.task", e))?;
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            app.metrics
                .refused_bad_archive
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                format!("not a readable bundle archive: {e}"),
            ));
        }
    };
    app.metrics
        .verifications
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if !report.passed() {
        app.metrics
            .verification_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    report.bundle = PathBuf::from("upload");
    let mut body =
        serde_json::to_value(&report).map_err(|e| ApiError::internal("verify.json", e))?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("passed".into(), report.passed().into());
    }
    // Server paths never leave the server: artifacts are reported by the
    // file names the client gave, and any message that still quotes the
    // staging directory (an I/O error, say) is rewritten.
    let text = body
        .to_string()
        .replace(&json_escaped(dir.path()), "upload");
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

fn json_escaped(path: &Path) -> String {
    let s = serde_json::to_string(&path.to_string_lossy()).unwrap_or_default();
    s.trim_matches('"').to_owned()
}

/// What a verification upload staged.
struct Upload {
    bundle: PathBuf,
    /// Staged files, named by the client's (sanitised) file names.
    artifacts: Vec<HeldArtifact>,
}

async fn receive(app: &App, req: Request, dir: &Path) -> Result<Upload, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut budget = app.limits.max_bytes;
    let bundle = dir.join("bundle.zip");
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, &()).await.map_err(|e| {
            ApiError::client(StatusCode::BAD_REQUEST, "verify.bad_form", e.body_text())
        })?;
        let mut have_bundle = false;
        let mut artifacts = Vec::new();
        while let Some(mut field) = form.next_field().await.map_err(|e| {
            ApiError::client(StatusCode::BAD_REQUEST, "verify.bad_form", e.body_text())
        })? {
            let (target, artifact_name) = match field.name() {
                Some("bundle") if !have_bundle => (bundle.clone(), None),
                Some("artifact") if artifacts.len() < 8 => {
                    let name = safe_name(field.file_name().unwrap_or("artifact"));
                    (
                        dir.join(format!("artifact-{}", artifacts.len())),
                        Some(name),
                    )
                }
                other => {
                    return Err(ApiError::client(
                        StatusCode::BAD_REQUEST,
                        "verify.bad_form",
                        format!(
                            "unexpected form part {:?}: send one `bundle` and at most 8 `artifact` parts",
                            other.unwrap_or("")
                        ),
                    ));
                }
            };
            let mut file = tokio::fs::File::create(&target)
                .await
                .map_err(scratch_error)?;
            loop {
                let chunk = field.chunk().await.map_err(|e| {
                    ApiError::client(StatusCode::BAD_REQUEST, "verify.bad_form", e.body_text())
                })?;
                let Some(chunk) = chunk else { break };
                spend(app, &mut budget, chunk.len())?;
                file.write_all(&chunk).await.map_err(scratch_error)?;
            }
            file.flush().await.map_err(scratch_error)?;
            match artifact_name {
                None => have_bundle = true,
                Some(name) => artifacts.push(HeldArtifact { path: target, name }),
            }
        }
        if !have_bundle {
            return Err(ApiError::client(
                StatusCode::BAD_REQUEST,
                "verify.no_bundle",
                "the form has no `bundle` part",
            ));
        }
        Ok(Upload { bundle, artifacts })
    } else if content_type.starts_with("application/zip")
        || content_type.starts_with("application/octet-stream")
    {
        let mut file = tokio::fs::File::create(&bundle)
            .await
            .map_err(scratch_error)?;
        let mut stream = req.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::client(StatusCode::BAD_REQUEST, "verify.bad_body", e.to_string())
            })?;
            spend(app, &mut budget, chunk.len())?;
            file.write_all(&chunk).await.map_err(scratch_error)?;
        }
        file.flush().await.map_err(scratch_error)?;
        Ok(Upload {
            bundle,
            artifacts: Vec::new(),
        })
    } else {
        Err(ApiError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "verify.media_type",
            "send the bundle ZIP as application/zip, or a multipart/form-data form with a `bundle` part",
        ))
    }
}

/// Staging an upload failed on the server's side.
fn scratch_error(e: std::io::Error) -> ApiError {
    ApiError::internal("verify.scratch", e)
}

fn spend(app: &App, budget: &mut u64, n: usize) -> Result<(), ApiError> {
    match budget.checked_sub(n as u64) {
        Some(left) => {
            *budget = left;
            Ok(())
        }
        None => {
            app.metrics
                .refused_too_large
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(ApiError::client(
                StatusCode::PAYLOAD_TOO_LARGE,
                "verify.too_large",
                format!(
                    "the upload is over the limit of {} bytes",
                    app.limits.max_bytes
                ),
            ))
        }
    }
}

/// A client file name reduced to a safe display name (it is never used as
/// a path).
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(100)
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        format!("artifact{cleaned}")
    } else {
        cleaned
    }
}
