//! One PutMedia session: streams the spool from its first unacknowledged byte (backlog first,
//! then live frames as they are captured) while reading acks, until the connection fails, goes
//! stale, or is rotated before the service's 45-minute limit.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use mkv_fragment::writer::{write_ebml_header, write_id, write_size};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::acks::{Ack, AckDecoder};
use super::client::{Endpoint, PendingResponse};
use super::error::UplinkError;
use super::{Shared, State};
use crate::spool::{Chunk, Position};

/// How long a session waits for the last acks when it ends on purpose.
const GRACEFUL_END: Duration = Duration::from_secs(5);
/// How long a stopping agent keeps sending what it has captured.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_secs(3);

/// Why a session ended.
#[derive(Debug)]
pub(super) enum SessionEnd {
    /// On purpose (rotation, 4003, a refused fragment): reconnect right away.
    Reconnect(&'static str),
    /// The agent is stopping.
    Shutdown,
    /// Retry after a backoff.
    Failed(UplinkError),
}

pub(super) async fn run(
    shared: &Shared,
    data_endpoint: &Endpoint,
    shutdown: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (body_tx, response, connection) = match shared
        .client
        .put_media(data_endpoint, &shared.settings.stream.name, start_ms)
        .await
    {
        Ok(parts) => parts,
        Err(e) => return SessionEnd::Failed(e),
    };
    let mut session = Session {
        shared,
        body_tx: Some(body_tx),
        response: Some(response),
        connection,
        body: None,
        decoder: AckDecoder::default(),
        header: None,
        started: Instant::now(),
        last_heard: Instant::now(),
        persisted: 0,
    };
    let end = session.stream(shutdown).await;
    if matches!(end, SessionEnd::Reconnect(_) | SessionEnd::Shutdown) {
        session.finish().await;
    }
    end
}

struct Session<'a> {
    shared: &'a Shared,
    body_tx: Option<mpsc::Sender<Bytes>>,
    response: Option<PendingResponse>,
    connection: tokio::task::AbortHandle,
    body: Option<Incoming>,
    decoder: AckDecoder,
    /// The Info + Tracks the server was last sent in this session.
    header: Option<Arc<[u8]>>,
    started: Instant,
    last_heard: Instant,
    persisted: u64,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.connection.abort();
        if let Some(response) = &self.response {
            response.abort();
        }
    }
}

