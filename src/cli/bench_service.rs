//! `veritrain bench service`: the service under load (issue 7, "Speed and
//! memory"), recorded in `docs/benchmarks.md`.
//!
//! It starts `veritrain serve --no-worker` (this same binary) as a child
//! process on the chosen database and object store, signs in with the dev
//! issuer, and measures through real HTTP:
//!
//! 1. one upload of a large CSV dataset (2 GiB by default) as the last part of
//!    `POST /v1/jobs`, streamed from disk by the client, while a thread samples
//!    the server's `VmRSS` from `/proc/<pid>/status`; the target is a peak
//!    under 150 MB (10^6 bytes), and the command exits 1 when it is missed;
//! 2. job submission throughput with the quickstart example: N submissions
//!    from C concurrent clients, submissions/s and latency percentiles;
//! 3. API latency of `GET /v1/jobs/{id}` and `GET /v1/jobs?limit=20` under 32
//!    concurrent clients, with the jobs of (2) in the table.
//!
//! Without workers the jobs stay queued: nothing trains, so the numbers are
//! the API node's own. The per-owner cap on active jobs is raised in the
//! generated configuration so that every submission is accepted.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use super::bench::{load_average, machine_description};

/// The quickstart example, compiled in so the bench runs from any directory.
const JOB: &[u8] = include_bytes!("../../examples/quickstart/job.yaml");
const DEFINITION: &[u8] = include_bytes!("../../examples/quickstart/definition.yaml");
const MODEL: &[u8] = include_bytes!("../../examples/quickstart/model.keras");
const DATA: &[u8] = include_bytes!("../../examples/quickstart/data.csv");

const MIB: u64 = 1 << 20;
/// The target: the server's RSS stays under 150 MB during the upload.
const RSS_TARGET_BYTES: u64 = 150_000_000;
const BOUNDARY: &str = "veritrain-bench-7b1f0c9e4a2d";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    Local,
    S3,
}

/// Arguments of `veritrain bench service`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job database. `postgres` reads the URL from VERITRAIN_DATABASE_URL,
    /// else VERITRAIN_TEST_DATABASE_URL (scripts/start-postgres), and works in
    /// a fresh schema that it drops at the end.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// The object store. `s3` reads VERITRAIN_TEST_S3_ENDPOINT, _BUCKET,
    /// _REGION, _ACCESS_KEY_ID and the secret from VERITRAIN_S3_SECRET_ACCESS_KEY
    /// or VERITRAIN_TEST_S3_SECRET_ACCESS_KEY (scripts/start-s3).
    #[arg(long, value_enum, default_value_t = StoreKind::Local)]
    store: StoreKind,
    /// Size of the uploaded dataset, in MiB (0 skips the upload).
    #[arg(long, default_value_t = 2048)]
    dataset_mib: u64,
    /// Submissions of the quickstart example.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    submissions: u64,
    /// Concurrent clients submitting.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    submit_clients: u64,
    /// Concurrent clients of the latency runs.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// Requests per latency run (status, then list).
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Tiny sizes for a smoke test: a 4 MiB dataset, 10 submissions from
    /// 2 clients, 100 requests from 4 clients.
    #[arg(long)]
    quick: bool,
    /// Scratch directory (the generated dataset is kept and reused there).
    /// Default: $TMPDIR/veritrain-bench-service.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Latencies of one phase, in completion order.
struct Phase {
    name: &'static str,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return f64::NAN;
        }
        // Nearest rank.
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted
            .get(rank - 1)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

struct UploadResult {
    bytes: u64,
    wall: Duration,
    rss_before: u64,
    rss_peak: u64,
    hwm_after: u64,
    samples: u64,
}

