//! Reading HTTP/1.1 responses off a keep-alive connection: status, framing (content-length,
//! chunked or to EOF), 1xx skipped. Hand-written because the generator must stay cheap and
//! see exactly what the server sends; hyper's client would hide connection reuse.

use anyhow::{Context, bail};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    ToEof,
}

/// A final (non-1xx) response head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) framing: Framing,
    /// The server closes the connection after this response.
    pub(crate) close: bool,
}

/// The read buffer of one connection.
pub(crate) struct Reader {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Reader {
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0; 64 * 1024],
            pos: 0,
            end: 0,
        }
    }

    /// Drops buffered bytes (the connection was replaced).
    pub(crate) fn reset(&mut self) {
        self.pos = 0;
        self.end = 0;
    }

    /// Reads more bytes; false at EOF.
    async fn fill<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> anyhow::Result<bool> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let n = io.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    async fn line<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> anyhow::Result<String> {
        loop {
            let avail = &self.buf[self.pos..self.end];
            if let Some(i) = avail.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&avail[..i]).into_owned();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.end - self.pos == self.buf.len() {
                bail!("response line longer than {} bytes", self.buf.len());
            }
            if !self.fill(io).await? {
                bail!("connection closed by the server");
            }
        }
    }

    /// Reads the next final response head (1xx responses are skipped).
    pub(crate) async fn head<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> anyhow::Result<Head> {
        loop {
            let status_line = self.line(io).await?;
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .context("bad status line")?
                .parse()
                .context("bad status code")?;
            let mut chunked = false;
            let mut length = None;
            let mut close = status_line.starts_with("HTTP/1.0");
            loop {
                let line = self.line(io).await?;
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    let v = v.trim().to_ascii_lowercase();
                    match k.trim().to_ascii_lowercase().as_str() {
                        "transfer-encoding" => chunked = v.contains("chunked"),
                        "content-length" => length = v.parse::<u64>().ok(),
                        "connection" if v.contains("close") => close = true,
                        "connection" if v.contains("keep-alive") => close = false,
                        _ => {}
                    }
                }
            }
            if (100..200).contains(&status) {
                continue;
            }
            let framing = match (chunked, length) {
                (true, _) => Framing::Chunked,
                (false, Some(n)) => Framing::Length(n),
                (false, None) => Framing::ToEof,
            };
            let close = close || framing == Framing::ToEof;
            return Ok(Head {
                status,
                framing,
                close,
            });
        }
    }

    /// Reads the body of `head`, handing each piece to `sink`; returns its length.
    pub(crate) async fn body<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        framing: Framing,
        mut sink: impl FnMut(&[u8]),
    ) -> anyhow::Result<u64> {
        match framing {
            Framing::Length(n) => self.take(io, Some(n), &mut sink).await,
            Framing::ToEof => self.take(io, None, &mut sink).await,
            Framing::Chunked => {
                let mut total = 0;
                loop {
                    let size_line = self.line(io).await?;
                    let size =
                        u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                            .with_context(|| format!("bad chunk size {size_line:?}"))?;
                    if size == 0 {
                        while !self.line(io).await?.is_empty() {}
                        return Ok(total);
                    }
                    total += self.take(io, Some(size), &mut sink).await?;
                    self.line(io).await?;
                }
            }
        }
    }

    /// Passes `n` bytes (all of them up to EOF with `None`) to `sink`.
    async fn take<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        n: Option<u64>,
        sink: &mut impl FnMut(&[u8]),
    ) -> anyhow::Result<u64> {
        let mut left = n.unwrap_or(u64::MAX);
        let mut read = 0u64;
        while left > 0 {
            if self.pos == self.end && !self.fill(io).await? {
                if n.is_none() {
                    break;
                }
                bail!("connection closed inside a body");
            }
            let take = (left.min((self.end - self.pos) as u64)) as usize;
            sink(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            left -= take as u64;
            read += take as u64;
        }
        Ok(read)
    }
}
