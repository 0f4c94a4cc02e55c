//! GetImages: frames of a time range decoded with GStreamer and returned as JPEG or PNG.

use std::sync::Arc;

use http::Response;

use super::super::{RequestContext, VideoService};
use crate::protocol::body::ResponseBody;
use crate::protocol::error::AwsError;

impl VideoService {
    pub(super) async fn get_images(
        self: &Arc<Self>,
        _body: &[u8],
        _ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        Err(AwsError::new(
            501,
            "NotImplementedException",
            "GetImages is not implemented by this server yet.",
        ))
    }
}
