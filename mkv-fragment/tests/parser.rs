//! Behaviour of the StreamParser on hand-built streams: every structural rule the server relies on
//! (what producers send, when events fire, what ends an unknown-size Cluster) and every error kind.

mod common;

use common::{parse_events, random_splits};
use mkv_fragment::writer::{
    write_binary_element, write_ebml_header, write_id, write_master_element, write_size,
    write_string_element, write_tags, write_uint_element,
};
use mkv_fragment::{
    Event, Frame, ParseError, ParserLimits, ProducerWriter, SegmentInfo, SimpleTag, StreamParser,
    TrackSpec, aws_tags, ids,
};

fn video_track() -> TrackSpec {
    TrackSpec {
        number: 1,
        uid: 0x1122_3344_5566_7788,
        track_type: 1,
        codec_id: "V_MPEG4/ISO/AVC".into(),
        codec_private: vec![1, 0x4D, 0x40, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 1, 2, 3],
        name: Some("kinesis_video".into()),
        pixel_width: Some(1280),
        pixel_height: Some(720),
        sampling_frequency: None,
        channels: None,
    }
}

fn audio_track() -> TrackSpec {
    TrackSpec {
        number: 2,
        uid: 2,
        track_type: 2,
        codec_id: "A_AAC".into(),
        codec_private: vec![0x12, 0x10],
        name: None,
        pixel_width: None,
        pixel_height: None,
        sampling_frequency: Some(48000.0),
        channels: Some(2),
    }
}

fn writer() -> ProducerWriter {
    ProducerWriter::new(SegmentInfo::default(), vec![video_track(), audio_track()])
}

/// All events of a stream fed at once; panics on error.
fn events(data: &[u8]) -> Vec<Event> {
    let (events, err) = parse_events(data, &[data.len()]);
    assert_eq!(err, None, "unexpected error after {events:?}");
    events
}

/// The error of a stream fed at once (events before it are returned too).
fn error(data: &[u8]) -> (Vec<Event>, ParseError) {
    let (events, err) = parse_events(data, &[data.len()]);
    (events, err.expect("an error"))
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            Event::EbmlHeader { .. } => "ebml",
            Event::SegmentStart { .. } => "segment",
            Event::Header(_) => "header",
            Event::Tags(_) => "tags",
            Event::ClusterStarted { .. } => "started",
            Event::ClusterBlock { .. } => "block",
            Event::Cluster(_) => "cluster",
        })
        .collect()
}

fn frame(track: u64, relative_timecode: i16, keyframe: bool, data: &[u8]) -> Frame<'_> {
    Frame {
        track,
        relative_timecode,
        keyframe,
        data,
    }
}

fn ebml_header() -> Vec<u8> {
    let mut out = Vec::new();
    write_ebml_header(&mut out, 2);
    out
}

fn unknown_segment() -> Vec<u8> {
    let mut out = ebml_header();
    write_id(&mut out, ids::SEGMENT);
    write_size(&mut out, None, 1);
    out
}

/// Cluster header of unknown size with the given width, plus a 1-byte Timecode.
fn unknown_cluster(timecode: u8, width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    write_id(&mut out, ids::CLUSTER);
    write_size(&mut out, None, width);
    write_uint_element(&mut out, ids::TIMECODE, u64::from(timecode));
    out
}

fn simple_block(track: u8, rel: i16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut data = vec![0x80 | track];
    data.extend_from_slice(&rel.to_be_bytes());
    data.push(flags);
    data.extend_from_slice(payload);
    let mut out = Vec::new();
    write_binary_element(&mut out, ids::SIMPLE_BLOCK, &data);
    out
}

