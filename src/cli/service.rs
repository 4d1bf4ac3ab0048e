//! What `veritrain serve` and `veritrain worker` share: connecting the
//! database and the object store named by the configuration, and starting
//! workers that sign with the key directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use veritrain_db::Database;
use veritrain_pipeline::PlatformBinary;
use veritrain_sandbox::Policy;
use veritrain_server::ServerConfig;
use veritrain_store::Store;
use veritrain_worker::{PipelineRunner, PipelineSettings, Worker, WorkerMetrics, WorkerSettings};

/// Runs `service` on a multi-threaded runtime: exit 0 when it ends, 1
/// (with the error and its code) when it fails.
pub fn run_service(
    service: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(service) {
        Ok(()) => Ok(std::process::ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(std::process::ExitCode::from(1))
        }
    }
}

/// Connects the job database (running its migrations) and opens the store.
pub async fn connect(config: &ServerConfig) -> anyhow::Result<(Database, Store)> {
    let url = config
        .database_url()
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?
        .context(
            "[config.invalid] no database: set [database], data_dir or VERITRAIN_DATABASE_URL",
        )?;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .and_then(|p| p.split('?').next())
        .and_then(|p| Path::new(p).parent())
    {
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    }
    let db = Database::connect(&url)
        .await
        .map_err(|e| anyhow::anyhow!("[{}] database: {e}", e.code()))?;
    let store = config
        .store_config()
        .context("[config.invalid] no object store: set [store] or data_dir")?
        .open()
        .map_err(|e| anyhow::anyhow!("[{}] object store: {e}", e.code()))?;
    Ok((db, store))
}

/// The trainer runtime a worker uses: `[worker] runtime_dir`, else
/// `$VERITRAIN_RUNTIME_DIR`, else `.venv/runtime`.
pub fn runtime_dir(config: &ServerConfig) -> PathBuf {
    config
        .worker
        .runtime_dir
        .clone()
        .unwrap_or_else(veritrain_runtime::default_dir)
}

/// Workers running in this process.
pub struct Workers {
    handles: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
    /// Their counters.
    pub metrics: Arc<WorkerMetrics>,
}

impl Workers {
    /// Starts `[worker] concurrency` workers signing with the key directory.
    /// Checks the keys, the runtime (every file re-hashed) and the sandbox
    /// first, so a worker that cannot run jobs does not start.
    pub fn start(config: &ServerConfig, db: &Database, store: &Store) -> anyhow::Result<Workers> {
        let w = &config.worker;
        let keys_dir = config
            .keys_dir()
            .context("[config.invalid] workers need [worker] keys_dir or data_dir")?;
        let runtime_dir = std::path::absolute(runtime_dir(config))?;
        let runtime = veritrain_runtime::VerifiedRuntime::verify(&runtime_dir).map_err(|e| {
            anyhow::anyhow!(
                "[{}] trainer runtime at {}: {e}; install it with `veritrain runtime install --dir {}`",
                e.code(),
                runtime_dir.display(),
                runtime_dir.display()
            )
        })?;
        let mut policy = Policy::default();
        policy.limits.wall_time = Duration::from_secs(w.timeout_secs);
        policy.limits.memory_bytes = Some(w.memory_mib.saturating_mul(1 << 20));
        policy.limits.cpu_quota_cores = w.cpus;
        let runner = PipelineRunner::new(
            PipelineSettings {
                keys_dir,
                policy,
                operator: super::train::operator(
                    w.operator.clone(),
                    w.operator_url.clone(),
                    w.operator_email.clone(),
                ),
                gate: veritrain_intake::gate::GateLimits::default(),
                binary: PlatformBinary::current(env!("CARGO_PKG_VERSION"))
                    .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?,
            },
            runtime,
        )
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
        let runner: Arc<dyn veritrain_worker::JobRunner> = Arc::new(runner);
        let metrics = Arc::new(WorkerMetrics::default());
        let (stop, stopped) = watch::channel(false);
        let host = hostname();
        let scratch = config.scratch_dir().join("worker");
        let mut handles = Vec::new();
        for n in 0..w.concurrency {
            let mut settings =
                WorkerSettings::new(format!("{host}-{}-{n}", std::process::id()), &scratch);
            settings.lease = Duration::from_secs(w.lease_secs);
            settings.renew_every = settings.lease / 4;
            settings.max_attempts = w.max_attempts;
            let worker = Worker::new(
                db.clone(),
                store.clone(),
                Arc::clone(&runner),
                settings,
                Arc::clone(&metrics),
            );
            let stopped = stopped.clone();
            handles.push(tokio::spawn(async move {
                if let Err(e) = worker.run(stopped).await {
                    eprintln!("veritrain worker: stopped [{}]: {e}", e.code());
                }
            }));
        }
        Ok(Workers {
            handles,
            stop,
            metrics,
        })
    }

    /// Asks the workers to stop after their current job and waits up to
    /// `grace`; a job still running then is abandoned (its lease expires
    /// and another worker takes it up).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = futures_util::future::join_all(self.handles);
        let _ = tokio::time::timeout(grace, all).await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect()
}
