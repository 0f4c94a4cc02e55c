//! Incremental push parser over one MKV byte stream (a PutMedia body or a GetMedia response).
//!
//! Why: PutMedia bodies arrive in arbitrary chunks over a connection that may last 45 minutes,
//! and the server must ack each fragment (BUFFERING as soon as a Cluster's Timecode is in,
//! RECEIVED when the Cluster is complete) without waiting for the stream to end. So the parser
//! takes whatever bytes arrived, returns events as soon as they are complete, and never blocks,
//! panics or allocates more than what arrived (bounded by [`ParserLimits`]).
//!
//! Structure handled (see the wire-protocol notes): any number of sessions, each an EBML header
//! then a Segment (known or unknown size). Inside a Segment: header elements (SeekHead, Void,
//! Info, Tracks, Chapters, ...), Tags anywhere, Cues/Void/CRC-32 skipped, and Clusters of known
//! or unknown size. An unknown-size Cluster ends when an element that cannot be a Cluster child
//! starts ([`crate::ids::ends_unknown_size_cluster`]), at the end of a known-size Segment, or at
//! [`StreamParser::finish`]. A new EBML header ends the current Segment and Cluster.
//!
//! Event order within a Segment: `SegmentStart`, then `Header` exactly once, then `Tags`,
//! `ClusterStarted` and `Cluster` events in stream order. `Header` is emitted when the header is
//! complete: at the first Cluster or Cues, at the first Tags that follows a Tracks element, or at
//! the end of the Segment. Tags that arrive before that (some GetMedia chunks put producer Tags
//! before Info) are held back and emitted right after `Header`, in order, so `Header` always comes
//! first and still contains every header element.

use std::collections::VecDeque;
use std::ops::Range;

use crate::block::{parse_block_group, parse_simple_block};
use crate::ebml::Child;
use crate::error::ParseError;
use crate::header::{parse_ebml_header, parse_info, parse_tracks};
use crate::ids;
use crate::tags::{SimpleTag, parse_tags};
use crate::vint::{Vint, read_id, read_size};

/// Size limits that bound the parser's memory use whatever the input declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// Largest Cluster (and largest single element inside one) accepted, in bytes. KVS caps a
    /// fragment at 50 MB; the default is 64 MiB.
    pub max_element_size: u64,
    /// Largest EBML header, Tags element, and total of the Segment header elements (plus Tags
    /// held back before the header is complete). CodecPrivate may be up to 1 MiB; the default
    /// is 1 MiB + 64 KiB.
    pub max_header_size: u64,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_element_size: 64 * 1024 * 1024,
            max_header_size: 1024 * 1024 + 64 * 1024,
        }
    }
}

/// Something complete that the parser found in the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An EBML header: a new upload session, or a new GetMedia chunk. Ends the previous Segment.
    EbmlHeader {
        /// DocType (`matroska` or `webm`), zero padding removed.
        doc_type: String,
    },
    /// A Segment starts.
    SegmentStart {
        /// Declared size of the Segment's data; `None` for unknown size (what producers send).
        size: Option<u64>,
    },
    /// The Segment's header elements; emitted once per Segment (see the module docs for when).
    Header(SegmentHeader),
    /// One level-1 Tags element: all its SimpleTags, nested ones included, in document order.
    Tags(Vec<SimpleTag>),
    /// A Cluster's Timecode element has been parsed; its blocks are still arriving.
    ClusterStarted {
        /// The raw Cluster Timecode, in TimecodeScale units.
        timecode: u64,
    },
    /// One block of the Cluster being received, as soon as it has arrived; only from a parser
    /// made with [`StreamParser::with_block_events`]. Lets a server use frames before their
    /// Cluster is complete (low-latency HLS parts). The block is also in the later `Cluster`.
    ClusterBlock {
        /// The block; `data` is its range in the Cluster body, as in [`Cluster::blocks`].
        block: Block,
        /// The block's payload.
        payload: Vec<u8>,
    },
    /// A complete Cluster.
    Cluster(Cluster),
}