#[test]
fn kvssink_stream_yields_header_tags_and_clusters_in_order() {
    let w = writer();
    let mut s = Vec::new();
    w.header(&mut s);
    ProducerWriter::tags(&mut s, &[SimpleTag::new("camera", "front door")]);
    w.cluster(
        &mut s,
        1_700_000_000_000,
        &[
            frame(1, 0, true, b"idr"),
            frame(2, 5, true, b"aac"),
            frame(1, 33, false, b"p"),
        ],
    );
    w.cluster(&mut s, 1_700_000_002_000, &[frame(1, 0, true, b"idr2")]);
    ProducerWriter::end_of_fragment(&mut s);

    let ev = events(&s);
    assert_eq!(
        kinds(&ev),
        [
            "ebml", "segment", "header", "tags", "started", "cluster", "started", "cluster", "tags"
        ]
    );
    assert_eq!(
        ev[0],
        Event::EbmlHeader {
            doc_type: "matroska".into()
        }
    );
    assert_eq!(ev[1], Event::SegmentStart { size: None });
    let Event::Header(h) = &ev[2] else { panic!() };
    assert_eq!(h.raw, w.header_elements());
    assert_eq!(h.timecode_scale_ns, 1_000_000);
    assert_eq!(h.tracks, vec![video_track(), audio_track()]);
    assert_eq!(
        ev[3],
        Event::Tags(vec![SimpleTag::new("camera", "front door")])
    );
    assert_eq!(
        ev[4],
        Event::ClusterStarted {
            timecode: 1_700_000_000_000
        }
    );
    let Event::Cluster(c) = &ev[5] else { panic!() };
    assert_eq!(c.timecode, 1_700_000_000_000);
    let got: Vec<_> = c
        .blocks
        .iter()
        .map(|b| {
            (
                b.track,
                b.relative_timecode,
                b.keyframe,
                &c.body[b.data.clone()],
                b.duration,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, 0, true, &b"idr"[..], None),
            (2, 5, true, &b"aac"[..], None),
            (1, 33, false, &b"p"[..], None)
        ]
    );
    assert_eq!(
        ev[8],
        Event::Tags(vec![SimpleTag::new(aws_tags::END_OF_FRAGMENT, "")])
    );
}

#[test]
fn cluster_started_fires_as_soon_as_the_timecode_is_in() {
    let w = writer();
    let mut s = Vec::new();
    w.header(&mut s);
    let header_len = s.len();
    w.cluster(&mut s, 42, &[frame(1, 0, true, &[7u8; 1000])]);
    let mut p = StreamParser::default();
    // Header, then the Cluster id+size and its 10-byte Timecode element: not the block.
    p.push(&s[..header_len + 5 + 10]);
    let mut got = Vec::new();
    while let Some(e) = p.next_event().unwrap() {
        got.push(e);
    }
    assert_eq!(kinds(&got), ["ebml", "segment", "header", "started"]);
    assert_eq!(got[3], Event::ClusterStarted { timecode: 42 });
    // The cluster itself only ends when something that cannot be a cluster child arrives.
    p.push(&s[header_len + 15..]);
    assert_eq!(p.next_event(), Ok(None));
    let Ok(Some(Event::Cluster(c))) = p.finish() else {
        panic!("finish closes the unknown-size cluster")
    };
    assert_eq!(c.blocks.len(), 1);
    assert_eq!(p.finish(), Ok(None));
    assert_eq!(p.bytes_consumed(), s.len() as u64);
}

#[test]
fn every_level1_id_and_a_new_session_end_an_unknown_size_cluster() {
    let mut enders: Vec<(&str, Vec<u8>)> = Vec::new();
    for id in [
        ids::CUES,
        ids::SEEK_HEAD,
        ids::INFO,
        ids::TRACKS,
        ids::CHAPTERS,
        ids::ATTACHMENTS,
    ] {
        let mut e = Vec::new();
        write_binary_element(&mut e, id, &[]);
        enders.push(("level-1", e));
    }
    let mut tags = Vec::new();
    write_tags(&mut tags, &[SimpleTag::new("a", "b")]);
    enders.push(("tags", tags));
    enders.push(("cluster", unknown_cluster(9, 1)));
    enders.push(("ebml", unknown_segment()));

    for (what, ender) in enders {
        let mut s = unknown_segment();
        s.extend(unknown_cluster(1, 1));
        s.extend(simple_block(1, 0, 0x80, b"frame"));
        let cluster_end = s.len();
        s.extend(&ender);
        let (ev, err) = parse_events(&s, &[s.len()]);
        assert_eq!(err, None, "{what}");
        let Some(Event::Cluster(c)) = ev.iter().find(|e| matches!(e, Event::Cluster(_))) else {
            panic!("{what}: no cluster")
        };
        assert_eq!(c.timecode, 1, "{what}");
        assert_eq!(c.blocks.len(), 1, "{what}");
        // The body stops exactly where the ender starts.
        assert_eq!(
            c.body.len(),
            cluster_end - unknown_segment().len() - 5,
            "{what}"
        );
        // And the cluster is complete before the end of input is declared.
        let mut p = StreamParser::default();
        p.push(&s);
        let mut live = Vec::new();
        while let Some(e) = p.next_event().unwrap() {
            live.push(e);
        }
        assert!(
            live.iter().any(|e| matches!(e, Event::Cluster(_))),
            "{what}: cluster not emitted before finish"
        );
    }
}

