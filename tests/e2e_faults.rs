//! Slow tier: the service under faults, through the real binary, the real
//! runtime and sandbox, PostgreSQL and S3.
//!
//! - a worker killed (SIGKILL) in the middle of training: another worker
//!   takes the job up after the lease expires, PostgreSQL is restarted while
//!   that second attempt trains, and the job still succeeds exactly once,
//!   with a bundle that verifies and only the second attempt's objects in it;
//! - the S3 server stopped during a dataset upload: the submission is
//!   refused with `503 store.unavailable`, no job exists, and once the
//!   server is back the next submission succeeds without a restart.
//!
//! The tests restart shared services, so they run one at a time.
//! Needs root, bwrap, the runtime, PostgreSQL (`scripts/start-postgres`)
//! and s3s-fs (`scripts/start-s3`); skips without them locally, fails
//! under `CI=true`.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod util;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{Process as Proc, repo_root, run, runtime_dir, url_in, veritrain};

static SERIAL: Mutex<()> = Mutex::new(());

fn services() -> Option<(String, String)> {
    if !runtime_dir().join("venv/bin/python").exists() || !Path::new("/usr/bin/bwrap").exists() {
        util::require_or_skip("the trainer runtime or bubblewrap is missing");
        return None;
    }
    match (
        std::env::var("VERITRAIN_TEST_DATABASE_URL"),
        std::env::var("VERITRAIN_TEST_S3_ENDPOINT"),
    ) {
        (Ok(pg), Ok(s3)) => Some((pg, s3)),
        _ => {
            util::require_or_skip(
                "PostgreSQL or the S3 server is not running (scripts/test starts them)",
            );
            None
        }
    }
}

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/quickstart").join(name)
}

