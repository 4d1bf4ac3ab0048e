//! The CLI client of the service: `veritrain submit`, `status`, `wait`,
//! `fetch`, `jobs` and `token`. Each talks to a `veritrain serve` API over
//! HTTP (docs/server.md lists the endpoints; docs/client.md this client).
//!
//! Where it sits: a user's files go up through `POST /v1/jobs` (streamed from
//! disk, never read whole into memory), the job is followed through its SSE
//! event log, and its artifacts or bundle come back to disk, each artifact
//! checked against the SHA-256 of the server's listing before it takes its
//! final name. The bundle ZIP is then judged offline by `veritrain verify`.
//!
//! Secrets: the bearer token comes from `VERITRAIN_TOKEN` or `--token-file`,
//! never from an argument (argument lists are visible to every user of the
//! machine), and is never printed or logged; only `veritrain token --dev`
//! prints the token it was asked for.
//!
//! Exit status: 0 done (for `wait`, the job succeeded); 1 a definite no (the
//! job failed or was cancelled, the server refused the request with a 4xx
//! and its code, a download did not match its digest); 2 a usage error (bad
//! flags, no token, an unreadable input file); 3 no answer (the server is
//! unreachable, answered 5xx, or the connection was lost beyond retries).

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zeroize::Zeroizing;

/// The server when neither `--server` nor `$VERITRAIN_SERVER` names one.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
/// How often `wait` reconnects in a row before it gives up.
const MAX_RECONNECTS: u32 = 8;

/// The client subcommands, flattened into the top-level command list.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Upload a model, a dataset, its definition and a job request to a
    /// server; print the job id. With --wait, follow it like `wait`.
    Submit(SubmitArgs),
    /// Show a job's state, its reason when it failed or was cancelled, and
    /// its progress.
    Status(JobArgs),
    /// Follow a job's live progress and log until it finishes; exit 0 only
    /// when it succeeded, 1 when it failed or was cancelled.
    Wait(JobArgs),
    /// Download a job's artifacts (checked against their SHA-256) and/or
    /// its bundle ZIP.
    Fetch(FetchArgs),
    /// List your jobs on a server.
    Jobs(JobsArgs),
    /// Print a token from a server's dev sign-in (`veritrain serve` in dev
    /// mode).
    Token(TokenArgs),
}

/// Where the server is and who the caller is.
#[derive(Debug, clap::Args)]
pub struct Conn {
    /// The server's base URL (default: $VERITRAIN_SERVER, else
    /// http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// A file holding the bearer token (default: the token in
    /// $VERITRAIN_TOKEN). There is no --token: arguments are visible to
    /// every user of the machine.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

/// Arguments of `veritrain submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    conn: Conn,
    /// The model to train (`.keras`).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The dataset (CSV, image ZIP or TFRecord); streamed from disk.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The dataset definition (YAML).
    #[arg(long, value_name = "FILE")]
    definition: PathBuf,
    /// The job request: model metadata and fit parameters (YAML or JSON).
    #[arg(long, value_name = "JOB.yaml")]
    job: PathBuf,
    /// Follow the job until it finishes, like `veritrain wait`.
    #[arg(long)]
    wait: bool,
    /// Print the job as JSON (with --wait, the finished job).
    #[arg(long)]
    json: bool,
}

/// Arguments of `veritrain status` and `veritrain wait`.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    #[command(flatten)]
    conn: Conn,
    /// The job's id.
    #[arg(value_name = "JOB_ID")]
    id: String,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `veritrain fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    conn: Conn,
    /// The job's id.
    #[arg(value_name = "JOB_ID")]
    id: String,
    /// An artifact to download, by its name in the listing (e.g.
    /// `outputs/model.keras`). Repeatable. Without --artifact and --bundle,
    /// every listed artifact.
    #[arg(long, value_name = "NAME")]
    artifact: Vec<String>,
    /// Download the bundle as one ZIP (`<JOB_ID>.bundle.zip`), which
    /// `veritrain verify` takes.
    #[arg(long)]
    bundle: bool,
    /// The directory to write into; artifacts keep their listed names
    /// below it.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `veritrain jobs`.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    #[command(flatten)]
    conn: Conn,
    /// Jobs per page (the server's default is 20).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Follow the `next` cursor through every page.
    #[arg(long)]
    all_pages: bool,
    /// Print `{jobs, next}` as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `veritrain token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Ask the server's dev sign-in (`POST /v1/dev/token`; dev mode,
    /// loopback only). Tokens for a production server come from its
    /// identity provider.
    #[arg(long, required = true)]
    dev: bool,
    /// The server's base URL (default: $VERITRAIN_SERVER, else
    /// http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The token's subject (user name).
    #[arg(long, value_name = "NAME", default_value = "dev")]
    subject: String,
    /// A role of the token; repeatable (default: developer).
    #[arg(long, value_name = "ROLE", value_parser = ["developer", "auditor", "admin"])]
    role: Vec<String>,
}

