//! Writing EBML elements, and a producer-style MKV writer.
//!
//! Why: the GetMedia side re-emits fragments, the camera agent must send what kvssink sends
//! (so the real AWS service and our server accept it alike), and the tests need streams shaped
//! like real producer output. [`ProducerWriter`] reproduces the byte templates of the producer
//! SDK's MKV generator (PIC `MkvStatics.c`): EBML header of 35 bytes with DocType `matroska`
//! version 2, Segment and Clusters of unknown size `0xFF`, Info with a 2-byte size, Tracks and
//! TrackEntry with 4-byte sizes, an 8-byte Cluster Timecode, Position 0, SimpleBlocks and Tags
//! with 8-byte sizes.
//!
//! Writers take `&mut Vec<u8>` and only append. Sizes come from in-memory lengths, so the only
//! panic is for a size beyond 2^56 - 2 bytes, which no in-memory buffer can reach.

use crate::ids;
use crate::tags::{SimpleTag, aws_tags};
use crate::vint::{MAX_KNOWN_SIZE, min_size_width};

/// Appends an element id (as written in the specification, marker bits included).
pub fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends an element size. `None` writes the unknown size (all data bits set) at `width`
/// bytes. `width` is 1..=8 bytes; 0 means the smallest width that fits. A known size that does
/// not fit in `width` is written with the smallest width that fits instead.
///
/// # Panics
/// If `size` is larger than 2^56 - 2 (not representable as an EBML size).
pub fn write_size(out: &mut Vec<u8>, size: Option<u64>, width: usize) {
    let width = width.min(8);
    match size {
        None => {
            let width = width.max(1);
            // Marker bit followed by all ones: 0xFF, 0x7F 0xFF, ..., 0x01 0xFF*7.
            let value = ((1u64 << (7 * width)) - 1) | (1u64 << (7 * width));
            out.extend_from_slice(&value.to_be_bytes()[8 - width..]);
        }
        Some(size) => {
            assert!(size <= MAX_KNOWN_SIZE, "EBML size {size} is too large");
            let width = width.max(min_size_width(size));
            let value = size | (1u64 << (7 * width));
            out.extend_from_slice(&value.to_be_bytes()[8 - width..]);
        }
    }
}

/// Appends a complete element with binary data and a minimal-width size.
pub fn write_binary_element(out: &mut Vec<u8>, id: u32, data: &[u8]) {
    write_binary_element_width(out, id, data, 0);
}

/// Appends a complete element with binary data and a size of the given width.
pub fn write_binary_element_width(out: &mut Vec<u8>, id: u32, data: &[u8], size_width: usize) {
    write_id(out, id);
    write_size(out, Some(data.len() as u64), size_width);
    out.extend_from_slice(data);
}

/// Appends an unsigned integer element in as few bytes as possible (at least one).
pub fn write_uint_element(out: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    write_binary_element(out, id, &bytes[skip..]);
}

/// Appends an unsigned integer element in exactly `width` bytes (1..=8), as producers do for
/// fields they patch in place (the Cluster Timecode is 8 bytes). A value that does not fit is
/// written in as many bytes as it needs.
pub fn write_uint_element_width(out: &mut Vec<u8>, id: u32, value: u64, width: usize) {
    let bytes = value.to_be_bytes();
    let needed = 8 - bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let width = width.clamp(needed, 8);
    write_binary_element(out, id, &bytes[8 - width..]);
}

/// Appends a UTF-8 string element.
pub fn write_string_element(out: &mut Vec<u8>, id: u32, value: &str) {
    write_binary_element(out, id, value.as_bytes());
}

/// Appends a float element as an 8-byte IEEE 754 double.
pub fn write_float_element(out: &mut Vec<u8>, id: u32, value: f64) {
    write_binary_element(out, id, &value.to_be_bytes());
}

/// Appends a master element whose children are written by `children`, with a size of the
/// given width (0 = minimal).
pub fn write_master_element(
    out: &mut Vec<u8>,
    id: u32,
    size_width: usize,
    children: impl FnOnce(&mut Vec<u8>),
) {
    let mut body = Vec::new();
    children(&mut body);
    write_binary_element_width(out, id, &body, size_width);
}

/// Appends a level-1 Tags element holding one Tag with the given SimpleTags (TagName and
/// TagString each), all sizes minimal. No Targets element, as AWS writes it.
pub fn write_tags(out: &mut Vec<u8>, tags: &[SimpleTag]) {
    write_tags_width(out, tags, 0);
}

