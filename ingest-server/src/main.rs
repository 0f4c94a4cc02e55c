//! `ingest-server`: the AWS-compatible Kinesis Video Streams server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ingest_server::config::Config;
use ingest_server::credentials::CredentialStore;
use ingest_server::server::{App, Protocols, accept_loop};
use ingest_server::services::video::VideoService;
use ingest_server::storage::{EmbeddedStore, VideoStore};
use ingest_server::{telemetry, tls};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener to {addr}"))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;

    let credentials_path = data_dir.join("credentials");
    let (credentials, created) = CredentialStore::load_or_create(&credentials_path)
        .with_context(|| format!("loading credentials from {}", credentials_path.display()))?;
    if created {
        tracing::info!(path = %credentials_path.display(), "Created credentials with random keys (profile [default]).");
    } else {
        tracing::info!(path = %credentials_path.display(), "Loaded credentials.");
    }

    let store_dir = data_dir.clone();
    let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&store_dir))
        .await?
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let store: Arc<dyn VideoStore> = Arc::new(store);

    let main_listener = bind(config.listen, "main").await?;
    let data_listener = bind(config.data_listen(), "video data-plane").await?;
    let main_addr = main_listener.local_addr()?;
    let data_addr = data_listener.local_addr()?;

    let (main_tls, data_tls) = if config.plain_http {
        tracing::warn!(
            "Serving plain HTTP (--plain-http): credentials and video cross the network unencrypted."
        );
        (None, None)
    } else {
        let material = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                tls::load_pem(cert, key).context("loading --tls-cert/--tls-key")?
            }
            _ => {
                let tls_dir = data_dir.join("tls");
                let material = tls::load_or_create_local(&tls_dir, &config.tls_names)
                    .context("preparing the local CA")?;
                tracing::info!(ca = %tls_dir.join("ca.pem").display(), "Local CA ready: give it to clients as AWS_CA_BUNDLE.");
                material
            }
        };
        let main = tls::server_config(&material, &[b"h2", b"http/1.1"])?;
        let data = tls::server_config(&material, &[b"http/1.1"])?;
        (Some(TlsAcceptor::from(main)), Some(TlsAcceptor::from(data)))
    };

    let config = Arc::new(config);
    let video = VideoService::new(Arc::clone(&store), Arc::clone(&config), data_addr.port());
    let app = Arc::new(App {
        video,
        credentials: Arc::new(credentials),
        config: Arc::clone(&config),
    });
    tokio::spawn(retention_loop(
        Arc::clone(&store),
        Duration::from_secs(config.retention_check_secs.max(1)),
    ));
    tokio::spawn(accept_loop(
        main_listener,
        main_tls,
        Protocols::Http2AndHttp1,
        Arc::clone(&app),
    ));
    tokio::spawn(accept_loop(
        data_listener,
        data_tls,
        Protocols::Http1Only,
        app,
    ));
    let scheme = if config.plain_http { "http" } else { "https" };
    tracing::info!(main = %format!("{scheme}://{main_addr}"), video_data_plane = %format!("{scheme}://{data_addr}"), "Server listening.");

    shutdown_signal().await;
    tracing::info!("Shutting down: every acknowledged fragment is already durable.");
    Ok(())
}

async fn retention_loop(store: Arc<dyn VideoStore>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        let store = Arc::clone(&store);
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        match tokio::task::spawn_blocking(move || store.expire(now as i64)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(
                fragments = n,
                "Expired fragments past their stream's retention."
            ),
            Ok(Err(err)) => tracing::error!(error = %err, "Retention sweep failed."),
            Err(err) => tracing::error!(error = %err, "Retention sweep panicked."),
        }
    }
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
