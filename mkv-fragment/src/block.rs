//! Interpreting SimpleBlock and BlockGroup elements of a Cluster.
//!
//! Why: the server needs, per frame, the track, the timecode relative to the cluster, the key
//! frame flag and where the payload is (HLS/DASH packaging, "frames missing for track" checks),
//! while the Cluster bytes themselves are kept as received. Lacing is not undone: the whole
//! payload after the block header is reported.

use crate::ebml::{Child, children, read_uint};
use crate::error::ParseError;
use crate::ids;
use crate::reader::Block;
use crate::vint::{Vint, read_vint_value};

/// Parses a SimpleBlock. `body_pos` is where the block's data starts inside `Cluster::body`.
pub(crate) fn parse_simple_block(child: &Child<'_>, body_pos: usize) -> Result<Block, ParseError> {
    let (track, relative_timecode, flags, header_len) = block_header(child)?;
    Ok(Block {
        track,
        relative_timecode,
        keyframe: flags & 0x80 != 0,
        data: payload_range(child, body_pos, header_len)?,
        duration: None,
    })
}

/// Parses a BlockGroup: its Block, BlockDuration and whether a ReferenceBlock is present (no
/// ReferenceBlock = key frame). `body_pos` is where the group's data starts inside the body.
pub(crate) fn parse_block_group(group: &Child<'_>, body_pos: usize) -> Result<Block, ParseError> {
    let mut block = None;
    let mut duration = None;
    let mut referenced = false;
    for child in children(group.data, group.data_base(), ids::BLOCK_GROUP) {
        let child = child?;
        match child.id {
            ids::BLOCK => {
                if block.is_some() {
                    return Err(invalid(&child, "BlockGroup has more than one Block"));
                }
                let (track, relative_timecode, _flags, header_len) = block_header(&child)?;
                let pos = body_pos.saturating_add(child.data_start);
                block = Some((
                    track,
                    relative_timecode,
                    payload_range(&child, pos, header_len)?,
                ));
            }
            ids::BLOCK_DURATION => duration = Some(read_uint(&child)?),
            ids::REFERENCE_BLOCK => referenced = true,
            _ => {}
        }
    }
    let (track, relative_timecode, data) =
        block.ok_or_else(|| invalid(group, "BlockGroup without a Block"))?;
    Ok(Block {
        track,
        relative_timecode,
        keyframe: !referenced,
        data,
        duration,
    })
}

fn invalid(child: &Child<'_>, reason: &'static str) -> ParseError {
    ParseError::InvalidBlock {
        offset: child.offset,
        id: child.id,
        reason,
    }
}

/// Track number, relative timecode, flags and header length of a (Simple)Block.
fn block_header(child: &Child<'_>) -> Result<(u64, i16, u8, usize), ParseError> {
    let (track, track_len) = match read_vint_value(child.data) {
        Vint::Complete((track, _), len) => (track, len),
        Vint::Incomplete => return Err(invalid(child, "block too short for its track number")),
        Vint::Invalid => return Err(invalid(child, "invalid block track number")),
    };
    let rest = child.data.get(track_len..).unwrap_or_default();
    let [t0, t1, flags, ..] = *rest else {
        return Err(invalid(child, "block too short for its timecode and flags"));
    };
    Ok((track, i16::from_be_bytes([t0, t1]), flags, track_len + 3))
}

fn payload_range(
    child: &Child<'_>,
    body_pos: usize,
    header_len: usize,
) -> Result<std::ops::Range<usize>, ParseError> {
    let start = body_pos.checked_add(header_len);
    let end = body_pos.checked_add(child.data.len());
    match (start, end) {
        (Some(start), Some(end)) if start <= end => Ok(start..end),
        _ => Err(invalid(child, "block payload out of range")),
    }
}