/// Run the service benchmark.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.quick {
        args.dataset_mib = args.dataset_mib.min(4);
        args.submissions = args.submissions.min(10);
        args.submit_clients = args.submit_clients.min(2);
        args.requests = args.requests.min(100);
        args.clients = args.clients.min(4);
    }
    let scratch = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("veritrain-bench-service"));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let scratch = std::path::absolute(&scratch)?;

    println!("# veritrain bench service");
    println!("{}", machine_description());
    println!("{}", machine_memory());
    println!(
        "build: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("backend: {:?}, store: {:?}", args.backend, args.store);
    println!("load average before: {}", load_average());

    let dataset = if args.dataset_mib > 0 {
        let path = scratch.join(format!("dataset-{}mib.csv", args.dataset_mib));
        let t = Instant::now();
        let written = ensure_dataset(&path, args.dataset_mib * MIB)?;
        println!(
            "dataset: {} ({} bytes, {})",
            path.display(),
            std::fs::metadata(&path)?.len(),
            if written {
                format!("written in {:.1} s", t.elapsed().as_secs_f64())
            } else {
                "reused".into()
            }
        );
        Some(path)
    } else {
        None
    };

    let run_dir = scratch.join(format!("run-{}", std::process::id()));
    let setup = Setup::new(&run_dir, args.backend, args.store)?;
    let mut server = Server::start(&setup)?;
    println!("server: pid {}, {}", server.pid, server.line);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(measure(&args, &server, dataset.as_deref()));
    println!("load average after: {}", load_average());
    server.stop();
    setup.cleanup();
    if outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&run_dir);
    } else {
        eprintln!("server's last log lines:\n{}", server.log_tail());
    }
    let (upload, phases) = outcome?;
    report(&args, upload.as_ref(), &phases)
}

async fn measure(
    args: &Args,
    server: &Server,
    dataset: Option<&Path>,
) -> anyhow::Result<(Option<UploadResult>, Vec<Phase>)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(args.clients.max(args.submit_clients))?)
        .build()?;
    let base = server.url.clone();
    let token = sign_in(&client, &base).await?;
    let api = Api {
        client,
        base,
        auth: format!("Bearer {token}"),
    };

    let upload = match dataset {
        Some(path) => Some(upload(&api, server.pid, path).await?),
        None => None,
    };

    let small = Arc::new(small_form());
    let (submit, ids) = submissions(&api, &small, args.submissions, args.submit_clients).await?;

    let ids = Arc::new(ids);
    // A short warm-up so connections are open before the timed runs.
    let warm = args.clients.min(args.requests);
    let _ = latency(&api, "warm-up", warm, args.clients, {
        let ids = Arc::clone(&ids);
        move |i| job_path(&ids, i)
    })
    .await?;
    let status = latency(
        &api,
        "GET /v1/jobs/{id}",
        args.requests,
        args.clients,
        move |i| job_path(&ids, i),
    )
    .await?;
    let list = latency(
        &api,
        "GET /v1/jobs?limit=20",
        args.requests,
        args.clients,
        |_| "/v1/jobs?limit=20".to_owned(),
    )
    .await?;
    Ok((upload, vec![submit, status, list]))
}

fn job_path(ids: &[String], i: u64) -> String {
    let n = ids.len().max(1);
    let id = ids.get(i as usize % n).map_or("", String::as_str);
    format!("/v1/jobs/{id}")
}

struct Api {
    client: reqwest::Client,
    base: String,
    auth: String,
}

async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/v1/dev/token"))
        .json(&json!({"subject": "bench", "roles": ["developer"]}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("POST /v1/dev/token answered {status}: {body}"))
}

