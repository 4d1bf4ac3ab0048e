//! `veritrain bench hash`: hashing throughput against coreutils `sha256sum`
//! and `openssl dgst -sha256`, on one large file and on a directory of many
//! files, in one run. Results are recorded in `docs/benchmarks.md`.
//! `bench provenance` and `bench verify` time the main job and offline
//! verification ([`super::bench_job`]); `bench service` loads the HTTP API
//! ([`super::bench_service`]); they share the helpers here.
//!
//! Every tool reads the same files from a warm page cache, and the cases
//! are interleaved round by round, so a neighbour process competing for the
//! cores slows all of them alike rather than one case.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use veritrain_attest::hash::{self, HashOptions, Manifest};

pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: f64 = (1u64 << 30) as f64;

/// Arguments of `veritrain bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Hashing throughput against sha256sum and openssl.
    Hash(HashArgs),
    /// What a job adds to the sandboxed training: run the quickstart job
    /// several times and split its wall time into training, hashing and
    /// the rest.
    Provenance(super::bench_job::provenance::Args),
    /// `veritrain verify` on a bundle with a large dataset against
    /// `openssl dgst -sha256` over the same files.
    Verify(super::bench_job::verify::Args),
    /// The service: server RSS while uploading a large dataset, job
    /// submission throughput, and status/list latency under concurrency.
    Service(super::bench_service::Args),
}

#[derive(Debug, clap::Args)]
struct HashArgs {
    /// Size of the single large file, in MiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    size_mib: u64,
    /// Number of files in the directory.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    files: u64,
    /// Size of each file in the directory, in MiB.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    file_mib: u64,
    /// Scratch directory; files of the right size found there are reused.
    /// Default: $TMPDIR/veritrain-bench-hash.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Timed repetitions of every case.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Shard size of the sharded run, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    shard_mib: u64,
    /// Worker threads of our parallel runs; 0 means one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Read buffer per worker, in KiB.
    #[arg(long, default_value_t = 1024)]
    buffer_kib: usize,
}

/// Run a benchmark.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        BenchCommand::Hash(args) => bench_hash(&args),
        BenchCommand::Provenance(args) => super::bench_job::provenance::run(&args),
        BenchCommand::Verify(args) => super::bench_job::verify::run(&args),
        BenchCommand::Service(args) => super::bench_service::run(args),
    }
}

/// What one case runs.
enum Runner {
    Ours(HashOptions, PathBuf),
    Tool(String, Vec<PathBuf>),
}

struct Case {
    label: String,
    input: &'static str,
    bytes: u64,
    runner: Runner,
    times: Vec<Duration>,
}

