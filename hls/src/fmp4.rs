//! Fragmented MP4 (CMAF-style) for HLS (`getMP4InitFragment.mp4`, `getMP4MediaFragment.mp4`),
//! LL-HLS parts, DASH and GetClip.
//!
//! The boxes are encoded with `mp4-atom`; only the `mdat` header is written here, so frames are
//! copied once, straight into the output.
//!
//! Timeline: a frame at `t` ms is at `(t - timeline_origin_ms) * timescale / 1000` ticks
//! ([`ticks`]). Every writer takes the same `timeline_origin_ms`, so segments produced by
//! separate requests line up when the caller passes the same origin: 0 keeps the producer's
//! absolute timestamps (ms since the epoch, which fit easily in the 64-bit `tfdt`), or the
//! timecode of the first fragment of a playback session starts that session's timeline at 0.

use mp4_atom::{
    Avc1, Codec, Dinf, Dref, Encode, FourCC, Ftyp, Hdlr, Mdhd, Mdia, Mehd, Mfhd, Minf, Moof, Moov,
    Mvex, Mvhd, Stbl, Stco, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry, Url, Visual,
    Vmhd,
};

use crate::error::HlsError;
use crate::fragment::{Fragment, Sample, VideoTrack};

/// `trun` sample flags of a sync sample: sample_depends_on = 2 (does not depend on others).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `trun` sample flags of other samples: sample_depends_on = 1, sample_is_non_sync_sample.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// The track id of the video track in every init and media segment.
pub const TRACK_ID: u32 = 1;

/// Converts a time in milliseconds to ticks of `timescale` on the timeline that starts at
/// `origin_ms` (times before the origin map to 0).
pub fn ticks(ms: u64, origin_ms: u64, timescale: u32) -> u64 {
    let t = u128::from(ms.saturating_sub(origin_ms)) * u128::from(timescale) / 1000;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// The init segment (`ftyp` + `moov`) of a video track: one `avc1` track with the track's avcC,
/// empty sample tables, and `mvex`/`trex` announcing movie fragments.
pub fn init_segment(track: &VideoTrack) -> Result<Vec<u8>, HlsError> {
    build_init(track, None)
}

/// [`init_segment`], with the total duration (ms) in `mvhd` and `mehd` when it is known (a
/// clip), so players show it before reading the fragments.
pub(crate) fn build_init(
    track: &VideoTrack,
    duration_ms: Option<u64>,
) -> Result<Vec<u8>, HlsError> {
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: [b"iso6", b"isom", b"avc1", b"mp41", b"dash"]
            .into_iter()
            .map(FourCC::new)
            .collect(),
    };
    let width = u16::try_from(track.width).unwrap_or(u16::MAX);
    let height = u16::try_from(track.height).unwrap_or(u16::MAX);
    let avc1 = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width,
            height,
            ..Visual::default()
        },
        avcc: track.config.to_mp4_atom(),
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            duration: duration_ms.unwrap_or(0),
            next_track_id: TRACK_ID + 1,
            ..Mvhd::default()
        },
        mvex: Some(Mvex {
            mehd: duration_ms.map(|d| Mehd {
                fragment_duration: d,
            }),
            trex: vec![Trex {
                track_id: TRACK_ID,
                default_sample_description_index: 1,
                ..Trex::default()
            }],
        }),
        trak: vec![Trak {
            tkhd: Tkhd {
                track_id: TRACK_ID,
                enabled: true,
                in_movie: true,
                width: width.into(),
                height: height.into(),
                ..Tkhd::default()
            },
            mdia: Mdia {
                mdhd: Mdhd {
                    timescale: track.timescale,
                    language: "und".into(),
                    ..Mdhd::default()
                },
                hdlr: Hdlr {
                    handler: FourCC::new(b"vide"),
                    name: "VideoHandler".into(),
                },
                minf: Minf {
                    vmhd: Some(Vmhd::default()),
                    dinf: Dinf {
                        dref: Dref {
                            entries: vec![Url::default().into()],
                        },
                    },
                    stbl: Stbl {
                        stsd: Stsd {
                            codecs: vec![Codec::from(avc1)],
                        },
                        stco: Some(Stco::default()),
                        ..Stbl::default()
                    },
                    ..Minf::default()
                },
            },
            ..Trak::default()
        }],
        ..Moov::default()
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out)
}

