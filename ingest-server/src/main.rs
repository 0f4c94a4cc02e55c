//! `ingest-server`: the AWS-compatible Kinesis Video Streams and Data Streams server.

use anyhow::Context;
use clap::Parser;
use ingest_server::config::Config;
use ingest_server::run::run_in_process;
use ingest_server::telemetry;

/// Upper bound on threads doing blocking store work at once.
const MAX_BLOCKING_THREADS: usize = 32;

fn main() -> anyhow::Result<()> {
    telemetry::init();
    let config = Config::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Store calls (file writes, fsyncs, SQLite) run on blocking threads. Tokio's
        // default allows 512; each idle thread keeps its own malloc arena, which made the
        // server's RSS creep up under 100 uploads. A few dozen cover the disk's queue.
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?
        .block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    run_in_process(config).await?;
    shutdown_signal().await;
    tracing::info!("Shutting down: every acknowledged fragment and record is already durable.");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
