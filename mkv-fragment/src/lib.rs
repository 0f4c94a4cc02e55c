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
