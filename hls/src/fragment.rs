//! A stored KVS fragment as the writers need it: the H.264 track and its frames with decode and
//! presentation times in milliseconds.

use bytes::Bytes;
use mkv_fragment::{Cluster, Event, SegmentHeader, StreamParser, TrackInfo};

use crate::avc::AvcConfig;
use crate::error::HlsError;

/// The MKV CodecID of H.264 in AVCC form, the only video codec converted here.
pub const H264_CODEC_ID: &str = "V_MPEG4/ISO/AVC";

/// The media timescale written to fMP4 (`mdhd`, `tfdt`, `trun`): 90 kHz, the MPEG-TS clock, so
/// an fMP4 segment and the TS segment of the same fragment carry the same timestamps, and every
/// millisecond time maps to a whole number of ticks (1 ms = 90 ticks).
pub const DEFAULT_TIMESCALE: u32 = 90_000;

/// Duration given to the only frame of a one-frame fragment when nothing else tells it
/// (no BlockDuration): one frame at 30 fps.
pub const FALLBACK_FRAME_DURATION_MS: u64 = 33;

/// The H.264 video track of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// The MKV TrackNumber the frames were taken from.
    pub track_number: u64,
    /// CodecPrivate as stored: the avcC record.
    pub codec_private: Vec<u8>,
    /// `codec_private` parsed.
    pub config: AvcConfig,
    /// PixelWidth (0 if the track has none).
    pub width: u32,
    /// PixelHeight (0 if the track has none).
    pub height: u32,
    /// The fMP4 media timescale, [`DEFAULT_TIMESCALE`] unless changed. MPEG-TS always uses
    /// 90 kHz.
    pub timescale: u32,
}

impl VideoTrack {
    /// The video track of a TrackEntry: CodecID `V_MPEG4/ISO/AVC` and a valid avcC.
    pub fn from_track_info(info: &TrackInfo) -> Result<VideoTrack, HlsError> {
        if info.codec_id != H264_CODEC_ID {
            return Err(HlsError::NoVideoTrack);
        }
        if info.codec_private.is_empty() {
            return Err(HlsError::MissingCodecPrivateData);
        }
        let config = AvcConfig::parse(&info.codec_private)?;
        let dim = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        Ok(VideoTrack {
            track_number: info.number,
            codec_private: info.codec_private.clone(),
            config,
            width: dim(info.pixel_width),
            height: dim(info.pixel_height),
            timescale: DEFAULT_TIMESCALE,
        })
    }

    /// The first H.264 track of a Segment header.
    pub fn from_header(header: &SegmentHeader) -> Result<VideoTrack, HlsError> {
        let info = header
            .tracks
            .iter()
            .find(|t| t.codec_id == H264_CODEC_ID)
            .ok_or(HlsError::NoVideoTrack)?;
        VideoTrack::from_track_info(info)
    }

    /// The RFC 6381 codecs string, e.g. `avc1.64001f`.
    pub fn codecs(&self) -> String {
        self.config.codecs_string()
    }

    /// Whether two tracks can share one init segment (same avcC, size and timescale).
    pub fn same_format(&self, other: &VideoTrack) -> bool {
        self.codec_private == other.codec_private
            && self.width == other.width
            && self.height == other.height
            && self.timescale == other.timescale
    }
}

/// One video frame (an H.264 access unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time, absolute, in milliseconds on the producer's timeline (for KVS: ms since
    /// the epoch). Equal to `pts_ms` unless the stream reorders frames (B-frames).
    pub dts_ms: u64,
    /// Presentation time (the MKV block timecode), absolute, in milliseconds.
    pub pts_ms: u64,
    /// Time until the next frame's decode time, in milliseconds.
    pub duration_ms: u64,
    /// A random access point (the MKV key frame flag).
    pub keyframe: bool,
    /// The frame in AVCC form: NAL units with big-endian length prefixes of
    /// `AvcConfig::nal_length_size` bytes.
    pub data: Bytes,
}

/// One stored fragment (one MKV Cluster) of an H.264 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The Cluster Timecode in milliseconds (absolute: the fragment's producer timestamp).
    pub timecode_ms: u64,
    /// The video track.
    pub track: VideoTrack,
    /// The frames in decode order (never empty).
    pub samples: Vec<Sample>,
}

/// A video block before times are resolved.
struct RawFrame {
    pts_ms: u64,
    block_duration_ms: Option<u64>,
    keyframe: bool,
    data: Bytes,
}

