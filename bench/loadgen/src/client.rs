//! TLS connections, SigV4 signing and a tiny HTTP/1.1 client (request head, chunked bodies).

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// An `https://host:port` endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("https://")
            .with_context(|| format!("endpoint {url} must start with https://"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("endpoint {url} needs a port"))?;
        Ok(Self {
            host: host.to_string(),
            port: port.parse().context("endpoint port")?,
        })
    }

    /// Value of the Host header.
    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A TLS connector trusting only the CA in `ca` (PEM), offering HTTP/1.1.
pub(crate) fn tls_connector(ca: &Path) -> anyhow::Result<TlsConnector> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).with_context(|| format!("reading CA {}", ca.display()))?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.context("parsing CA PEM")?)?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Everything a request needs: TLS config, endpoint identity and credentials.
#[derive(Clone)]
pub(crate) struct Client {
    tls: TlsConnector,
    identity: Identity,
    region: String,
}

impl Client {
    pub(crate) fn new(ca: &Path, credentials: &Path, region: &str) -> anyhow::Result<Self> {
        let creds = read_credentials(credentials)?;
        Ok(Self {
            tls: tls_connector(ca)?,
            identity: creds.into(),
            region: region.to_string(),
        })
    }

    pub(crate) async fn connect(&self, ep: &Endpoint) -> anyhow::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .with_context(|| format!("connecting to {}", ep.authority()))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(ep.host.clone()).context("server name")?;
        let tls = self.tls.connect(name, tcp).await.context("TLS handshake")?;
        Ok(tls)
    }

    /// Returns the signature headers (x-amz-date, authorization) for a request with the
    /// given headers; `body` `None` signs the empty-body hash (streamed PutMedia body).
    pub(crate) fn sign(
        &self,
        path: &str,
        ep: &Endpoint,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let settings = SigningSettings::default();
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("kinesisvideo")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let uri = format!("https://{}{}", ep.authority(), path);
        let req = SignableRequest::new(
            "POST",
            uri,
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Bytes(body),
        )?;
        let (instructions, _sig) = sign(req, &params)?.into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// A complete request head (status line + headers + blank line).
    pub(crate) fn request_head(
        &self,
        path: &str,
        ep: &Endpoint,
        mut headers: Vec<(&str, String)>,
        body: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        headers.insert(0, ("host", ep.authority()));
        let sig = self.sign(path, ep, &headers, body)?;
        let mut head = format!("POST {path} HTTP/1.1\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        for (k, v) in &sig {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        Ok(head.into_bytes())
    }

    /// A JSON request with a Content-Length body; returns (status, body).
    pub(crate) async fn json_call(
        &self,
        ep: &Endpoint,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let body = serde_json::to_vec(body)?;
        let head = self.request_head(
            path,
            ep,
            vec![
                ("content-type", "application/json".to_string()),
                ("content-length", body.len().to_string()),
                ("connection", "close".to_string()),
            ],
            &body,
        )?;
        let mut conn = self.connect(ep).await?;
        conn.write_all(&head).await?;
        conn.write_all(&body).await?;
        conn.flush().await?;
        let mut reader = HttpReader::new(conn);
        let resp = reader.read_head().await?;
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_body_chunk(&resp).await? {
            out.extend_from_slice(&chunk);
        }
        Ok((resp.status, out))
    }
}

/// The keys of the `[default]` profile of the credentials file at `path`, or
/// else of its first profile holding keys.
fn read_credentials(path: &Path) -> anyhow::Result<Credentials> {
    let profiles = aws_credentials_file::read_file(path)?;
    let profile = aws_credentials_file::default_or_first(&profiles);
    let Some((key, secret)) = profile.and_then(|p| p.keys()) else {
        bail!(
            "{}: no profile holds both aws_access_key_id and aws_secret_access_key",
            path.display()
        );
    };
    let token = profile.and_then(|p| p.session_token.as_ref());
    Ok(Credentials::new(
        key,
        secret.expose(),
        token.map(|t| t.expose().to_owned()),
        None,
        "bench",
    ))
}

/// Response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) chunked: bool,
    pub(crate) content_length: Option<u64>,
}

/// Reads an HTTP/1.1 response from any byte stream, decoding chunked bodies.
pub(crate) struct HttpReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    body_read: u64,
    done: bool,
}

impl<R: AsyncRead + Unpin> HttpReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            body_read: 0,
            done: false,
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    async fn fill(&mut self) -> anyhow::Result<bool> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 256 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let n = self.inner.read(&mut self.buf[old..]).await;
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(old);
                return Err(e.into());
            }
        };
        self.buf.truncate(old + n);
        Ok(n > 0)
    }

    async fn read_line(&mut self) -> anyhow::Result<String> {
        loop {
            if let Some(i) = self.avail().windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.avail()[..i]).into_owned();
                self.start += i + 2;
                return Ok(line);
            }
            if !self.fill().await? {
                bail!("connection closed inside a line");
            }
        }
    }

    pub(crate) async fn read_head(&mut self) -> anyhow::Result<ResponseHead> {
        let mut status_line = self.read_line().await?;
        loop {
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .context("bad status line")?
                .parse()
                .context("bad status code")?;
            let mut chunked = false;
            let mut content_length = None;
            loop {
                let line = self.read_line().await?;
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    let k = k.trim().to_ascii_lowercase();
                    let v = v.trim();
                    if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                        chunked = true;
                    } else if k == "content-length" {
                        content_length = v.parse().ok();
                    }
                }
            }
            if status == 100 {
                status_line = self.read_line().await?;
                continue;
            }
            return Ok(ResponseHead {
                status,
                chunked,
                content_length,
            });
        }
    }

    /// Next piece of body data; `None` at the end of the body.
    pub(crate) async fn next_body_chunk(
        &mut self,
        head: &ResponseHead,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        if head.chunked {
            let line = self.read_line().await?;
            let size_str = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_str, 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers until blank line.
                loop {
                    if self.read_line().await?.is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(None);
            }
            while self.avail().len() < size + 2 {
                if !self.fill().await? {
                    bail!("connection closed inside a chunk");
                }
            }
            let data = self.avail()[..size].to_vec();
            self.start += size + 2;
            self.body_read += size as u64;
            return Ok(Some(data));
        }
        if let Some(len) = head.content_length {
            if self.body_read >= len {
                self.done = true;
                return Ok(None);
            }
            if self.avail().is_empty() && !self.fill().await? {
                bail!("connection closed before Content-Length");
            }
            let take = (len - self.body_read).min(self.avail().len() as u64) as usize;
            let data = self.avail()[..take].to_vec();
            self.start += take;
            self.body_read += take as u64;
            return Ok(Some(data));
        }
        // Read until close.
        if self.avail().is_empty() && !self.fill().await? {
            self.done = true;
            return Ok(None);
        }
        let data = self.avail().to_vec();
        self.start = self.buf.len();
        self.body_read += data.len() as u64;
        Ok(Some(data))
    }
}
