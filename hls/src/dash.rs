//! MPEG-DASH manifests (`getDASHManifest.mpd`) over the fMP4 segments of [`crate::fmp4`].
//!
//! One Period, one video AdaptationSet and Representation, and a `SegmentTemplate` with a
//! `SegmentTimeline`: the `t`/`d` values are the same ticks as the segments' `tfdt` and sample
//! durations (same timescale and timeline origin), so players find each segment exactly where
//! its decode times put it. Runs of equal, contiguous segments are written with `r`. Media URIs
//! come from a template with `$Number$` (numbered from `start_number`) that the server maps
//! back to its fragments, like the HLS media sequence.
//!
//! Written by hand: the document is small and fixed, and the DASH crates on crates.io add a
//! serde/XML stack for it. Attribute values are XML-escaped.

use std::fmt::Write as _;

use crate::fmp4::ticks;
use crate::fragment::VideoTrack;

/// One segment of the manifest: a fragment's decode start and duration, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashSegment {
    /// Decode time of the first frame (`Fragment::start_ms`), absolute ms.
    pub start_ms: u64,
    /// Duration (`Fragment::duration_ms`).
    pub duration_ms: u64,
}

/// What makes a manifest dynamic (`LIVE`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveMpd {
    /// availabilityStartTime: the wall-clock time (ms since the epoch) of the timeline origin.
    pub availability_start_time_ms: i64,
    /// publishTime (ms since the epoch).
    pub publish_time_ms: i64,
    /// minimumUpdatePeriod in seconds: how often clients reload the manifest.
    pub minimum_update_period_s: f64,
    /// timeShiftBufferDepth in seconds, if limited.
    pub time_shift_buffer_depth_s: Option<f64>,
    /// suggestedPresentationDelay in seconds.
    pub suggested_presentation_delay_s: f64,
}

/// How to write a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct MpdOptions {
    /// The timeline origin the segments were written with (see [`crate::fmp4`]).
    pub timeline_origin_ms: u64,
    /// URI of the init segment.
    pub init_uri: String,
    /// URI template of the media segments, with `$Number$`.
    pub media_uri_template: String,
    /// The `$Number$` of the first segment listed.
    pub start_number: u64,
    /// Representation bandwidth in bits per second (peak).
    pub bandwidth: u64,
    /// minBufferTime in seconds.
    pub min_buffer_time_s: f64,
    /// `Some` for a dynamic (live) manifest, `None` for a static one with a
    /// mediaPresentationDuration.
    pub live: Option<LiveMpd>,
}

impl Default for MpdOptions {
    fn default() -> Self {
        MpdOptions {
            timeline_origin_ms: 0,
            init_uri: "init.mp4".into(),
            media_uri_template: "segment-$Number$.m4s".into(),
            start_number: 1,
            bandwidth: 0,
            min_buffer_time_s: 2.0,
            live: None,
        }
    }
}

