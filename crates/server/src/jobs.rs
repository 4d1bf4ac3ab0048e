//! The jobs API: submit, list, read, follow, cancel, download, check.
//!
//! Every route authenticates first ([`crate::caller`]) and reads through a
//! [`Visibility`], so a developer sees only their own jobs and another
//! user's job is `404`. Uploads stream: the job request and the definition
//! (small) are read into memory, the model is staged on the scratch disk and
//! scanned, and the dataset, which must come last, streams straight into
//! the object store, hashed on the way. The cheap intake checks (request,
//! definition schema, `.keras` scan, model-fits-definition) run before the
//! dataset is read, so a bad job is refused with `422` and the gate's codes
//! before its largest part is uploaded. Nothing of a refused submission
//! stays in the store.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Semaphore;
use veritrain_auth::{Authenticator, Principal, dev::DevIssuer};
use veritrain_db::{
    CancelOutcome, Cursor, Database, InputObject, Job, JobId, JobState, NewJob, PageRequest,
    Visibility,
};
use veritrain_intake::definition::{Definition, DefinitionLimits};
use veritrain_intake::gate::{self, GateLimits};
use veritrain_pipeline::{BundleOptions, CheckStatus, JobRequest, verify_bundle};
use veritrain_store::{BundleIndex, JobObjects, ObjectKey, Store};

use crate::App;
use crate::caller::{authenticate, owner, read_visibility, write_visibility};
use crate::config::JobLimits;
use crate::error::{ApiError, from_db, from_store};
use crate::ratelimit::RateLimiter;

/// The input names the worker expects (the bundle's own file names).
const MODEL: &str = "model.keras";
const DEFINITION: &str = "definition.yaml";
const REQUEST: &str = "job.yaml";

/// How long presigned URLs stay valid.
const PRESIGN_TTL: Duration = Duration::from_secs(15 * 60);
/// How often an SSE stream looks for new events.
const SSE_POLL: Duration = Duration::from_millis(500);

/// The jobs API's state.
pub struct Jobs {
    /// The job database.
    pub db: Database,
    /// The object store.
    pub store: Store,
    /// Checks bearer tokens.
    pub auth: Authenticator,
    /// The in-process dev issuer (`[auth] dev = true`), which mints tokens
    /// at `POST /v1/dev/token`.
    pub dev: Option<DevIssuer>,
    /// Upload limits.
    pub limits: JobLimits,
    assembly: Arc<Semaphore>,
    per_user: RateLimiter<String>,
    failed_auth: RateLimiter<IpAddr>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("db", &self.db)
            .field("store", &self.store)
            .field("dev", &self.dev.is_some())
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// The jobs API over `db` and `store`, authenticating with `auth`.
    pub fn new(
        db: Database,
        store: Store,
        auth: Authenticator,
        dev: Option<DevIssuer>,
        limits: JobLimits,
    ) -> Self {
        let assembly = Arc::new(Semaphore::new(limits.assembly_concurrency));
        let per_user = RateLimiter::new(limits.requests_per_minute, limits.requests_burst);
        let failed_auth =
            RateLimiter::new(limits.failed_auth_per_minute, limits.failed_auth_per_minute);
        Jobs {
            db,
            store,
            auth,
            dev,
            limits,
            assembly,
            per_user,
            failed_auth,
        }
    }
}

/// The jobs routes.
pub(crate) fn routes(limits: &JobLimits) -> Router<Arc<App>> {
    let upload_limit = limits
        .max_dataset_bytes
        .saturating_add(limits.max_model_bytes)
        .saturating_add(limits.max_definition_bytes)
        .saturating_add(limits.max_request_bytes)
        .saturating_add(1 << 20);
    let upload_limit = usize::try_from(upload_limit).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/v1/jobs",
            post(submit)
                .get(list)
                .layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route("/v1/jobs/{id}", get(show))
        .route("/v1/jobs/{id}/events", get(events))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .route("/v1/jobs/{id}/artifacts", get(artifacts))
        .route("/v1/jobs/{id}/artifacts/{*path}", get(artifact))
        .route("/v1/jobs/{id}/bundle", get(bundle))
        .route("/v1/jobs/{id}/integrity", get(integrity))
        .route("/v1/me", get(me))
        .route("/v1/audit", get(crate::audit::list))
        .route("/v1/audit/verify", get(crate::audit::verify))
        .route("/v1/admin/sweep", post(sweep_now))
        .route("/v1/dev/token", post(dev_token))
}

pub(crate) fn jobs(app: &App) -> Result<&Jobs, ApiError> {
    app.jobs.as_ref().ok_or_else(|| {
        ApiError::client(
            StatusCode::NOT_FOUND,
            "api.not_found",
            "this node serves no jobs API",
        )
    })
}

