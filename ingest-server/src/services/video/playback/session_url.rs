//! `GetHLSStreamingSessionURL` and `GetDASHStreamingSessionURL`: validate the request as the
//! model and docs describe, pick the session's first fragments, check that they can be played
//! (retention, H.264 with valid codec private data), register the session and return its URL
//! on the endpoint the client called.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::json;

use super::super::shapes::{FragmentSelector, StreamRef};
use super::super::{RequestContext, VideoService, json_response, now_ms};
use super::media::{self, LoadError};
use super::selection::{DiscontinuityMode, FragMeta, Kind, RangeCollector, Timeline};
use super::session::{
    Container, MAX_SESSIONS_PER_STREAM, Mode, Protocol, Session, SessionInfo, SessionParams,
};
use crate::protocol::body::{ResponseBody, decode_json};
use crate::protocol::error::AwsError;
use crate::protocol::validate::Validation;
use crate::storage::{FragmentQuery, FragmentRecord, StreamRecord, VideoStore};

use http::Response;

const MODES: &[&str] = &["LIVE", "LIVE_REPLAY", "ON_DEMAND"];
pub(crate) const SELECTOR_TYPES: &[&str] = &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"];
const CONTAINERS: &[&str] = &["FRAGMENTED_MP4", "MPEG_TS"];
const DISCONTINUITY_MODES: &[&str] = &["ALWAYS", "NEVER", "ON_DISCONTINUITY"];
const ALWAYS_NEVER: &[&str] = &["ALWAYS", "NEVER"];

/// `Expires` bounds and default, seconds.
const EXPIRES_MIN: i64 = 300;
const EXPIRES_MAX: i64 = 43_200;
const EXPIRES_DEFAULT: i64 = 300;
/// `Max...FragmentResults` bounds and defaults.
const MAX_RESULTS_MAX: i64 = 5000;
const MAX_RESULTS_LIVE: i64 = 5;
const MAX_RESULTS_ON_DEMAND: i64 = 1000;
/// A LIVE session needs a fragment ingested within this many ms (AWS: 30 s).
const LIVE_RECENT_MS: i64 = 30_000;
/// The longest `TimestampRange` (AWS: 24 hours).
const MAX_RANGE_MS: i64 = 24 * 3600 * 1000;
/// Segments a LIVE/LIVE_REPLAY session remembers behind its window, so that a player that
/// is a little behind can still fetch them.
const LIVE_HISTORY: usize = 120;
/// Fragments read from the index per page.
pub(crate) const PAGE: usize = 1000;
/// LIVE_REPLAY: fragments read ahead from the index per refill.
pub(crate) const REPLAY_BATCH: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HlsInput {
    #[serde(flatten)]
    stream: StreamRef,
    playback_mode: Option<String>,
    #[serde(rename = "HLSFragmentSelector")]
    selector: Option<FragmentSelector>,
    container_format: Option<String>,
    discontinuity_mode: Option<String>,
    display_fragment_timestamp: Option<String>,
    expires: Option<i64>,
    max_media_playlist_fragment_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DashInput {
    #[serde(flatten)]
    stream: StreamRef,
    playback_mode: Option<String>,
    #[serde(rename = "DASHFragmentSelector")]
    selector: Option<FragmentSelector>,
    display_fragment_timestamp: Option<String>,
    display_fragment_number: Option<String>,
    expires: Option<i64>,
    max_manifest_fragment_results: Option<i64>,
}

/// The members both operations share.
struct SessionRequest<'a> {
    protocol: Protocol,
    stream: &'a StreamRef,
    mode: Option<&'a str>,
    selector: Option<&'a FragmentSelector>,
    /// The selector's member name in messages: `hLSFragmentSelector` / `dASHFragmentSelector`.
    selector_field: &'static str,
    selector_name: &'static str,
    container: Option<&'a str>,
    discontinuity: Option<&'a str>,
    display_timestamp: Option<&'a str>,
    display_fragment_number: Option<&'a str>,
    expires: Option<i64>,
    max_results: Option<i64>,
    max_field: &'static str,
}

/// Checks a fixed timestamp range as the docs require: the end later than the start,
/// within 24 hours of it, and in the past for server timestamps.
pub(crate) fn check_range(
    kind: Kind,
    start_ms: i64,
    end_ms: Option<i64>,
    now_ms: i64,
) -> Result<(), AwsError> {
    let Some(end_ms) = end_ms else { return Ok(()) };
    if end_ms <= start_ms {
        return Err(AwsError::invalid_argument(
            "The EndTimestamp must be later than the StartTimestamp.",
        ));
    }
    if end_ms - start_ms > MAX_RANGE_MS {
        return Err(AwsError::invalid_argument(
            "The EndTimestamp must be within 24 hours of the StartTimestamp.",
        ));
    }
    if kind == Kind::Server && end_ms > now_ms {
        return Err(AwsError::invalid_argument(
            "The EndTimestamp must be in the past when the FragmentSelectorType is SERVER_TIMESTAMP.",
        ));
    }
    Ok(())
}