fn bench_hash(args: &HashArgs) -> anyhow::Result<ExitCode> {
    let scratch = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("veritrain-bench-hash"));
    let big = scratch.join("big.bin");
    let many = scratch.join("many");
    let big_bytes = args.size_mib * MIB;
    let file_bytes = args.file_mib * MIB;

    println!("# veritrain bench hash");
    println!("{}", machine_description());
    println!("load average before: {}", load_average());

    let started = Instant::now();
    std::fs::create_dir_all(&many).with_context(|| format!("creating {}", many.display()))?;
    let mut created = ensure_file(&big, big_bytes, 1)?;
    let mut dir_files = Vec::new();
    for i in 0..args.files {
        let path = many.join(format!("f{i:05}.bin"));
        created |= ensure_file(&path, file_bytes, i + 2)?;
        dir_files.push(path);
    }
    if std::fs::read_dir(&many)?.count() != dir_files.len() {
        bail!(
            "{} holds files this run did not make; use an empty --dir",
            many.display()
        );
    }
    println!(
        "inputs: {} ({:.2} GiB), {} ({} files x {} MiB = {:.2} GiB){}",
        big.display(),
        big_bytes as f64 / GIB,
        many.display(),
        args.files,
        args.file_mib,
        (file_bytes * args.files) as f64 / GIB,
        if created { ", written now" } else { ", reused" },
    );

    // Warm the page cache so every tool reads from memory, not the disk.
    let mut warm = vec![0u8; MIB as usize];
    for path in std::iter::once(&big).chain(&dir_files) {
        let mut file = File::open(path)?;
        while file.read(&mut warm)? > 0 {}
    }
    println!(
        "setup and cache warm-up: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    let buffer_size = args.buffer_kib.saturating_mul(1024);
    let files = HashOptions {
        threads,
        buffer_size,
        ..HashOptions::files()
    };
    let shards = HashOptions {
        threads,
        buffer_size,
        ..HashOptions::shards(args.shard_mib * MIB)
    };

    check_against_sha256sum(&big, &many, &dir_files, &files)?;

    let dir_bytes = file_bytes * args.files;
    let big_list = vec![big.clone()];
    let mut cases = vec![
        case(
            "veritrain hash (per-file)".into(),
            "1 file",
            big_bytes,
            Runner::Ours(files.clone(), big.clone()),
        ),
        case(
            format!(
                "veritrain hash --shard-size {}MiB, {threads} threads",
                args.shard_mib
            ),
            "1 file",
            big_bytes,
            Runner::Ours(shards, big.clone()),
        ),
        case(
            "sha256sum".into(),
            "1 file",
            big_bytes,
            Runner::Tool("sha256sum".into(), big_list.clone()),
        ),
        case(
            "openssl dgst -sha256".into(),
            "1 file",
            big_bytes,
            Runner::Tool("openssl".into(), big_list),
        ),
        case(
            format!("veritrain hash (per-file), {threads} threads"),
            "directory",
            dir_bytes,
            Runner::Ours(files, many.clone()),
        ),
        case(
            "sha256sum".into(),
            "directory",
            dir_bytes,
            Runner::Tool("sha256sum".into(), dir_files.clone()),
        ),
        case(
            "openssl dgst -sha256".into(),
            "directory",
            dir_bytes,
            Runner::Tool("openssl".into(), dir_files),
        ),
    ];

    for _ in 0..args.reps {
        for case in &mut cases {
            let elapsed = time(&case.runner)?;
            case.times.push(elapsed);
        }
    }

    println!("load average after: {}", load_average());
    println!(
        "repetitions: {}; read buffer {} KiB per worker",
        args.reps, args.buffer_kib
    );
    println!();
    let rows: Vec<Row<'_>> = cases
        .iter()
        .map(|c| Row {
            label: &c.label,
            input: c.input,
            bytes: c.bytes,
            times: &c.times,
        })
        .collect();
    print!("{}", table(&rows));
    println!();
    println!("ratios against openssl on the same input (best / median):");
    let ratio = |ours: usize, base: usize, target: f64, what: &str| {
        let (Some(ours), Some(base)) = (cases.get(ours), cases.get(base)) else {
            return;
        };
        let best = min(&base.times) / min(&ours.times);
        let median = median(&base.times) / median(&ours.times);
        let verdict = if median >= target {
            "met"
        } else if best >= target {
            "met on best only"
        } else {
            "MISSED"
        };
        println!("  {what:<40} {best:>5.2}x / {median:>5.2}x   target >= {target}x: {verdict}");
    };
    ratio(0, 3, 0.9, "one file, per-file digest");
    ratio(1, 3, 1.6, "one file, sharded");
    ratio(4, 6, 1.6, "directory of many files");
    println!();
    println!(
        "peak RSS of this process (VmHWM, includes setup): {}",
        proc_status("VmHWM").unwrap_or_else(|| "unknown".into())
    );
    Ok(ExitCode::SUCCESS)
}

fn case(label: String, input: &'static str, bytes: u64, runner: Runner) -> Case {
    Case {
        label,
        input,
        bytes,
        runner,
        times: Vec::new(),
    }
}

fn time(runner: &Runner) -> anyhow::Result<Duration> {
    let start = Instant::now();
    match runner {
        Runner::Ours(options, path) => {
            let manifest = hash::hash_path(path, options)?;
            let elapsed = start.elapsed();
            std::hint::black_box(manifest.root_digest());
            Ok(elapsed)
        }
        Runner::Tool(tool, paths) => {
            let output = tool_command(tool, paths)
                .stderr(Stdio::inherit())
                .output()
                .with_context(|| format!("running {tool}"))?;
            let elapsed = start.elapsed();
            if !output.status.success() {
                bail!("{tool} failed: {}", output.status);
            }
            Ok(elapsed)
        }
    }
}

/// `sha256sum FILES` or `openssl dgst -sha256 FILES`.
pub(super) fn tool_command(tool: &str, paths: &[PathBuf]) -> Command {
    let mut cmd = Command::new(tool);
    if tool == "openssl" {
        cmd.args(["dgst", "-sha256"]);
    }
    cmd.args(paths);
    cmd
}