#[test]
fn void_crc_and_unknown_children_stay_in_the_cluster_body() {
    let mut s = unknown_segment();
    let mut body = Vec::new();
    write_binary_element(&mut body, ids::CRC32, &[1, 2, 3, 4]);
    write_uint_element(&mut body, ids::TIMECODE, 300);
    write_uint_element(&mut body, ids::POSITION, 0);
    write_binary_element(&mut body, ids::VOID, &[0; 3]);
    write_binary_element(&mut body, 0x4321, b"unknown child");
    body.extend(simple_block(1, -3, 0x80, b"x"));
    write_id(&mut s, ids::CLUSTER);
    write_size(&mut s, None, 8);
    s.extend(&body);
    let ev = events(&s);
    let Some(Event::Cluster(c)) = ev.last() else {
        panic!()
    };
    assert_eq!(c.body, body);
    assert_eq!(c.timecode, 300);
    assert_eq!(c.blocks[0].relative_timecode, -3);
    assert_eq!(&c.body[c.blocks[0].data.clone()], b"x");
}

#[test]
fn known_size_cluster_and_segment_end_at_their_size() {
    let mut body = Vec::new();
    write_uint_element(&mut body, ids::TIMECODE, 7);
    body.extend(simple_block(1, 0, 0x80, b"abc"));
    let mut seg_data = Vec::new();
    write_binary_element(&mut seg_data, ids::CLUSTER, &body);
    let mut s = ebml_header();
    write_id(&mut s, ids::SEGMENT);
    write_size(&mut s, Some(seg_data.len() as u64), 4);
    s.extend(&seg_data);
    // After the known-size Segment: a Void at the top level, then a second session.
    write_binary_element(&mut s, ids::VOID, &[0; 10]);
    s.extend(unknown_segment());
    let ev = events(&s);
    assert_eq!(
        kinds(&ev),
        [
            "ebml", "segment", "header", "started", "cluster", "ebml", "segment", "header"
        ]
    );
    assert_eq!(
        ev[1],
        Event::SegmentStart {
            size: Some(seg_data.len() as u64)
        }
    );
    let Event::Cluster(c) = &ev[4] else { panic!() };
    assert_eq!(c.body, body);
    // The second session's header is empty: it ended at the end of input.
    assert_eq!(ev[7], Event::Header(Default::default()));
}

#[test]
fn unknown_sizes_of_every_width_are_accepted() {
    for width in 1..=8 {
        let mut s = ebml_header();
        write_id(&mut s, ids::SEGMENT);
        write_size(&mut s, None, width);
        s.extend(unknown_cluster(3, width));
        s.extend(simple_block(1, 0, 0x80, b"f"));
        let ev = events(&s);
        assert_eq!(
            kinds(&ev),
            ["ebml", "segment", "header", "started", "cluster"],
            "width {width}"
        );
    }
}

