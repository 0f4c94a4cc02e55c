//! Keep-alive HTTP/1.1 sessions to a Kinesis endpoint (plain TCP or TLS) and SigV4 signing for
//! service `kinesis` with a precomputed payload hash, so a body re-sent many times is hashed once.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// JSON 1.1 content type of the Kinesis API.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Hex SHA-256 of a body (the SigV4 payload hash).
pub(crate) fn sha256_hex(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// `http://host:port` or `https://host:port`, with what a request needs to reach it.
pub(crate) struct Target {
    host: String,
    port: u16,
    tls: Option<TlsConnector>,
    authority: String,
    signer: Signer,
}

impl Target {
    /// `ca` is required for `https://` endpoints.
    pub(crate) fn new(url: &str, ca: Option<&Path>, signer: Signer) -> anyhow::Result<Arc<Self>> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            bail!("endpoint {url} must start with http:// or https://");
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("endpoint {url} needs a port"))?;
        let port: u16 = port.parse().context("endpoint port")?;
        let tls = if tls {
            let ca = ca.context("an https:// endpoint needs --ca")?;
            Some(crate::client::tls_connector(ca)?)
        } else {
            None
        };
        Ok(Arc::new(Self {
            host: host.to_string(),
            port,
            tls,
            authority: format!("{host}:{port}"),
            signer,
        }))
    }

    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.authority)
    }

    async fn connect(&self) -> anyhow::Result<Io> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}", self.authority))?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Io::Plain(tcp)),
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone()).context("server name")?;
                let s = tls.connect(name, tcp).await.context("TLS handshake")?;
                Ok(Io::Tls(Box::new(s)))
            }
        }
    }

    /// The head of a signed `POST /` calling `Kinesis_20131202.{op}` with a body of `len`
    /// bytes whose SHA-256 is `sha256`.
    pub(crate) fn request_head(
        &self,
        op: &str,
        len: usize,
        sha256: &str,
    ) -> anyhow::Result<String> {
        let target = format!("Kinesis_20131202.{op}");
        let sig = self
            .signer
            .sign(&self.authority, self.scheme(), &target, sha256)?;
        let mut head = String::with_capacity(512);
        head.push_str("POST / HTTP/1.1\r\nhost: ");
        head.push_str(&self.authority);
        head.push_str("\r\ncontent-type: ");
        head.push_str(CONTENT_TYPE);
        head.push_str("\r\nx-amz-target: ");
        head.push_str(&target);
        head.push_str("\r\ncontent-length: ");
        head.push_str(&len.to_string());
        for (k, v) in sig {
            head.push_str("\r\n");
            head.push_str(&k);
            head.push_str(": ");
            head.push_str(&v);
        }
        head.push_str("\r\n\r\n");
        Ok(head)
    }
}

/// SigV4 for service `kinesis`.
pub(crate) struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    /// Keys from an AWS credentials file, or else fixed dummy keys (kinesalite and moto accept
    /// any signed request).
    pub(crate) fn new(credentials: Option<&Path>, region: &str) -> anyhow::Result<Self> {
        let creds = match credentials {
            Some(path) => {
                let profiles = aws_credentials_file::read_file(path)?;
                let profile = aws_credentials_file::default_or_first(&profiles);
                let Some((key, secret)) = profile.and_then(|p| p.keys()) else {
                    bail!("{}: no profile holds keys", path.display());
                };
                Credentials::new(key, secret.expose(), None, None, "loadgen")
            }
            None => Credentials::new("AKIDLOADGENBENCH", "loadgen-secret", None, None, "loadgen"),
        };
        Ok(Self {
            identity: creds.into(),
            region: region.to_string(),
        })
    }

    /// The signature headers (x-amz-date, authorization) of a request to `authority` with
    /// headers host, content-type and x-amz-target.
    fn sign(
        &self,
        authority: &str,
        scheme: &str,
        target: &str,
        sha256: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("kinesis")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers = [
            ("host", authority),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target),
        ];
        let req = SignableRequest::new(
            "POST",
            format!("{scheme}://{authority}/"),
            headers.into_iter(),
            SignableBody::Precomputed(sha256.to_string()),
        )?;
        let (instructions, _) = sign(req, &params)?.into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

/// A plain or TLS byte stream.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One keep-alive connection (re-opened after an error or `connection: close`) and the body
/// of the last response.
pub(crate) struct Session {
    target: Arc<Target>,
    io: Option<Io>,
    reader: crate::http1::Reader,
    body: Vec<u8>,
    /// Connections opened.
    pub(crate) connects: u64,
}

impl Session {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        Self {
            target,
            io: None,
            reader: crate::http1::Reader::new(),
            body: Vec::new(),
            connects: 0,
        }
    }

    /// Opens the connection now (so that the first timed request does not include it).
    pub(crate) async fn connect(&mut self) -> anyhow::Result<()> {
        if self.io.is_none() {
            self.io = Some(self.target.connect().await?);
            self.connects += 1;
            self.reader.reset();
        }
        Ok(())
    }

    /// Body of the last response.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Signs and sends `POST /` for `op` with `body` (SHA-256 `sha256`); returns the status,
    /// the body is in [`Session::body`]. The connection is dropped after any error.
    pub(crate) async fn call(
        &mut self,
        op: &str,
        body: &[u8],
        sha256: &str,
    ) -> anyhow::Result<u16> {
        let head = self.target.request_head(op, body.len(), sha256)?;
        self.connect().await?;
        match self.exchange(head.as_bytes(), body).await {
            Ok((status, keep)) => {
                if !keep {
                    self.io = None;
                }
                Ok(status)
            }
            Err(e) => {
                self.io = None;
                Err(e)
            }
        }
    }

    /// A JSON call with a body built for it; returns (status, parsed body or Null).
    pub(crate) async fn json(
        &mut self,
        op: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let body = serde_json::to_vec(body)?;
        let status = self.call(op, &body, &sha256_hex(&body)).await?;
        let v = serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null);
        Ok((status, v))
    }

    async fn exchange(&mut self, head: &[u8], body: &[u8]) -> anyhow::Result<(u16, bool)> {
        let Some(io) = self.io.as_mut() else {
            bail!("not connected");
        };
        if body.len() <= 16 * 1024 {
            let mut all = Vec::with_capacity(head.len() + body.len());
            all.extend_from_slice(head);
            all.extend_from_slice(body);
            io.write_all(&all).await?;
        } else {
            io.write_all(head).await?;
            io.write_all(body).await?;
        }
        io.flush().await?;
        self.read_response().await
    }

    /// Reads a response into [`Session::body`]; returns (status, connection reusable).
    async fn read_response(&mut self) -> anyhow::Result<(u16, bool)> {
        self.body.clear();
        let Some(io) = self.io.as_mut() else {
            bail!("not connected");
        };
        let head = self.reader.head(io).await?;
        let body = &mut self.body;
        self.reader
            .body(io, head.framing, |piece| body.extend_from_slice(piece))
            .await?;
        Ok((head.status, !head.close))
    }
}

/// The error code of an AWS JSON error body (`__type`, after any `#`).
pub(crate) fn error_code(v: &serde_json::Value) -> String {
    let t = v["__type"].as_str().unwrap_or("");
    t.rsplit('#').next().unwrap_or(t).to_string()
}

/// A short description of a failed response for error samples.
pub(crate) fn describe_failure(op: &str, status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    format!("{op}: HTTP {status}: {text}")
}
