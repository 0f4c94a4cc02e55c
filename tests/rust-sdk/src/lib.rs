//! Helpers of the AWS SDK for Rust tests (`tests/kinesis.rs`): an `ingest-server` started in
//! this process on port-0 listeners (plain HTTP), and an `aws-sdk-kinesis` client that talks
//! HTTP/2 with prior knowledge (h2c) to it, as the JavaScript SDK does in Node over `http://`.
//!
//! The SDK is built without its default HTTPS client (aws-lc-rs, hyper-rustls): [`H2cClient`]
//! is a small `HttpClient` over hyper-util's pooled client, `http2_only`, so every call
//! (event streams included) runs over one multiplexed h2c connection.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector as HyperHttpConnector;
use hyper_util::rt::TokioExecutor;
use ingest_server::config::Config;

/// Region the tests sign with (the server's default region).
pub const REGION: &str = "us-west-2";

/// A server running in this process. Its tasks live on the test's tokio runtime and end with it.
pub struct TestServer {
    /// `http://127.0.0.1:PORT` of the main listener.
    pub endpoint: String,
    /// The keys of the `[default]` profile the server wrote to `DATA/credentials`.
    pub credentials: Credentials,
    /// The data directory, removed on drop.
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    /// A fresh server on a new temporary data directory.
    pub async fn start() -> anyhow::Result<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("kinesis-rust-sdk-")
            .tempdir()
            .context("creating the data directory")?;
        let (endpoint, credentials) = start_server(data_dir.path()).await?;
        Ok(Self {
            endpoint,
            credentials,
            data_dir,
        })
    }

    /// An SDK client for this server.
    pub fn client(&self) -> aws_sdk_kinesis::Client {
        sdk_client(&self.endpoint, self.credentials.clone())
    }
}

/// The server's configuration for a test: `data_dir`, main listener on `127.0.0.1:0`
/// (the data-plane listener follows it: port 0 too), plain HTTP.
pub fn test_config(data_dir: &Path) -> Config {
    use clap::Parser as _;
    use std::ffi::OsStr;
    Config::parse_from([
        OsStr::new("ingest-server"),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--plain-http"),
    ])
}

/// Starts the server in this process on `data_dir`; returns its endpoint
/// (`http://127.0.0.1:PORT`) and the credentials it accepts.
pub async fn start_server(data_dir: &Path) -> anyhow::Result<(String, Credentials)> {
    let running = ingest_server::run_in_process(test_config(data_dir))
        .await
        .context("ingest_server::run_in_process")?;
    let credentials = read_credentials(&data_dir.join("credentials"))?;
    Ok((format!("http://{}", running.main_addr), credentials))
}

/// The `[default]` profile (or else the first with keys) of an AWS credentials file.
pub fn read_credentials(path: &Path) -> anyhow::Result<Credentials> {
    let profiles = aws_credentials_file::read_file(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let profile = aws_credentials_file::default_or_first(&profiles);
    let (key, secret) = profile
        .and_then(|p| p.keys())
        .with_context(|| format!("{}: no profile with keys", path.display()))?;
    Ok(Credentials::new(
        key,
        secret.expose(),
        None,
        None,
        "ingest-server",
    ))
}

/// An SDK client for `endpoint` (`http://...`), over [`H2cClient`].
pub fn sdk_client(endpoint: &str, credentials: Credentials) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .http_client(H2cClient::new())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// The SDK's HTTP client for plain-HTTP endpoints: HTTP/2 with prior knowledge (no Upgrade),
/// pooled connections.
#[derive(Clone)]
pub struct H2cClient {
    inner: HyperClient<HyperHttpConnector, SdkBody>,
}

impl H2cClient {
    pub fn new() -> Self {
        let mut connector = HyperHttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let inner = HyperClient::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        Self { inner }
    }
}

impl Default for H2cClient {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for H2cClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("H2cClient")
    }
}

impl HttpClient for H2cClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for H2cClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let response = client
                .request(request)
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}
