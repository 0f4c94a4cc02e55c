//! Sans-IO Matroska (MKV) fragment codec for a Kinesis Video Streams compatible server.
//!
//! Why this crate exists: the ingest side must read the MKV that AWS producers (kvssink, the C/C++
//! producer SDKs) stream into PutMedia, one Cluster per fragment, and the read side must emit the
//! exact chunk layout that GetMedia returns so that unmodified AWS consumers (notably the Java
//! parser library's `FragmentMetadataVisitor`) work against us. Everything here is pure byte
//! manipulation: no I/O, no async runtime, no allocation driven by untrusted size fields.
//!
//! * [`StreamParser`] is an incremental push parser over one byte stream (a PutMedia body or a
//!   GetMedia response). It yields [`Event`]s and never panics on any input.
//! * [`getmedia`] writes GetMedia chunks ([`getmedia::write_fragment_prefix`],
//!   [`getmedia::write_fragment_trailer`], [`getmedia::write_error_chunk`]) and reads them back
//!   ([`getmedia::GetMediaReader`]).
//! * [`writer`] has the EBML primitives and [`writer::ProducerWriter`], which writes the MKV a
//!   kvssink producer sends.
//! * [`tags`] has [`SimpleTag`], the AWS tag names and the timestamp format of GetMedia tags.
//!
//! ```
//! use mkv_fragment::{Event, Frame, ProducerWriter, SegmentInfo, StreamParser, TrackSpec};
//!
//! // What a camera sends...
//! let track = TrackSpec {
//!     number: 1,
//!     uid: 1,
//!     track_type: 1,
//!     codec_id: "V_MPEG4/ISO/AVC".into(),
//!     pixel_width: Some(640),
//!     pixel_height: Some(480),
//!     ..TrackSpec::default()
//! };
//! let writer = ProducerWriter::new(SegmentInfo::default(), vec![track]);
//! let mut body = Vec::new();
//! writer.header(&mut body);
//! let frame = Frame { track: 1, relative_timecode: 0, keyframe: true, data: b"idr" };
//! writer.cluster(&mut body, 1_700_000_000_000, &[frame]);
//! ProducerWriter::end_of_fragment(&mut body);
//!
//! // ...and what the server sees, whatever the network chunking.
//! let mut parser = StreamParser::default();
//! let mut clusters = Vec::new();
//! for piece in body.chunks(7) {
//!     parser.push(piece);
//!     while let Some(event) = parser.next_event()? {
//!         if let Event::Cluster(c) = event {
//!             clusters.push(c);
//!         }
//!     }
//! }
//! while let Some(_event) = parser.finish()? {}
//! assert_eq!(clusters[0].timecode, 1_700_000_000_000);
//! let block = &clusters[0].blocks[0];
//! assert_eq!(&clusters[0].body[block.data.clone()], b"idr");
//! # Ok::<(), mkv_fragment::ParseError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod block;
mod ebml;
pub mod error;
pub mod getmedia;
mod header;
pub mod ids;
pub mod reader;
pub mod tags;
pub mod vint;
pub mod writer;

pub use error::ParseError;

pub use getmedia::{FragmentStamp, GetMediaFragment, GetMediaReader};
pub use reader::{Block, Cluster, Event, ParserLimits, SegmentHeader, StreamParser, TrackInfo};
pub use tags::{SimpleTag, aws_tags, format_timestamp_ms, parse_timestamp_ms};
pub use writer::{Frame, ProducerWriter, SegmentInfo, TrackSpec};
