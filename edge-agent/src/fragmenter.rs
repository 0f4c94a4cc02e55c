//! Captured frames -> MKV fragments, through the shared codec's producer writer.
//!
//! A fragment is one Cluster with its Tags in front. A new one starts on a key frame once the
//! fragment duration has passed (or when the stream format changes), so every fragment opens
//! with a key frame and players can start anywhere. Frames are emitted as soon as they are
//! captured, so a live uplink can stream them without waiting for the fragment to end.
//!
//! Timecodes are absolute milliseconds (TimecodeScale 1 ms): the Cluster Timecode is the wall
//! clock capture time of the key frame, which is the fragment's producer timestamp.

use std::sync::Arc;
use std::time::Duration;

use mkv_fragment::{Frame, ProducerWriter, SegmentInfo, SimpleTag, TrackSpec};

use crate::capture::{CapturedFrame, StreamFormat};

/// The MKV track number of the video track.
const VIDEO_TRACK: u64 = 1;

/// What to append to the fragment queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// A fragment starts: `bytes` holds its Tags, the Cluster start and the first frame.
    Start {
        /// Cluster Timecode = producer timestamp, Unix ms.
        timecode_ms: u64,
        /// Info + Tracks elements of the session this fragment needs.
        header: Arc<[u8]>,
        bytes: Vec<u8>,
    },
    /// One more frame of the current fragment.
    Append(Vec<u8>),
    /// The frame could not be used (before the first key frame, after a format change that did
    /// not start on a key frame, or too far from its Cluster's start).
    Skipped(&'static str),
}

/// Cuts the frame sequence into fragments.
pub(crate) struct Fragmenter {
    duration_ms: u64,
    current: Option<Current>,
    last_ms: u64,
}

struct Current {
    start_ms: u64,
    format: Arc<StreamFormat>,
    header: Arc<[u8]>,
}

impl Fragmenter {
    pub(crate) fn new(fragment_duration: Duration) -> Self {
        Fragmenter {
            duration_ms: fragment_duration.as_millis().max(1) as u64,
            current: None,
            last_ms: 0,
        }
    }

    /// Forgets the current fragment: the next key frame starts a new one (after a capture
    /// restart, whose frames must not extend a fragment that has been completed).
    pub(crate) fn reset(&mut self) {
        self.current = None;
    }

    /// Feeds one frame. `tags` is asked for the new fragment's tags only when one starts.
    pub(crate) fn push(
        &mut self,
        frame: &CapturedFrame,
        tags: impl FnOnce() -> Vec<SimpleTag>,
    ) -> Output {
        // Clusters must not go back in time (PutMedia refuses it), whatever the wall clock does.
        let ms = (frame.capture_unix_ns / 1_000_000).max(self.last_ms);
        self.last_ms = ms;

        let format_changed = self
            .current
            .as_ref()
            .is_some_and(|c| !Arc::ptr_eq(&c.format, &frame.format) && *c.format != *frame.format);
        let due = self
            .current
            .as_ref()
            .is_none_or(|c| ms.saturating_sub(c.start_ms) >= self.duration_ms);

        if frame.keyframe && (due || format_changed) {
            let header = match &self.current {
                Some(c) if !format_changed => c.header.clone(),
                _ => session_header(&frame.format),
            };
            let mut bytes = Vec::with_capacity(frame.data.len() + 512);
            let tags = tags();
            if !tags.is_empty() {
                ProducerWriter::tags(&mut bytes, &tags);
            }
            ProducerWriter::cluster_start(&mut bytes, ms);
            ProducerWriter::simple_block(&mut bytes, &block(0, frame));
            self.current = Some(Current {
                start_ms: ms,
                format: frame.format.clone(),
                header: header.clone(),
            });
            return Output::Start {
                timecode_ms: ms,
                header,
                bytes,
            };
        }

        let Some(current) = &self.current else {
            return Output::Skipped("waiting for the first key frame");
        };
        if format_changed {
            self.current = None;
            return Output::Skipped("stream format changed: waiting for a key frame");
        }
        let Ok(relative) = i16::try_from(ms - current.start_ms) else {
            // No key frame for 32 s: the SimpleBlock timecode cannot reach this frame.
            self.current = None;
            return Output::Skipped("no key frame for 32 s: waiting for a key frame");
        };
        let mut bytes = Vec::with_capacity(frame.data.len() + 16);
        ProducerWriter::simple_block(&mut bytes, &block(relative, frame));
        Output::Append(bytes)
    }
}

fn block(relative_timecode: i16, frame: &CapturedFrame) -> Frame<'_> {
    Frame {
        track: VIDEO_TRACK,
        relative_timecode,
        keyframe: frame.keyframe,
        data: &frame.data,
    }
}