/// The authenticated caller (for routes outside this module).
pub(crate) async fn authenticated(
    app: &App,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<Principal, ApiError> {
    caller(app, headers, peer).await.map(|(_, p)| p)
}

/// Authenticates the caller, with the two rate limits of the API: failed
/// sign-ins per client address (each one audited until the address is over
/// its budget, then `429 auth.rate_limited`), and requests per user
/// (`429 api.rate_limited`).
async fn caller<'a>(
    app: &'a App,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<(&'a Jobs, Principal), ApiError> {
    let jobs = jobs(app)?;
    let now = std::time::Instant::now();
    let p = match authenticate(&jobs.auth, &app.metrics, headers).await {
        Ok(p) => p,
        Err(refusal) => {
            if let Err(wait) = jobs.failed_auth.check(peer, now) {
                return Err(ApiError::busy(
                    StatusCode::TOO_MANY_REQUESTS,
                    "auth.rate_limited",
                    "too many failed sign-ins from this address; retry later",
                    wait.as_secs().max(1),
                ));
            }
            crate::audit::record(
                app,
                "auth.failure",
                None,
                None,
                json!({"code": refusal.code(), "ip": peer.to_string()}),
            )
            .await;
            return Err(refusal);
        }
    };
    if let Err(wait) = jobs.per_user.check(crate::audit::actor(&p), now) {
        app.metrics.rate_limited_users.fetch_add(1, Relaxed);
        return Err(ApiError::busy(
            StatusCode::TOO_MANY_REQUESTS,
            "api.rate_limited",
            "too many requests from this user; retry later",
            wait.as_secs().max(1),
        ));
    }
    Ok((jobs, p))
}

/// The client's address (the socket peer; no proxy header is trusted).
pub(crate) struct Peer(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::peer_address(&parts.extensions)))
    }
}

fn job_id(id: &str) -> Result<JobId, ApiError> {
    // A malformed id is a job that does not exist.
    id.parse().map_err(|_| not_found())
}

fn not_found() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "jobs.not_found", "no such job")
}

// ---------------------------------------------------------------- submit

/// `POST /v1/jobs`: a `multipart/form-data` form with the parts `job` (the
/// request, YAML or JSON), `definition`, `model` and, last, `dataset`.
async fn submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    req: Request,
) -> Result<Response, ApiError> {
    let (jobs, p) = caller(&app, &headers, peer).await?;
    if !p.can_submit() {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            "submitting jobs needs the developer role",
        ));
    }
    let owner = owner(&p)?;
    let active = jobs.db.active_jobs(&owner).await.map_err(|e| from_db(&e))?;
    if active >= u64::from(jobs.limits.max_active_per_owner) {
        return Err(ApiError::busy(
            StatusCode::TOO_MANY_REQUESTS,
            "jobs.too_many_active",
            format!(
                "you have {active} jobs queued or running; the limit is {}. Wait for one to finish or cancel one",
                jobs.limits.max_active_per_owner
            ),
            30,
        ));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_form {
        return Err(ApiError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "jobs.media_type",
            "send a multipart/form-data form with the parts job, definition, model and dataset (last)",
        ));
    }
    let form = Multipart::from_request(req, &())
        .await
        .map_err(|e| bad_form(e.body_text()))?;
    let id = JobId::new();
    let objects = JobObjects::new(&id.to_string()).map_err(|e| from_store(&e))?;
    let scratch = scratch_dir(&app, "veritrain-upload-")?;
    let mut stored = Vec::new();
    let received = receive(jobs, form, &objects, scratch.path(), &mut stored).await;
    let created = match received {
        Ok(upload) => jobs
            .db
            .create_job(NewJob {
                id,
                owner,
                request: upload.request,
                inputs: upload.inputs,
            })
            .await
            .map_err(|e| from_db(&e)),
        Err(e) => Err(e),
    };
    match created {
        Ok(job) => {
            app.metrics.jobs_submitted.fetch_add(1, Relaxed);
            let model = job
                .request
                .pointer("/model/name")
                .cloned()
                .unwrap_or_default();
            let inputs: Vec<Value> = job
                .inputs
                .iter()
                .map(|i| json!({"name": i.name, "sha256": i.sha256, "size": i.size}))
                .collect();
            crate::audit::record(
                &app,
                "job.submitted",
                Some(&p),
                Some(job.id),
                json!({"model": model, "inputs": inputs, "ip": peer.to_string()}),
            )
            .await;
            let mut response = (StatusCode::CREATED, axum::Json(job_json(&job))).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            Ok(response)
        }
        Err(e) => {
            // A refused submission leaves nothing behind.
            for key in stored {
                let _ = jobs.store.delete(&key).await;
            }
            if e.status() == StatusCode::UNPROCESSABLE_ENTITY {
                app.metrics.jobs_rejected.fetch_add(1, Relaxed);
            }
            if e.status().is_client_error() {
                crate::audit::record(
                    &app,
                    "job.refused",
                    Some(&p),
                    None,
                    json!({"code": e.code(), "status": e.status().as_u16(), "ip": peer.to_string()}),
                )
                .await;
            }
            Err(e)
        }
    }
}

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::client(StatusCode::BAD_REQUEST, "jobs.bad_form", message)
}

