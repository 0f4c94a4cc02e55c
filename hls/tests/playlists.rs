//! Playlists: parsed back with m3u8-rs, and played by ffprobe over real segments.

mod common;

use common::{FRAMES, capture, decode_errors, probe_stream, stored_fragments};
use hls::playlist::peak_bandwidth;
use hls::{
    Fragment, LowLatency, MediaPlaylistOptions, PartRef, SegmentRef, TsState, fmp4,
    master_playlist, media_playlist, target_duration, ts,
};
use m3u8_rs::{Playlist, parse_playlist_res};

fn fragments() -> Vec<Fragment> {
    let mut fragments: Vec<Fragment> = stored_fragments(capture())
        .iter()
        .map(|b| Fragment::from_mkv(b).unwrap())
        .collect();
    for i in 1..fragments.len() {
        let next = fragments[i].start_ms();
        fragments[i - 1].set_end_ms(next);
    }
    fragments
}

fn segment_refs(fragments: &[Fragment], ext: &str) -> Vec<SegmentRef> {
    fragments
        .iter()
        .enumerate()
        .map(|(i, f)| SegmentRef {
            uri: format!("seg{i}.{ext}"),
            duration_s: f.duration_ms() as f64 / 1000.0,
            program_date_time_ms: Some(f.timecode_ms as i64),
            ..SegmentRef::default()
        })
        .collect()
}

#[test]
fn master_playlist_round_trips() {
    let f = &fragments()[0];
    let text = master_playlist(
        "getHLSMediaPlaylist.m3u8?SessionToken=abc",
        812_345,
        &f.track.codecs(),
        Some((f.track.width, f.track.height)),
    );
    let Ok(Playlist::MasterPlaylist(master)) = parse_playlist_res(text.as_bytes()) else {
        panic!("not a master playlist:\n{text}");
    };
    assert_eq!(master.variants.len(), 1);
    let v = &master.variants[0];
    assert_eq!(v.uri, "getHLSMediaPlaylist.m3u8?SessionToken=abc");
    assert_eq!(v.bandwidth, 812_345);
    assert_eq!(v.codecs.as_deref(), Some(f.track.codecs().as_str()));
    let r = v.resolution.unwrap();
    assert_eq!((r.width, r.height), (320, 240));
    assert!(text.contains("CODECS=\"avc1.64"), "{text}");
}

#[test]
fn on_demand_fmp4_playlist_plays_in_ffprobe() {
    let fragments = fragments();
    let dir = tempfile::tempdir().unwrap();
    let origin = fragments[0].timecode_ms;
    std::fs::write(
        dir.path().join("init.mp4"),
        fmp4::init_segment(&fragments[0].track).unwrap(),
    )
    .unwrap();
    let mut sizes = Vec::new();
    for (i, f) in fragments.iter().enumerate() {
        let seg = fmp4::fragment_segment(f, i as u32 + 1, origin).unwrap();
        sizes.push((seg.len(), f.duration_ms() as f64 / 1000.0));
        std::fs::write(dir.path().join(format!("seg{i}.m4s")), seg).unwrap();
    }
    let segments = segment_refs(&fragments, "m4s");
    let options = MediaPlaylistOptions {
        target_duration: target_duration(&segments),
        media_sequence: 0,
        ended: true,
        init_uri: Some("init.mp4".into()),
        ..MediaPlaylistOptions::default()
    };
    let text = media_playlist(&segments, &options);
    let path = dir.path().join("playlist.m3u8");
    std::fs::write(&path, &text).unwrap();

    let Ok(Playlist::MediaPlaylist(media)) = parse_playlist_res(text.as_bytes()) else {
        panic!("not a media playlist:\n{text}");
    };
    assert_eq!(media.version, Some(6));
    assert_eq!(media.target_duration, 1);
    assert!(media.end_list);
    assert!(media.independent_segments);
    assert_eq!(media.segments.len(), 2);
    assert_eq!(media.segments[0].map.as_ref().unwrap().uri, "init.mp4");
    assert!(media.segments[1].map.is_none());
    assert_eq!(media.segments[1].uri, "seg1.m4s");
    assert!((f64::from(media.segments[0].duration) - 1.0).abs() < 1e-3);
    let pdt = media.segments[1].program_date_time.unwrap();
    assert_eq!(
        pdt.timestamp_millis(),
        fragments[1].timecode_ms as i64,
        "{text}"
    );

    assert_eq!(
        probe_stream(&path, &[]),
        ("h264".to_owned(), 320, 240, FRAMES as u64)
    );
    assert_eq!(decode_errors(&path, &[]), "");
    let bandwidth = peak_bandwidth(&sizes);
    assert!(bandwidth > 8 * sizes[0].0 as u64 / 2, "{bandwidth}");
}

