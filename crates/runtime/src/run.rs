//! Running the trainer and supervising it: events, stderr, timeout, result.
//!
//! [`supervise`] takes any prepared `Command` (the trainer started directly,
//! or the same command wrapped by the sandbox), streams its events, keeps
//! the end of its stderr, enforces a wall-clock limit, and judges the result
//! with [`crate::events::judge`].
//!
//! [`run_direct`] runs the trainer **without a sandbox**. It exists for
//! development and for the tests of the training loop itself; the worker
//! must run user models only through the sandbox.

use std::io::{BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{Error, ExitInfo, Result};
use crate::events::{TrainerEvent, TrainerOutputs, judge, read_events};
use crate::identity::VerifiedRuntime;
use crate::spec::JobSpec;
use crate::trainer::{self, TrainerCommand, TrainerPaths};

/// Bytes of stderr kept for diagnostics.
const STDERR_TAIL: usize = 16 * 1024;
/// Events kept in memory (a hostile stream cannot grow the worker without
/// bound); later ones are still passed to the callback.
const MAX_EVENTS: usize = 100_000;

/// A job's files on the worker side.
#[derive(Debug, Clone)]
pub struct PreparedJob {
    /// The job's working directory.
    pub work_dir: PathBuf,
    /// `work_dir/app/train.py`.
    pub trainer: PathBuf,
    /// `work_dir/job.json`.
    pub spec: PathBuf,
    /// `work_dir/home`, `HOME` of a direct run.
    pub home: PathBuf,
    /// The output directory named in the spec.
    pub output_dir: PathBuf,
    /// SHA-256 of the trainer that will run (record it with the job).
    pub trainer_sha256: String,
    /// SHA-256 of the spec bytes written.
    pub spec_sha256: String,
}

/// Write the trainer and the spec into `work_dir`.
///
/// # Errors
/// [`Error::Io`].
pub fn prepare_job(work_dir: &Path, spec: &JobSpec) -> Result<PreparedJob> {
    let trainer = trainer::write_to(&work_dir.join("app"))?;
    let home = work_dir.join("home");
    std::fs::create_dir_all(&home).map_err(|e| Error::io(&home, e))?;
    let spec_path = work_dir.join("job.json");
    let bytes = spec.to_json();
    std::fs::write(&spec_path, &bytes).map_err(|e| Error::io(&spec_path, e))?;
    Ok(PreparedJob {
        work_dir: work_dir.to_path_buf(),
        trainer,
        spec: spec_path,
        home,
        output_dir: PathBuf::from(&spec.output_dir),
        trainer_sha256: trainer::sha256_hex(),
        spec_sha256: hex::encode(Sha256::digest(&bytes)),
    })
}

/// A successful job.
#[derive(Debug, Clone)]
pub struct TrainingOutcome {
    /// The output files.
    pub outputs: TrainerOutputs,
    /// Every event received (up to 100,000).
    pub events: Vec<TrainerEvent>,
    /// Wall time of the process.
    pub wall: Duration,
}

/// Run the trainer directly, unsandboxed (development and tests only).
///
/// # Errors
/// As [`supervise`].
pub fn run_direct(
    runtime: &VerifiedRuntime,
    job: &PreparedJob,
    timeout: Duration,
    on_event: &mut dyn FnMut(&TrainerEvent),
) -> Result<TrainingOutcome> {
    let cmd = TrainerCommand::new(&TrainerPaths {
        venv: runtime.venv(),
        trainer: job.trainer.clone(),
        spec: job.spec.clone(),
        home: job.home.clone(),
        cwd: job.home.clone(),
    });
    supervise(cmd.to_command(), &job.output_dir, timeout, on_event)
}

/// Start `cmd`, stream its stdout events to `on_event`, kill it after
/// `timeout`, and judge the result against `output_dir` (as this process
/// sees it).
///
/// # Errors
/// [`Error::TrainerSpawn`], [`Error::TrainerTimeout`], and the errors of
/// [`crate::events::judge`].
pub fn supervise(
    mut cmd: Command,
    output_dir: &Path,
    timeout: Duration,
    on_event: &mut dyn FnMut(&TrainerEvent),
) -> Result<TrainingOutcome> {
    let start = Instant::now();
    let program = PathBuf::from(cmd.get_program());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|source| Error::TrainerSpawn { program, source })?;

    let (tx, rx) = mpsc::channel::<TrainerEvent>();
    let stdout = child.stdout.take();
    let out_thread = std::thread::spawn(move || {
        if let Some(out) = stdout {
            let _ = read_events(BufReader::new(out), |e| {
                let _ = tx.send(e);
            });
        }
    });
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let stderr = child.stderr.take();
    let tail_w = Arc::clone(&tail);
    let err_thread = std::thread::spawn(move || {
        let Some(mut err) = stderr else { return };
        let mut buf = [0u8; 8192];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut t) = tail_w.lock() {
                t.extend_from_slice(buf.get(..n).unwrap_or_default());
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        }
    });

    let deadline = start + timeout;
    let mut events = Vec::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(e) => {
                on_event(&e);
                if events.len() < MAX_EVENTS {
                    events.push(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
    }
    // stdout closed (or time is up): wait for the exit, within the limit.
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if !timed_out && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    if timed_out {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = out_thread.join();
    let _ = err_thread.join();
    // Events that arrived between the last receive and the exit.
    for e in rx.try_iter() {
        on_event(&e);
        if events.len() < MAX_EVENTS {
            events.push(e);
        }
    }
    let wall = start.elapsed();
    let stderr_tail = tail
        .lock()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default();
    let status = match status {
        Some(s) if !timed_out => s,
        _ => return Err(Error::TrainerTimeout { limit: timeout }),
    };
    let exit = ExitInfo {
        code: status.code(),
        signal: status.signal(),
    };
    let outputs = judge(exit, &events, output_dir, &stderr_tail)?;
    Ok(TrainingOutcome {
        outputs,
        events,
        wall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn a_fake_trainer_that_does_everything_succeeds() {
        let d = tempfile::tempdir().unwrap();
        let script = format!(
            "cd {}; for f in model.keras metrics.json split.json training.log; do echo x > $f; done; \
             echo '{{\"event\":\"epoch_begin\",\"epoch\":1}}'; echo noise >&2; echo '{{\"event\":\"done\",\"epochs\":1}}'",
            d.path().display()
        );
        let mut seen = 0;
        let out = supervise(sh(&script), d.path(), Duration::from_secs(30), &mut |_| {
            seen += 1
        })
        .unwrap();
        assert_eq!(seen, 2);
        assert_eq!(out.events.len(), 2);
    }

    #[test]
    fn exit_zero_without_outputs_is_not_success() {
        let d = tempfile::tempdir().unwrap();
        let err = supervise(
            sh("echo '{\"event\":\"done\",\"epochs\":1}'"),
            d.path(),
            Duration::from_secs(30),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.code(), "runtime.trainer_protocol");
    }

    #[test]
    fn error_event_and_exit_status_become_a_typed_failure() {
        let d = tempfile::tempdir().unwrap();
        let err = supervise(
            sh("echo '{\"event\":\"error\",\"code\":\"trainer.bad_shape\",\"message\":\"no\"}'; echo trace >&2; exit 1"),
            d.path(),
            Duration::from_secs(30),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.trainer_code(), Some("trainer.bad_shape"));
        let Error::TrainerFailed {
            stderr_tail, exit, ..
        } = &err
        else {
            panic!()
        };
        assert_eq!(stderr_tail.trim(), "trace");
        assert_eq!(exit.code, Some(1));
    }

    #[test]
    fn timeout_kills_the_process() {
        let d = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let err = supervise(
            sh("exec sleep 30"),
            d.path(),
            Duration::from_millis(500),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.code(), "runtime.trainer_timeout");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn killed_process_is_reported_as_killed() {
        let d = tempfile::tempdir().unwrap();
        let err = supervise(
            sh("kill -9 $$"),
            d.path(),
            Duration::from_secs(30),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.code(), "runtime.trainer_killed");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let d = tempfile::tempdir().unwrap();
        let err = supervise(
            Command::new("/nonexistent/python"),
            d.path(),
            Duration::from_secs(5),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.code(), "runtime.trainer_spawn");
    }
}
