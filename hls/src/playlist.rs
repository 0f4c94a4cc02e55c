//! HLS playlists, written with `m3u8-rs` (the project's playlist library).
//!
//! `m3u8-rs` 6 models the classic tags natively (EXTINF, TARGETDURATION, MEDIA-SEQUENCE,
//! DISCONTINUITY-SEQUENCE, DISCONTINUITY, PROGRAM-DATE-TIME, MAP, INDEPENDENT-SEGMENTS,
//! ENDLIST, STREAM-INF) but none of the Low-Latency HLS tags. Those are written as its
//! `ExtTag` values:
//!
//! * `EXT-X-PART` lines belong before their segment's EXTINF, so they go in that segment's
//!   `unknown_tags`, which `m3u8-rs` writes there;
//! * `EXT-X-SERVER-CONTROL` and `EXT-X-PART-INF` are playlist tags, but `m3u8-rs` does not
//!   write `MediaPlaylist::unknown_tags`; they go in the first segment's `unknown_tags` (before
//!   its first EXT-X-PART; RFC 8216 puts no order on playlist tags);
//! * the parts of the segment still being written and `EXT-X-PRELOAD-HINT` come after the last
//!   complete segment, where `m3u8-rs` has no slot: those `ExtTag`s are appended to its output.
//!   With no complete segment at all, the playlist tags are appended the same way.
//!
//! Reading such a playlist back with `m3u8-rs` keeps the playlist and segment fields and the
//! per-segment tags; it drops the trailing lines (it has nowhere to put them).

use std::fmt::Write as _;

use m3u8_rs::{
    ExtTag, Map, MasterPlaylist, MediaPlaylist, MediaSegment, Resolution, VariantStream,
};

/// One media segment of a media playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentRef {
    /// The segment's URI (relative to the playlist or absolute).
    pub uri: String,
    /// Duration in seconds (EXTINF).
    pub duration_s: f64,
    /// EXT-X-PROGRAM-DATE-TIME: the segment's first frame, in ms since the epoch.
    pub program_date_time_ms: Option<i64>,
    /// EXT-X-DISCONTINUITY before this segment (a gap, or a change of track or timeline).
    pub discontinuity: bool,
    /// A new EXT-X-MAP from this segment on (fMP4 after a change of codec private data). The
    /// first segment gets [`MediaPlaylistOptions::init_uri`] unless this is set.
    pub init_uri: Option<String>,
    /// LL-HLS: the EXT-X-PART lines of this segment (for the last few segments only).
    pub parts: Vec<PartRef>,
}

/// One LL-HLS partial segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartRef {
    /// The part's URI.
    pub uri: String,
    /// Duration in seconds.
    pub duration_s: f64,
    /// INDEPENDENT=YES: the part starts with a key frame.
    pub independent: bool,
}

/// The Low-Latency HLS part of a media playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LowLatency {
    /// EXT-X-PART-INF PART-TARGET, in seconds: the longest part duration.
    pub part_target_s: f64,
    /// EXT-X-SERVER-CONTROL PART-HOLD-BACK in seconds; at least 2 part targets (3 recommended).
    pub part_hold_back_s: f64,
    /// EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD=YES: the server answers `_HLS_msn`/`_HLS_part`
    /// blocking reloads.
    pub can_block_reload: bool,
    /// The parts of the segment being written, after the last complete segment.
    pub pending_parts: Vec<PartRef>,
    /// EXT-X-PRELOAD-HINT TYPE=PART with this URI: the next part, not yet complete. A live
    /// playlist should always have one (also between two segments, for part 0 of the next),
    /// so that it never ends with a complete segment: hls.js 1.7 then takes that segment for
    /// the one being written (its `fragmentHint`), and reports a "discontinuity sequence
    /// mismatch" on the next reload when the next segment starts a discontinuity.
    pub preload_hint_uri: Option<String>,
    /// The segment being written starts a discontinuity: EXT-X-DISCONTINUITY goes before its
    /// parts, as it will before its EXTINF once complete (players check the discontinuity
    /// sequence of parts against the segment's).
    pub pending_discontinuity: bool,
}

