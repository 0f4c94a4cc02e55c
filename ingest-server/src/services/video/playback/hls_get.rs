//! HLS master and media playlists of a session (written by the `hls` crate).
//!
//! URIs are relative (`getHLSMediaPlaylist.m3u8?...`), so a playlist works on whichever
//! listener and host name the player used. Media playlists use AWS's forms:
//! `getMP4MediaFragment.mp4?FragmentNumber=…&SessionToken=…&TrackNumber=1` (or
//! `getTSFragment.ts?…`), EXT-X-MAP `getMP4InitFragment.mp4?FragmentNumber=…` naming the first
//! fragment of a run with the same codec private data, EXT-X-MEDIA-SEQUENCE and
//! EXT-X-DISCONTINUITY-SEQUENCE from the session's [`super::selection::Timeline`],
//! EXT-X-PROGRAM-DATE-TIME with `DisplayFragmentTimestamp=ALWAYS`, and EXT-X-ENDLIST for
//! ON_DEMAND (and LIVE_REPLAY once its range has played).

use hls::{LowLatency, MediaPlaylistOptions, SegmentRef};

use super::get::Snapshot;
use super::ll_hls;
use super::selection::{DISCONTINUITY_THRESHOLD_MS, DiscontinuityMode};
use super::session::{Container, Mode, Session};
use crate::storage::fragment_number;

/// LIVE fMP4 sessions get Low-Latency HLS (parts, blocking reloads, preload hints).
pub(super) fn is_low_latency(session: &Session) -> bool {
    session.params.mode == Mode::Live && session.params.container == Container::Fmp4
}

/// The URI of part `k` of a fragment.
fn part_uri(session: &Session, seq: i64, k: usize) -> String {
    format!(
        "getMP4MediaFragment.mp4?FragmentNumber={}&Part={k}&SessionToken={}&TrackNumber=1",
        fragment_number(session.params.stream_id, seq),
        session.token
    )
}

/// The URI of part `k` of the segment with media sequence number `msn`: for the preload hint
/// of a segment whose fragment has not started arriving yet (its fragment number is not known;
/// the server resolves the number when the part is asked for).
fn part_uri_by_msn(session: &Session, msn: u64, k: usize) -> String {
    format!(
        "getMP4MediaFragment.mp4?MediaSequenceNumber={msn}&Part={k}&SessionToken={}&TrackNumber=1",
        session.token
    )
}

/// The master playlist: one variant, the video track.
pub(super) fn master_playlist(session: &Session) -> String {
    let track = &session.info.track;
    let uri = format!(
        "getHLSMediaPlaylist.m3u8?SessionToken={}&TrackNumber=1",
        session.token
    );
    let resolution = (track.width > 0 && track.height > 0).then_some((track.width, track.height));
    hls::master_playlist(&uri, session.info.bandwidth, &track.codecs(), resolution)
}