#[test]
fn tags_before_the_header_is_complete_are_held_until_after_it() {
    // Like the first chunk of test_mixed_tags.mkv: producer Tags before Info and Tracks.
    let w = writer();
    let mut s = unknown_segment();
    write_tags(&mut s, &[SimpleTag::new("early", "1")]);
    let header_elements = w.header_elements();
    s.extend(&header_elements);
    write_tags(&mut s, &[SimpleTag::new("after_tracks", "2")]);
    w.cluster(&mut s, 0, &[frame(1, 0, true, b"k")]);
    let ev = events(&s);
    assert_eq!(
        kinds(&ev),
        [
            "ebml", "segment", "header", "tags", "tags", "started", "cluster"
        ]
    );
    let Event::Header(h) = &ev[2] else { panic!() };
    assert_eq!(h.raw, header_elements, "Tags are not part of raw");
    assert_eq!(ev[3], Event::Tags(vec![SimpleTag::new("early", "1")]));
    assert_eq!(
        ev[4],
        Event::Tags(vec![SimpleTag::new("after_tracks", "2")])
    );

    // A Tags right after Tracks releases the header at once (no cluster needed).
    let mut p = StreamParser::default();
    let mut s = unknown_segment();
    s.extend(&header_elements);
    write_tags(&mut s, &[SimpleTag::new("meta", "v")]);
    p.push(&s);
    let mut live = Vec::new();
    while let Some(e) = p.next_event().unwrap() {
        live.push(e);
    }
    assert_eq!(kinds(&live), ["ebml", "segment", "header", "tags"]);
}

#[test]
fn header_keeps_seekhead_void_and_unknown_elements_and_skips_cues_later() {
    let w = writer();
    let mut raw = Vec::new();
    write_binary_element(&mut raw, ids::SEEK_HEAD, &[0x4D, 0xBB, 0x80]);
    write_binary_element(&mut raw, ids::VOID, &[0; 20]);
    raw.extend(w.header_elements());
    write_binary_element(&mut raw, ids::CHAPTERS, &[]);
    let mut s = unknown_segment();
    s.extend(&raw);
    write_binary_element(&mut s, ids::CUES, &[0xBB, 0x80]);
    w.cluster(&mut s, 1, &[frame(1, 0, true, b"k")]);
    // After the header: these are skipped, not reported.
    write_binary_element(&mut s, ids::CUES, &[0xAA; 5000]);
    write_binary_element(&mut s, ids::INFO, &[]);
    write_binary_element(&mut s, ids::VOID, &[0; 3]);
    let ev = events(&s);
    assert_eq!(
        kinds(&ev),
        ["ebml", "segment", "header", "started", "cluster"]
    );
    let Event::Header(h) = &ev[2] else { panic!() };
    assert_eq!(h.raw, raw);
    assert_eq!(h.tracks.len(), 2);
}

#[test]
fn skipped_elements_are_not_buffered() {
    // A 40 MB Cues after the header streams through without being held in memory: the parser
    // consumes it as it arrives.
    let w = writer();
    let mut s = unknown_segment();
    s.extend(w.header_elements());
    w.cluster(&mut s, 1, &[frame(1, 0, true, b"k")]);
    write_id(&mut s, ids::CUES);
    write_size(&mut s, Some(40_000_000), 8);
    let mut p = StreamParser::default();
    p.push(&s);
    while p.next_event().unwrap().is_some() {}
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..10 {
        p.push(&chunk);
        assert_eq!(p.next_event(), Ok(None));
    }
    assert_eq!(p.bytes_consumed(), s.len() as u64 + 10 * (1 << 20));
    assert!(matches!(
        p.finish(),
        Err(ParseError::Truncated {
            id: Some(ids::CUES),
            ..
        })
    ));
}

