//! Slow tier: the service end to end through the real `veritrain` binary,
//! the real trainer runtime and the real sandbox, driven over HTTP with curl
//! like a client would.
//!
//! - the embedded default (`veritrain serve --data-dir`: SQLite, local disk,
//!   dev sign-in, an embedded worker): a submitted job trains, its events
//!   stream to the end, its bundle downloads as one ZIP that `veritrain
//!   verify` accepts, its integrity check passes, and a stored object
//!   changed afterwards is caught by the integrity check and refused by the
//!   bundle download;
//! - the scaled deployment: an API node with no worker and no private key
//!   (`serve --config --no-worker`) and a separate `veritrain worker`
//!   process, on PostgreSQL and an S3 server, with presigned downloads.
//!
//! Needs root, bwrap, the runtime, and for the second test PostgreSQL and
//! the S3 server (scripts/test starts them); skips without them locally and
//! fails under `CI=true`.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use util::{Process, repo_root, run, runtime_dir, url_in, veritrain};

fn available() -> bool {
    if !runtime_dir().join("venv/bin/python").exists() {
        util::require_or_skip("the trainer runtime is not installed (.venv/runtime)");
        return false;
    }
    if !Path::new("/usr/bin/bwrap").exists() {
        util::require_or_skip("bubblewrap is not installed");
        return false;
    }
    true
}

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/quickstart").join(name)
}

fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = run(Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(args));
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut body = out.stdout;
    let nl = body.iter().rposition(|b| *b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&body[nl + 1..]).parse().unwrap();
    body.truncate(nl);
    (code, body)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

struct Client {
    url: String,
    token: String,
}

impl Client {
    fn sign_in(url: &str, subject: &str, roles: &str) -> Client {
        let (code, body) = curl(&[
            "-X",
            "POST",
            &format!("{url}/v1/dev/token"),
            "-H",
            "content-type: application/json",
            "-d",
            &format!(r#"{{"subject":"{subject}","roles":{roles}}}"#),
        ]);
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        Client {
            url: url.to_owned(),
            token: json(&body)["access_token"].as_str().unwrap().to_owned(),
        }
    }

    fn auth(&self) -> String {
        format!("authorization: Bearer {}", self.token)
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        curl(&["-H", &self.auth(), &format!("{}{path}", self.url)])
    }

    fn get_json(&self, path: &str) -> Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
        json(&body)
    }

    fn submit_quickstart(&self) -> String {
        let part = |name: &str, file: &str| format!("{name}=@{}", example(file).display());
        let (code, body) = curl(&[
            "-H",
            &self.auth(),
            "-F",
            &part("job", "job.yaml"),
            "-F",
            &part("definition", "definition.yaml"),
            "-F",
            &part("model", "model.keras"),
            "-F",
            &part("dataset", "data.csv"),
            &format!("{}/v1/jobs", self.url),
        ]);
        assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
        json(&body)["id"].as_str().unwrap().to_owned()
    }

