//! `PutMedia`: a full-duplex HTTP/1.1 upload. The producer streams MKV; every Cluster
//! is a fragment; acks (BUFFERING, RECEIVED, PERSISTED, ERROR, IDLE) stream back as
//! newline-terminated JSON chunks while the upload goes on (`kvs-wire-protocol.md` §1).
//!
//! PERSISTED is sent only after the fragment file and its index row are durable: it is
//! what lets a producer drop the fragment from its buffer.

mod ack;
mod fragment;
mod headers;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;

use super::{RequestContext, VideoService};
use crate::protocol::body::{ResponseBody, channel};
use crate::protocol::error::AwsError;
use headers::parse_headers;
use upload::Upload;

/// AWS's limits on a fragment and an upload (kvs-wire-protocol.md §1, "Limits").
const MAX_FRAGMENT_BYTES: u64 = 50 * 1000 * 1000;
/// The current quotas page says 20 s (older text: 10 s); the larger value is accepted.
const MAX_FRAGMENT_DURATION_MS: i64 = 20_000;
const MAX_TRACKS: usize = 3;
const MAX_USER_TAGS: usize = 10;
const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(45 * 60);

/// How long PutMedia waits for the first body bytes before answering anyway.
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(2);

/// Holds the stream's single PutMedia slot; frees it when the upload ends.
struct UploadSlot {
    service: Arc<VideoService>,
    stream_id: i64,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        self.service
            .uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.stream_id);
        self.service.live.producing(self.stream_id, false);
    }
}

impl VideoService {
    /// Validates the request and starts the upload; the returned response streams acks.
    pub async fn put_media<B>(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        mut body: B,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display + Send,
    {
        let headers = parse_headers(parts)?;
        let stream = self
            .resolve(
                headers.stream_name.as_deref(),
                headers.stream_arn.as_deref(),
            )
            .await?;
        if !self
            .uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.id)
        {
            return Err(AwsError::new(
                400,
                "ConnectionLimitExceededException",
                format!(
                    "Stream {} already has a PutMedia connection; only one is allowed at a time.",
                    stream.name
                ),
            ));
        }
        let slot = UploadSlot {
            service: Arc::clone(self),
            stream_id: stream.id,
        };
        self.live.producing(stream.id, true);
        // Reading before answering makes hyper send `100 Continue` to a client that
        // asked for it (curl, as the AWS producer SDK uses it, otherwise waits a second
        // before it sends the body); the frame read goes to the upload.
        let first = tokio::time::timeout(FIRST_BYTES_WAIT, body.frame())
            .await
            .ok();
        let (tx, ack_body) = channel(64);
        tracing::info!(stream = %stream.name, request_id = %ctx.request_id, "PutMedia started.");
        let upload = Upload::new(
            Arc::clone(self),
            stream,
            &headers,
            headers.acks.then_some(tx),
        );
        tokio::spawn(async move {
            let _slot = slot;
            upload.run(body, first).await;
        });
        Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("x-amzn-RequestId", &ctx.request_id)
            .body(ack_body)
            .unwrap_or_else(|_| Response::new(crate::protocol::body::full(""))))
    }
}