impl Session<'_> {
    async fn stream(&mut self, shutdown: &mut watch::Receiver<bool>) -> SessionEnd {
        let settings = &self.shared.settings;
        let spool = &self.shared.spool;
        let mut pos = spool.first_position();
        loop {
            let stale_at = tokio::time::Instant::from_std(self.last_heard + settings.stale_after);
            tokio::select! {
                _ = shutdown.changed() => {
                    self.flush(pos).await;
                    return SessionEnd::Shutdown;
                }
                joined = async { self.response.as_mut().expect("guarded").await }, if self.response.is_some() => {
                    self.response = None;
                    match joined {
                        Ok(Ok(response)) if response.status() == 200 => {
                            self.last_heard = Instant::now();
                            self.body = Some(response.into_body());
                        }
                        Ok(Ok(response)) => {
                            let status = response.status().as_u16();
                            let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            return SessionEnd::Failed(UplinkError::from_response("PutMedia", status, &bytes));
                        }
                        Ok(Err(e)) => return SessionEnd::Failed(e),
                        Err(e) => return SessionEnd::Failed(UplinkError::Unreachable(format!("PutMedia: {e}"))),
                    }
                }
                frame = async { self.body.as_mut().expect("guarded").frame().await }, if self.body.is_some() => {
                    match frame {
                        Some(Ok(frame)) => {
                            self.last_heard = Instant::now();
                            if let Some(end) = self.on_bytes(frame.data_ref().map_or(&[][..], |b| b)) {
                                return end;
                            }
                        }
                        Some(Err(e)) => return SessionEnd::Failed(UplinkError::Unreachable(format!("PutMedia connection lost: {e}"))),
                        None => return SessionEnd::Failed(UplinkError::Unreachable("the server ended the PutMedia response".into())),
                    }
                }
                chunk = spool.next_chunk(pos) => {
                    let chunk = match chunk {
                        Ok(chunk) => chunk,
                        Err(e) => return SessionEnd::Failed(UplinkError::Unreachable(format!("spool: {e}"))),
                    };
                    if chunk.offset == 0 {
                        debug!(fragment_timecode = chunk.timecode_ms, id = chunk.id, "sending fragment");
                        if self.started.elapsed() >= settings.rotate_after {
                            return SessionEnd::Reconnect("rotating the PutMedia session before the 45-minute limit");
                        }
                    }
                    let bytes = self.framed(&chunk);
                    let Some(tx) = &self.body_tx else { return SessionEnd::Reconnect("body closed") };
                    match tokio::time::timeout(settings.stale_after, tx.send(bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return SessionEnd::Failed(UplinkError::Unreachable("PutMedia connection closed".into())),
                        Err(_) => return SessionEnd::Failed(UplinkError::Unreachable(format!(
                            "PutMedia stalled: the server took nothing for {} s", settings.stale_after.as_secs()))),
                    }
                    pos = chunk.end();
                    if chunk.offset == 0 {
                        spool.count_sent();
                    }
                }
                _ = tokio::time::sleep_until(stale_at) => {
                    return SessionEnd::Failed(UplinkError::Unreachable(format!(
                        "stale PutMedia connection: no acknowledgement for {} s", settings.stale_after.as_secs())));
                }
            }
        }
    }

    /// The chunk's bytes, preceded by a new EBML header and Segment when its fragment belongs
    /// to another MKV session than the last one sent (first fragment, or the format changed),
    /// as the producer SDK does.
    fn framed(&mut self, chunk: &Chunk) -> Bytes {
        if chunk.offset != 0 || self.header.as_ref() == Some(&chunk.header) {
            return chunk.bytes.clone();
        }
        let mut out = Vec::with_capacity(chunk.header.len() + chunk.bytes.len() + 64);
        write_ebml_header(&mut out, 2);
        write_id(&mut out, mkv_fragment::ids::SEGMENT);
        write_size(&mut out, None, 1);
        out.extend_from_slice(&chunk.header);
        out.extend_from_slice(&chunk.bytes);
        self.header = Some(chunk.header.clone());
        Bytes::from(out)
    }

    /// At shutdown the spool holds only complete fragments: send what can be sent in a moment,
    /// whole fragments at a time, so the body never ends inside a fragment (the server would
    /// store the cut fragment, and the next start would re-send it whole).
    async fn flush(&mut self, mut pos: Position) {
        let Some(tx) = self.body_tx.clone() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + FLUSH_AT_SHUTDOWN;
        let spool = &self.shared.spool;
        while let Ok(Ok(Some(chunk))) =
            tokio::time::timeout_at(deadline, spool.try_next_chunk(pos)).await
        {
            let bytes = self.framed(&chunk);
            match tokio::time::timeout_at(deadline, tx.send(bytes)).await {
                Ok(Ok(())) => pos = chunk.end(),
                _ => {
                    // The fragment may be cut: drop the connection instead of ending the body.
                    self.body_tx = None;
                    self.connection.abort();
                    return;
                }
            }
        }
    }

    /// Handles ack bytes; returns how the session ends if an ack ends it.
    fn on_bytes(&mut self, bytes: &[u8]) -> Option<SessionEnd> {
        let acks = match self.decoder.push(bytes) {
            Ok(acks) => acks,
            Err(e) => return Some(SessionEnd::Failed(UplinkError::Unreachable(e))),
        };
        acks.into_iter().find_map(|ack| self.on_ack(ack))
    }

    fn on_ack(&mut self, ack: Ack) -> Option<SessionEnd> {
        let spool = &self.shared.spool;
        debug!(?ack, "ack");
        match ack.event_type.as_str() {
            "PERSISTED" => {
                if let Some(tc) = ack.fragment_timecode {
                    spool.persisted(tc);
                }
                self.persisted += 1;
                if self.persisted == 1 {
                    self.shared.set_state(State::Connected, None);
                }
                None
            }
            "ERROR" => Some(self.on_error(&ack)),
            _ => None,
        }
    }

    /// Error ids as the PutMedia documentation and the producer SDK define them.
    fn on_error(&mut self, ack: &Ack) -> SessionEnd {
        let id = ack.error_id.unwrap_or(0);
        let code = ack.error_code.as_deref().unwrap_or("");
        match id {
            // Connection duration limit: start a new session.
            4003 => SessionEnd::Reconnect("the server ended the session at its duration limit"),
            // Stream read error, stream not active, internal error: the fragment itself is
            // fine; retry after a backoff.
            4000 | 4008 | 5000 | 0 => SessionEnd::Failed(UplinkError::Api {
                operation: "PutMedia",
                status: 200,
                code: format!("ERROR {id} {code}"),
                message: "the server could not take the upload; retrying".into(),
            }),
            // The fragment can never be accepted (too large, too long, timecode behind the
            // previous one, invalid MKV, metadata, tracks): skip past it and start a new
            // session at the next fragment, which starts with a key frame.
            _ => {
                match ack.fragment_timecode {
                    Some(tc) if self.shared.spool.refused(tc) => {
                        warn!(
                            error_id = id,
                            error_code = code,
                            fragment_timecode = tc,
                            "the server refused a fragment for good; skipped it"
                        );
                    }
                    _ => warn!(
                        error_id = id,
                        error_code = code,
                        "the server reported an error"
                    ),
                }
                SessionEnd::Reconnect("restarting the session after a refused fragment")
            }
        }
    }

    /// Ends the request body and reads the remaining acks for a moment, so fragments already
    /// sent are acknowledged rather than re-sent.
    async fn finish(&mut self) {
        self.body_tx = None;
        let wait = async {
            if let Some(response) = self.response.take() {
                match response.await {
                    Ok(Ok(r)) if r.status() == 200 => self.body = Some(r.into_body()),
                    _ => return,
                }
            }
            let Some(mut body) = self.body.take() else {
                return;
            };
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(bytes) = frame.data_ref() {
                    let _ = self.on_bytes(bytes);
                }
            }
        };
        if tokio::time::timeout(GRACEFUL_END, wait).await.is_err() {
            info!(
                "PutMedia session closed before every acknowledgement arrived; unacknowledged fragments will be re-sent"
            );
        }
    }
}