/// A refusal by one of the cheap intake checks, naming the form field.
fn rejected(field: &str, code: &'static str, message: String, findings: Value) -> ApiError {
    ApiError::client(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        .with_details(json!({"field": field, "findings": findings}))
}

fn too_large(field: &str, limit: u64) -> ApiError {
    ApiError::client(
        StatusCode::PAYLOAD_TOO_LARGE,
        "jobs.too_large",
        format!("the {field} is over the limit of {limit} bytes"),
    )
    .with_details(json!({"field": field, "limit": limit}))
}

struct Upload {
    request: Value,
    inputs: Vec<InputObject>,
}

async fn receive(
    jobs: &Jobs,
    mut form: Multipart,
    objects: &JobObjects,
    dir: &Path,
    stored: &mut Vec<ObjectKey>,
) -> Result<Upload, ApiError> {
    let limits = &jobs.limits;
    let mut request: Option<(Vec<u8>, JobRequest)> = None;
    let mut definition: Option<(Vec<u8>, Definition)> = None;
    let mut model: Option<(std::path::PathBuf, veritrain_intake::keras::KerasVerdict)> = None;
    let mut dataset: Option<InputObject> = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad_form(e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_owned();
        if dataset.is_some() {
            return Err(bad_form(format!(
                "unexpected part {name:?} after the dataset: the dataset is the last part"
            )));
        }
        match name.as_str() {
            "job" if request.is_none() => {
                let bytes = read_small(field, "job", limits.max_request_bytes).await?;
                let parsed = JobRequest::parse(&bytes).map_err(|e| {
                    let path = match &e {
                        veritrain_pipeline::Error::Request { path, .. } => path.clone(),
                        _ => "-".into(),
                    };
                    rejected(
                        "job",
                        e.code(),
                        e.to_string(),
                        json!([{"code": e.code(), "message": e.to_string(), "path": path}]),
                    )
                })?;
                request = Some((bytes, parsed));
            }
            "definition" if definition.is_none() => {
                let bytes = read_small(field, "definition", limits.max_definition_bytes).await?;
                let path = dir.join(DEFINITION);
                tokio::fs::write(&path, &bytes)
                    .await
                    .map_err(|e| ApiError::internal("jobs.scratch", e))?;
                let def =
                    gate::read_definition(&path, &DefinitionLimits::default()).map_err(|e| {
                        rejected(
                            "definition",
                            e.code(),
                            format!("the dataset definition is invalid: {e}"),
                            json!([{"code": e.code(), "message": e.to_string()}]),
                        )
                    })?;
                definition = Some((bytes, def));
            }
            "model" if model.is_none() => {
                let path = dir.join(MODEL);
                stage_file(field, &path, "model", limits.max_model_bytes).await?;
                let scan_path = path.clone();
                let verdict = tokio::task::spawn_blocking(move || {
                    gate::inspect_model(&scan_path, &GateLimits::default())
                })
                .await
                .map_err(|e| ApiError::internal("jobs.scan", e))?;
                if !verdict.accepted {
                    let first = verdict.findings.first();
                    return Err(rejected(
                        "model",
                        first.map_or("keras.rejected", |f| f.code),
                        format!(
                            "the model was refused by the intake scan: {}",
                            first.map_or_else(String::new, |f| f.to_string())
                        ),
                        serde_json::to_value(&verdict.findings).unwrap_or_default(),
                    ));
                }
                model = Some((path, verdict));
            }
            "dataset" => {
                let (Some(_), Some((_, def)), Some((_, verdict))) = (&request, &definition, &model)
                else {
                    return Err(ApiError::client(
                        StatusCode::BAD_REQUEST,
                        "jobs.form_order",
                        "send the parts job, definition and model before the dataset (the dataset is checked against them and streamed last)",
                    ));
                };
                let fits = gate::check_model_fits(verdict, def);
                if let Some(first) = fits.first() {
                    return Err(rejected(
                        "model",
                        first.code,
                        format!("the model does not fit the dataset definition: {first}"),
                        serde_json::to_value(&fits).unwrap_or_default(),
                    ));
                }
                let data_name = data_name(def)?;
                let key = objects.input(data_name).map_err(|e| from_store(&e))?;
                let info = jobs
                    .store
                    .put_stream(&key, field, limits.max_dataset_bytes)
                    .await
                    .map_err(|e| match e {
                        veritrain_store::Error::TooLarge { .. } => {
                            too_large("dataset", limits.max_dataset_bytes)
                        }
                        other => from_store(&other),
                    })?;
                stored.push(key.clone());
                dataset = Some(InputObject {
                    key: key.to_string(),
                    name: data_name.to_owned(),
                    size: info.size,
                    sha256: info.sha256_hex(),
                });
            }
            "job" | "definition" | "model" => {
                return Err(bad_form(format!("the part {name:?} appears twice")));
            }
            other => {
                return Err(bad_form(format!(
                    "unexpected part {other:?}: the form has the parts job, definition, model and dataset"
                )));
            }
        }
    }
    let (
        Some((request_bytes, request)),
        Some((definition_bytes, _)),
        Some((model_path, _)),
        Some(dataset),
    ) = (request, definition, model, dataset)
    else {
        return Err(ApiError::client(
            StatusCode::BAD_REQUEST,
            "jobs.missing_part",
            "the form needs the parts job, definition, model and dataset",
        ));
    };
    let mut inputs = vec![dataset];
    for (name, source) in [
        (MODEL, Source::File(&model_path)),
        (DEFINITION, Source::Bytes(definition_bytes)),
        (REQUEST, Source::Bytes(request_bytes)),
    ] {
        let key = objects.input(name).map_err(|e| from_store(&e))?;
        let info = match source {
            Source::File(path) => {
                jobs.store
                    .put_file(&key, path, limits.max_model_bytes)
                    .await
            }
            Source::Bytes(b) => jobs.store.put_bytes(&key, b, u64::MAX).await,
        }
        .map_err(|e| from_store(&e))?;
        stored.push(key.clone());
        inputs.push(InputObject {
            key: key.to_string(),
            name: name.to_owned(),
            size: info.size,
            sha256: info.sha256_hex(),
        });
    }
    let request = serde_json::to_value(&request).map_err(|e| ApiError::internal("jobs.json", e))?;
    Ok(Upload { request, inputs })
}

enum Source<'a> {
    File(&'a Path),
    Bytes(Vec<u8>),
}

fn data_name(def: &Definition) -> Result<&'static str, ApiError> {
    match def.data.type_name() {
        "csv" => Ok("data.csv"),
        "image" => Ok("data.zip"),
        "tfrecord" => Ok("data.tfrecord"),
        other => Err(rejected(
            "definition",
            "definition.unsupported_type",
            format!("datasets of type {other:?} are not supported"),
            json!([]),
        )),
    }
}

