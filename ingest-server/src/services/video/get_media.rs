//! `GetMedia` and `GetMediaForFragmentList`: stored fragments streamed back in the
//! chunk layout of real AWS output (see `kvs-wire-protocol.md` §3). Each fragment's
//! file already holds everything up to the Cluster, so a read is one file read plus
//! the per-read trailer tags (MILLIS_BEHIND_NOW, CONTINUATION_TOKEN).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use mkv_fragment::getmedia::{write_error_chunk, write_fragment_trailer};
use tokio::sync::mpsc;

use super::list_fragments::timestamp_kind;
use super::shapes::*;
use super::{RequestContext, VideoService, now_ms};
use crate::protocol::body::{ResponseBody, channel, decode_json};
use crate::protocol::error::AwsError;
use crate::protocol::validate::{self, Validation};
use crate::storage::{FragmentRecord, StoreError, parse_fragment_number};

const START_SELECTORS: &[&str] = &[
    "FRAGMENT_NUMBER",
    "SERVER_TIMESTAMP",
    "PRODUCER_TIMESTAMP",
    "NOW",
    "EARLIEST",
    "CONTINUATION_TOKEN",
];
/// Fragments fetched from the index per query while catching up.
const BATCH: usize = 32;
/// GetMedia error id for a fragment that cannot be found (API_dataplane_GetMedia).
const ERROR_FRAGMENT_NOT_FOUND: u64 = 4000;
/// The id AWS puts in GetMediaForFragmentList's chunk for an unknown fragment number
/// (observed in a real response, aws-sdk-js issue #3217; the docs list only 4000).
const ERROR_LISTED_FRAGMENT_NOT_FOUND: u64 = 3000;
/// GetMedia error id for an internal failure.
const ERROR_INTERNAL: u64 = 5000;

fn media_response(body: ResponseBody, ctx: &RequestContext) -> Response<ResponseBody> {
    Response::builder()
        .status(200)
        .header("content-type", "video/webm")
        .header("x-amzn-RequestId", &ctx.request_id)
        .body(body)
        .unwrap_or_else(|_| Response::new(crate::protocol::body::full("")))
}

/// The sequence a fragment number or continuation token names within `stream_id`.
fn seq_of(number: &str, stream_id: i64, what: &str) -> Result<i64, AwsError> {
    match parse_fragment_number(number) {
        Some((sid, seq)) if sid == stream_id => Ok(seq),
        _ => Err(AwsError::invalid_argument(format!(
            "The {what} {number} does not belong to this stream."
        ))),
    }
}

impl VideoService {
    pub(super) async fn get_media(
        self: &Arc<Self>,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let input: GetMediaInput = decode_json(body)?;
        let mut v = Validation::new();
        input.stream.check(&mut v);
        v.required("startSelector", input.start_selector.as_ref());
        let selector = input.start_selector.as_ref();
        let kind = selector.and_then(|s| s.start_selector_type.as_deref());
        v.required("startSelector.startSelectorType", kind.as_ref());
        v.one_of("startSelector.startSelectorType", kind, START_SELECTORS);
        v.string(
            "startSelector.afterFragmentNumber",
            selector.and_then(|s| s.after_fragment_number.as_deref()),
            1,
            128,
            &validate::FRAGMENT_NUMBER,
        );
        v.string(
            "startSelector.continuationToken",
            selector.and_then(|s| s.continuation_token.as_deref()),
            1,
            128,
            &validate::NAME,
        );
        v.finish()?;
        let selector =
            selector.ok_or_else(|| AwsError::invalid_argument("StartSelector is required."))?;
        let stream = self.resolve_ref(&input.stream).await?;
        let id = stream.id;
        // Subscribe before looking at the index, so no fragment stored meanwhile is missed.
        let live = self.live.subscribe(id);
        let missing = |field: &str| {
            AwsError::invalid_argument(format!("{field} is required for this StartSelectorType."))
        };
        let after_seq = match kind.unwrap_or_default() {
            "EARLIEST" => 0,
            "NOW" => self
                .store_call(move |s| s.latest_seq(id))
                .await?
                .unwrap_or(0),
            "FRAGMENT_NUMBER" => {
                let number = selector
                    .after_fragment_number
                    .as_deref()
                    .ok_or_else(|| missing("AfterFragmentNumber"))?;
                seq_of(number, id, "fragment number")?
            }
            "CONTINUATION_TOKEN" => {
                let token = selector
                    .continuation_token
                    .as_deref()
                    .ok_or_else(|| missing("ContinuationToken"))?;
                seq_of(token, id, "continuation token")?
            }
            ts_kind => {
                let ts = selector
                    .start_timestamp
                    .ok_or_else(|| missing("StartTimestamp"))?
                    .millis();
                let kind = timestamp_kind(ts_kind)
                    .ok_or_else(|| AwsError::invalid_argument("Unknown StartSelectorType."))?;
                match self.store_call(move |s| s.seek(id, kind, ts)).await? {
                    Some(seq) => seq - 1,
                    None => self
                        .store_call(move |s| s.latest_seq(id))
                        .await?
                        .unwrap_or(0),
                }
            }
        };
        let (tx, body) = channel(2);
        let service = Arc::clone(self);
        tokio::spawn(async move { service.follow(id, after_seq, live, tx).await });
        Ok(media_response(body, ctx))
    }

