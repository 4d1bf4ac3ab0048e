//! Veritrain's HTTP API (`veritrain serve`): the jobs API for developers
//! and auditors, the public trust material, bundle verification over HTTP,
//! health and metrics.
//!
//! Where it sits: an API node holds no private key. It reads the key
//! directory's `public/` folder only (checked at start-up, and re-read when
//! it changes so a rotation is served without a restart). Uploads go to the
//! object store and jobs to the database; workers (`veritrain_worker`, in
//! this process for the embedded default, or separate `veritrain worker`
//! processes) train and sign. `POST /v1/verify` and
//! `GET /v1/jobs/{id}/integrity` run the same verifier as `veritrain verify`
//! ([`veritrain_pipeline::verify`]), pinned to the operator's root key and
//! judged with the operator's latest key set.
//!
//! Routes (`docs/server.md` has the details; `/openapi.json` describes them):
//!
//! | method | path | auth | what |
//! | --- | --- | --- | --- |
//! | GET | `/healthz`, `/readyz`, `/metrics`, `/openapi.json` | none | operations |
//! | GET | `/.well-known/veritrain/{root.pub,keyset.json,layout}` | none | trust material |
//! | POST | `/v1/verify` | none; rate-limited, size-bounded | verify an uploaded bundle ZIP |
//! | POST, GET | `/v1/jobs` | developer; any role | submit; list (own, or all for auditors) |
//! | GET | `/v1/jobs/{id}[/events,/artifacts[/{name}],/bundle,/integrity]` | owner, auditor, admin | read |
//! | POST | `/v1/jobs/{id}/cancel` | owner, admin | cancel |
//! | GET | `/v1/me` | any role | the caller's identity and roles |
//! | POST | `/v1/dev/token` | loopback, dev mode only | a dev token |
//! | GET | `/`, `/ui/*`, `/v1/ui/config` | none | the web UI (`src/ui.rs`, `docs/ui.md`) |

#![recursion_limit = "256"]

mod audit;
mod caller;
pub mod config;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod trust;
mod ui;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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
pub use jobs::Jobs;
pub use metrics::Metrics;
pub use trust::Trust;

/// Renders extra Prometheus text (an embedded worker's counters).
pub type MetricsSource = Box<dyn Fn() -> String + Send + Sync>;

/// Everything a request handler may use.
pub struct App {
    trust: RwLock<Arc<Trust>>,
    trust_dir: PathBuf,
    /// Verification limits.
    pub limits: VerifyLimits,
    /// Where uploads are staged.
    pub scratch: PathBuf,
    /// Counters.
    pub metrics: Metrics,
    /// The jobs API; `None` on a verification-only node.
    pub jobs: Option<Jobs>,
    extra_metrics: Vec<MetricsSource>,
    rate: ratelimit::RateLimiter,
    slots: Arc<Semaphore>,
    /// What the web UI needs to know (`GET /v1/ui/config`).
    pub ui: config::UiConfig,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("trust_dir", &self.trust_dir)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl App {
    /// The application state for `config`, with its trust material loaded
    /// and checked, serving no jobs API.
    ///
    /// # Errors
    /// [`ConfigError`] when the trust material is missing, invalid, or next
    /// to a private key.
    pub fn new(config: &ServerConfig) -> Result<App, ConfigError> {
        let trust_dir = config.trust_dir();
        let trust = Trust::load(&trust_dir)?;
        let scratch = config.scratch_dir();
        std::fs::create_dir_all(&scratch).map_err(|source| ConfigError::Io {
            path: scratch.clone(),
            source,
        })?;
        Ok(App {
            trust: RwLock::new(Arc::new(trust)),
            trust_dir,
            limits: config.verify.clone(),
            scratch,
            metrics: Metrics::default(),
            jobs: None,
            extra_metrics: Vec::new(),
            rate: ratelimit::RateLimiter::new(config.verify.per_minute, config.verify.burst),
            slots: Arc::new(Semaphore::new(config.verify.concurrency)),
            ui: config.ui.clone(),
        })
    }

    /// This state serving the jobs API too.
    pub fn with_jobs(mut self, jobs: Jobs) -> App {
        self.jobs = Some(jobs);
        self
    }

    /// This state with more counters on `/metrics`.
    pub fn with_metrics(mut self, source: MetricsSource) -> App {
        self.extra_metrics.push(source);
        self
    }

    /// The trust material served and verified against now.
    pub fn trust(&self) -> Arc<Trust> {
        match self.trust.read() {
            Ok(t) => Arc::clone(&t),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Re-reads the trust directory; a changed key set or layout (a
    /// rotation, a revocation) replaces the served one once it verifies.
    /// Returns whether anything changed.
    ///
    /// # Errors
    /// The new material does not load or verify; the old one stays.
    pub fn reload_trust(&self) -> Result<bool, ConfigError> {
        let fresh = Trust::load(&self.trust_dir)?;
        let current = self.trust();
        if fresh.root_pem != current.root_pem {
            return Err(ConfigError::Invalid(
                "the root key in the trust directory changed; restart the server to pin a new root"
                    .into(),
            ));
        }
        if fresh.keyset_bytes == current.keyset_bytes && fresh.layout_bytes == current.layout_bytes
        {
            return Ok(false);
        }
        if fresh.keyset.version < current.keyset.version {
            return Err(ConfigError::Invalid(format!(
                "the trust directory's key set (version {}) is older than the one served ({})",
                fresh.keyset.version, current.keyset.version
            )));
        }
        match self.trust.write() {
            Ok(mut t) => *t = Arc::new(fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
        }
        Ok(true)
    }
}

/// The API's router.
pub fn router(app: Arc<App>) -> Router {
    // The body limit is enforced while streaming (413); axum's own limit
    // is raised to match so that it does not cut uploads short first.
    let body_limit =
        usize::try_from(app.limits.max_bytes.saturating_add(1 << 20)).unwrap_or(usize::MAX);
    let mut router = Router::new()
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
        );
    if let Some(jobs) = &app.jobs {
        router = router.merge(jobs::routes(&jobs.limits));
    }
    router = router.merge(ui::routes());
    router.fallback(not_found).with_state(app)
}

/// Serves `app` on `listener` until Ctrl-C, SIGTERM or `stop`.
///
/// # Errors
/// I/O errors of the listener, as text with their code.
pub async fn serve_app(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let reload = Arc::clone(&app);
    let reloader = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            match reload.reload_trust() {
                Ok(true) => {
                    let t = reload.trust();
                    eprintln!(
                        "veritrain serve: trust material reloaded (key set version {})",
                        t.keyset.version
                    );
                    audit::record(
                        &reload,
                        "keys.keyset_changed",
                        None,
                        None,
                        serde_json::json!({"keyset_version": t.keyset.version, "root": t.root.keyid()}),
                    )
                    .await;
                }
                Ok(false) => {}
                Err(e) => eprintln!(
                    "veritrain serve: trust material not reloaded [{}]: {e}",
                    e.code()
                ),
            }
        }
    });
    let sweeper = app
        .jobs
        .as_ref()
        .map(|j| j.limits.tamper_sweep_secs)
        .filter(|secs| *secs > 0)
        .map(|secs| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    match jobs::sweep(&app).await {
                        Ok(r) if !r.alerts.is_empty() => eprintln!(
                            "veritrain serve: tamper sweep: {} job(s) checked, ALERTS for {:?}",
                            r.checked, r.alerts
                        ),
                        Ok(_) => {}
                        Err(e) => eprintln!("veritrain serve: tamper sweep failed [{}]", e.code()),
                    }
                }
            })
        });
    let result = axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            () = shutdown() => {},
            () = stop => {},
        }
    })
    .await
    .map_err(|e| format!("[server.io] {e}"));
    reloader.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    result
}

