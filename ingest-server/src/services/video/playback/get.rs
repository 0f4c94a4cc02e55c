//! The GET endpoints of a streaming session (`/hls/v1/...`, `/dash/v1/...`), authorised by
//! the `SessionToken` query parameter alone, as AWS's are.
//!
//! | Path | Session | Query |
//! |---|---|---|
//! | `/hls/v1/getHLSMasterPlaylist.m3u8` | HLS | `SessionToken` |
//! | `/hls/v1/getHLSMediaPlaylist.m3u8` | HLS | `SessionToken`, `TrackNumber=1` |
//! | `/dash/v1/getDASHManifest.mpd` | DASH | `SessionToken` |
//! | `/{hls,dash}/v1/getMP4InitFragment.mp4` | fMP4 | `SessionToken`, `TrackNumber=1`, optional `FragmentNumber` (the fragment whose track it is) |
//! | `/{hls,dash}/v1/getMP4MediaFragment.mp4` | fMP4 | `SessionToken`, `TrackNumber=1`, `FragmentNumber` or (DASH) `MediaSequenceNumber`; LL-HLS parts add `Part` (`MediaSequenceNumber` only in the preload hint written between two fragments) |
//! | `/hls/v1/getTSFragment.ts` | HLS MPEG_TS | `SessionToken`, `TrackNumber=1`, `FragmentNumber` |
//!
//! Segments are converted from the stored fragment on each request, without re-encoding:
//! measured at about 0.07 ms (parse) + 0.02 ms (fMP4) or 0.3 ms (MPEG-TS) for a 1.1 MB, 2 s
//! 720p fragment in a release build, far below the file read and the transfer, so there is no
//! segment cache. Every response carries `Access-Control-Allow-Origin: *`; playlists and
//! manifests are `no-cache`, segments `immutable` for the rest of the session.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;

use super::super::live::PartialFragment;
use super::super::{RequestContext, VideoService, now_ms};
use super::dash_get;
use super::hls_get;
use super::ll_hls;
use super::media::{self, LoadError};
use super::selection::{FragMeta, Segment};
use super::session::{Container, Mode, Protocol, Session, TokenError};
use super::session_url::{REPLAY_BATCH, newest};
use crate::protocol::body::{ResponseBody, full};
use crate::protocol::error::AwsError;
use crate::storage::{
    FragmentQuery, StoreError, VideoStore, fragment_number, parse_fragment_number,
};

/// What a GET asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    MasterPlaylist,
    MediaPlaylist,
    Manifest,
    Init,
    Media,
    Ts,
}

/// How an LL-HLS part request names its segment.
#[derive(Debug, Clone, Copy)]
enum PartOf {
    /// `FragmentNumber`: the fragment's sequence in the stream.
    Fragment(i64),
    /// `MediaSequenceNumber`: the segment's place in the session.
    Msn(u64),
}

/// A session's current segments, as of one playlist request.
pub(super) struct Snapshot {
    /// The segments the playlist lists (the last `MaxResults` for live sessions).
    pub(super) window: Vec<Segment>,
    /// No more segments will come (ON_DEMAND, or LIVE_REPLAY played to its end).
    pub(super) ended: bool,
    /// EXT-X-TARGETDURATION (never shrinks within a session).
    pub(super) target_duration: u64,
    /// LL-HLS: the fragment being received, when it follows the window's last segment (its
    /// media sequence number is the next one).
    pub(super) partial: Option<PartialFragment>,
}

/// The decoded query string.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(
            query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A 200 response with the playback headers.
