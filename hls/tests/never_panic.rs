//! Untrusted input never panics: arbitrary and mutated fragment bytes, avcC records, frames and
//! timestamps.

use bytes::Bytes;
use hls::{AvcConfig, Fragment, Sample, TsState, VideoTrack, codecs_string, fmp4, ts};
use mkv_fragment::{Frame, ProducerWriter, SegmentInfo, TrackSpec};
use proptest::prelude::*;

const AVCC: [u8; 21] = [
    1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 6, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 1, 0, 4, 0x68, 0xCE,
    0x3C, 0x80,
];

/// A small valid fragment: header with a video and an audio track, one Cluster.
fn valid_fragment() -> Vec<u8> {
    let video = TrackSpec {
        number: 1,
        uid: 1,
        track_type: 1,
        codec_id: "V_MPEG4/ISO/AVC".into(),
        codec_private: AVCC.to_vec(),
        pixel_width: Some(320),
        pixel_height: Some(240),
        ..TrackSpec::default()
    };
    let audio = TrackSpec {
        number: 2,
        uid: 2,
        track_type: 2,
        codec_id: "A_AAC".into(),
        ..TrackSpec::default()
    };
    let w = ProducerWriter::new(SegmentInfo::default(), vec![video, audio]);
    let mut out = Vec::new();
    w.header(&mut out);
    let idr = [0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33];
    let p = [0, 0, 0, 3, 0x41, 0x9A, 0x02];
    let frames = [
        Frame {
            track: 1,
            relative_timecode: 0,
            keyframe: true,
            data: &idr,
        },
        Frame {
            track: 2,
            relative_timecode: 10,
            keyframe: true,
            data: b"aac",
        },
        Frame {
            track: 1,
            relative_timecode: 33,
            keyframe: false,
            data: &p,
        },
    ];
    w.cluster(&mut out, 1_700_000_000_000, &frames);
    out
}

fn track() -> VideoTrack {
    VideoTrack {
        track_number: 1,
        codec_private: AVCC.to_vec(),
        config: AvcConfig::parse(&AVCC).unwrap(),
        width: 320,
        height: 240,
        timescale: hls::DEFAULT_TIMESCALE,
    }
}

/// Runs every writer over a fragment that parsed.
fn write_all(f: &Fragment) {
    let _ = fmp4::init_segment(&f.track);
    let _ = fmp4::fragment_segment(f, 1, 0);
    let _ = fmp4::fragment_segment(f, u32::MAX, f.start_ms());
    let _ = ts::fragment_ts(f, 0, &mut TsState::default());
    let _ = f.track.codecs();
}

#[test]
fn the_valid_fragment_converts() {
    let f = Fragment::from_mkv(&valid_fragment()).unwrap();
    assert_eq!(f.samples.len(), 2);
    write_all(&f);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(f) = Fragment::from_mkv(&bytes) {
            write_all(&f);
        }
        let _ = AvcConfig::parse(&bytes);
        let _ = codecs_string(&bytes);
    }

    #[test]
    fn mutated_fragments(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = valid_fragment();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(f) = Fragment::from_mkv(&bytes) {
            write_all(&f);
        }
    }

    #[test]
    fn mutated_avcc(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = AVCC.to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(config) = AvcConfig::parse(&bytes) {
            let track = VideoTrack { codec_private: bytes.clone(), config, ..track() };
            let _ = fmp4::init_segment(&track);
        }
    }

    #[test]
    fn arbitrary_frames_and_times(
        frames in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..64), any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()),
            0..6,
        ),
        origin in any::<u64>(),
        nal_length_size in prop::sample::select(vec![1u8, 2, 4]),
        timescale in any::<u32>(),
    ) {
        let mut track = track();
        track.config.nal_length_size = nal_length_size;
        track.timescale = timescale;
        let samples: Vec<Sample> = frames
            .into_iter()
            .map(|(data, dts_ms, pts_ms, duration_ms, keyframe)| Sample {
                dts_ms,
                pts_ms,
                duration_ms,
                keyframe,
                data: Bytes::from(data),
            })
            .collect();
        let _ = fmp4::media_segment(&track, &samples, 3, origin);
        let _ = fmp4::init_segment(&track);
        let mut state = TsState::default();
        if let Ok(seg) = ts::ts_segment(&track, &samples, origin, &mut state) {
            prop_assert_eq!(seg.len() % 188, 0);
        }
    }
}
