//! fMP4 and MPEG-TS output of real x264 frames, checked with ffprobe and ffmpeg.

mod common;

use common::{
    BASE_MS, FRAMES, capture, decode_errors, encode_capture, frame_times, probe_stream,
    stored_fragments, write_file,
};
use hls::{Fragment, TsState, fmp4, ts};

/// The stored fragments parsed, each ending where the next starts.
fn fragments() -> Vec<Fragment> {
    let mut fragments: Vec<Fragment> = stored_fragments(capture())
        .iter()
        .map(|bytes| Fragment::from_mkv(bytes).expect("stored fragment converts"))
        .collect();
    for i in 1..fragments.len() {
        let next_start = fragments[i].start_ms();
        fragments[i - 1].set_end_ms(next_start);
    }
    fragments
}

#[test]
fn fragments_have_the_capture_frames() {
    let fragments = fragments();
    assert_eq!(fragments.len(), 2);
    assert_eq!(fragments[0].timecode_ms, BASE_MS);
    assert_eq!(fragments[1].timecode_ms, BASE_MS + 1000);
    let total: usize = fragments.iter().map(|f| f.samples.len()).sum();
    assert_eq!(total, FRAMES);
    for f in &fragments {
        assert!(f.samples[0].keyframe);
        assert_eq!((f.track.width, f.track.height), (320, 240));
        assert!(
            f.track.codecs().starts_with("avc1.64"),
            "{}",
            f.track.codecs()
        );
        assert!(
            f.samples
                .iter()
                .all(|s| s.duration_ms > 0 && s.dts_ms == s.pts_ms)
        );
    }
    assert_eq!(fragments[0].end_ms(), fragments[1].start_ms());
}

#[test]
fn fmp4_segments_play_and_continue_the_timeline() {
    let fragments = fragments();
    let dir = tempfile::tempdir().unwrap();
    let origin = fragments[0].timecode_ms;
    let init = fmp4::init_segment(&fragments[0].track).unwrap();
    let segments: Vec<Vec<u8>> = fragments
        .iter()
        .enumerate()
        .map(|(i, f)| fmp4::fragment_segment(f, i as u32 + 1, origin).unwrap())
        .collect();
    let all = write_file(
        dir.path(),
        "all.mp4",
        &[&init[..], &segments[0], &segments[1]],
    );
    assert_eq!(
        probe_stream(&all, &[]),
        ("h264".to_owned(), 320, 240, FRAMES as u64)
    );
    assert_eq!(decode_errors(&all, &[]), "");

    let times = frame_times(&all);
    assert_eq!(times.len(), FRAMES);
    let first_of_second = fragments[0].samples.len();
    let expected: Vec<f64> = fragments
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| (s.pts_ms - origin) as f64 / 1000.0)
        .collect();
    for (i, ((t, _), e)) in times.iter().zip(&expected).enumerate() {
        assert!(
            (t - e).abs() < 1e-6,
            "frame {i}: pts_time {t}, expected {e}"
        );
    }
    // Segment 2 continues segment 1: one frame interval after its last frame.
    let gap = times[first_of_second].0 - times[first_of_second - 1].0;
    assert!(gap > 0.03 && gap < 0.035, "gap {gap}");
    assert!(times[first_of_second].1, "segment 2 starts on a key frame");

    // A request for segment 2 alone (init + segment) lands at the same place on the timeline.
    let alone = write_file(dir.path(), "second.mp4", &[&init[..], &segments[1]]);
    let alone_times = frame_times(&alone);
    assert_eq!(alone_times.len(), fragments[1].samples.len());
    assert!((alone_times[0].0 - times[first_of_second].0).abs() < 1e-6);
}

#[test]
fn ll_hls_parts_concatenate_into_the_segment() {
    let fragments = fragments();
    let dir = tempfile::tempdir().unwrap();
    let f = &fragments[0];
    let origin = f.timecode_ms;
    let init = fmp4::init_segment(&f.track).unwrap();
    // Three parts of 10 frames, as a live server cuts them while frames arrive.
    let mut file = init.clone();
    for (i, chunk) in f.samples.chunks(10).enumerate() {
        file.extend(fmp4::part(&f.track, chunk, i as u32 + 1, origin).unwrap());
    }
    let parts = write_file(dir.path(), "parts.mp4", &[&file]);
    assert_eq!(
        probe_stream(&parts, &[]),
        ("h264".to_owned(), 320, 240, f.samples.len() as u64)
    );
    assert_eq!(decode_errors(&parts, &[]), "");
    let times = frame_times(&parts);
    let expected: Vec<f64> = f
        .samples
        .iter()
        .map(|s| (s.pts_ms - origin) as f64 / 1000.0)
        .collect();
    assert_eq!(times.len(), expected.len());
    for ((t, _), e) in times.iter().zip(&expected) {
        assert!((t - e).abs() < 1e-6, "pts_time {t}, expected {e}");
    }
}