/// Like [`write_tags`], with every size field `size_width` bytes wide (kvssink uses 8, GetMedia
/// uses 4).
pub fn write_tags_width(out: &mut Vec<u8>, tags: &[SimpleTag], size_width: usize) {
    write_master_element(out, ids::TAGS, size_width, |out| {
        write_master_element(out, ids::TAG, size_width, |out| {
            for tag in tags {
                write_master_element(out, ids::SIMPLE_TAG, size_width, |out| {
                    write_binary_element_width(out, ids::TAG_NAME, tag.name.as_bytes(), size_width);
                    write_binary_element_width(
                        out,
                        ids::TAG_STRING,
                        tag.value.as_bytes(),
                        size_width,
                    );
                });
            }
        });
    });
}

/// Appends an EBML header with DocType `matroska` and the given DocTypeVersion (DocTypeReadVersion
/// 2), sizes of one byte, like the producer SDK's template.
pub fn write_ebml_header(out: &mut Vec<u8>, doc_type_version: u64) {
    write_master_element(out, ids::EBML, 1, |out| {
        write_uint_element(out, ids::EBML_VERSION, 1);
        write_uint_element(out, ids::EBML_READ_VERSION, 1);
        write_uint_element(out, ids::EBML_MAX_ID_LENGTH, 4);
        write_uint_element(out, ids::EBML_MAX_SIZE_LENGTH, 8);
        write_string_element(out, ids::DOC_TYPE, "matroska");
        write_uint_element(out, ids::DOC_TYPE_VERSION, doc_type_version);
        write_uint_element(out, ids::DOC_TYPE_READ_VERSION, 2);
    });
}

/// Segment information written by [`ProducerWriter::header`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// TimecodeScale in nanoseconds (the SDK uses 1,000,000: millisecond timecodes).
    pub timecode_scale_ns: u64,
    /// Title (the SDK writes `Kinesis Video SDK`).
    pub title: String,
    /// MuxingApp.
    pub muxing_app: String,
    /// WritingApp.
    pub writing_app: String,
}

impl Default for SegmentInfo {
    fn default() -> Self {
        SegmentInfo {
            timecode_scale_ns: 1_000_000,
            title: "Kinesis Video SDK".into(),
            muxing_app: "Kinesis Video SDK".into(),
            writing_app: "Kinesis Video SDK".into(),
        }
    }
}

/// A track to declare in [`ProducerWriter::header`]: the same fields the parser reports, so a
/// parsed header compares equal to what was written. `pixel_width`/`pixel_height` produce a
/// Video element, `sampling_frequency`/`channels` an Audio element; `name` and a non-empty
/// `codec_private` are written when present.
pub type TrackSpec = crate::reader::TrackInfo;

/// One frame for [`ProducerWriter::cluster`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Track number.
    pub track: u64,
    /// Timecode relative to the Cluster Timecode, in TimecodeScale units.
    pub relative_timecode: i16,
    /// Key frame flag (SimpleBlock flag 0x80).
    pub keyframe: bool,
    /// Frame payload (AVCC for H.264, as the SDK sends it).
    pub data: &'a [u8],
}

/// Writes the MKV stream a kvssink producer sends to PutMedia.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerWriter {
    info: SegmentInfo,
    tracks: Vec<TrackSpec>,
}

impl ProducerWriter {
    /// A writer for one session's header and clusters.
    pub fn new(segment_info: SegmentInfo, tracks: Vec<TrackSpec>) -> Self {
        ProducerWriter {
            info: segment_info,
            tracks,
        }
    }

    /// Appends the session start: EBML header (DocType `matroska`, DocTypeVersion and
    /// DocTypeReadVersion 2), a Segment of unknown size `0xFF`, Info and Tracks.
    pub fn header(&self, out: &mut Vec<u8>) {
        write_ebml_header(out, 2);
        write_id(out, ids::SEGMENT);
        write_size(out, None, 1);
        out.extend_from_slice(&self.header_elements());
    }

    /// The Info and Tracks elements alone: what the parser reports as `SegmentHeader::raw`.
    pub fn header_elements(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_master_element(&mut out, ids::INFO, 2, |out| {
            write_uint_element_width(out, ids::TIMECODE_SCALE, self.info.timecode_scale_ns, 8);
            write_string_element(out, ids::TITLE, &self.info.title);
            write_string_element(out, ids::MUXING_APP, &self.info.muxing_app);
            write_string_element(out, ids::WRITING_APP, &self.info.writing_app);
        });
        write_master_element(&mut out, ids::TRACKS, 4, |out| {
            for track in &self.tracks {
                write_track_entry(out, track);
            }
        });
        out
    }