/// The multipart head: the parts job, definition and model in full, then
/// the dataset part's header. The dataset's bytes follow, then [`form_tail`].
fn form_head() -> Vec<u8> {
    let mut out = Vec::new();
    for (name, file, content_type, bytes) in [
        ("job", "job.yaml", "application/yaml", JOB),
        (
            "definition",
            "definition.yaml",
            "application/yaml",
            DEFINITION,
        ),
        ("model", "model.keras", "application/octet-stream", MODEL),
    ] {
        part_header(&mut out, name, file, content_type);
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    part_header(&mut out, "dataset", "data.csv", "text/csv");
    out
}

fn part_header(out: &mut Vec<u8>, name: &str, file: &str, content_type: &str) {
    out.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
}

fn form_tail() -> Vec<u8> {
    format!("\r\n--{BOUNDARY}--\r\n").into_bytes()
}

/// The whole quickstart form, small enough to hold in memory.
fn small_form() -> Vec<u8> {
    let mut form = form_head();
    form.extend_from_slice(DATA);
    form.extend_from_slice(&form_tail());
    form
}

fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// POST /v1/jobs with the dataset streamed from disk in 256 KiB chunks
/// (the client never holds more than one chunk of it), while a thread samples
/// the server's RSS every 10 ms.
async fn upload(api: &Api, pid: u32, path: &Path) -> anyhow::Result<UploadResult> {
    let size = std::fs::metadata(path)?.len();
    let head = form_head();
    let tail = form_tail();
    let length = head.len() as u64 + size + tail.len() as u64;
    let file = tokio::fs::File::open(path).await?;
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 256 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(head)])
        .chain(chunks)
        .chain(futures_util::stream::iter([Ok(tail)]));

    let rss_before = proc_kb(pid, "VmRSS").unwrap_or(0) * 1024;
    let sampler = RssSampler::start(pid);
    let t = Instant::now();
    let response = api
        .client
        .post(format!("{}/v1/jobs", api.base))
        .header("authorization", &api.auth)
        .header("content-type", content_type())
        .header("content-length", length)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    let wall = t.elapsed();
    let (rss_peak, samples) = sampler.stop();
    if status != reqwest::StatusCode::CREATED {
        bail!("the upload answered {status}: {text}");
    }
    let hwm_after = proc_kb(pid, "VmHWM").unwrap_or(0) * 1024;
    Ok(UploadResult {
        bytes: size,
        wall,
        rss_before,
        rss_peak: rss_peak.max(rss_before),
        hwm_after,
        samples,
    })
}

/// `count` submissions of the quickstart form from `clients` tasks.
async fn submissions(
    api: &Api,
    form: &Arc<Vec<u8>>,
    count: u64,
    clients: u64,
) -> anyhow::Result<(Phase, Vec<String>)> {
    let next = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, auth) = (
            api.client.clone(),
            format!("{}/v1/jobs", api.base),
            api.auth.clone(),
        );
        let (next, ids, form) = (Arc::clone(&next), Arc::clone(&ids), Arc::clone(form));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", content_type())
                    .body(form.as_ref().clone())
                    .send()
                    .await?;
                let status = response.status();
                let body: Value = response.json().await?;
                latencies.push(t.elapsed());
                if status != reqwest::StatusCode::CREATED {
                    bail!("a submission answered {status}: {body}");
                }
                let id = body["id"].as_str().context("no id in the answer")?;
                ids.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push(id.to_owned());
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = t.elapsed();
    let ids = std::mem::take(&mut *ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok((
        Phase {
            name: "POST /v1/jobs (quickstart)",
            wall,
            latencies,
        },
        ids,
    ))
}

/// `count` GETs of `path(i)` from `clients` tasks; every answer must be 200.
async fn latency(
    api: &Api,
    name: &'static str,
    count: u64,
    clients: u64,
    path: impl Fn(u64) -> String + Send + Sync + 'static,
) -> anyhow::Result<Phase> {
    let path = Arc::new(path);
    let next = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, auth) = (api.client.clone(), api.base.clone(), api.auth.clone());
        let (next, path) = (Arc::clone(&next), Arc::clone(&path));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let p = path(i);
                let t = Instant::now();
                let response = client
                    .get(format!("{base}{p}"))
                    .header("authorization", &auth)
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                latencies.push(t.elapsed());
                if status != reqwest::StatusCode::OK {
                    bail!(
                        "GET {p} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Phase {
        name,
        wall: t.elapsed(),
        latencies,
    })
}

