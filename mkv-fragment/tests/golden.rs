//! Golden tests over the real GetMedia captures in `shared/fixtures/kvs-getmedia/`.
//!
//! The expected JSON in `tests/golden/<fixture>.json` was produced by
//! `tests/golden/make_golden.py` from `mkvinfo` (MKVToolNix) output, not from this crate: see the
//! script's header for how chunks are split and what is extracted. Per chunk it lists the DocType,
//! the AWS tags (fragment number, server/producer timestamps in ms, millis-behind-now,
//! continuation token), the other tags in order, the header (byte length of the re-emitted header
//! elements, TimecodeScale, tracks) and the Cluster (timecode, body length, every block with its
//! track, absolute timecode, key flag, payload size and Adler-32).

mod common;

use common::{adler32, fixtures, parse_events, random_splits, read_fragments};
use mkv_fragment::{Event, GetMediaFragment};
use serde_json::{Value, json};

fn golden(name: &str) -> Value {
    let path = format!("{}/tests/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing golden file {path} ({e}); run make_golden.py"));
    serde_json::from_str(&text).expect("golden JSON")
}

/// Our view of one fragment, in the golden JSON's shape.
fn describe(f: &GetMediaFragment, doc_type: &str) -> Value {
    let header = f.header.as_ref().map(|h| {
        let tracks: Vec<Value> = h
            .tracks
            .iter()
            .map(|t| {
                let mut o = json!({
                    "number": t.number,
                    "uid": t.uid,
                    "track_type": t.track_type,
                    "codec_id": t.codec_id,
                });
                let m = o.as_object_mut().unwrap();
                if let Some(w) = t.pixel_width {
                    m.insert("pixel_width".into(), json!(w));
                }
                if let Some(h) = t.pixel_height {
                    m.insert("pixel_height".into(), json!(h));
                }
                if let Some(n) = &t.name {
                    m.insert("name".into(), json!(n));
                }
                if !t.codec_private.is_empty() {
                    m.insert("codec_private_len".into(), json!(t.codec_private.len()));
                }
                o
            })
            .collect();
        json!({
            "raw_len": h.raw.len(),
            "timecode_scale_ns": h.timecode_scale_ns,
            "tracks": tracks,
        })
    });
    let cluster = f.cluster.as_ref().map(|c| {
        let blocks: Vec<Value> = c
            .blocks
            .iter()
            .map(|b| {
                let payload = &c.body[b.data.clone()];
                json!({
                    "track": b.track,
                    "timecode": c.timecode as i64 + i64::from(b.relative_timecode),
                    "keyframe": b.keyframe,
                    "size": payload.len(),
                    "adler32": adler32(payload),
                })
            })
            .collect();
        json!({
            "timecode": c.timecode,
            "body_len": c.body.len(),
            "block_count": c.blocks.len(),
            "keyframe_count": c.blocks.iter().filter(|b| b.keyframe).count(),
            "blocks": blocks,
        })
    });
    let user_tags: Vec<Value> = f
        .user_tags
        .iter()
        .map(|t| json!([t.name, t.value]))
        .collect();
    json!({
        "doc_type": doc_type,
        "fragment_number": f.fragment_number,
        "server_timestamp_ms": f.server_timestamp_ms,
        "producer_timestamp_ms": f.producer_timestamp_ms,
        "millis_behind_now": f.millis_behind_now,
        "continuation_token": f.continuation_token,
        "error_code": f.error_code,
        "error_id": f.error_id,
        "user_tags": user_tags,
        "header": header,
        "cluster": cluster,
    })
}