/// Info + Tracks for an H.264 stream of this format, as the producer SDK writes them.
pub(crate) fn session_header(format: &StreamFormat) -> Arc<[u8]> {
    let track = TrackSpec {
        number: VIDEO_TRACK,
        uid: 1,
        track_type: 1,
        name: Some("kinesis_video".into()),
        codec_id: "V_MPEG4/ISO/AVC".into(),
        pixel_width: Some(format.width.into()),
        pixel_height: Some(format.height.into()),
        codec_private: format.codec_private.clone(),
        ..TrackSpec::default()
    };
    let info = SegmentInfo {
        writing_app: concat!("edge-agent ", env!("CARGO_PKG_VERSION")).into(),
        ..SegmentInfo::default()
    };
    ProducerWriter::new(info, vec![track])
        .header_elements()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkv_fragment::{Event, StreamParser};

    fn format(width: u32) -> Arc<StreamFormat> {
        Arc::new(StreamFormat {
            codec_private: vec![1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68],
            width,
            height: 240,
        })
    }

    fn frame(ms: u64, keyframe: bool, format: &Arc<StreamFormat>) -> CapturedFrame {
        CapturedFrame {
            capture_unix_ns: ms * 1_000_000,
            keyframe,
            data: vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }],
            format: format.clone(),
        }
    }

    /// Runs frames through the fragmenter and parses the result as the server would.
    fn run(frames: &[CapturedFrame]) -> (Vec<Output>, Vec<(u64, usize)>) {
        let mut fragmenter = Fragmenter::new(Duration::from_secs(2));
        let mut outputs = Vec::new();
        let mut stream = Vec::new();
        let mut header: Option<Arc<[u8]>> = None;
        for f in frames {
            let out = fragmenter.push(f, || vec![SimpleTag::new("k", "v")]);
            match &out {
                Output::Start {
                    header: h, bytes, ..
                } => {
                    if header.as_ref() != Some(h) {
                        mkv_fragment::writer::write_ebml_header(&mut stream, 2);
                        stream.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0xff]);
                        stream.extend_from_slice(h);
                        header = Some(h.clone());
                    }
                    stream.extend_from_slice(bytes);
                }
                Output::Append(bytes) => stream.extend_from_slice(bytes),
                Output::Skipped(_) => {}
            }
            outputs.push(out);
        }
        let mut parser = StreamParser::default();
        parser.push(&stream);
        let mut clusters = Vec::new();
        while let Some(event) = parser.next_event().unwrap() {
            if let Event::Cluster(c) = event {
                clusters.push((c.timecode, c.blocks.len()));
            }
        }
        while let Some(event) = parser.finish().unwrap() {
            if let Event::Cluster(c) = event {
                clusters.push((c.timecode, c.blocks.len()));
            }
        }
        (outputs, clusters)
    }

    #[test]
    fn cuts_on_key_frames_after_the_duration() {
        let f = format(320);
        let mut frames = Vec::new();
        // 1 s GOPs at 10 fps from t=10_000 ms, preceded by two delta frames.
        frames.push(frame(9_800, false, &f));
        frames.push(frame(9_900, false, &f));
        for i in 0..50u64 {
            frames.push(frame(10_000 + i * 100, i % 10 == 0, &f));
        }
        let (outputs, clusters) = run(&frames);
        assert!(matches!(outputs[0], Output::Skipped(_)));
        assert_eq!(
            clusters,
            [(10_000, 20), (12_000, 20), (14_000, 10)],
            "2 s fragments starting on key frames"
        );
    }

    #[test]
    fn format_change_starts_a_new_session_header() {
        let (a, b) = (format(320), format(640));
        let frames = [
            frame(1_000, true, &a),
            frame(1_100, false, &a),
            frame(1_200, false, &b), // new format without a key frame: skipped
            frame(1_300, true, &b),
            frame(1_400, false, &b),
        ];
        let (outputs, clusters) = run(&frames);
        assert!(matches!(outputs[2], Output::Skipped(_)));
        let headers: Vec<_> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Start { header, .. } => Some(header.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(headers.len(), 2);
        assert_ne!(headers[0], headers[1]);
        assert_eq!(clusters, [(1_000, 2), (1_300, 2)]);
    }

    #[test]
    fn clock_going_back_does_not_go_back_in_the_stream() {
        let f = format(320);
        let frames = [
            frame(5_000, true, &f),
            frame(4_000, false, &f),
            frame(8_000, true, &f),
        ];
        let (_, clusters) = run(&frames);
        assert_eq!(clusters, [(5_000, 2), (8_000, 1)]);
    }
}
