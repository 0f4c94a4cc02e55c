//! `PutMedia`: a full-duplex HTTP/1.1 upload. The producer streams MKV; every Cluster
//! is a fragment; acks (BUFFERING, RECEIVED, PERSISTED, ERROR, IDLE) stream back as
//! newline-terminated JSON chunks while the upload goes on (`kvs-wire-protocol.md` §1).
//!
//! PERSISTED is sent only after the fragment file and its index row are durable: it is
//! what lets a producer drop the fragment from its buffer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use mkv_fragment::getmedia::{FragmentStamp, write_fragment_prefix};
use mkv_fragment::{
    Cluster, Event, ParseError, ParserLimits, SegmentHeader, SimpleTag, StreamParser,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{RequestContext, VideoService, now_ms};
use crate::protocol::body::{ResponseBody, channel};
use crate::protocol::error::AwsError;
use crate::protocol::validate;
use crate::storage::{NewFragment, StoreError, StreamRecord, fragment_number};

/// AWS's limits on a fragment and an upload (kvs-wire-protocol.md §1, "Limits").
const MAX_FRAGMENT_BYTES: u64 = 50 * 1000 * 1000;
/// The current quotas page says 20 s (older text: 10 s); the larger value is accepted.
const MAX_FRAGMENT_DURATION_MS: i64 = 20_000;
const MAX_TRACKS: usize = 3;
const MAX_USER_TAGS: usize = 10;
const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(45 * 60);

/// ErrorId values of the PutMedia ack protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckError {
    StreamReadError = 4000,
    MaxFragmentSize = 4001,
    MaxFragmentDuration = 4002,
    MaxConnectionDuration = 4003,
    TimecodeLesserThanPrevious = 4004,
    InvalidMkvData = 4006,
    InvalidProducerTimestamp = 4007,
    StreamNotActive = 4008,
    MetadataLimitReached = 4009,
    TrackNumberMismatch = 4010,
    FramesMissingForTrack = 4011,
    MoreThanAllowedTracks = 4012,
    Internal = 5000,
}

impl AckError {
    fn code(self) -> &'static str {
        match self {
            Self::StreamReadError => "STREAM_READ_ERROR",
            Self::MaxFragmentSize => "MAX_FRAGMENT_SIZE_REACHED",
            Self::MaxFragmentDuration => "MAX_FRAGMENT_DURATION_REACHED",
            Self::MaxConnectionDuration => "MAX_CONNECTION_DURATION_REACHED",
            Self::TimecodeLesserThanPrevious => "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
            Self::InvalidMkvData => "INVALID_MKV_DATA",
            Self::InvalidProducerTimestamp => "INVALID_PRODUCER_TIMESTAMP",
            Self::StreamNotActive => "STREAM_NOT_ACTIVE",
            Self::MetadataLimitReached => "FRAGMENT_METADATA_LIMIT_REACHED",
            Self::TrackNumberMismatch => "TRACK_NUMBER_MISMATCH",
            Self::FramesMissingForTrack => "FRAMES_MISSING_FOR_TRACK",
            Self::MoreThanAllowedTracks => "MORE_THAN_ALLOWED_TRACKS_FOUND",
            Self::Internal => "INTERNAL_ERROR",
        }
    }

    /// Whether the upload cannot go on after this error.
    fn ends_upload(self) -> bool {
        matches!(
            self,
            Self::InvalidMkvData
                | Self::StreamReadError
                | Self::MaxFragmentSize
                | Self::MaxConnectionDuration
                | Self::StreamNotActive
                | Self::MoreThanAllowedTracks
                | Self::Internal
        )
    }
}

/// How Cluster timecodes map to producer timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimecodeType {
    Absolute,
    Relative,
}

/// The validated PutMedia request headers.
struct PutMediaHeaders {
    stream_name: Option<String>,
    stream_arn: Option<String>,
    timecode_type: TimecodeType,
    producer_start_ms: i64,
    acks: bool,
}

