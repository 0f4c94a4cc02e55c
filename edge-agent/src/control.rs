//! The local control interface: a Unix socket in the spool directory (`control.sock`) that
//! `edge-agent status` and `edge-agent metadata` use to reach the running agent. One JSON
//! request per connection, one JSON answer. Only the agent's user can reach it (mode 0600).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

use crate::metadata::MetadataSet;

/// Socket file name inside the spool directory.
pub(crate) const SOCKET_NAME: &str = "control.sock";

/// A request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub(crate) enum Request {
    Status,
    MetadataPut {
        name: String,
        value: String,
        persistent: bool,
    },
    MetadataRemove {
        name: String,
    },
}

/// An answer: `ok` with a payload, or an error message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<serde_json::Value>,
}

/// What the server side needs.
pub(crate) struct Handler {
    /// Fragment metadata; `None` for `edge-agent tail`, which has no fragments.
    pub(crate) metadata: Option<Arc<Mutex<MetadataSet>>>,
    pub(crate) status: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
}

impl Handler {
    fn handle(&self, request: Request) -> Response {
        let metadata = match (&request, &self.metadata) {
            (Request::Status, _) => {
                return Response {
                    ok: true,
                    error: None,
                    status: Some((self.status)()),
                };
            }
            (_, None) => {
                return Response {
                    ok: false,
                    error: Some("this agent runs `tail`: it has no fragment metadata".into()),
                    status: None,
                };
            }
            (_, Some(metadata)) => metadata,
        };
        let mut metadata = metadata.lock().unwrap_or_else(|e| e.into_inner());
        let result = match request {
            Request::Status => Ok(()),
            Request::MetadataPut {
                name,
                value,
                persistent,
            } => metadata.put(&name, &value, persistent).inspect(|()| {
                info!(%name, %value, persistent, "fragment metadata set");
            }),
            Request::MetadataRemove { name } => metadata
                .remove(&name)
                .inspect(|()| info!(%name, "fragment metadata removed")),
        };
        match result {
            Ok(()) => Response {
                ok: true,
                error: None,
                status: None,
            },
            Err(e) => Response {
                ok: false,
                error: Some(e.to_string()),
                status: None,
            },
        }
    }
}

/// Binds the socket (replacing a stale one from a crashed run) and serves it.
pub(crate) fn serve(spool_dir: &Path, handler: Handler) -> std::io::Result<()> {
    let path = spool_dir.join(SOCKET_NAME);
    if std::os::unix::net::UnixStream::connect(&path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "another agent is running with directory {} (its control socket answers)",
                spool_dir.display()
            ),
        ));
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &handler).await {
                            warn!(error = %e, "control socket request failed");
                        }
                    });
                }
                Err(e) => warn!(error = %e, "control socket accept failed"),
            }
        }
    });
    Ok(())
}

async fn answer(stream: UnixStream, handler: &Handler) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(64 * 1024))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => handler.handle(request),
        Err(e) => Response {
            ok: false,
            error: Some(format!("bad request: {e}")),
            status: None,
        },
    };
    let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Client side: sends one request to the agent running with this spool directory.
pub(crate) fn request(spool_dir: &Path, request: &Request) -> Result<Response, String> {
    use std::io::{BufRead, Write};
    let path: PathBuf = spool_dir.join(SOCKET_NAME);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        format!(
            "no edge-agent is running with spool (or tail state) directory {} ({}: {e})",
            spool_dir.display(),
            path.display()
        )
    })?;
    let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&answer).map_err(|e| format!("unreadable answer from the agent: {e}"))
}