/// The header elements of a Segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentHeader {
    /// Exact bytes, as received, of every level-1 element of the Segment except Tags (SeekHead,
    /// Void, CRC-32, Info, Tracks, Chapters, Attachments, unknown ids), in stream order, up to
    /// the point where the header is complete: the first Cluster or Cues, the first Tags after
    /// Tracks, or the end of the Segment. This is what GetMedia re-emits before each fragment.
    pub raw: Vec<u8>,
    /// Info/TimecodeScale in nanoseconds (default 1,000,000).
    pub timecode_scale_ns: u64,
    /// Every TrackEntry, in document order.
    pub tracks: Vec<TrackInfo>,
}

impl Default for SegmentHeader {
    /// No header elements, TimecodeScale 1,000,000 (the Matroska default).
    fn default() -> Self {
        SegmentHeader {
            raw: Vec::new(),
            timecode_scale_ns: DEFAULT_TIMECODE_SCALE_NS,
            tracks: Vec::new(),
        }
    }
}

/// The Matroska default TimecodeScale: timecodes in milliseconds.
pub const DEFAULT_TIMECODE_SCALE_NS: u64 = 1_000_000;

/// What the server needs to know about one TrackEntry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrackInfo {
    /// TrackNumber (the number blocks refer to).
    pub number: u64,
    /// TrackUID.
    pub uid: u64,
    /// TrackType (1 video, 2 audio, 17 subtitle, ...).
    pub track_type: u64,
    /// CodecID, e.g. `V_MPEG4/ISO/AVC`.
    pub codec_id: String,
    /// CodecPrivate (avcC for H.264); empty if absent.
    pub codec_private: Vec<u8>,
    /// Name.
    pub name: Option<String>,
    /// Video/PixelWidth.
    pub pixel_width: Option<u64>,
    /// Video/PixelHeight.
    pub pixel_height: Option<u64>,
    /// Audio/SamplingFrequency in Hz.
    pub sampling_frequency: Option<f64>,
    /// Audio/Channels.
    pub channels: Option<u64>,
}

/// A complete Cluster: one KVS fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The raw Cluster Timecode, in TimecodeScale units (what PutMedia acks echo).
    pub timecode: u64,
    /// Exact bytes of the Cluster's children as received (Timecode, Position, SimpleBlock,
    /// BlockGroup, Void, CRC-32, ...): re-wrap them in a known-size Cluster to re-emit it.
    pub body: Vec<u8>,
    /// The blocks, in order.
    pub blocks: Vec<Block>,
}

/// One SimpleBlock, or the Block of a BlockGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Track number.
    pub track: u64,
    /// Timecode relative to the Cluster Timecode, in TimecodeScale units.
    pub relative_timecode: i16,
    /// SimpleBlock: the key frame flag. BlockGroup: true when there is no ReferenceBlock.
    pub keyframe: bool,
    /// The payload after the block header, as a range of `Cluster::body` (laced payloads are
    /// reported whole).
    pub data: Range<usize>,
    /// BlockGroup/BlockDuration, if any.
    pub duration: Option<u64>,
}

/// Incremental parser over one byte stream; see the module docs for what it accepts.
///
/// Feed bytes with [`push`](Self::push), take events with [`next_event`](Self::next_event) until
/// it returns `Ok(None)`, and when the input has ended call [`finish`](Self::finish) until it
/// returns `Ok(None)`. The events do not depend on how the input was split into pushes.
#[derive(Debug)]
pub struct StreamParser {
    limits: ParserLimits,
    buf: Vec<u8>,
    /// Index in `buf` of the first unconsumed byte.
    start: usize,
    /// Absolute stream offset of `buf[start]`.
    offset: u64,
    /// Bytes of the current element still to be skipped without buffering.
    skip: u64,
    /// Offset and id of the element being skipped (for `Truncated`).
    skip_element: (u64, u32),
    state: State,
    events: VecDeque<Event>,
    error: Option<ParseError>,
    finishing: bool,
    done: bool,
    block_events: bool,
}