#[test]
fn ts_playlist_with_discontinuity_plays_in_ffprobe() {
    let fragments = fragments();
    let dir = tempfile::tempdir().unwrap();
    let origin = fragments[0].timecode_ms;
    for (i, f) in fragments.iter().enumerate() {
        // Each segment on its own, as separate GetTSFragment requests make them.
        let seg = ts::fragment_ts(f, origin, &mut TsState::default()).unwrap();
        std::fs::write(dir.path().join(format!("seg{i}.ts")), seg).unwrap();
    }
    let mut segments = segment_refs(&fragments, "ts");
    segments[1].discontinuity = true;
    let options = MediaPlaylistOptions {
        target_duration: target_duration(&segments),
        media_sequence: 42,
        ended: true,
        ..MediaPlaylistOptions::default()
    };
    let text = media_playlist(&segments, &options);
    let path = dir.path().join("playlist.m3u8");
    std::fs::write(&path, &text).unwrap();
    let Ok(Playlist::MediaPlaylist(media)) = parse_playlist_res(text.as_bytes()) else {
        panic!("not a media playlist:\n{text}");
    };
    assert_eq!(media.version, Some(3));
    assert_eq!(media.media_sequence, 42);
    assert!(media.segments.iter().all(|s| s.map.is_none()));
    assert!(!media.segments[0].discontinuity);
    assert!(media.segments[1].discontinuity);
    assert_eq!(
        probe_stream(&path, &[]),
        ("h264".to_owned(), 320, 240, FRAMES as u64)
    );
    assert_eq!(decode_errors(&path, &[]), "");
}

#[test]
fn ll_hls_tags_are_placed_as_the_spec_says() {
    let part = |i: usize, independent: bool| PartRef {
        uri: format!("part{i}.m4s"),
        duration_s: 0.333,
        independent,
    };
    let segments = vec![
        SegmentRef {
            uri: "seg10.m4s".into(),
            duration_s: 1.0,
            ..SegmentRef::default()
        },
        SegmentRef {
            uri: "seg11.m4s".into(),
            duration_s: 1.0,
            parts: vec![part(0, true), part(1, false), part(2, false)],
            ..SegmentRef::default()
        },
    ];
    let options = MediaPlaylistOptions {
        target_duration: 1,
        media_sequence: 10,
        init_uri: Some("init.mp4".into()),
        low_latency: Some(LowLatency {
            part_target_s: 0.334,
            part_hold_back_s: 1.0,
            can_block_reload: true,
            pending_parts: vec![part(3, true)],
            preload_hint_uri: Some("part4.m4s".into()),
            pending_discontinuity: true,
        }),
        ..MediaPlaylistOptions::default()
    };
    let text = media_playlist(&segments, &options);
    let lines: Vec<&str> = text.lines().collect();
    let index = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    // Playlist tags before any part or segment.
    assert!(lines.contains(&"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000"));
    assert!(lines.contains(&"#EXT-X-PART-INF:PART-TARGET=0.334"));
    assert!(index("#EXT-X-PART-INF") < index("#EXT-X-PART:"));
    assert!(index("#EXT-X-SERVER-CONTROL") < index("#EXTINF"));
    // Parts of seg11 between seg10's URI and seg11's EXTINF.
    let seg10 = index("seg10.m4s");
    let part0 = index("#EXT-X-PART:DURATION=0.333,URI=\"part0.m4s\",INDEPENDENT=YES");
    let seg11 = index("seg11.m4s");
    assert!(seg10 < part0 && part0 < seg11);
    assert_eq!(lines[seg11 - 1], "#EXTINF:1,");
    // The segment in progress: its parts, then the preload hint, last.
    let part3 = index("#EXT-X-PART:DURATION=0.333,URI=\"part3.m4s\"");
    assert!(part3 > seg11);
    // It starts a discontinuity: the tag comes before its parts, as before a segment.
    assert_eq!(lines[part3 - 1], "#EXT-X-DISCONTINUITY");
    assert_eq!(
        lines.last().copied(),
        Some("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part4.m4s\"")
    );
    assert!(!text.contains("#EXT-X-ENDLIST"));

    // m3u8-rs reads it back: playlist fields, segments and their per-segment tags.
    let Ok(Playlist::MediaPlaylist(media)) = parse_playlist_res(text.as_bytes()) else {
        panic!("not a media playlist:\n{text}");
    };
    assert_eq!(media.media_sequence, 10);
    assert_eq!(media.segments.len(), 2);
    let tags: Vec<String> = media.segments[1]
        .unknown_tags
        .iter()
        .map(|t| t.tag.clone())
        .collect();
    assert_eq!(tags, ["X-PART", "X-PART", "X-PART"]);
    assert_eq!(
        media.segments[1].unknown_tags[0].rest.as_deref(),
        Some("DURATION=0.333,URI=\"part0.m4s\",INDEPENDENT=YES")
    );

    // No complete segment yet: the playlist tags still come first.
    let empty = media_playlist(&[], &options);
    let lines: Vec<&str> = empty.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let server_control = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-SERVER-CONTROL"))
        .unwrap();
    let first_part = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-PART:"))
        .unwrap();
    assert!(server_control < first_part);
}