/// How to write a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylistOptions {
    /// EXT-X-TARGETDURATION in whole seconds: at least every EXTINF rounded (see
    /// [`target_duration`]).
    pub target_duration: u64,
    /// EXT-X-MEDIA-SEQUENCE: the media sequence number of the first segment listed.
    pub media_sequence: u64,
    /// EXT-X-DISCONTINUITY-SEQUENCE: discontinuities before the first segment listed.
    pub discontinuity_sequence: u64,
    /// EXT-X-ENDLIST (AWS `ON_DEMAND` playlists, and `LIVE_REPLAY` once the range is done).
    pub ended: bool,
    /// EXT-X-MAP URI of the fMP4 init segment; `None` for MPEG-TS segments.
    pub init_uri: Option<String>,
    /// EXT-X-INDEPENDENT-SEGMENTS: every segment starts with a key frame, as KVS fragments do.
    pub independent_segments: bool,
    /// LL-HLS tags; `None` for a regular playlist.
    pub low_latency: Option<LowLatency>,
}

impl Default for MediaPlaylistOptions {
    fn default() -> Self {
        MediaPlaylistOptions {
            target_duration: 1,
            media_sequence: 0,
            discontinuity_sequence: 0,
            ended: false,
            init_uri: None,
            independent_segments: true,
            low_latency: None,
        }
    }
}

/// The smallest valid EXT-X-TARGETDURATION for these segments: the longest EXTINF rounded to
/// the nearest integer (RFC 8216 §4.3.3.1), at least 1.
pub fn target_duration(segments: &[SegmentRef]) -> u64 {
    segments
        .iter()
        .map(|s| s.duration_s.max(0.0).round() as u64)
        .max()
        .unwrap_or(0)
        .max(1)
}

/// The BANDWIDTH of a variant: the peak bit rate over its segments, given as (size in bytes,
/// duration in seconds). Segments shorter than 1 ms are skipped. 0 for no segments.
pub fn peak_bandwidth(segments: &[(usize, f64)]) -> u64 {
    segments
        .iter()
        .filter(|(_, d)| *d >= 0.001)
        .map(|&(size, d)| (size as f64 * 8.0 / d).ceil() as u64)
        .max()
        .unwrap_or(0)
}

