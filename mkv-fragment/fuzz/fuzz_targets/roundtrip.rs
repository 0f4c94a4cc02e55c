//! Fuzzes the writers against the reader: whatever frames, tags and stamps go into
//! ProducerWriter and the GetMedia writer must come back out of StreamParser / GetMediaReader.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mkv_fragment::getmedia::{write_fragment_prefix, write_fragment_trailer};
use mkv_fragment::{
    Event, FragmentStamp, Frame, GetMediaReader, ProducerWriter, SegmentInfo, SimpleTag,
    StreamParser, TrackSpec, aws_tags,
};

struct Input {
    timecode_scale: u64,
    clusters: Vec<(u64, Vec<(u64, i16, bool, Vec<u8>)>, Vec<SimpleTag>)>,
    server_ms: i64,
    behind: u64,
}

fn text(u: &mut Unstructured<'_>) -> Result<String> {
    // Zero bytes end an EBML string (padding), so they cannot round-trip inside a value.
    let s: String = u.arbitrary()?;
    Ok(s.replace('\0', ""))
}

fn input(u: &mut Unstructured<'_>) -> Result<Input> {
    let timecode_scale = u.int_in_range(1..=10_000_000_000u64)?;
    let mut clusters = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let timecode = u.arbitrary::<u64>()? >> 8;
        let mut frames = Vec::new();
        for _ in 0..u.int_in_range(0..=6)? {
            frames.push((
                u.int_in_range(1..=20_000u64)?,
                u.arbitrary()?,
                u.arbitrary()?,
                u.arbitrary::<Vec<u8>>()?,
            ));
        }
        let mut tags = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            tags.push(SimpleTag::new(text(u)?, text(u)?));
        }
        clusters.push((timecode, frames, tags));
    }
    Ok(Input {
        timecode_scale,
        clusters,
        server_ms: u.arbitrary()?,
        behind: u.arbitrary()?,
    })
}

fn events(data: &[u8]) -> Vec<Event> {
    let mut p = StreamParser::default();
    p.push(data);
    let mut out = Vec::new();
    while let Some(e) = p.next_event().expect("written stream parses") {
        out.push(e);
    }
    while let Some(e) = p.finish().expect("written stream ends cleanly") {
        out.push(e);
    }
    out
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(input) = input(&mut Unstructured::new(bytes)) else {
        return;
    };
    let track = TrackSpec {
        number: 1,
        uid: 1,
        track_type: 1,
        codec_id: "V_MPEG4/ISO/AVC".into(),
        codec_private: vec![1, 2, 3],
        name: None,
        pixel_width: Some(640),
        pixel_height: Some(480),
        sampling_frequency: None,
        channels: None,
    };
    let info = SegmentInfo {
        timecode_scale_ns: input.timecode_scale,
        ..SegmentInfo::default()
    };
    let w = ProducerWriter::new(info, vec![track.clone()]);
    let mut stream = Vec::new();
    w.header(&mut stream);
    for (timecode, frames, tags) in &input.clusters {
        if !tags.is_empty() {
            ProducerWriter::tags(&mut stream, tags);
        }
        let frames: Vec<Frame<'_>> = frames
            .iter()
            .map(|(track, rel, key, data)| Frame {
                track: *track,
                relative_timecode: *rel,
                keyframe: *key,
                data,
            })
            .collect();
        w.cluster(&mut stream, *timecode, &frames);
    }

    let parsed = events(&stream);
    let Some(Event::Header(header)) = parsed.get(2) else {
        panic!("no header: {parsed:?}");
    };
    assert_eq!(header.timecode_scale_ns, input.timecode_scale);
    assert_eq!(header.tracks, vec![track]);
    let clusters: Vec<_> = parsed
        .iter()
        .filter_map(|e| match e {
            Event::Cluster(c) => Some(c),
            _ => None,
        })
        .collect();
    let tags: Vec<_> = parsed
        .iter()
        .filter_map(|e| match e {
            Event::Tags(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(clusters.len(), input.clusters.len());
    let want_tags: Vec<_> = input
        .clusters
        .iter()
        .map(|c| &c.2)
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(tags, want_tags);

    let mut served = Vec::new();
    for (i, (c, (timecode, frames, tags))) in clusters.iter().zip(&input.clusters).enumerate() {
        assert_eq!(c.timecode, *timecode);
        let got: Vec<_> = c
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
        assert_eq!(&got, frames);
        let number = i.to_string();
        write_fragment_prefix(
            &mut served,
            &header.raw,
            &FragmentStamp {
                fragment_number: &number,
                server_timestamp_ms: input.server_ms,
                producer_timestamp_ms: *timecode as i64,
            },
            tags,
            &c.body,
        );
        write_fragment_trailer(&mut served, input.behind, &number);
    }

    let mut reader = GetMediaReader::new();
    reader.push(&served);
    for (i, c) in clusters.iter().enumerate() {
        let f = reader.next_fragment().expect("parses").expect("complete");
        assert_eq!(f.fragment_number, Some(i.to_string()));
        assert_eq!(f.server_timestamp_ms, Some(input.server_ms));
        assert_eq!(f.millis_behind_now, Some(input.behind));
        assert_eq!(f.cluster.as_ref(), Some(*c));
        let served_tags: Vec<SimpleTag> = input.clusters[i]
            .2
            .iter()
            .filter(|t| !aws_tags::GETMEDIA_RESERVED.contains(&t.name.as_str()))
            .cloned()
            .collect();
        assert_eq!(f.user_tags, served_tags);
        assert_eq!(f.header.as_ref(), Some(header));
    }
    assert_eq!(reader.finish(), Ok(None));
});
