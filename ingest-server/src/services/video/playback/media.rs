//! Stored fragments as the playback operations need them: the video track from the index's
//! track metadata (no media read), the parsed fragment from its media file, and the mapping
//! of conversion errors to AWS exceptions.

use base64::Engine;
use hls::{Fragment, HlsError, VideoTrack};
use mkv_fragment::TrackInfo;

use crate::protocol::error::AwsError;
use crate::storage::{FragmentRecord, StoreError, VideoStore};

/// CodecIDs of video AWS plays back but this server does not convert (yet).
const H265_CODEC_IDS: &[&str] = &["V_MPEGH/ISO/HEVC", "V_MPEG/ISO/HEVC"];

/// The AWS exception for a conversion failure.
pub(crate) fn hls_error(err: HlsError) -> AwsError {
    match err {
        HlsError::NoVideoTrack => AwsError::new(
            400,
            "UnsupportedStreamMediaTypeException",
            "The type of the media could not be determined from the codec IDs of the tracks in the \
             first fragment: track 1 should be H.264 video (V_MPEG4/ISO/AVC).",
        ),
        HlsError::MissingCodecPrivateData => AwsError::new(
            400,
            "MissingCodecPrivateDataException",
            "No codec private data was found in the video track of the stream.",
        ),
        HlsError::InvalidCodecPrivateData(why) => AwsError::new(
            400,
            "InvalidCodecPrivateDataException",
            format!("The codec private data in the video track of the stream is not valid: {why}."),
        ),
        HlsError::Empty => {
            AwsError::not_found("No video frames were found in the requested fragments.")
        }
        HlsError::TrackChanged => AwsError::new(
            400,
            "InvalidCodecPrivateDataException",
            "The codec private data changes between the fragments of this session.",
        ),
        HlsError::Mkv(_) => AwsError::new(
            400,
            "InvalidMediaFrameException",
            "One or more frames could not be parsed.",
        ),
        other => {
            tracing::error!(error = %other, "Playback conversion failed.");
            AwsError::internal()
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoredTrack {
    track_number: Option<u64>,
    track_type: Option<u64>,
    codec_id: Option<String>,
    codec_private: Option<String>,
    pixel_width: Option<u64>,
    pixel_height: Option<u64>,
}

/// The video track of a fragment from the index's track metadata (as PutMedia stored it):
/// the first H.264 track. Errors as [`VideoTrack::from_track_info`]; a stream whose video is
/// H.265 gets `NoVideoTrack` too (reported as an unsupported media type).
pub(crate) fn track_of(record: &FragmentRecord) -> Result<VideoTrack, HlsError> {
    let tracks: Vec<StoredTrack> =
        serde_json::from_str(&record.tracks_json).map_err(|_| HlsError::NoVideoTrack)?;
    let track = tracks
        .iter()
        .find(|t| t.codec_id.as_deref() == Some(hls::H264_CODEC_ID))
        .ok_or(HlsError::NoVideoTrack)?;
    let codec_private = match &track.codec_private {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| HlsError::InvalidCodecPrivateData("not base64 in the index"))?,
        None => Vec::new(),
    };
    let info = TrackInfo {
        number: track.track_number.unwrap_or(1),
        track_type: track.track_type.unwrap_or(1),
        codec_id: hls::H264_CODEC_ID.to_owned(),
        codec_private,
        pixel_width: track.pixel_width,
        pixel_height: track.pixel_height,
        ..TrackInfo::default()
    };
    VideoTrack::from_track_info(&info)
}

/// Whether the fragment's tracks hold H.265 video (which AWS serves and this server does not
/// convert): the message says so.
pub(crate) fn is_h265(record: &FragmentRecord) -> bool {
    H265_CODEC_IDS
        .iter()
        .any(|id| record.tracks_json.contains(&format!("\"{id}\"")))
}

/// Checks the first fragment of a session or clip: an H.264 track with valid codec private
/// data, per the AWS requirements.
pub(crate) fn check_playable(record: &FragmentRecord) -> Result<VideoTrack, AwsError> {
    track_of(record).map_err(|err| match err {
        HlsError::NoVideoTrack if is_h265(record) => AwsError::new(
            400,
            "UnsupportedStreamMediaTypeException",
            "H.265 video is not supported by this server; track 1 must be H.264 (V_MPEG4/ISO/AVC).",
        ),
        other => hls_error(other),
    })
}

/// Moves a fragment `offset_ms` along the timeline (see `Segment::offset_ms`).
pub(crate) fn shift(fragment: &mut Fragment, offset_ms: i64) {
    fragment.timecode_ms = shifted(fragment.timecode_ms, offset_ms);
    shift_samples(&mut fragment.samples, offset_ms);
}

/// [`shift`] for loose samples (LL-HLS parts).
pub(crate) fn shift_samples(samples: &mut [hls::Sample], offset_ms: i64) {
    if offset_ms == 0 {
        return;
    }
    for sample in samples {
        sample.dts_ms = shifted(sample.dts_ms, offset_ms);
        sample.pts_ms = shifted(sample.pts_ms, offset_ms);
    }
}

fn shifted(t: u64, offset_ms: i64) -> u64 {
    (t as i64).saturating_add(offset_ms).max(0) as u64
}

/// Why a fragment could not be loaded.
pub(crate) enum LoadError {
    /// Gone (expired by retention or deleted with its stream).
    Gone,
    Store(StoreError),
    Convert(HlsError),
}

impl LoadError {
    pub(crate) fn into_aws(self, number: &str) -> AwsError {
        match self {
            LoadError::Gone => {
                AwsError::not_found(format!("The fragment {number} is no longer available."))
            }
            LoadError::Store(err) => super::super::store_error(err),
            LoadError::Convert(err) => hls_error(err),
        }
    }
}

/// Reads and parses fragment `seq` of a stream (blocking).
pub(crate) fn load(
    store: &dyn VideoStore,
    stream_id: i64,
    seq: i64,
) -> Result<(FragmentRecord, Fragment), LoadError> {
    let record = store
        .fragment(stream_id, seq)
        .map_err(LoadError::Store)?
        .ok_or(LoadError::Gone)?;
    let fragment = parse(store, &record)?;
    Ok((record, fragment))
}

/// Reads and parses a fragment whose record is known (blocking).
pub(crate) fn parse(
    store: &dyn VideoStore,
    record: &FragmentRecord,
) -> Result<Fragment, LoadError> {
    let bytes = store.read_fragment_media(record).map_err(|err| match err {
        StoreError::NotFound => LoadError::Gone,
        other => LoadError::Store(other),
    })?;
    Fragment::from_mkv(&bytes).map_err(LoadError::Convert)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tracks_json: &str) -> FragmentRecord {
        FragmentRecord {
            stream_id: 1,
            seq: 1,
            producer_ts_ms: 0,
            server_ts_ms: 0,
            duration_ms: 1000,
            size_bytes: 10,
            tracks_json: tracks_json.to_owned(),
            user_tags: Vec::new(),
        }
    }

    #[test]
    fn track_from_index_metadata() {
        let avcc = [
            1u8, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 6, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 1, 0, 4,
            0x68, 0xCE, 0x3C, 0x80,
        ];
        let b64 = base64::engine::general_purpose::STANDARD.encode(avcc);
        let json = format!(
            r#"[{{"TrackNumber":1,"TrackType":1,"CodecId":"V_MPEG4/ISO/AVC","CodecPrivate":"{b64}","PixelWidth":320,"PixelHeight":240,"SamplingFrequency":null,"Channels":null}}]"#
        );
        let track = track_of(&record(&json)).unwrap();
        assert_eq!((track.width, track.height), (320, 240));
        assert_eq!(track.codecs(), "avc1.42c01e");

        let missing = json.replace(&b64, "");
        let err = check_playable(&record(&missing)).unwrap_err();
        assert_eq!(err.code, "MissingCodecPrivateDataException");
        let invalid = json.replace(&b64, "AQID");
        let err = check_playable(&record(&invalid)).unwrap_err();
        assert_eq!(err.code, "InvalidCodecPrivateDataException");
        let hevc = json.replace("V_MPEG4/ISO/AVC", "V_MPEGH/ISO/HEVC");
        let err = check_playable(&record(&hevc)).unwrap_err();
        assert_eq!(err.code, "UnsupportedStreamMediaTypeException");
        assert!(err.message.contains("H.265"), "{}", err.message);
        let err = check_playable(&record("not json")).unwrap_err();
        assert_eq!(err.code, "UnsupportedStreamMediaTypeException");
    }
}
