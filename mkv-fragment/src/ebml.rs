//! Walking the children of a master element that is already in memory, and decoding values.
//!
//! Why: the small level-1 elements (EBML header, Info, Tracks, Tags) and the blocks of a Cluster
//! are buffered whole before they are interpreted, so their children can be walked over a slice.
//! Every size is checked against the parent, so a corrupt size can never index out of bounds.

use crate::error::ParseError;
use crate::vint::{Vint, read_id, read_size};

/// One child element of an in-memory master element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child<'a> {
    /// Element id.
    pub id: u32,
    /// Absolute stream offset of the child's id.
    pub offset: u64,
    /// Offset of the child's data inside the parent's data slice.
    pub data_start: usize,
    /// The child's data (after id and size).
    pub data: &'a [u8],
    /// Length of the child's id and size fields.
    pub header_len: usize,
}

impl Child<'_> {
    /// Absolute stream offset of the child's first data byte.
    pub(crate) fn data_base(&self) -> u64 {
        self.offset.saturating_add(self.header_len as u64)
    }
}

/// Iterator over the children of a master element's data. Stops after the first error.
pub(crate) struct Children<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    parent_id: u32,
}

/// Iterates over the children in `data`, whose first byte is at absolute offset `base`.
pub(crate) fn children(data: &[u8], base: u64, parent_id: u32) -> Children<'_> {
    Children {
        data,
        pos: 0,
        base,
        parent_id,
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Child<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let result = self.parse_one(rest);
        match &result {
            Ok(child) => self.pos = child.data_start.saturating_add(child.data.len()),
            Err(_) => self.pos = self.data.len(),
        }
        Some(result)
    }
}

impl<'a> Children<'a> {
    fn parse_one(&self, rest: &'a [u8]) -> Result<Child<'a>, ParseError> {
        let offset = self.base.saturating_add(self.pos as u64);
        let overrun = ParseError::InvalidElement {
            offset,
            id: self.parent_id,
            reason: "a child element overruns its parent",
        };
        let (id, id_len) = match read_id(rest) {
            Vint::Complete(id, len) => (id, len),
            Vint::Incomplete => return Err(overrun),
            Vint::Invalid => return Err(ParseError::InvalidVint { offset }),
        };
        let after_id = rest.get(id_len..).unwrap_or_default();
        let (size, size_len) = match read_size(after_id) {
            Vint::Complete(size, len) => (size, len),
            Vint::Incomplete => return Err(overrun),
            Vint::Invalid => {
                return Err(ParseError::InvalidVint {
                    offset: offset.saturating_add(id_len as u64),
                });
            }
        };
        let Some(size) = size else {
            return Err(ParseError::InvalidElement {
                offset,
                id,
                reason: "unknown size is only allowed for Segment and Cluster",
            });
        };
        let header_len = id_len + size_len;
        let data = usize::try_from(size)
            .ok()
            .and_then(|size| rest.get(header_len..header_len.checked_add(size)?))
            .ok_or(ParseError::InvalidElement {
                offset,
                id,
                reason: "element overruns its parent",
            })?;
        Ok(Child {
            id,
            offset,
            data_start: self.pos + header_len,
            data,
            header_len,
        })
    }
}

/// Decodes an unsigned integer element (0-8 bytes, big-endian).
pub(crate) fn read_uint(child: &Child<'_>) -> Result<u64, ParseError> {
    if child.data.len() > 8 {
        return Err(ParseError::InvalidElement {
            offset: child.offset,
            id: child.id,
            reason: "unsigned integer wider than 8 bytes",
        });
    }
    Ok(child
        .data
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Decodes a float element (0, 4 or 8 bytes).
pub(crate) fn read_float(child: &Child<'_>) -> Result<f64, ParseError> {
    match child.data.len() {
        0 => Ok(0.0),
        4 => {
            let mut b = [0u8; 4];
            b.copy_from_slice(child.data);
            Ok(f64::from(f32::from_be_bytes(b)))
        }
        8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(child.data);
            Ok(f64::from_be_bytes(b))
        }
        _ => Err(ParseError::InvalidElement {
            offset: child.offset,
            id: child.id,
            reason: "float must be 0, 4 or 8 bytes",
        }),
    }
}

/// Decodes a string element: EBML strings may be padded with zero bytes, so the value ends at the
/// first zero byte (the old producer SDK writes DocType `matroska\0`). Invalid UTF-8 is replaced
/// with U+FFFD rather than rejected.
pub(crate) fn read_string(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(data.get(..end).unwrap_or_default()).into_owned()
}