    /// Streams fragments after `after_seq`, then waits for new ones while a producer is
    /// connected (or up to the idle timeout), then ends.
    async fn follow(
        self: Arc<Self>,
        stream_id: i64,
        mut after_seq: i64,
        mut live: tokio::sync::watch::Receiver<super::live::LiveState>,
        tx: mpsc::Sender<Bytes>,
    ) {
        let idle = Duration::from_secs(self.config.get_media_idle_secs);
        let producer_timeout = Duration::from_secs(self.config.put_media_timeout_secs.max(1));
        loop {
            live.borrow_and_update();
            let batch = match self
                .store_call(move |s| s.fragments_after(stream_id, after_seq, BATCH))
                .await
            {
                Ok(batch) => batch,
                Err(_) => {
                    send_error(&tx, "INTERNAL_ERROR", ERROR_INTERNAL, None).await;
                    return;
                }
            };
            if batch.is_empty() {
                let wait = if live.borrow().producing {
                    producer_timeout
                } else {
                    idle
                };
                match tokio::time::timeout(wait, live.changed()).await {
                    Ok(Ok(())) => continue,
                    _ => return, // idle, or the stream was deleted
                }
            }
            for fragment in batch {
                after_seq = fragment.seq;
                if !self.send_fragment(&fragment, &tx).await {
                    return;
                }
            }
        }
    }

    /// Sends one stored fragment and its trailer; false when the client has gone.
    async fn send_fragment(&self, fragment: &FragmentRecord, tx: &mpsc::Sender<Bytes>) -> bool {
        let record = fragment.clone();
        let store = Arc::clone(&self.store);
        let media = tokio::task::spawn_blocking(move || store.read_fragment_media(&record)).await;
        let number = fragment.number();
        match media {
            Ok(Ok(media)) => {
                let mut trailer = Vec::with_capacity(128);
                let behind = (now_ms() - fragment.server_ts_ms).max(0) as u64;
                write_fragment_trailer(&mut trailer, behind, &number);
                tx.send(Bytes::from(media)).await.is_ok()
                    && tx.send(Bytes::from(trailer)).await.is_ok()
            }
            // Expired or deleted between the index query and the read.
            Ok(Err(StoreError::NotFound)) => {
                send_error(
                    tx,
                    "FRAGMENT_NOT_FOUND",
                    ERROR_FRAGMENT_NOT_FOUND,
                    Some(&number),
                )
                .await
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err, fragment = %number, "Fragment could not be read.");
                send_error(tx, "INTERNAL_ERROR", ERROR_INTERNAL, Some(&number)).await
            }
            Err(_) => send_error(tx, "INTERNAL_ERROR", ERROR_INTERNAL, Some(&number)).await,
        }
    }

    pub(super) async fn get_media_for_fragment_list(
        self: &Arc<Self>,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let input: GetMediaForFragmentListInput = decode_json(body)?;
        let mut v = Validation::new();
        input.stream.check(&mut v);
        v.required("fragments", input.fragments.as_ref());
        v.count("fragments", input.fragments.as_ref().map(Vec::len), 1, 1000);
        for number in input.fragments.iter().flatten() {
            v.string(
                "fragments.member",
                Some(number),
                1,
                128,
                &validate::FRAGMENT_NUMBER,
            );
        }
        v.finish()?;
        let stream = self.resolve_ref(&input.stream).await?;
        let (tx, body) = channel(2);
        let service = Arc::clone(self);
        let numbers = input.fragments.unwrap_or_default();
        tokio::spawn(async move {
            for number in numbers {
                let seq = parse_fragment_number(&number)
                    .filter(|(sid, _)| *sid == stream.id)
                    .map(|(_, seq)| seq);
                let id = stream.id;
                let found = match seq {
                    Some(seq) => service
                        .store_call(move |s| s.fragment(id, seq))
                        .await
                        .ok()
                        .flatten(),
                    None => None,
                };
                let sent = match found {
                    Some(fragment) => service.send_fragment(&fragment, &tx).await,
                    None => {
                        send_error(
                            &tx,
                            "FRAGMENT_NOT_FOUND",
                            ERROR_LISTED_FRAGMENT_NOT_FOUND,
                            Some(&number),
                        )
                        .await
                    }
                };
                if !sent {
                    return;
                }
            }
        });
        Ok(media_response(body, ctx))
    }
}

/// Sends a GetMedia error chunk; false when the client has gone.
async fn send_error(
    tx: &mpsc::Sender<Bytes>,
    code: &str,
    id: u64,
    fragment_number: Option<&str>,
) -> bool {
    let mut chunk = Vec::with_capacity(256);
    write_error_chunk(&mut chunk, code, id, fragment_number);
    tx.send(Bytes::from(chunk)).await.is_ok()
}