/// Run a client subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let json = match &command {
        Command::Submit(a) => a.json,
        Command::Status(a) | Command::Wait(a) => a.json,
        Command::Fetch(a) => a.json,
        Command::Jobs(a) => a.json,
        Command::Token(_) => false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match command {
            Command::Submit(a) => submit(a).await,
            Command::Status(a) => status(a).await,
            Command::Wait(a) => {
                let api = Api::new(&a.conn)?;
                let id = job_id(&a.id)?;
                follow(&api, id, a.json).await
            }
            Command::Fetch(a) => fetch(a).await,
            Command::Jobs(a) => jobs(a).await,
            Command::Token(a) => token(a).await,
        }
    });
    Ok(match result {
        Ok(code) => code,
        Err(f) => {
            f.report(json);
            ExitCode::from(f.exit)
        }
    })
}

/// Prints a line on stdout; a reader that went away (`| head`) is not an
/// error worth a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

// ---------------------------------------------------------------- errors

/// Why a client command stopped: a stable code (`client.*` for the client's
/// own, the server's code for an API error), a sentence, and the exit status.
#[derive(Debug)]
struct Failure {
    code: String,
    message: String,
    exit: u8,
    status: Option<u16>,
    details: Option<Value>,
}

impl Failure {
    /// A usage error (exit 2).
    fn usage(code: &str, message: impl Into<String>) -> Failure {
        Failure::new(code, message, 2)
    }

    /// A definite no (exit 1).
    fn refused(code: &str, message: impl Into<String>) -> Failure {
        Failure::new(code, message, 1)
    }

    /// No answer (exit 3).
    fn unreachable(code: &str, message: impl Into<String>) -> Failure {
        Failure::new(code, message, 3)
    }

    fn new(code: &str, message: impl Into<String>, exit: u8) -> Failure {
        Failure {
            code: code.to_owned(),
            message: message.into(),
            exit,
            status: None,
            details: None,
        }
    }

    /// A transport error talking to `url`.
    fn transport(url: &str, e: &reqwest::Error) -> Failure {
        // reqwest's Display names the URL; walk the sources for the cause
        // (connection refused, reset, ...). Tokens never appear in either.
        let mut cause = String::new();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        let what = if e.is_connect() {
            "cannot connect to"
        } else if e.is_timeout() {
            "timed out talking to"
        } else {
            "lost the connection to"
        };
        let code = if e.is_connect() {
            "client.unreachable"
        } else {
            "client.connection_lost"
        };
        let cause = if cause.is_empty() {
            e.to_string()
        } else {
            cause
        };
        Failure::unreachable(code, format!("{what} {url}: {cause}"))
    }

    /// Prints the failure: `error[code]: message` on stderr, and with
    /// `--json` the API's error shape on stdout as well.
    fn report(&self, json: bool) {
        let status = self
            .status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        eprintln!("error[{}]: {}{status}", self.code, self.message);
        if let Some(findings) = self
            .details
            .as_ref()
            .and_then(|d| d.get("findings"))
            .and_then(Value::as_array)
        {
            for f in findings {
                eprintln!("  {}", finding_line(f));
            }
        }
        if json {
            let mut error = json!({"code": self.code, "message": self.message});
            if let (Some(obj), Some(s)) = (error.as_object_mut(), self.status) {
                obj.insert("status".into(), s.into());
            }
            if let (Some(obj), Some(d)) = (error.as_object_mut(), &self.details) {
                obj.insert("details".into(), d.clone());
            }
            out!("{}", json!({ "error": error }));
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

/// One finding of the intake gate: `code: message (location)`.
fn finding_line(f: &Value) -> String {
    let code = f.get("code").and_then(Value::as_str).unwrap_or("?");
    let message = f.get("message").and_then(Value::as_str).unwrap_or("");
    match f.get("location").filter(|l| !l.is_null()) {
        Some(Value::String(l)) => format!("✗ {code}: {message} ({l})"),
        Some(l) => format!("✗ {code}: {message} ({l})"),
        None => format!("✗ {code}: {message}"),
    }
}

/// Turns a non-2xx response into a failure carrying the server's code and
/// message (`{"error": {"code", "message", "details"?}}`).
async fn api_error(resp: reqwest::Response) -> Failure {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("client.http_error");
    let message = match error.and_then(|e| e.get("message")).and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => format!(
            "the server answered {status} without an error body: {}",
            String::from_utf8_lossy(body.get(..200).unwrap_or(&body)).trim()
        ),
    };
    let exit = if status.is_server_error() { 3 } else { 1 };
    Failure {
        code: code.to_owned(),
        message,
        exit,
        status: Some(status.as_u16()),
        details: error.and_then(|e| e.get("details")).cloned(),
    }
}

// ---------------------------------------------------------------- connection

/// A bearer token: redacted in `Debug`, wiped on drop.
struct Token(Zeroizing<String>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl Token {
    /// `--token-file`, else `$VERITRAIN_TOKEN`.
    fn load(file: Option<&Path>) -> Result<Token, Failure> {
        let raw = match file {
            Some(path) => Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(
                    "client.token_file",
                    format!("cannot read the token file {}: {e}", path.display()),
                )
            })?),
            None => Zeroizing::new(std::env::var("VERITRAIN_TOKEN").unwrap_or_default()),
        };
        let token = raw.trim();
        if token.is_empty() {
            return Err(Failure::usage(
                "client.no_token",
                match file {
                    Some(path) => format!("the token file {} is empty", path.display()),
                    None => "no token: set VERITRAIN_TOKEN or pass --token-file FILE \
                             (on a dev server: export VERITRAIN_TOKEN=$(veritrain token --dev))"
                        .to_owned(),
                },
            ));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Failure::usage(
                "client.bad_token",
                "the token holds whitespace or control characters; give exactly one token",
            ));
        }
        Ok(Token(Zeroizing::new(token.to_owned())))
    }
}

