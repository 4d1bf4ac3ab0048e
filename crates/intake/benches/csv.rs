//! CSV validator throughput against pandas `read_csv` and Python's `csv`
//! module, on the same file in the same run.
//!
//!   cargo bench -p veritrain-intake --bench csv
//!
//! Generates (once, cached) a numeric CSV of about 232 MB: 12 float columns
//! and an int label with 10 classes, like the file in issue #3. Then times
//! `validate_csv` (full validation and statistics, one thread), and runs
//! `$VERITRAIN_BENCH_PYTHON` (default `python3`) for pandas and `csv`.
//! Environment: `VERITRAIN_BENCH_DIR` (where the file goes, default the
//! temp dir), `VERITRAIN_BENCH_MB` (target size, default 232),
//! `VERITRAIN_BENCH_RUNS` (timed runs each, best is reported, default 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use veritrain_intake::csv::{CsvLimits, validate_csv};
use veritrain_intake::definition::{DefinitionLimits, parse_definition};

const FLOAT_COLUMNS: usize = 12;
const CLASSES: u64 = 10;

fn definition_yaml() -> String {
    let mut y = String::from("version: 1\ntype: csv\ncolumns:\n");
    for i in 0..FLOAT_COLUMNS {
        writeln!(y, "  - {{name: f{i}, type: float}}").unwrap();
    }
    y.push_str("  - {name: label, type: int}\nlabel:\n  column: label\n  classes: [");
    let names: Vec<String> = (0..CLASSES).map(|c| format!("c{c}")).collect();
    y.push_str(&names.join(", "));
    writeln!(
        y,
        "]\ninput_shape: [{FLOAT_COLUMNS}]\noutput_shape: [{CLASSES}]"
    )
    .unwrap();
    y
}

/// splitmix64: a fixed, fast generator so every run sees the same file.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Roughly normal (sum of uniforms), like `np.random.randn`.
    fn normalish(&mut self) -> f64 {
        let s: f64 = (0..4)
            .map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64)
            .sum();
        (s - 2.0) * 1.7
    }
}

fn generate(path: &Path, target: u64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut header: Vec<String> = (0..FLOAT_COLUMNS).map(|i| format!("f{i}")).collect();
    header.push("label".into());
    let mut written = 0u64;
    let mut line = String::new();
    line.push_str(&header.join(","));
    line.push('\n');
    let mut rng = Rng(42);
    loop {
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        if written >= target {
            break;
        }
        line.clear();
        for _ in 0..FLOAT_COLUMNS {
            // `{}` prints the shortest representation that round-trips,
            // the same text as Python's repr and pandas' to_csv.
            write!(line, "{},", rng.normalish()).unwrap();
        }
        writeln!(line, "{}", rng.next() % CLASSES).unwrap();
    }
    out.flush().unwrap();
    written
}

/// CPU time of the calling thread, from /proc (Linux): what the work cost
/// even when other processes share the cores.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Best wall time and best thread CPU time over `runs`.
fn best<F: FnMut()>(runs: usize, mut f: F) -> (Duration, Option<Duration>) {
    let mut wall = Duration::MAX;
    let mut cpu: Option<Duration> = None;
    for _ in 0..runs {
        let c0 = thread_cpu();
        let t = Instant::now();
        f();
        wall = wall.min(t.elapsed());
        if let (Some(a), Some(b)) = (c0, thread_cpu()) {
            let d = b.saturating_sub(a);
            cpu = Some(cpu.map_or(d, |c| c.min(d)));
        }
    }
    (wall, cpu)
}

/// Times pandas, polars (when installed) and the `csv` module. argv: path,
/// runs, mode. Mode `pinned` restricts the process (and every thread it
/// starts, pandas 3 parses in worker threads) to one CPU before anything
/// is imported: the issue's "on one core". Mode `free` lets pandas use
/// every CPU. CPU seconds are process CPU time (all threads).
const PYTHON: &str = r#"
import os, sys, time, json
path, runs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "pinned":
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
out = {"cpus": sorted(os.sched_getaffinity(0))}
def timed(f):
    best = None
    for _ in range(runs):
        t = time.perf_counter(); c = time.process_time(); r = f()
        d = (time.perf_counter() - t, time.process_time() - c)
        best = d if best is None else (min(best[0], d[0]), min(best[1], d[1]))
    return best, r
try:
    import pandas
    (w, c), n = timed(lambda: len(pandas.read_csv(path)))
    out["pandas"] = {"seconds": w, "cpu": c, "version": pandas.__version__, "rows": n}
except ImportError as e:
    out["pandas"] = {"error": str(e)}