#[test]
fn ts_segments_play_without_continuity_errors() {
    let fragments = fragments();
    let dir = tempfile::tempdir().unwrap();
    let origin = fragments[0].timecode_ms;
    let mut state = TsState::default();
    let segments: Vec<Vec<u8>> = fragments
        .iter()
        .map(|f| ts::fragment_ts(f, origin, &mut state).unwrap())
        .collect();
    let all = write_file(dir.path(), "all.ts", &[&segments[0], &segments[1]]);
    assert_eq!(
        probe_stream(&all, &[]),
        ("h264".to_owned(), 320, 240, FRAMES as u64)
    );
    assert_eq!(decode_errors(&all, &[]), "");
    // Continuity is also checked at a log level where ffmpeg's TS demuxer reports it.
    let (_, _, debug) = common::run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "debug",
            "-i",
            all.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(
        !debug.contains("Continuity check failed"),
        "continuity errors"
    );

    let times = frame_times(&all);
    assert_eq!(times.len(), FRAMES);
    let expected: Vec<f64> = fragments
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| (s.pts_ms - origin) as f64 / 1000.0)
        .collect();
    for (i, ((t, _), e)) in times.iter().zip(&expected).enumerate() {
        assert!(
            (t - e).abs() < 1e-6,
            "frame {i}: pts_time {t}, expected {e}"
        );
    }

    // Each segment written on its own (fresh state) is a valid stream by itself.
    for (i, f) in fragments.iter().enumerate() {
        let seg = ts::fragment_ts(f, origin, &mut TsState::default()).unwrap();
        let path = write_file(dir.path(), &format!("alone{i}.ts"), &[&seg]);
        assert_eq!(probe_stream(&path, &[]).3, f.samples.len() as u64);
        assert_eq!(decode_errors(&path, &[]), "");
    }
}

#[test]
fn reordered_frames_keep_their_presentation_order() {
    // x264 with B-frames: the MKV blocks are in decode order with presentation timecodes.
    let capture = encode_capture(2);
    let stored = stored_fragments(&capture);
    let mut fragments: Vec<Fragment> = stored
        .iter()
        .map(|b| Fragment::from_mkv(b).unwrap())
        .collect();
    for i in 1..fragments.len() {
        let next = fragments[i].start_ms();
        fragments[i - 1].set_end_ms(next);
    }
    assert!(
        fragments
            .iter()
            .flat_map(|f| &f.samples)
            .any(|s| s.pts_ms != s.dts_ms),
        "x264 produced no B-frames"
    );
    let dir = tempfile::tempdir().unwrap();
    // With B-frames the first decode time is before the first timecode: start the timeline
    // at the first decode time.
    let origin = fragments[0].start_ms();
    assert!(origin < fragments[0].timecode_ms);
    let mut mp4 = fmp4::init_segment(&fragments[0].track).unwrap();
    let mut tsdata = Vec::new();
    let mut state = TsState::default();
    for (i, f) in fragments.iter().enumerate() {
        mp4.extend(fmp4::fragment_segment(f, i as u32 + 1, origin).unwrap());
        tsdata.extend(ts::fragment_ts(f, origin, &mut state).unwrap());
    }
    let mut expected: Vec<f64> = fragments
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| (s.pts_ms - origin) as f64 / 1000.0)
        .collect();
    expected.sort_by(f64::total_cmp);
    for (name, data) in [("b.mp4", &mp4), ("b.ts", &tsdata)] {
        let path = write_file(dir.path(), name, &[data]);
        assert_eq!(probe_stream(&path, &[]).3, FRAMES as u64, "{name}");
        assert_eq!(decode_errors(&path, &[]), "", "{name}");
        let mut times: Vec<f64> = frame_times(&path).iter().map(|t| t.0).collect();
        times.sort_by(f64::total_cmp);
        for (t, e) in times.iter().zip(&expected) {
            assert!((t - e).abs() < 1e-6, "{name}: pts_time {t}, expected {e}");
        }
    }
}