/// The MPD of `segments` (in order) of one video track.
pub fn mpd(track: &VideoTrack, segments: &[DashSegment], options: &MpdOptions) -> String {
    let scale = track.timescale;
    let origin = options.timeline_origin_ms;
    let mut out = String::with_capacity(1024 + segments.len() * 32);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"",
    );
    match &options.live {
        Some(live) => {
            let _ = write!(
                out,
                " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" \
                 minimumUpdatePeriod=\"{}\" suggestedPresentationDelay=\"{}\"",
                date_time(live.availability_start_time_ms),
                date_time(live.publish_time_ms),
                duration(live.minimum_update_period_s),
                duration(live.suggested_presentation_delay_s),
            );
            if let Some(depth) = live.time_shift_buffer_depth_s {
                let _ = write!(out, " timeShiftBufferDepth=\"{}\"", duration(depth));
            }
        }
        None => {
            let end = segments
                .iter()
                .map(|s| s.start_ms.saturating_add(s.duration_ms))
                .max()
                .unwrap_or(origin);
            let _ = write!(
                out,
                " type=\"static\" mediaPresentationDuration=\"{}\"",
                duration(end.saturating_sub(origin) as f64 / 1000.0)
            );
        }
    }
    let _ = writeln!(
        out,
        " minBufferTime=\"{}\">",
        duration(options.min_buffer_time_s)
    );
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    out.push_str(
        "    <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" \
         segmentAlignment=\"true\" startWithSAP=\"1\">\n",
    );
    let _ = writeln!(
        out,
        "      <Representation id=\"0\" codecs=\"{}\" bandwidth=\"{}\" width=\"{}\" height=\"{}\">",
        escape(&track.codecs()),
        options.bandwidth,
        track.width,
        track.height
    );
    let _ = writeln!(
        out,
        "        <SegmentTemplate timescale=\"{scale}\" initialization=\"{}\" media=\"{}\" \
         startNumber=\"{}\">",
        escape(&options.init_uri),
        escape(&options.media_uri_template),
        options.start_number
    );
    out.push_str("          <SegmentTimeline>\n");
    // (start tick, duration ticks, repeat count)
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    for s in segments {
        let t = ticks(s.start_ms, origin, scale);
        let d = ticks(s.start_ms.saturating_add(s.duration_ms), origin, scale).saturating_sub(t);
        match runs.last_mut() {
            Some((rt, rd, rr))
                if *rd == d && rt.saturating_add(rd.saturating_mul(*rr + 1)) == t =>
            {
                *rr += 1;
            }
            _ => runs.push((t, d, 0)),
        }
    }
    for (t, d, r) in runs {
        if r == 0 {
            let _ = writeln!(out, "            <S t=\"{t}\" d=\"{d}\"/>");
        } else {
            let _ = writeln!(out, "            <S t=\"{t}\" d=\"{d}\" r=\"{r}\"/>");
        }
    }
    out.push_str("          </SegmentTimeline>\n");
    out.push_str("        </SegmentTemplate>\n");
    out.push_str("      </Representation>\n");
    out.push_str("    </AdaptationSet>\n");
    out.push_str("  </Period>\n");
    out.push_str("</MPD>\n");
    out
}

/// An xs:duration in seconds with millisecond precision.
fn duration(seconds: f64) -> String {
    format!("PT{:.3}S", seconds.max(0.0))
}

fn date_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Escapes a string for an XML attribute value in double quotes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> VideoTrack {
        let avcc = [
            1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 6, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 1, 0, 4,
            0x68, 0xCE, 0x3C, 0x80,
        ];
        VideoTrack {
            track_number: 1,
            codec_private: avcc.to_vec(),
            config: crate::avc::AvcConfig::parse(&avcc).unwrap(),
            width: 320,
            height: 240,
            timescale: crate::DEFAULT_TIMESCALE,
        }
    }

    #[test]
    fn timeline_runs_and_escaping() {
        let seg = |start_ms, duration_ms| DashSegment {
            start_ms,
            duration_ms,
        };
        let segments = [
            seg(1000, 1000),
            seg(2000, 1000),
            seg(3000, 1000),
            seg(5000, 500),
        ];
        let options = MpdOptions {
            timeline_origin_ms: 1000,
            media_uri_template: "getMP4MediaFragment.mp4?N=$Number$&SessionToken=x".into(),
            ..MpdOptions::default()
        };
        let text = mpd(&track(), &segments, &options);
        assert!(text.contains("<S t=\"0\" d=\"90000\" r=\"2\"/>"), "{text}");
        assert!(text.contains("<S t=\"360000\" d=\"45000\"/>"), "{text}");
        assert!(text.contains("N=$Number$&amp;SessionToken=x"), "{text}");
        assert!(
            text.contains("mediaPresentationDuration=\"PT4.500S\""),
            "{text}"
        );
        assert!(text.contains("codecs=\"avc1.42c01e\""), "{text}");
        let live = MpdOptions {
            live: Some(LiveMpd {
                availability_start_time_ms: 1_700_000_000_000,
                publish_time_ms: 1_700_000_010_000,
                minimum_update_period_s: 1.0,
                time_shift_buffer_depth_s: Some(30.0),
                suggested_presentation_delay_s: 3.0,
            }),
            ..options
        };
        let text = mpd(&track(), &segments, &live);
        assert!(text.contains("type=\"dynamic\""));
        assert!(text.contains("availabilityStartTime=\"2023-11-14T22:13:20.000Z\""));
        assert!(text.contains("timeShiftBufferDepth=\"PT30.000S\""));
    }
}
