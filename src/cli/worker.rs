//! `veritrain worker --config FILE`: workers as their own process, against
//! the database and object store the file names (Postgres and S3 in a
//! scaled deployment). Only workers read the key directory; the API nodes
//! (`veritrain serve --no-worker`) never do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use veritrain_server::ServerConfig;

/// Arguments of `veritrain worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (TOML; docs/server.md): [database], [store],
    /// [worker].
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Jobs run at once (overrides `[worker] concurrency`).
    #[arg(long)]
    concurrency: Option<usize>,
}

/// Run workers until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = match ServerConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(n) = args.concurrency {
        config.worker.concurrency = n;
        if let Err(e) = config.check() {
            eprintln!("error[{}]: {e}", e.code());
            return Ok(ExitCode::from(2));
        }
    }
    super::service::run_service(work(config))
}

async fn work(config: ServerConfig) -> anyhow::Result<()> {
    let (db, store) = super::service::connect(&config).await?;
    let workers = super::service::Workers::start(&config, &db, &store)?;
    eprintln!(
        "veritrain worker: {} worker(s) on database {:?} and store {}",
        config.worker.concurrency,
        db.backend(),
        store.kind()
    );
    let metrics_server = match config.worker.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, Arc::clone(&workers.metrics)).await?),
        None => None,
    };
    wait_for_signal().await;
    eprintln!("veritrain worker: stopping after the current job (at most 30 s)");
    workers.shutdown(Duration::from_secs(30)).await;
    if let Some(h) = metrics_server {
        h.abort();
    }
    db.close().await;
    Ok(())
}

async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<veritrain_worker::WorkerMetrics>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("[server.bind] cannot listen on {addr}: {e}"))?;
    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let m = Arc::clone(&metrics);
                async move { m.render() }
            }),
        );
    eprintln!("veritrain worker: metrics on http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    }))
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