async fn read_small(
    mut field: axum::extract::multipart::Field<'_>,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| bad_form(e.body_text()))? {
        if (buf.len() as u64).saturating_add(chunk.len() as u64) > limit {
            return Err(too_large(what, limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn stage_file(
    mut field: axum::extract::multipart::Field<'_>,
    path: &Path,
    what: &str,
    limit: u64,
) -> Result<(), ApiError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal("jobs.scratch", e))?;
    let mut total = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|e| bad_form(e.body_text()))? {
        total = total.saturating_add(chunk.len() as u64);
        if total > limit {
            return Err(too_large(what, limit));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal("jobs.scratch", e))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal("jobs.scratch", e))?;
    Ok(())
}

// ---------------------------------------------------------------- reading

/// A job as the API shows it. Object keys and worker ids stay inside.
pub(crate) fn job_json(job: &Job) -> Value {
    let id = job.id.to_string();
    let duration = match (job.started_at, job.finished_at) {
        (Some(s), Some(f)) => Some((f - s).num_milliseconds() as f64 / 1000.0),
        (Some(s), None) => Some((Utc::now() - s).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    json!({
        "id": id,
        "state": job.state,
        "reason": job.reason,
        "owner": {"tenant": job.owner.tid(), "object_id": job.owner.oid()},
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "duration_secs": duration,
        "progress": job.progress,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "request": job.request,
        "inputs": job.inputs.iter().map(|i| json!({
            "name": i.name, "size": i.size, "sha256": i.sha256,
        })).collect::<Vec<_>>(),
        "links": {
            "self": format!("/v1/jobs/{id}"),
            "events": format!("/v1/jobs/{id}/events"),
            "artifacts": format!("/v1/jobs/{id}/artifacts"),
            "bundle": format!("/v1/jobs/{id}/bundle"),
            "integrity": format!("/v1/jobs/{id}/integrity"),
        },
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    after: Option<String>,
    /// `mine` limits an auditor's listing to their own jobs.
    #[serde(default)]
    scope: Option<String>,
}

/// `GET /v1/jobs?limit=&after=`: the caller's jobs (every job for auditors),
/// newest first; `next` is the cursor of the next page.
async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (jobs, p) = caller(&app, &headers, peer).await?;
    let Query(q) = query
        .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "jobs.bad_query", e.body_text()))?;
    let vis = match q.scope.as_deref() {
        None | Some("all") => read_visibility(&p)?,
        Some("mine") => Visibility::Owner(owner(&p)?),
        Some(other) => {
            return Err(ApiError::client(
                StatusCode::BAD_REQUEST,
                "jobs.bad_query",
                format!("scope {other:?} is not `all` or `mine`"),
            ));
        }
    };
    let after = q
        .after
        .as_deref()
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "jobs.bad_cursor", e.to_string()))?;
    let page = jobs
        .db
        .list_jobs(
            &vis,
            PageRequest {
                after,
                limit: q.limit.unwrap_or(20),
            },
        )
        .await
        .map_err(|e| from_db(&e))?;
    Ok(axum::Json(json!({
        "jobs": page.jobs.iter().map(job_json).collect::<Vec<_>>(),
        "next": page.next.map(|c| c.to_string()),
    }))
    .into_response())
}

async fn visible_job(
    app: &App,
    headers: &HeaderMap,
    peer: IpAddr,
    id: &str,
) -> Result<(Job, Principal), ApiError> {
    let (jobs, p) = caller(app, headers, peer).await?;
    let vis = read_visibility(&p)?;
    let job = jobs
        .db
        .get_job(job_id(id)?, &vis)
        .await
        .map_err(|e| from_db(&e))?;
    Ok((job, p))
}

/// `GET /v1/jobs/{id}`.
async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (job, _) = visible_job(&app, &headers, peer, &id).await?;
    Ok(axum::Json(job_json(&job)).into_response())
}

/// `GET /v1/me`: who the token says the caller is.
async fn me(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
) -> Result<Response, ApiError> {
    let (_, p) = caller(&app, &headers, peer).await?;
    Ok(axum::Json(json!({
        "tenant": p.tenant,
        "object_id": p.object_id,
        "display_name": p.display_name,
        "roles": p.roles,
    }))
    .into_response())
}