/// The server's base URL: `--server`, else `$VERITRAIN_SERVER`, else the
/// default; without a trailing slash.
fn server_url(flag: Option<&str>) -> Result<String, Failure> {
    let url = match flag {
        Some(s) => s.to_owned(),
        None => std::env::var("VERITRAIN_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Failure::usage(
            "client.bad_server",
            format!("the server URL {url:?} does not start with http:// or https://"),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// A job id as a path segment: only what the server's ids are made of, so
/// an argument can never reach another route.
fn job_id(id: &str) -> Result<&str, Failure> {
    let uuid_shaped = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if !uuid_shaped {
        return Err(Failure::usage(
            "client.bad_job_id",
            format!("{id:?} is not a job id (a UUID such as 0b6e3c1a-9f2d-4c5e-8a7b-1d2e3f4a5b6c)"),
        ));
    }
    Ok(id)
}

fn http_client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("veritrain/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::usage("client.http", format!("cannot set up HTTP: {e}")))
}

/// An authenticated connection to the API.
struct Api {
    http: reqwest::Client,
    base: String,
    token: Token,
}

impl Api {
    fn new(conn: &Conn) -> Result<Api, Failure> {
        let base = server_url(conn.server.as_deref())?;
        let token = Token::load(conn.token_file.as_deref())?;
        Ok(Api {
            http: http_client()?,
            base,
            token,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        // bearer_auth marks the header sensitive: never in Debug output.
        self.http
            .get(self.url(path))
            .bearer_auth(self.token.0.as_str())
    }

    /// Sends a request; a non-2xx answer becomes the server's error.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<reqwest::Response, Failure> {
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::transport(&self.url(path), &e))?;
        if !resp.status().is_success() {
            return Err(api_error(resp).await);
        }
        Ok(resp)
    }

    async fn get_json(&self, path: &str) -> Result<Value, Failure> {
        let resp = self.send(self.get(path), path).await?;
        read_json(resp, &self.url(path)).await
    }
}

async fn read_json(resp: reqwest::Response, url: &str) -> Result<Value, Failure> {
    let body = resp
        .bytes()
        .await
        .map_err(|e| Failure::transport(url, &e))?;
    serde_json::from_slice(&body).map_err(|e| {
        Failure::unreachable(
            "client.bad_response",
            format!("{url} answered with something that is not JSON: {e}"),
        )
    })
}

// ---------------------------------------------------------------- submit

/// A file to upload: opened and measured before anything is sent, so a
/// missing file is a usage error, not a half-sent form.
struct Upload {
    part: &'static str,
    path: PathBuf,
    file: tokio::fs::File,
    size: u64,
}

impl Upload {
    async fn open(part: &'static str, path: &Path) -> Result<Upload, Failure> {
        let unreadable = |e: std::io::Error| {
            Failure::usage(
                "client.unreadable_input",
                format!("cannot read the {part} file {}: {e}", path.display()),
            )
        };
        let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        let meta = file.metadata().await.map_err(unreadable)?;
        if !meta.is_file() {
            return Err(Failure::usage(
                "client.unreadable_input",
                format!("the {part} {} is not a regular file", path.display()),
            ));
        }
        Ok(Upload {
            part,
            path: path.to_owned(),
            file,
            size: meta.len(),
        })
    }

    /// The multipart part: the file read in 256 KiB chunks as the request
    /// body is sent, counting bytes into `sent`.
    fn into_part(self, sent: Arc<AtomicU64>) -> Result<reqwest::multipart::Part, Failure> {
        let name = self.path.file_name().map_or_else(
            || self.part.to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let size = self.size;
        let stream =
            futures_util::stream::try_unfold((self.file, size), move |(mut file, left)| {
                let sent = Arc::clone(&sent);
                async move {
                    if left == 0 {
                        return Ok::<_, std::io::Error>(None);
                    }
                    // Never more than the measured size: the form's length
                    // was declared from it.
                    let want = usize::try_from(left.min(256 * 1024)).unwrap_or(256 * 1024);
                    let mut buf = vec![0u8; want];
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the file shrank while it was being sent",
                        ));
                    }
                    buf.truncate(n);
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    Ok(Some((Bytes::from(buf), (file, left - n as u64))))
                }
            });
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), size)
            .file_name(name)
            .mime_str("application/octet-stream")
            .map_err(|e| Failure::usage("client.http", e.to_string()))
    }
}

