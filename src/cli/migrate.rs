//! `veritrain migrate`: create or upgrade the job database's schema (the
//! embedded migrations of `veritrain_db`, which `serve` and `worker` also
//! run at start) and print where it stands.

use std::path::PathBuf;
use std::process::ExitCode;

use veritrain_server::ServerConfig;

/// Arguments of `veritrain migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (its `[database]`, or `VERITRAIN_DATABASE_URL`).
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    config: Option<PathBuf>,
    /// The embedded default's data directory (default: veritrain-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Run the migrations.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => ServerConfig::load(path),
        None => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("veritrain-data"));
            Ok(ServerConfig::embedded(&std::path::absolute(&dir)?))
        }
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (db, _) = super::service::connect(&config).await?;
        let depth = db
            .queue_depth()
            .await
            .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
        let audit = db
            .verify_audit()
            .await
            .map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
        println!(
            "database {:?} is at the current schema (jobs, job events, audit log); {depth} job(s) queued; audit log: {} entries, chain {}",
            db.backend(),
            audit.entries,
            if audit.intact() { "intact" } else { "BROKEN" }
        );
        db.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
