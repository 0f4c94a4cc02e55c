//! The one error type of the crate.

use mkv_fragment::ParseError;

/// Why a fragment could not be converted.
///
/// The first variants map one to one to the errors of the AWS `kinesis-video-archived-media`
/// API, so the server can answer with the exception AWS would: [`HlsError::NoVideoTrack`] to
/// `InvalidCodecPrivateDataException`/`UnsupportedStreamMediaTypeException` (the caller decides),
/// [`HlsError::MissingCodecPrivateData`] to `MissingCodecPrivateDataException`,
/// [`HlsError::InvalidCodecPrivateData`] to `InvalidCodecPrivateDataException`. The encoding
/// variants are internal errors: they are not expected for any input that parsed.
#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    /// No track with CodecID `V_MPEG4/ISO/AVC` (H.264) in the fragment's Tracks.
    #[error("the fragment has no H.264 (V_MPEG4/ISO/AVC) video track")]
    NoVideoTrack,
    /// The H.264 track has no CodecPrivate element (or an empty one).
    #[error("the H.264 track has no codec private data")]
    MissingCodecPrivateData,
    /// The H.264 track's CodecPrivate is not a valid AVCDecoderConfigurationRecord (avcC).
    #[error("invalid H.264 codec private data (avcC): {0}")]
    InvalidCodecPrivateData(&'static str),
    /// The fragment bytes are not valid MKV.
    #[error("invalid MKV: {0}")]
    Mkv(#[from] ParseError),
    /// The fragment (or the sample list given to a writer) has no video frame.
    #[error("no video frames")]
    Empty,
    /// Fragments that must share one init segment (a clip) have different video tracks
    /// (codec private data or picture size changed).
    #[error("the video track changes between fragments")]
    TrackChanged,
    /// A frame is too large for the container (over 4 GiB).
    #[error("a frame is too large: {0} bytes")]
    FrameTooLarge(usize),
    /// The MP4 box encoder failed (internal error).
    #[error("MP4 encoding failed: {0}")]
    Mp4(#[from] mp4_atom::Error),
    /// The MPEG-TS packet encoder failed (internal error).
    #[error("MPEG-TS encoding failed: {0}")]
    Ts(String),
}

impl From<mpeg2ts::Error> for HlsError {
    fn from(err: mpeg2ts::Error) -> Self {
        HlsError::Ts(err.to_string())
    }
}