/// `POST /v1/jobs/{id}/cancel`: a queued job is cancelled at once, a
/// running one is stopped by its worker (202), a finished one is left
/// alone (409).
async fn cancel(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (jobs, p) = caller(&app, &headers, peer).await?;
    let id = job_id(&id)?;
    // An auditor may read another user's job but not cancel it; to them it
    // is then a job that exists (they can see it) but is not theirs: 403.
    let vis = write_visibility(&p)?;
    let outcome = match jobs.db.request_cancel(id, &vis).await {
        Ok(o) => o,
        Err(veritrain_db::Error::NotFound { .. }) if p.can_read_all() => {
            jobs.db
                .get_job(id, &Visibility::All)
                .await
                .map_err(|e| from_db(&e))?;
            return Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "auth.forbidden",
                "only the job's owner or an admin may cancel it",
            ));
        }
        Err(e) => return Err(from_db(&e)),
    };
    let (status, job) = match outcome {
        CancelOutcome::Cancelled(job) => (StatusCode::OK, job),
        CancelOutcome::Requested(job) => (StatusCode::ACCEPTED, job),
        CancelOutcome::AlreadyFinished(job) => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "jobs.already_finished",
                format!("the job already {}; it cannot be cancelled", job.state),
            ));
        }
    };
    crate::audit::record(
        &app,
        "job.cancel",
        Some(&p),
        Some(job.id),
        json!({"state": job.state, "ip": peer.to_string()}),
    )
    .await;
    Ok((status, axum::Json(job_json(&job))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    after: Option<u64>,
}

/// `GET /v1/jobs/{id}/events`: Server-Sent Events. Each event's `id` is its
/// sequence number (resume with `Last-Event-ID` or `?after=`), its `event`
/// the kind (`state`, `progress`, `log`, `step`, `failure`, `bundle`,
/// `integrity`, ...) and its `data` the JSON. Once the job has finished and
/// every event is sent, a last `end` event closes the stream.
async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (jobs, p) = caller(&app, &headers, peer).await?;
    let vis = read_visibility(&p)?;
    let id = job_id(&id)?;
    jobs.db.get_job(id, &vis).await.map_err(|e| from_db(&e))?;
    let Query(q) = query
        .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "jobs.bad_query", e.body_text()))?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .or(q.after)
        .unwrap_or(0);
    let db = jobs.db.clone();
    struct Cursor {
        db: Database,
        vis: Visibility,
        id: JobId,
        after: u64,
        pending: std::collections::VecDeque<veritrain_db::Event>,
        done: bool,
    }
    let start = Cursor {
        db,
        vis,
        id,
        after,
        pending: Default::default(),
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                c.after = e.seq;
                let event = SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.kind.clone())
                    .data(
                        json!({"seq": e.seq, "at": e.at, "kind": e.kind, "data": e.data})
                            .to_string(),
                    );
                return Some((Ok::<_, std::convert::Infallible>(event), c));
            }
            if c.done {
                return None;
            }
            // Read the state before the events: a job that is finished now
            // has written its last event already.
            let finished = match c.db.get_job(c.id, &c.vis).await {
                Ok(job) => job.state.is_terminal(),
                Err(_) => true,
            };
            match c.db.events_after(c.id, &c.vis, c.after, 200).await {
                Ok(events) if !events.is_empty() => {
                    c.pending.extend(events);
                    continue;
                }
                Ok(_) if finished => {
                    c.done = true;
                    let end = SseEvent::default().event("end").data("{}");
                    return Some((Ok(end), c));
                }
                Ok(_) => tokio::time::sleep(SSE_POLL).await,
                Err(_) => {
                    c.done = true;
                    let end = SseEvent::default()
                        .event("error")
                        .data(json!({"code": "jobs.events_unavailable"}).to_string());
                    return Some((Ok(end), c));
                }
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

// ---------------------------------------------------------------- artifacts

/// The files of a job: the stored bundle's index once the job succeeded,
/// else the uploads.
async fn files_of(jobs: &Jobs, job: &Job) -> Result<BundleIndex, ApiError> {
    match &job.bundle_key {
        Some(key) => {
            let key = ObjectKey::new(key.clone()).map_err(|e| from_store(&e))?;
            let bytes = jobs
                .store
                .get_bytes(&key, veritrain_store::jobs::MAX_INDEX_BYTES)
                .await
                .map_err(|e| from_store(&e))?;
            BundleIndex::parse(&bytes).map_err(|e| ApiError::internal("jobs.index", e))
        }
        None => Ok(BundleIndex::new(
            job.inputs
                .iter()
                .map(|i| veritrain_store::IndexEntry {
                    path: format!("inputs/{}", i.name),
                    key: i.key.clone(),
                    size: i.size,
                    sha256: i.sha256.clone(),
                })
                .collect(),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresignQuery {
    #[serde(default)]
    presign: bool,
}

/// `GET /v1/jobs/{id}/artifacts[?presign=true]`.
async fn artifacts(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<PresignQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (job, _) = visible_job(&app, &headers, peer, &id).await?;
    let jobs = jobs(&app)?;
    let Query(q) = query
        .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "jobs.bad_query", e.body_text()))?;
    let index = files_of(jobs, &job).await?;
    let mut out = Vec::with_capacity(index.files.len());
    for f in &index.files {
        let mut entry = json!({
            "name": f.path,
            "size": f.size,
            "sha256": f.sha256,
            "url": format!("/v1/jobs/{}/artifacts/{}", job.id, f.path),
        });
        if q.presign {
            let key = ObjectKey::new(f.key.clone()).map_err(|e| from_store(&e))?;
            let url = jobs
                .store
                .presigned_get_url(&key, PRESIGN_TTL)
                .await
                .map_err(|e| from_store(&e))?;
            if let (Some(url), Some(obj)) = (url, entry.as_object_mut()) {
                obj.insert("presigned_url".into(), Value::String(url.to_string()));
            }
        }
        out.push(entry);
    }
    Ok(axum::Json(json!({
        "job": job.id.to_string(),
        "complete": job.bundle_key.is_some(),
        "artifacts": out,
    }))
    .into_response())
}

/// `GET /v1/jobs/{id}/artifacts/{name}[?presign=true]`: the file, streamed;
/// with `presign=true`, a presigned S3 URL for it instead (`409
/// store.presign_unsupported` on local disk).
async fn artifact(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    UrlPath((id, path)): UrlPath<(String, String)>,
    query: Result<Query<PresignQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (job, who) = visible_job(&app, &headers, peer, &id).await?;
    let jobs = jobs(&app)?;
    let Query(q) = query
        .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "jobs.bad_query", e.body_text()))?;
    let index = files_of(jobs, &job).await?;
    // The name is looked up in the index, never joined into a key.
    let entry = index.get(&path).ok_or_else(|| {
        ApiError::client(
            StatusCode::NOT_FOUND,
            "jobs.no_such_artifact",
            format!(
                "the job has no artifact {path:?}; GET /v1/jobs/{}/artifacts lists them",
                job.id
            ),
        )
    })?;
    let key = ObjectKey::new(entry.key.clone()).map_err(|e| from_store(&e))?;
    crate::audit::record(
        &app,
        if q.presign {
            "artifact.presign"
        } else {
            "artifact.download"
        },
        Some(&who),
        Some(job.id),
        json!({"name": entry.path, "sha256": entry.sha256, "ip": peer.to_string()}),
    )
    .await;
    if q.presign {
        return match jobs
            .store
            .presigned_get_url(&key, PRESIGN_TTL)
            .await
            .map_err(|e| from_store(&e))?
        {
            Some(url) => Ok(axum::Json(json!({
                "url": url.to_string(),
                "expires_in_secs": PRESIGN_TTL.as_secs(),
                "sha256": entry.sha256,
            }))
            .into_response()),
            None => Err(ApiError::client(
                StatusCode::CONFLICT,
                "store.presign_unsupported",
                "this deployment stores objects on local disk, which has no presigned URLs; download through the API",
            )),
        };
    }
    let download = jobs
        .store
        .get_stream(&key)
        .await
        .map_err(|e| from_store(&e))?;
    let file_name = path.rsplit('/').next().unwrap_or("artifact").to_owned();
    let body = Body::from_stream(download.chunks);
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    if let Ok(v) = HeaderValue::from_str(&download.size.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("sha-256={}", hex_to_b64(&entry.sha256))) {
        h.insert("repr-digest", v);
    }
    Ok(response)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("json") | Some("link") | Some("layout") => "application/json",
        Some("yaml") => "application/yaml",
        Some("csv") => "text/csv",
        Some("log") => "text/plain; charset=utf-8",
        Some("pub") => "application/x-pem-file",
        Some("zip") | Some("keras") => "application/zip",
        _ => "application/octet-stream",
    }
}

