//! GetMedia chunks: writing them as AWS does, and reading them back.
//!
//! Why: GetMedia consumers, above all the AWS Java parser library's `FragmentMetadataVisitor`,
//! depend on the exact chunk layout that AWS emits (captures in the parser library's test
//! resources). Each fragment is a self-contained MKV:
//!
//! 1. EBML header;
//! 2. Segment of unknown size;
//! 3. the producer's header elements as ingested;
//! 4. Tags {FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP}, then the user Tags;
//! 5. the Cluster, re-emitted with a known size;
//! 6. Tags {MILLIS_BEHIND_NOW, CONTINUATION_TOKEN}.
//!
//! The Java visitor reads the AWS tags collected since the Segment start when the first Cluster
//! starts (or when the Segment ends before any Cluster); with SERVER_TIMESTAMP present the
//! fragment is a success, otherwise a present FRAGMENT_NUMBER makes it an error fragment that
//! *requires* a numeric ERROR_ID and a non-empty ERROR_CODE. Without FRAGMENT_NUMBER it throws a
//! NullPointerException, which is why [`write_error_chunk`] always writes one.

use std::collections::VecDeque;

use crate::error::ParseError;
use crate::ids;
use crate::reader::{Cluster, Event, ParserLimits, SegmentHeader, StreamParser};
use crate::tags::SimpleTag;
pub use crate::tags::{aws_tags, format_timestamp_ms, parse_timestamp_ms};
use crate::writer::{write_ebml_header, write_id, write_size, write_tags_width};

/// DocTypeVersion of the EBML header written before each chunk (the first AWS capture carries 4).
const CHUNK_DOC_TYPE_VERSION: u64 = 4;
/// Width of the size fields of the Tags that AWS writes into GetMedia chunks.
const AWS_TAG_SIZE_WIDTH: usize = 4;

/// The identity and timestamps of one stored fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentStamp<'a> {
    /// Fragment number (a decimal string).
    pub fragment_number: &'a str,
    /// When the server received the fragment, in milliseconds since the epoch.
    pub server_timestamp_ms: i64,
    /// The fragment's producer timestamp, in milliseconds since the epoch.
    pub producer_timestamp_ms: i64,
}

/// Appends everything of a GetMedia chunk up to and including the Cluster: EBML header, Segment
/// of unknown size, `header_raw` (the producer's header elements as ingested), Tags
/// {FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP}, Tags {`user_tags`} (omitted if
/// empty), and a Cluster of known size wrapping `cluster_body` (the Cluster's children as
/// received). Follow it with [`write_fragment_trailer`].
///
/// User tags named like the tags GetMedia writes itself ([`aws_tags::GETMEDIA_RESERVED`]) are
/// left out: consumers would take them for the chunk's own metadata (the Java parser keeps the
/// last value of each AWS tag, and a CONTINUATION_TOKEN marks the chunk complete).
pub fn write_fragment_prefix(
    out: &mut Vec<u8>,
    header_raw: &[u8],
    stamp: &FragmentStamp<'_>,
    user_tags: &[SimpleTag],
    cluster_body: &[u8],
) {
    out.reserve(header_raw.len() + cluster_body.len() + 512);
    write_ebml_header(out, CHUNK_DOC_TYPE_VERSION);
    write_id(out, ids::SEGMENT);
    write_size(out, None, 8);
    out.extend_from_slice(header_raw);
    write_tags_width(
        out,
        &[
            SimpleTag::new(aws_tags::FRAGMENT_NUMBER, stamp.fragment_number),
            SimpleTag::new(
                aws_tags::SERVER_TIMESTAMP,
                format_timestamp_ms(stamp.server_timestamp_ms),
            ),
            SimpleTag::new(
                aws_tags::PRODUCER_TIMESTAMP,
                format_timestamp_ms(stamp.producer_timestamp_ms),
            ),
        ],
        AWS_TAG_SIZE_WIDTH,
    );
    let user_tags: Vec<SimpleTag> = user_tags
        .iter()
        .filter(|t| !aws_tags::GETMEDIA_RESERVED.contains(&t.name.as_str()))
        .cloned()
        .collect();
    if !user_tags.is_empty() {
        write_tags_width(out, &user_tags, AWS_TAG_SIZE_WIDTH);
    }
    write_id(out, ids::CLUSTER);
    write_size(out, Some(cluster_body.len() as u64), 8);
    out.extend_from_slice(cluster_body);
}

