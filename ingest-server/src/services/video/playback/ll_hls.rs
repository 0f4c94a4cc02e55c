//! Low-Latency HLS for LIVE fMP4 sessions: partial segments (parts) cut by time from the
//! frames PutMedia receives, before their fragment is complete, plus blocking playlist reloads
//! (`_HLS_msn` / `_HLS_part`) and a preload hint, per RFC 8216bis. Standard HLS clients ignore
//! the added tags and keep working on the same URL.
//!
//! Part `k` of a fragment holds the video frames whose presentation time lies in
//! `[start + k * PART_TARGET, start + (k + 1) * PART_TARGET)`, `start` being the fragment's
//! producer timestamp. The same rule cuts the fragment being received (from
//! [`LiveFeeds`](super::super::LiveFeeds)) and a stored one, so a part's URI means the same
//! bytes before and after its fragment completes. A part of the fragment being received is
//! complete once a later frame has arrived (every frame's duration is then known).

use std::time::Duration;

use hls::{PartRef, Sample, VideoTrack};

use super::super::live::PartialFragment;

/// EXT-X-PART-INF PART-TARGET.
pub(super) const PART_TARGET_MS: i64 = 250;
/// EXT-X-SERVER-CONTROL PART-HOLD-BACK: three part targets, as the spec recommends.
pub(super) const PART_HOLD_BACK_MS: i64 = 3 * PART_TARGET_MS;
/// Completed segments that still list their parts (players joining near the live edge
/// start from parts of recent segments).
pub(super) const SEGMENTS_WITH_PARTS: usize = 3;
/// Longest wait for a part or a blocking reload; the spec allows three target durations.
pub(super) fn max_wait(target_duration_s: u64) -> Duration {
    Duration::from_secs(3 * target_duration_s.max(1))
}

/// How many parts a complete fragment of `duration_ms` has.
pub(super) fn part_count(duration_ms: i64) -> usize {
    usize::try_from((duration_ms.max(1) + PART_TARGET_MS - 1) / PART_TARGET_MS).unwrap_or(1)
}

/// The `EXT-X-PART` lines of a complete fragment.
pub(super) fn parts_of_complete(duration_ms: i64, uri: impl Fn(usize) -> String) -> Vec<PartRef> {
    (0..part_count(duration_ms))
        .map(|k| {
            let begin = k as i64 * PART_TARGET_MS;
            let length = (duration_ms - begin).clamp(1, PART_TARGET_MS);
            PartRef {
                uri: uri(k),
                duration_s: length as f64 / 1000.0,
                independent: k == 0,
            }
        })
        .collect()
}

/// The video track number of a partial fragment (the first H.264 track).
fn video_track_number(partial: &PartialFragment) -> Option<u64> {
    partial
        .header
        .tracks
        .iter()
        .find(|t| t.codec_id == hls::H264_CODEC_ID)
        .map(|t| t.number)
}

/// Parts of the fragment being received that are complete.
pub(super) fn complete_parts(partial: &PartialFragment) -> usize {
    let Some(track) = video_track_number(partial) else {
        return 0;
    };
    let Some(last) = partial.frames.iter().rev().find(|f| f.track == track) else {
        return 0;
    };
    usize::try_from((last.pts_ms - partial.producer_start_ms) / PART_TARGET_MS).unwrap_or(0)
}

/// The `EXT-X-PART` lines of the complete parts of the fragment being received.
pub(super) fn parts_of_partial(
    partial: &PartialFragment,
    uri: impl Fn(usize) -> String,
) -> Vec<PartRef> {
    (0..complete_parts(partial))
        .map(|k| PartRef {
            uri: uri(k),
            duration_s: PART_TARGET_MS as f64 / 1000.0,
            independent: k == 0,
        })
        .collect()
}

