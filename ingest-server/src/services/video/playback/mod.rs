//! Playback of stored fragments: HLS and DASH streaming sessions (the session URL
//! operations and the GET endpoints they point to), clips and images, per the botocore
//! `kinesis-video-archived-media` model. Conversion to fMP4/TS and playlists is the `hls`
//! crate's job; this module owns sessions, validation and HTTP.
//!
//! * `session_url`: GetHLSStreamingSessionURL / GetDASHStreamingSessionURL.
//! * `session`: session tokens (HMAC) and the registry of active sessions.
//! * `selection`: which fragments a session plays (ranges, live window, replay).
//! * `get`: the `/hls/v1/...` and `/dash/v1/...` GETs; `hls_get` / `dash_get` write the
//!   playlists and the manifest.
//! * `clip`: GetClip. `images`: GetImages.

mod clip;
mod dash_get;
mod get;
mod hls_get;
mod images;
mod ll_hls;
mod media;
mod selection;
mod session;
mod session_url;

use std::sync::Arc;

use http::{HeaderValue, Response};

pub(super) use session::Playback;

use super::{RequestContext, VideoService};
use crate::protocol::body::ResponseBody;
use crate::protocol::error::AwsError;
use crate::protocol::router::VideoOperation;

impl VideoService {
    /// The signed JSON operations: session URLs, GetClip, GetImages.
    pub(super) async fn playback_json(
        self: &Arc<Self>,
        op: VideoOperation,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        match op {
            VideoOperation::GetImages => self.get_images(body, ctx).await,
            VideoOperation::GetHlsStreamingSessionUrl => {
                self.get_hls_streaming_session_url(body, ctx).await
            }
            VideoOperation::GetDashStreamingSessionUrl => {
                self.get_dash_streaming_session_url(body, ctx).await
            }
            VideoOperation::GetClip => self.get_clip(body, ctx).await,
            other => Err(AwsError::new(
                501,
                "NotImplementedException",
                format!("{other:?} is not implemented by this server yet."),
            )),
        }
    }

    /// `GET /hls/v1/...` and `GET /dash/v1/...`, authorised by the session token in the URL.
    /// Errors keep AWS's shape and, like every playback response, carry
    /// `Access-Control-Allow-Origin: *` so that a page on another origin can read them.
    pub async fn playback_get(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        match self.playback_get_inner(parts, ctx).await {
            Ok(response) => Ok(response),
            Err(err) => {
                tracing::debug!(request_id = %ctx.request_id, path = %parts.uri.path(), code = err.code, message = %err.message, "Playback request failed.");
                let mut response = err.to_response(&ctx.request_id);
                response.headers_mut().insert(
                    http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
                Ok(response)
            }
        }
    }
}
