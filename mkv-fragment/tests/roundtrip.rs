//! Round trips: what the writers produce must parse back to what went in, byte for byte, and the
//! GetMedia output must also be valid for an independent reader (`mkvinfo`, when installed).

mod common;

use common::{adler32, fixture, fixtures, mkvinfo, parse_events, read_fragments};
use mkv_fragment::getmedia::{write_error_chunk, write_fragment_prefix, write_fragment_trailer};
use mkv_fragment::{
    Event, FragmentStamp, Frame, GetMediaFragment, GetMediaReader, ProducerWriter, SegmentInfo,
    SimpleTag, TrackSpec, aws_tags, ids,
};
use proptest::prelude::*;

fn tracks() -> Vec<TrackSpec> {
    vec![
        TrackSpec {
            number: 1,
            uid: 1,
            track_type: 1,
            codec_id: "V_MPEG4/ISO/AVC".into(),
            codec_private: vec![1, 0x64, 0, 0x28, 0xFF, 0xE1],
            name: Some("kinesis_video".into()),
            pixel_width: Some(1920),
            pixel_height: Some(1080),
            sampling_frequency: None,
            channels: None,
        },
        TrackSpec {
            number: 2,
            uid: 2,
            track_type: 2,
            codec_id: "A_AAC".into(),
            codec_private: vec![0x11, 0x90],
            name: Some("kinesis_audio".into()),
            pixel_width: None,
            pixel_height: None,
            sampling_frequency: Some(44100.0),
            channels: Some(1),
        },
    ]
}

/// Track, relative timecode, key flag and payload of one frame.
type OwnedFrame = (u64, i16, bool, Vec<u8>);

/// A producer stream with `n` fragments of a few frames each.
fn producer_stream(n: u64) -> (ProducerWriter, Vec<u8>, Vec<Vec<OwnedFrame>>) {
    let w = ProducerWriter::new(SegmentInfo::default(), tracks());
    let mut s = Vec::new();
    w.header(&mut s);
    let mut all = Vec::new();
    for i in 0..n {
        let frames: Vec<OwnedFrame> = vec![
            (1, 0, true, vec![i as u8; 5000]),
            (2, 3, true, vec![0xA0 ^ i as u8; 300]),
            (1, 33, false, vec![0x55; 800]),
            (1, 66, false, (0..=255u8).collect()),
        ];
        let borrowed: Vec<Frame<'_>> = frames
            .iter()
            .map(|(track, rel, key, data)| Frame {
                track: *track,
                relative_timecode: *rel,
                keyframe: *key,
                data,
            })
            .collect();
        ProducerWriter::tags(&mut s, &[SimpleTag::new("fragment", i.to_string())]);
        w.cluster(&mut s, 1_700_000_000_000 + i * 2000, &borrowed);
        all.push(frames);
    }
    ProducerWriter::end_of_fragment(&mut s);
    (w, s, all)
}

#[test]
fn producer_writer_output_parses_back_to_the_same_frames_and_tags() {
    let (w, s, frames) = producer_stream(3);
    let (events, err) = parse_events(&s, &[s.len()]);
    assert_eq!(err, None);
    let Event::Header(h) = &events[2] else {
        panic!("{:?}", events[2])
    };
    assert_eq!(h.tracks, tracks());
    assert_eq!(h.raw, w.header_elements());
    let clusters: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Cluster(c) => Some(c),
            _ => None,
        })
        .collect();
    let tags: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Tags(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(clusters.len(), 3);
    for (i, (c, want)) in clusters.iter().zip(&frames).enumerate() {
        assert_eq!(c.timecode, 1_700_000_000_000 + i as u64 * 2000);
        let got: Vec<OwnedFrame> = c
            .blocks
            .iter()
            .map(|b| {
                (
                    b.track,
                    b.relative_timecode,
                    b.keyframe,
                    c.body[b.data.clone()].to_vec(),
                )
            })
            .collect();
        assert_eq!(&got, want);
        assert_eq!(tags[i], vec![SimpleTag::new("fragment", i.to_string())]);
    }
    assert_eq!(tags[3], vec![SimpleTag::new(aws_tags::END_OF_FRAGMENT, "")]);
}