/// Samples of part `k` of the fragment being received, if that part is complete.
pub(super) fn partial_samples(partial: &PartialFragment, k: usize) -> Option<Vec<Sample>> {
    if k >= complete_parts(partial) {
        return None;
    }
    let track = video_track_number(partial)?;
    let frames: Vec<_> = partial.frames.iter().filter(|f| f.track == track).collect();
    let (begin, end) = window(partial.producer_start_ms, k);
    let mut samples = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if frame.pts_ms < begin || frame.pts_ms >= end {
            continue;
        }
        // Complete parts end before the last frame, so every frame here has a successor.
        let next = frames.get(i + 1)?;
        samples.push(Sample {
            dts_ms: u64::try_from(frame.pts_ms).ok()?,
            pts_ms: u64::try_from(frame.pts_ms).ok()?,
            duration_ms: u64::try_from(next.pts_ms - frame.pts_ms).unwrap_or(0),
            keyframe: frame.keyframe,
            data: frame.data.clone(),
        });
    }
    (!samples.is_empty()).then_some(samples)
}

/// Samples of part `k` of a complete fragment.
pub(super) fn stored_samples(fragment: &hls::Fragment, k: usize) -> Option<Vec<Sample>> {
    let start = i64::try_from(fragment.timecode_ms).ok()?;
    let (begin, end) = window(start, k);
    let samples: Vec<Sample> = fragment
        .samples
        .iter()
        .filter(|s| {
            let pts = s.pts_ms as i64;
            pts >= begin && pts < end
        })
        .cloned()
        .collect();
    (!samples.is_empty()).then_some(samples)
}

/// The track of a partial fragment, for its parts' `moof`.
pub(super) fn partial_track(partial: &PartialFragment) -> Result<VideoTrack, hls::HlsError> {
    VideoTrack::from_header(&partial.header)
}

fn window(start_ms: i64, k: usize) -> (i64, i64) {
    let begin = start_ms.saturating_add(k as i64 * PART_TARGET_MS);
    (begin, begin.saturating_add(PART_TARGET_MS))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use mkv_fragment::{SegmentHeader, TrackInfo};

    use super::super::super::live::PartialFrame;
    use super::*;

    fn partial(frames_ms: &[i64]) -> PartialFragment {
        let header = SegmentHeader {
            tracks: vec![TrackInfo {
                number: 1,
                codec_id: hls::H264_CODEC_ID.into(),
                ..TrackInfo::default()
            }],
            ..SegmentHeader::default()
        };
        PartialFragment {
            seq: 5,
            producer_start_ms: 10_000,
            header: Arc::new(header),
            frames: frames_ms
                .iter()
                .map(|&t| PartialFrame {
                    track: 1,
                    pts_ms: 10_000 + t,
                    keyframe: t == 0,
                    data: Bytes::from_static(b"f"),
                })
                .collect(),
        }
    }

    #[test]
    fn parts_complete_once_a_later_frame_arrives() {
        // 30 fps: frames every 33 ms.
        let times: Vec<i64> = (0..9).map(|i| i * 33).collect(); // up to 264 ms
        let p = partial(&times);
        assert_eq!(complete_parts(&p), 1);
        let samples = partial_samples(&p, 0).unwrap();
        assert_eq!(samples.len(), 8, "frames at 0..=231 ms");
        assert!(samples[0].keyframe && samples.iter().all(|s| s.duration_ms == 33));
        assert!(partial_samples(&p, 1).is_none(), "part 1 is still open");
        assert_eq!(parts_of_partial(&p, |k| format!("p{k}")).len(), 1);
        assert!(complete_parts(&partial(&[])) == 0);
    }

    #[test]
    fn complete_fragments_are_cut_the_same_way() {
        let parts = parts_of_complete(1_000, |k| format!("p{k}"));
        assert_eq!(parts.len(), 4);
        assert!(parts[0].independent && !parts[1].independent);
        assert_eq!(parts[3].duration_s, 0.25);
        let parts = parts_of_complete(1_033, |k| format!("p{k}"));
        assert_eq!(parts.len(), 5);
        assert!((parts[4].duration_s - 0.033).abs() < 1e-9);
    }
}
