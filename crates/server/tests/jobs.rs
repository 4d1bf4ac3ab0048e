//! The jobs API through the real router (no socket) with a real SQLite
//! database, the local object store and the dev OIDC issuer (discovery and
//! JWKS over loopback HTTP, ES256 tokens): authentication, roles and owner
//! isolation, uploads and every refusal, listing, events, cancel,
//! artifacts, metrics, and submissions under concurrency. A job trained for
//! real, its bundle and its integrity check are in the slow tier
//! (`tests/e2e_service.rs`).
//!
//! The same tests run against PostgreSQL and S3 when
//! `VERITRAIN_TEST_API_BACKEND=postgres-s3` (`scripts/test` runs them both
//! ways): a fresh schema and a fresh bucket per test.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;
use veritrain_auth::dev::DevIssuer;
use veritrain_auth::{Authenticator, Role};
use veritrain_db::Database;
use veritrain_server::config::JobLimits;
use veritrain_server::{App, Jobs, ServerConfig, router};
use veritrain_store::{ObjectKey, Store};

// ---------------------------------------------------------------- harness

struct Env {
    app: Arc<App>,
    dev: Arc<DevIssuer>,
    store: Store,
    db: Database,
    _dir: tempfile::TempDir,
}

fn example(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    std::fs::read(dir.join(name)).unwrap()
}

async fn env_with(limits: JobLimits) -> Env {
    let dir = tempfile::tempdir().unwrap();
    common::trust_dir(&dir.path().join("public"));
    let config = ServerConfig::from_toml(&format!(
        "trust_dir = {:?}\nscratch_dir = {:?}\n",
        dir.path().join("public").to_str().unwrap(),
        dir.path().to_str().unwrap()
    ))
    .unwrap();
    let (db, store) = if postgres_s3() {
        backends_postgres_s3().await
    } else {
        let db = Database::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("jobs.db").display()
        ))
        .await
        .unwrap();
        (db, Store::local(dir.path().join("objects")).unwrap())
    };
    let dev = DevIssuer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let auth = Authenticator::new(dev.oidc_config()).unwrap();
    // The issuer's own copy for minting; the app's copy answers /v1/dev/token.
    let app_dev = DevIssuer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let app = App::new(&config).unwrap().with_jobs(Jobs::new(
        db.clone(),
        store.clone(),
        auth,
        Some(app_dev),
        limits,
    ));
    Env {
        app: Arc::new(app),
        dev: Arc::new(dev),
        store,
        db,
        _dir: dir,
    }
}

/// Whether this run tests the PostgreSQL + S3 backends.
fn postgres_s3() -> bool {
    match std::env::var("VERITRAIN_TEST_API_BACKEND").as_deref() {
        Ok("postgres-s3") => true,
        Ok("sqlite-local") | Err(_) => false,
        Ok(other) => {
            panic!("VERITRAIN_TEST_API_BACKEND={other:?}: use sqlite-local or postgres-s3")
        }
    }
}

/// A fresh schema in the test PostgreSQL and a fresh bucket on the test S3
/// server (s3s-fs: a bucket is a directory under its root).
async fn backends_postgres_s3() -> (Database, Store) {
    let var = |n: &str| {
        std::env::var(n).unwrap_or_else(|_| {
            panic!("{n} is not set: VERITRAIN_TEST_API_BACKEND=postgres-s3 needs scripts/start-postgres and scripts/start-s3")
        })
    };
    let base = var("VERITRAIN_TEST_DATABASE_URL");
    let tag = veritrain_db::JobId::new().as_uuid().simple().to_string();
    let schema = format!("api_{tag}");
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let db = Database::connect(&format!("{base}{sep}options[search_path]={schema}"))
        .await
        .unwrap();
    let bucket = format!("api-{}", &tag[..16]);
    std::fs::create_dir_all(std::path::Path::new(&var("VERITRAIN_TEST_S3_ROOT")).join(&bucket))
        .unwrap();
    let store = Store::s3(veritrain_store::S3Config {
        endpoint: var("VERITRAIN_TEST_S3_ENDPOINT").parse().unwrap(),
        bucket,
        region: var("VERITRAIN_TEST_S3_REGION"),
        access_key_id: var("VERITRAIN_TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: veritrain_store::SecretString::new(var(
            "VERITRAIN_TEST_S3_SECRET_ACCESS_KEY",
        )),
        allow_http: true,
    })
    .unwrap();
    (db, store)
}

