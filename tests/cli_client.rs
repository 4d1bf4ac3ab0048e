//! The CLI client (`veritrain token`, `submit`, `status`, `jobs`, `fetch`,
//! `wait`) against a real `veritrain serve`.
//!
//! - fast tier: the embedded default with no worker (`--no-worker`), so no
//!   training runs: a dev token, a submission of the quickstart example
//!   (queued), its status, the listing, an uploaded input downloaded and
//!   checked byte for byte; a missing token, a refused submission and
//!   another user's job each give their code and exit status;
//! - slow tier (`--ignored`; the trainer runtime and bubblewrap): `submit
//!   --wait` with an embedded worker follows the training to success, then
//!   `fetch --bundle` gives a ZIP that `veritrain verify` accepts against the
//!   server's root key.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod util;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use util::{repo_root, run, veritrain};

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/quickstart").join(name)
}

/// A `veritrain serve` process; its stderr is drained by a thread (so the
/// pipe never fills) and shown when a test fails; killed on drop.
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    url: String,
}

impl Server {
    /// Starts the embedded default in `data` on a free loopback port.
    fn start(data: &Path, worker: bool) -> Server {
        let mut cmd = veritrain();
        cmd.args(["serve", "--data-dir"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("VERITRAIN_LISTEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if worker {
            cmd.env("VERITRAIN_RUNTIME_DIR", runtime_dir());
        } else {
            cmd.arg("--no-worker");
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && line.contains("listening on http://") {
                    let _ = tx.send(line.clone());
                    sent = true;
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut server = Server {
            child,
            log,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                server.url = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .unwrap()
                    .to_owned();
                server
            }
            Err(_) => panic!("the server never listened; its log:\n{}", server.log()),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `veritrain token --dev` for `subject`.
    fn token(&self, subject: &str) -> String {
        let out = run(veritrain()
            .args([
                "token",
                "--dev",
                "--server",
                &self.url,
                "--subject",
                subject,
            ])
            .args(["--role", "developer"]));
        assert_ok(&out, "token --dev");
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_eq!(token.split('.').count(), 3, "not a JWT: {token:?}");
        token
    }

    /// A client command as `token`'s holder.
    fn client(&self, token: &str, args: &[&str]) -> Output {
        run(veritrain()
            .args(args)
            .args(["--server", &self.url])
            .env("VERITRAIN_TOKEN", token)
            .env_remove("VERITRAIN_SERVER"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.log());
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn submit_args<'a>(model: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v = vec!["submit".to_owned(), "--model".to_owned(), model.to_owned()];
    for (flag, file) in [
        ("--data", "data.csv"),
        ("--definition", "definition.yaml"),
        ("--job", "job.yaml"),
    ] {
        v.push(flag.to_owned());
        v.push(example(file).to_string_lossy().into_owned());
    }
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[test]
fn client_submits_lists_shows_and_fetches_without_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // The embedded default creates keys only when it runs workers; an API
    // node with no worker needs the trust material already there.
    assert_ok(
        &run(veritrain()
            .args(["keys", "init", "--dir"])
            .arg(data.join("keys"))),
        "keys init",
    );
    let server = Server::start(&data, false);
    let alice = server.token("alice");

    // submit: the job id on stdout, the upload's progress on stderr.
    let model = example("model.keras").to_string_lossy().into_owned();
    let args = submit_args(&model, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.client(&alice, &args);
    assert_ok(&out, "submit");
    let id = text(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 36, "not a job id: {id:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("upload [") && stderr.contains("100%"),
        "{stderr}"
    );
    assert!(!stderr.contains(&alice), "the token was printed");

    // status: queued (no worker), human and JSON.
    let out = server.client(&alice, &["status", &id]);
    assert_ok(&out, "status");
    let shown = text(&out.stdout);
    assert!(shown.contains("state:    queued"), "{shown}");
    assert!(shown.contains("quickstart-classifier"), "{shown}");
    let out = server.client(&alice, &["status", &id, "--json"]);
    assert_ok(&out, "status --json");
    assert_eq!(json(&out.stdout)["state"], "queued");

    // jobs: the table and the JSON list.
    let out = server.client(&alice, &["jobs"]);
    assert_ok(&out, "jobs");
    let table = text(&out.stdout);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.lines().any(|l| l.contains(&id)
            && l.contains("queued")
            && l.contains("quickstart-classifier")),
        "{table}"
    );
    let out = server.client(&alice, &["jobs", "--json", "--limit", "1", "--all-pages"]);
    assert_ok(&out, "jobs --json");
    let listed = json(&out.stdout);
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(listed["jobs"][0]["id"], id.as_str());

    // fetch: the uploaded model, byte for byte, under its listed name.
    let out_dir = tmp.path().join("fetched");
    let out = server.client(
        &alice,
        &[
            "fetch",
            &id,
            "--artifact",
            "inputs/model.keras",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_ok(&out, "fetch");
    assert_eq!(
        std::fs::read(out_dir.join("inputs/model.keras")).unwrap(),
        std::fs::read(example("model.keras")).unwrap()
    );
    assert!(!out_dir.join("inputs/model.keras.part").exists());
    let out = server.client(
        &alice,
        &["fetch", &id, "--artifact", "outputs/model.keras", "--out"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "--out without a value is a usage error"
    );
    let out = server.client(
        &alice,
        &[
            "fetch",
            &id,
            "--artifact",
            "outputs/model.keras",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error[client.no_such_artifact]"),
        "{}",
        text(&out.stderr)
    );

    // No token: a client-side code, exit 2, before anything is sent.
    let out = run(veritrain()
        .args(["status", &id, "--server", &server.url])
        .env_remove("VERITRAIN_TOKEN"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error[client.no_token]"),
        "{}",
        text(&out.stderr)
    );
    // The token from a file works the same as the variable.
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{alice}\n")).unwrap();
    let out = run(veritrain()
        .args(["status", &id, "--server", &server.url, "--token-file"])
        .arg(&token_file)
        .env_remove("VERITRAIN_TOKEN"));
    assert_ok(&out, "status --token-file");
    // A bad token: the server's code.
    let out = server.client("not-a-token", &["status", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error[auth."),
        "{}",
        text(&out.stderr)
    );

    // A refused submission: not a .keras model → the server's 422 code,
    // exit 1, also in the JSON error.
    let not_keras = example("data.csv").to_string_lossy().into_owned();
    let args = submit_args(&not_keras, &["--json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.client(&alice, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("(HTTP 422)"), "{stderr}");
    let error = json(&out.stdout);
    let code = error["error"]["code"].as_str().unwrap();
    assert!(
        code.starts_with("zip.") || code.starts_with("keras."),
        "{error}"
    );
    assert!(stderr.contains(&format!("error[{code}]")), "{stderr}");
    assert_eq!(error["error"]["status"], 422);

    // Another user's job does not exist for them.
    let bob = server.token("bob");
    let out = server.client(&bob, &["status", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error[jobs.not_found]"),
        "{}",
        text(&out.stderr)
    );
    let out = server.client(&bob, &["jobs", "--json"]);
    assert_ok(&out, "bob's jobs");
    assert_eq!(json(&out.stdout)["jobs"].as_array().unwrap().len(), 0);

    // A job id that is not one: a usage error, nothing sent.
    let out = server.client(&alice, &["wait", "../metrics"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error[client.bad_job_id]"),
        "{}",
        text(&out.stderr)
    );

    // wait on a job cancelled while queued: the event stream to its end,
    // then exit 1 with the reason code.
    let cancel = run(Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", &format!("authorization: Bearer {alice}")])
        .arg(format!("{}/v1/jobs/{id}/cancel", server.url)));
    assert_eq!(text(&cancel.stdout), "200", "{}", text(&cancel.stderr));
    let out = server.client(&alice, &["wait", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "cancelled job.cancelled");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("state: queued → cancelled"), "{stderr}");
    let out = server.client(&alice, &["wait", &id, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out.stdout)["reason"]["code"], "job.cancelled");

    // A server that is not there: no answer, exit 3.
    let out = run(veritrain()
        .args(["status", &id, "--server", "http://127.0.0.1:9"])
        .env("VERITRAIN_TOKEN", &alice));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("error[client.unreachable]"),
        "{}",
        text(&out.stderr)
    );
}

fn runtime_dir() -> PathBuf {
    std::env::var_os("VERITRAIN_RUNTIME_DIR")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join(".venv/runtime"))
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn client_submit_wait_fetch_bundle_verifies() {
    if !runtime_dir().join("venv/bin/python").exists() {
        util::require_or_skip("the trainer runtime is not installed (.venv/runtime)");
        return;
    }
    if !Path::new("/usr/bin/bwrap").exists() {
        util::require_or_skip("bubblewrap is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, true);
    let alice = server.token("alice");
    let model = example("model.keras").to_string_lossy().into_owned();
    let args = submit_args(&model, &["--wait"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.client(&alice, &args);
    assert_ok(&out, "submit --wait");
    let id = text(&out.stdout).lines().next().unwrap().trim().to_owned();
    let stderr = text(&out.stderr);
    assert!(stderr.contains("epoch 10/10 ["), "{stderr}");
    assert!(stderr.contains("loss "), "{stderr}");
    assert!(stderr.contains("succeeded"), "{stderr}");

    let out = server.client(&alice, &["wait", &id]);
    assert_ok(&out, "wait on a finished job");

    let out_dir = tmp.path().join("out");
    let out = server.client(
        &alice,
        &["fetch", &id, "--bundle", "--out", out_dir.to_str().unwrap()],
    );
    assert_ok(&out, "fetch --bundle");
    let bundle = out_dir.join(format!("{id}.bundle.zip"));
    let out = run(veritrain()
        .arg("verify")
        .arg(&bundle)
        .arg("--root-key")
        .arg(data.join("keys/public/root.pub")));
    assert_ok(&out, "verify the fetched bundle");

    let out = server.client(
        &alice,
        &[
            "fetch",
            &id,
            "--artifact",
            "outputs/model.keras",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_ok(&out, "fetch the trained model");
    assert!(out_dir.join("outputs/model.keras").is_file());
}