#[derive(Debug)]
enum State {
    /// Outside any Segment: expecting an EBML header or a Segment.
    Top,
    /// Inside a Segment.
    Segment(Box<SegmentState>),
}

#[derive(Debug)]
struct SegmentState {
    offset: u64,
    /// Absolute end offset for a known-size Segment.
    end: Option<u64>,
    /// The header being collected; `None` once the `Header` event has been emitted.
    header: Option<HeaderAccum>,
    /// Tags held back until the header is emitted.
    held_tags: Vec<Vec<SimpleTag>>,
    /// Bytes of the Tags elements held back (counted against `max_header_size`).
    held_bytes: u64,
    cluster: Option<ClusterAccum>,
}

#[derive(Debug)]
struct HeaderAccum {
    raw: Vec<u8>,
    timecode_scale_ns: u64,
    tracks: Vec<TrackInfo>,
    seen_tracks: bool,
}

#[derive(Debug)]
struct ClusterAccum {
    offset: u64,
    /// Absolute end offset for a known-size Cluster.
    end: Option<u64>,
    timecode: Option<u64>,
    body: Vec<u8>,
    blocks: Vec<Block>,
}

/// What one parsing step achieved.
enum Progress {
    /// Made progress (maybe queued events); call again.
    Continue,
    /// Needs more input.
    NeedMore,
}

/// What one step inside a Segment achieved.
enum SegmentStep {
    Progress(Progress),
    /// The Segment has ended; the byte at the current offset belongs to the level above.
    Leave,
}

/// An element's id and size, read from the front of the unconsumed input.
struct ElementHeader {
    id: u32,
    size: Option<u64>,
    len: usize,
}

impl Default for StreamParser {
    fn default() -> Self {
        StreamParser::new(ParserLimits::default())
    }
}

impl StreamParser {
    /// Creates a parser for one byte stream.
    pub fn new(limits: ParserLimits) -> Self {
        StreamParser {
            limits,
            buf: Vec::new(),
            start: 0,
            offset: 0,
            skip: 0,
            skip_element: (0, 0),
            state: State::Top,
            events: VecDeque::new(),
            error: None,
            finishing: false,
            done: false,
            block_events: false,
        }
    }

    /// Also emits [`Event::ClusterBlock`] for each block as it arrives.
    pub fn with_block_events(mut self) -> Self {
        self.block_events = true;
        self
    }

