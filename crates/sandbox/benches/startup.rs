//! Sandbox start-up benchmark: `/bin/true` (and `python3.11 -I -c pass`)
//! run bare against the same command run through [`Bubblewrap`] with the
//! default policy: cgroups created and removed, service user, seccomp,
//! namespaces, and (in one case) the output tmpfs mounted, copied and
//! unmounted. Cases are interleaved round by round, so a neighbour process
//! competing for the cores slows all of them alike.
//!
//! ```text
//! cargo bench -p veritrain-sandbox --bench startup -- [--iterations N]
//! ```
//!
//! Needs root, bubblewrap and the service user; prints a Markdown table
//! (recorded in `docs/benchmarks.md`).

// A benchmark: a panic is a failed run, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use veritrain_sandbox::{Bubblewrap, Policy, Sandbox, SandboxCommand};

struct Case {
    label: &'static str,
    samples: Vec<Duration>,
    run: Box<dyn Fn()>,
}

fn stats(samples: &[Duration]) -> (f64, f64, f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    (mean, pct(0.5), pct(0.9), ms[0])
}

fn bare(program: &'static str, args: &'static [&'static str]) -> Box<dyn Fn()> {
    Box::new(move || {
        let st = Command::new(program)
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    })
}

fn sandboxed(
    sb: Bubblewrap,
    policy: Policy,
    cmd: SandboxCommand,
    with_output: bool,
) -> Box<dyn Fn()> {
    Box::new(move || {
        let out = with_output.then(|| {
            let d = tempfile::tempdir().unwrap();
            std::fs::set_permissions(
                d.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            d
        });
        let cmd = match &out {
            Some(d) => cmd.clone().output(d.path()),
            None => cmd.clone(),
        };
        let o = sb.run(&cmd, &policy).unwrap();
        assert!(o.success(), "{:?} {}", o.status, o.stderr.text());
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iterations: usize = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: the sandbox benchmark needs root");
        return;
    }
    // `$VERITRAIN_BWRAP` overrides the bubblewrap binary.
    let bwrap = std::env::var("VERITRAIN_BWRAP")
        .unwrap_or_else(|_| veritrain_sandbox::DEFAULT_BWRAP.to_owned());
    let sb = match Bubblewrap::with_program(bwrap) {
        Ok(sb) => sb,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let policy = Policy::default();
    let no_seccomp = Policy {
        seccomp: false,
        ..Policy::default()
    };
    let truth = SandboxCommand::new("/bin/true");
    let py = SandboxCommand::new("/usr/bin/python3.11").args(["-I", "-c", "pass"]);

    let mut cases = vec![
        Case {
            label: "bare `/bin/true`",
            samples: vec![],
            run: bare("/bin/true", &[]),
        },
        Case {
            label: "sandbox `/bin/true` (default policy)",
            samples: vec![],
            run: sandboxed(sb.clone(), policy.clone(), truth.clone(), false),
        },
        Case {
            label: "sandbox `/bin/true`, no seccomp",
            samples: vec![],
            run: sandboxed(sb.clone(), no_seccomp, truth.clone(), false),
        },
        Case {
            label: "sandbox `/bin/true` + output tmpfs",
            samples: vec![],
            run: sandboxed(sb.clone(), policy.clone(), truth, true),
        },
        Case {
            label: "bare `python3.11 -I -c pass`",
            samples: vec![],
            run: bare("/usr/bin/python3.11", &["-I", "-c", "pass"]),
        },
        Case {
            label: "sandbox `python3.11 -I -c pass`",
            samples: vec![],
            run: sandboxed(sb.clone(), policy, py, false),
        },
    ];
    // Warm-up: page cache, first cgroup creation.
    for c in &cases {
        (c.run)();
    }
    for _ in 0..iterations {
        for c in &mut cases {
            let t = Instant::now();
            (c.run)();
            c.samples.push(t.elapsed());
        }
    }
    let bare_true = stats(&cases[0].samples).1;
    let bare_py = stats(&cases[4].samples).1;
    println!(
        "bwrap {} | {iterations} iterations per case, interleaved",
        sb.version()
    );
    println!();
    println!("| case | mean ms | median ms | p90 ms | min ms | median over bare |");
    println!("|---|---|---|---|---|---|");
    for (i, c) in cases.iter().enumerate() {
        let (mean, med, p90, min) = stats(&c.samples);
        let base = if i >= 4 { bare_py } else { bare_true };
        let over = if i == 0 || i == 4 {
            "—".to_owned()
        } else {
            format!("+{:.1} ms", med - base)
        };
        println!(
            "| {} | {mean:.2} | {med:.2} | {p90:.2} | {min:.2} | {over} |",
            c.label
        );
    }
}
