//! The parser must never panic and must give the same result however the input is split, on any
//! input: arbitrary bytes, and real or written streams with bit flips, truncations, insertions,
//! deletions and overwrites, fed in random pieces, with default and with tiny limits.
//!
//! Case counts are chosen so the whole file runs in seconds in a debug build; set PROPTEST_CASES
//! to run more.

mod common;

use std::sync::OnceLock;

use common::{fixture, parse_events, read_fragments};
use mkv_fragment::getmedia::{write_error_chunk, write_fragment_prefix, write_fragment_trailer};
use mkv_fragment::{
    Event, FragmentStamp, Frame, ParseError, ParserLimits, ProducerWriter, SegmentInfo, SimpleTag,
    StreamParser, TrackSpec,
};
use proptest::prelude::*;

/// Seed corpora: a real GetMedia capture (first chunks), a kvssink-style stream and a written
/// GetMedia stream with an error chunk.
fn corpora() -> &'static [Vec<u8>] {
    static CORPORA: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPORA.get_or_init(|| {
        let real = fixture("test_mixed_tags.mkv");
        let real = real[..7095].to_vec(); // the first three chunks

        let track = TrackSpec {
            number: 1,
            uid: 1,
            track_type: 1,
            codec_id: "V_MPEG4/ISO/AVC".into(),
            codec_private: vec![1, 2, 3],
            name: None,
            pixel_width: Some(64),
            pixel_height: Some(48),
            sampling_frequency: None,
            channels: None,
        };
        let w = ProducerWriter::new(SegmentInfo::default(), vec![track]);
        let mut producer = Vec::new();
        w.header(&mut producer);
        for i in 0..3u8 {
            ProducerWriter::tags(&mut producer, &[SimpleTag::new("k", "v")]);
            let data = [i; 40];
            w.cluster(
                &mut producer,
                u64::from(i) * 1000,
                &[
                    Frame {
                        track: 1,
                        relative_timecode: 0,
                        keyframe: true,
                        data: &data,
                    },
                    Frame {
                        track: 1,
                        relative_timecode: 40,
                        keyframe: false,
                        data: &data[..7],
                    },
                ],
            );
        }
        ProducerWriter::end_of_fragment(&mut producer);

        let mut getmedia = Vec::new();
        let mut body = Vec::new();
        w.cluster(&mut body, 77, &[]);
        write_fragment_prefix(
            &mut getmedia,
            &w.header_elements(),
            &FragmentStamp {
                fragment_number: "123",
                server_timestamp_ms: 1000,
                producer_timestamp_ms: 77,
            },
            &[SimpleTag::new("user", "tag")],
            &body[5..],
        );
        write_fragment_trailer(&mut getmedia, 5, "123");
        write_error_chunk(&mut getmedia, "INTERNAL_ERROR", 5000, None);
        vec![real, producer, getmedia]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to EBML: vint markers, all-ones, zero, id starts.
    let interesting = prop_oneof![
        Just(0x00u8),
        Just(0xFF),
        Just(0x01),
        Just(0x80),
        Just(0x7F),
        Just(0x1F),
        Just(0x1A),
        Just(0x12),
        Just(0xA3),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        (any::<usize>(), interesting).prop_map(|(p, v)| Mutation::Set(p, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, v)| Mutation::Insert(p, v)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    let len = data.len();
    if len == 0 {
        return;
    }
    match m {
        Mutation::FlipBit(p, b) => data[p % len] ^= 1 << b,
        Mutation::Set(p, v) => data[p % len] = *v,
        Mutation::Insert(p, v) => {
            let p = p % (len + 1);
            data.splice(p..p, v.iter().copied());
        }
        Mutation::Delete(p, n) => {
            let p = p % len;
            let end = (p + n).min(len);
            data.drain(p..end);
        }
        Mutation::Truncate(p) => data.truncate(p % (len + 1)),
    }
}

/// Piece sizes from a list of random numbers (each piece 1..=max).
fn pieces(len: usize, seeds: &[u16], max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut done = 0;
    let mut i = 0;
    while done < len {
        let s = seeds.get(i % seeds.len().max(1)).copied().unwrap_or(1) as usize;
        let n = (1 + s % max).min(len - done);
        out.push(n);
        done += n;
        i += 1;
    }
    out
}

/// Events and error with the given limits, fed in the given pieces.
fn run_with_limits(
    data: &[u8],
    sizes: &[usize],
    limits: ParserLimits,
) -> (Vec<Event>, Option<ParseError>) {
    run_parser(StreamParser::new(limits), data, sizes)
}

/// Events and error of `p` over `data`, fed in the given pieces.
fn run_parser(
    mut p: StreamParser,
    data: &[u8],
    sizes: &[usize],
) -> (Vec<Event>, Option<ParseError>) {
    let mut events = Vec::new();
    let mut at = 0;
    for &n in sizes {
        p.push(&data[at..at + n]);
        at += n;
        loop {
            match p.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    loop {
        match p.finish() {
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

/// The invariants every input must satisfy.
fn check(data: &[u8], seeds: &[u16]) -> Result<(), TestCaseError> {
    let whole = parse_events(data, &[data.len()]);
    for max in [1usize, 7, 300] {
        let sizes = pieces(data.len(), seeds, max);
        prop_assert_eq!(&parse_events(data, &sizes), &whole, "split max {}", max);
    }
    let sizes = pieces(data.len(), seeds, 97);
    prop_assert_eq!(
        read_fragments(data, &sizes),
        read_fragments(data, &[data.len()])
    );
    // Block ranges always lie inside their cluster body.
    for e in &whole.0 {
        if let Event::Cluster(c) = e {
            for b in &c.blocks {
                prop_assert!(b.data.start <= b.data.end && b.data.end <= c.body.len());
            }
        }
    }
    // Block events: the same events besides them, and each payload is its block's bytes.
    let with_blocks = run_parser(
        StreamParser::default().with_block_events(),
        data,
        &pieces(data.len(), seeds, 7),
    );
    let (blocks, others): (Vec<Event>, Vec<Event>) = with_blocks
        .0
        .into_iter()
        .partition(|e| matches!(e, Event::ClusterBlock { .. }));
    prop_assert_eq!(&(others, with_blocks.1), &whole);
    let mut expected = Vec::new();
    for e in &whole.0 {
        if let Event::Cluster(c) = e {
            expected.extend(c.blocks.iter().map(|b| c.body[b.data.clone()].to_vec()));
        }
    }
    let payloads: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter_map(|e| match e {
            Event::ClusterBlock { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    // A stream may end inside a Cluster (error), so blocks may outnumber complete clusters.
    prop_assert!(payloads.len() >= expected.len());
    prop_assert_eq!(&payloads[..expected.len()], &expected[..]);
    // Tiny limits exercise the size checks; still split-independent.
    let tiny = ParserLimits {
        max_element_size: 200,
        max_header_size: 120,
    };
    let a = run_with_limits(data, &[data.len()], tiny);
    let b = run_with_limits(data, &pieces(data.len(), seeds, 13), tiny);
    prop_assert_eq!(a, b);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic_and_do_not_depend_on_the_split(
        data in prop::collection::vec(any::<u8>(), 0..512),
        seeds in prop::collection::vec(any::<u16>(), 1..32),
    ) {
        check(&data, &seeds)?;
    }

    #[test]
    fn ebml_looking_bytes_never_panic(
        // Streams that start like MKV, so the parser gets past the first element.
        prefix in 0usize..3,
        tail in prop::collection::vec(
            prop_oneof![
                Just(vec![0x1F, 0x43, 0xB6, 0x75, 0xFF]),
                Just(vec![0x12, 0x54, 0xC3, 0x67]),
                Just(vec![0xE7, 0x81, 0x05]),
                Just(vec![0xA3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x00]),
                Just(vec![0xA0]),
                Just(vec![0x73, 0x73]),
                Just(vec![0x67, 0xC8]),
                Just(vec![0x1A, 0x45, 0xDF, 0xA3]),
                prop::collection::vec(any::<u8>(), 1..8),
            ],
            0..40,
        ),
        seeds in prop::collection::vec(any::<u16>(), 1..16),
    ) {
        let mut data = corpora()[1][..[0, 40, 45][prefix]].to_vec();
        data.extend(tail.into_iter().flatten());
        check(&data, &seeds)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn mutated_streams_never_panic_and_do_not_depend_on_the_split(
        corpus in 0usize..3,
        mutations in prop::collection::vec(mutation(), 1..8),
        seeds in prop::collection::vec(any::<u16>(), 1..32),
    ) {
        let mut data = corpora()[corpus].clone();
        for m in &mutations {
            apply(&mut data, m);
        }
        check(&data, &seeds)?;
    }
}

#[test]
fn the_large_real_captures_survive_mutation() {
    // Few, but on the full-size captures (big SimpleBlocks, CRC-32, Cues).
    let mut rng = common::Rng(0x1234_5678);
    for name in [
        "output_get_media.mkv",
        "output_get_media_sparse_fragments.mkv",
    ] {
        let original = fixture(name);
        for _ in 0..6 {
            let mut data = original.clone();
            for _ in 0..4 {
                let at = rng.below(data.len() as u64) as usize;
                match rng.below(3) {
                    0 => data[at] ^= 1 << rng.below(8),
                    1 => data.truncate(at),
                    _ => {
                        data.drain(at..(at + 1 + rng.below(32) as usize).min(data.len()));
                    }
                }
                if data.is_empty() {
                    break;
                }
            }
            let whole = parse_events(&data, &[data.len()]);
            let split = parse_events(&data, &common::random_splits(data.len(), rng.next(), 5000));
            assert_eq!(whole, split, "{name}");
            let _ = read_fragments(&data, &common::random_splits(data.len(), rng.next(), 777));
        }
    }
}