async fn env() -> Env {
    env_with(JobLimits::default()).await
}

impl Env {
    fn token(&self, who: &str, roles: &[Role]) -> String {
        self.dev.mint(who, roles, Duration::from_secs(600)).unwrap()
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
        self.call_from(req, [127, 0, 0, 1]).await
    }

    async fn call_from(
        &self,
        mut req: Request<Body>,
        ip: [u8; 4],
    ) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 5000))));
        let res = router(Arc::clone(&self.app)).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, body, headers)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let (s, b, _) = self.call(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let (s, b, _) = self.call(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn submit(&self, token: &str, parts: &[(&str, Vec<u8>)]) -> (StatusCode, Value) {
        let (ct, body) = form(parts);
        let req = Request::post("/v1/jobs")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap();
        let (s, b, _) = self.call(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    /// Every object key under `jobs/`.
    async fn stored(&self) -> Vec<String> {
        self.store
            .list(Some(&ObjectKey::new("jobs").unwrap()))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key.to_string())
            .collect()
    }
}

fn quickstart() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("job", example("job.yaml")),
        ("definition", example("definition.yaml")),
        ("model", example("model.keras")),
        ("dataset", example("data.csv")),
    ]
}

fn form(parts: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "veritrain-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

const DEV: &[Role] = &[Role::Developer];

// ---------------------------------------------------------------- auth

#[tokio::test]
async fn every_jobs_route_needs_a_valid_token() {
    let env = env().await;
    for (method, path) in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/00000000-0000-4000-8000-000000000000"),
        (
            "GET",
            "/v1/jobs/00000000-0000-4000-8000-000000000000/events",
        ),
        (
            "POST",
            "/v1/jobs/00000000-0000-4000-8000-000000000000/cancel",
        ),
        (
            "GET",
            "/v1/jobs/00000000-0000-4000-8000-000000000000/artifacts",
        ),
        (
            "GET",
            "/v1/jobs/00000000-0000-4000-8000-000000000000/bundle",
        ),
        (
            "GET",
            "/v1/jobs/00000000-0000-4000-8000-000000000000/integrity",
        ),
        ("GET", "/v1/me"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let (status, body, headers) = env.call(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code(&v), "auth.missing", "{method} {path}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    // A forged token: signed by a key the issuer does not publish.
    let other = DevIssuer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let forged = other.mint("mallory", DEV, Duration::from_secs(60)).unwrap();
    let (status, v) = env.get("/v1/jobs", &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Refused on its key id (the issuer publishes no such key) before its
    // foreign `iss` is even looked at.
    assert_eq!(code(&v), "auth.unknown_key");
    let (status, v) = env.get("/v1/jobs", "not.a.jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(code(&v).starts_with("auth."));
    // Counted; the metrics are for admins.
    let (status, _, _) = env
        .call(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = env
        .call(
            Request::get("/metrics")
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", env.token("alice", DEV)),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, body, _) = env
        .call(
            Request::get("/metrics")
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", env.token("ada", &[Role::Admin])),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("veritrain_auth_failures_total 12"), "{text}");
    // A valid token is accepted and says who it is.
    let (status, me) = env.get("/v1/me", &env.token("alice", DEV)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["object_id"], "alice");
    assert_eq!(me["roles"], serde_json::json!(["developer"]));
}

#[tokio::test]
async fn only_developers_submit() {
    let env = env().await;
    let auditor = env.token("audrey", &[Role::Auditor]);
    let (status, v) = env.submit(&auditor, &quickstart()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&v), "auth.forbidden");
    assert!(env.stored().await.is_empty());
}

// ---------------------------------------------------------------- submit

#[tokio::test]
async fn a_submission_is_stored_hashed_and_queued() {
    let env = env().await;
    let alice = env.token("alice", DEV);
    let (status, job) = env.submit(&alice, &quickstart()).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["state"], "queued");
    assert_eq!(job["request"]["model"]["name"], "quickstart-classifier");
    let id = job["id"].as_str().unwrap();
    let inputs: Vec<(String, String)> = job["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().into(),
                i["sha256"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut expected = vec![
        ("data.csv".to_owned(), sha256(&example("data.csv"))),
        ("model.keras".to_owned(), sha256(&example("model.keras"))),
        (
            "definition.yaml".to_owned(),
            sha256(&example("definition.yaml")),
        ),
        ("job.yaml".to_owned(), sha256(&example("job.yaml"))),
    ];
    let mut got = inputs.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    let mut stored = env.stored().await;
    stored.sort();
    assert_eq!(
        stored,
        [
            format!("jobs/{id}/inputs/data.csv"),
            format!("jobs/{id}/inputs/definition.yaml"),
            format!("jobs/{id}/inputs/job.yaml"),
            format!("jobs/{id}/inputs/model.keras"),
        ]
    );
    // The stored request is the user's bytes, unchanged.
    let req = env
        .store
        .get_bytes(
            &ObjectKey::new(format!("jobs/{id}/inputs/job.yaml")).unwrap(),
            1 << 20,
        )
        .await
        .unwrap();
    assert_eq!(&req[..], &example("job.yaml")[..]);
    let (status, again) = env.get(&format!("/v1/jobs/{id}"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], id);
}

#[tokio::test]
async fn bad_submissions_are_refused_with_codes_and_leave_nothing() {
    let env = env_with(JobLimits {
        max_model_bytes: 4 << 20,
        max_dataset_bytes: 1000,
        ..JobLimits::default()
    })
    .await;
    let alice = env.token("alice", DEV);
    let with = |name: &str, bytes: &[u8]| {
        let mut parts = quickstart();
        for p in &mut parts {
            if p.0 == name {
                p.1 = bytes.to_vec();
            }
        }
        parts
    };
    /// The form, the status and code expected, and the field named.
    type Case<'a> = (
        Vec<(&'a str, Vec<u8>)>,
        StatusCode,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        // A misspelt request key is named with its path.
        (
            with("job", b"model: {name: m, version: '1', licence: MIT}\n"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "job.request_invalid",
            Some("job"),
        ),
        (
            with("definition", b"version: 1\ndata: {type: parquet}\n"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
            Some("definition"),
        ),
        // Not a .keras archive at all.
        (
            with("model", b"GIF89a not a zip"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
            Some("model"),
        ),
        // Over the dataset limit (1000 bytes here).
        (
            with("dataset", &vec![b'1'; 5000]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "jobs.too_large",
            Some("dataset"),
        ),
        // The dataset must come last.
        (
            vec![
                ("job", example("job.yaml")),
                ("dataset", example("data.csv")),
                ("definition", example("definition.yaml")),
                ("model", example("model.keras")),
            ],
            StatusCode::BAD_REQUEST,
            "jobs.form_order",
            None,
        ),
        (
            vec![("job", example("job.yaml"))],
            StatusCode::BAD_REQUEST,
            "jobs.missing_part",
            None,
        ),
        (
            {
                let mut p = quickstart();
                p.insert(0, ("../../etc/passwd", b"x".to_vec()));
                p
            },
            StatusCode::BAD_REQUEST,
            "jobs.bad_form",
            None,
        ),
    ];
    for (i, (parts, status, want, field)) in cases.into_iter().enumerate() {
        let (got, v) = env.submit(&alice, &parts).await;
        assert_eq!(got, status, "case {i}: {v}");
        if !want.is_empty() {
            assert_eq!(code(&v), want, "case {i}: {v}");
        } else {
            assert!(!code(&v).is_empty(), "case {i}: {v}");
        }
        if let Some(f) = field {
            assert_eq!(v["error"]["details"]["field"], f, "case {i}: {v}");
        }
        assert!(
            env.stored().await.is_empty(),
            "case {i} left objects behind"
        );
    }
    let (_, list) = env.get("/v1/jobs", &alice).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0);
    // Not a form at all.
    let req = Request::post("/v1/jobs")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, _) = env.call(req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

// ---------------------------------------------------------------- isolation

#[tokio::test]
async fn developers_see_only_their_jobs_auditors_see_all() {
    let env = env().await;
    let alice = env.token("alice", DEV);
    let bob = env.token("bob", DEV);
    let audrey = env.token("audrey", &[Role::Auditor]);
    let admin = env.token("ada", &[Role::Admin]);
    let (_, a) = env.submit(&alice, &quickstart()).await;
    let (_, b) = env.submit(&bob, &quickstart()).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    let ids = |v: &Value| -> Vec<String> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&env.get("/v1/jobs", &alice).await.1), [a]);
    assert_eq!(ids(&env.get("/v1/jobs", &bob).await.1), [b]);
    let all = ids(&env.get("/v1/jobs", &audrey).await.1);
    assert_eq!(all.len(), 2);
    assert_eq!(
        ids(&env.get("/v1/jobs?scope=mine", &audrey).await.1).len(),
        0
    );

    // Another user's job does not exist, on every route.
    for path in [
        format!("/v1/jobs/{a}"),
        format!("/v1/jobs/{a}/events"),
        format!("/v1/jobs/{a}/artifacts"),
        format!("/v1/jobs/{a}/artifacts/inputs/model.keras"),
        format!("/v1/jobs/{a}/bundle"),
        format!("/v1/jobs/{a}/integrity"),
    ] {
        let (status, v) = env.get(&path, &bob).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&v), "jobs.not_found", "{path}");
    }
    let (status, _) = env.post(&format!("/v1/jobs/{a}/cancel"), &bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Auditors read every job but do not cancel other users' jobs.
    assert_eq!(
        env.get(&format!("/v1/jobs/{a}"), &audrey).await.0,
        StatusCode::OK
    );
    let (status, v) = env.post(&format!("/v1/jobs/{a}/cancel"), &audrey).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    // The owner cancels a queued job at once; twice is a conflict.
    let (status, v) = env.post(&format!("/v1/jobs/{a}/cancel"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["reason"]["code"], "job.cancelled");
    let (status, v) = env.post(&format!("/v1/jobs/{a}/cancel"), &alice).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&v), "jobs.already_finished");
    // Admins may cancel anyone's.
    let (status, _) = env.post(&format!("/v1/jobs/{b}/cancel"), &admin).await;
    assert_eq!(status, StatusCode::OK);
    // Malformed ids are just jobs that do not exist.
    let (status, _) = env.get("/v1/jobs/..%2F..%2Fetc", &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn listing_pages_through_every_job_once() {
    let env = env().await;
    let alice = env.token("alice", DEV);
    let owner = veritrain_db::Owner::new(env.dev_issuer_tenant(), "alice").unwrap();
    let mut made = Vec::new();
    for _ in 0..25 {
        let job = env
            .db
            .create_job(veritrain_db::NewJob {
                id: veritrain_db::JobId::new(),
                owner: owner.clone(),
                request: serde_json::json!({}),
                inputs: vec![],
            })
            .await
            .unwrap();
        made.push(job.id.to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/jobs?limit=7".to_owned();
    loop {
        let (status, page) = env.get(&path, &alice).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let jobs = page["jobs"].as_array().unwrap();
        assert!(jobs.len() <= 7);
        seen.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/jobs?limit=7&after={next}"),
            None => break,
        }
    }
    let mut a = seen.clone();
    a.sort();
    a.dedup();
    assert_eq!(a.len(), 25, "a job was skipped or repeated");
    made.sort();
    assert_eq!(a, made);
    let (status, v) = env.get("/v1/jobs?after=garbage", &alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&v), "jobs.bad_cursor");
    let (status, _) = env.get("/v1/jobs?bogus=1", &alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

impl Env {
    /// The tenant the dev issuer's tokens map to (its issuer URL).
    fn dev_issuer_tenant(&self) -> String {
        self.dev.issuer().to_owned()
    }
}

// ---------------------------------------------------------------- events, artifacts

#[tokio::test]
async fn events_stream_as_sse_and_end_when_the_job_is_finished() {
    let env = env().await;
    let alice = env.token("alice", DEV);
    let (_, job) = env.submit(&alice, &quickstart()).await;
    let id = job["id"].as_str().unwrap();
    env.post(&format!("/v1/jobs/{id}/cancel"), &alice).await;
    let req = Request::get(format!("/v1/jobs/{id}/events"))
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let (status, body, headers) = tokio::time::timeout(Duration::from_secs(10), env.call(req))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("event: state\n"), "{text}");
    assert!(text.contains("\"to\":\"queued\""), "{text}");
    assert!(text.contains("\"to\":\"cancelled\""), "{text}");
    assert!(text.trim_end().ends_with("event: end\ndata: {}"), "{text}");
    // Resuming after the last id sends only the end.
    let req = Request::get(format!("/v1/jobs/{id}/events"))
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header("last-event-id", "2")
        .body(Body::empty())
        .unwrap();
    let (_, body, _) = env.call(req).await;
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("event: state"), "{text}");
}

#[tokio::test]
async fn artifacts_of_a_queued_job_are_its_uploads() {
    let env = env().await;
    let alice = env.token("alice", DEV);
    let (_, job) = env.submit(&alice, &quickstart()).await;
    let id = job["id"].as_str().unwrap();
    let (status, list) = env.get(&format!("/v1/jobs/{id}/artifacts"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["complete"], false);
    let names: Vec<&str> = list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "inputs/data.csv",
            "inputs/definition.yaml",
            "inputs/job.yaml",
            "inputs/model.keras"
        ]
    );
    let req = Request::get(format!("/v1/jobs/{id}/artifacts/inputs/model.keras"))
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let (status, body, headers) = env.call(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, example("model.keras"));
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("model.keras")
    );
    // Names are looked up, never joined into a path.
    for bad in [
        "inputs/../inputs/model.keras",
        "..%2F..%2Fjobs.db",
        "outputs/model.keras",
    ] {
        let (status, v) = env
            .get(&format!("/v1/jobs/{id}/artifacts/{bad}"), &alice)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}: {v}");
    }
    // S3 presigns a URL; local disk has none.
    let (status, v) = env
        .get(
            &format!("/v1/jobs/{id}/artifacts/inputs/model.keras?presign=true"),
            &alice,
        )
        .await;
    if postgres_s3() {
        assert_eq!(status, StatusCode::OK, "{v}");
        assert!(
            v["url"].as_str().unwrap().contains("X-Amz-Signature"),
            "{v}"
        );
        assert_eq!(v["sha256"], sha256(&example("model.keras")));
    } else {
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(code(&v), "store.presign_unsupported");
    }
    // No bundle before the job succeeds.
    let (status, v) = env.get(&format!("/v1/jobs/{id}/bundle"), &alice).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&v), "jobs.no_bundle");
    let (status, v) = env.get(&format!("/v1/jobs/{id}/integrity"), &alice).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&v), "jobs.no_bundle");
}

// ---------------------------------------------------------------- operations

#[tokio::test]
async fn metrics_count_jobs_by_state_and_the_queue() {
    let env = env().await;
    let alice = env.token("alice", DEV);
    env.submit(&alice, &quickstart()).await;
    let admin = env.token("ada", &[Role::Admin]);
    let (_, body, _) = env
        .call(
            Request::get("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("veritrain_jobs{state=\"queued\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("veritrain_jobs{state=\"succeeded\"} 0"),
        "{text}"
    );
    assert!(text.contains("veritrain_queue_depth 1"), "{text}");
    assert!(text.contains("veritrain_jobs_submitted_total 1"), "{text}");
}

#[tokio::test]
async fn dev_sign_in_answers_only_loopback() {
    let env = env().await;
    let req = || {
        Request::post("/v1/dev/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"subject":"carol","roles":["developer","auditor"]}"#,
            ))
            .unwrap()
    };
    let (status, _, _) = env.call_from(req(), [192, 0, 2, 9]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = env.call(req()).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["token_type"], "Bearer");
    let bad = Request::post("/v1/dev/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"subject":"../x"}"#))
        .unwrap();
    assert_eq!(env.call(bad).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_and_reads_all_succeed() {
    let env = Arc::new(
        env_with(JobLimits {
            max_active_per_owner: 50,
            ..JobLimits::default()
        })
        .await,
    );
    let mut tasks = Vec::new();
    for n in 0..51 {
        let env = Arc::clone(&env);
        tasks.push(tokio::spawn(async move {
            let token = env.token(&format!("user{}", n % 3), DEV);
            let (status, job) = env.submit(&token, &quickstart()).await;
            assert_eq!(status, StatusCode::CREATED, "{job}");
            let id = job["id"].as_str().unwrap().to_owned();
            let (status, _) = env.get(&format!("/v1/jobs/{id}"), &token).await;
            assert_eq!(status, StatusCode::OK);
            let (status, _) = env.get("/v1/jobs", &token).await;
            assert_eq!(status, StatusCode::OK);
            id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 51);
    assert_eq!(env.stored().await.len(), 51 * 4);
    for user in 0..3 {
        let (_, list) = env
            .get(
                "/v1/jobs?limit=100",
                &env.token(&format!("user{user}"), DEV),
            )
            .await;
        assert_eq!(list["jobs"].as_array().unwrap().len(), 17);
    }
}

#[tokio::test]
async fn too_many_active_jobs_are_refused() {
    let env = env_with(JobLimits {
        max_active_per_owner: 2,
        ..JobLimits::default()
    })
    .await;
    let alice = env.token("alice", DEV);
    assert_eq!(
        env.submit(&alice, &quickstart()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        env.submit(&alice, &quickstart()).await.0,
        StatusCode::CREATED
    );
    let (status, v) = env.submit(&alice, &quickstart()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&v), "jobs.too_many_active");
    // Another user is not affected.
    let bob = env.token("bob", DEV);
    assert_eq!(env.submit(&bob, &quickstart()).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn openapi_describes_routes_that_exist() {
    let env = env().await;
    let (_, body, _) = env
        .call(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/events",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/{id}/artifacts",
        "/v1/jobs/{id}/artifacts/{name}",
        "/v1/jobs/{id}/bundle",
        "/v1/jobs/{id}/integrity",
        "/v1/me",
        "/v1/dev/token",
    ] {
        assert!(paths.contains_key(p), "{p} is not described");
    }
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{name}", "outputs/model.keras");
        for method in item.as_object().unwrap().keys() {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let (status, body, _) = env.call(req).await;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && code(&v) != "api.not_found",
                "{method} {path} is described but not routed ({status})"
            );
        }
    }
}

#[tokio::test]
async fn a_store_outage_answers_503_and_creates_no_job() {
    let env = env().await;
    // The same app, but its store is an S3 server nobody answers.
    let down = Store::s3(veritrain_store::S3Config {
        endpoint: "http://127.0.0.1:9".parse().unwrap(),
        bucket: "b".into(),
        region: "us-east-1".into(),
        access_key_id: "k".into(),
        secret_access_key: veritrain_store::SecretString::new("s"),
        allow_http: true,
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    common::trust_dir(&dir.path().join("public"));
    let config = ServerConfig::from_toml(&format!(
        "trust_dir = {:?}\nscratch_dir = {:?}\n",
        dir.path().join("public").to_str().unwrap(),
        dir.path().to_str().unwrap()
    ))
    .unwrap();
    let auth = Authenticator::new(env.dev.oidc_config()).unwrap();
    let app = Arc::new(App::new(&config).unwrap().with_jobs(Jobs::new(
        env.db.clone(),
        down,
        auth,
        None,
        JobLimits::default(),
    )));
    let (ct, body) = form(&quickstart());
    let mut req = Request::post("/v1/jobs")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", env.token("alice", DEV)),
        )
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))));
    let res = router(app).oneshot(req).await.unwrap();
    let status = res.status();
    let retry = res.headers().get(header::RETRY_AFTER).cloned();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(code(&v), "store.unavailable");
    assert!(retry.is_some());
    let (_, list) = env.get("/v1/jobs", &env.token("alice", DEV)).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0);
}

// ---------------------------------------------------------------- audit, rate limits

fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn attacks_are_refused_and_audited_and_the_chain_holds() {
    let env = env().await;
    let alice = env.token("alice", DEV);
    let ada = env.token("ada", &[Role::Admin]);
    let (_, job) = env.submit(&alice, &quickstart()).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let claims = serde_json::json!({"iss": env.dev.issuer(), "aud": "veritrain-dev", "sub": "mallory",
        "exp": 4_000_000_000u64, "roles": ["admin"]});
    let other = DevIssuer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let attacks = [
        ("malformed", "not-a-token".to_owned()),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
                b64(&claims)
            ),
        ),
        (
            "HS256 key confusion",
            format!(
                "{}.{}.c2lnbmF0dXJl",
                b64(&serde_json::json!({"alg": "HS256", "typ": "JWT"})),
                b64(&claims)
            ),
        ),
        (
            "foreign key",
            other
                .mint("mallory", &[Role::Admin], Duration::from_secs(60))
                .unwrap(),
        ),
    ];
    for (what, token) in &attacks {
        let (status, v) = env.get("/v1/jobs", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {v}");
    }
    // Another user's job does not exist for them.
    let bob = env.token("bob", DEV);
    assert_eq!(
        env.get(&format!("/v1/jobs/{id}"), &bob).await.0,
        StatusCode::NOT_FOUND
    );
    // Downloads and cancels are recorded too.
    let req = Request::get(format!("/v1/jobs/{id}/artifacts/inputs/data.csv"))
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(env.call(req).await.0, StatusCode::OK);
    env.post(&format!("/v1/jobs/{id}/cancel"), &alice).await;

    // Only admins read the log.
    let (status, _) = env.get("/v1/audit", &alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, log) = env.get("/v1/audit?limit=100", &ada).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = log["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "auth.failure").count(),
        4,
        "{kinds:?}"
    );
    for k in ["job.submitted", "artifact.download", "job.cancel"] {
        assert!(kinds.contains(&k), "{k} not in {kinds:?}");
    }
    let failure_codes: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "auth.failure")
        .map(|e| e["detail"]["code"].as_str().unwrap())
        .collect();
    assert!(
        failure_codes.iter().all(|c| c.starts_with("auth.")),
        "{failure_codes:?}"
    );
    let submitted = entries
        .iter()
        .find(|e| e["kind"] == "job.submitted")
        .unwrap();
    assert_eq!(submitted["job_id"], id.as_str());
    assert!(submitted["actor"].as_str().unwrap().ends_with("/alice"));
    let (status, chain) = env.get("/v1/audit/verify", &ada).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chain["intact"], true, "{chain}");
    assert_eq!(chain["entries"].as_u64().unwrap() as usize, entries.len());
}

#[tokio::test]
async fn per_user_and_failed_sign_in_rate_limits_answer_429() {
    let env = env_with(JobLimits {
        requests_per_minute: 1,
        requests_burst: 3,
        failed_auth_per_minute: 2,
        ..JobLimits::default()
    })
    .await;
    let alice = env.token("alice", DEV);
    for _ in 0..3 {
        assert_eq!(env.get("/v1/jobs", &alice).await.0, StatusCode::OK);
    }
    let req = Request::get("/v1/jobs")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let (status, body, headers) = env.call(req).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        code(&serde_json::from_slice(&body).unwrap()),
        "api.rate_limited"
    );
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Another user has their own budget.
    assert_eq!(
        env.get("/v1/jobs", &env.token("bob", DEV)).await.0,
        StatusCode::OK
    );
    // Failed sign-ins from one address: two answered 401, then 429.
    for _ in 0..2 {
        assert_eq!(env.get("/v1/jobs", "bad").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, v) = env.get("/v1/jobs", "bad").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&v), "auth.rate_limited");
}