fn respond(
    content_type: &str,
    cache_control: &str,
    body: impl Into<Bytes>,
    ctx: &RequestContext,
) -> Response<ResponseBody> {
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", cache_control)
        .header("access-control-allow-origin", "*")
        .header("x-amzn-RequestId", &ctx.request_id)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn not_authorized(message: &str) -> AwsError {
    AwsError::new(403, "NotAuthorizedException", message)
}

fn not_in_session(what: &str) -> AwsError {
    AwsError::not_found(format!("{what} is not part of this streaming session."))
}

impl VideoService {
    /// Serves one playback GET; errors are AWS-shaped (the caller adds CORS).
    pub(super) async fn playback_get_inner(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let path = parts.uri.path();
        let (prefix, name) = if let Some(name) = path.strip_prefix("/hls/v1/") {
            (Protocol::Hls, name)
        } else if let Some(name) = path.strip_prefix("/dash/v1/") {
            (Protocol::Dash, name)
        } else {
            return Err(AwsError::not_found(format!(
                "No playback resource at {path}."
            )));
        };
        let resource = match (prefix, name) {
            (Protocol::Hls, "getHLSMasterPlaylist.m3u8") => Resource::MasterPlaylist,
            (Protocol::Hls, "getHLSMediaPlaylist.m3u8") => Resource::MediaPlaylist,
            (Protocol::Dash, "getDASHManifest.mpd") => Resource::Manifest,
            (_, "getMP4InitFragment.mp4") => Resource::Init,
            (_, "getMP4MediaFragment.mp4") => Resource::Media,
            (Protocol::Hls, "getTSFragment.ts") => Resource::Ts,
            _ => {
                return Err(AwsError::not_found(format!(
                    "No playback resource at {path}."
                )));
            }
        };
        let query = Query::parse(parts.uri.query());
        let token = query.get("SessionToken").ok_or_else(|| {
            AwsError::new(
                400,
                "MissingParameter",
                "The SessionToken query parameter is required.",
            )
        })?;
        let now = now_ms();
        let params = self
            .playback
            .key
            .verify(token, now)
            .map_err(|err| match err {
                TokenError::Expired => not_authorized("Streaming session token is expired."),
                TokenError::Invalid => not_authorized("The streaming session token is not valid."),
            })?;
        let session = self
            .playback
            .sessions
            .get(&params, now)
            .ok_or_else(|| not_authorized("Streaming session token is expired."))?;
        let p = &session.params;
        let allowed = match resource {
            Resource::MasterPlaylist | Resource::MediaPlaylist => p.protocol == Protocol::Hls,
            Resource::Manifest => p.protocol == Protocol::Dash,
            Resource::Init | Resource::Media => p.container == Container::Fmp4,
            Resource::Ts => p.protocol == Protocol::Hls && p.container == Container::Ts,
        };
        if !allowed {
            return Err(not_in_session(name));
        }
        if let Some(track) = query.get("TrackNumber")
            && resource != Resource::MasterPlaylist
            && resource != Resource::Manifest
            && track != "1"
        {
            return Err(not_in_session(&format!("Track {track}")));
        }
        match resource {
            Resource::MasterPlaylist => Ok(respond(
                "application/vnd.apple.mpegurl",
                "no-cache",
                hls_get::master_playlist(&session),
                ctx,
            )),
            Resource::MediaPlaylist => {
                let snapshot = if hls_get::is_low_latency(&session) {
                    self.low_latency_refresh(&session, &query).await?
                } else {
                    self.refresh(&session, now).await?
                };
                Ok(respond(
                    "application/vnd.apple.mpegurl",
                    "no-cache",
                    hls_get::media_playlist(&session, &snapshot),
                    ctx,
                ))
            }
            Resource::Manifest => {
                let snapshot = self.refresh(&session, now).await?;
                Ok(respond(
                    "application/dash+xml",
                    "no-cache",
                    dash_get::manifest(&session, &snapshot, now),
                    ctx,
                ))
            }
            Resource::Init => self.init_segment(&session, &query, now, ctx).await,
            Resource::Media | Resource::Ts => {
                self.media_segment(&session, &query, resource == Resource::Ts, now, ctx)
                    .await
            }
        }
    }

    /// Brings a live session's timeline up to date and returns what its playlist shows.
    async fn refresh(&self, session: &Arc<Session>, now: i64) -> Result<Snapshot, AwsError> {
        let session = Arc::clone(session);
        self.blocking(move |store| refresh_timeline(store, &session, now))
            .await?
            .map_err(super::super::store_error)
    }

    async fn init_segment(
        &self,
        session: &Arc<Session>,
        query: &Query,
        now: i64,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let p = &session.params;
        let init_seq = match query.get("FragmentNumber") {
            Some(number) if p.protocol == Protocol::Hls => {
                let seq = self.session_seq(session, number)?;
                let known = seq == session.info.first_seq || lock(session).is_init(seq);
                if !known {
                    return Err(not_in_session(&format!("The fragment {number}")));
                }
                seq
            }
            _ => session.info.first_seq,
        };
        let track = if init_seq == session.info.first_seq {
            session.info.track.clone()
        } else {
            let id = p.stream_id;
            let number = fragment_number(id, init_seq);
            let record = self
                .store_call(move |s| s.fragment(id, init_seq))
                .await?
                .ok_or_else(|| LoadError::Gone.into_aws(&number))?;
            media::track_of(&record).map_err(media::hls_error)?
        };
        let bytes = hls::fmp4::init_segment(&track).map_err(media::hls_error)?;
        Ok(respond(
            "video/mp4",
            &segment_cache(session, now),
            bytes,
            ctx,
        ))
    }

    async fn media_segment(
        &self,
        session: &Arc<Session>,
        query: &Query,
        ts: bool,
        now: i64,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        if let Some(part) = query.get("Part") {
            return self.part(session, query, part, now, ctx).await;
        }
        let p = &session.params;
        let segment = match (
            query.get("FragmentNumber"),
            query.get("MediaSequenceNumber"),
        ) {
            (Some(number), _) => {
                let seq = self.session_seq(session, number)?;
                lock(session)
                    .by_seq(seq)
                    .ok_or_else(|| not_in_session(&format!("The fragment {number}")))?
            }
            (None, Some(msn)) => {
                let msn: u64 = msn.parse().map_err(|_| {
                    AwsError::invalid_argument("The MediaSequenceNumber is not valid.")
                })?;
                lock(session)
                    .by_msn(msn)
                    .ok_or_else(|| not_in_session(&format!("Media sequence number {msn}")))?
            }
            (None, None) => {
                return Err(AwsError::new(
                    400,
                    "MissingParameter",
                    "The FragmentNumber query parameter is required.",
                ));
            }
        };
        let id = p.stream_id;
        let seq = segment.meta.seq;
        let origin = p.origin_ms;
        let dash = p.protocol == Protocol::Dash;
        let offset_ms = segment.offset_ms;
        let session_track = session.info.track.clone();
        let number = fragment_number(id, seq);
        let bytes = self
            .blocking(move |store| -> Result<Vec<u8>, LoadError> {
                let (_, mut fragment) = media::load(store, id, seq)?;
                media::shift(&mut fragment, offset_ms);
                if dash && !fragment.track.same_format(&session_track) {
                    // AWS: after the first fragment, DASH fragments with other codec private
                    // data fail when loaded.
                    return Err(LoadError::Convert(hls::HlsError::TrackChanged));
                }
                let converted = if ts {
                    hls::ts::fragment_ts(&fragment, origin, &mut hls::TsState::default())
                } else {
                    // mfhd sequence numbers only need to increase: the stream sequence does.
                    hls::fmp4::fragment_segment(&fragment, seq as u32, origin)
                };
                converted.map_err(LoadError::Convert)
            })
            .await?
            .map_err(|e| e.into_aws(&number))?;
        let content_type = if ts { "video/mp2t" } else { "video/mp4" };
        Ok(respond(
            content_type,
            &segment_cache(session, now),
            bytes,
            ctx,
        ))
    }

    /// LL-HLS playlist request: waits, as a blocking reload (`_HLS_msn`, `_HLS_part`) asks,
    /// until the playlist holds that segment or part (at most three target durations), and
    /// adds the fragment being received.
    async fn low_latency_refresh(
        &self,
        session: &Arc<Session>,
        query: &Query,
    ) -> Result<Snapshot, AwsError> {
        let number = |name: &str| -> Result<Option<u64>, AwsError> {
            query
                .get(name)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        AwsError::invalid_argument(format!(
                            "The {name} query parameter is not valid."
                        ))
                    })
                })
                .transpose()
        };
        let want_msn = number("_HLS_msn")?;
        let want_part = number("_HLS_part")?;
        let stream_id = session.params.stream_id;
        let mut live = self.live.subscribe(stream_id);
        let wait = ll_hls::max_wait(lock(session).target_duration);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            live.borrow_and_update();
            let mut snapshot = self.refresh(session, now_ms()).await?;
            let last = snapshot.window.last().copied();
            let partial = self
                .live
                .partial(stream_id)
                .filter(|f| last.is_none_or(|s| f.seq > s.meta.seq));
            let partial_msn = last.map_or(0, |s| s.msn + 1);
            let ready = match (want_msn, last) {
                (None, _) => true,
                (Some(msn), Some(s)) if msn <= s.msn => true,
                (Some(msn), _) if msn == partial_msn => match (want_part, &partial) {
                    (Some(part), Some(f)) => ll_hls::complete_parts(f) > part as usize,
                    _ => false,
                },
                _ => false,
            };
            snapshot.partial = partial;
            if ready {
                return Ok(snapshot);
            }
            match tokio::time::timeout_at(deadline, live.changed()).await {
                Ok(Ok(())) => {}
                // Waited long enough (or the stream is gone): the playlist as it is.
                _ => return Ok(snapshot),
            }
        }
    }

    /// An LL-HLS part: from the fragment being received while it is, from the store once
    /// stored. A part not complete yet (the preload hint) is waited for. The part is named by
    /// `FragmentNumber`, or by `MediaSequenceNumber` (the preload hint written between two
    /// fragments, before the next fragment's number is known: it is the fragment that
    /// becomes that media sequence number, the one being received after the session's last).
    async fn part(
        &self,
        session: &Arc<Session>,
        query: &Query,
        part: &str,
        now: i64,
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        if !hls_get::is_low_latency(session) {
            return Err(not_in_session("Parts"));
        }
        let k: usize = part
            .parse()
            .map_err(|_| AwsError::invalid_argument("The Part query parameter is not valid."))?;
        let target = match (
            query.get("FragmentNumber"),
            query.get("MediaSequenceNumber"),
        ) {
            (Some(number), _) => PartOf::Fragment(self.session_seq(session, number)?),
            (None, Some(msn)) => PartOf::Msn(msn.parse().map_err(|_| {
                AwsError::invalid_argument("The MediaSequenceNumber is not valid.")
            })?),
            (None, None) => {
                return Err(AwsError::new(
                    400,
                    "MissingParameter",
                    "The FragmentNumber query parameter is required.",
                ));
            }
        };
        let name = match target {
            PartOf::Fragment(_) => format!(
                "fragment {}",
                query.get("FragmentNumber").unwrap_or_default()
            ),
            PartOf::Msn(msn) => format!("media sequence number {msn}"),
        };
        let p = &session.params;
        let (id, origin) = (p.stream_id, p.origin_ms);
        if let PartOf::Fragment(seq) = target {
            let timeline = lock(session);
            // Fragments the session lists, or newer ones (being received).
            if timeline.by_seq(seq).is_none() && seq <= timeline.last_seq {
                return Err(not_in_session(&format!("The {name}")));
            }
        }
        let target_duration = lock(session).target_duration;
        let mut live = self.live.subscribe(id);
        let deadline = tokio::time::Instant::now() + ll_hls::max_wait(target_duration);
        loop {
            live.borrow_and_update();
            let partial = self.live.partial(id);
            // Which fragment, and where it sits on the session's media timeline.
            let (seq, offset_ms) = match target {
                PartOf::Fragment(seq) => {
                    let timeline = lock(session);
                    let segment = timeline.by_seq(seq);
                    let latest = timeline.window(1).last().copied();
                    (Some(seq), segment.or(latest).map_or(0, |s| s.offset_ms))
                }
                PartOf::Msn(msn) => {
                    // The store may hold fragments the timeline has not taken yet.
                    if lock(session).last_seq < live.borrow().latest_seq {
                        self.refresh(session, now_ms()).await?;
                    }
                    let timeline = lock(session);
                    let last = timeline.window(1).last().copied();
                    let next_msn = last.map_or(0, |s| s.msn + 1);
                    if let Some(segment) = timeline.by_msn(msn) {
                        (Some(segment.meta.seq), segment.offset_ms)
                    } else if msn == next_msn {
                        let seq = partial
                            .as_ref()
                            .map(|f| f.seq)
                            .filter(|&seq| seq > timeline.last_seq);
                        (seq, last.map_or(0, |s| s.offset_ms))
                    } else {
                        return Err(not_in_session(&format!("The {name}")));
                    }
                }
            };
            if let Some(seq) = seq {
                if let Some(partial) = partial.filter(|f| f.seq == seq) {
                    if let Some(mut samples) = ll_hls::partial_samples(&partial, k) {
                        media::shift_samples(&mut samples, offset_ms);
                        let track = ll_hls::partial_track(&partial).map_err(media::hls_error)?;
                        let bytes = hls::fmp4::part(&track, &samples, seq as u32, origin)
                            .map_err(media::hls_error)?;
                        return Ok(respond(
                            "video/mp4",
                            &segment_cache(session, now),
                            bytes,
                            ctx,
                        ));
                    }
                } else {
                    let number = fragment_number(id, seq);
                    let stored = self
                        .blocking(move |store| -> Result<Option<Vec<u8>>, LoadError> {
                            let fragment = match media::load(store, id, seq) {
                                Ok((_, fragment)) => fragment,
                                Err(LoadError::Gone) => return Ok(None),
                                Err(e) => return Err(e),
                            };
                            let mut fragment = fragment;
                            media::shift(&mut fragment, offset_ms);
                            let samples =
                                ll_hls::stored_samples(&fragment, k).ok_or(LoadError::Gone)?;
                            hls::fmp4::part(&fragment.track, &samples, seq as u32, origin)
                                .map(Some)
                                .map_err(LoadError::Convert)
                        })
                        .await?
                        .map_err(|e| e.into_aws(&number))?;
                    if let Some(bytes) = stored {
                        return Ok(respond(
                            "video/mp4",
                            &segment_cache(session, now),
                            bytes,
                            ctx,
                        ));
                    }
                }
            }
            match tokio::time::timeout_at(deadline, live.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(not_in_session(&format!("Part {k} of the {name}"))),
            }
        }
    }

    /// The sequence of a fragment number of the session's stream.
    fn session_seq(&self, session: &Session, number: &str) -> Result<i64, AwsError> {
        match parse_fragment_number(number) {
            Some((stream_id, seq)) if stream_id == session.params.stream_id => Ok(seq),
            _ => Err(not_in_session(&format!("The fragment {number}"))),
        }
    }
}