/// Serves the clusters of a producer stream as GetMedia chunks, like the server will.
fn serve(s: &[u8]) -> (Vec<u8>, Vec<GetMediaFragment>) {
    let (events, err) = parse_events(s, &[s.len()]);
    assert_eq!(err, None);
    let mut header = None;
    let mut pending_tags = Vec::new();
    let mut out = Vec::new();
    let mut expected = Vec::new();
    let mut n = 0u64;
    for e in events {
        match e {
            Event::Header(h) => header = Some(h),
            Event::Tags(t) => pending_tags.extend(t),
            Event::Cluster(c) => {
                let h = header.clone().unwrap();
                let number = format!("9134385233318143239268206260774392014615916{n:04}");
                let stamp = FragmentStamp {
                    fragment_number: &number,
                    server_timestamp_ms: 1_700_000_000_500 + n as i64 * 2000,
                    producer_timestamp_ms: c.timecode as i64,
                };
                let user_tags = std::mem::take(&mut pending_tags);
                write_fragment_prefix(&mut out, &h.raw, &stamp, &user_tags, &c.body);
                write_fragment_trailer(&mut out, 100 + n, &number);
                expected.push(GetMediaFragment {
                    fragment_number: Some(number.clone()),
                    server_timestamp_ms: Some(stamp.server_timestamp_ms),
                    producer_timestamp_ms: Some(stamp.producer_timestamp_ms),
                    millis_behind_now: Some(100 + n),
                    continuation_token: Some(number),
                    error_code: None,
                    error_id: None,
                    user_tags,
                    header: Some(h),
                    cluster: Some(c),
                });
                n += 1;
            }
            _ => {}
        }
    }
    (out, expected)
}

#[test]
fn getmedia_chunks_read_back_with_stamps_tags_and_payloads() {
    let (_, s, _) = producer_stream(4);
    let (served, expected) = serve(&s);
    assert_eq!(expected.len(), 4);
    let (got, err) = read_fragments(&served, &[served.len()]);
    assert_eq!(err, None);
    assert_eq!(got, expected);
    // Each chunk is complete as soon as its trailer is in: feed chunk by chunk.
    let mut reader = GetMediaReader::new();
    let mut at = 0;
    for want in &expected {
        let mut one = Vec::new();
        let c = want.cluster.as_ref().unwrap();
        write_fragment_prefix(
            &mut one,
            &want.header.as_ref().unwrap().raw,
            &FragmentStamp {
                fragment_number: want.fragment_number.as_deref().unwrap(),
                server_timestamp_ms: want.server_timestamp_ms.unwrap(),
                producer_timestamp_ms: want.producer_timestamp_ms.unwrap(),
            },
            &want.user_tags,
            &c.body,
        );
        write_fragment_trailer(
            &mut one,
            want.millis_behind_now.unwrap(),
            want.continuation_token.as_deref().unwrap(),
        );
        assert_eq!(&served[at..at + one.len()], &one[..]);
        reader.push(&one);
        at += one.len();
        assert_eq!(reader.next_fragment().unwrap().as_ref(), Some(want));
        assert_eq!(reader.next_fragment(), Ok(None));
    }
}