/// Appends the Tags {MILLIS_BEHIND_NOW, CONTINUATION_TOKEN} that end a GetMedia chunk; the Java
/// parser only calls a fragment complete once both are present.
pub fn write_fragment_trailer(out: &mut Vec<u8>, millis_behind_now: u64, continuation_token: &str) {
    write_tags_width(
        out,
        &[
            SimpleTag::new(aws_tags::MILLIS_BEHIND_NOW, millis_behind_now.to_string()),
            SimpleTag::new(aws_tags::CONTINUATION_TOKEN, continuation_token),
        ],
        AWS_TAG_SIZE_WIDTH,
    );
}

/// Appends an error chunk: EBML header, a Segment, and one Tags {ERROR_CODE, ERROR_ID,
/// FRAGMENT_NUMBER} in the order of an error chunk captured from AWS
/// (`FRAGMENT_NOT_FOUND` / 3000).
///
/// The Java parser classifies it as an error fragment only if FRAGMENT_NUMBER is present and
/// numeric, so when `fragment_number` is `None` the number `"0"` is written. Unlike the AWS
/// capture the Segment has a known size: that closes it right after the Tags, so streaming
/// readers (the Java visitor and [`GetMediaReader`]) report the error at once instead of at the
/// end of the response.
pub fn write_error_chunk(
    out: &mut Vec<u8>,
    error_code: &str,
    error_id: u64,
    fragment_number: Option<&str>,
) {
    let mut tags = Vec::new();
    write_tags_width(
        &mut tags,
        &[
            SimpleTag::new(aws_tags::ERROR_CODE, error_code),
            SimpleTag::new(aws_tags::ERROR_ID, error_id.to_string()),
            SimpleTag::new(aws_tags::FRAGMENT_NUMBER, fragment_number.unwrap_or("0")),
        ],
        AWS_TAG_SIZE_WIDTH,
    );
    write_ebml_header(out, CHUNK_DOC_TYPE_VERSION);
    write_id(out, ids::SEGMENT);
    write_size(out, Some(tags.len() as u64), 8);
    out.extend_from_slice(&tags);
}

/// One GetMedia chunk as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetMediaFragment {
    /// AWS_KINESISVIDEO_FRAGMENT_NUMBER.
    pub fragment_number: Option<String>,
    /// AWS_KINESISVIDEO_SERVER_TIMESTAMP in milliseconds (`None` if absent or unparsable).
    pub server_timestamp_ms: Option<i64>,
    /// AWS_KINESISVIDEO_PRODUCER_TIMESTAMP in milliseconds (`None` if absent or unparsable).
    pub producer_timestamp_ms: Option<i64>,
    /// AWS_KINESISVIDEO_MILLIS_BEHIND_NOW (`None` if absent or unparsable).
    pub millis_behind_now: Option<u64>,
    /// AWS_KINESISVIDEO_CONTINUATION_TOKEN.
    pub continuation_token: Option<String>,
    /// AWS_KINESISVIDEO_ERROR_CODE.
    pub error_code: Option<String>,
    /// AWS_KINESISVIDEO_ERROR_ID (`None` if absent or unparsable).
    pub error_id: Option<u64>,
    /// Every other SimpleTag of the chunk, in stream order (producer metadata, before or after
    /// the Cluster, and any AWS tag not listed above).
    pub user_tags: Vec<SimpleTag>,
    /// The chunk's header elements; `None` when the chunk had none (error chunks).
    pub header: Option<SegmentHeader>,
    /// The chunk's Cluster.
    pub cluster: Option<Cluster>,
}

impl GetMediaFragment {
    fn is_empty(&self) -> bool {
        *self == GetMediaFragment::default()
    }

    /// True for an error chunk (it carries ERROR_CODE or ERROR_ID).
    pub fn is_error(&self) -> bool {
        self.error_code.is_some() || self.error_id.is_some()
    }
}