fn curl(args: &[&str]) -> (u16, Value) {
    let out = run(Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(args));
    let mut body = out.stdout;
    let nl = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[nl + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(nl);
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn token(url: &str, who: &str) -> String {
    let (code, v) = curl(&[
        "-X",
        "POST",
        &format!("{url}/v1/dev/token"),
        "-H",
        "content-type: application/json",
        "-d",
        &format!(r#"{{"subject":"{who}","roles":["developer","auditor"]}}"#),
    ]);
    assert_eq!(code, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

fn submit(url: &str, token: &str, dataset: &Path) -> (u16, Value) {
    let part = |name: &str, p: &Path| format!("{name}=@{}", p.display());
    curl(&[
        "-H",
        &format!("authorization: Bearer {token}"),
        "-F",
        &part("job", &example("job.yaml")),
        "-F",
        &part("definition", &example("definition.yaml")),
        "-F",
        &part("model", &example("model.keras")),
        "-F",
        &part("dataset", dataset),
        &format!("{url}/v1/jobs"),
    ])
}

fn job(url: &str, token: &str, id: &str) -> Value {
    let (code, v) = curl(&[
        "-H",
        &format!("authorization: Bearer {token}"),
        &format!("{url}/v1/jobs/{id}"),
    ]);
    assert_eq!(code, 200, "{v}");
    v
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn config(dir: &Path, keys: &Path, top: &str, store: &str, lease_secs: u64) -> PathBuf {
    let path = dir.join("veritrain.toml");
    std::fs::write(
        &path,
        format!(
            "{top}listen = \"127.0.0.1:0\"\ntrust_dir = \"{}\"\nscratch_dir = \"{}\"\n{store}\n[auth]\ndev = true\n\n\
             [worker]\nkeys_dir = \"{}\"\nruntime_dir = \"{}\"\nlease_secs = {lease_secs}\nmax_attempts = 3\n",
            keys.join("public").display(),
            dir.join("tmp").display(),
            keys.display(),
            runtime_dir().display(),
        ),
    )
    .unwrap();
    path
}

fn s3_table(endpoint: &str, bucket: &str, access: &str) -> String {
    format!(
        "[store]\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\n\
         access_key_id = \"{access}\"\nallow_http = true\n"
    )
}

fn fresh_schema(pg: &str, name: &str) -> String {
    let out = run(Command::new("psql").args([
        pg,
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sep = if pg.contains('?') { '&' } else { '?' };
    format!("{pg}{sep}options[search_path]={name}")
}

fn keys(dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    let out = run(veritrain().args(["keys", "init", "--dir"]).arg(&keys));
    assert!(out.status.success());
    keys
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn a_killed_worker_and_a_postgres_restart_do_not_lose_or_duplicate_the_job() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some((pg, s3)) = services() else { return };
    let var = |n: &str| std::env::var(n).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let keys = keys(scratch.path());
    let db_url = fresh_schema(&pg, &format!("faults_{}", std::process::id()));
    let config = config(
        scratch.path(),
        &keys,
        "",
        &s3_table(
            &s3,
            &var("VERITRAIN_TEST_S3_BUCKET"),
            &var("VERITRAIN_TEST_S3_ACCESS_KEY_ID"),
        ),
        10,
    );
    let env = |cmd: &mut Command| {
        cmd.env("VERITRAIN_DATABASE_URL", &db_url).env(
            "VERITRAIN_S3_SECRET_ACCESS_KEY",
            var("VERITRAIN_TEST_S3_SECRET_ACCESS_KEY"),
        );
    };
    let mut api = veritrain();
    api.args(["serve", "--no-worker", "--config"]).arg(&config);
    env(&mut api);
    let (_api, line) = Proc::start(api, "listening on");
    let url = url_in(&line);
    let t = token(&url, "alice");

    let mut w1 = veritrain();
    w1.args(["worker", "--config"]).arg(&config);
    env(&mut w1);
    let (mut first, _) = Proc::start(w1, "worker(s) on database");
    let (code, v) = submit(&url, &t, &example("data.csv"));
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    wait_for("training", Duration::from_secs(120), || {
        job(&url, &t, &id)["state"] == "training"
    });
    // SIGKILL mid-training: no cleanup, the lease just stops being renewed.
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let mut w2 = veritrain();
    w2.args(["worker", "--config"]).arg(&config);
    env(&mut w2);
    let (_second, _) = Proc::start(w2, "worker(s) on database");
    // The second worker's sweep requeues the job once the lease expires,
    // then claims it; restart PostgreSQL while that attempt trains.
    wait_for("the second attempt", Duration::from_secs(120), || {
        let j = job(&url, &t, &id);
        j["attempts"] == 2 && j["state"] == "training"
    });
    // The server must not inherit our pipes (it would hold them open):
    // its output goes to its log file, ours to nowhere.
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl"])
        .args([
            "-D",
            "/tmp/veritrain-pg/data",
            "-l",
            "/tmp/veritrain-pg/server.log",
        ])
        .args(["-m", "fast", "-w", "restart"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "pg_ctl restart failed; see /tmp/veritrain-pg/server.log"
    );
    wait_for("the job to finish", Duration::from_secs(300), || {
        let j = job(&url, &t, &id);
        j["state"]
            .as_str()
            .is_some_and(|s| ["succeeded", "failed", "cancelled"].contains(&s))
    });
    let j = job(&url, &t, &id);
    assert_eq!(j["state"], "succeeded", "{j}");
    assert_eq!(j["attempts"], 2, "{j}");
    // One job, not two.
    let (_, list) = curl(&[
        "-H",
        &format!("authorization: Bearer {t}"),
        &format!("{url}/v1/jobs"),
    ]);
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    // The bundle is the second attempt's, complete, and verifies.
    let (_, arts) = curl(&[
        "-H",
        &format!("authorization: Bearer {t}"),
        &format!("{url}/v1/jobs/{id}/artifacts"),
    ]);
    assert_eq!(arts["complete"], true);
    let zip = scratch.path().join("b.zip");
    let out = run(Command::new("curl")
        .args(["-sS", "-f", "-o"])
        .arg(&zip)
        .args(["-H", &format!("authorization: Bearer {t}")])
        .arg(format!("{url}/v1/jobs/{id}/bundle")));
    assert!(out.status.success());
    let out = run(veritrain()
        .arg("verify")
        .arg(&zip)
        .arg("--root-key")
        .arg(keys.join("public/root.pub")));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_, integrity) = curl(&[
        "-H",
        &format!("authorization: Bearer {t}"),
        &format!("{url}/v1/jobs/{id}/integrity"),
    ]);
    assert_eq!(integrity["passed"], true, "{integrity}");
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn an_s3_outage_during_an_upload_is_refused_and_the_service_recovers() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(_) = services() else { return };
    let scratch = tempfile::tempdir().unwrap();
    // A private S3 server, so stopping it disturbs no other test.
    let root = scratch.path().join("s3");
    std::fs::create_dir_all(root.join("faults")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s3s = |root: &Path| {
        let mut cmd = Command::new(
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"))
                .filter(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from("s3s-fs")),
        );
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "faults", "--secret-key", "faults-secret"])
            .arg(root)
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        wait_for("s3s-fs", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        child
    };
    let mut server = s3s(&root);
    let keys = keys(scratch.path());
    let data_dir = scratch.path().join("data");
    let config = config(
        scratch.path(),
        &keys,
        &format!("data_dir = \"{}\"\n", data_dir.display()),
        &s3_table(&format!("http://127.0.0.1:{port}"), "faults", "faults"),
        30,
    );
    let mut api = veritrain();
    api.args(["serve", "--no-worker", "--config"])
        .arg(&config)
        .env("VERITRAIN_S3_SECRET_ACCESS_KEY", "faults-secret");
    let (_api, line) = Proc::start(api, "listening on");
    let url = url_in(&line);
    let t = token(&url, "alice");

    // A 600 MB dataset (the API checks the definition and the model before
    // streaming it, not its rows), so the upload is still going when the
    // store goes away.
    let big = scratch.path().join("big.csv");
    {
        let rows = std::fs::read(example("data.csv")).unwrap();
        let body_start = rows.iter().position(|b| *b == b'\n').unwrap() + 1;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        f.write_all(&rows).unwrap();
        while f.get_ref().metadata().unwrap().len() < 600 << 20 {
            for _ in 0..64 {
                f.write_all(&rows[body_start..]).unwrap();
            }
            f.flush().unwrap();
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (url, t, big) = (url.clone(), t.clone(), big.clone());
        std::thread::spawn(move || tx.send(submit(&url, &t, &big)).unwrap());
    }
    std::thread::sleep(Duration::from_millis(800));
    server.kill().unwrap();
    server.wait().unwrap();
    let (code, v) = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"]["code"], "store.unavailable", "{v}");

    // Nothing half-stored: no job, and once the store is back, no object.
    let (_, list) = curl(&[
        "-H",
        &format!("authorization: Bearer {t}"),
        &format!("{url}/v1/jobs"),
    ]);
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0, "{list}");
    let mut server = s3s(&root);
    let objects = walk(&root.join("faults"));
    assert!(
        objects.is_empty(),
        "objects left after a refused upload: {objects:?}"
    );
    // The service recovers by itself.
    let (code, v) = submit(&url, &t, &example("data.csv"));
    assert_eq!(code, 201, "{v}");
    server.kill().unwrap();
    let _ = server.wait();
}

/// Every regular file under `dir` except s3s-fs's own bookkeeping.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