async fn submit(args: SubmitArgs) -> Result<ExitCode, Failure> {
    let api = Api::new(&args.conn)?;
    // The server's order: job, definition, model, and the dataset last, so a
    // bad job is refused before the largest part is sent.
    let uploads = [
        Upload::open("job", &args.job).await?,
        Upload::open("definition", &args.definition).await?,
        Upload::open("model", &args.model).await?,
        Upload::open("dataset", &args.data).await?,
    ];
    let total: u64 = uploads.iter().map(|u| u.size).sum();
    let sent = Arc::new(AtomicU64::new(0));
    let mut form = reqwest::multipart::Form::new();
    for u in uploads {
        let part = u.part;
        form = form.part(part, u.into_part(Arc::clone(&sent))?);
    }
    let path = "/v1/jobs";
    let bar = ProgressBar::start("upload", total, Arc::clone(&sent));
    let result = api
        .send(
            api.http
                .post(api.url(path))
                .bearer_auth(api.token.0.as_str())
                .multipart(form),
            path,
        )
        .await;
    bar.finish(result.is_ok());
    let job = read_json(result?, &api.url(path)).await?;
    let id = job
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::unreachable("client.bad_response", "the job has no id"))?
        .to_owned();
    if args.wait {
        eprintln!("submitted job {id}; following it");
        if !args.json {
            out!("{id}");
        }
        return follow(&api, job_id(&id)?, args.json).await;
    }
    if args.json {
        out!("{job}");
    } else {
        out!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The upload's progress on stderr: a bar redrawn in place on a terminal,
/// a line every few seconds otherwise, and a summary at the end.
struct ProgressBar {
    task: tokio::task::JoinHandle<()>,
    sent: Arc<AtomicU64>,
    total: u64,
    started: Instant,
    tty: bool,
    what: &'static str,
}

impl ProgressBar {
    fn start(what: &'static str, total: u64, sent: Arc<AtomicU64>) -> ProgressBar {
        let tty = std::io::stderr().is_terminal();
        let started = Instant::now();
        let counter = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            let tick = if tty {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(5)
            };
            loop {
                tokio::time::sleep(tick).await;
                let line = progress_line(
                    what,
                    counter.load(Ordering::Relaxed),
                    total,
                    started.elapsed(),
                );
                if tty {
                    eprint!("\r\x1b[2K{line}");
                    let _ = std::io::stderr().flush();
                } else {
                    eprintln!("{line}");
                }
            }
        });
        ProgressBar {
            task,
            sent,
            total,
            started,
            tty,
            what,
        }
    }

    fn finish(self, ok: bool) {
        self.task.abort();
        let sent = self.sent.load(Ordering::Relaxed);
        let line = progress_line(self.what, sent, self.total, self.started.elapsed());
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        let verdict = if ok { "" } else { " (stopped)" };
        eprintln!("{clear}{line}{verdict}");
    }
}

/// `upload [#########-----------]  1.2 MiB / 2.5 MiB  48%  3.1 MiB/s`
fn progress_line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    const WIDTH: u64 = 24;
    let filled = done
        .saturating_mul(WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '-' })
        .collect();
    let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
    let secs = elapsed.as_secs_f64().max(1e-3);
    format!(
        "{what} [{bar}] {} / {} {percent:>3}% {}/s",
        human_bytes(done),
        human_bytes(total),
        human_bytes((done as f64 / secs) as u64)
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {name}")
    }
}

// ---------------------------------------------------------------- status

async fn status(args: JobArgs) -> Result<ExitCode, Failure> {
    let api = Api::new(&args.conn)?;
    let id = job_id(&args.id)?;
    let job = api.get_json(&format!("/v1/jobs/{id}")).await?;
    if args.json {
        out!("{job}");
    } else {
        let _ = write!(std::io::stdout().lock(), "{}", describe(&job));
    }
    Ok(ExitCode::SUCCESS)
}