fn lock(session: &Session) -> std::sync::MutexGuard<'_, super::selection::Timeline> {
    session.timeline.lock().unwrap_or_else(|p| p.into_inner())
}

/// Segments never change; they may be cached until the session expires.
fn segment_cache(session: &Session, now: i64) -> String {
    let remaining = ((session.params.expires_ms - now) / 1000).max(0);
    format!("private, max-age={remaining}, immutable")
}

/// Updates the timeline of a LIVE / LIVE_REPLAY session from the index (blocking) and
/// returns the window to list.
fn refresh_timeline(
    store: &dyn VideoStore,
    session: &Session,
    now: i64,
) -> Result<Snapshot, StoreError> {
    let p = &session.params;
    let max = p.max_results as usize;
    if p.mode == Mode::Live {
        // Read the index without holding the session's lock (segment requests take it).
        let after = lock(session).last_seq;
        let records = newest(store, p.stream_id, after, max)?;
        let mut timeline = lock(session);
        for record in records {
            // A concurrent refresh may have taken these already.
            if record.seq > timeline.last_seq {
                timeline.last_seq = record.seq;
                timeline.offer(FragMeta::from_record(&record));
            }
        }
    }
    let mut timeline = lock(session);
    match p.mode {
        Mode::OnDemand | Mode::Live => {}
        Mode::LiveReplay => {
            let elapsed = now - p.created_ms;
            let range = (
                p.kind.storage(),
                p.start_ms.unwrap_or(0),
                p.end_ms.unwrap_or(i64::MAX),
            );
            loop {
                timeline.release_due(elapsed);
                if timeline.has_pending() || timeline.ended {
                    break;
                }
                let batch = store.list_fragments(
                    p.stream_id,
                    &FragmentQuery {
                        range: Some(range),
                        after_seq: Some(timeline.last_seq),
                        limit: REPLAY_BATCH,
                    },
                )?;
                if batch.is_empty() {
                    if p.end_ms.is_some_and(|end| end <= now) {
                        timeline.ended = true;
                    }
                    break;
                }
                for record in &batch {
                    timeline.last_seq = record.seq;
                    timeline.queue(FragMeta::from_record(record));
                }
            }
        }
    }
    let window = timeline.window(max);
    let target = window
        .iter()
        .map(|s| (s.meta.duration_ms as f64 / 1000.0).round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    timeline.target_duration = timeline.target_duration.max(target);
    Ok(Snapshot {
        ended: p.mode == Mode::OnDemand || timeline.ended,
        target_duration: timeline.target_duration,
        window,
        partial: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_decodes_percent_escapes() {
        let q = Query::parse(Some(
            "SessionToken=ab%2Dc&TrackNumber=1&x&FragmentNumber=9%",
        ));
        assert_eq!(q.get("SessionToken"), Some("ab-c"));
        assert_eq!(q.get("TrackNumber"), Some("1"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("FragmentNumber"), Some("9%"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }
}