/// `NoDataRetentionException` for a stream that keeps nothing.
pub(crate) fn check_retention(stream: &StreamRecord) -> Result<(), AwsError> {
    if stream.retention_hours <= 0 {
        return Err(AwsError::new(
            400,
            "NoDataRetentionException",
            format!(
                "The stream {} does not retain data (DataRetentionInHours is 0).",
                stream.name
            ),
        ));
    }
    Ok(())
}

/// The fragments of a fixed range, in playback order (ON_DEMAND, GetClip), reading the
/// index page by page until `max` distinct fragments are collected. `budget` stops earlier
/// once the summed fragment sizes would exceed it (GetClip's 100 MB).
pub(crate) fn select_range(
    store: &dyn VideoStore,
    stream_id: i64,
    kind: Kind,
    start_ms: i64,
    end_ms: i64,
    max: usize,
    budget: Option<i64>,
) -> Result<Vec<FragMeta>, crate::storage::StoreError> {
    let mut collector = RangeCollector::new(kind, max);
    let mut after_seq = None;
    let mut total: i64 = 0;
    'pages: loop {
        let page = store.list_fragments(
            stream_id,
            &FragmentQuery {
                range: Some((kind.storage(), start_ms, end_ms)),
                after_seq,
                limit: PAGE,
            },
        )?;
        for record in &page {
            let meta = FragMeta::from_record(record);
            if let Some(budget) = budget {
                if total > 0 && total.saturating_add(meta.size_bytes) > budget {
                    break 'pages;
                }
                total = total.saturating_add(meta.size_bytes);
            }
            if !collector.push(meta) {
                break 'pages;
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after_seq = Some(last.seq),
            _ => break,
        }
    }
    Ok(collector.finish())
}

/// The newest `n` fragments of a stream (fewer if sequence numbers have gaps), in
/// ingestion order.
pub(crate) fn newest(
    store: &dyn VideoStore,
    stream_id: i64,
    after_seq: i64,
    n: usize,
) -> Result<Vec<FragmentRecord>, crate::storage::StoreError> {
    let Some(latest) = store.latest_seq(stream_id)? else {
        return Ok(Vec::new());
    };
    if latest <= after_seq {
        return Ok(Vec::new());
    }
    let span = (n as i64).saturating_mul(2).saturating_add(16);
    let from = after_seq.max(latest - span);
    let mut batch = store.fragments_after(stream_id, from, (latest - from) as usize)?;
    if batch.len() > span as usize {
        batch.drain(..batch.len() - span as usize);
    }
    Ok(batch)
}

impl VideoService {
    pub(super) async fn get_hls_streaming_session_url(
        self: &Arc<Self>,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let input: HlsInput = decode_json(body)?;
        let request = SessionRequest {
            protocol: Protocol::Hls,
            stream: &input.stream,
            mode: input.playback_mode.as_deref(),
            selector: input.selector.as_ref(),
            selector_field: "hLSFragmentSelector",
            selector_name: "HLSFragmentSelector",
            container: input.container_format.as_deref(),
            discontinuity: input.discontinuity_mode.as_deref(),
            display_timestamp: input.display_fragment_timestamp.as_deref(),
            display_fragment_number: None,
            expires: input.expires,
            max_results: input.max_media_playlist_fragment_results,
            max_field: "maxMediaPlaylistFragmentResults",
        };
        let url = self.create_session(&request, ctx).await?;
        Ok(json_response(
            &json!({ "HLSStreamingSessionURL": url }),
            ctx,
        ))
    }

    pub(super) async fn get_dash_streaming_session_url(
        self: &Arc<Self>,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let input: DashInput = decode_json(body)?;
        let request = SessionRequest {
            protocol: Protocol::Dash,
            stream: &input.stream,
            mode: input.playback_mode.as_deref(),
            selector: input.selector.as_ref(),
            selector_field: "dASHFragmentSelector",
            selector_name: "DASHFragmentSelector",
            container: None,
            discontinuity: None,
            display_timestamp: input.display_fragment_timestamp.as_deref(),
            display_fragment_number: input.display_fragment_number.as_deref(),
            expires: input.expires,
            max_results: input.max_manifest_fragment_results,
            max_field: "maxManifestFragmentResults",
        };
        let url = self.create_session(&request, ctx).await?;
        Ok(json_response(
            &json!({ "DASHStreamingSessionURL": url }),
            ctx,
        ))
    }