/// A job for people: id, state, reason, progress, model, times.
fn describe(job: &Value) -> String {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("-").to_owned();
    let mut out = String::new();
    out.push_str(&format!("job:      {}\n", s(job.get("id"))));
    out.push_str(&format!("state:    {}\n", s(job.get("state"))));
    if let Some(reason) = job.get("reason").filter(|r| !r.is_null()) {
        out.push_str(&format!(
            "reason:   [{}] {}\n",
            s(reason.get("code")),
            s(reason.get("message"))
        ));
    }
    let model = job.pointer("/request/model");
    out.push_str(&format!(
        "model:    {} {}\n",
        s(model.and_then(|m| m.get("name"))),
        s(model.and_then(|m| m.get("version")))
    ));
    if let Some(p) = job.get("progress").filter(|p| !p.is_null()) {
        out.push_str(&format!("progress: {}\n", progress_text(p)));
    }
    out.push_str(&format!("created:  {}\n", when(job.get("created_at"))));
    if let Some(d) = job.get("duration_secs").and_then(Value::as_f64) {
        out.push_str(&format!("duration: {}\n", duration_text(d)));
    }
    out
}

/// `epoch 3/10 [######----] loss 0.4123  accuracy 0.8600`
fn progress_text(p: &Value) -> String {
    let epoch = p.get("epoch").and_then(Value::as_u64).unwrap_or(0);
    let total = p.get("total_epochs").and_then(Value::as_u64).unwrap_or(0);
    let width = 20;
    let filled = epoch
        .saturating_mul(width)
        .checked_div(total)
        .unwrap_or(0)
        .min(width);
    let bar: String = (0..width)
        .map(|i| if i < filled { '#' } else { '-' })
        .collect();
    format!(
        "epoch {epoch:>w$}/{total} [{bar}] {}",
        metrics_text(p.get("metrics")),
        w = total.to_string().len()
    )
}

fn metrics_text(metrics: Option<&Value>) -> String {
    let Some(Value::Object(m)) = metrics else {
        return String::new();
    };
    m.iter()
        .map(|(k, v)| match v.as_f64() {
            Some(x) => format!("{k} {x:.4}"),
            None => format!("{k} {v}"),
        })
        .collect::<Vec<_>>()
        .join("  ")
}

fn when(v: Option<&Value>) -> String {
    let Some(text) = v.and_then(Value::as_str) else {
        return "-".into();
    };
    chrono::DateTime::parse_from_rfc3339(text).map_or_else(
        |_| text.to_owned(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%SZ")
                .to_string()
        },
    )
}

fn duration_text(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = secs as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

// ---------------------------------------------------------------- wait

/// One server-sent event.
#[derive(Debug, Default)]
struct SseEvent {
    id: Option<String>,
    event: String,
    data: String,
}

/// Splits an SSE byte stream into events (the WHATWG rules this server
/// needs: `id`, `event`, `data`, comments; `\n` or `\r\n` line ends).
#[derive(Debug, Default)]
struct SseParser {
    buf: Vec<u8>,
    current: SseEvent,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let done = std::mem::take(&mut self.current);
                if !done.event.is_empty() || !done.data.is_empty() {
                    out.push(done);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.current.id = Some(value.to_owned()),
                "event" => self.current.event = value.to_owned(),
                "data" => {
                    if !self.current.data.is_empty() {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                }
                _ => {}
            }
        }
        out
    }
}

/// Shows the live events on stderr; `step` events redraw one line on a
/// terminal.
struct Live {
    tty: bool,
    partial: bool,
}

impl Live {
    fn line(&mut self, text: &str) {
        if self.partial {
            eprint!("\r\x1b[2K");
            self.partial = false;
        }
        eprintln!("{text}");
    }

