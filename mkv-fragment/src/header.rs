//! Interpreting the EBML header, Info and Tracks.
//!
//! Why: the server needs the DocType to reject non-Matroska uploads, the TimecodeScale to turn
//! cluster timecodes into producer timestamps, and the track list (codec, CodecPrivate, sizes)
//! for HLS/DASH and for the "frames missing for track" checks. Everything else in these elements
//! is kept byte-exact in `SegmentHeader::raw` and not interpreted.

use crate::ebml::{Child, children, read_float, read_string, read_uint};
use crate::error::ParseError;
use crate::ids;
use crate::reader::TrackInfo;

/// Returns the DocType of an EBML header whose data starts at absolute offset `data_base`
/// (`offset` is the header element's own offset, for errors). Only `matroska` and `webm` pass.
pub(crate) fn parse_ebml_header(
    data: &[u8],
    offset: u64,
    data_base: u64,
) -> Result<String, ParseError> {
    let mut doc_type = None;
    for child in children(data, data_base, ids::EBML) {
        let child = child?;
        if child.id == ids::DOC_TYPE {
            doc_type = Some(read_string(child.data));
        }
    }
    match doc_type {
        Some(d) if d == "matroska" || d == "webm" => Ok(d),
        other => Err(ParseError::NotMatroska {
            offset,
            doc_type: other.unwrap_or_default(),
        }),
    }
}

/// Returns the TimecodeScale of an Info element (`None` if absent).
pub(crate) fn parse_info(data: &[u8], data_base: u64) -> Result<Option<u64>, ParseError> {
    let mut scale = None;
    for child in children(data, data_base, ids::INFO) {
        let child = child?;
        if child.id == ids::TIMECODE_SCALE {
            let value = read_uint(&child)?;
            if value == 0 {
                return Err(ParseError::InvalidElement {
                    offset: child.offset,
                    id: child.id,
                    reason: "TimecodeScale must not be zero",
                });
            }
            scale = Some(value);
        }
    }
    Ok(scale)
}

/// Returns the tracks of a Tracks element, in document order.
pub(crate) fn parse_tracks(data: &[u8], data_base: u64) -> Result<Vec<TrackInfo>, ParseError> {
    let mut tracks = Vec::new();
    for child in children(data, data_base, ids::TRACKS) {
        let child = child?;
        if child.id == ids::TRACK_ENTRY {
            tracks.push(parse_track_entry(&child)?);
        }
    }
    Ok(tracks)
}

fn parse_track_entry(entry: &Child<'_>) -> Result<TrackInfo, ParseError> {
    let mut track = TrackInfo::default();
    for child in children(entry.data, entry.data_base(), ids::TRACK_ENTRY) {
        let child = child?;
        match child.id {
            ids::TRACK_NUMBER => track.number = read_uint(&child)?,
            ids::TRACK_UID => track.uid = read_uint(&child)?,
            ids::TRACK_TYPE => track.track_type = read_uint(&child)?,
            ids::CODEC_ID => track.codec_id = read_string(child.data),
            ids::CODEC_PRIVATE => track.codec_private = child.data.to_vec(),
            ids::NAME => track.name = Some(read_string(child.data)),
            ids::VIDEO => {
                for v in children(child.data, child.data_base(), ids::VIDEO) {
                    let v = v?;
                    match v.id {
                        ids::PIXEL_WIDTH => track.pixel_width = Some(read_uint(&v)?),
                        ids::PIXEL_HEIGHT => track.pixel_height = Some(read_uint(&v)?),
                        _ => {}
                    }
                }
            }
            ids::AUDIO => {
                for a in children(child.data, child.data_base(), ids::AUDIO) {
                    let a = a?;
                    match a.id {
                        ids::SAMPLING_FREQUENCY => track.sampling_frequency = Some(read_float(&a)?),
                        ids::CHANNELS => track.channels = Some(read_uint(&a)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(track)
}
