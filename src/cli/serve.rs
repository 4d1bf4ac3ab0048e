//! `veritrain serve`: the HTTP API ([`veritrain_server`]). Today it serves
//! the public trust material and `POST /v1/verify`, with health and
//! metrics; the jobs API (uploads, queue, workers, OIDC) is not built yet.

use std::path::PathBuf;
use std::process::ExitCode;

use veritrain_server::ServerConfig;

/// Arguments of `veritrain serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (TOML; docs/server.md). Without it,
    /// `--trust-dir` is required.
    #[arg(long, value_name = "FILE", conflicts_with = "trust_dir")]
    config: Option<PathBuf>,
    /// The key directory's public/ folder (root.pub, keyset.dsse.json,
    /// root.layout).
    #[arg(long, value_name = "DIR", required_unless_present = "config")]
    trust_dir: Option<PathBuf>,
    /// Address to listen on (overrides the file; `VERITRAIN_LISTEN` too).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

/// Run the server until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = match (&args.config, &args.trust_dir) {
        (Some(path), _) => ServerConfig::load(path),
        (None, Some(dir)) => ServerConfig::from_toml(&format!(
            "trust_dir = {}",
            toml_string(&dir.to_string_lossy())
        )),
        (None, None) => anyhow::bail!("give --config FILE or --trust-dir DIR"),
    };
    let mut config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(listen) = &args.listen {
        config.listen = listen
            .parse()
            .map_err(|e| anyhow::anyhow!("--listen {listen:?}: {e}"))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(veritrain_server::serve(config)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error{e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}
