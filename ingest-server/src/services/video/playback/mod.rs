//! Playback of stored fragments: HLS and DASH streaming sessions (the session URL
//! operations and the GET endpoints they point to), clips and images, per the botocore
//! `kinesis-video-archived-media` model. Conversion to fMP4/TS and playlists is the `hls`
//! crate's job; this module owns sessions, validation and HTTP.

mod images;

use std::sync::Arc;

use http::Response;

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
            other => Err(AwsError::new(
                501,
                "NotImplementedException",
                format!("{other:?} is not implemented by this server yet."),
            )),
        }
    }

    /// `GET /hls/v1/...` and `GET /dash/v1/...`, authorised by the session token in the URL.
    pub async fn playback_get(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        _ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        Err(AwsError::new(
            404,
            "ResourceNotFoundException",
            format!("No playback resource at {}.", parts.uri.path()),
        ))
    }
}