#[test]
fn every_fixture_matches_its_mkvinfo_golden() {
    for (name, data) in fixtures() {
        let expected = golden(&name);
        assert_eq!(
            expected["size"].as_u64(),
            Some(data.len() as u64),
            "{name}: size"
        );
        let expected_chunks = expected["chunks"].as_array().expect("chunks");

        let (fragments, err) = read_fragments(&data, &[data.len()]);
        assert_eq!(err, None, "{name}: parse error");
        let (events, err) = parse_events(&data, &[data.len()]);
        assert_eq!(err, None, "{name}: parse error");
        let doc_types: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::EbmlHeader { doc_type } => Some(doc_type.as_str()),
                _ => None,
            })
            .collect();

        assert_eq!(
            fragments.len(),
            expected_chunks.len(),
            "{name}: number of chunks"
        );
        assert_eq!(
            doc_types.len(),
            expected_chunks.len(),
            "{name}: EBML headers"
        );
        for (i, ((f, want), doc_type)) in fragments
            .iter()
            .zip(expected_chunks)
            .zip(&doc_types)
            .enumerate()
        {
            let mut want = want.clone();
            want.as_object_mut().unwrap().remove("offset");
            let got = describe(f, doc_type);
            if got != want {
                for (key, value) in want.as_object().unwrap() {
                    assert_eq!(&got[key], value, "{name}: chunk {i}: field {key}");
                }
                panic!("{name}: chunk {i}: extra fields in {got}");
            }
        }
    }
}

#[test]
fn every_fixture_completes_each_fragment_at_its_trailer() {
    // A live reader must get each fragment as soon as its trailer Tags is in, before the next
    // chunk's first byte arrives.
    for (name, data) in fixtures() {
        let mut reader = mkv_fragment::GetMediaReader::new();
        let expected = golden(&name);
        let offsets: Vec<usize> = expected["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["offset"].as_u64().unwrap() as usize)
            .chain([data.len()])
            .collect();
        for (i, w) in offsets.windows(2).enumerate() {
            reader.push(&data[w[0]..w[1]]);
            let f = reader
                .next_fragment()
                .expect("no error")
                .unwrap_or_else(|| panic!("{name}: chunk {i} not complete at its end"));
            assert!(f.continuation_token.is_some(), "{name}: chunk {i}");
            assert_eq!(reader.next_fragment(), Ok(None), "{name}: chunk {i}");
        }
        assert_eq!(reader.finish(), Ok(None), "{name}: nothing left at the end");
    }
}

#[test]
fn every_fixture_gives_the_same_events_whatever_the_split() {
    for (name, data) in fixtures() {
        let whole = parse_events(&data, &[data.len()]);
        assert_eq!(whole.1, None, "{name}");
        let whole_fragments = read_fragments(&data, &[data.len()]);
        // Byte-by-byte on the small capture; random pieces (up to 1 KiB and up to 64 KiB) on all.
        let mut plans: Vec<Vec<usize>> = vec![
            random_splits(data.len(), 0xA5A5 ^ data.len() as u64, 1024),
            random_splits(data.len(), 0x5EED, 65536),
            random_splits(data.len(), 7, 3),
        ];
        if data.len() < 100_000 {
            plans.push(vec![1; data.len()]);
        }
        for (i, sizes) in plans.iter().enumerate() {
            assert_eq!(parse_events(&data, sizes), whole, "{name}: split plan {i}");
            assert_eq!(
                read_fragments(&data, sizes),
                whole_fragments,
                "{name}: split plan {i}"
            );
        }
    }
}

#[test]
fn fixture_header_and_cluster_bytes_are_exact_slices_of_the_capture() {
    // `raw` must be the header elements exactly as received, and `body` the cluster's children
    // exactly as received: find them in the capture.
    for (name, data) in fixtures() {
        let (fragments, _) = read_fragments(&data, &[data.len()]);
        for (i, f) in fragments.iter().enumerate() {
            let h = f.header.as_ref().expect("header");
            let c = f.cluster.as_ref().expect("cluster");
            assert!(
                data.windows(h.raw.len()).any(|w| w == h.raw.as_slice()),
                "{name}: chunk {i}: header bytes not found in the capture"
            );
            assert!(
                data.windows(c.body.len()).any(|w| w == c.body.as_slice()),
                "{name}: chunk {i}: cluster bytes not found in the capture"
            );
        }
    }
}