fn hex_to_b64(hex_digest: &str) -> String {
    use base64::Engine as _;
    let bytes = hex::decode(hex_digest).unwrap_or_default();
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Downloads every file of a succeeded job into `dir`, re-hashing each on
/// the way. Returns the per-object findings.
async fn assemble(
    jobs: &Jobs,
    job: &Job,
    dir: &Path,
) -> Result<(BundleIndex, Vec<Value>, bool), ApiError> {
    if job.state != JobState::Succeeded || job.bundle_key.is_none() {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "jobs.no_bundle",
            format!(
                "the job is {}; only a succeeded job has a bundle",
                job.state
            ),
        ));
    }
    let index = files_of(jobs, job).await?;
    let mut objects = Vec::with_capacity(index.files.len());
    let mut all_ok = true;
    for f in &index.files {
        let target = dir.join(&f.path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| ApiError::internal("jobs.scratch", e))?;
        }
        let key = ObjectKey::new(f.key.clone()).map_err(|e| from_store(&e))?;
        // An upload is also checked against the digest measured at upload.
        let uploaded = f
            .path
            .strip_prefix("inputs/")
            .and_then(|n| job.inputs.iter().find(|i| i.name == n))
            .map(|i| i.sha256.clone());
        let (status, found) = match jobs.store.download_to_file(&key, &target).await {
            Ok(info) => {
                let found = info.sha256_hex();
                let matches = found == f.sha256 && uploaded.as_ref().is_none_or(|u| *u == found);
                (if matches { "ok" } else { "mismatch" }, Some(found))
            }
            Err(veritrain_store::Error::NotFound { .. }) => ("missing", None),
            Err(veritrain_store::Error::SizeMismatch { .. }) => ("mismatch", None),
            Err(e) => return Err(from_store(&e)),
        };
        all_ok &= status == "ok";
        objects.push(json!({
            "name": f.path,
            "status": status,
            "recorded_sha256": f.sha256,
            "found_sha256": found,
            "size": f.size,
        }));
    }
    Ok((index, objects, all_ok))
}