#[test]
fn getmedia_chunk_layout_is_the_one_the_java_parser_needs() {
    let (_, s, _) = producer_stream(1);
    let (served, _) = serve(&s);
    let (events, err) = parse_events(&served, &[served.len()]);
    assert_eq!(err, None);
    let names = |e: &Event| match e {
        Event::Tags(t) => t.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        _ => vec![],
    };
    // EBML, Segment(unknown), header, AWS tags, user tags, Cluster, trailer tags.
    assert!(matches!(&events[0], Event::EbmlHeader { doc_type } if doc_type == "matroska"));
    assert_eq!(events[1], Event::SegmentStart { size: None });
    assert!(matches!(&events[2], Event::Header(_)));
    assert_eq!(
        names(&events[3]),
        [
            aws_tags::FRAGMENT_NUMBER,
            aws_tags::SERVER_TIMESTAMP,
            aws_tags::PRODUCER_TIMESTAMP
        ]
    );
    assert_eq!(names(&events[4]), ["fragment"]);
    assert!(matches!(&events[5], Event::ClusterStarted { .. }));
    assert!(matches!(&events[6], Event::Cluster(_)));
    assert_eq!(
        names(&events[7]),
        [aws_tags::MILLIS_BEHIND_NOW, aws_tags::CONTINUATION_TOKEN]
    );
    assert_eq!(events.len(), 8);
    // Timestamps are decimal seconds with three decimals, as the Java parser expects.
    let Event::Tags(t) = &events[3] else { panic!() };
    assert_eq!(t[1].value, "1700000000.500");
    assert_eq!(t[2].value, "1700000000.000");
    // The re-emitted Cluster has a known 8-byte size.
    let cluster_at = served
        .windows(4)
        .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
        .unwrap();
    assert_eq!(served[cluster_at + 4], 0x01);
}

#[test]
fn real_fixture_fragments_survive_being_served_again() {
    // What the server does with stored fragments: header.raw + cluster.body re-wrapped.
    for (name, data) in fixtures() {
        let (fragments, err) = read_fragments(&data, &[data.len()]);
        assert_eq!(err, None, "{name}");
        let mut out = Vec::new();
        for f in &fragments {
            write_fragment_prefix(
                &mut out,
                &f.header.as_ref().unwrap().raw,
                &FragmentStamp {
                    fragment_number: f.fragment_number.as_deref().unwrap(),
                    server_timestamp_ms: f.server_timestamp_ms.unwrap(),
                    producer_timestamp_ms: f.producer_timestamp_ms.unwrap(),
                },
                &f.user_tags,
                &f.cluster.as_ref().unwrap().body,
            );
            write_fragment_trailer(
                &mut out,
                f.millis_behind_now.unwrap(),
                f.continuation_token.as_deref().unwrap(),
            );
        }
        let (again, err) = read_fragments(&out, &[out.len()]);
        assert_eq!(err, None, "{name}");
        assert_eq!(again, fragments, "{name}");
    }
}

#[test]
fn user_tags_with_getmedia_reserved_names_are_not_served() {
    let mut out = Vec::new();
    let stamp = FragmentStamp {
        fragment_number: "42",
        server_timestamp_ms: 1000,
        producer_timestamp_ms: 900,
    };
    let mut body = Vec::new();
    mkv_fragment::writer::write_uint_element(&mut body, ids::TIMECODE, 900);
    let user = [
        SimpleTag::new(aws_tags::CONTINUATION_TOKEN, "forged"),
        SimpleTag::new("kept", "1"),
        SimpleTag::new(aws_tags::SERVER_TIMESTAMP, "0.000"),
        SimpleTag::new(aws_tags::END_OF_FRAGMENT, ""),
    ];
    write_fragment_prefix(&mut out, &[], &stamp, &user, &body);
    write_fragment_trailer(&mut out, 7, "42");
    let (got, err) = read_fragments(&out, &[out.len()]);
    assert_eq!(err, None);
    assert_eq!(
        got.len(),
        1,
        "the forged token must not split the chunk: {got:?}"
    );
    assert_eq!(got[0].server_timestamp_ms, Some(1000));
    assert_eq!(got[0].continuation_token.as_deref(), Some("42"));
    assert_eq!(
        got[0].user_tags,
        [
            SimpleTag::new("kept", "1"),
            SimpleTag::new(aws_tags::END_OF_FRAGMENT, "")
        ]
    );
    // Only reserved names in the user tags: no user Tags element at all.
    let mut only_reserved = Vec::new();
    write_fragment_prefix(&mut only_reserved, &[], &stamp, &user[..1], &body);
    let mut none = Vec::new();
    write_fragment_prefix(&mut none, &[], &stamp, &[], &body);
    assert_eq!(only_reserved, none);
}

fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("mkv-fragment-{}-{name}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn mkvinfo_accepts_a_written_getmedia_chunk() {
    let data = fixture("test_mixed_tags.mkv");
    let (fragments, _) = read_fragments(&data, &[data.len()]);
    let f = &fragments[1];
    let cluster = f.cluster.as_ref().unwrap();
    let mut out = Vec::new();
    write_fragment_prefix(
        &mut out,
        &f.header.as_ref().unwrap().raw,
        &FragmentStamp {
            fragment_number: "91343852333181432392682062607743920146159169392",
            server_timestamp_ms: 1_511_852_109_126,
            producer_timestamp_ms: 1_511_852_108_513,
        },
        &[SimpleTag::new("camera", "porch")],
        &cluster.body,
    );
    write_fragment_trailer(
        &mut out,
        15858,
        "91343852333181432392682062607743920146159169392",
    );
    let path = temp_file("chunk.mkv", &out);
    let Some(info) = mkvinfo(&["-a", "-z", "-P", "-c", path.to_str().unwrap()]) else {
        return;
    };
    std::fs::remove_file(&path).ok();
    assert!(!info.contains("Error"), "{info}");
    assert!(!info.contains("Warning"), "{info}");
    for needle in [
        "Document type: matroska",
        "Segment: size unknown",
        "Codec ID: V_MS/VFW/FOURCC",
        "Name: AWS_KINESISVIDEO_FRAGMENT_NUMBER",
        "String: 91343852333181432392682062607743920146159169392",
        "String: 1511852109.126",
        "String: 1511852108.513",
        "Name: camera",
        "String: porch",
        "Name: AWS_KINESISVIDEO_MILLIS_BEHIND_NOW",
        "String: 15858",
        "Cluster timestamp: 00:00:05.000000000",
    ] {
        assert!(
            info.contains(needle),
            "mkvinfo output lacks {needle:?}:\n{info}"
        );
    }
    // The Cluster has a known size covering exactly the body (8-byte size field).
    let want = format!(
        "Cluster at {} size {} data size {}",
        out.len() - 12 - cluster.body.len() - trailer_len(),
        12 + cluster.body.len(),
        cluster.body.len()
    );
    assert!(info.contains(&want), "lacks {want:?}:\n{info}");
    // Every frame mkvinfo sees has the Adler-32 of the payload we parsed.
    let adlers: Vec<String> = info
        .lines()
        .filter(|l| l.contains("+ Frame (adler: 0x"))
        .map(|l| l.split("adler: 0x").nth(1).unwrap()[..8].to_string())
        .collect();
    let ours: Vec<String> = cluster
        .blocks
        .iter()
        .map(|b| format!("{:08x}", adler32(&cluster.body[b.data.clone()])))
        .collect();
    assert_eq!(adlers, ours);
}

fn trailer_len() -> usize {
    let mut t = Vec::new();
    write_fragment_trailer(
        &mut t,
        15858,
        "91343852333181432392682062607743920146159169392",
    );
    t.len()
}