fn header<'a>(parts: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_headers(parts: &http::request::Parts) -> Result<PutMediaHeaders, AwsError> {
    let stream_name = header(parts, "x-amzn-stream-name").map(str::to_owned);
    let stream_arn = header(parts, "x-amzn-stream-arn").map(str::to_owned);
    let mut v = validate::Validation::new();
    v.check(&validate::STREAM_NAME, stream_name.as_deref());
    v.check(&validate::STREAM_ARN, stream_arn.as_deref());
    let timecode_type = header(parts, "x-amzn-fragment-timecode-type");
    v.required("fragmentTimecodeType", timecode_type.as_ref());
    v.one_of(
        "fragmentTimecodeType",
        timecode_type,
        &["ABSOLUTE", "RELATIVE"],
    );
    v.finish()?;
    let timecode_type = match timecode_type {
        Some("RELATIVE") => TimecodeType::Relative,
        _ => TimecodeType::Absolute,
    };
    let start = header(parts, "x-amzn-producer-start-timestamp");
    let producer_start_ms = match (start, timecode_type) {
        (Some(s), _) => parse_start_timestamp(s).ok_or_else(|| {
            AwsError::invalid_argument(format!(
                "x-amzn-producer-start-timestamp '{s}' is not a number of seconds since the epoch."
            ))
        })?,
        (None, TimecodeType::Relative) => {
            return Err(AwsError::invalid_argument(
                "x-amzn-producer-start-timestamp is required with RELATIVE fragment timecodes.",
            ));
        }
        (None, TimecodeType::Absolute) => 0,
    };
    let acks =
        header(parts, "x-amzn-fragment-acknowledgment-required").is_none_or(|v| v.trim() != "0");
    Ok(PutMediaHeaders {
        stream_name,
        stream_arn,
        timecode_type,
        producer_start_ms,
        acks,
    })
}

/// Parses `x-amzn-producer-start-timestamp` into epoch milliseconds. The AWS C
/// producer prints it as `"%llu.%llu"` of (ms / 1000, ms % 1000), without zero padding,
/// so 47 ms arrives as `.47`: a fraction of one to three digits is a count of
/// milliseconds (for three digits both readings agree); longer fractions are decimal.
fn parse_start_timestamp(value: &str) -> Option<i64> {
    let (secs, frac) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let millis: i64 = match frac.len() {
        0 => 0,
        1..=3 => frac.parse().ok()?,
        _ => {
            let micros: i64 = frac[..6.min(frac.len())].parse().ok()?;
            let scale = 10_i64.pow(6 - 6.min(frac.len()) as u32);
            ((micros * scale) as f64 / 1000.0).round() as i64
        }
    };
    secs.checked_mul(1000)?.checked_add(millis)
}

/// Holds the stream's single PutMedia slot; frees it when the upload ends.
struct UploadSlot {
    service: Arc<VideoService>,
    stream_id: i64,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        self.service
            .uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.stream_id);
        self.service.live.producing(self.stream_id, false);
    }
}

impl VideoService {
    /// Validates the request and starts the upload; the returned response streams acks.
    pub async fn put_media<B>(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        mut body: B,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display + Send,
    {
        let headers = parse_headers(parts)?;
        let stream = self
            .resolve(
                headers.stream_name.as_deref(),
                headers.stream_arn.as_deref(),
            )
            .await?;
        if !self
            .uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.id)
        {
            return Err(AwsError::new(
                400,
                "ConnectionLimitExceededException",
                format!(
                    "Stream {} already has a PutMedia connection; only one is allowed at a time.",
                    stream.name
                ),
            ));
        }
        let slot = UploadSlot {
            service: Arc::clone(self),
            stream_id: stream.id,
        };
        self.live.producing(stream.id, true);
        // Reading before answering makes hyper send `100 Continue` to a client that
        // asked for it (curl, as the AWS producer SDK uses it, otherwise waits a second
        // before it sends the body); the frame read goes to the upload.
        let first = tokio::time::timeout(FIRST_BYTES_WAIT, body.frame())
            .await
            .ok();
        let (tx, ack_body) = channel(64);
        tracing::info!(stream = %stream.name, request_id = %ctx.request_id, "PutMedia started.");
        let upload = Upload {
            service: Arc::clone(self),
            acks: headers.acks.then_some(tx),
            timecode_type: headers.timecode_type,
            producer_start_ms: headers.producer_start_ms,
            parser: StreamParser::new(ParserLimits {
                max_element_size: MAX_FRAGMENT_BYTES + 1024 * 1024,
                ..ParserLimits::default()
            }),
            header: None,
            pending_tags: Vec::new(),
            last_timecode: None,
            current: None,
            seen_ebml_header: false,
            started: Instant::now(),
            stored: 0,
            stream,
        };
        tokio::spawn(async move {
            let _slot = slot;
            upload.run(body, first).await;
        });
        Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("x-amzn-RequestId", &ctx.request_id)
            .body(ack_body)
            .unwrap_or_else(|_| Response::new(crate::protocol::body::full(""))))
    }
}