/// `GET /v1/jobs/{id}/bundle`: the bundle as one ZIP (`veritrain verify`
/// takes it directly).
async fn bundle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (job, who) = visible_job(&app, &headers, peer, &id).await?;
    let jobs = jobs(&app)?;
    let _slot = acquire(jobs)?;
    let work = scratch_dir(&app, "veritrain-bundle-")?;
    let dir = work.path().join(format!("veritrain-bundle-{}", job.id));
    let (_, objects, ok) = assemble(jobs, &job, &dir).await?;
    if !ok {
        app.metrics.integrity_failures.fetch_add(1, Relaxed);
        crate::audit::record(
            &app,
            "integrity.alert",
            Some(&who),
            Some(job.id),
            json!({"passed": false, "by": "bundle_download", "objects": objects}),
        )
        .await;
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "jobs.integrity_failed",
            "a stored object of this bundle no longer matches its recorded digest; GET the integrity report",
        )
        .with_details(json!({"objects": objects})));
    }
    crate::audit::record(
        &app,
        "bundle.download",
        Some(&who),
        Some(job.id),
        json!({"ip": peer.to_string()}),
    )
    .await;
    let zip = work.path().join("bundle.zip");
    let (d, z) = (dir.clone(), zip.clone());
    tokio::task::spawn_blocking(move || veritrain_pipeline::archive::pack(&d, &z))
        .await
        .map_err(|e| ApiError::internal("jobs.pack", e))?
        .map_err(|e| ApiError::internal("jobs.pack", e))?;
    let file = tokio::fs::File::open(&zip)
        .await
        .map_err(|e| ApiError::internal("jobs.pack", e))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal("jobs.pack", e))?
        .len();
    // The temporary directory lives as long as the body streams.
    let chunks = futures_util::stream::unfold((file, work), |(mut file, work)| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), (file, work)))
            }
            Err(e) => Some((Err(e), (file, work))),
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"veritrain-bundle-{}.zip\"",
        job.id
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// A private directory in the scratch space, removed when dropped.
fn scratch_dir(app: &App, prefix: &str) -> Result<tempfile::TempDir, ApiError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&app.scratch)
        .map_err(|e| ApiError::internal("jobs.scratch", e))
}

fn acquire(jobs: &Jobs) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    Arc::clone(&jobs.assembly).try_acquire_owned().map_err(|_| {
        ApiError::busy(
            StatusCode::SERVICE_UNAVAILABLE,
            "jobs.busy",
            "every bundle assembly slot is busy; retry shortly",
            5,
        )
    })
}

/// `GET /v1/jobs/{id}/integrity`: every stored object of the job re-hashed
/// and compared with the digest recorded when it was stored, then the
/// assembled bundle verified against the operator's root key and latest
/// key set, exactly as `veritrain verify` would: a stored object changed
/// since is named with what was expected and found. The result is also
/// appended to the job's events (`integrity`), so the last check's time
/// and verdict can be shown.
async fn integrity(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (job, who) = visible_job(&app, &headers, peer, &id).await?;
    let jobs = jobs(&app)?;
    let _slot = acquire(jobs)?;
    let (_, text) = check_integrity(&app, jobs, &job, &crate::audit::actor(&who), "api").await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// Checks one succeeded job's stored objects against its signed bundle:
/// records the result on the job's events and in the audit log (an
/// `integrity.alert` when it fails, with the metric and the webhook), and
/// returns whether it passed and the report as JSON text (server paths
/// replaced).
pub(crate) async fn check_integrity(
    app: &App,
    jobs: &Jobs,
    job: &Job,
    by: &str,
    via: &str,
) -> Result<(bool, String), ApiError> {
    let work = scratch_dir(app, "veritrain-integrity-")?;
    let dir = work.path().join("bundle");
    let checked_at = Utc::now();
    let (_, objects, objects_ok) = assemble(jobs, job, &dir).await?;
    let trust = app.trust();
    let d = dir.clone();
    let mut report = tokio::task::spawn_blocking(move || {
        verify_bundle(
            &d,
            &BundleOptions {
                root: Some(trust.root.clone()),
                artifacts: Vec::new(),
                keyset: Some(trust.keyset_bytes.clone()),
            },
        )
    })
    .await
    .map_err(|e| ApiError::internal("jobs.verify", e))?;
    report.bundle = std::path::PathBuf::from(format!("job {}", job.id));
    let passed = objects_ok && report.passed();
    let mut verification =
        serde_json::to_value(&report).map_err(|e| ApiError::internal("jobs.json", e))?;
    if let Some(obj) = verification.as_object_mut() {
        obj.insert("passed".into(), report.passed().into());
    }
    let mismatches: Vec<&Value> = objects.iter().filter(|o| o["status"] != "ok").collect();
    // Checks that could not run (an earlier one failed) are listed apart:
    // they found nothing wrong themselves.
    let failed_checks: Vec<Value> = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .map(|c| json!({"id": c.id, "failures": c.failures}))
        .collect();
    let not_run_checks: Vec<Value> = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::NotRun)
        .map(|c| json!({"id": c.id, "needs": c.needs}))
        .collect();
    let summary = json!({
        "checked_at": checked_at,
        "passed": passed,
        "mismatches": mismatches,
        "failed_checks": failed_checks,
        "not_run_checks": not_run_checks,
        "by": via,
    });
    let _ = jobs.db.append_event(job.id, "integrity", &summary).await;
    let kind = if passed {
        "job.integrity"
    } else {
        "integrity.alert"
    };
    if let Err(e) = jobs
        .db
        .audit(
            kind,
            Some(by).filter(|b| !b.is_empty()),
            Some(job.id),
            &summary,
        )
        .await
    {
        app.metrics.audit_failures.fetch_add(1, Relaxed);
        eprintln!(
            "veritrain-server: audit entry {kind} not written [{}]: {e}",
            e.code()
        );
    }
    if !passed {
        app.metrics.integrity_failures.fetch_add(1, Relaxed);
        alert(app, jobs, job, &summary).await;
    }
    let body = json!({
        "job": job.id.to_string(),
        "checked_at": checked_at,
        "passed": passed,
        "objects": objects,
        "verification": verification,
    });
    // Server paths never leave the server.
    let text = body
        .to_string()
        .replace(&crate::json_escaped(work.path()), "stored");
    Ok((passed, text))
}

