//! The ERROR ack ids of the PutMedia protocol and what each one means for the upload.

/// ErrorId values of the PutMedia ack protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckError {
    StreamReadError = 4000,
    MaxFragmentSize = 4001,
    MaxFragmentDuration = 4002,
    MaxConnectionDuration = 4003,
    TimecodeLesserThanPrevious = 4004,
    InvalidMkvData = 4006,
    InvalidProducerTimestamp = 4007,
    StreamNotActive = 4008,
    MetadataLimitReached = 4009,
    TrackNumberMismatch = 4010,
    FramesMissingForTrack = 4011,
    MoreThanAllowedTracks = 4012,
    Internal = 5000,
}

impl AckError {
    pub(super) fn code(self) -> &'static str {
        match self {
            Self::StreamReadError => "STREAM_READ_ERROR",
            Self::MaxFragmentSize => "MAX_FRAGMENT_SIZE_REACHED",
            Self::MaxFragmentDuration => "MAX_FRAGMENT_DURATION_REACHED",
            Self::MaxConnectionDuration => "MAX_CONNECTION_DURATION_REACHED",
            Self::TimecodeLesserThanPrevious => "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
            Self::InvalidMkvData => "INVALID_MKV_DATA",
            Self::InvalidProducerTimestamp => "INVALID_PRODUCER_TIMESTAMP",
            Self::StreamNotActive => "STREAM_NOT_ACTIVE",
            Self::MetadataLimitReached => "FRAGMENT_METADATA_LIMIT_REACHED",
            Self::TrackNumberMismatch => "TRACK_NUMBER_MISMATCH",
            Self::FramesMissingForTrack => "FRAMES_MISSING_FOR_TRACK",
            Self::MoreThanAllowedTracks => "MORE_THAN_ALLOWED_TRACKS_FOUND",
            Self::Internal => "INTERNAL_ERROR",
        }
    }

    /// Whether the upload cannot go on after this error.
    pub(super) fn ends_upload(self) -> bool {
        matches!(
            self,
            Self::InvalidMkvData
                | Self::StreamReadError
                | Self::MaxFragmentSize
                | Self::MaxConnectionDuration
                | Self::StreamNotActive
                | Self::MoreThanAllowedTracks
                | Self::Internal
        )
    }
}