    /// Appends input. Cheap: only copies the bytes. Input pushed after [`finish`](Self::finish)
    /// or after an error is ignored.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.finishing || self.error.is_some() || bytes.is_empty() {
            return;
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete event, `Ok(None)` if more input is needed, or the error that
    /// stopped parsing (the same error again on every later call).
    pub fn next_event(&mut self) -> Result<Option<Event>, ParseError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if let Some(err) = &self.error {
                return Err(err.clone());
            }
            if self.done {
                return Ok(None);
            }
            let result = match self.step() {
                Ok(Progress::Continue) => continue,
                Ok(Progress::NeedMore) if self.finishing => self.end_of_input(),
                Ok(Progress::NeedMore) => return Ok(None),
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                self.error = Some(err);
            }
        }
    }

    /// Declares the end of the input and returns the remaining events; call until `Ok(None)`.
    /// Closes an open unknown-size Cluster and Segment. Returns [`ParseError::Truncated`] if the
    /// input stopped inside an element (including a known-size Cluster or Segment).
    pub fn finish(&mut self) -> Result<Option<Event>, ParseError> {
        self.finishing = true;
        self.next_event()
    }

    /// Number of input bytes fully processed (turned into events or skipped).
    pub fn bytes_consumed(&self) -> u64 {
        self.offset
    }

    fn available(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len().saturating_sub(self.start));
        self.start += n;
        self.offset = self.offset.saturating_add(n as u64);
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Starts skipping an element of `total` bytes (id and size included) without buffering it.
    fn start_skip(&mut self, id: u32, total: u64) {
        self.skip = total;
        self.skip_element = (self.offset, id);
    }

    fn step(&mut self) -> Result<Progress, ParseError> {
        if self.skip > 0 {
            let avail = self.available().len();
            if avail == 0 {
                return Ok(Progress::NeedMore);
            }
            let n = usize::try_from(self.skip).map_or(avail, |skip| skip.min(avail));
            self.consume(n);
            self.skip = self.skip.saturating_sub(n as u64);
            return Ok(Progress::Continue);
        }
        let mut state = std::mem::replace(&mut self.state, State::Top);
        let result = match &mut state {
            State::Top => self.step_top(&mut state),
            State::Segment(seg) => match self.step_segment(seg) {
                Ok(SegmentStep::Progress(p)) => Ok(p),
                Ok(SegmentStep::Leave) => {
                    state = State::Top;
                    Ok(Progress::Continue)
                }
                Err(err) => Err(err),
            },
        };
        self.state = state;
        result
    }

    /// Reads the id at the front of the unconsumed input (`None` = need more).
    fn peek_id(&self) -> Result<Option<u32>, ParseError> {
        match read_id(self.available()) {
            Vint::Complete(id, _) => Ok(Some(id)),
            Vint::Incomplete => Ok(None),
            Vint::Invalid => Err(ParseError::InvalidVint {
                offset: self.offset,
            }),
        }
    }

    /// Reads id and size at the front of the unconsumed input (`None` = need more).
    fn peek_header(&self) -> Result<Option<ElementHeader>, ParseError> {
        let avail = self.available();
        let (id, id_len) = match read_id(avail) {
            Vint::Complete(id, len) => (id, len),
            Vint::Incomplete => return Ok(None),
            Vint::Invalid => {
                return Err(ParseError::InvalidVint {
                    offset: self.offset,
                });
            }
        };
        match read_size(avail.get(id_len..).unwrap_or_default()) {
            Vint::Complete(size, size_len) => Ok(Some(ElementHeader {
                id,
                size,
                len: id_len + size_len,
            })),
            Vint::Incomplete => Ok(None),
            Vint::Invalid => Err(ParseError::InvalidVint {
                offset: self.offset.saturating_add(id_len as u64),
            }),
        }
    }

    /// Total length (header + data) of a known-size element, as an absolute end offset too.
    fn known_extent(&self, h: &ElementHeader) -> Result<(u64, u64), ParseError> {
        let invalid = |reason| ParseError::InvalidElement {
            offset: self.offset,
            id: h.id,
            reason,
        };
        let size = h.size.ok_or(invalid(
            "unknown size is only allowed for Segment and Cluster",
        ))?;
        let total = size
            .checked_add(h.len as u64)
            .ok_or(invalid("size overflows"))?;
        let end = self
            .offset
            .checked_add(total)
            .ok_or(invalid("size overflows"))?;
        Ok((total, end))
    }

    fn step_top(&mut self, state: &mut State) -> Result<Progress, ParseError> {
        let Some(h) = self.peek_header()? else {
            return Ok(Progress::NeedMore);
        };
        match h.id {
            ids::EBML => {
                let (total, _) = self.known_extent(&h)?;
                self.check_limit(&h, total, self.limits.max_header_size)?;
                let Some(element) = whole_element(&self.buf, self.start, total) else {
                    return Ok(Progress::NeedMore);
                };
                let data = element.get(h.len..).unwrap_or_default();
                let data_base = self.offset.saturating_add(h.len as u64);
                let doc_type = parse_ebml_header(data, self.offset, data_base)?;
                let n = element.len();
                self.events.push_back(Event::EbmlHeader { doc_type });
                self.consume(n);
            }
            ids::SEGMENT => {
                let data_start = self.offset.saturating_add(h.len as u64);
                let end = match h.size {
                    None => None,
                    Some(size) => Some(data_start.checked_add(size).ok_or(
                        ParseError::InvalidElement {
                            offset: self.offset,
                            id: h.id,
                            reason: "size overflows",
                        },
                    )?),
                };
                self.events.push_back(Event::SegmentStart { size: h.size });
                *state = State::Segment(Box::new(SegmentState {
                    offset: self.offset,
                    end,
                    header: Some(HeaderAccum {
                        raw: Vec::new(),
                        timecode_scale_ns: DEFAULT_TIMECODE_SCALE_NS,
                        tracks: Vec::new(),
                        seen_tracks: false,
                    }),
                    held_tags: Vec::new(),
                    held_bytes: 0,
                    cluster: None,
                }));
                self.consume(h.len);
            }
            ids::VOID | ids::CRC32 => {
                let (total, _) = self.known_extent(&h)?;
                self.start_skip(h.id, total);
            }
            id => {
                return Err(ParseError::UnexpectedElement {
                    offset: self.offset,
                    id,
                    context: "expected an EBML header or a Segment",
                });
            }
        }
        Ok(Progress::Continue)
    }

    fn check_limit(&self, h: &ElementHeader, size: u64, limit: u64) -> Result<(), ParseError> {
        if size > limit {
            Err(ParseError::ElementTooLarge {
                offset: self.offset,
                id: h.id,
                size,
                limit,
            })
        } else {
            Ok(())
        }
    }

    fn check_inside_segment(
        &self,
        seg: &SegmentState,
        h: &ElementHeader,
        end: u64,
    ) -> Result<(), ParseError> {
        match seg.end {
            Some(seg_end) if end > seg_end => Err(ParseError::InvalidElement {
                offset: self.offset,
                id: h.id,
                reason: "element overruns its Segment",
            }),
            _ => Ok(()),
        }
    }

    /// Emits the `Header` event and the Tags held back for it, if not done yet.
    fn flush_header(&mut self, seg: &mut SegmentState) {
        if let Some(header) = seg.header.take() {
            self.events.push_back(Event::Header(SegmentHeader {
                raw: header.raw,
                timecode_scale_ns: header.timecode_scale_ns,
                tracks: header.tracks,
            }));
            for tags in seg.held_tags.drain(..) {
                self.events.push_back(Event::Tags(tags));
            }
            seg.held_bytes = 0;
        }
    }

    fn close_cluster(&mut self, seg: &mut SegmentState) -> Result<(), ParseError> {
        if let Some(cluster) = seg.cluster.take() {
            let timecode = cluster.timecode.ok_or(ParseError::MissingClusterTimecode {
                offset: cluster.offset,
            })?;
            self.events.push_back(Event::Cluster(Cluster {
                timecode,
                body: cluster.body,
                blocks: cluster.blocks,
            }));
        }
        Ok(())
    }

    fn step_segment(&mut self, seg: &mut SegmentState) -> Result<SegmentStep, ParseError> {
        if seg.cluster.is_some() {
            return self.step_cluster(seg).map(SegmentStep::Progress);
        }
        if seg.end == Some(self.offset) {
            self.flush_header(seg);
            return Ok(SegmentStep::Leave);
        }
        let Some(id) = self.peek_id()? else {
            return Ok(SegmentStep::Progress(Progress::NeedMore));
        };
        if id == ids::EBML {
            // A new session starts: this Segment ends here whatever its declared size.
            self.flush_header(seg);
            return Ok(SegmentStep::Leave);
        }
        let Some(h) = self.peek_header()? else {
            return Ok(SegmentStep::Progress(Progress::NeedMore));
        };
        match h.id {
            ids::SEGMENT => Err(ParseError::UnexpectedElement {
                offset: self.offset,
                id: h.id,
                context: "a Segment cannot contain a Segment",
            }),
            ids::CLUSTER => {
                self.flush_header(seg);
                let end = match h.size {
                    None => None,
                    Some(size) => {
                        self.check_limit(&h, size, self.limits.max_element_size)?;
                        let (_, end) = self.known_extent(&h)?;
                        self.check_inside_segment(seg, &h, end)?;
                        Some(end)
                    }
                };
                seg.cluster = Some(ClusterAccum {
                    offset: self.offset,
                    end,
                    timecode: None,
                    body: Vec::new(),
                    blocks: Vec::new(),
                });
                self.consume(h.len);
                Ok(SegmentStep::Progress(Progress::Continue))
            }
            ids::TAGS => {
                let (total, end) = self.known_extent(&h)?;
                self.check_limit(&h, total, self.limits.max_header_size)?;
                self.check_inside_segment(seg, &h, end)?;
                if let Some(header) = seg.header.as_ref().filter(|hd| !hd.seen_tracks) {
                    let pending = (header.raw.len() as u64)
                        .saturating_add(seg.held_bytes)
                        .saturating_add(total);
                    self.check_limit(&h, pending, self.limits.max_header_size)?;
                }
                let Some(element) = whole_element(&self.buf, self.start, total) else {
                    return Ok(SegmentStep::Progress(Progress::NeedMore));
                };
                let data = element.get(h.len..).unwrap_or_default();
                let tags = parse_tags(data, self.offset.saturating_add(h.len as u64))?;
                let n = element.len();
                let held = seg.header.as_ref().is_some_and(|hd| !hd.seen_tracks);
                if held {
                    seg.held_tags.push(tags);
                    seg.held_bytes = seg.held_bytes.saturating_add(total);
                } else {
                    self.flush_header(seg);
                    self.events.push_back(Event::Tags(tags));
                }
                self.consume(n);
                Ok(SegmentStep::Progress(Progress::Continue))
            }
            id => {
                let (total, end) = self.known_extent(&h)?;
                self.check_inside_segment(seg, &h, end)?;
                if id == ids::CUES {
                    self.flush_header(seg);
                }
                let Some(header) = &mut seg.header else {
                    self.start_skip(id, total);
                    return Ok(SegmentStep::Progress(Progress::Continue));
                };
                let pending = (header.raw.len() as u64)
                    .saturating_add(seg.held_bytes)
                    .saturating_add(total);
                self.check_limit(&h, pending, self.limits.max_header_size)?;
                let Some(element) = whole_element(&self.buf, self.start, total) else {
                    return Ok(SegmentStep::Progress(Progress::NeedMore));
                };
                let data = element.get(h.len..).unwrap_or_default();
                let data_base = self.offset.saturating_add(h.len as u64);
                match id {
                    ids::INFO => {
                        if let Some(scale) = parse_info(data, data_base)? {
                            header.timecode_scale_ns = scale;
                        }
                    }
                    ids::TRACKS => {
                        header.tracks.extend(parse_tracks(data, data_base)?);
                        header.seen_tracks = true;
                    }
                    _ => {}
                }
                header.raw.extend_from_slice(element);
                let n = element.len();
                self.consume(n);
                Ok(SegmentStep::Progress(Progress::Continue))
            }
        }
    }

    fn step_cluster(&mut self, seg: &mut SegmentState) -> Result<Progress, ParseError> {
        let Some(cluster) = &seg.cluster else {
            return Ok(Progress::Continue);
        };
        if cluster.end == Some(self.offset) || seg.end == Some(self.offset) {
            self.close_cluster(seg)?;
            return Ok(Progress::Continue);
        }
        let Some(id) = self.peek_id()? else {
            return Ok(Progress::NeedMore);
        };
        if cluster.end.is_none() && ids::ends_unknown_size_cluster(id) {
            self.close_cluster(seg)?;
            return Ok(Progress::Continue);
        }
        if id == ids::EBML || id == ids::SEGMENT {
            return Err(ParseError::UnexpectedElement {
                offset: self.offset,
                id,
                context: "a new session cannot start inside a known-size Cluster",
            });
        }
        let Some(h) = self.peek_header()? else {
            return Ok(Progress::NeedMore);
        };
        let (total, end) = self.known_extent(&h)?;
        self.check_limit(&h, total, self.limits.max_element_size)?;
        if cluster.end.is_some_and(|cluster_end| end > cluster_end) {
            return Err(ParseError::InvalidElement {
                offset: self.offset,
                id: h.id,
                reason: "element overruns its Cluster",
            });
        }
        self.check_inside_segment(seg, &h, end)?;
        let body_total = (cluster.body.len() as u64).saturating_add(total);
        if body_total > self.limits.max_element_size {
            return Err(ParseError::ElementTooLarge {
                offset: cluster.offset,
                id: ids::CLUSTER,
                size: body_total,
                limit: self.limits.max_element_size,
            });
        }
        let Some(element) = whole_element(&self.buf, self.start, total) else {
            return Ok(Progress::NeedMore);
        };
        let Some(cluster) = &mut seg.cluster else {
            return Ok(Progress::Continue);
        };
        let data = element.get(h.len..).unwrap_or_default();
        let child = Child {
            id: h.id,
            offset: self.offset,
            data_start: h.len,
            data,
            header_len: h.len,
        };
        let data_pos = cluster.body.len().saturating_add(h.len);
        match h.id {
            ids::TIMECODE => {
                if cluster.timecode.is_some() {
                    return Err(ParseError::InvalidElement {
                        offset: self.offset,
                        id: h.id,
                        reason: "Cluster has more than one Timecode",
                    });
                }
                let timecode = crate::ebml::read_uint(&child)?;
                cluster.timecode = Some(timecode);
                self.events.push_back(Event::ClusterStarted { timecode });
            }
            ids::SIMPLE_BLOCK | ids::BLOCK_GROUP => {
                if cluster.timecode.is_none() {
                    return Err(ParseError::MissingClusterTimecode {
                        offset: cluster.offset,
                    });
                }
                let block = if h.id == ids::SIMPLE_BLOCK {
                    parse_simple_block(&child, data_pos)?
                } else {
                    parse_block_group(&child, data_pos)?
                };
                if self.block_events {
                    // `block.data` is relative to the Cluster body, which starts `data_pos -
                    // h.len` bytes before this element.
                    let start = block.data.start - (data_pos - h.len);
                    let end = block.data.end - (data_pos - h.len);
                    let payload = element.get(start..end).unwrap_or_default().to_vec();
                    self.events.push_back(Event::ClusterBlock {
                        block: block.clone(),
                        payload,
                    });
                }
                cluster.blocks.push(block);
            }
            _ => {}
        }
        cluster.body.extend_from_slice(element);
        let n = element.len();
        self.consume(n);
        Ok(Progress::Continue)
    }

    /// Called in finish mode when a step needs more input that will never come.
    fn end_of_input(&mut self) -> Result<(), ParseError> {
        if self.skip > 0 {
            let (offset, id) = self.skip_element;
            return Err(ParseError::Truncated {
                offset,
                id: Some(id),
            });
        }
        if !self.available().is_empty() {
            let id = match read_id(self.available()) {
                Vint::Complete(id, _) => Some(id),
                _ => None,
            };
            return Err(ParseError::Truncated {
                offset: self.offset,
                id,
            });
        }
        let state = std::mem::replace(&mut self.state, State::Top);
        if let State::Segment(mut seg) = state {
            if let Some(cluster) = seg.cluster.as_ref().filter(|c| c.end.is_some()) {
                return Err(ParseError::Truncated {
                    offset: cluster.offset,
                    id: Some(ids::CLUSTER),
                });
            }
            self.close_cluster(&mut seg)?;
            if seg.end.is_some() {
                return Err(ParseError::Truncated {
                    offset: seg.offset,
                    id: Some(ids::SEGMENT),
                });
            }
            self.flush_header(&mut seg);
        }
        self.done = true;
        Ok(())
    }
}

/// The whole element of `total` bytes at the front of the unconsumed input, if it has arrived.
fn whole_element(buf: &[u8], start: usize, total: u64) -> Option<&[u8]> {
    let total = usize::try_from(total).ok()?;
    buf.get(start..)?.get(..total)
}
