//! Assembles the server: credentials, stores, services and listeners. `main` runs it
//! until a signal; tests run it in their own process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::credentials::CredentialStore;
use crate::server::{App, Protocols, accept_loop};
use crate::services::streams::{StreamsConfig, StreamsService};
use crate::services::video::VideoService;
use crate::storage::{EmbeddedStore, VideoStore};
use crate::tls;

/// A server serving in this process.
#[derive(Debug, Clone, Copy)]
pub struct Running {
    /// The main listener (every API).
    pub main_addr: SocketAddr,
    /// The video data-plane listener (HTTP/1.1 only).
    pub data_addr: SocketAddr,
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener to {addr}"))
}

/// Opens everything under the data directory and starts serving on both listeners
/// (background tasks of the current runtime). Returns once the listeners are bound.
pub async fn run_in_process(config: Config) -> anyhow::Result<Running> {
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

    let streams_dir = data_dir.join("kinesis");
    let streams_config = StreamsConfig::from_config(&config);
    let streams =
        tokio::task::spawn_blocking(move || StreamsService::open(&streams_dir, streams_config))
            .await?
            .context("opening the Kinesis Data Streams store")?;
    streams.resume();

    let main_listener = bind(config.listen, "main").await?;
    let data_listener = bind(config.data_listen(), "video data-plane").await?;
    let main_addr = main_listener.local_addr()?;
    let data_addr = data_listener.local_addr()?;

    let (main_tls, data_tls) = if config.plain_http {
        tracing::warn!(
            "Serving plain HTTP (--plain-http): credentials and data cross the network unencrypted."
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
        streams: Arc::clone(&streams),
        credentials: Arc::new(credentials),
        config: Arc::clone(&config),
    });
    tokio::spawn(retention_loop(
        Arc::clone(&store),
        streams,
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
    Ok(Running {
        main_addr,
        data_addr,
    })
}

/// Deletes video fragments and Kinesis records past their stream's retention.
async fn retention_loop(store: Arc<dyn VideoStore>, streams: Arc<StreamsService>, every: Duration) {
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
        streams.enforce_retention().await;
    }
}
