//! Kinesis Video Streams: control plane, PutMedia ingest, GetMedia and the archived
//! media reads, over a [`VideoStore`].

mod control_plane;
mod errors;
mod get_media;
mod list_fragments;
mod live;
mod playback;
mod put_media;
mod shapes;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Response;

use crate::config::Config;
use crate::protocol::body::ResponseBody;
use crate::protocol::error::AwsError;
use crate::protocol::router::VideoOperation;
use crate::storage::{StoreError, StreamKey, StreamRecord, VideoStore};

pub use errors::store_error;
pub use live::LiveFeeds;

/// What the protocol layer knows about a request that services need.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `x-amzn-RequestId` of this request.
    pub request_id: String,
    /// The host name the client addressed (Host header or `:authority`, without port).
    pub host: String,
    /// The Host header or `:authority` as sent (with the port), for URLs that point back
    /// at the endpoint the client used (playback session URLs).
    pub authority: String,
}

/// The video service: shared by every connection of both listeners.
pub struct VideoService {
    store: Arc<dyn VideoStore>,
    config: Arc<Config>,
    live: LiveFeeds,
    /// Streams with a PutMedia connection open (AWS allows one per stream).
    uploads: Mutex<HashSet<i64>>,
    /// `https://` or `http://`.
    scheme: &'static str,
    /// Port of the HTTP/1.1-only data-plane listener, for GetDataEndpoint.
    data_port: u16,
    /// HLS/DASH streaming sessions (token key, active sessions).
    playback: playback::Playback,
}

impl VideoService {
    /// A service over `store`.
    pub fn new(store: Arc<dyn VideoStore>, config: Arc<Config>, data_port: u16) -> Arc<Self> {
        let scheme = if config.plain_http { "http" } else { "https" };
        Arc::new(Self {
            store,
            config,
            live: LiveFeeds::default(),
            uploads: Mutex::new(HashSet::new()),
            scheme,
            data_port,
            playback: playback::Playback::new(),
        })
    }

    /// Runs a blocking store call on the blocking pool.
    async fn store_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn VideoStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AwsError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "Store task failed.");
                AwsError::internal()
            })?
            .map_err(store_error)
    }

    /// Resolves `StreamName` / `StreamARN` (exactly one must be given) to a stream.
    async fn resolve(
        &self,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<StreamRecord, AwsError> {
        let (by_arn, value) = match (name, arn) {
            (Some(_), Some(_)) => {
                return Err(AwsError::invalid_argument(
                    "Specify either the StreamName or the StreamARN, not both.",
                ));
            }
            (Some(n), None) => (false, n.to_owned()),
            (None, Some(a)) => (true, a.to_owned()),
            (None, None) => {
                return Err(AwsError::invalid_argument(
                    "Either the StreamName or the StreamARN must be specified.",
                ));
            }
        };
        let shown = value.clone();
        let found = self
            .store_call(move |store| {
                store.stream(if by_arn {
                    StreamKey::Arn(&value)
                } else {
                    StreamKey::Name(&value)
                })
            })
            .await?;
        found.ok_or_else(|| {
            AwsError::not_found(format!(
                "The requested stream {shown} was not found or does not exist."
            ))
        })
    }

    /// Resolves a request's `StreamName` / `StreamARN`.
    async fn resolve_ref(&self, stream: &shapes::StreamRef) -> Result<StreamRecord, AwsError> {
        self.resolve(stream.stream_name.as_deref(), stream.stream_arn.as_deref())
            .await
    }

    /// Serves a JSON operation whose whole body has been read and authenticated.
    pub async fn handle_json(
        self: &Arc<Self>,
        op: VideoOperation,
        body: Bytes,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        use VideoOperation::*;
        match op {
            GetMedia => self.get_media(&body, ctx).await,
            GetMediaForFragmentList => self.get_media_for_fragment_list(&body, ctx).await,
            ListFragments => self
                .list_fragments(&body)
                .await
                .map(|v| json_response(&v, ctx)),
            GetHlsStreamingSessionUrl | GetDashStreamingSessionUrl | GetClip | GetImages => {
                self.playback_json(op, &body, ctx).await
            }
            NotImplemented(name) => Err(AwsError::new(
                501,
                "NotImplementedException",
                format!("{name} is not implemented by this server yet."),
            )),
            PutMedia => Err(AwsError::invalid_argument(
                "PutMedia takes a streamed body.",
            )),
            control => self
                .control_plane(control, &body, ctx)
                .await
                .map(|v| json_response(&v, ctx)),
        }
    }
}

/// A 200 response with a JSON body.
fn json_response(value: &serde_json::Value, ctx: &RequestContext) -> Response<ResponseBody> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-amzn-RequestId", &ctx.request_id)
        .body(crate::protocol::body::full(value.to_string()))
        .unwrap_or_else(|_| Response::new(crate::protocol::body::full("")))
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