/// The media playlist of the session's current window.
pub(super) fn media_playlist(session: &Session, snapshot: &Snapshot) -> String {
    let p = &session.params;
    let token = &session.token;
    let window = &snapshot.window;
    let mut segments = Vec::with_capacity(window.len());
    let mut prev_init: Option<i64> = None;
    for s in window {
        let number = fragment_number(p.stream_id, s.meta.seq);
        let uri = match p.container {
            Container::Fmp4 => format!(
                "getMP4MediaFragment.mp4?FragmentNumber={number}&SessionToken={token}&TrackNumber=1"
            ),
            Container::Ts => format!(
                "getTSFragment.ts?FragmentNumber={number}&SessionToken={token}&TrackNumber=1"
            ),
        };
        let init_uri =
            (p.container == Container::Fmp4 && prev_init != Some(s.init_seq)).then(|| {
                format!(
                    "getMP4InitFragment.mp4?FragmentNumber={}&SessionToken={token}&TrackNumber=1",
                    fragment_number(p.stream_id, s.init_seq)
                )
            });
        prev_init = Some(s.init_seq);
        let recent = window.len() - segments.len() <= ll_hls::SEGMENTS_WITH_PARTS;
        let parts = if is_low_latency(session) && recent {
            ll_hls::parts_of_complete(s.meta.duration_ms, |k| part_uri(session, s.meta.seq, k))
        } else {
            Vec::new()
        };
        segments.push(SegmentRef {
            uri,
            duration_s: s.meta.duration_ms as f64 / 1000.0,
            program_date_time_ms: p.display_timestamp.then(|| s.meta.ts(p.kind)),
            discontinuity: s.discontinuity,
            init_uri,
            parts,
        });
    }
    let first = window.first();
    let options = MediaPlaylistOptions {
        target_duration: snapshot
            .target_duration
            .max(hls::target_duration(&segments)),
        media_sequence: first.map_or(0, |s| s.msn),
        discontinuity_sequence: first.map_or(0, |s| s.discontinuities - u64::from(s.discontinuity)),
        ended: snapshot.ended,
        init_uri: None,
        independent_segments: true,
        low_latency: low_latency(session, snapshot),
    };
    hls::media_playlist(&segments, &options)
}

/// EXT-X-SERVER-CONTROL, EXT-X-PART-INF, the complete parts of the fragment being received
/// and the preload hint of its next part, for LIVE fMP4 sessions.
///
/// A live LL-HLS playlist always ends with the segment being written: its parts so far and
/// an EXT-X-PRELOAD-HINT, or, between two fragments (the last one stored, the next one not
/// started), the hint of part 0 of the next media sequence number alone. It never ends with
/// a complete segment: hls.js (1.7, `M3U8Parser.parseLevelPlaylist`) then takes that last
/// complete segment itself as its "fragment hint" (the variable is only replaced when a line
/// follows the URI), so the segment's media sequence number appears twice, and on the next
/// reload `mapFragmentIntersection` compares that stale hint with the real next segment:
/// with a discontinuity before it (every fragment under ALWAYS) that is a fatal
/// "discontinuity sequence mismatch (N!=N+1)".
fn low_latency(session: &Session, snapshot: &Snapshot) -> Option<LowLatency> {
    if !is_low_latency(session) {
        return None;
    }
    let last = snapshot.window.last();
    let (pending_parts, preload_hint_uri) = match &snapshot.partial {
        Some(partial) => (
            ll_hls::parts_of_partial(partial, |k| part_uri(session, partial.seq, k)),
            Some(part_uri(
                session,
                partial.seq,
                ll_hls::complete_parts(partial),
            )),
        ),
        None if snapshot.ended => (Vec::new(), None),
        None => (
            Vec::new(),
            Some(part_uri_by_msn(session, last.map_or(0, |s| s.msn + 1), 0)),
        ),
    };
    // The first segment of a session has no discontinuity before it.
    let pending_discontinuity = match (last, session.params.discontinuity) {
        (None, _) | (_, DiscontinuityMode::Never) => false,
        (Some(_), DiscontinuityMode::Always) => true,
        // Judged on producer time, where the partial fragment has its only timestamp. With
        // no partial fragment yet nothing is known; a pending segment without parts has no
        // duration, and players do not compare those across reloads.
        (Some(s), DiscontinuityMode::OnDiscontinuity) => {
            snapshot.partial.as_ref().is_some_and(|partial| {
                let end = s.meta.producer_ts_ms + s.meta.duration_ms;
                (partial.producer_start_ms - end).abs() > DISCONTINUITY_THRESHOLD_MS
            })
        }
    };
    Some(LowLatency {
        pending_discontinuity,
        part_target_s: ll_hls::PART_TARGET_MS as f64 / 1000.0,
        part_hold_back_s: ll_hls::PART_HOLD_BACK_MS as f64 / 1000.0,
        can_block_reload: true,
        pending_parts,
        preload_hint_uri,
    })
}