#[test]
fn ll_hls_between_two_segments_ends_with_the_hint_of_the_next() {
    // The last segment is complete and nothing of the next one has arrived: the playlist
    // still ends with the next segment (its discontinuity, then the hint of its first part),
    // never with a complete segment's URI (hls.js would take that segment for the one being
    // written).
    let segments = vec![SegmentRef {
        uri: "seg10.m4s".into(),
        duration_s: 1.0,
        discontinuity: true,
        parts: vec![PartRef {
            uri: "seg10-part0.m4s".into(),
            duration_s: 1.0,
            independent: true,
        }],
        ..SegmentRef::default()
    }];
    let options = MediaPlaylistOptions {
        media_sequence: 10,
        discontinuity_sequence: 4,
        init_uri: Some("init.mp4".into()),
        low_latency: Some(LowLatency {
            part_target_s: 1.0,
            part_hold_back_s: 3.0,
            can_block_reload: true,
            pending_parts: Vec::new(),
            preload_hint_uri: Some("next-part0.m4s".into()),
            pending_discontinuity: true,
        }),
        ..MediaPlaylistOptions::default()
    };
    let text = media_playlist(&segments, &options);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[lines.len() - 3..],
        [
            "seg10.m4s",
            "#EXT-X-DISCONTINUITY",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"next-part0.m4s\""
        ],
        "{text}"
    );
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:4\n"), "{text}");
    // Ended playlists have nothing pending.
    let ended = MediaPlaylistOptions {
        ended: true,
        ..options
    };
    let text = media_playlist(&segments, &ended);
    assert!(
        !text.contains("PRELOAD-HINT") && text.trim_end().ends_with("#EXT-X-ENDLIST"),
        "{text}"
    );
}

#[test]
fn dash_manifest_plays_in_ffprobe() {
    use hls::dash::{DashSegment, MpdOptions, mpd};
    let fragments = fragments();
    let dir = tempfile::tempdir().unwrap();
    let origin = fragments[0].start_ms();
    std::fs::write(
        dir.path().join("init.mp4"),
        fmp4::init_segment(&fragments[0].track).unwrap(),
    )
    .unwrap();
    let mut sizes = Vec::new();
    for (i, f) in fragments.iter().enumerate() {
        let seg = fmp4::fragment_segment(f, i as u32 + 1, origin).unwrap();
        sizes.push((seg.len(), f.duration_ms() as f64 / 1000.0));
        std::fs::write(dir.path().join(format!("segment-{}.m4s", i + 1)), seg).unwrap();
    }
    let segments: Vec<DashSegment> = fragments
        .iter()
        .map(|f| DashSegment {
            start_ms: f.start_ms(),
            duration_ms: f.duration_ms(),
        })
        .collect();
    let options = MpdOptions {
        timeline_origin_ms: origin,
        bandwidth: peak_bandwidth(&sizes),
        ..MpdOptions::default()
    };
    let text = mpd(&fragments[0].track, &segments, &options);
    let path = dir.path().join("manifest.mpd");
    std::fs::write(&path, &text).unwrap();
    assert_eq!(
        probe_stream(&path, &[]),
        ("h264".to_owned(), 320, 240, FRAMES as u64),
        "{text}"
    );
    assert_eq!(decode_errors(&path, &[]), "");
}