/// Reads a GetMedia response and yields one [`GetMediaFragment`] per chunk.
///
/// A fragment is yielded as soon as the Tags carrying MILLIS_BEHIND_NOW or CONTINUATION_TOKEN
/// (the trailer) or ERROR_CODE/ERROR_ID (an error chunk) has been read, so live readers get it at
/// once; otherwise when the next chunk starts (EBML header or Segment), when a second Cluster
/// starts, or at [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct GetMediaReader {
    parser: StreamParser,
    current: GetMediaFragment,
    ready: VecDeque<GetMediaFragment>,
}

impl GetMediaReader {
    /// A reader with the default [`ParserLimits`].
    pub fn new() -> Self {
        Self::with_limits(ParserLimits::default())
    }

    /// A reader with the given limits.
    pub fn with_limits(limits: ParserLimits) -> Self {
        GetMediaReader {
            parser: StreamParser::new(limits),
            current: GetMediaFragment::default(),
            ready: VecDeque::new(),
        }
    }

    /// Appends response bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.parser.push(bytes);
    }

    /// Number of response bytes fully processed.
    pub fn bytes_consumed(&self) -> u64 {
        self.parser.bytes_consumed()
    }

    /// The next complete fragment, `Ok(None)` if more input is needed, or the parse error.
    pub fn next_fragment(&mut self) -> Result<Option<GetMediaFragment>, ParseError> {
        self.next(false)
    }

    /// Declares the end of the response and returns the remaining fragments; call until
    /// `Ok(None)`. A chunk cut short yields what was read of it only if the cut falls between
    /// elements; otherwise the parser's `Truncated` error is returned.
    pub fn finish(&mut self) -> Result<Option<GetMediaFragment>, ParseError> {
        self.next(true)
    }

    fn next(&mut self, finishing: bool) -> Result<Option<GetMediaFragment>, ParseError> {
        loop {
            if let Some(fragment) = self.ready.pop_front() {
                return Ok(Some(fragment));
            }
            let event = if finishing {
                self.parser.finish()?
            } else {
                self.parser.next_event()?
            };
            match event {
                Some(event) => self.handle(event),
                None => {
                    if finishing {
                        self.flush();
                        return Ok(self.ready.pop_front());
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.ready.push_back(std::mem::take(&mut self.current));
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::EbmlHeader { .. } | Event::SegmentStart { .. } => self.flush(),
            Event::Header(header) => {
                if !header.raw.is_empty() || !header.tracks.is_empty() {
                    self.current.header = Some(header);
                }
            }
            Event::ClusterStarted { .. } | Event::ClusterBlock { .. } => {}
            Event::Cluster(cluster) => {
                if self.current.cluster.is_some() {
                    self.flush();
                }
                self.current.cluster = Some(cluster);
            }
            Event::Tags(tags) => {
                let mut complete = false;
                for tag in tags {
                    let f = &mut self.current;
                    match tag.name.as_str() {
                        aws_tags::FRAGMENT_NUMBER => f.fragment_number = Some(tag.value),
                        aws_tags::SERVER_TIMESTAMP => {
                            f.server_timestamp_ms = parse_timestamp_ms(&tag.value);
                        }
                        aws_tags::PRODUCER_TIMESTAMP => {
                            f.producer_timestamp_ms = parse_timestamp_ms(&tag.value);
                        }
                        aws_tags::MILLIS_BEHIND_NOW => {
                            f.millis_behind_now = tag.value.parse().ok();
                            complete = true;
                        }
                        aws_tags::CONTINUATION_TOKEN => {
                            f.continuation_token = Some(tag.value);
                            complete = true;
                        }
                        aws_tags::ERROR_CODE => {
                            f.error_code = Some(tag.value);
                            complete = true;
                        }
                        aws_tags::ERROR_ID => {
                            f.error_id = tag.value.parse().ok();
                            complete = true;
                        }
                        _ => f.user_tags.push(tag),
                    }
                }
                if complete {
                    self.flush();
                }
            }
        }
    }
}