impl Fragment {
    /// Parses stored fragment bytes (what GetMedia returns for one fragment: EBML header,
    /// Segment, Info/Tracks, Tags, one Cluster). The first H.264 track is used and other tracks
    /// are ignored; the Info TimecodeScale is honoured. Several Clusters are merged into one
    /// fragment (its timecode is the first Cluster's).
    pub fn from_mkv(bytes: &[u8]) -> Result<Fragment, HlsError> {
        let mut parser = StreamParser::default();
        parser.push(bytes);
        let mut scale_ns = mkv_fragment::reader::DEFAULT_TIMECODE_SCALE_NS;
        let mut track: Option<VideoTrack> = None;
        let mut track_error: Option<HlsError> = None;
        let mut timecode_ms: Option<u64> = None;
        let mut frames = Vec::new();
        let mut finishing = false;
        loop {
            let event = if finishing {
                parser.finish()?
            } else {
                parser.next_event()?
            };
            let Some(event) = event else {
                if finishing {
                    break;
                }
                finishing = true;
                continue;
            };
            match event {
                Event::Header(header) if track.is_none() && track_error.is_none() => {
                    scale_ns = header.timecode_scale_ns;
                    match VideoTrack::from_header(&header) {
                        Ok(t) => track = Some(t),
                        Err(e) => track_error = Some(e),
                    }
                }
                Event::Cluster(cluster) => {
                    let Some(t) = &track else {
                        return Err(track_error.unwrap_or(HlsError::NoVideoTrack));
                    };
                    let number = t.track_number;
                    timecode_ms.get_or_insert(to_ms(cluster.timecode, scale_ns));
                    collect_frames(cluster, number, scale_ns, &mut frames);
                }
                _ => {}
            }
        }
        let Some(track) = track else {
            return Err(track_error.unwrap_or(HlsError::NoVideoTrack));
        };
        let timecode_ms = timecode_ms.ok_or(HlsError::Empty)?;
        Fragment::assemble(timecode_ms, track, frames)
    }

    /// Builds a fragment from a Segment header and a Cluster that the caller already parsed.
    pub fn from_parts(header: &SegmentHeader, cluster: &Cluster) -> Result<Fragment, HlsError> {
        let track = VideoTrack::from_header(header)?;
        let scale_ns = header.timecode_scale_ns;
        let mut frames = Vec::new();
        collect_frames(cluster.clone(), track.track_number, scale_ns, &mut frames);
        Fragment::assemble(to_ms(cluster.timecode, scale_ns), track, frames)
    }

    fn assemble(
        timecode_ms: u64,
        track: VideoTrack,
        frames: Vec<RawFrame>,
    ) -> Result<Fragment, HlsError> {
        if frames.is_empty() {
            return Err(HlsError::Empty);
        }
        // Decode times: the presentation times in increasing order, shifted back by the
        // largest reordering delay so that no frame decodes after it is presented. Without
        // B-frames the times are already in order and dts == pts.
        let mut sorted: Vec<u64> = frames.iter().map(|f| f.pts_ms).collect();
        sorted.sort_unstable();
        let delay = frames
            .iter()
            .zip(&sorted)
            .map(|(f, &s)| s.saturating_sub(f.pts_ms))
            .max()
            .unwrap_or(0);
        let dts: Vec<u64> = sorted.iter().map(|s| s.saturating_sub(delay)).collect();
        let mut samples = Vec::with_capacity(frames.len());
        for (i, frame) in frames.into_iter().enumerate() {
            let this = dts.get(i).copied().unwrap_or(0);
            let duration_ms = match dts.get(i + 1) {
                Some(&next) => next.saturating_sub(this),
                None => frame
                    .block_duration_ms
                    .filter(|&d| d > 0)
                    .or_else(|| {
                        let prev = i.checked_sub(1).and_then(|p| dts.get(p))?;
                        Some(this.saturating_sub(*prev)).filter(|&d| d > 0)
                    })
                    .unwrap_or(FALLBACK_FRAME_DURATION_MS),
            };
            samples.push(Sample {
                dts_ms: this,
                pts_ms: frame.pts_ms,
                duration_ms,
                keyframe: frame.keyframe,
                data: frame.data,
            });
        }
        Ok(Fragment {
            timecode_ms,
            track,
            samples,
        })
    }

    /// Decode time of the first frame, in milliseconds.
    pub fn start_ms(&self) -> u64 {
        self.samples.first().map_or(self.timecode_ms, |s| s.dts_ms)
    }