    fn show(&mut self, kind: &str, data: &Value) {
        let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match kind {
            "state" => {
                let mut text = match s("from").as_str() {
                    "" => format!("state: {}", s("to")),
                    from => format!("state: {from} → {}", s("to")),
                };
                if let Some(r) = data.get("reason").filter(|r| !r.is_null()) {
                    let code = r.get("code").and_then(Value::as_str).unwrap_or("?");
                    let message = r.get("message").and_then(Value::as_str).unwrap_or("");
                    text.push_str(&format!(" [{code}] {message}"));
                }
                self.line(&text);
            }
            "progress" => self.line(&progress_text(data)),
            "log" => self.line(&format!("  | {}", s("line"))),
            "step" if self.tty => {
                let epoch = data.get("epoch").and_then(Value::as_u64).unwrap_or(0);
                let step = data.get("step").and_then(Value::as_u64).unwrap_or(0);
                let loss = data
                    .get("loss")
                    .and_then(Value::as_f64)
                    .map(|l| format!("loss {l:.4}"))
                    .unwrap_or_default();
                eprint!("\r\x1b[2K  epoch {epoch} step {step} {loss}");
                let _ = std::io::stderr().flush();
                self.partial = true;
            }
            "failure" => {
                self.line("refused by the intake gate:");
                for f in data
                    .get("findings")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.line(&format!("  {}", finding_line(f)));
                }
            }
            "retry" => self.line(&format!(
                "retry: [{}] {} (attempt {})",
                s("code"),
                s("message"),
                data.get("attempt").unwrap_or(&Value::Null)
            )),
            "bundle" => {
                let files = data.get("files").and_then(Value::as_u64).map_or_else(
                    || {
                        data.get("files")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len)
                            .to_string()
                    },
                    |n| n.to_string(),
                );
                self.line(&format!("bundle stored ({files} files)"));
            }
            "integrity" => {
                let passed = data.get("passed").and_then(Value::as_bool) == Some(true);
                self.line(if passed {
                    "integrity check passed"
                } else {
                    "integrity check FAILED"
                });
            }
            _ => {}
        }
    }
}

/// Follows the job's events to their end, resuming after the last event
/// seen (`Last-Event-ID`) when the connection drops, then reads the final
/// state: exit 0 only for `succeeded`.
async fn follow(api: &Api, id: &str, json: bool) -> Result<ExitCode, Failure> {
    let path = format!("/v1/jobs/{id}/events");
    let url = api.url(&path);
    let mut live = Live {
        tty: std::io::stderr().is_terminal(),
        partial: false,
    };
    let mut last: Option<String> = None;
    let mut failures = 0u32;
    'connect: loop {
        let mut req = api.get(&path).header("accept", "text/event-stream");
        if let Some(seq) = &last {
            req = req.header("last-event-id", seq.as_str());
        }
        let lost = match req.send().await {
            Err(e) => Failure::transport(&url, &e),
            Ok(resp) if resp.status().is_success() => {
                let mut resp = resp;
                let mut parser = SseParser::default();
                loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            for event in parser.push(&chunk) {
                                if event.event == "end" {
                                    break 'connect;
                                }
                                if event.event == "error" {
                                    // The server could not read the log
                                    // (database down): reconnect.
                                    continue;
                                }
                                failures = 0;
                                if event.id.is_some() {
                                    last = event.id.clone();
                                }
                                let body: Value =
                                    serde_json::from_str(&event.data).unwrap_or(Value::Null);
                                live.show(&event.event, body.get("data").unwrap_or(&Value::Null));
                            }
                        }
                        Ok(None) => {
                            break Failure::unreachable(
                                "client.connection_lost",
                                format!("{url} closed the stream before its end"),
                            );
                        }
                        Err(e) => break Failure::transport(&url, &e),
                    }
                }
            }
            Ok(resp) if resp.status().is_server_error() => api_error(resp).await,
            // 4xx: not found, not allowed, token expired: retrying will not help.
            Ok(resp) => return Err(api_error(resp).await),
        };
        failures += 1;
        if failures > MAX_RECONNECTS {
            return Err(lost);
        }
        let delay = Duration::from_millis(250u64 << failures.min(5));
        live.line(&format!(
            "connection lost ([{}] {}); resuming after event {} in {:.1}s",
            lost.code,
            lost.message,
            last.as_deref().unwrap_or("0"),
            delay.as_secs_f64()
        ));
        tokio::time::sleep(delay).await;
    }
    let job = api.get_json(&format!("/v1/jobs/{id}")).await?;
    let state = job.get("state").and_then(Value::as_str).unwrap_or("");
    if json {
        out!("{job}");
    }
    match state {
        "succeeded" => {
            live.line(&format!("job {id} succeeded"));
            Ok(ExitCode::SUCCESS)
        }
        "failed" | "cancelled" => {
            let reason = job.get("reason").unwrap_or(&Value::Null);
            let code = reason
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("job.failed");
            let message = reason.get("message").and_then(Value::as_str).unwrap_or("");
            live.line(&format!("job {id} {state}: [{code}] {message}"));
            if !json {
                out!("{state} {code}");
            }
            Ok(ExitCode::from(1))
        }
        other => Err(Failure::unreachable(
            "client.not_finished",
            format!("the event stream ended but the job is {other:?}"),
        )),
    }
}

// ---------------------------------------------------------------- fetch