fn report(
    args: &Args,
    upload: Option<&UploadResult>,
    phases: &[Phase],
) -> anyhow::Result<ExitCode> {
    let mb = |b: u64| b as f64 / 1e6;
    let mut json = json!({
        "bench": "service",
        "backend": format!("{:?}", args.backend).to_lowercase(),
        "store": format!("{:?}", args.store).to_lowercase(),
        "load_average": load_average(),
    });
    let mut met = true;
    println!();
    if let Some(u) = upload {
        let mib_s = u.bytes as f64 / MIB as f64 / u.wall.as_secs_f64();
        met = u.rss_peak < RSS_TARGET_BYTES;
        println!(
            "upload of {:.2} GiB: {:.1} s, {mib_s:.1} MiB/s; server RSS before {:.1} MB, peak {:.1} MB sampled ({} samples), VmHWM after {:.1} MB; target < {:.0} MB: {}",
            u.bytes as f64 / (1u64 << 30) as f64,
            u.wall.as_secs_f64(),
            mb(u.rss_before),
            mb(u.rss_peak),
            u.samples,
            mb(u.hwm_after),
            mb(RSS_TARGET_BYTES),
            if met { "met" } else { "MISSED" }
        );
        json["upload"] = json!({
            "bytes": u.bytes,
            "seconds": u.wall.as_secs_f64(),
            "mib_per_s": mib_s,
            "rss_before_bytes": u.rss_before,
            "rss_peak_bytes": u.rss_peak,
            "vmhwm_after_bytes": u.hwm_after,
            "rss_target_bytes": RSS_TARGET_BYTES,
            "met": met,
        });
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| {:<28} | {:>7} | {:>7} | {:>8} | {:>8} | {:>8} | {:>8} |",
        "case", "clients", "n", "wall s", "per s", "p50 ms", "p99 ms"
    );
    let _ = writeln!(
        table,
        "|{:-<30}|{:->9}|{:->9}|{:->10}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", "", ""
    );
    let mut cases = Vec::new();
    for (phase, clients) in phases
        .iter()
        .zip([args.submit_clients, args.clients, args.clients])
    {
        let _ = writeln!(
            table,
            "| {:<28} | {:>7} | {:>7} | {:>8.2} | {:>8.1} | {:>8.2} | {:>8.2} |",
            phase.name,
            clients,
            phase.latencies.len(),
            phase.wall.as_secs_f64(),
            phase.rate(),
            phase.percentile(0.5),
            phase.percentile(0.99)
        );
        cases.push(json!({
            "case": phase.name,
            "clients": clients,
            "n": phase.latencies.len(),
            "seconds": phase.wall.as_secs_f64(),
            "per_s": phase.rate(),
            "p50_ms": phase.percentile(0.5),
            "p99_ms": phase.percentile(0.99),
        }));
    }
    json["cases"] = Value::Array(cases);
    println!();
    print!("{table}");
    println!();
    println!("{json}");
    Ok(if met {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes `target` bytes or a little more of CSV: data.csv's header once,
/// then its rows over and over, through a 1 MiB buffer. A file already there
/// with a size in [target, target + one copy of the rows) is reused.
fn ensure_dataset(path: &Path, target: u64) -> anyhow::Result<bool> {
    let text = std::str::from_utf8(DATA)?;
    let (header, rows) = text.split_once('\n').context("data.csv has no rows")?;
    let rows = rows.as_bytes();
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() >= target
        && meta.len() < target + rows.len() as u64 + header.len() as u64 + 1
    {
        return Ok(false);
    }
    let tmp = path.with_extension("partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(MIB as usize, file);
    out.write_all(header.as_bytes())?;
    out.write_all(b"\n")?;
    let mut written = header.len() as u64 + 1;
    while written < target {
        out.write_all(rows)?;
        written += rows.len() as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

/// The configuration file and environment of the server under test.
struct Setup {
    config: PathBuf,
    env: Vec<(&'static str, String)>,
    /// Postgres: the URL and the schema to drop afterwards.
    schema: Option<(String, String)>,
}

impl Setup {
    fn new(dir: &Path, backend: Backend, store: StoreKind) -> anyhow::Result<Setup> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        super::keys::init_demo(&data.join("keys"))?;
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {}\n\n[auth]\ndev = true\n\n\
             [jobs]\n# Every submission and request of the bench is accepted: no worker drains the queue,\n# and one user sends them all (no per-user rate limit, no sweep).\n\
             max_active_per_owner = 1000000\nrequests_per_minute = 100000000\nrequests_burst = 1000000\ntamper_sweep_secs = 0\n\n[worker]\nembedded = false\n",
            toml_string(&data)
        );
        let mut env = Vec::new();
        let mut schema = None;
        if backend == Backend::Postgres {
            let url = std::env::var("VERITRAIN_DATABASE_URL")
                .or_else(|_| std::env::var("VERITRAIN_TEST_DATABASE_URL"))
                .context(
                    "--backend postgres needs VERITRAIN_DATABASE_URL or VERITRAIN_TEST_DATABASE_URL (eval \"$(scripts/start-postgres)\")",
                )?;
            let name = format!("bench_{}", std::process::id());
            psql(
                &url,
                &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
            )?;
            let sep = if url.contains('?') { '&' } else { '?' };
            env.push((
                "VERITRAIN_DATABASE_URL",
                format!("{url}{sep}options[search_path]={name}"),
            ));
            toml.push_str("\n[database]\n");
            schema = Some((url, name));
        }
        if store == StoreKind::S3 {
            let var = |n: &str| {
                std::env::var(n)
                    .with_context(|| format!("--store s3 needs {n} (eval \"$(scripts/start-s3)\")"))
            };
            let secret = var("VERITRAIN_S3_SECRET_ACCESS_KEY")
                .or_else(|_| var("VERITRAIN_TEST_S3_SECRET_ACCESS_KEY"))?;
            env.push(("VERITRAIN_S3_SECRET_ACCESS_KEY", secret));
            let endpoint = var("VERITRAIN_TEST_S3_ENDPOINT")?;
            let _ = write!(
                toml,
                "\n[store]\nkind = \"s3\"\nendpoint = {}\nbucket = {}\nregion = {}\naccess_key_id = {}\nallow_http = {}\n",
                toml_string(&endpoint),
                toml_string(&var("VERITRAIN_TEST_S3_BUCKET")?),
                toml_string(&var("VERITRAIN_TEST_S3_REGION")?),
                toml_string(&var("VERITRAIN_TEST_S3_ACCESS_KEY_ID")?),
                endpoint.starts_with("http://"),
            );
        }
        let config = dir.join("veritrain.toml");
        std::fs::write(&config, toml)?;
        Ok(Setup {
            config,
            env,
            schema,
        })
    }

    fn cleanup(&self) {
        if let Some((url, name)) = &self.schema
            && let Err(e) = psql(url, &format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
        {
            eprintln!("bench service: could not drop the schema {name}: {e:#}");
        }
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn toml_string(s: impl AsRef<std::ffi::OsStr>) -> String {
    serde_json::to_string(&s.as_ref().to_string_lossy()).unwrap_or_else(|_| "\"\"".into())
}

/// `veritrain serve --no-worker --config FILE`, this same binary, as a child.
struct Server {
    child: Child,
    pid: u32,
    url: String,
    line: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(setup: &Setup) -> anyhow::Result<Server> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["serve", "--no-worker", "--config"])
            .arg(&setup.config)
            .env_remove("VERITRAIN_DATABASE_URL")
            .env_remove("VERITRAIN_S3_SECRET_ACCESS_KEY")
            .env_remove("VERITRAIN_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &setup.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("starting veritrain serve")?;
        let pid = child.id();
        let stderr = child.stderr.take().context("no stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on http://")
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(line.clone());
                    }
                    if let Ok(mut log) = log.lock() {
                        log.push(line);
                    }
                }
            });
        }
        let mut server = Server {
            child,
            pid,
            url: String::new(),
            line: String::new(),
            log,
        };
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            server.stop();
            bail!(
                "veritrain serve did not start listening:\n{}",
                server.log_tail()
            );
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .context("no URL in the server's first line")?;
        server.url = url.to_owned();
        server.line = line.clone();
        Ok(server)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_tail(&self) -> String {
        self.log.lock().map_or_else(
            |_| String::new(),
            |log| {
                let skip = log.len().saturating_sub(20);
                log.iter()
                    .skip(skip)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Samples `VmRSS` of a process every 10 ms on its own thread, keeping the
/// largest value.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, peak, samples) =
                (Arc::clone(&stop), Arc::clone(&peak), Arc::clone(&samples));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = proc_kb(pid, "VmRSS") {
                        peak.fetch_max(kb * 1024, Ordering::Relaxed);
                        samples.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        RssSampler {
            stop,
            peak,
            samples,
            thread,
        }
    }

    /// The peak in bytes and the number of samples.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.peak.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed) as u64,
        )
    }
}

/// A `kB` field of `/proc/<pid>/status`.
fn proc_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// RAM, kernel and the disk under the scratch directory's file system.
fn machine_memory() -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map_or_else(|| "unknown".into(), |v| v.trim().to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned());
    format!("ram: {total}, kernel: {kernel}")
}
