//! Pure conversion of stored Kinesis Video Streams fragments (MKV) into what the
//! `kinesis-video-archived-media` playback APIs serve: fragmented MP4 init and media segments
//! (HLS fMP4, LL-HLS parts, DASH, GetClip), MPEG-TS segments, and HLS playlists written with
//! `m3u8-rs`. No I/O, no HTTP, no async.
//!
//! * [`Fragment::from_mkv`] reads the bytes the server stores for a fragment (EBML header,
//!   Segment, Info/Tracks, Tags, one Cluster) into the H.264 [`VideoTrack`] and its
//!   [`Sample`]s, with decode/presentation times in absolute milliseconds.
//! * [`fmp4::init_segment`] and [`fmp4::media_segment`] (also [`fmp4::part`]) write fMP4;
//!   [`ts::ts_segment`] writes MPEG-TS.
//! * [`playlist`] writes master and media playlists, LL-HLS tags included; [`dash::mpd`]
//!   writes a DASH manifest; [`clip::clip_mp4`] writes a GetClip MP4.
//!
//! Timeline: every writer takes a `timeline_origin_ms`; a frame at `t` ms is at
//! `(t - origin) * timescale / 1000` ticks. Use one origin per playback session (or 0 for the
//! producer's absolute timestamps) and segments from separate requests line up.
//!
//! ```
//! use hls::{Fragment, MediaPlaylistOptions, SegmentRef, TsState, fmp4, media_playlist, ts};
//! use mkv_fragment::{Frame, ProducerWriter, SegmentInfo, TrackSpec};
//!
//! // A stored fragment (here made with the producer writer): SPS/PPS in the avcC, one IDR.
//! let avcc = [
//!     1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 6, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 1, 0, 4,
//!     0x68, 0xCE, 0x3C, 0x80,
//! ];
//! let track = TrackSpec {
//!     number: 1,
//!     track_type: 1,
//!     codec_id: "V_MPEG4/ISO/AVC".into(),
//!     codec_private: avcc.to_vec(),
//!     pixel_width: Some(320),
//!     pixel_height: Some(240),
//!     ..TrackSpec::default()
//! };
//! let writer = ProducerWriter::new(SegmentInfo::default(), vec![track]);
//! let mut stored = Vec::new();
//! writer.header(&mut stored);
//! let idr = [0, 0, 0, 2, 0x65, 0x88];
//! let frame = Frame { track: 1, relative_timecode: 0, keyframe: true, data: &idr };
//! writer.cluster(&mut stored, 1_700_000_000_000, &[frame]);
//!
//! let fragment = Fragment::from_mkv(&stored)?;
//! let origin = fragment.start_ms(); // the session's first fragment starts the timeline
//! let init = fmp4::init_segment(&fragment.track)?;
//! let segment = fmp4::fragment_segment(&fragment, 1, origin)?;
//! let ts_segment = ts::fragment_ts(&fragment, origin, &mut TsState::default())?;
//! assert_eq!(ts_segment.len() % 188, 0);
//! let playlist = media_playlist(
//!     &[SegmentRef {
//!         uri: "getMP4MediaFragment.mp4?FragmentNumber=1".into(),
//!         duration_s: fragment.duration_ms() as f64 / 1000.0,
//!         ..SegmentRef::default()
//!     }],
//!     &MediaPlaylistOptions {
//!         ended: true,
//!         init_uri: Some("getMP4InitFragment.mp4".into()),
//!         ..MediaPlaylistOptions::default()
//!     },
//! );
//! assert!(playlist.contains("#EXT-X-MAP:URI=\"getMP4InitFragment.mp4\""));
//! assert!(playlist.ends_with("#EXT-X-ENDLIST\n"));
//! # let _ = (init, segment);
//! # Ok::<(), hls::HlsError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod avc;
pub mod clip;
pub mod dash;
pub mod error;
pub mod fmp4;
pub mod fragment;
pub mod playlist;
pub mod ts;

pub use avc::{AvcConfig, AvcConfigExt, codecs_string};
pub use clip::clip_mp4;
pub use error::HlsError;
pub use fragment::{DEFAULT_TIMESCALE, Fragment, H264_CODEC_ID, Sample, VideoTrack};
pub use playlist::{
    LowLatency, MediaPlaylistOptions, PartRef, SegmentRef, master_playlist, media_playlist,
    target_duration,
};
pub use ts::TsState;