/// One movie fragment (`moof` + `mdat`) holding `samples`, in decode order.
///
/// `mfhd` carries `sequence_number` (1-based, increasing along the stream: the fragment
/// number within a session works), `tfhd` uses default-base-is-moof, `tfdt` (version 1) is the
/// first sample's decode time in ticks, and `trun` has the data offset and, per sample, the
/// duration, size, sync/non-sync flags ([`SYNC_SAMPLE_FLAGS`], [`NON_SYNC_SAMPLE_FLAGS`]) and,
/// when the stream reorders frames, the composition offset. Durations are differences of tick
/// times, so rounding never accumulates.
///
/// The same writer makes HLS media segments (all samples of a fragment) and LL-HLS partial
/// segments (any run of consecutive samples; see [`part`]). Fails with [`HlsError::Empty`] for
/// no samples.
pub fn media_segment(
    track: &VideoTrack,
    samples: &[Sample],
    sequence_number: u32,
    timeline_origin_ms: u64,
) -> Result<Vec<u8>, HlsError> {
    let mut out = Vec::new();
    write_fragment(
        &mut out,
        track,
        samples,
        sequence_number,
        timeline_origin_ms,
    )?;
    Ok(out)
}

/// An LL-HLS partial segment: [`media_segment`] over a run of consecutive samples of a
/// fragment (the frames that arrived so far). Parts of one segment take increasing sequence
/// numbers; concatenated, they form a valid media segment.
pub fn part(
    track: &VideoTrack,
    samples: &[Sample],
    sequence_number: u32,
    timeline_origin_ms: u64,
) -> Result<Vec<u8>, HlsError> {
    media_segment(track, samples, sequence_number, timeline_origin_ms)
}

/// The media segment of a whole fragment: [`media_segment`] over its samples with its track.
pub fn fragment_segment(
    fragment: &Fragment,
    sequence_number: u32,
    timeline_origin_ms: u64,
) -> Result<Vec<u8>, HlsError> {
    media_segment(
        &fragment.track,
        &fragment.samples,
        sequence_number,
        timeline_origin_ms,
    )
}

/// Appends one `moof` + `mdat` to `out`.
pub(crate) fn write_fragment(
    out: &mut Vec<u8>,
    track: &VideoTrack,
    samples: &[Sample],
    sequence_number: u32,
    origin_ms: u64,
) -> Result<(), HlsError> {
    let first = samples.first().ok_or(HlsError::Empty)?;
    let scale = track.timescale;
    let reordered = samples.iter().any(|s| s.pts_ms != s.dts_ms);
    let mut entries = Vec::with_capacity(samples.len());
    let mut data_len: u64 = 0;
    for sample in samples {
        let size = u32::try_from(sample.data.len())
            .map_err(|_| HlsError::FrameTooLarge(sample.data.len()))?;
        data_len += u64::from(size);
        let start = ticks(sample.dts_ms, origin_ms, scale);
        let end = ticks(
            sample.dts_ms.saturating_add(sample.duration_ms),
            origin_ms,
            scale,
        );
        let duration = u32::try_from(end.saturating_sub(start)).unwrap_or(u32::MAX);
        let cts = reordered.then(|| {
            let pts = i128::from(ticks(sample.pts_ms, origin_ms, scale));
            let offset = pts - i128::from(start);
            i64::try_from(offset.clamp(i128::from(i32::MIN), i128::from(i32::MAX))).unwrap_or(0)
        });
        entries.push(TrunEntry {
            duration: Some(duration),
            size: Some(size),
            flags: Some(if sample.keyframe {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            }),
            cts,
        });
    }
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: TRACK_ID,
                default_base_is_moof: true,
                ..Tfhd::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: ticks(first.dts_ms, origin_ms, scale),
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: entries.into(),
            }],
            ..Traf::default()
        }],
    };
    // The data offset counts from the start of the moof to the first sample byte: encode once
    // to learn the moof's size (the offset field has a fixed width), then for real.
    let mut probe = Vec::new();
    moof.encode(&mut probe)?;
    let (mdat_header, header_len) = mdat_header(data_len);
    let offset = probe.len() as u64 + header_len;
    let offset = i32::try_from(offset).map_err(|_| HlsError::FrameTooLarge(offset as usize))?;
    if let Some(trun) = moof.traf.first_mut().and_then(|t| t.trun.first_mut()) {
        trun.data_offset = Some(offset);
    }
    out.reserve(probe.len() + mdat_header.len() + data_len as usize);
    moof.encode(out)?;
    out.extend_from_slice(&mdat_header);
    for sample in samples {
        out.extend_from_slice(&sample.data);
    }
    Ok(())
}