    /// Runs a blocking closure over the store on the blocking pool.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn VideoStore) -> T + Send + 'static,
    ) -> Result<T, AwsError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "Playback task failed.");
                AwsError::internal()
            })
    }

    /// Validates, selects, registers; returns the session URL.
    async fn create_session(
        self: &Arc<Self>,
        req: &SessionRequest<'_>,
        ctx: &RequestContext,
    ) -> Result<String, AwsError> {
        let mut v = Validation::new();
        req.stream.check(&mut v);
        v.one_of("playbackMode", req.mode, MODES);
        if let Some(selector) = req.selector {
            v.one_of(
                &format!("{}.fragmentSelectorType", req.selector_field),
                selector.fragment_selector_type.as_deref(),
                SELECTOR_TYPES,
            );
        }
        v.one_of("containerFormat", req.container, CONTAINERS);
        v.one_of("discontinuityMode", req.discontinuity, DISCONTINUITY_MODES);
        v.one_of(
            "displayFragmentTimestamp",
            req.display_timestamp,
            ALWAYS_NEVER,
        );
        v.one_of(
            "displayFragmentNumber",
            req.display_fragment_number,
            ALWAYS_NEVER,
        );
        v.int("expires", req.expires, EXPIRES_MIN, EXPIRES_MAX);
        v.int(req.max_field, req.max_results, 1, MAX_RESULTS_MAX);
        v.finish()?;

        let mode = req.mode.and_then(Mode::parse).unwrap_or(Mode::Live);
        let selector_type = req
            .selector
            .and_then(|s| s.fragment_selector_type.as_deref());
        let kind = selector_type.and_then(Kind::parse).unwrap_or(Kind::Server);
        let range = req.selector.and_then(|s| s.timestamp_range.as_ref());
        let now = now_ms();
        let (start_ms, end_ms) = match mode {
            Mode::Live => {
                if range.is_some() {
                    return Err(AwsError::invalid_argument(format!(
                        "The TimestampRange of the {} must not be set when the PlaybackMode is LIVE.",
                        req.selector_name
                    )));
                }
                (None, None)
            }
            Mode::LiveReplay | Mode::OnDemand => {
                let mode_name = if mode == Mode::OnDemand {
                    "ON_DEMAND"
                } else {
                    "LIVE_REPLAY"
                };
                let (Some(range), Some(_)) = (range, selector_type) else {
                    return Err(AwsError::invalid_argument(format!(
                        "The {} with a FragmentSelectorType and a TimestampRange is required when \
                         the PlaybackMode is {mode_name}.",
                        req.selector_name
                    )));
                };
                let start = range.start_timestamp.map(|t| t.millis()).ok_or_else(|| {
                    AwsError::invalid_argument(
                        "The StartTimestamp of the TimestampRange is required.",
                    )
                })?;
                let end = range.end_timestamp.map(|t| t.millis());
                if mode == Mode::OnDemand && end.is_none() {
                    return Err(AwsError::invalid_argument(
                        "The EndTimestamp of the TimestampRange is required when the PlaybackMode is ON_DEMAND.",
                    ));
                }
                check_range(kind, start, end, now)?;
                (Some(start), end)
            }
        };
        let container = match req.container {
            Some("MPEG_TS") => Container::Ts,
            _ => Container::Fmp4,
        };
        let discontinuity = req
            .discontinuity
            .and_then(DiscontinuityMode::parse)
            .unwrap_or(match kind {
                Kind::Server => DiscontinuityMode::Always,
                Kind::Producer => DiscontinuityMode::Never,
            });
        let expires_s = req.expires.unwrap_or(EXPIRES_DEFAULT);
        let max = req.max_results.unwrap_or(if mode == Mode::OnDemand {
            MAX_RESULTS_ON_DEMAND
        } else {
            MAX_RESULTS_LIVE
        }) as usize;

        let stream = self.resolve_ref(req.stream).await?;
        check_retention(&stream)?;
        let limit_error = || {
            AwsError::new(
                400,
                "ClientLimitExceededException",
                format!(
                    "The stream {} already has the maximum of {MAX_SESSIONS_PER_STREAM} active \
                     streaming sessions; wait for one to expire.",
                    stream.name
                ),
            )
        };
        if self.playback.sessions.active(stream.id, req.protocol, now) >= MAX_SESSIONS_PER_STREAM {
            return Err(limit_error());
        }

        // The session's first fragments.
        let history = if mode == Mode::OnDemand {
            max
        } else {
            max + LIVE_HISTORY
        };
        let mut timeline = Timeline::new(kind, discontinuity, history);
        let id = stream.id;
        let initial: Vec<FragMeta> = match mode {
            Mode::OnDemand => {
                let (start, end) = (start_ms.unwrap_or(0), end_ms.unwrap_or(i64::MAX));
                let selected = self
                    .store_call(move |s| select_range(s, id, kind, start, end, max, None))
                    .await?;
                for meta in &selected {
                    timeline.append(*meta);
                }
                selected
            }
            Mode::Live => {
                let records = self.store_call(move |s| newest(s, id, 0, max)).await?;
                let recent = records
                    .last()
                    .is_some_and(|r| r.server_ts_ms >= now - LIVE_RECENT_MS);
                if !recent {
                    return Err(AwsError::not_found(format!(
                        "No fragments were ingested into the stream {} in the last 30 seconds.",
                        stream.name
                    )));
                }
                let metas: Vec<FragMeta> = records.iter().map(FragMeta::from_record).collect();
                for meta in &metas {
                    timeline.last_seq = meta.seq;
                    timeline.offer(*meta);
                }
                // The window the first playlist shows.
                let window = timeline.window(max);
                metas
                    .into_iter()
                    .filter(|m| window.iter().any(|s| s.meta.seq == m.seq))
                    .collect()
            }
            Mode::LiveReplay => {
                let (start, end) = (start_ms.unwrap_or(0), end_ms.unwrap_or(i64::MAX));
                let batch = self
                    .store_call(move |s| {
                        s.list_fragments(
                            id,
                            &FragmentQuery {
                                range: Some((kind.storage(), start, end)),
                                after_seq: None,
                                limit: REPLAY_BATCH,
                            },
                        )
                    })
                    .await?;
                let metas: Vec<FragMeta> = batch.iter().map(FragMeta::from_record).collect();
                for meta in &metas {
                    timeline.last_seq = meta.seq;
                    timeline.queue(*meta);
                }
                timeline.release_due(0);
                metas
            }
        };
        let Some(first) = timeline.window(max).first().copied() else {
            return Err(AwsError::not_found(format!(
                "No fragments were found in the stream {} for the requested time range.",
                stream.name
            )));
        };

        // The first fragment must be playable; its first frame starts the timeline.
        let first_seq = first.meta.seq;
        let number = crate::storage::fragment_number(id, first_seq);
        let record = self
            .store_call(move |s| s.fragment(id, first_seq))
            .await?
            .ok_or_else(|| LoadError::Gone.into_aws(&number))?;
        let track = media::check_playable(&record)?;
        let fragment = self
            .blocking(move |s| media::parse(s, &record))
            .await?
            .map_err(|e| e.into_aws(&number))?;
        // The first segment's first frame (its decode time) starts the session's timeline.
        let origin_ms = fragment
            .start_ms()
            .min(first.meta.producer_ts_ms.max(0) as u64);

        let window = timeline.window(max);
        let window_end = window
            .iter()
            .map(|s| (s.media_start_ms() + s.meta.duration_ms).max(0) as u64)
            .max()
            .unwrap_or(origin_ms);
        let peak = hls::playlist::peak_bandwidth(
            &initial
                .iter()
                .map(|m| (m.size_bytes.max(0) as usize, m.duration_ms as f64 / 1000.0))
                .collect::<Vec<_>>(),
        );
        // MPEG-TS adds packet and PES overhead (5-25% per AWS); fMP4 a few hundred bytes.
        let bandwidth = match container {
            Container::Ts => peak.saturating_mul(5) / 4,
            Container::Fmp4 => peak.saturating_mul(21) / 20,
        }
        .max(1);
        let info = SessionInfo {
            track,
            first_seq,
            bandwidth,
            availability_start_ms: now - window_end.saturating_sub(origin_ms) as i64,
        };
        let params = SessionParams {
            session_id: rand::random(),
            protocol: req.protocol,
            stream_id: stream.id,
            mode,
            kind,
            start_ms,
            end_ms,
            container,
            discontinuity,
            display_timestamp: req.display_timestamp == Some("ALWAYS"),
            display_fragment_number: req.display_fragment_number == Some("ALWAYS"),
            max_results: max as u32,
            origin_ms,
            created_ms: now,
            expires_ms: now + expires_s * 1000,
        };
        let token = self.playback.key.sign(&params);
        let session = Session {
            params,
            token: token.clone(),
            info,
            timeline: Mutex::new(timeline),
        };
        let session = self
            .playback
            .sessions
            .insert(session, now)
            .map_err(|_| limit_error())?;
        tracing::info!(
            stream = %stream.name,
            session = %session.params.id(),
            protocol = ?req.protocol,
            mode = ?mode,
            "Streaming session created."
        );
        let url = match req.protocol {
            Protocol::Hls => format!(
                "{}://{}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken={token}",
                self.scheme, ctx.authority
            ),
            Protocol::Dash => format!(
                "{}://{}/dash/v1/getDASHManifest.mpd?SessionToken={token}",
                self.scheme, ctx.authority
            ),
        };
        Ok(url)
    }
}