/// Our per-file digests must be what sha256sum prints, or the timings
/// compare different work.
fn check_against_sha256sum(
    big: &Path,
    many: &Path,
    dir_files: &[PathBuf],
    options: &HashOptions,
) -> anyhow::Result<()> {
    let ours: Vec<(PathBuf, String)> = [
        (big, hash::hash_path(big, options)?),
        (many, hash::hash_path(many, options)?),
    ]
    .into_iter()
    .flat_map(|(root, manifest): (&Path, Manifest)| {
        let base = if root == big {
            root.parent().map(Path::to_path_buf)
        } else {
            Some(root.to_path_buf())
        };
        manifest
            .entries()
            .iter()
            .map(|e| {
                (
                    base.clone().unwrap_or_default().join(e.path()),
                    e.sha256_hex(),
                )
            })
            .collect::<Vec<_>>()
    })
    .collect();
    let mut all = vec![big.to_path_buf()];
    all.extend_from_slice(dir_files);
    let output = tool_command("sha256sum", &all)
        .output()
        .context("running sha256sum")?;
    let text = String::from_utf8(output.stdout)?;
    let theirs: std::collections::BTreeMap<PathBuf, String> = text
        .lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(digest, path)| (PathBuf::from(path), digest.to_owned()))
        .collect();
    if theirs.len() != ours.len() {
        bail!(
            "sha256sum listed {} files, we hashed {}",
            theirs.len(),
            ours.len()
        );
    }
    for (path, digest) in &ours {
        if theirs.get(path) != Some(digest) {
            bail!("digest of {} differs from sha256sum", path.display());
        }
    }
    println!(
        "check: our per-file digests equal sha256sum's for all {} files",
        ours.len()
    );
    Ok(())
}

/// Write `size` bytes of pseudo-random data unless the file already has
/// that size. Returns whether it wrote.
fn ensure_file(path: &Path, size: u64, seed: u64) -> anyhow::Result<bool> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.is_file()
        && meta.len() == size
    {
        return Ok(false);
    }
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut buffer = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        for word in buffer.chunks_exact_mut(8) {
            // xorshift64: incompressible enough that no layer can shortcut it.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buffer.len() as u64) as usize;
        file.write_all(&buffer[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(true)
}

pub(super) fn min(times: &[Duration]) -> f64 {
    times.iter().min().map_or(f64::NAN, Duration::as_secs_f64)
}

pub(super) fn median(times: &[Duration]) -> f64 {
    let mut sorted: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One row of [`table`]: a case, what it read and its timings.
pub(super) struct Row<'a> {
    pub label: &'a str,
    pub input: &'a str,
    pub bytes: u64,
    pub times: &'a [Duration],
}

/// Best and median time and throughput of each row, as a Markdown table.
pub(super) fn table(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {:<44} | {:<9} | {:>6} | {:>8} | {:>10} | {:>12} |",
        "case", "input", "best s", "median s", "best GiB/s", "median GiB/s"
    );
    let _ = writeln!(
        out,
        "|{:-<46}|{:-<11}|{:->8}|{:->10}|{:->12}|{:->14}|",
        "", "", "", "", "", ""
    );
    for case in rows {
        let gib = case.bytes as f64 / GIB;
        let (best, med) = (min(case.times), median(case.times));
        let _ = writeln!(
            out,
            "| {:<44} | {:<9} | {:>6.3} | {:>8.3} | {:>10.2} | {:>12.2} |",
            case.label,
            case.input,
            best,
            med,
            gib / best,
            gib / med
        );
    }
    out
}

/// CPU model, cores, SHA extensions and the reference tools' versions.
pub(super) fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    };
    let flags = field("flags");
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let version = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_owned))
            .unwrap_or_else(|| "not found".into())
    };
    format!(
        "cpu: {} ({cores} cores available), sha_ni: {}, avx2: {}\nopenssl: {}\nsha256sum: {}",
        field("model name"),
        if has("sha_ni") { "yes" } else { "no" },
        if has("avx2") { "yes" } else { "no" },
        version("openssl", "version"),
        version("sha256sum", "--version"),
    )
}

/// The 1, 5 and 15 minute load averages.
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A field of `/proc/self/status`, e.g. `VmHWM`.
pub(super) fn proc_status(key: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}