/// The `mdat` box header for `data_len` payload bytes (a 64-bit size when needed).
fn mdat_header(data_len: u64) -> (Vec<u8>, u64) {
    match u32::try_from(data_len + 8) {
        Ok(size) => {
            let mut h = size.to_be_bytes().to_vec();
            h.extend_from_slice(b"mdat");
            (h, 8)
        }
        Err(_) => {
            let mut h = 1u32.to_be_bytes().to_vec();
            h.extend_from_slice(b"mdat");
            h.extend_from_slice(&(data_len + 16).to_be_bytes());
            (h, 16)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mp4_atom::{Any, Decode};

    fn track() -> VideoTrack {
        let avcc = [
            1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 6, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 1, 0, 4,
            0x68, 0xCE, 0x3C, 0x80,
        ];
        VideoTrack {
            track_number: 1,
            codec_private: avcc.to_vec(),
            config: crate::avc::AvcConfig::parse(&avcc).unwrap(),
            width: 320,
            height: 240,
            timescale: crate::DEFAULT_TIMESCALE,
        }
    }

    fn sample(ms: u64, keyframe: bool, data: &'static [u8]) -> Sample {
        Sample {
            dts_ms: ms,
            pts_ms: ms,
            duration_ms: 40,
            keyframe,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn init_segment_decodes_back() {
        let init = init_segment(&track()).unwrap();
        let buf = &mut &init[..];
        let ftyp = Ftyp::decode(buf).unwrap();
        assert_eq!(ftyp.major_brand, FourCC::new(b"iso6"));
        let moov = Moov::decode(buf).unwrap();
        assert!(buf.is_empty());
        let trak = &moov.trak[0];
        assert_eq!(trak.mdia.mdhd.timescale, 90_000);
        let Codec::Avc1(avc1) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not avc1");
        };
        assert_eq!((avc1.visual.width, avc1.visual.height), (320, 240));
        assert_eq!(avc1.avcc.length_size, 4);
        assert_eq!(moov.mvex.unwrap().trex[0].track_id, TRACK_ID);
    }

    #[test]
    fn media_segment_offsets_and_flags() {
        let samples = [
            sample(10_000, true, b"key"),
            sample(10_040, false, b"delta1"),
        ];
        let seg = media_segment(&track(), &samples, 7, 9_000).unwrap();
        let buf = &mut &seg[..];
        let Any::Moof(moof) = Any::decode(buf).unwrap() else {
            panic!("not moof")
        };
        let moof_len = seg.len() - buf.len();
        assert_eq!(moof.mfhd.sequence_number, 7);
        let traf = &moof.traf[0];
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 90_000);
        let trun = &traf.trun[0];
        let offset = trun.data_offset.unwrap() as usize;
        assert_eq!(offset, moof_len + 8);
        assert_eq!(&seg[offset..offset + 3], b"key");
        assert_eq!(&seg[offset + 3..], b"delta1");
        let e: Vec<TrunEntry> = trun.samples.iter().collect();
        assert_eq!(e[0].flags, Some(SYNC_SAMPLE_FLAGS));
        assert_eq!(e[1].flags, Some(NON_SYNC_SAMPLE_FLAGS));
        assert_eq!(e[0].duration, Some(3600));
        assert_eq!(e[1].size, Some(6));
        assert_eq!(e[0].cts, None);
        assert!(matches!(
            media_segment(&track(), &[], 1, 0),
            Err(HlsError::Empty)
        ));
    }

    #[test]
    fn ticks_are_exact_for_milliseconds() {
        assert_eq!(ticks(1_700_000_000_033, 0, 90_000), 153_000_000_002_970);
        assert_eq!(ticks(5, 10, 90_000), 0);
        assert_eq!(ticks(1_033, 1_000, 1000), 33);
    }
}
