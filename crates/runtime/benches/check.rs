//! Benchmark of the runtime tamper check (docs/benchmarks.md).
//!
//! `cargo bench -p veritrain-runtime --bench check [-- RUNTIME_DIR [RUNS]]`
//!
//! Measures, on the installed runtime (default `.venv/runtime` under the
//! repository root):
//! - the full check as the worker runs it (`VerifiedRuntime::verify`: load
//!   the identity, hash the interpreter, walk, re-hash every file on all
//!   cores);
//! - its parts: a metadata-only walk (what a size/mtime check would cost;
//!   not used, it is weaker) and hashing alone with 1 and N threads;
//! - `sha256sum` over the same files with `xargs -P N`, as a reference.
//!
//! The page cache is warm after the first run; the first run is reported
//! separately as "first" (it may be cold if nothing read the tree before).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use veritrain_runtime::identity::VENV_DIR;
use veritrain_runtime::tree::TreeManifest;
use veritrain_runtime::{RuntimeIdentity, VerifiedRuntime};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/runtime"));
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {threads} CPUs ({cpu}), loadavg at start {}",
        load.trim()
    );

    let (first, r) = time(|| VerifiedRuntime::verify(&dir));
    let v = match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "cannot check {}: [{}] {e}; run `veritrain runtime install` first",
                dir.display(),
                e.code()
            );
            std::process::exit(1);
        }
    };
    let stats = v.check_report().stats;
    println!(
        "runtime: {} files, {} dirs, {} links, {:.3} GB",
        stats.files,
        stats.directories,
        stats.symlinks,
        stats.bytes as f64 / 1e9
    );
    println!("full check, first run: {:.3}s", first.as_secs_f64());

    let full: Vec<Duration> = (0..runs)
        .map(|_| time(|| VerifiedRuntime::verify(&dir)).0)
        .collect();
    let load_id: Vec<Duration> = (0..runs)
        .map(|_| time(|| RuntimeIdentity::load(&dir)).0)
        .collect();
    let venv = dir.join(VENV_DIR);
    let measure: Vec<Duration> = (0..runs)
        .map(|_| time(|| TreeManifest::measure(&venv)).0)
        .collect();
    let walk: Vec<Duration> = (0..runs)
        .map(|_| {
            time(|| {
                let out = Command::new("find")
                    .arg(&venv)
                    .args(["-printf", "%s %T@ %i %m %p\\n"])
                    .output();
                out.map(|o| o.stdout.len()).unwrap_or(0)
            })
            .0
        })
        .collect();
    let gb = stats.bytes as f64 / 1e9;
    let m = median(full.clone());
    println!(
        "full check (verify), median of {runs}: {:.3}s = {:.2} GB/s  [min {:.3}s, max {:.3}s]",
        m.as_secs_f64(),
        gb / m.as_secs_f64(),
        full.iter().min().copied().unwrap_or_default().as_secs_f64(),
        full.iter().max().copied().unwrap_or_default().as_secs_f64()
    );
    println!(
        "  of which loading the identity (6 MB JSON + root recompute): {:.3}s",
        median(load_id).as_secs_f64()
    );
    println!(
        "measure (walk + hash, no compare), median: {:.3}s",
        median(measure).as_secs_f64()
    );
    println!(
        "metadata-only walk (find -printf size/mtime/inode), median: {:.3}s",
        median(walk).as_secs_f64()
    );

    let script = format!(
        "cd '{}' && find . -type f -print0 | xargs -0 -P{threads} -n 256 sha256sum > /dev/null",
        venv.display()
    );
    let mut ref_runs = Vec::new();
    for _ in 0..runs.min(3) {
        let (d, st) = time(|| Command::new("sh").args(["-c", &script]).status());
        if st.map(|s| s.success()).unwrap_or(false) {
            ref_runs.push(d);
        }
    }
    if !ref_runs.is_empty() {
        let r = median(ref_runs);
        println!(
            "reference: sha256sum via xargs -P{threads}, median: {:.3}s = {:.2} GB/s",
            r.as_secs_f64(),
            gb / r.as_secs_f64()
        );
    }
    // Single-stream speed on the largest file, ours against OpenSSL's.
    if let Some((path, size)) = v
        .identity()
        .manifest
        .iter()
        .filter_map(|e| match e.kind {
            veritrain_runtime::tree::EntryKind::File { size, .. } => {
                Some((venv.join(&e.path), size))
            }
            _ => None,
        })
        .max_by_key(|x| x.1)
    {
        let ours: Vec<Duration> = (0..runs.min(3))
            .map(|_| time(|| veritrain_runtime::identity::sha256_file(&path)).0)
            .collect();
        let ossl: Vec<Duration> = (0..runs.min(3))
            .map(|_| {
                time(|| {
                    Command::new("openssl")
                        .args(["dgst", "-sha256"])
                        .arg(&path)
                        .output()
                })
                .0
            })
            .collect();
        let mb = size as f64 / 1e9;
        println!(
            "largest file ({:.0} MB), one thread: ours {:.2} GB/s, openssl dgst {:.2} GB/s",
            size as f64 / 1e6,
            mb / median(ours).as_secs_f64(),
            mb / median(ossl).as_secs_f64()
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("loadavg at end {}", load.trim());
}