/// A master playlist with one variant: EXT-X-STREAM-INF with BANDWIDTH (bits per second, the
/// peak segment bit rate), CODECS (see [`crate::codecs_string`]) and RESOLUTION when known.
pub fn master_playlist(
    media_uri: &str,
    bandwidth: u64,
    codecs: &str,
    resolution: Option<(u32, u32)>,
) -> String {
    let playlist = MasterPlaylist {
        version: Some(3),
        independent_segments: true,
        variants: vec![VariantStream {
            uri: media_uri.to_owned(),
            bandwidth,
            codecs: Some(codecs.to_owned()),
            resolution: resolution.map(|(w, h)| Resolution {
                width: u64::from(w),
                height: u64::from(h),
            }),
            ..VariantStream::default()
        }],
        ..MasterPlaylist::default()
    };
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = playlist.write_to(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A media playlist. EXT-X-VERSION is 6 for fMP4 (EXT-X-MAP) or LL-HLS, else 3 (decimal
/// EXTINF). See the module docs for where the LL-HLS tags go.
pub fn media_playlist(segments: &[SegmentRef], options: &MediaPlaylistOptions) -> String {
    let low_latency = options.low_latency.as_ref();
    let version = if options.init_uri.is_some()
        || low_latency.is_some()
        || segments.iter().any(|s| s.init_uri.is_some())
    {
        6
    } else {
        3
    };
    let mut media_segments: Vec<MediaSegment> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let init = s
                .init_uri
                .as_ref()
                .or(options.init_uri.as_ref().filter(|_| i == 0));
            MediaSegment {
                uri: s.uri.clone(),
                duration: s.duration_s as f32,
                discontinuity: s.discontinuity,
                map: init.map(|uri| Map {
                    uri: quoted(uri),
                    ..Map::default()
                }),
                program_date_time: s.program_date_time_ms.and_then(date_time),
                unknown_tags: s.parts.iter().map(part_tag).collect(),
                ..MediaSegment::default()
            }
        })
        .collect();
    let mut trailing: Vec<ExtTag> = Vec::new();
    if let Some(ll) = low_latency {
        let playlist_tags = [
            ExtTag {
                tag: "X-SERVER-CONTROL".into(),
                rest: Some(format!(
                    "{}PART-HOLD-BACK={:.3}",
                    if ll.can_block_reload {
                        "CAN-BLOCK-RELOAD=YES,"
                    } else {
                        ""
                    },
                    ll.part_hold_back_s
                )),
            },
            ExtTag {
                tag: "X-PART-INF".into(),
                rest: Some(format!("PART-TARGET={:.3}", ll.part_target_s)),
            },
        ];
        match media_segments.first_mut() {
            Some(first) => {
                first.unknown_tags.splice(0..0, playlist_tags);
            }
            None => {
                trailing.extend(playlist_tags);
                // The parts need the init segment, which m3u8-rs only writes on a segment.
                if let Some(uri) = &options.init_uri {
                    trailing.push(ExtTag {
                        tag: "X-MAP".into(),
                        rest: Some(format!("URI=\"{}\"", quoted(uri))),
                    });
                }
            }
        }
        if !options.ended {
            let pending = !ll.pending_parts.is_empty() || ll.preload_hint_uri.is_some();
            if pending && ll.pending_discontinuity {
                trailing.push(ExtTag {
                    tag: "X-DISCONTINUITY".into(),
                    rest: None,
                });
            }
            trailing.extend(ll.pending_parts.iter().map(part_tag));
            if let Some(uri) = &ll.preload_hint_uri {
                trailing.push(ExtTag {
                    tag: "X-PRELOAD-HINT".into(),
                    rest: Some(format!("TYPE=PART,URI=\"{}\"", quoted(uri))),
                });
            }
        }
    }
    let playlist = MediaPlaylist {
        version: Some(version),
        target_duration: options.target_duration,
        media_sequence: options.media_sequence,
        discontinuity_sequence: options.discontinuity_sequence,
        end_list: options.ended,
        independent_segments: options.independent_segments,
        segments: media_segments,
        ..MediaPlaylist::default()
    };
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = playlist.write_to(&mut out);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    for tag in trailing {
        let _ = writeln!(text, "{tag}");
    }
    text
}

fn part_tag(part: &PartRef) -> ExtTag {
    ExtTag {
        tag: "X-PART".into(),
        rest: Some(format!(
            "DURATION={:.3},URI=\"{}\"{}",
            part.duration_s,
            quoted(&part.uri),
            if part.independent {
                ",INDEPENDENT=YES"
            } else {
                ""
            }
        )),
    }
}

/// A URI made safe for an HLS quoted-string (no `"`, CR or LF).
fn quoted(uri: &str) -> String {
    uri.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn date_time(ms: i64) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_duration_rounds() {
        let seg = |d| SegmentRef {
            duration_s: d,
            ..SegmentRef::default()
        };
        assert_eq!(target_duration(&[]), 1);
        assert_eq!(target_duration(&[seg(2.4), seg(1.0)]), 2);
        assert_eq!(target_duration(&[seg(2.5)]), 3);
    }

    #[test]
    fn quoted_strings_stay_quoted() {
        assert_eq!(quoted("a\"b\nc"), "a%22b%0Ac");
    }
}