/// Serve a verification-only node for `config` until Ctrl-C or SIGTERM.
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
    let trust = app.trust();
    eprintln!(
        "veritrain serve: listening on http://{local} (root key {}, key set version {})",
        trust.root.keyid(),
        trust.keyset.version
    );
    serve_app(app, listener, std::future::pending()).await
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
    let trust = app.trust();
    let database = match &app.jobs {
        Some(jobs) => Some(jobs.db.queue_depth().await.is_ok()),
        None => None,
    };
    let ready = writable && database != Some(false);
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "trust": {"root": trust.root.keyid(), "keyset_version": trust.keyset.version},
        "scratch_writable": writable,
        "database": database,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `/metrics`: on a node with the jobs API, for admins (a Prometheus
/// scraper sends a service principal's bearer token), unless
/// `[jobs] public_metrics = true`; on a verification-only node, public.
async fn metrics(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    jobs::Peer(peer): jobs::Peer,
) -> Result<Response, ApiError> {
    if let Some(j) = &app.jobs
        && !j.limits.public_metrics
    {
        let p = jobs::authenticated(&app, &headers, peer).await?;
        if !p.is_admin() {
            return Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "auth.forbidden",
                "the operations metrics are for admins",
            ));
        }
    }
    let mut text = app.metrics.render();
    if let Some(jobs) = &app.jobs {
        match (jobs.db.counts_by_state().await, jobs.db.queue_depth().await) {
            (Ok(counts), Ok(depth)) => text.push_str(&metrics::render_jobs(&counts, depth)),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!(
                    "veritrain serve: /metrics cannot read the job counts [{}]: {e}",
                    e.code()
                );
            }
        }
    }
    for source in &app.extra_metrics {
        text.push_str(&source());
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn openapi() -> Response {
    axum::Json(openapi::document()).into_response()
}

fn bytes(content_type: &'static str, body: &[u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.to_vec()).into_response()
}

async fn root_pub(State(app): State<Arc<App>>) -> Response {
    bytes("application/x-pem-file", &app.trust().root_pem)
}

async fn keyset(State(app): State<Arc<App>>) -> Response {
    bytes("application/json", &app.trust().keyset_bytes)
}

async fn layout(State(app): State<Arc<App>>) -> Response {
    bytes("application/json", &app.trust().layout_bytes)
}

/// The client's address: the socket peer (no proxy headers are trusted).
pub(crate) fn client_ip(req: &Request) -> IpAddr {
    peer_address(req.extensions())
}

/// The socket peer recorded in a request's extensions.
pub(crate) fn peer_address(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// `POST /v1/verify`: a bundle ZIP as the body (`application/zip`), or a
/// `multipart/form-data` form with a `bundle` part and optional `artifact`
/// parts (files to match against the bundle by digest).
async fn verify(State(app): State<Arc<App>>, req: Request) -> Result<Response, ApiError> {
    let ip = client_ip(&req);
    if let Err(wait) = app.rate.check(ip, Instant::now()) {
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

    let trust = app.trust();
    let root = dir.path().to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let bundle = root.join("bundle");
        veritrain_pipeline::archive::unpack(&upload.bundle, &bundle)?;
        let report = verify_bundle(
            &bundle,
            &BundleOptions {
                root: Some(trust.root.clone()),
                artifacts: upload.artifacts,
                keyset: Some(trust.keyset_bytes.clone()),
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
    audit::record(
        &app,
        "verify.public",
        None,
        None,
        serde_json::json!({"ip": ip.to_string(), "passed": report.passed(), "job_id": report.job_id}),
    )
    .await;
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

pub(crate) fn json_escaped(path: &Path) -> String {
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