/// One read from a request body: a frame, a read error, or the end.
type BodyFrame<B> = Option<Result<http_body::Frame<Bytes>, <B as http_body::Body>::Error>>;

/// How long, and how much, of a failed upload's remaining body is read and discarded.
const DISCARD_AFTER_ERROR_FOR: Duration = Duration::from_secs(1);
const DISCARD_AFTER_ERROR_BYTES: usize = 16 * 1024 * 1024;

/// How long PutMedia waits for the first body bytes before answering anyway.
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(2);

/// The fragment whose Cluster is arriving.
struct ClusterInProgress {
    timecode: u64,
    seq: i64,
    number: String,
    server_ts_ms: i64,
    tags: Vec<SimpleTag>,
    rejected: Option<AckError>,
}

/// One PutMedia connection's state.
struct Upload {
    service: Arc<VideoService>,
    stream: StreamRecord,
    acks: Option<mpsc::Sender<Bytes>>,
    timecode_type: TimecodeType,
    producer_start_ms: i64,
    parser: StreamParser,
    /// The current session's header (from the latest EBML header + Segment).
    header: Option<SegmentHeader>,
    /// User tags seen since the last Cluster: they belong to the next one.
    pending_tags: Vec<SimpleTag>,
    /// Timecode of the previous Cluster in this session.
    last_timecode: Option<u64>,
    current: Option<ClusterInProgress>,
    /// Whether the body has started with an EBML header.
    seen_ebml_header: bool,
    started: Instant,
    stored: u64,
}

/// What the upload loop does next.
enum Flow {
    Continue,
    Stop,
}

