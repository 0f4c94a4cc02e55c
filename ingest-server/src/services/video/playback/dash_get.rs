//! The DASH manifest of a session (`getDASHManifest.mpd`, written by `hls::dash`): a static
//! MPD for ON_DEMAND, a dynamic one for LIVE / LIVE_REPLAY. Media URIs are a template with
//! `MediaSequenceNumber=$Number$`, the session's sequence numbers. With
//! `DisplayFragmentTimestamp` / `DisplayFragmentNumber` ALWAYS, every `S` element gets
//! `kvs:ts` (the fragment's timestamp, epoch seconds with milliseconds) / `kvs:fn` (its
//! fragment number), as AWS describes; runs are then not merged with `r`.

use std::fmt::Write as _;

use hls::dash::{DashSegment, LiveMpd, MpdOptions};

use super::get::Snapshot;
use super::session::{Mode, Session};
use crate::storage::fragment_number;

/// Namespace of the `kvs:` attributes.
const KVS_NAMESPACE: &str = "https://kinesisvideo.amazonaws.com/dash";

pub(super) fn manifest(session: &Session, snapshot: &Snapshot, now_ms: i64) -> String {
    let p = &session.params;
    let token = &session.token;
    let window = &snapshot.window;
    let segments: Vec<DashSegment> = window
        .iter()
        .map(|s| DashSegment {
            start_ms: s.media_start_ms().max(0) as u64,
            duration_ms: s.meta.duration_ms.max(0) as u64,
        })
        .collect();
    let longest_s = window
        .iter()
        .map(|s| s.meta.duration_ms)
        .max()
        .unwrap_or(1000) as f64
        / 1000.0;
    let window_s: f64 = window.iter().map(|s| s.meta.duration_ms).sum::<i64>() as f64 / 1000.0;
    let live = (p.mode != Mode::OnDemand && !snapshot.ended).then(|| LiveMpd {
        availability_start_time_ms: session.info.availability_start_ms,
        publish_time_ms: now_ms,
        minimum_update_period_s: 1.0,
        time_shift_buffer_depth_s: Some(window_s.max(longest_s)),
        suggested_presentation_delay_s: (longest_s * 3.0).min(window_s.max(longest_s)),
    });
    let options = MpdOptions {
        timeline_origin_ms: p.origin_ms,
        init_uri: format!("getMP4InitFragment.mp4?SessionToken={token}&TrackNumber=1"),
        media_uri_template: format!(
            "getMP4MediaFragment.mp4?SessionToken={token}&TrackNumber=1&MediaSequenceNumber=$Number$"
        ),
        start_number: window.first().map_or(0, |s| s.msn),
        bandwidth: session.info.bandwidth,
        min_buffer_time_s: 2.0,
        live,
    };
    let text = hls::dash::mpd(&session.info.track, &segments, &options);
    if !(p.display_timestamp || p.display_fragment_number) {
        return text;
    }
    // Rewrite the SegmentTimeline with one annotated S per segment.
    let open = "<SegmentTimeline>\n";
    let close = "</SegmentTimeline>";
    let (Some(a), Some(b)) = (text.find(open), text.find(close)) else {
        return text;
    };
    let indent = "            ";
    let scale = session.info.track.timescale;
    let mut timeline = String::new();
    for s in window {
        let start = s.media_start_ms().max(0) as u64;
        let t = hls::fmp4::ticks(start, p.origin_ms, scale);
        let d = hls::fmp4::ticks(start + s.meta.duration_ms.max(0) as u64, p.origin_ms, scale)
            .saturating_sub(t);
        let _ = write!(timeline, "{indent}<S t=\"{t}\" d=\"{d}\"");
        if p.display_timestamp {
            let ts = s.meta.ts(p.kind);
            let _ = write!(
                timeline,
                " kvs:ts=\"{}.{:03}\"",
                ts.div_euclid(1000),
                ts.rem_euclid(1000)
            );
        }
        if p.display_fragment_number {
            let _ = write!(
                timeline,
                " kvs:fn=\"{}\"",
                fragment_number(p.stream_id, s.meta.seq)
            );
        }
        timeline.push_str("/>\n");
    }
    let mut out = String::with_capacity(text.len() + timeline.len());
    out.push_str(&text[..a + open.len()]);
    out.push_str(&timeline);
    out.push_str("          ");
    out.push_str(&text[b..]);
    out.replacen(
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"",
        &format!("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:kvs=\"{KVS_NAMESPACE}\""),
        1,
    )
}