#[test]
fn block_groups_report_duration_and_reference_and_laced_blocks_stay_whole() {
    let mut s = unknown_segment();
    s.extend(unknown_cluster(0, 1));
    let group = |reference: bool, duration: u64, payload: &[u8]| {
        let mut g = Vec::new();
        write_master_element(&mut g, ids::BLOCK_GROUP, 0, |g| {
            let mut block = vec![0x81, 0x00, 0x10, 0x00];
            block.extend_from_slice(payload);
            write_binary_element(g, ids::BLOCK, &block);
            write_uint_element(g, ids::BLOCK_DURATION, duration);
            if reference {
                write_binary_element(g, ids::REFERENCE_BLOCK, &[0xFF, 0xE0]);
            }
        });
        g
    };
    s.extend(group(false, 40, b"key"));
    s.extend(group(true, 20, b"delta"));
    // Xiph-laced SimpleBlock (flags 0x02): 2 frames, first of 3 bytes.
    s.extend(simple_block(
        1,
        80,
        0x82,
        &[0x01, 3, b'a', b'b', b'c', b'd', b'e'],
    ));
    let ev = events(&s);
    let Some(Event::Cluster(c)) = ev.last() else {
        panic!()
    };
    let got: Vec<_> = c
        .blocks
        .iter()
        .map(|b| {
            (
                b.relative_timecode,
                b.keyframe,
                b.duration,
                &c.body[b.data.clone()],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (16, true, Some(40), &b"key"[..]),
            (16, false, Some(20), &b"delta"[..]),
            (80, true, None, &[0x01, 3, b'a', b'b', b'c', b'd', b'e'][..]),
        ]
    );
}

#[test]
fn tags_are_flattened_in_document_order() {
    let mut s = unknown_segment();
    let mut tags = Vec::new();
    write_master_element(&mut tags, ids::TAGS, 0, |t| {
        write_master_element(t, ids::TAG, 0, |t| {
            write_master_element(t, ids::TARGETS, 0, |t| {
                write_uint_element(t, 0x63C5, 1);
            });
            write_master_element(t, ids::SIMPLE_TAG, 0, |t| {
                write_string_element(t, ids::TAG_NAME, "AWS_KINESISVIDEO_NOTIFICATION");
                write_string_element(t, ids::TAG_STRING, "event");
                write_master_element(t, ids::SIMPLE_TAG, 0, |t| {
                    write_string_element(t, ids::TAG_NAME, "nested");
                    write_string_element(t, ids::TAG_STRING, "v");
                });
            });
            write_master_element(t, ids::SIMPLE_TAG, 0, |t| {
                write_string_element(t, ids::TAG_NAME, "bin");
                write_string_element(t, ids::TAG_LANGUAGE, "und");
                write_binary_element(t, ids::TAG_BINARY, &[0xDE, 0xAD]);
            });
        });
        write_master_element(t, ids::TAG, 0, |t| {
            write_master_element(t, ids::SIMPLE_TAG, 0, |t| {
                // Zero padding after a string is not part of the value.
                write_binary_element(t, ids::TAG_NAME, b"padded\0\0");
                write_binary_element(t, ids::TAG_STRING, b"");
            });
        });
    });
    s.extend(&tags);
    let ev = events(&s);
    assert_eq!(
        ev[3],
        Event::Tags(vec![
            SimpleTag::new("AWS_KINESISVIDEO_NOTIFICATION", "event"),
            SimpleTag::new("nested", "v"),
            SimpleTag::new("bin", "dead"),
            SimpleTag::new("padded", ""),
        ])
    );
}

#[test]
fn doc_type_must_be_matroska_or_webm() {
    for (doc_type, ok) in [
        (&b"matroska"[..], true),
        (b"webm", true),
        (b"matroska\0", true),
        (b"mp4", false),
        (b"", false),
    ] {
        let mut s = Vec::new();
        write_master_element(&mut s, ids::EBML, 0, |h| {
            write_uint_element(h, ids::EBML_VERSION, 1);
            write_binary_element(h, ids::DOC_TYPE, doc_type);
        });
        let (ev, err) = parse_events(&s, &[s.len()]);
        if ok {
            assert_eq!(err, None);
            assert!(
                matches!(&ev[0], Event::EbmlHeader { doc_type } if doc_type == "matroska" || doc_type == "webm")
            );
        } else {
            assert!(
                matches!(err, Some(ParseError::NotMatroska { offset: 0, .. })),
                "{err:?}"
            );
        }
    }
}

#[test]
fn limits_bound_elements_and_headers() {
    let limits = ParserLimits {
        max_element_size: 1000,
        max_header_size: 300,
    };
    let run = |s: &[u8]| {
        let mut p = StreamParser::new(limits);
        p.push(s);
        loop {
            match p.next_event() {
                Ok(Some(_)) => {}
                Ok(None) => return p.finish().map(|_| ()),
                Err(e) => return Err(e),
            }
        }
    };
    // Known-size Cluster over the limit: rejected from its size alone, before its data arrives.
    let mut s = unknown_segment();
    write_id(&mut s, ids::CLUSTER);
    write_size(&mut s, Some(5000), 4);
    let err = run(&s).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::ElementTooLarge {
                id: ids::CLUSTER,
                size: 5000,
                limit: 1000,
                ..
            }
        ),
        "{err:?}"
    );

    // Unknown-size Cluster growing past the limit.
    let mut s = unknown_segment();
    s.extend(unknown_cluster(0, 1));
    for _ in 0..5 {
        s.extend(simple_block(1, 0, 0, &[0; 300]));
    }
    let err = run(&s).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::ElementTooLarge {
                id: ids::CLUSTER,
                ..
            }
        ),
        "{err:?}"
    );

    // Header elements adding up past max_header_size.
    let mut s = unknown_segment();
    for _ in 0..4 {
        write_binary_element(&mut s, ids::VOID, &[0; 100]);
    }
    let err = run(&s).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::ElementTooLarge {
                id: ids::VOID,
                limit: 300,
                ..
            }
        ),
        "{err:?}"
    );

    // A Tags element over max_header_size.
    let mut s = unknown_segment();
    write_tags(&mut s, &[SimpleTag::new("big", "x".repeat(400))]);
    let err = run(&s).unwrap_err();
    assert!(
        matches!(err, ParseError::ElementTooLarge { id: ids::TAGS, .. }),
        "{err:?}"
    );

    // A huge declared EBML header.
    let mut s = Vec::new();
    write_id(&mut s, ids::EBML);
    write_size(&mut s, Some(1 << 40), 8);
    let err = run(&s).unwrap_err();
    assert!(
        matches!(err, ParseError::ElementTooLarge { id: ids::EBML, .. }),
        "{err:?}"
    );
}

