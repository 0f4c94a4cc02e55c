//! What the server derives from one received Cluster: its duration, a content hash that
//! recognises re-sent fragments, the tracks record, and how a parse error is classified.

use mkv_fragment::{Cluster, ParseError, SegmentHeader};
use sha2::{Digest, Sha256};

/// Whether a parse error at the start of a body is Segment content (a Cluster, its
/// blocks, Tags) arriving without the EBML header and Segment that must come first.
pub(super) fn resumes_mid_stream(err: &ParseError) -> bool {
    use mkv_fragment::ids;
    matches!(
        err,
        ParseError::UnexpectedElement { id, .. }
            if [ids::CLUSTER, ids::SIMPLE_BLOCK, ids::BLOCK_GROUP, ids::TIMECODE, ids::TAGS].contains(id)
    )
}

/// A fragment's duration in timecode units: the span of its frames plus one frame
/// interval (the mean gap), or the last block's own duration when it has one.
pub(super) fn fragment_duration_units(cluster: &Cluster) -> u64 {
    let times = cluster
        .blocks
        .iter()
        .map(|b| i64::from(b.relative_timecode));
    let (Some(min), Some(max)) = (times.clone().min(), times.max()) else {
        return 0;
    };
    let span = (max - min).max(0) as u64;
    let last_duration = cluster.blocks.last().and_then(|b| b.duration);
    let frames = cluster.blocks.len() as u64;
    match last_duration {
        Some(d) => span + d,
        None if frames > 1 => span + span / (frames - 1),
        None => 0,
    }
}

/// Identifies a fragment's content independently of its upload session: the frames,
/// their tracks, relative timecodes and key-frame flags.
pub(super) fn content_hash(cluster: &Cluster) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for block in &cluster.blocks {
        hasher.update(block.track.to_be_bytes());
        hasher.update(block.relative_timecode.to_be_bytes());
        hasher.update([u8::from(block.keyframe)]);
        let data = cluster.body.get(block.data.clone()).unwrap_or_default();
        hasher.update((data.len() as u64).to_be_bytes());
        hasher.update(data);
    }
    hasher.finalize().into()
}

/// The session's tracks as stored in the index (codec, CodecPrivate, picture size).
pub(super) fn tracks_json(header: &SegmentHeader) -> String {
    use base64::Engine;
    let tracks: Vec<_> = header
        .tracks
        .iter()
        .map(|t| {
            serde_json::json!({
                "TrackNumber": t.number,
                "TrackType": t.track_type,
                "CodecId": t.codec_id,
                "CodecPrivate": base64::engine::general_purpose::STANDARD.encode(&t.codec_private),
                "PixelWidth": t.pixel_width,
                "PixelHeight": t.pixel_height,
                "SamplingFrequency": t.sampling_frequency,
                "Channels": t.channels,
            })
        })
        .collect();
    serde_json::Value::from(tracks).to_string()
}
