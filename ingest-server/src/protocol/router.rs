//! Maps a request path to an operation. Every Kinesis Video Streams API is `POST` with
//! the camelCase operation name as its path (the `*Resource` tag operations are
//! PascalCase), per the botocore `kinesisvideo`, `kinesis-video-media` and
//! `kinesis-video-archived-media` models.

/// A Kinesis Video Streams operation this server routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoOperation {
    /// `/createStream`
    CreateStream,
    /// `/describeStream`
    DescribeStream,
    /// `/listStreams`
    ListStreams,
    /// `/deleteStream`
    DeleteStream,
    /// `/updateStream`
    UpdateStream,
    /// `/updateDataRetention`
    UpdateDataRetention,
    /// `/getDataEndpoint`
    GetDataEndpoint,
    /// `/tagStream`
    TagStream,
    /// `/untagStream`
    UntagStream,
    /// `/listTagsForStream`
    ListTagsForStream,
    /// `/TagResource`
    TagResource,
    /// `/UntagResource`
    UntagResource,
    /// `/ListTagsForResource`
    ListTagsForResource,
    /// `/putMedia` (streamed MKV body, streamed acks)
    PutMedia,
    /// `/getMedia`
    GetMedia,
    /// `/listFragments`
    ListFragments,
    /// `/getMediaForFragmentList`
    GetMediaForFragmentList,
    /// `/getHLSStreamingSessionURL`
    GetHlsStreamingSessionUrl,
    /// `/getDASHStreamingSessionURL`
    GetDashStreamingSessionUrl,
    /// `/getClip` (binary MP4 response)
    GetClip,
    /// `/getImages`
    GetImages,
    /// An operation of the models that this server does not offer yet (signaling
    /// channels, edge configuration, image generation and notification configuration).
    NotImplemented(&'static str),
}

/// Operations of the models that are recognised but not served yet.
const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    ("/createSignalingChannel", "CreateSignalingChannel"),
    ("/deleteSignalingChannel", "DeleteSignalingChannel"),
    ("/describeSignalingChannel", "DescribeSignalingChannel"),
    ("/listSignalingChannels", "ListSignalingChannels"),
    ("/updateSignalingChannel", "UpdateSignalingChannel"),
    (
        "/getSignalingChannelEndpoint",
        "GetSignalingChannelEndpoint",
    ),
    ("/describeEdgeConfiguration", "DescribeEdgeConfiguration"),
    ("/deleteEdgeConfiguration", "DeleteEdgeConfiguration"),
    (
        "/startEdgeConfigurationUpdate",
        "StartEdgeConfigurationUpdate",
    ),
    (
        "/listEdgeAgentConfigurations",
        "ListEdgeAgentConfigurations",
    ),
    (
        "/describeImageGenerationConfiguration",
        "DescribeImageGenerationConfiguration",
    ),
    (
        "/updateImageGenerationConfiguration",
        "UpdateImageGenerationConfiguration",
    ),
    (
        "/describeNotificationConfiguration",
        "DescribeNotificationConfiguration",
    ),
    (
        "/updateNotificationConfiguration",
        "UpdateNotificationConfiguration",
    ),
    (
        "/describeMappedResourceConfiguration",
        "DescribeMappedResourceConfiguration",
    ),
    (
        "/describeMediaStorageConfiguration",
        "DescribeMediaStorageConfiguration",
    ),
    (
        "/updateMediaStorageConfiguration",
        "UpdateMediaStorageConfiguration",
    ),
    (
        "/describeStreamStorageConfiguration",
        "DescribeStreamStorageConfiguration",
    ),
    (
        "/updateStreamStorageConfiguration",
        "UpdateStreamStorageConfiguration",
    ),
];

impl VideoOperation {
    /// The operation served at `path`, if any.
    pub fn from_path(path: &str) -> Option<Self> {
        use VideoOperation::*;
        let op = match path {
            "/createStream" => CreateStream,
            "/describeStream" => DescribeStream,
            "/listStreams" => ListStreams,
            "/deleteStream" => DeleteStream,
            "/updateStream" => UpdateStream,
            "/updateDataRetention" => UpdateDataRetention,
            "/getDataEndpoint" => GetDataEndpoint,
            "/tagStream" => TagStream,
            "/untagStream" => UntagStream,
            "/listTagsForStream" => ListTagsForStream,
            "/TagResource" => TagResource,
            "/UntagResource" => UntagResource,
            "/ListTagsForResource" => ListTagsForResource,
            "/putMedia" => PutMedia,
            "/getMedia" => GetMedia,
            "/listFragments" => ListFragments,
            "/getMediaForFragmentList" => GetMediaForFragmentList,
            "/getHLSStreamingSessionURL" => GetHlsStreamingSessionUrl,
            "/getDASHStreamingSessionURL" => GetDashStreamingSessionUrl,
            "/getClip" => GetClip,
            "/getImages" => GetImages,
            other => {
                return NOT_IMPLEMENTED
                    .iter()
                    .find(|(p, _)| *p == other)
                    .map(|(_, name)| NotImplemented(name));
            }
        };
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_model_paths() {
        assert_eq!(
            VideoOperation::from_path("/putMedia"),
            Some(VideoOperation::PutMedia)
        );
        assert_eq!(
            VideoOperation::from_path("/TagResource"),
            Some(VideoOperation::TagResource)
        );
        assert_eq!(
            VideoOperation::from_path("/describeSignalingChannel"),
            Some(VideoOperation::NotImplemented("DescribeSignalingChannel"))
        );
        assert_eq!(VideoOperation::from_path("/nope"), None);
    }
}