/// Tells the operator about a tampered job: the log line, and the webhook
/// when one is configured (a JSON POST; a failure is logged, not retried).
async fn alert(app: &App, jobs: &Jobs, job: &Job, summary: &Value) {
    eprintln!(
        "veritrain-server: INTEGRITY ALERT: a stored object of job {} no longer matches its signed bundle",
        job.id
    );
    let Some(url) = &jobs.limits.alert_webhook else {
        return;
    };
    let body =
        json!({"alert": "veritrain.integrity", "job": job.id.to_string(), "summary": summary});
    let sent = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map(|c| c.post(url).json(&body).send());
    let result = match sent {
        Ok(fut) => fut
            .await
            .and_then(reqwest::Response::error_for_status)
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        app.metrics.alert_webhook_failures.fetch_add(1, Relaxed);
        eprintln!("veritrain-server: the alert webhook failed: {e}");
    }
}

/// What one tamper sweep found.
#[derive(Debug, Default, serde::Serialize)]
pub struct SweepReport {
    /// Succeeded jobs checked.
    pub checked: u64,
    /// Jobs whose stored objects no longer match their signed bundle.
    pub alerts: Vec<String>,
    /// Jobs that could not be checked (store or database faults), with the code.
    pub errors: Vec<(String, String)>,
}

/// Checks every succeeded job once (`[jobs] tamper_sweep_secs` schedules
/// it; `POST /v1/admin/sweep` runs it now).
pub async fn sweep(app: &App) -> Result<SweepReport, ApiError> {
    let jobs = jobs(app)?;
    let mut report = SweepReport::default();
    let mut page = PageRequest::first(veritrain_db::MAX_PAGE_SIZE);
    loop {
        let got = jobs
            .db
            .list_jobs(&Visibility::All, page)
            .await
            .map_err(|e| from_db(&e))?;
        for job in got.jobs.iter().filter(|j| j.state == JobState::Succeeded) {
            report.checked += 1;
            match check_integrity(app, jobs, job, "", "sweep").await {
                Ok((true, _)) => {}
                Ok((false, _)) => report.alerts.push(job.id.to_string()),
                Err(e) => report
                    .errors
                    .push((job.id.to_string(), e.code().to_owned())),
            }
        }
        match got.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    Ok(report)
}

/// `POST /v1/admin/sweep` (admin): run the tamper sweep now.
async fn sweep_now(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
) -> Result<Response, ApiError> {
    let (_, p) = caller(&app, &headers, peer).await?;
    if !p.is_admin() {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            "running the tamper sweep is for admins",
        ));
    }
    let report = sweep(&app).await?;
    Ok(axum::Json(report).into_response())
}

// ---------------------------------------------------------------- dev sign-in

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    subject: String,
    #[serde(default)]
    roles: Vec<veritrain_auth::Role>,
}

/// `POST /v1/dev/token {"subject", "roles"}`: a token from the in-process dev
/// issuer. Exists only with `[auth] dev = true`, which the configuration
/// allows only on a loopback address; answers only loopback peers.
async fn dev_token(State(app): State<Arc<App>>, req: Request) -> Result<Response, ApiError> {
    let jobs = jobs(&app)?;
    let Some(dev) = &jobs.dev else {
        return Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "api.not_found",
            "dev sign-in is off on this server",
        ));
    };
    if !crate::client_ip(&req).is_loopback() {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "auth.dev_remote",
            "dev sign-in answers only this machine",
        ));
    }
    let axum::Json(body) = axum::Json::<DevTokenRequest>::from_request(req, &())
        .await
        .map_err(|e| {
            ApiError::client(StatusCode::BAD_REQUEST, "auth.bad_request", e.body_text())
        })?;
    let subject = body.subject.trim();
    if subject.is_empty()
        || subject.len() > 64
        || !subject
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(ApiError::client(
            StatusCode::BAD_REQUEST,
            "auth.bad_request",
            "subject must be 1 to 64 characters of letters, digits, . _ - @",
        ));
    }
    let roles = if body.roles.is_empty() {
        vec![veritrain_auth::Role::Developer]
    } else {
        body.roles
    };
    let lifetime = Duration::from_secs(8 * 3600);
    let token = dev
        .mint(subject, &roles, lifetime)
        .map_err(|e| ApiError::internal("auth.dev_mint", e))?;
    Ok(axum::Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "subject": subject,
        "roles": roles,
    }))
    .into_response())
}