if mode == "pinned":
    try:
        import polars
        (w, c), n = timed(lambda: polars.read_csv(path).height)
        out["polars"] = {"seconds": w, "cpu": c, "version": polars.__version__, "rows": n}
    except ImportError as e:
        out["polars"] = {"error": str(e)}
    import csv
    def read():
        n = 0
        with open(path, newline="") as f:
            for row in csv.reader(f):
                n += 1
        return n - 1
    runs = max(1, runs - 1)
    (w, c), n = timed(read)
    out["csv"] = {"seconds": w, "cpu": c, "version": sys.version.split()[0], "rows": n}
print(json.dumps(out))
"#;

fn python(python: &str, path: &Path, runs: usize, mode: &str) -> Option<serde_json::Value> {
    let out = Command::new(python)
        .args([
            "-c",
            PYTHON,
            path.to_str().unwrap(),
            &runs.to_string(),
            mode,
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).ok(),
        Ok(o) => {
            eprintln!("{python} failed: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("cannot run {python}: {e}");
            None
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this
    // with no such flag and expects a quick exit.
    if !std::env::args().any(|a| a == "--bench") {
        println!("csv bench: run with `cargo bench -p veritrain-intake --bench csv`");
        return;
    }
    let dir = std::env::var_os("VERITRAIN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mb: u64 = std::env::var("VERITRAIN_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(232);
    let runs: usize = std::env::var("VERITRAIN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("veritrain-bench-{mb}mb.csv"));
    let target = mb * 1_000_000;
    let size = match std::fs::metadata(&path) {
        Ok(m) if m.len() >= target && m.len() < target + 1000 => m.len(),
        _ => {
            eprintln!("generating {} ...", path.display());
            generate(&path, target)
        }
    };
    let def = parse_definition(definition_yaml().as_bytes(), &DefinitionLimits::default()).unwrap();
    let limits = CsvLimits::default();
    let mbs = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();

    let mut report = None;
    let ours = best(runs, || {
        let f = std::fs::File::open(&path).unwrap();
        report = Some(validate_csv(f, &def, &limits).unwrap());
    });
    let report = report.unwrap();

    let py_bin = std::env::var("VERITRAIN_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let pinned = python(&py_bin, &path, runs, "pinned");
    let free = python(&py_bin, &path, runs, "free");

    println!(
        "file: {} ({size} bytes, {} data rows)",
        path.display(),
        report.rows
    );
    println!(
        "best of {runs} runs each (csv module: {}); MB = 10^6 bytes",
        runs.saturating_sub(1).max(1)
    );
    if let Some(c) = pinned.as_ref().and_then(|v| v.get("cpus")) {
        println!("Python pinned to CPUs {c}");
    }
    println!();
    println!("| reader | what it does | wall s | MB/s (wall) | CPU s | MB/s (CPU) |");
    println!("|---|---|---|---|---|---|");
    let (wall, cpu) = ours;
    println!(
        "| veritrain `validate_csv` | header, types, classes, limits, UTF-8/NUL, stats, duplicates; 1 thread | {:.3} | {:.0} | {} | {} |",
        wall.as_secs_f64(),
        mbs(wall),
        cpu.map_or("-".into(), |c| format!("{:.3}", c.as_secs_f64())),
        cpu.map_or("-".into(), |c| format!("{:.0}", mbs(c))),
    );
    for (source, key, what) in [
        (
            &pinned,
            "pandas",
            "`pandas.read_csv(path)`, pinned to one CPU",
        ),
        (
            &free,
            "pandas",
            "`pandas.read_csv(path)`, all CPUs (pandas 3 uses worker threads)",
        ),
        (
            &pinned,
            "polars",
            "`polars.read_csv(path)`, pinned to one CPU",
        ),
        (
            &pinned,
            "csv",
            "`for row in csv.reader(f)`, split only, no conversion",
        ),
    ] {
        match source.as_ref().and_then(|v| v.get(key)) {
            Some(v) if v.get("seconds").is_some() => {
                let s = v["seconds"].as_f64().unwrap();
                let c = v["cpu"].as_f64().unwrap();
                println!(
                    "| {key} {} | {what} | {s:.3} | {:.0} | {c:.3} | {:.0} |",
                    v["version"].as_str().unwrap_or("?"),
                    size as f64 / 1e6 / s,
                    size as f64 / 1e6 / c
                );
            }
            Some(v) => println!("| {key} | not installed: {} | - | - | - | - |", v["error"]),
            None => println!("| {key} | not run (no Python) | - | - | - | - |"),
        }
    }
    println!(
        "\nduplicates: {:?}; label balance: {:?}",
        report.duplicate_rows,
        report.class_balance.as_ref().map(|b| b
            .classes
            .iter()
            .map(|c| c.count)
            .collect::<Vec<_>>())
    );
}