impl Upload {
    /// Reads the body to its end (or until the upload must stop). `first` is a frame
    /// already read before the response was sent.
    async fn run<B>(mut self, mut body: B, mut first: Option<BodyFrame<B>>)
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let config = Arc::clone(&self.service.config);
        let idle_every = config.idle_ack_interval();
        let timeout = Duration::from_secs(config.put_media_timeout_secs.max(1));
        let mut ticker = tokio::time::interval(idle_every);
        ticker.tick().await;
        let mut last_data = Instant::now();
        loop {
            let frame = match first.take() {
                Some(frame) => frame,
                None => tokio::select! {
                    frame = body.frame() => frame,
                    _ = ticker.tick() => {
                        if last_data.elapsed() >= timeout {
                            tracing::info!(stream = %self.stream.name, "PutMedia closed after {}s without data.", timeout.as_secs());
                            break;
                        }
                        if last_data.elapsed() >= idle_every {
                            self.ack(serde_json::json!({ "EventType": "IDLE" })).await;
                        }
                        continue;
                    }
                },
            };
            match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    last_data = Instant::now();
                    self.parser.push(&data);
                    if let Flow::Stop = self.drain(false).await {
                        self.end_after_error(&mut body).await;
                        break;
                    }
                }
                Some(Err(err)) => {
                    // The producer went away mid-upload: a Cluster still open may be
                    // incomplete, so it is not stored (the producer re-sends it).
                    tracing::info!(stream = %self.stream.name, error = %err, "PutMedia connection lost.");
                    break;
                }
                None => {
                    let _ = self.drain(true).await;
                    break;
                }
            }
        }
        tracing::info!(stream = %self.stream.name, fragments = self.stored, "PutMedia ended.");
    }

    /// After an ERROR ack that ends the upload: finishes the ack response, then keeps
    /// reading (and discarding) what the producer is still sending for a moment, so it
    /// reads the ack instead of hitting a reset connection mid-write (the AWS producer
    /// SDK then handles the error id, e.g. re-sends after 4000).
    async fn end_after_error<B>(&mut self, body: &mut B)
    where
        B: http_body::Body<Data = Bytes> + Unpin,
    {
        self.acks = None;
        let mut discarded = 0usize;
        let _ = tokio::time::timeout(DISCARD_AFTER_ERROR_FOR, async {
            while let Some(Ok(frame)) = body.frame().await {
                discarded += frame.data_ref().map_or(0, Bytes::len);
                if discarded > DISCARD_AFTER_ERROR_BYTES {
                    break;
                }
            }
        })
        .await;
    }

    async fn ack(&self, ack: serde_json::Value) {
        if let Some(tx) = &self.acks {
            let mut line = ack.to_string();
            line.push('\n');
            let _ = tx.send(Bytes::from(line)).await;
        }
    }

    async fn ack_event(&self, event: &str, timecode: u64, number: &str) {
        self.ack(serde_json::json!({ "EventType": event, "FragmentTimecode": timecode, "FragmentNumber": number }))
            .await;
    }

    /// An ERROR ack, naming the fragment it is about when there is one.
    async fn ack_error(&self, error: AckError, fragment: Option<&ClusterInProgress>) {
        let mut ack = serde_json::json!({ "EventType": "ERROR", "ErrorId": error as u16, "ErrorCode": error.code() });
        if let Some(current) = fragment {
            ack["FragmentTimecode"] = current.timecode.into();
            ack["FragmentNumber"] = current.number.clone().into();
        }
        tracing::info!(stream = %self.stream.name, error_id = error as u16, code = error.code(), "PutMedia error ack.");
        self.ack(ack).await;
    }

    /// Handles every event the parser can produce from the input so far.
    async fn drain(&mut self, at_end: bool) -> Flow {
        loop {
            let next = if at_end {
                self.parser.finish()
            } else {
                self.parser.next_event()
            };
            let event = match next {
                Ok(Some(event)) => event,
                Ok(None) => return Flow::Continue,
                Err(err) => {
                    let error = if matches!(err, ParseError::ElementTooLarge { .. }) {
                        AckError::MaxFragmentSize
                    } else if !self.seen_ebml_header && resumes_mid_stream(&err) {
                        // A body that starts inside a Segment is a producer resuming
                        // mid-stream after a reconnect (the AWS producer SDK does this
                        // after refused connections). 4000 is retriable for it: it rolls
                        // back and re-sends from its last PERSISTED fragment with a fresh
                        // header, where 4006 would make it drop the fragment's frames.
                        AckError::StreamReadError
                    } else {
                        AckError::InvalidMkvData
                    };
                    tracing::info!(stream = %self.stream.name, error = %err, "Invalid MKV in PutMedia.");
                    self.ack_error(error, self.current.as_ref()).await;
                    return Flow::Stop;
                }
            };
            if let Flow::Stop = self.on_event(event).await {
                return Flow::Stop;
            }
        }
    }

    async fn on_event(&mut self, event: Event) -> Flow {
        match event {
            Event::EbmlHeader { .. } => {
                self.seen_ebml_header = true;
                // A new upload session (token rotation, reconnect): new header, timecodes restart.
                self.header = None;
                self.last_timecode = None;
                self.pending_tags.clear();
                Flow::Continue
            }
            Event::SegmentStart { .. } => Flow::Continue,
            Event::Header(header) => {
                if header.tracks.len() > MAX_TRACKS {
                    self.ack_error(AckError::MoreThanAllowedTracks, None).await;
                    return Flow::Stop;
                }
                self.header = Some(header);
                Flow::Continue
            }
            Event::Tags(tags) => {
                // AWS_* tags are the protocol's own (END_OF_FRAGMENT and the like).
                self.pending_tags
                    .extend(tags.into_iter().filter(|t| !t.name.starts_with("AWS")));
                Flow::Continue
            }
            Event::ClusterStarted { timecode } => self.cluster_started(timecode).await,
            Event::Cluster(cluster) => self.cluster_complete(cluster).await,
        }
    }

    async fn cluster_started(&mut self, timecode: u64) -> Flow {
        if self.header.is_none() {
            self.current = None;
            self.ack_error(AckError::InvalidMkvData, None).await;
            return Flow::Stop;
        }
        let id = self.stream.id;
        let seq = match self
            .service
            .store_call(move |s| s.allocate_fragment_seq(id))
            .await
        {
            Ok(seq) => seq,
            Err(err) => {
                let error = if err.status == 404 {
                    AckError::StreamNotActive
                } else {
                    AckError::Internal
                };
                self.ack_error(error, None).await;
                return Flow::Stop;
            }
        };
        let number = fragment_number(id, seq);
        let tags = std::mem::take(&mut self.pending_tags);
        let mut rejected = None;
        if self.last_timecode.is_some_and(|last| timecode <= last) {
            rejected = Some(AckError::TimecodeLesserThanPrevious);
        } else if tags.len() > MAX_USER_TAGS {
            rejected = Some(AckError::MetadataLimitReached);
        } else if self.started.elapsed() > MAX_CONNECTION_DURATION {
            rejected = Some(AckError::MaxConnectionDuration);
        }
        let current = ClusterInProgress {
            timecode,
            seq,
            number,
            server_ts_ms: now_ms(),
            tags,
            rejected,
        };
        let flow = match rejected {
            Some(error) => {
                self.ack_error(error, Some(&current)).await;
                if error.ends_upload() {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            }
            None => {
                self.ack_event("BUFFERING", timecode, &current.number).await;
                Flow::Continue
            }
        };
        self.current = Some(current);
        flow
    }

    async fn cluster_complete(&mut self, cluster: Cluster) -> Flow {
        let Some(current) = self
            .current
            .take()
            .filter(|c| c.timecode == cluster.timecode)
        else {
            self.ack_error(AckError::InvalidMkvData, None).await;
            return Flow::Stop;
        };
        if current.rejected.is_some() {
            return Flow::Continue; // already answered with an ERROR ack
        }
        let result = match self.check(&cluster) {
            Ok((producer_ts_ms, duration_ms)) => {
                self.ack_event("RECEIVED", current.timecode, &current.number)
                    .await;
                self.last_timecode = Some(current.timecode);
                if self.stream.retention_hours == 0 {
                    // Nothing is kept, so nothing is PERSISTED (as AWS does).
                    return Flow::Continue;
                }
                self.persist(&current, &cluster, producer_ts_ms, duration_ms)
                    .await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(number) => {
                self.stored += 1;
                self.ack_event("PERSISTED", current.timecode, &number).await;
                Flow::Continue
            }
            Err(error) => {
                self.ack_error(error, Some(&current)).await;
                if error.ends_upload() {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            }
        }
    }

    /// Checks a complete Cluster against AWS's limits; returns its producer timestamp
    /// and duration in milliseconds.
    fn check(&self, cluster: &Cluster) -> Result<(i64, i64), AckError> {
        let header = self.header.as_ref().ok_or(AckError::InvalidMkvData)?;
        for track in &header.tracks {
            if !cluster.blocks.iter().any(|b| b.track == track.number) {
                return Err(AckError::FramesMissingForTrack);
            }
        }
        if cluster
            .blocks
            .iter()
            .any(|b| !header.tracks.iter().any(|t| t.number == b.track))
        {
            return Err(AckError::TrackNumberMismatch);
        }
        let scale = u128::from(header.timecode_scale_ns.max(1));
        let to_ms = |units: u128| units.saturating_mul(scale) / 1_000_000;
        let offset_ms = i64::try_from(to_ms(u128::from(cluster.timecode)))
            .map_err(|_| AckError::InvalidProducerTimestamp)?;
        let producer_ts_ms = match self.timecode_type {
            TimecodeType::Absolute => offset_ms,
            TimecodeType::Relative => self
                .producer_start_ms
                .checked_add(offset_ms)
                .ok_or(AckError::InvalidProducerTimestamp)?,
        };
        let duration_ms =
            i64::try_from(to_ms(u128::from(fragment_duration_units(cluster)))).unwrap_or(i64::MAX);
        if duration_ms > MAX_FRAGMENT_DURATION_MS {
            return Err(AckError::MaxFragmentDuration);
        }
        Ok((producer_ts_ms, duration_ms))
    }

    /// Stores the fragment (or recognises a re-sent one); returns the fragment number
    /// to acknowledge as PERSISTED.
    async fn persist(
        &self,
        current: &ClusterInProgress,
        cluster: &Cluster,
        producer_ts_ms: i64,
        duration_ms: i64,
    ) -> Result<String, AckError> {
        let header = self.header.as_ref().ok_or(AckError::InvalidMkvData)?;
        let hash = content_hash(cluster);
        let id = self.stream.id;
        let duplicate = self
            .service
            .store_call(move |s| s.find_duplicate(id, producer_ts_ms, &hash))
            .await
            .map_err(|_| AckError::Internal)?;
        if let Some(existing) = duplicate {
            tracing::info!(stream = %self.stream.name, fragment = %existing.number(), "Re-sent fragment recognised; not stored twice.");
            return Ok(existing.number());
        }
        let mut media = Vec::with_capacity(header.raw.len() + cluster.body.len() + 512);
        let stamp = FragmentStamp {
            fragment_number: &current.number,
            server_timestamp_ms: current.server_ts_ms,
            producer_timestamp_ms: producer_ts_ms,
        };
        write_fragment_prefix(
            &mut media,
            &header.raw,
            &stamp,
            &current.tags,
            &cluster.body,
        );
        let fragment = NewFragment {
            stream_id: id,
            seq: current.seq,
            producer_ts_ms,
            server_ts_ms: current.server_ts_ms,
            duration_ms,
            size_bytes: cluster.body.len() as i64,
            content_hash: hash,
            tracks_json: tracks_json(header),
            user_tags: current
                .tags
                .iter()
                .map(|t| (t.name.clone(), t.value.clone()))
                .collect(),
            media,
        };
        let seq = current.seq;
        let store = Arc::clone(&self.service.store);
        match tokio::task::spawn_blocking(move || store.put_fragment(fragment)).await {
            Ok(Ok(_)) => {
                self.service.live.stored(id, seq);
                Ok(current.number.clone())
            }
            Ok(Err(StoreError::NotFound)) => Err(AckError::StreamNotActive),
            Ok(Err(err)) => {
                tracing::error!(stream = %self.stream.name, error = %err, "Fragment could not be stored.");
                Err(AckError::Internal)
            }
            Err(_) => Err(AckError::Internal),
        }
    }
}

/// Whether a parse error at the start of a body is Segment content (a Cluster, its
/// blocks, Tags) arriving without the EBML header and Segment that must come first.
fn resumes_mid_stream(err: &ParseError) -> bool {
    use mkv_fragment::ids;
    matches!(
        err,
        ParseError::UnexpectedElement { id, .. }
            if [ids::CLUSTER, ids::SIMPLE_BLOCK, ids::BLOCK_GROUP, ids::TIMECODE, ids::TAGS].contains(id)
    )
}

/// A fragment's duration in timecode units: the span of its frames plus one frame
/// interval (the mean gap), or the last block's own duration when it has one.
fn fragment_duration_units(cluster: &Cluster) -> u64 {
    let times = cluster
        .blocks
        .iter()
        .map(|b| i64::from(b.relative_timecode));
    let (Some(min), Some(max)) = (times.clone().min(), times.max()) else {
        return 0;
    };
    let span = (max - min).max(0) as u64;
    let last_duration = cluster.blocks.last().and_then(|b| b.duration);
    let frames = cluster.blocks.len() as u64;
    match last_duration {
        Some(d) => span + d,
        None if frames > 1 => span + span / (frames - 1),
        None => 0,
    }
}

/// Identifies a fragment's content independently of its upload session: the frames,
/// their tracks, relative timecodes and key-frame flags.
fn content_hash(cluster: &Cluster) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for block in &cluster.blocks {
        hasher.update(block.track.to_be_bytes());
        hasher.update(block.relative_timecode.to_be_bytes());
        hasher.update([u8::from(block.keyframe)]);
        let data = cluster.body.get(block.data.clone()).unwrap_or_default();
        hasher.update((data.len() as u64).to_be_bytes());
        hasher.update(data);
    }
    hasher.finalize().into()
}

/// The session's tracks as stored in the index (codec, CodecPrivate, picture size).
fn tracks_json(header: &SegmentHeader) -> String {
    use base64::Engine;
    let tracks: Vec<_> = header
        .tracks
        .iter()
        .map(|t| {
            serde_json::json!({
                "TrackNumber": t.number,
                "TrackType": t.track_type,
                "CodecId": t.codec_id,
                "CodecPrivate": base64::engine::general_purpose::STANDARD.encode(&t.codec_private),
                "PixelWidth": t.pixel_width,
                "PixelHeight": t.pixel_height,
                "SamplingFrequency": t.sampling_frequency,
                "Channels": t.channels,
            })
        })
        .collect();
    serde_json::Value::from(tracks).to_string()
}

#[cfg(test)]
mod tests {
    use super::parse_start_timestamp;

    #[test]
    fn start_timestamps_read_like_the_c_producer_writes_them() {
        assert_eq!(
            parse_start_timestamp("1700000000.47"),
            Some(1_700_000_000_047)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.5"),
            Some(1_700_000_000_005)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.470"),
            Some(1_700_000_000_470)
        );
        assert_eq!(parse_start_timestamp("1700000000"), Some(1_700_000_000_000));
        assert_eq!(
            parse_start_timestamp("1700000000.4705"),
            Some(1_700_000_000_471)
        );
        assert_eq!(parse_start_timestamp("-1.0"), None);
        assert_eq!(parse_start_timestamp("abc"), None);
        assert_eq!(parse_start_timestamp("99999999999999999999"), None);
    }
}