    /// Follows the job's SSE stream to its `end` event; returns the stream.
    fn follow(&self, id: &str) -> String {
        let out = run(Command::new("curl")
            .args(["-sS", "-N", "--max-time", "600", "-H", &self.auth()])
            .arg(format!("{}/v1/jobs/{id}/events", self.url)));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("event: end"),
            "the stream did not end: {text}"
        );
        text
    }
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The checks every succeeded job must pass through the API.
fn check_succeeded_job(client: &Client, id: &str, root_pub: &Path, scratch: &Path) -> Value {
    let events = client.follow(id);
    for needle in [
        "\"to\":\"validating\"",
        "\"to\":\"training\"",
        "\"to\":\"attesting\"",
        "\"to\":\"succeeded\"",
        "event: progress",
        "event: log",
    ] {
        assert!(
            events.contains(needle),
            "no {needle} in the events:\n{events}"
        );
    }
    let job = client.get_json(&format!("/v1/jobs/{id}"));
    assert_eq!(job["state"], "succeeded", "{job}");
    let p = &job["progress"];
    assert_eq!(p["epoch"], p["total_epochs"], "{job}");
    assert!(p["metrics"]["loss"].is_number(), "{job}");

    // The bundle, as one ZIP, verifies offline with the pinned root key.
    let zip = scratch.join(format!("{id}.zip"));
    let out = run(Command::new("curl")
        .args(["-sS", "-f", "-o"])
        .arg(&zip)
        .args(["-H", &client.auth()])
        .arg(format!("{}/v1/jobs/{id}/bundle", client.url)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(veritrain()
        .arg("verify")
        .arg(&zip)
        .arg("--root-key")
        .arg(root_pub)
        .arg("--json"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out.stdout);
    assert_eq!(report["job_id"], id);

    // The trained model as an artifact is the one the bundle describes.
    let model = scratch.join(format!("{id}.keras"));
    let out = run(Command::new("curl")
        .args(["-sS", "-f", "-o"])
        .arg(&model)
        .args(["-H", &client.auth()])
        .arg(format!(
            "{}/v1/jobs/{id}/artifacts/outputs/model.keras",
            client.url
        )));
    assert!(out.status.success());
    assert_eq!(
        sha256_file(&model),
        report["model_sha256"].as_str().unwrap()
    );

    let integrity = client.get_json(&format!("/v1/jobs/{id}/integrity"));
    assert_eq!(integrity["passed"], true, "{integrity}");
    assert!(
        integrity["objects"].as_array().unwrap().len() >= 17,
        "{integrity}"
    );
    integrity
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn embedded_service_trains_a_job_and_catches_a_tampered_stored_object() {
    if !available() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let mut cmd = veritrain();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("VERITRAIN_RUNTIME_DIR", runtime_dir());
    let (server, line) = Process::start(cmd, "listening on");
    assert!(line.contains("1 worker(s) in this process"), "{line}");
    let url = url_in(&line);
    let alice = Client::sign_in(&url, "alice", r#"["developer"]"#);
    let id = alice.submit_quickstart();
    let root_pub = data.join("keys/public/root.pub");
    check_succeeded_job(&alice, &id, &root_pub, scratch.path());

    // Another developer cannot see it; an auditor can.
    let bob = Client::sign_in(&url, "bob", r#"["developer"]"#);
    assert_eq!(bob.get(&format!("/v1/jobs/{id}")).0, 404);
    let audrey = Client::sign_in(&url, "audrey", r#"["auditor"]"#);
    assert_eq!(audrey.get(&format!("/v1/jobs/{id}/integrity")).0, 200);

    let ada = Client::sign_in(&url, "ada", r#"["admin"]"#);
    assert_eq!(curl(&[&format!("{url}/metrics")]).0, 401);
    let (_, metrics) = ada.get("/metrics");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("veritrain_jobs{state=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("veritrain_worker_jobs_total{outcome=\"succeeded\"} 1"),
        "{metrics}"
    );

    // The tamper sweep finds nothing wrong with an untouched job.
    let sweep = |c: &Client| {
        let (code, body) = curl(&[
            "-X",
            "POST",
            "-H",
            &c.auth(),
            &format!("{}/v1/admin/sweep", c.url),
        ]);
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        json(&body)
    };
    let clean = sweep(&ada);
    assert_eq!(clean["checked"], 1, "{clean}");
    assert_eq!(clean["alerts"].as_array().unwrap().len(), 0, "{clean}");

    // Someone with access to the data directory changes the stored model.
    let stored = data.join(format!("objects/jobs/{id}/attempts/1/outputs/model.keras"));
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&stored, bytes).unwrap();
    let integrity = alice.get_json(&format!("/v1/jobs/{id}/integrity"));
    assert_eq!(integrity["passed"], false, "{integrity}");
    let model = integrity["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "outputs/model.keras")
        .unwrap();
    assert_eq!(model["status"], "mismatch", "{integrity}");
    let text = integrity["verification"].to_string();
    assert!(text.contains("outputs/model.keras"), "{text}");
    assert_eq!(integrity["verification"]["passed"], false);
    let (code, body) = alice.get(&format!("/v1/jobs/{id}/bundle"));
    assert_eq!(code, 409, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["error"]["code"], "jobs.integrity_failed");
    // The sweep flags it too, and the audit log (hash chain intact) records the alerts.
    let flagged = sweep(&ada);
    assert_eq!(flagged["alerts"], serde_json::json!([id]), "{flagged}");
    let log = ada.get_json("/v1/audit?limit=1000");
    let alerts = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "integrity.alert")
        .count();
    assert!(alerts >= 2, "{log}");
    assert_eq!(ada.get_json("/v1/audit/verify")["intact"], true);
    // The last check is on the job's event log, with its time.
    let (_, events) = alice.get(&format!("/v1/jobs/{id}/events"));
    let events = String::from_utf8(events).unwrap();
    assert!(events.contains("event: integrity"), "{events}");
    assert!(events.contains("\"passed\":false"), "{events}");
    drop(server);
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn scaled_deployment_api_node_and_worker_process_on_postgres_and_s3() {
    if !available() {
        return;
    }
    let (Ok(pg), Ok(s3)) = (
        std::env::var("VERITRAIN_TEST_DATABASE_URL"),
        std::env::var("VERITRAIN_TEST_S3_ENDPOINT"),
    ) else {
        util::require_or_skip(
            "PostgreSQL or the S3 server is not running (eval \"$(scripts/start-postgres)\" and \"$(scripts/start-s3)\")",
        );
        return;
    };
    let var = |n: &str| std::env::var(n).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let keys = scratch.path().join("keys");
    let out = run(veritrain().args(["keys", "init", "--dir"]).arg(&keys));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A fresh schema of our own in the test database.
    let schema = format!("e2e_{}", std::process::id());
    let out = run(Command::new("psql").args([
        &pg,
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sep = if pg.contains('?') { '&' } else { '?' };
    let db_url = format!("{pg}{sep}options[search_path]={schema}");

    let config = scratch.path().join("veritrain.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
trust_dir = "{trust}"
scratch_dir = "{scratch}"

[store]
kind = "s3"
endpoint = "{s3}"
bucket = "{bucket}"
region = "{region}"
access_key_id = "{access}"
allow_http = true

[auth]
dev = true

[worker]
keys_dir = "{keys}"
runtime_dir = "{runtime}"
lease_secs = 30
"#,
            trust = keys.join("public").display(),
            scratch = scratch.path().join("tmp").display(),
            bucket = var("VERITRAIN_TEST_S3_BUCKET"),
            region = var("VERITRAIN_TEST_S3_REGION"),
            access = var("VERITRAIN_TEST_S3_ACCESS_KEY_ID"),
            keys = keys.display(),
            runtime = runtime_dir().display(),
        ),
    )
    .unwrap();
    // Secrets come from the environment, never from the file or arguments.
    let secrets = |cmd: &mut Command| {
        cmd.env("VERITRAIN_DATABASE_URL", &db_url).env(
            "VERITRAIN_S3_SECRET_ACCESS_KEY",
            var("VERITRAIN_TEST_S3_SECRET_ACCESS_KEY"),
        );
    };
    let mut api = veritrain();
    api.args(["serve", "--no-worker", "--config"]).arg(&config);
    secrets(&mut api);
    let (api, line) = Process::start(api, "listening on");
    assert!(line.contains("0 worker(s) in this process"), "{line}");
    assert!(line.contains("Postgres"), "{line}");
    assert!(line.contains("store s3"), "{line}");
    let url = url_in(&line);

    let mut worker = veritrain();
    worker.args(["worker", "--config"]).arg(&config);
    secrets(&mut worker);
    let (worker, _) = Process::start(worker, "worker(s) on database");

    let alice = Client::sign_in(&url, "alice", r#"["developer"]"#);
    let id = alice.submit_quickstart();
    check_succeeded_job(&alice, &id, &keys.join("public/root.pub"), scratch.path());

    // Presigned S3 downloads work and serve the same bytes.
    let listing = alice.get_json(&format!("/v1/jobs/{id}/artifacts?presign=true"));
    let model = listing["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "outputs/model.keras")
        .unwrap()
        .clone();
    let presigned = model["presigned_url"].as_str().unwrap();
    let (code, bytes) = curl(&[presigned]);
    assert_eq!(code, 200);
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        model["sha256"].as_str().unwrap()
    );
    let secret = var("VERITRAIN_TEST_S3_SECRET_ACCESS_KEY");
    for (who, log) in [("api", api.log()), ("worker", worker.log())] {
        assert!(!log.contains(&secret), "the {who} logged the S3 secret");
    }
}