/// An artifact name from the server as a relative path below the output
/// directory: plain components only, so a hostile listing cannot write
/// outside it (`../`, absolute paths, drive prefixes).
fn local_path(out: &Path, name: &str) -> Result<PathBuf, Failure> {
    let bad = || {
        Failure::refused(
            "client.bad_artifact_name",
            format!("the artifact name {name:?} is not a plain relative path"),
        )
    };
    if name.is_empty() || name.contains(['\\', '\0']) {
        return Err(bad());
    }
    let mut path = out.to_owned();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => path.push(part),
            _ => return Err(bad()),
        }
    }
    Ok(path)
}

/// Streams a download into `dest` through `dest.part`, hashing as it goes;
/// returns the size and SHA-256. The final name appears only once the
/// whole body arrived (and, for artifacts, matched).
async fn download(
    api: &Api,
    path: &str,
    dest: &Path,
    expect: Option<(u64, &str)>,
) -> Result<(u64, String), Failure> {
    let url = api.url(path);
    let mut resp = api.send(api.get(path), path).await?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| write_error(parent, &e))?;
    }
    let mut part_name = dest.as_os_str().to_owned();
    part_name.push(".part");
    let part = PathBuf::from(part_name);
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| write_error(&part, &e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let result = async {
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Failure::transport(&url, &e))?
        {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| write_error(&part, &e))?;
        }
        file.flush().await.map_err(|e| write_error(&part, &e))?;
        file.sync_all().await.map_err(|e| write_error(&part, &e))?;
        let digest = hex::encode(hasher.finalize());
        if let Some((want_size, want_digest)) = expect
            && (size != want_size || !digest.eq_ignore_ascii_case(want_digest))
        {
            return Err(Failure::refused(
                "client.digest_mismatch",
                format!(
                    "{path}: got {size} bytes with SHA-256 {digest}, the listing says {want_size} bytes with {want_digest}; nothing was kept"
                ),
            ));
        }
        Ok((size, digest))
    }
    .await;
    drop(file);
    match result {
        Ok(done) => {
            tokio::fs::rename(&part, dest)
                .await
                .map_err(|e| write_error(dest, &e))?;
            Ok(done)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> Failure {
    Failure::refused(
        "client.write_failed",
        format!("cannot write {}: {e}", path.display()),
    )
}

async fn fetch(args: FetchArgs) -> Result<ExitCode, Failure> {
    let api = Api::new(&args.conn)?;
    let id = job_id(&args.id)?;
    let mut written = Vec::new();
    let everything = args.artifact.is_empty() && !args.bundle;
    if everything || !args.artifact.is_empty() {
        let listing = api.get_json(&format!("/v1/jobs/{id}/artifacts")).await?;
        let listed = listing
            .get("artifacts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let wanted: Vec<&Value> = if everything {
            listed.iter().collect()
        } else {
            let mut v = Vec::new();
            for name in &args.artifact {
                let entry = listed
                    .iter()
                    .find(|a| a.get("name").and_then(Value::as_str) == Some(name.as_str()))
                    .ok_or_else(|| {
                        Failure::refused(
                            "client.no_such_artifact",
                            format!(
                                "job {id} lists no artifact {name:?} (`veritrain fetch {id} --out DIR` fetches them all)"
                            ),
                        )
                    })?;
                v.push(entry);
            }
            v
        };
        for a in wanted {
            let name = a.get("name").and_then(Value::as_str).unwrap_or("");
            let size = a.get("size").and_then(Value::as_u64);
            let sha = a.get("sha256").and_then(Value::as_str);
            let (Some(size), Some(sha)) = (size, sha) else {
                return Err(Failure::unreachable(
                    "client.bad_response",
                    format!("the listing gives no size and digest for {name:?}"),
                ));
            };
            let dest = local_path(&args.out, name)?;
            // The listing's own link, but only on this server's API: a
            // listing cannot send the token elsewhere.
            let url = a
                .get("url")
                .and_then(Value::as_str)
                .filter(|u| u.starts_with(&format!("/v1/jobs/{id}/artifacts/")))
                .map_or_else(|| format!("/v1/jobs/{id}/artifacts/{name}"), str::to_owned);
            let (size, digest) = download(&api, &url, &dest, Some((size, sha))).await?;
            if !args.json {
                out!(
                    "{}  {}  ({} bytes, SHA-256 checked)",
                    digest,
                    dest.display(),
                    size
                );
            }
            written.push(json!({"name": name, "path": dest, "size": size, "sha256": digest}));
        }
    }
    let mut bundle = Value::Null;
    if args.bundle {
        let dest = args.out.join(format!("{id}.bundle.zip"));
        let (size, digest) = download(&api, &format!("/v1/jobs/{id}/bundle"), &dest, None).await?;
        if !args.json {
            out!(
                "{}  {}  ({} bytes, the bundle: check it with `veritrain verify`)",
                digest,
                dest.display(),
                size
            );
        }
        bundle = json!({"path": dest, "size": size, "sha256": digest});
    }
    if args.json {
        out!(
            "{}",
            json!({"job": id, "artifacts": written, "bundle": bundle})
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- jobs

async fn jobs(args: JobsArgs) -> Result<ExitCode, Failure> {
    let api = Api::new(&args.conn)?;
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    let next = loop {
        let mut query = Vec::new();
        if let Some(n) = args.limit {
            query.push(format!("limit={n}"));
        }
        if let Some(c) = &after {
            query.push(format!("after={}", percent_encode(c)));
        }
        let path = if query.is_empty() {
            "/v1/jobs".to_owned()
        } else {
            format!("/v1/jobs?{}", query.join("&"))
        };
        let page = api.get_json(&path).await?;
        all.extend(
            page.get("jobs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        let next = page.get("next").and_then(Value::as_str).map(str::to_owned);
        match next {
            Some(c) if args.all_pages => after = Some(c),
            other => break other,
        }
    };
    if args.json {
        out!("{}", json!({"jobs": all, "next": next}));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = all
        .iter()
        .map(|j| {
            let s = |p: &str| {
                j.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_owned()
            };
            [
                s("/id"),
                s("/state"),
                s("/request/model/name"),
                when(j.get("created_at")),
                j.get("duration_secs")
                    .and_then(Value::as_f64)
                    .map_or_else(|| "-".to_owned(), duration_text),
            ]
        })
        .collect();
    let header = ["ID", "STATE", "MODEL", "CREATED", "DURATION"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out!("{}", line.join("  ").trim_end());
    }
    if let Some(c) = next {
        eprintln!("more jobs: --all-pages, or the next page's cursor is {c}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a cursor for the query string.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------- token

async fn token(args: TokenArgs) -> Result<ExitCode, Failure> {
    debug_assert!(args.dev);
    let base = server_url(args.server.as_deref())?;
    let roles = if args.role.is_empty() {
        vec!["developer".to_owned()]
    } else {
        args.role
    };
    let url = format!("{base}/v1/dev/token");
    let resp = http_client()?
        .post(&url)
        .json(&json!({"subject": args.subject, "roles": roles}))
        .send()
        .await
        .map_err(|e| Failure::transport(&url, &e))?;
    if !resp.status().is_success() {
        return Err(api_error(resp).await);
    }
    let body = read_json(resp, &url).await?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Failure::unreachable("client.bad_response", "the answer carries no access_token")
        })?;
    // The one place a token is printed: asked for, to stdout, for
    // `export VERITRAIN_TOKEN=$(veritrain token --dev)`.
    out!("{token}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_splits_events_across_chunks() {
        let mut p = SseParser::default();
        assert!(
            p.push(b": keep-alive\n\nid: 3\nevent: progress\nda")
                .is_empty()
        );
        let events = p.push(b"ta: {\"seq\":3}\r\n\r\nevent: end\ndata: {}\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("3"));
        assert_eq!(events[0].event, "progress");
        assert_eq!(events[0].data, "{\"seq\":3}");
        assert_eq!(events[1].event, "end");
    }

    #[test]
    fn artifact_names_stay_below_the_output_directory() {
        let out = Path::new("/tmp/out");
        assert_eq!(
            local_path(out, "outputs/model.keras").unwrap(),
            Path::new("/tmp/out/outputs/model.keras")
        );
        for hostile in ["../x", "/etc/passwd", "a/../../x", "a\\..\\x", "", "./a"] {
            let e = local_path(out, hostile).unwrap_err();
            assert_eq!(e.code, "client.bad_artifact_name", "{hostile:?}");
        }
    }

    #[test]
    fn job_ids_cannot_reach_other_routes() {
        assert!(job_id("0b6e3c1a-9f2d-4c5e-8a7b-1d2e3f4a5b6c").is_ok());
        for bad in [
            "../metrics",
            "x?y",
            "",
            "123",
            "0b6e3c1a-9f2d-4c5e-8a7b-1d2e3f4a5b6c/../../metrics",
            "0b6e3c1a/9f2d-4c5e-8a7b-1d2e3f4a5b6c",
        ] {
            assert_eq!(job_id(bad).unwrap_err().code, "client.bad_job_id");
        }
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = Token(Zeroizing::new("secret-token".into()));
        assert!(!format!("{t:?}").contains("secret"));
    }

    #[test]
    fn progress_line_reports_bytes_and_rate() {
        let line = progress_line("upload", 512 * 1024, 1024 * 1024, Duration::from_secs(1));
        assert!(line.contains("512.0 KiB / 1.0 MiB"), "{line}");
        assert!(line.contains("50%"), "{line}");
        assert!(line.contains("512.0 KiB/s"), "{line}");
    }
}