    /// Appends one Cluster of unknown size: Timecode (8 bytes), Position 0, then one SimpleBlock
    /// per frame with an 8-byte size.
    pub fn cluster(&self, out: &mut Vec<u8>, timecode: u64, frames: &[Frame<'_>]) {
        Self::cluster_start(out, timecode);
        for frame in frames {
            Self::simple_block(out, frame);
        }
    }

    /// Appends the start of a Cluster of unknown size (Timecode in 8 bytes, Position 0). A
    /// producer that streams frames as they are captured writes this, then one
    /// [`simple_block`](Self::simple_block) per frame; the next Cluster or Tags ends it.
    pub fn cluster_start(out: &mut Vec<u8>, timecode: u64) {
        write_id(out, ids::CLUSTER);
        write_size(out, None, 1);
        write_uint_element_width(out, ids::TIMECODE, timecode, 8);
        write_uint_element(out, ids::POSITION, 0);
    }

    /// Appends one SimpleBlock with an 8-byte size, as the SDK writes frames.
    pub fn simple_block(out: &mut Vec<u8>, frame: &Frame<'_>) {
        write_id(out, ids::SIMPLE_BLOCK);
        let header_len = min_size_width(frame.track) + 3;
        write_size(out, Some((header_len + frame.data.len()) as u64), 8);
        write_size(out, Some(frame.track), 0);
        out.extend_from_slice(&frame.relative_timecode.to_be_bytes());
        out.push(if frame.keyframe { 0x80 } else { 0x00 });
        out.extend_from_slice(frame.data);
    }

    /// Appends a level-1 Tags element with the given SimpleTags, 8-byte sizes as the SDK writes
    /// them. Producers put fragment metadata right before the Cluster it belongs to.
    pub fn tags(out: &mut Vec<u8>, tags: &[SimpleTag]) {
        write_tags_width(out, tags, 8);
    }

    /// Appends the Tags element with `AWS_KINESISVIDEO_END_OF_FRAGMENT` and an empty value that
    /// the SDK sends after the last Cluster of a stream.
    pub fn end_of_fragment(out: &mut Vec<u8>) {
        Self::tags(out, &[SimpleTag::new(aws_tags::END_OF_FRAGMENT, "")]);
    }
}

fn write_track_entry(out: &mut Vec<u8>, track: &TrackSpec) {
    write_master_element(out, ids::TRACK_ENTRY, 4, |out| {
        write_uint_element(out, ids::TRACK_NUMBER, track.number);
        write_uint_element_width(out, ids::TRACK_UID, track.uid, 8);
        write_uint_element(out, ids::TRACK_TYPE, track.track_type);
        if let Some(name) = &track.name {
            write_string_element(out, ids::NAME, name);
        }
        write_string_element(out, ids::CODEC_ID, &track.codec_id);
        if track.pixel_width.is_some() || track.pixel_height.is_some() {
            write_master_element(out, ids::VIDEO, 4, |out| {
                if let Some(w) = track.pixel_width {
                    write_uint_element_width(out, ids::PIXEL_WIDTH, w, 2);
                }
                if let Some(h) = track.pixel_height {
                    write_uint_element_width(out, ids::PIXEL_HEIGHT, h, 2);
                }
            });
        }
        if track.sampling_frequency.is_some() || track.channels.is_some() {
            write_master_element(out, ids::AUDIO, 4, |out| {
                if let Some(f) = track.sampling_frequency {
                    write_float_element(out, ids::SAMPLING_FREQUENCY, f);
                }
                if let Some(c) = track.channels {
                    write_uint_element(out, ids::CHANNELS, c);
                }
            });
        }
        if !track.codec_private.is_empty() {
            write_binary_element(out, ids::CODEC_PRIVATE, &track.codec_private);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_at_fixed_widths() {
        let mut out = Vec::new();
        write_size(&mut out, None, 1);
        write_size(&mut out, None, 8);
        write_size(&mut out, Some(5), 8);
        write_size(&mut out, Some(0x56), 4);
        write_size(&mut out, Some(200), 1); // does not fit in 1 byte: grows to 2
        write_size(&mut out, Some(127), 0); // 127 in 1 byte would read as "unknown"
        assert_eq!(
            out,
            [
                0xFF, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0, 0, 0, 0, 5,
                0x10, 0, 0, 0x56, 0x40, 200, 0x40, 127
            ]
        );
    }

    #[test]
    fn ids_keep_their_width() {
        let mut out = Vec::new();
        write_id(&mut out, ids::EBML);
        write_id(&mut out, ids::SIMPLE_BLOCK);
        write_id(&mut out, ids::TIMECODE_SCALE);
        write_id(&mut out, ids::TAG_NAME);
        assert_eq!(
            out,
            [0x1A, 0x45, 0xDF, 0xA3, 0xA3, 0x2A, 0xD7, 0xB1, 0x45, 0xA3]
        );
    }

    #[test]
    fn uints() {
        let mut out = Vec::new();
        write_uint_element(&mut out, ids::POSITION, 0);
        write_uint_element(&mut out, ids::TRACK_NUMBER, 0x1234);
        write_uint_element_width(&mut out, ids::TIMECODE, 5, 8);
        write_uint_element_width(&mut out, ids::PIXEL_WIDTH, 0x1_0000, 2);
        assert_eq!(
            out,
            [
                0xA7, 0x81, 0x00, 0xD7, 0x82, 0x12, 0x34, 0xE7, 0x88, 0, 0, 0, 0, 0, 0, 0, 5, 0xB0,
                0x83, 1, 0, 0
            ]
        );
    }

    #[test]
    fn ebml_header_matches_the_sdk_template() {
        // gMkvHeaderBits from the producer SDK (PIC MkvStatics.c).
        let sdk: [u8; 40] = [
            0x1A, 0x45, 0xDF, 0xA3, 0xA3, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42,
            0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x88, 0x6D, 0x61, 0x74, 0x72,
            0x6F, 0x73, 0x6B, 0x61, 0x42, 0x87, 0x81, 0x02, 0x42, 0x85, 0x81, 0x02,
        ];
        let mut out = Vec::new();
        ProducerWriter::new(SegmentInfo::default(), Vec::new()).header(&mut out);
        assert_eq!(&out[..40], &sdk);
        assert_eq!(&out[40..45], &[0x18, 0x53, 0x80, 0x67, 0xFF]);
        // Info with a 2-byte size, as the SDK template.
        assert_eq!(&out[45..49], &[0x15, 0x49, 0xA9, 0x66]);
        assert_eq!(out[49] & 0xC0, 0x40);
    }

    #[test]
    fn cluster_and_blocks_match_the_sdk_template() {
        let mut out = Vec::new();
        let w = ProducerWriter::new(SegmentInfo::default(), Vec::new());
        w.cluster(
            &mut out,
            0x0102,
            &[Frame {
                track: 1,
                relative_timecode: -2,
                keyframe: true,
                data: b"xy",
            }],
        );
        let expected: Vec<u8> = [
            &[0x1F, 0x43, 0xB6, 0x75, 0xFF][..],
            &[0xE7, 0x88, 0, 0, 0, 0, 0, 0, 0x01, 0x02],
            &[0xA7, 0x81, 0x00],
            &[
                0xA3, 0x01, 0, 0, 0, 0, 0, 0, 6, 0x81, 0xFF, 0xFE, 0x80, b'x', b'y',
            ],
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn end_of_fragment_tags_match_the_sdk_layout() {
        let mut out = Vec::new();
        ProducerWriter::end_of_fragment(&mut out);
        let name = aws_tags::END_OF_FRAGMENT.as_bytes();
        let simple_data = (2 + 8 + name.len()) + (2 + 8);
        let tag_data = 2 + 8 + simple_data;
        let tags_data = 2 + 8 + tag_data;
        let mut expected = vec![
            0x12,
            0x54,
            0xC3,
            0x67,
            0x01,
            0,
            0,
            0,
            0,
            0,
            0,
            tags_data as u8,
        ];
        expected.extend_from_slice(&[0x73, 0x73, 0x01, 0, 0, 0, 0, 0, 0, tag_data as u8]);
        expected.extend_from_slice(&[0x67, 0xC8, 0x01, 0, 0, 0, 0, 0, 0, simple_data as u8]);
        expected.extend_from_slice(&[0x45, 0xA3, 0x01, 0, 0, 0, 0, 0, 0, name.len() as u8]);
        expected.extend_from_slice(name);
        expected.extend_from_slice(&[0x44, 0x87, 0x01, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(out, expected);
    }
}