/// The real AWS GetMedia captures that CI places in `shared/` beside the repository (as the
/// mkv-fragment golden tests use them): every chunk converts, by both entry points, and plays.
#[test]
fn aws_getmedia_captures_convert_and_play() {
    use mkv_fragment::GetMediaReader;
    use mkv_fragment::getmedia::{FragmentStamp, write_fragment_prefix, write_fragment_trailer};

    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/kvs-getmedia");
    let dir = tempfile::tempdir().unwrap();
    for (name, frames, width, height) in [
        ("output_get_media.mkv", 300, 640, 360),
        ("output_get_media_sparse_fragments.mkv", 180, 640, 360),
    ] {
        let bytes = std::fs::read(fixtures.join(name)).unwrap_or_else(|e| {
            panic!("fixture {name} is missing ({e}); CI places shared/ beside the repository root")
        });
        let mut reader = GetMediaReader::new();
        reader.push(&bytes);
        let mut fragments = Vec::new();
        while let Some(chunk) = reader.finish().unwrap() {
            let (Some(header), Some(cluster)) = (&chunk.header, &chunk.cluster) else {
                continue;
            };
            let fragment = Fragment::from_parts(header, cluster).unwrap();
            // The bytes the server stores for this chunk convert to the same fragment.
            let number = chunk.fragment_number.clone().unwrap_or_default();
            let mut stored = Vec::new();
            let stamp = FragmentStamp {
                fragment_number: &number,
                server_timestamp_ms: chunk.server_timestamp_ms.unwrap_or(0),
                producer_timestamp_ms: chunk.producer_timestamp_ms.unwrap_or(0),
            };
            write_fragment_prefix(
                &mut stored,
                &header.raw,
                &stamp,
                &chunk.user_tags,
                &cluster.body,
            );
            write_fragment_trailer(&mut stored, 0, &number);
            assert_eq!(Fragment::from_mkv(&stored).unwrap(), fragment, "{name}");
            fragments.push(fragment);
        }
        assert!(fragments.len() > 1, "{name}");
        let origin = fragments[0].start_ms();
        let mut mp4 = fmp4::init_segment(&fragments[0].track).unwrap();
        let mut tsdata = Vec::new();
        let mut state = TsState::default();
        for (i, f) in fragments.iter().enumerate() {
            assert!(f.track.same_format(&fragments[0].track));
            mp4.extend(fmp4::fragment_segment(f, i as u32 + 1, origin).unwrap());
            tsdata.extend(ts::fragment_ts(f, origin, &mut state).unwrap());
        }
        for (ext, data) in [("mp4", &mp4), ("ts", &tsdata)] {
            let path = write_file(dir.path(), &format!("{name}.{ext}"), &[data]);
            assert_eq!(
                probe_stream(&path, &[]),
                ("h264".to_owned(), width, height, frames),
                "{name}.{ext}"
            );
            assert_eq!(decode_errors(&path, &[]), "", "{name}.{ext}");
        }
    }
}

#[test]
fn clip_is_one_playable_mp4() {
    let fragments = fragments();
    let dir = tempfile::tempdir().unwrap();
    let clip = hls::clip_mp4(&fragments).unwrap();
    let path = write_file(dir.path(), "clip.mp4", &[&clip]);
    assert_eq!(
        probe_stream(&path, &[]),
        ("h264".to_owned(), 320, 240, FRAMES as u64)
    );
    assert_eq!(decode_errors(&path, &[]), "");
    let (ok, stdout, _) = common::run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format=duration,start_time",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let duration: f64 = json["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let start: f64 = json["format"]["start_time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = (fragments[1].end_ms() - fragments[0].start_ms()) as f64 / 1000.0;
    assert!((duration - expected).abs() < 0.002, "duration {duration}");
    assert_eq!(start, 0.0);
    let times = frame_times(&path);
    assert!(times.windows(2).all(|w| w[1].0 > w[0].0));

    // A change of track cannot share the init segment.
    let mut changed = fragments.clone();
    changed[1].track.width = 640;
    assert!(matches!(
        hls::clip_mp4(&changed),
        Err(hls::HlsError::TrackChanged)
    ));
    assert!(matches!(hls::clip_mp4(&[]), Err(hls::HlsError::Empty)));
}