#[test]
fn error_chunks_are_read_at_once_and_carry_what_the_java_parser_requires() {
    let mut out = Vec::new();
    write_error_chunk(
        &mut out,
        "FRAGMENT_NOT_FOUND",
        4000,
        Some("913438523331814323926"),
    );
    write_error_chunk(&mut out, "INTERNAL_ERROR", 5000, None);

    // Layout: EBML header, known-size Segment, one Tags {ERROR_CODE, ERROR_ID, FRAGMENT_NUMBER}
    // (the order of an error chunk captured from AWS), no Cluster, no SERVER_TIMESTAMP.
    let (events, err) = parse_events(&out, &[out.len()]);
    assert_eq!(err, None);
    assert_eq!(events.len(), 8);
    assert!(matches!(events[1], Event::SegmentStart { size: Some(_) }));
    assert_eq!(
        events[3],
        Event::Tags(vec![
            SimpleTag::new(aws_tags::ERROR_CODE, "FRAGMENT_NOT_FOUND"),
            SimpleTag::new(aws_tags::ERROR_ID, "4000"),
            SimpleTag::new(aws_tags::FRAGMENT_NUMBER, "913438523331814323926"),
        ])
    );
    // Without a known fragment number, "0": the Java parser needs a numeric one.
    let Event::Tags(t) = &events[7] else { panic!() };
    assert_eq!(t[2], SimpleTag::new(aws_tags::FRAGMENT_NUMBER, "0"));

    // A live reader gets the first error without waiting for more input.
    let mut reader = GetMediaReader::new();
    let first_len = {
        let mut one = Vec::new();
        write_error_chunk(
            &mut one,
            "FRAGMENT_NOT_FOUND",
            4000,
            Some("913438523331814323926"),
        );
        one.len()
    };
    reader.push(&out[..first_len]);
    let f = reader
        .next_fragment()
        .unwrap()
        .expect("error chunk complete");
    assert!(f.is_error());
    assert_eq!(
        f,
        GetMediaFragment {
            fragment_number: Some("913438523331814323926".into()),
            error_code: Some("FRAGMENT_NOT_FOUND".into()),
            error_id: Some(4000),
            ..Default::default()
        }
    );
    reader.push(&out[first_len..]);
    let f = reader.next_fragment().unwrap().unwrap();
    assert_eq!(f.error_id, Some(5000));
    assert_eq!(f.fragment_number.as_deref(), Some("0"));
    assert_eq!(reader.finish(), Ok(None));

    let path = temp_file("error.mkv", &out[..first_len]);
    if let Some(info) = mkvinfo(&["-a", path.to_str().unwrap()]) {
        assert!(!info.contains("Error"), "{info}");
        assert!(info.contains("String: FRAGMENT_NOT_FOUND"), "{info}");
        assert!(info.contains("String: 4000"), "{info}");
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn an_aws_style_error_chunk_with_unknown_size_segment_is_read_at_finish() {
    // The byte layout of a real error chunk (aws-sdk-js issue 3217): unknown-size Segment.
    let mut out = Vec::new();
    mkv_fragment::writer::write_ebml_header(&mut out, 2);
    mkv_fragment::writer::write_id(&mut out, ids::SEGMENT);
    mkv_fragment::writer::write_size(&mut out, None, 8);
    mkv_fragment::writer::write_tags_width(
        &mut out,
        &[
            SimpleTag::new(aws_tags::ERROR_CODE, "FRAGMENT_NOT_FOUND"),
            SimpleTag::new(aws_tags::ERROR_ID, "3000"),
            SimpleTag::new(aws_tags::FRAGMENT_NUMBER, "123"),
        ],
        4,
    );
    let mut reader = GetMediaReader::new();
    reader.push(&out);
    // The Tags may still be followed by header elements, so they wait for the Segment's end.
    assert_eq!(reader.next_fragment(), Ok(None));
    let f = reader.finish().unwrap().unwrap();
    assert_eq!(f.error_code.as_deref(), Some("FRAGMENT_NOT_FOUND"));
    assert_eq!(f.error_id, Some(3000));
    assert_eq!(reader.finish(), Ok(None));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_i64_timestamp_survives_format_and_parse(ms in any::<i64>()) {
        let text = mkv_fragment::format_timestamp_ms(ms);
        prop_assert_eq!(mkv_fragment::parse_timestamp_ms(&text), Some(ms));
        // Three decimals, always.
        prop_assert_eq!(text.split_once('.').map(|(_, f)| f.len()), Some(3));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_frames_and_tags_round_trip_through_the_producer_writer(
        clusters in prop::collection::vec(
            (
                any::<u64>().prop_map(|t| t >> 8),
                prop::collection::vec(
                    (1u64..300, any::<i16>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..200)),
                    0..6,
                ),
                prop::collection::vec(("[a-zA-Z_]{1,12}", "\\PC{0,20}"), 0..3),
            ),
            1..4,
        ),
        scale in 1u64..10_000_000_000,
    ) {
        let info = SegmentInfo { timecode_scale_ns: scale, ..SegmentInfo::default() };
        let w = ProducerWriter::new(info, tracks());
        let mut s = Vec::new();
        w.header(&mut s);
        for (timecode, frames, tags) in &clusters {
            let tags: Vec<SimpleTag> = tags.iter().map(|(n, v)| SimpleTag::new(n, v)).collect();
            if !tags.is_empty() {
                ProducerWriter::tags(&mut s, &tags);
            }
            let frames: Vec<Frame<'_>> = frames
                .iter()
                .map(|(track, rel, key, data)| Frame { track: *track, relative_timecode: *rel, keyframe: *key, data })
                .collect();
            w.cluster(&mut s, *timecode, &frames);
        }
        let (events, err) = parse_events(&s, &[s.len()]);
        prop_assert_eq!(err, None);
        let Event::Header(h) = &events[2] else { panic!() };
        prop_assert_eq!(h.timecode_scale_ns, scale);
        let mut clusters_seen = events.iter().filter_map(|e| match e { Event::Cluster(c) => Some(c), _ => None });
        let mut tags_seen = events.iter().filter_map(|e| match e { Event::Tags(t) => Some(t), _ => None });
        for (timecode, frames, tags) in &clusters {
            if !tags.is_empty() {
                let want: Vec<SimpleTag> = tags.iter().map(|(n, v)| SimpleTag::new(n, v)).collect();
                prop_assert_eq!(tags_seen.next(), Some(&want));
            }
            let c = clusters_seen.next().unwrap();
            prop_assert_eq!(c.timecode, *timecode);
            let got: Vec<OwnedFrame> = c.blocks.iter()
                .map(|b| (b.track, b.relative_timecode, b.keyframe, c.body[b.data.clone()].to_vec()))
                .collect();
            prop_assert_eq!(&got, frames);
        }
    }

    #[test]
    fn any_stamp_tags_and_body_round_trip_through_getmedia(
        number in "[0-9]{1,47}",
        server in any::<i64>(),
        producer in any::<i64>(),
        behind in any::<u64>(),
        token in "[0-9A-Za-z_]{0,60}",
        user in prop::collection::vec(("[a-z]{1,10}", "\\PC{0,30}"), 0..4),
        blocks in prop::collection::vec((any::<i16>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..100)), 0..5),
        timecode in any::<u64>().prop_map(|t| t >> 8),
    ) {
        let w = ProducerWriter::new(SegmentInfo::default(), tracks());
        let mut produced = Vec::new();
        let frames: Vec<Frame<'_>> = blocks.iter()
            .map(|(rel, key, data)| Frame { track: 1, relative_timecode: *rel, keyframe: *key, data })
            .collect();
        w.cluster(&mut produced, timecode, &frames);
        let body = &produced[5..]; // the children of the unknown-size cluster
        let user: Vec<SimpleTag> = user.iter().map(|(n, v)| SimpleTag::new(n, v)).collect();
        let stamp = FragmentStamp { fragment_number: &number, server_timestamp_ms: server, producer_timestamp_ms: producer };
        let mut out = Vec::new();
        write_fragment_prefix(&mut out, &w.header_elements(), &stamp, &user, body);
        write_fragment_trailer(&mut out, behind, &token);
        let (got, err) = read_fragments(&out, &[out.len()]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got.len(), 1);
        let f = &got[0];
        prop_assert_eq!(f.fragment_number.as_deref(), Some(number.as_str()));
        prop_assert_eq!(f.server_timestamp_ms, Some(server));
        prop_assert_eq!(f.producer_timestamp_ms, Some(producer));
        prop_assert_eq!(f.millis_behind_now, Some(behind));
        prop_assert_eq!(f.continuation_token.as_deref(), Some(token.as_str()));
        prop_assert_eq!(&f.user_tags, &user);
        let c = f.cluster.as_ref().unwrap();
        prop_assert_eq!(&c.body[..], body);
        prop_assert_eq!(c.timecode, timecode);
        let payloads: Vec<&[u8]> = c.blocks.iter().map(|b| &c.body[b.data.clone()]).collect();
        let want: Vec<&[u8]> = blocks.iter().map(|(_, _, d)| d.as_slice()).collect();
        prop_assert_eq!(payloads, want);
        prop_assert_eq!(&f.header.as_ref().unwrap().tracks, &tracks());
    }
}
