//! HTTPS (or, against a `--plain-http` server, HTTP) requests signed with SigV4, over hyper's
//! HTTP/1.1 client: JSON calls for the control plane and the streaming PutMedia request.

use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::error::UplinkError;

/// The SigV4 service name of Kinesis Video Streams (the default; see [`Client::with_service`]).
const SERVICE: &str = "kinesisvideo";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An endpoint: `https://host:port` (or `http://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("endpoint `{url}` is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "endpoint `{url}` must start with https:// or http://"
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("endpoint `{url}` has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Endpoint { tls, host, port })
    }

    fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// Connection and signing settings shared by every request.
#[derive(Clone)]
pub(crate) struct Client {
    tls: TlsConnector,
    identity: Identity,
    region: String,
    service: &'static str,
    /// One kept-alive connection of whole-body calls (control plane, PutRecords), so that
    /// a steady caller does not pay a TLS handshake per request.
    idle: Arc<Mutex<Option<(Endpoint, Sender)>>>,
}

/// The sending half of a whole-body HTTP/1.1 connection.
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Client {
    /// `ca`: trust only this PEM bundle (e.g. the server's `DIR/tls/ca.pem`); otherwise the
    /// system's roots.
    pub(crate) fn new(
        ca: Option<&Path>,
        credentials: Credentials,
        region: &str,
    ) -> Result<Self, UplinkError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    UplinkError::Config(format!("cannot read CA file {}: {e}", path.display()))
                })?;
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| {
                        UplinkError::Config(format!("CA file {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        UplinkError::Config(format!("CA file {}: {e}", path.display()))
                    })?;
                }
                if roots.is_empty() {
                    return Err(UplinkError::Config(format!(
                        "CA file {} holds no PEM certificate",
                        path.display()
                    )));
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // ALPN stays empty: PutMedia is HTTP/1.1 only, and AWS's data endpoints expect it.
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            identity: credentials.into(),
            region: region.to_owned(),
            service: SERVICE,
            idle: Arc::default(),
        })
    }

    /// A client built as every agent command does: credentials from the environment or the
    /// AWS credentials file (never the config file), the region from the config file, else
    /// AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
    pub(crate) fn from_environment(
        ca: Option<&Path>,
        region: Option<&str>,
    ) -> Result<Self, UplinkError> {
        let creds = aws_credentials_file::resolve_credentials()
            .map_err(|e| UplinkError::Config(format!("credentials: {e}")))?;
        tracing::info!(source = %creds.source, access_key_id = %creds.access_key_id, "credentials loaded");
        let credentials = Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.expose().to_owned(),
            creds.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "edge-agent",
        );
        let region = region
            .map(str::to_owned)
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .or_else(|| {
                std::env::var("AWS_DEFAULT_REGION")
                    .ok()
                    .filter(|r| !r.is_empty())
            })
            .unwrap_or_else(|| "us-east-1".into());
        Client::new(ca, credentials, &region)
    }

    /// The same connection settings and keys, signing for another service (`kinesis` for
    /// the log tailer).
    pub(crate) fn with_service(mut self, service: &'static str) -> Self {
        self.service = service;
        self
    }

    async fn connect(&self, ep: &Endpoint) -> Result<Box<dyn Io>, UplinkError> {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((ep.host.as_str(), ep.port)),
        )
        .await
        .map_err(|_| UplinkError::Unreachable(format!("connecting to {ep} timed out")))?
        .map_err(|e| UplinkError::Unreachable(format!("cannot connect to {ep}: {e}")))?;
        tcp.set_nodelay(true).ok();
        if !ep.tls {
            return Ok(Box::new(tcp));
        }
        let name = ServerName::try_from(ep.host.clone())
            .map_err(|e| UplinkError::Config(format!("bad server name {}: {e}", ep.host)))?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(name, tcp))
            .await
            .map_err(|_| UplinkError::Unreachable(format!("TLS handshake with {ep} timed out")))?
            .map_err(|e| UplinkError::from_tls(ep, e))?;
        Ok(Box::new(tls))
    }

    /// Signs a POST to `path` whose body hashes as `body` (the empty string for PutMedia's
    /// streamed body, as the producer SDK signs it).
    fn signed_request<B>(
        &self,
        ep: &Endpoint,
        path: &str,
        headers: &[(&str, String)],
        signed_body: &[u8],
        body: B,
    ) -> Result<Request<B>, UplinkError> {
        let mut all: Vec<(&str, String)> = vec![("host", ep.authority())];
        all.extend(headers.iter().cloned());
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| UplinkError::Config(format!("signing: {e}")))?
            .into();
        let uri = format!("{ep}{path}");
        let signable = SignableRequest::new(
            "POST",
            uri.clone(),
            all.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Bytes(signed_body),
        )
        .map_err(|e| UplinkError::Config(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| UplinkError::Config(format!("signing: {e}")))?
            .into_parts();
        let mut builder = Request::post(path);
        for (k, v) in &all {
            builder = builder.header(*k, v);
        }
        for (k, v) in instructions.headers() {
            builder = builder.header(k, v);
        }
        builder
            .header(
                "user-agent",
                concat!("edge-agent/", env!("CARGO_PKG_VERSION")),
            )
            .body(body)
            .map_err(|e| UplinkError::Config(format!("request: {e}")))
    }

    /// A new HTTP/1.1 connection for whole-body calls.
    async fn open(&self, ep: &Endpoint) -> Result<Sender, UplinkError> {
        let io = self.connect(ep).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| UplinkError::Unreachable(format!("{ep}: {e}")))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// The kept-alive connection to `ep`, if it is still open.
    fn take_idle(&self, ep: &Endpoint) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        match idle.take() {
            Some((endpoint, sender)) if endpoint == *ep && !sender.is_closed() => Some(sender),
            _ => None,
        }
    }

    fn put_idle(&self, ep: &Endpoint, sender: Sender) {
        *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = Some((ep.clone(), sender));
    }

    /// A JSON control-plane call (Kinesis Video Streams: REST paths, `application/json`);
    /// returns the status and body.
    pub(crate) async fn json_call(
        &self,
        ep: &Endpoint,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, Bytes), UplinkError> {
        let body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        self.post(
            ep,
            path,
            &[("content-type", "application/json".into())],
            body,
        )
        .await
    }

    /// A signed POST of a whole body (JSON 1.1 RPC calls pass their `x-amz-target` and
    /// content type in `headers`); returns the status and body.
    pub(crate) async fn post(
        &self,
        ep: &Endpoint,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<(u16, Bytes), UplinkError> {
        let call = async {
            let idle = self.take_idle(ep);
            let mut reused = idle.is_some();
            let mut sender = match idle {
                Some(sender) => sender,
                None => self.open(ep).await?,
            };
            loop {
                // Signed per attempt: the signature carries the time.
                let request =
                    self.signed_request(ep, path, headers, &body, Full::new(body.clone()))?;
                let sent = match sender.ready().await {
                    Ok(()) => sender.send_request(request).await,
                    Err(e) => Err(e),
                };
                let response = match sent {
                    Ok(response) => response,
                    // The server closed the idle connection meanwhile: once more on a new one.
                    Err(_) if reused => {
                        reused = false;
                        sender = self.open(ep).await?;
                        continue;
                    }
                    Err(e) => return Err(UplinkError::Unreachable(format!("{ep}{path}: {e}"))),
                };
                let status = response.status().as_u16();
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| UplinkError::Unreachable(format!("{ep}{path}: {e}")))?
                    .to_bytes();
                self.put_idle(ep, sender);
                return Ok((status, bytes));
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| UplinkError::Unreachable(format!("{ep}{path} did not answer in time")))?
    }

    /// Opens a PutMedia request: returns the sender of body bytes and the pending response
    /// (acks). The body is sent with chunked transfer encoding while the response is read:
    /// the server answers only once body bytes arrive, so the response must not be awaited
    /// before sending, and hyper's HTTP/1.1 client keeps writing the request after the
    /// response head has arrived.
    pub(crate) async fn put_media(
        &self,
        ep: &Endpoint,
        stream_name: &str,
        start_timestamp_ms: u64,
    ) -> Result<
        (
            mpsc::Sender<Bytes>,
            PendingResponse,
            tokio::task::AbortHandle,
        ),
        UplinkError,
    > {
        let (tx, rx) = mpsc::channel(4);
        let headers = [
            ("x-amzn-stream-name", stream_name.to_owned()),
            ("x-amzn-fragment-timecode-type", "ABSOLUTE".into()),
            (
                "x-amzn-producer-start-timestamp",
                format!(
                    "{}.{:03}",
                    start_timestamp_ms / 1000,
                    start_timestamp_ms % 1000
                ),
            ),
        ];
        let mut request =
            self.signed_request(ep, "/putMedia", &headers, b"", ChannelBody { rx })?;
        request
            .headers_mut()
            .insert("transfer-encoding", HeaderValue::from_static("chunked"));
        let io = self.connect(ep).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| UplinkError::Unreachable(format!("{ep}: {e}")))?;
        // Aborted by the session when it gives up on a stale connection.
        let conn = tokio::spawn(conn).abort_handle();
        let ep = ep.clone();
        let response = tokio::spawn(async move {
            sender
                .send_request(request)
                .await
                .map_err(|e| UplinkError::Unreachable(format!("{ep}/putMedia: {e}")))
        });
        Ok((tx, response, conn))
    }
}

/// The PutMedia response, once its head arrives.
pub(crate) type PendingResponse = tokio::task::JoinHandle<Result<Response<Incoming>, UplinkError>>;

/// A request body fed from a channel; it ends when the sender is dropped.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|bytes| bytes.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let ep = Endpoint::parse("https://127.0.0.1:8443/").unwrap();
        assert_eq!(ep.to_string(), "https://127.0.0.1:8443");
        let ep = Endpoint::parse("https://kinesisvideo.us-east-1.amazonaws.com").unwrap();
        assert_eq!(
            (ep.port, ep.authority().as_str()),
            (443, "kinesisvideo.us-east-1.amazonaws.com")
        );
        let ep = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!(ep.to_string(), "http://[::1]:9000");
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }
}