    /// Decode time of the first frame plus the sum of the durations, in milliseconds: where the
    /// next fragment starts if the stream is continuous.
    pub fn end_ms(&self) -> u64 {
        self.samples
            .last()
            .map_or(self.timecode_ms, |s| s.dts_ms.saturating_add(s.duration_ms))
    }

    /// Duration in milliseconds (`end_ms - start_ms`).
    pub fn duration_ms(&self) -> u64 {
        self.end_ms().saturating_sub(self.start_ms())
    }

    /// Sets the last frame's duration so that the fragment ends at `end_ms` (the next
    /// fragment's start, when the caller knows it). Ignored if `end_ms` is not after the last
    /// frame's decode time.
    pub fn set_end_ms(&mut self, end_ms: u64) {
        if let Some(last) = self.samples.last_mut()
            && end_ms > last.dts_ms
        {
            last.duration_ms = end_ms - last.dts_ms;
        }
    }
}

/// Converts a timecode in TimecodeScale units to milliseconds (rounded to nearest).
fn to_ms(timecode: u64, scale_ns: u64) -> u64 {
    let ns = u128::from(timecode) * u128::from(scale_ns);
    u64::try_from((ns + 500_000) / 1_000_000).unwrap_or(u64::MAX)
}

fn collect_frames(cluster: Cluster, track: u64, scale_ns: u64, out: &mut Vec<RawFrame>) {
    let scale = i128::from(scale_ns);
    let cluster_ns = i128::from(cluster.timecode).saturating_mul(scale);
    let body = Bytes::from(cluster.body);
    for block in cluster.blocks {
        if block.track != track || block.data.start > block.data.end || block.data.end > body.len()
        {
            continue;
        }
        let pts_ns = cluster_ns.saturating_add(i128::from(block.relative_timecode) * scale);
        let pts_ms =
            u64::try_from(pts_ns.max(0).saturating_add(500_000) / 1_000_000).unwrap_or(u64::MAX);
        let block_duration_ms = block.duration.map(|d| to_ms(d, scale_ns));
        out.push(RawFrame {
            pts_ms,
            block_duration_ms,
            keyframe: block.keyframe,
            data: body.slice(block.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkv_fragment::{Frame, ProducerWriter, SegmentInfo, TrackSpec};

    pub(crate) fn avcc() -> Vec<u8> {
        let sps = [0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00];
        let pps = [0x68, 0xCE, 0x3C, 0x80];
        let mut v = vec![1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, sps.len() as u8];
        v.extend_from_slice(&sps);
        v.extend_from_slice(&[1, 0, pps.len() as u8]);
        v.extend_from_slice(&pps);
        v
    }

    fn writer(scale_ns: u64, codec_private: Vec<u8>) -> ProducerWriter {
        let video = TrackSpec {
            number: 1,
            uid: 1,
            track_type: 1,
            codec_id: H264_CODEC_ID.into(),
            codec_private,
            pixel_width: Some(640),
            pixel_height: Some(480),
            ..TrackSpec::default()
        };
        let audio = TrackSpec {
            number: 2,
            uid: 2,
            track_type: 2,
            codec_id: "A_AAC".into(),
            codec_private: vec![0x12, 0x10],
            sampling_frequency: Some(48000.0),
            channels: Some(2),
            ..TrackSpec::default()
        };
        let info = SegmentInfo {
            timecode_scale_ns: scale_ns,
            ..SegmentInfo::default()
        };
        ProducerWriter::new(info, vec![video, audio])
    }

    fn frame(track: u64, relative_timecode: i16, keyframe: bool, data: &[u8]) -> Frame<'_> {
        Frame {
            track,
            relative_timecode,
            keyframe,
            data,
        }
    }

    #[test]
    fn reads_video_frames_and_skips_audio() {
        let w = writer(1_000_000, avcc());
        let mut bytes = Vec::new();
        w.header(&mut bytes);
        w.cluster(
            &mut bytes,
            1_000,
            &[
                frame(1, 0, true, b"\0\0\0\x01\x65"),
                frame(2, 5, true, b"aac"),
                frame(1, 40, false, b"\0\0\0\x01\x41"),
                frame(1, 80, false, b"\0\0\0\x01\x41"),
            ],
        );
        let f = Fragment::from_mkv(&bytes).unwrap();
        assert_eq!(f.timecode_ms, 1_000);
        assert_eq!((f.track.width, f.track.height), (640, 480));
        assert_eq!(f.track.codecs(), "avc1.42c01e");
        let times: Vec<_> = f
            .samples
            .iter()
            .map(|s| (s.dts_ms, s.pts_ms, s.duration_ms, s.keyframe))
            .collect();
        assert_eq!(
            times,
            vec![
                (1000, 1000, 40, true),
                (1040, 1040, 40, false),
                (1080, 1080, 40, false)
            ]
        );
        assert_eq!(&f.samples[0].data[..], b"\0\0\0\x01\x65");
        assert_eq!(f.duration_ms(), 120);
        let mut f = f;
        f.set_end_ms(1_150);
        assert_eq!(f.samples[2].duration_ms, 70);
        assert_eq!(f.end_ms(), 1_150);
    }

    #[test]
    fn honours_timecode_scale_and_reordering() {
        // TimecodeScale 100 µs: timecodes are tenths of a millisecond.
        let w = writer(100_000, avcc());
        let mut bytes = Vec::new();
        w.header(&mut bytes);
        // Decode order I0 P3 B1 B2 (presentation 0, 300, 100, 200 in 0.1 ms units = 0..30 ms).
        w.cluster(
            &mut bytes,
            20_000,
            &[
                frame(1, 0, true, b"i"),
                frame(1, 300, false, b"p"),
                frame(1, 100, false, b"b"),
                frame(1, 200, false, b"b"),
            ],
        );
        let f = Fragment::from_mkv(&bytes).unwrap();
        assert_eq!(f.timecode_ms, 2_000);
        let dts: Vec<_> = f.samples.iter().map(|s| s.dts_ms).collect();
        let pts: Vec<_> = f.samples.iter().map(|s| s.pts_ms).collect();
        assert_eq!(pts, vec![2000, 2030, 2010, 2020]);
        assert_eq!(dts, vec![1990, 2000, 2010, 2020]);
        assert!(f.samples.iter().all(|s| s.dts_ms <= s.pts_ms));
        assert!(f.samples.iter().all(|s| s.duration_ms == 10));
    }

    #[test]
    fn distinct_errors() {
        let convert = |codec_private: Vec<u8>| {
            let w = writer(1_000_000, codec_private);
            let mut bytes = Vec::new();
            w.header(&mut bytes);
            w.cluster(&mut bytes, 0, &[frame(1, 0, true, b"x")]);
            Fragment::from_mkv(&bytes)
        };
        assert!(matches!(
            convert(Vec::new()),
            Err(HlsError::MissingCodecPrivateData)
        ));
        assert!(matches!(
            convert(vec![1, 2, 3]),
            Err(HlsError::InvalidCodecPrivateData(_))
        ));
        // Only audio frames: Empty.
        let w = writer(1_000_000, avcc());
        let mut bytes = Vec::new();
        w.header(&mut bytes);
        w.cluster(&mut bytes, 0, &[frame(2, 0, true, b"x")]);
        assert!(matches!(Fragment::from_mkv(&bytes), Err(HlsError::Empty)));
        // Audio-only track list: NoVideoTrack.
        let audio_only = ProducerWriter::new(
            SegmentInfo::default(),
            vec![TrackSpec {
                number: 1,
                codec_id: "A_AAC".into(),
                ..TrackSpec::default()
            }],
        );
        let mut bytes = Vec::new();
        audio_only.header(&mut bytes);
        audio_only.cluster(&mut bytes, 0, &[frame(1, 0, true, b"x")]);
        assert!(matches!(
            Fragment::from_mkv(&bytes),
            Err(HlsError::NoVideoTrack)
        ));
        // Garbage: Mkv.
        assert!(matches!(
            Fragment::from_mkv(b"not an mkv"),
            Err(HlsError::Mkv(_))
        ));
        // Nothing at all: no header, no track.
        assert!(matches!(
            Fragment::from_mkv(b""),
            Err(HlsError::NoVideoTrack)
        ));
    }

    #[test]
    fn from_parts_matches_from_mkv() {
        let w = writer(1_000_000, avcc());
        let mut bytes = Vec::new();
        w.header(&mut bytes);
        w.cluster(
            &mut bytes,
            5_000,
            &[frame(1, 0, true, b"a"), frame(1, 33, false, b"b")],
        );
        let mut parser = StreamParser::default();
        parser.push(&bytes);
        let mut header = None;
        let mut cluster = None;
        while let Some(e) = parser.finish().unwrap() {
            match e {
                Event::Header(h) => header = Some(h),
                Event::Cluster(c) => cluster = Some(c),
                _ => {}
            }
        }
        let f = Fragment::from_parts(&header.unwrap(), &cluster.unwrap()).unwrap();
        assert_eq!(f, Fragment::from_mkv(&bytes).unwrap());
        assert_eq!(f.samples[1].duration_ms, 33, "last = previous spacing");
    }
}