#[test]
fn missing_cluster_timecode_is_an_error() {
    // A block before the Timecode.
    let mut s = unknown_segment();
    write_id(&mut s, ids::CLUSTER);
    write_size(&mut s, None, 1);
    s.extend(simple_block(1, 0, 0x80, b"x"));
    let (_, err) = error(&s);
    assert!(
        matches!(err, ParseError::MissingClusterTimecode { .. }),
        "{err:?}"
    );
    // A cluster that ends without any Timecode.
    let mut s = unknown_segment();
    let cluster_at = s.len() as u64;
    write_id(&mut s, ids::CLUSTER);
    write_size(&mut s, None, 1);
    write_uint_element(&mut s, ids::POSITION, 0);
    let (_, err) = error(&s);
    assert_eq!(
        err,
        ParseError::MissingClusterTimecode { offset: cluster_at }
    );
}

#[test]
fn malformed_input_gives_the_matching_error_kind() {
    // InvalidVint: an id starting with 0x00.
    let mut s = unknown_segment();
    let at = s.len() as u64;
    s.extend([0x00, 0x81, 0x00]);
    assert_eq!(error(&s).1, ParseError::InvalidVint { offset: at });

    // UnexpectedElement: junk at the top level, a Segment inside a Segment.
    let (_, err) = error(&[0xA3, 0x80]);
    assert!(
        matches!(
            err,
            ParseError::UnexpectedElement {
                offset: 0,
                id: 0xA3,
                ..
            }
        ),
        "{err:?}"
    );
    let mut s = unknown_segment();
    s.extend(unknown_segment()[unknown_segment().len() - 5..].to_vec());
    let (_, err) = error(&s);
    assert!(
        matches!(
            err,
            ParseError::UnexpectedElement {
                id: ids::SEGMENT,
                ..
            }
        ),
        "{err:?}"
    );

    // InvalidBlock: a SimpleBlock too short for its header.
    let mut s = unknown_segment();
    s.extend(unknown_cluster(0, 1));
    write_binary_element(&mut s, ids::SIMPLE_BLOCK, &[0x81, 0x00]);
    let (_, err) = error(&s);
    assert!(
        matches!(
            err,
            ParseError::InvalidBlock {
                id: ids::SIMPLE_BLOCK,
                ..
            }
        ),
        "{err:?}"
    );

    // InvalidBlock: a BlockGroup without a Block.
    let mut s = unknown_segment();
    s.extend(unknown_cluster(0, 1));
    write_master_element(&mut s, ids::BLOCK_GROUP, 0, |g| {
        write_uint_element(g, ids::BLOCK_DURATION, 1);
    });
    let (_, err) = error(&s);
    assert!(
        matches!(
            err,
            ParseError::InvalidBlock {
                id: ids::BLOCK_GROUP,
                ..
            }
        ),
        "{err:?}"
    );

    // InvalidElement: a child overrunning its known-size Cluster.
    let mut s = unknown_segment();
    write_id(&mut s, ids::CLUSTER);
    write_size(&mut s, Some(3), 1);
    write_uint_element(&mut s, ids::TIMECODE, 0x0102); // 4 bytes
    let (_, err) = error(&s);
    assert!(
        matches!(
            err,
            ParseError::InvalidElement {
                id: ids::TIMECODE,
                ..
            }
        ),
        "{err:?}"
    );

    // UnexpectedElement: a new session inside a known-size Cluster.
    let mut s = unknown_segment();
    write_id(&mut s, ids::CLUSTER);
    write_size(&mut s, Some(200), 2);
    write_uint_element(&mut s, ids::TIMECODE, 1);
    s.extend(ebml_header());
    let (_, err) = error(&s);
    assert!(
        matches!(err, ParseError::UnexpectedElement { id: ids::EBML, .. }),
        "{err:?}"
    );

    // InvalidElement: an unknown size on a Tags element; a zero TimecodeScale.
    let mut s = unknown_segment();
    write_id(&mut s, ids::TAGS);
    write_size(&mut s, None, 1);
    let (_, err) = error(&s);
    assert!(
        matches!(err, ParseError::InvalidElement { id: ids::TAGS, .. }),
        "{err:?}"
    );
    let mut s = unknown_segment();
    write_master_element(&mut s, ids::INFO, 0, |i| {
        write_uint_element(i, ids::TIMECODE_SCALE, 0);
    });
    let (_, err) = error(&s);
    assert!(
        matches!(
            err,
            ParseError::InvalidElement {
                id: ids::TIMECODE_SCALE,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncation_is_reported_by_finish_with_the_cut_element() {
    let w = writer();
    let mut s = Vec::new();
    w.header(&mut s);
    let cluster_at = s.len();
    w.cluster(&mut s, 5, &[frame(1, 0, true, &[1; 100])]);
    // Cut inside the SimpleBlock.
    let cut = &s[..s.len() - 10];
    let (ev, err) = parse_events(cut, &[cut.len()]);
    assert_eq!(kinds(&ev), ["ebml", "segment", "header", "started"]);
    assert_eq!(
        err,
        Some(ParseError::Truncated {
            offset: cluster_at as u64 + 18,
            id: Some(ids::SIMPLE_BLOCK)
        })
    );
    // Cut inside an element id.
    let (_, err) = parse_events(&s[..cluster_at + 2], &[cluster_at + 2]);
    assert_eq!(
        err,
        Some(ParseError::Truncated {
            offset: cluster_at as u64,
            id: None
        })
    );
    // A known-size Cluster cut between its children.
    let mut s = unknown_segment();
    let at = s.len() as u64;
    write_id(&mut s, ids::CLUSTER);
    write_size(&mut s, Some(100), 1);
    write_uint_element(&mut s, ids::TIMECODE, 1);
    let (_, err) = error(&s);
    assert_eq!(
        err,
        ParseError::Truncated {
            offset: at,
            id: Some(ids::CLUSTER)
        }
    );
    // Nothing at all is fine, and so is a stream that ends between sessions.
    assert_eq!(parse_events(&[], &[]), (vec![], None));
}

#[test]
fn errors_are_sticky_and_input_after_them_is_ignored() {
    let mut p = StreamParser::default();
    p.push(&[0x00]);
    let err = p.next_event().unwrap_err();
    p.push(&unknown_segment());
    assert_eq!(p.next_event(), Err(err.clone()));
    assert_eq!(p.finish(), Err(err));
}

#[test]
fn a_new_ebml_header_ends_the_open_cluster_and_segment() {
    let w = writer();
    let mut s = Vec::new();
    w.header(&mut s);
    w.cluster(&mut s, 10, &[frame(1, 0, true, b"a")]);
    // Reconnect: new session re-sending the same cluster (rollback after a lost ack).
    w.header(&mut s);
    w.cluster(&mut s, 10, &[frame(1, 0, true, b"a")]);
    let ev = events(&s);
    assert_eq!(
        kinds(&ev),
        [
            "ebml", "segment", "header", "started", "cluster", "ebml", "segment", "header",
            "started", "cluster"
        ]
    );
    assert_eq!(ev[4], ev[9]);
}

#[test]
fn events_do_not_depend_on_the_split() {
    let w = writer();
    let mut s = Vec::new();
    w.header(&mut s);
    ProducerWriter::tags(&mut s, &[SimpleTag::new("k", "v")]);
    for i in 0..5u64 {
        let payload = vec![i as u8; 3000];
        w.cluster(
            &mut s,
            i * 2000,
            &[
                frame(1, 0, true, &payload),
                frame(2, 10, true, &payload[..100]),
            ],
        );
    }
    ProducerWriter::end_of_fragment(&mut s);
    let whole = parse_events(&s, &[s.len()]);
    assert_eq!(whole.1, None);
    assert_eq!(parse_events(&s, &vec![1; s.len()]), whole);
    for seed in 0..20 {
        assert_eq!(parse_events(&s, &random_splits(s.len(), seed, 700)), whole);
    }
}

#[test]
fn block_events_arrive_before_their_cluster_completes() {
    use mkv_fragment::{Frame, ProducerWriter, SegmentInfo, TrackSpec};
    let track = TrackSpec {
        number: 1,
        uid: 1,
        track_type: 1,
        codec_id: "V_MPEG4/ISO/AVC".into(),
        ..TrackSpec::default()
    };
    let writer = ProducerWriter::new(SegmentInfo::default(), vec![track]);
    let mut stream = Vec::new();
    writer.header(&mut stream);
    let frames = [b"key".as_slice(), b"delta-1", b"delta-2"];
    ProducerWriter::cluster_start(&mut stream, 1_000);
    let cluster_open = stream.len();
    for (i, data) in frames.iter().enumerate() {
        let frame = Frame {
            track: 1,
            relative_timecode: i as i16 * 33,
            keyframe: i == 0,
            data,
        };
        ProducerWriter::simple_block(&mut stream, &frame);
    }

    let mut parser = StreamParser::default().with_block_events();
    // Everything but the next Cluster: the first one is still open.
    for piece in stream.chunks(5) {
        parser.push(piece);
    }
    let mut payloads = Vec::new();
    while let Some(event) = parser.next_event().unwrap() {
        match event {
            Event::ClusterBlock { block, payload } => {
                payloads.push((block.relative_timecode, block.keyframe, payload))
            }
            Event::Cluster(_) => panic!("the cluster is not complete yet"),
            _ => {}
        }
    }
    assert!(cluster_open < stream.len());
    assert_eq!(
        payloads,
        [
            (0, true, b"key".to_vec()),
            (33, false, b"delta-1".to_vec()),
            (66, false, b"delta-2".to_vec())
        ]
    );
    // The Cluster event still carries every block.
    let mut blocks = 0;
    while let Some(event) = parser.finish().unwrap() {
        if let Event::Cluster(c) = event {
            blocks = c.blocks.len();
        }
    }
    assert_eq!(blocks, 3);
    // Without the option, no block events.
    let mut plain = StreamParser::default();
    plain.push(&stream);
    while let Some(event) = plain.next_event().unwrap() {
        assert!(!matches!(event, Event::ClusterBlock { .. }));
    }
}
