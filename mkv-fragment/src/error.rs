//! Parse errors.
//!
//! Why: the server maps any of these to PutMedia ack error 4006 (INVALID_MKV_DATA) and logs the
//! byte offset, so every error says where in the stream it happened and, where one was involved,
//! which element id. Offsets count bytes from the first byte pushed into the parser.

/// Why a byte stream could not be parsed as the MKV that KVS producers send or GetMedia returns.
///
/// Errors are sticky: once a [`crate::StreamParser`] has returned one, it returns the same error
/// from every later call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An element id or size is not a valid EBML variable-length integer (a first byte of zero,
    /// or an id longer than 4 bytes).
    #[error("invalid EBML variable-length integer at byte {offset}")]
    InvalidVint {
        /// Offset of the first byte of the bad integer.
        offset: u64,
    },
    /// An element declares (or, for an unknown-size Cluster, grows to) more bytes than the
    /// parser's [`crate::ParserLimits`] allow.
    #[error("element {id:#x} at byte {offset} needs {size} bytes, more than the limit of {limit}")]
    ElementTooLarge {
        /// Offset of the element's id.
        offset: u64,
        /// The element id.
        id: u32,
        /// The declared (or accumulated) size in bytes.
        size: u64,
        /// The limit that was exceeded.
        limit: u64,
    },
    /// An element appeared where it cannot be (for example a Segment inside a Segment, or
    /// something other than an EBML header or Segment at the top level).
    #[error("unexpected element {id:#x} at byte {offset}: {context}")]
    UnexpectedElement {
        /// Offset of the element's id.
        offset: u64,
        /// The element id.
        id: u32,
        /// What was expected instead.
        context: &'static str,
    },
    /// An element is malformed in a way not covered by the other kinds: a child that overruns
    /// its parent, an unknown size where only a known size is allowed, an integer wider than 8
    /// bytes, a duplicate Cluster Timecode, a TimecodeScale of zero, nesting that is too deep.
    #[error("invalid element {id:#x} at byte {offset}: {reason}")]
    InvalidElement {
        /// Offset of the element's id.
        offset: u64,
        /// The element id.
        id: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A SimpleBlock or BlockGroup is malformed (too short for its header, bad track number,
    /// BlockGroup without a Block).
    #[error("invalid block {id:#x} at byte {offset}: {reason}")]
    InvalidBlock {
        /// Offset of the block element's id.
        offset: u64,
        /// The element id (SimpleBlock 0xA3, BlockGroup 0xA0 or Block 0xA1).
        id: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Cluster has a block before its Timecode element, or ends without one.
    #[error("cluster at byte {offset} has no Timecode before its first block or before its end")]
    MissingClusterTimecode {
        /// Offset of the Cluster's id.
        offset: u64,
    },
    /// The input ended inside an element (reported by `finish`).
    #[error("input ended inside element {id:?} that starts at byte {offset}")]
    Truncated {
        /// Offset of the element that was cut short.
        offset: u64,
        /// Its id, if at least the id had arrived.
        id: Option<u32>,
    },
    /// The EBML header's DocType is neither `matroska` nor `webm`.
    #[error("EBML header at byte {offset} has DocType {doc_type:?}, not matroska or webm")]
    NotMatroska {
        /// Offset of the EBML header.
        offset: u64,
        /// The DocType found (empty if there was none).
        doc_type: String,
    },
}

impl ParseError {
    /// Byte offset in the stream where the problem was found.
    pub fn offset(&self) -> u64 {
        match self {
            ParseError::InvalidVint { offset }
            | ParseError::ElementTooLarge { offset, .. }
            | ParseError::UnexpectedElement { offset, .. }
            | ParseError::InvalidElement { offset, .. }
            | ParseError::InvalidBlock { offset, .. }
            | ParseError::MissingClusterTimecode { offset }
            | ParseError::Truncated { offset, .. }
            | ParseError::NotMatroska { offset, .. } => *offset,
        }
    }

    /// The element id involved, if any.
    pub fn element_id(&self) -> Option<u32> {
        match self {
            ParseError::ElementTooLarge { id, .. }
            | ParseError::UnexpectedElement { id, .. }
            | ParseError::InvalidElement { id, .. }
            | ParseError::InvalidBlock { id, .. } => Some(*id),
            ParseError::MissingClusterTimecode { .. } => Some(crate::ids::CLUSTER),
            ParseError::NotMatroska { .. } => Some(crate::ids::EBML),
            ParseError::Truncated { id, .. } => *id,
            ParseError::InvalidVint { .. } => None,
        }
    }
}
