//! `veritrain serve`: the HTTP API ([`veritrain_server`]) and, by default,
//! embedded workers ([`veritrain_worker`]).
//!
//! - `veritrain serve` alone is the embedded default: everything lives in a
//!   data directory (`veritrain-data`, or `--data-dir`): SQLite, objects on
//!   local disk, the key directory (created with demo keys on first start),
//!   dev sign-in on a loopback address, and workers in this process.
//! - `veritrain serve --config FILE` runs what the file says: Postgres, S3,
//!   OIDC, and `[worker] embedded = false` for API nodes that never load a
//!   private key.
//! - `veritrain serve --trust-dir KEYS/public` is a verification-only node.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use veritrain_auth::{Authenticator, dev::DevIssuer};
use veritrain_server::{App, Jobs, ServerConfig};

/// Arguments of `veritrain serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (TOML; docs/server.md).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["trust_dir", "data_dir"])]
    config: Option<PathBuf>,
    /// The embedded default's data directory (default: veritrain-data).
    #[arg(long, value_name = "DIR", conflicts_with = "trust_dir")]
    data_dir: Option<PathBuf>,
    /// Serve only the trust material and POST /v1/verify from this key
    /// directory's public/ folder.
    #[arg(long, value_name = "DIR")]
    trust_dir: Option<PathBuf>,
    /// Address to listen on (overrides the file; `VERITRAIN_LISTEN` too).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Run no workers in this process (an API node of a scaled deployment).
    #[arg(long)]
    no_worker: bool,
    /// Dev mode: an in-process token issuer (`POST /v1/dev/token`,
    /// `veritrain token --dev`) instead of the configured OIDC issuer.
    /// Refused unless the server listens on a loopback address.
    #[arg(long)]
    dev: bool,
}

/// Run the server until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = match (&args.config, &args.trust_dir) {
        (Some(path), _) => ServerConfig::load(path),
        (None, Some(dir)) => ServerConfig::from_toml(&format!(
            "trust_dir = {}",
            toml_string(&dir.to_string_lossy())
        )),
        (None, None) => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("veritrain-data"));
            let config = ServerConfig::embedded(&std::path::absolute(&dir)?);
            config.check().map(|()| config)
        }
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
        if let Err(e) = config.check() {
            eprintln!("error[{}]: {e}", e.code());
            return Ok(ExitCode::from(2));
        }
    }
    if args.no_worker {
        config.worker.embedded = false;
    }
    if args.dev {
        config.auth.dev = true;
        config.auth.oidc = None;
        if let Err(e) = config.check() {
            eprintln!("error[{}]: {e}", e.code());
            return Ok(ExitCode::from(2));
        }
    }
    super::service::run_service(serve(config))
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    if !config.jobs_enabled() {
        return veritrain_server::serve(config)
            .await
            .map_err(|e| anyhow::anyhow!(e));
    }
    if let Some(dir) = &config.data_dir {
        prepare_data_dir(&config, dir)?;
    }
    let (db, store) = super::service::connect(&config).await?;
    let (auth, dev) = match &config.auth.oidc {
        Some(oidc) => {
            let auth = Authenticator::new(oidc.clone())
                .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
            // Best effort: an IdP that is down now is retried per request.
            if let Err(e) = auth.prefetch().await {
                eprintln!(
                    "veritrain serve: the identity provider's keys are not reachable yet [{}]: {e}",
                    e.code()
                );
            }
            (auth, None)
        }
        None => {
            let dev = DevIssuer::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
            let auth = Authenticator::new(dev.oidc_config())
                .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
            (auth, Some(dev))
        }
    };
    let dev_mode = dev.is_some();
    let workers = if config.worker.embedded {
        Some(super::service::Workers::start(&config, &db, &store)?)
    } else {
        None
    };
    let mut app = App::new(&config)
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?
        .with_jobs(Jobs::new(
            db.clone(),
            store.clone(),
            auth,
            dev,
            config.jobs.clone(),
        ));
    if let Some(w) = &workers {
        let m = Arc::clone(&w.metrics);
        app = app.with_metrics(Box::new(move || m.render()));
    }
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("[server.bind] cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr()?;
    let trust = app.trust();
    eprintln!(
        "veritrain serve: listening on http://{local} (root key {}, key set version {}; database {:?}, store {}; {} worker(s) in this process)",
        trust.root.keyid(),
        trust.keyset.version,
        db.backend(),
        store.kind(),
        workers.as_ref().map_or(0, |_| config.worker.concurrency),
    );
    if dev_mode {
        eprintln!(
            "veritrain serve: ************************************************************\n\
             veritrain serve: DEV MODE: anyone on this machine can get a token for any user and\n\
             veritrain serve: role from POST /v1/dev/token. Never use it for real jobs; configure\n\
             veritrain serve: [auth.oidc] for that. It listens on loopback only.\n\
             veritrain serve: ************************************************************"
        );
        eprintln!(
            "veritrain serve: dev sign-in: veritrain token --dev --server http://{local} --subject alice, or curl -s -X POST http://{local}/v1/dev/token -H 'content-type: application/json' -d '{{\"subject\":\"alice\",\"roles\":[\"developer\"]}}'"
        );
    }
    let result = veritrain_server::serve_app(app, listener, std::future::pending()).await;
    if let Some(w) = workers {
        eprintln!("veritrain serve: stopping the workers");
        w.shutdown(Duration::from_secs(10)).await;
    }
    db.close().await;
    result.map_err(|e| anyhow::anyhow!(e))
}

/// Creates the data directory (owner-only) and, the first time, a demo key
/// directory in it: the embedded default works with one command.
fn prepare_data_dir(config: &ServerConfig, dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let Some(keys) = config.keys_dir() else {
        return Ok(());
    };
    if config.worker.embedded
        && keys.starts_with(dir)
        && !keys.join(veritrain_pipeline::keydir::KEYSET).is_file()
    {
        super::keys::init_demo(&keys)?;
        eprintln!(
            "veritrain serve: created keys in {}; the root private key is {}: move it offline (rotation asks for it with --root-key)",
            keys.display(),
            keys.join("root.key").display()
        );
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}
