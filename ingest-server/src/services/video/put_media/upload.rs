//! One PutMedia connection: reads the body, parses it into fragments, checks them
//! against AWS's limits, stores them and streams the acks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use mkv_fragment::getmedia::{FragmentStamp, write_fragment_prefix};
use mkv_fragment::{
    Block, Cluster, Event, ParseError, ParserLimits, SegmentHeader, SimpleTag, StreamParser,
};
use tokio::sync::mpsc;

use super::ack::AckError;
use super::fragment::{content_hash, fragment_duration_units, resumes_mid_stream, tracks_json};
use super::headers::{PutMediaHeaders, TimecodeType};
use super::{
    MAX_CONNECTION_DURATION, MAX_FRAGMENT_BYTES, MAX_FRAGMENT_DURATION_MS, MAX_TRACKS,
    MAX_USER_TAGS,
};
use crate::services::video::live::{PartialFragment, PartialFrame};
use crate::services::video::{VideoService, now_ms};
use crate::storage::{NewFragment, StoreError, StreamRecord, fragment_number};

/// One read from a request body: a frame, a read error, or the end.
pub(super) type BodyFrame<B> =
    Option<Result<http_body::Frame<Bytes>, <B as http_body::Body>::Error>>;

/// How long, and how much, of a failed upload's remaining body is read and discarded.
const DISCARD_AFTER_ERROR_FOR: Duration = Duration::from_secs(1);
const DISCARD_AFTER_ERROR_BYTES: usize = 16 * 1024 * 1024;

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
pub(super) struct Upload {
    service: Arc<VideoService>,
    stream: StreamRecord,
    acks: Option<mpsc::Sender<Bytes>>,
    timecode_type: TimecodeType,
    producer_start_ms: i64,
    parser: StreamParser,
    /// The current session's header (from the latest EBML header + Segment); shared with
    /// the live feed of the fragment being received.
    header: Option<Arc<SegmentHeader>>,
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
    /// The state of a new upload to `stream`; acks go to `acks` when the producer wants them.
    pub(super) fn new(
        service: Arc<VideoService>,
        stream: StreamRecord,
        headers: &PutMediaHeaders,
        acks: Option<mpsc::Sender<Bytes>>,
    ) -> Self {
        Self {
            service,
            acks,
            timecode_type: headers.timecode_type,
            producer_start_ms: headers.producer_start_ms,
            // Frames are published as they arrive, for low-latency HLS parts.
            parser: StreamParser::new(ParserLimits {
                max_element_size: MAX_FRAGMENT_BYTES + 1024 * 1024,
                ..ParserLimits::default()
            })
            .with_block_events(),
            header: None,
            pending_tags: Vec::new(),
            last_timecode: None,
            current: None,
            seen_ebml_header: false,
            started: Instant::now(),
            stored: 0,
            stream,
        }
    }

    /// Reads the body to its end (or until the upload must stop). `first` is a frame
    /// already read before the response was sent.
    pub(super) async fn run<B>(mut self, mut body: B, mut first: Option<BodyFrame<B>>)
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
        if let Some(current) = &self.current {
            // The producer left mid-fragment: the partial fragment is not stored.
            self.service.live.partial_ended(self.stream.id, current.seq);
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
                self.header = Some(Arc::new(header));
                Flow::Continue
            }
            Event::Tags(tags) => {
                // AWS_* tags are the protocol's own (END_OF_FRAGMENT and the like).
                self.pending_tags
                    .extend(tags.into_iter().filter(|t| !t.name.starts_with("AWS")));
                Flow::Continue
            }
            Event::ClusterStarted { timecode } => self.cluster_started(timecode).await,
            Event::ClusterBlock { block, payload } => {
                self.publish_frame(&block, payload);
                Flow::Continue
            }
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
                if let (Some(header), Some(start_ms)) =
                    (&self.header, self.producer_ms(timecode, 0))
                {
                    let partial = PartialFragment {
                        seq,
                        producer_start_ms: start_ms,
                        header: header.clone(),
                        frames: Vec::new(),
                    };
                    self.service.live.partial_started(id, partial);
                }
                Flow::Continue
            }
        };
        self.current = Some(current);
        flow
    }

    /// Publishes a frame of the fragment being received to live readers.
    fn publish_frame(&self, block: &Block, payload: Vec<u8>) {
        let Some(current) = self.current.as_ref().filter(|c| c.rejected.is_none()) else {
            return;
        };
        let Some(pts_ms) = self.producer_ms(current.timecode, block.relative_timecode) else {
            return;
        };
        let frame = PartialFrame {
            track: block.track,
            pts_ms,
            keyframe: block.keyframe,
            data: Bytes::from(payload),
        };
        self.service
            .live
            .partial_frame(self.stream.id, current.seq, frame);
    }

    /// Producer time in ms of a block: Cluster timecode plus relative timecode, in
    /// TimecodeScale units, made absolute for RELATIVE uploads.
    fn producer_ms(&self, cluster_timecode: u64, relative: i16) -> Option<i64> {
        let header = self.header.as_ref()?;
        let scale = i128::from(header.timecode_scale_ns.max(1));
        let units = i128::from(cluster_timecode) + i128::from(relative);
        let offset_ms = i64::try_from(units.saturating_mul(scale) / 1_000_000).ok()?;
        match self.timecode_type {
            TimecodeType::Absolute => Some(offset_ms),
            TimecodeType::Relative => self.producer_start_ms.checked_add(offset_ms),
        }
    }

    async fn cluster_complete(&mut self, cluster: Cluster) -> Flow {
        let seq = self.current.as_ref().map(|c| c.seq);
        let flow = self.store_cluster(cluster).await;
        if let Some(seq) = seq {
            // Stored (readers find it in the store now) or refused: no longer partial.
            self.service.live.partial_ended(self.stream.id, seq);
        }
        flow
    }

    async fn store_cluster(&mut self, cluster: Cluster) -> Flow {
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
        let producer_ts_ms = self
            .producer_ms(cluster.timecode, 0)
            .ok_or(AckError::InvalidProducerTimestamp)?;
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
