//! The GStreamer half of GetImages: stored fragments' H.264 frames decoded, the wanted ones
//! scaled and encoded to JPEG or PNG. Blocking: run it on the blocking pool.
//!
//! One pipeline serves a whole page (a new one only when the codec configuration changes
//! between fragments), fed only the frames the wanted pictures depend on:
//!
//! ```text
//! appsrc (video/x-h264, avc, au, codec_data) ! avdec_h264 ! [probe: drop unwanted pictures]
//!   ! videoscale ! capsfilter (size) ! videoconvert ! capsfilter (RGB) ! jpegenc | pngenc ! appsink
//! ```
//!
//! Each fragment's frames are fed from a key frame, so fragments follow each other like the
//! segments of one stream; they get consecutive, non-overlapping timestamps so that every
//! wanted picture is recognised by its timestamp after the decoder. The probe after the
//! decoder keeps the frames that are only decoded as references out of the scaler and the
//! encoder, so a picture costs its share of the decode plus one encode. Building a pipeline
//! costs about as much as decoding ten 720p frames, hence one per page, not per fragment.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// How pictures are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ImageFormat {
    /// JPEG at a quality of 1..=100.
    Jpeg {
        /// `jpegenc quality`.
        quality: u32,
    },
    /// PNG (RGB, 8 bits).
    Png,
}

/// The requested picture: format and size (`None`: the stream's own; only one of the two:
/// the other follows the display aspect ratio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Output {
    /// JPEG or PNG.
    pub(super) format: ImageFormat,
    /// `WidthPixels`.
    pub(super) width: Option<u32>,
    /// `HeightPixels`.
    pub(super) height: Option<u32>,
}

/// Why no picture could be made at all.
#[derive(Debug, thiserror::Error)]
pub(super) enum DecodeError {
    /// GStreamer or one of the needed elements is missing: a fault of the server's
    /// installation, not of the media.
    #[error("GStreamer is not usable: {0}")]
    Setup(String),
}

/// zlib level of `pngenc`: 1 is several times faster than the default 6 on camera frames
/// for files about a third larger, and PNG stays lossless.
const PNG_COMPRESSION_LEVEL: u32 = 1;
/// How long the pictures of one pipeline may take to come out before they are given up.
const PIPELINE_DEADLINE: Duration = Duration::from_secs(60);
/// Poll period of the output loop (bus errors are checked between polls).
const POLL: Duration = Duration::from_millis(50);
/// Timestamp gap between consecutive fragments in a pipeline.
const FRAGMENT_GAP_NS: u64 = 1_000_000_000;

static INIT: LazyLock<Result<(), String>> = LazyLock::new(|| {
    gst::init().map_err(|e| e.to_string())?;
    for name in [
        "appsrc",
        "avdec_h264",
        "videoscale",
        "capsfilter",
        "videoconvert",
        "jpegenc",
        "pngenc",
        "appsink",
    ] {
        if gst::ElementFactory::find(name).is_none() {
            return Err(format!(
                "the GStreamer element {name} is not installed (GetImages needs gstreamer1.0-libav and gstreamer1.0-plugins-base/good)"
            ));
        }
    }
    Ok(())
});

/// Initialises GStreamer once and checks that every element is installed.
pub(super) fn ensure_gstreamer() -> Result<(), DecodeError> {
    INIT.clone().map_err(DecodeError::Setup)
}

/// The samples to feed to the decoder so that every target (an index into `samples` in
/// decode order) comes out: from the last key frame at or before each target up to it.
/// With frame reordering (B-frames) a key frame need not be where decoding can restart
/// cleanly, so such fragments are fed from their first sample.
pub(super) fn feed_plan(keyframes: &[bool], reorders: bool, targets: &[usize]) -> Vec<usize> {
    let mut feed = BTreeSet::new();
    for &target in targets {
        if target >= keyframes.len() {
            continue;
        }
        let start = if reorders {
            0
        } else {
            (0..=target).rev().find(|&i| keyframes[i]).unwrap_or(0)
        };
        feed.extend(start..=target);
    }
    feed.into_iter().collect()
}

/// Identifies a wanted picture: the caller's key for the fragment and the sample index.
pub(super) type PictureKey = (usize, usize);

/// Decodes the fragments of one page. [`Session::add`] feeds a fragment; [`Session::finish`]
/// drains the decoder and returns the pictures.
pub(super) struct Session {
    output: Output,
    current: Option<Running>,
    done: HashMap<PictureKey, Vec<u8>>,
}

/// A pipeline being fed.
struct Running {
    pipeline: Pipeline,
    codec_private: Vec<u8>,
    /// Timestamp (ns) of the next fragment's first frame.
    next_ns: u64,
    /// Output timestamp -> picture, for the pictures not yet received.
    wanted: HashMap<u64, PictureKey>,
    /// Set when feeding failed: nothing more goes into this pipeline.
    failed: Option<String>,
}

impl Session {
    /// A session writing pictures as `output` says. Fails only if GStreamer is unusable.
    pub(super) fn new(output: Output) -> Result<Session, DecodeError> {
        ensure_gstreamer()?;
        Ok(Session {
            output,
            current: None,
            done: HashMap::new(),
        })
    }

    /// Feeds what `fragment` needs for the pictures of `targets` (indices into its samples);
    /// they come back from [`Session::finish`] as `(key, index)`. Returns the number of
    /// frames fed to the decoder.
    pub(super) fn add(
        &mut self,
        key: usize,
        fragment: &hls::Fragment,
        targets: &[usize],
    ) -> Result<usize, DecodeError> {
        let samples = &fragment.samples;
        let keyframes: Vec<bool> = samples.iter().map(|s| s.keyframe).collect();
        let reorders = samples.iter().any(|s| s.dts_ms != s.pts_ms);
        let feed = feed_plan(&keyframes, reorders, targets);
        if feed.is_empty() {
            return Ok(0);
        }
        let reusable = self
            .current
            .as_ref()
            .is_some_and(|r| r.failed.is_none() && r.codec_private == fragment.track.codec_private);
        if !reusable {
            self.drain_current();
            let pipeline = Pipeline::build(&fragment.track.codec_private, &self.output)?;
            pipeline.start()?;
            self.current = Some(Running {
                pipeline,
                codec_private: fragment.track.codec_private.clone(),
                next_ns: 0,
                wanted: HashMap::new(),
                failed: None,
            });
        }
        let Some(running) = self.current.as_mut() else {
            return Ok(0);
        };
        running.feed(key, samples, &feed, targets);
        Ok(feed.len())
    }

    /// Ends the current pipeline and collects its pictures.
    fn drain_current(&mut self) {
        if let Some(running) = self.current.take() {
            running.drain(&mut self.done);
        }
    }

    /// Drains the decoder; every picture that came out, by key. A missing key means the
    /// frame could not be decoded or encoded (the caller reports `MEDIA_ERROR`).
    pub(super) fn finish(mut self) -> HashMap<PictureKey, Vec<u8>> {
        self.drain_current();
        self.done
    }
}

impl Running {
    fn feed(&mut self, key: usize, samples: &[hls::Sample], feed: &[usize], targets: &[usize]) {
        if self.failed.is_some() {
            return;
        }
        let base_ms = feed
            .iter()
            .filter_map(|&i| samples.get(i))
            .map(|s| s.dts_ms.min(s.pts_ms))
            .min()
            .unwrap_or(0);
        let at = |ms: u64| {
            self.next_ns
                .saturating_add(ms.saturating_sub(base_ms).saturating_mul(1_000_000))
        };
        // Announce the wanted pictures before their frames go in.
        let mut end_ns = self.next_ns;
        for &t in targets {
            if let Some(s) = samples.get(t) {
                let ns = at(s.pts_ms);
                self.wanted.entry(ns).or_insert((key, t));
                self.pipeline.want(ns);
            }
        }
        for &i in feed {
            let Some(sample) = samples.get(i) else {
                continue;
            };
            let pts = at(sample.pts_ms);
            let duration = sample.duration_ms.saturating_mul(1_000_000);
            end_ns = end_ns.max(pts.saturating_add(duration));
            let mut buffer = gst::Buffer::from_slice(sample.data.clone());
            if let Some(b) = buffer.get_mut() {
                b.set_pts(gst::ClockTime::from_nseconds(pts));
                b.set_dts(gst::ClockTime::from_nseconds(at(sample.dts_ms)));
                b.set_duration(gst::ClockTime::from_nseconds(duration));
                if !sample.keyframe {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            if let Err(flow) = self.pipeline.src.push_buffer(buffer) {
                self.failed = Some(
                    self.pipeline
                        .bus_error()
                        .unwrap_or_else(|| format!("push: {flow:?}")),
                );
                return;
            }
        }
        self.next_ns = end_ns.saturating_add(FRAGMENT_GAP_NS);
    }

    /// Ends the stream and collects the pictures into `done`.
    fn drain(mut self, done: &mut HashMap<PictureKey, Vec<u8>>) {
        if self.failed.is_none() {
            let _ = self.pipeline.src.end_of_stream();
        }
        let deadline = Instant::now() + PIPELINE_DEADLINE;
        let mut error = self.failed.take();
        while !self.wanted.is_empty() {
            match self
                .pipeline
                .sink
                .try_pull_sample(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64))
            {
                Some(sample) => {
                    let Some(buffer) = sample.buffer() else {
                        continue;
                    };
                    let Some(key) = buffer
                        .pts()
                        .and_then(|pts| self.wanted.remove(&pts.nseconds()))
                    else {
                        continue;
                    };
                    if let Ok(map) = buffer.map_readable() {
                        done.insert(key, map.as_slice().to_vec());
                    }
                }
                None => {
                    if self.pipeline.sink.is_eos() {
                        break;
                    }
                    if let Some(err) = self.pipeline.bus_error() {
                        error = Some(err);
                        break;
                    }
                    if error.is_some() {
                        // Feeding failed and nothing more is coming.
                        break;
                    }
                    if Instant::now() > deadline {
                        error = Some(format!("gave up after {} s", PIPELINE_DEADLINE.as_secs()));
                        break;
                    }
                }
            }
        }
        if !self.wanted.is_empty() {
            tracing::warn!(
                missing = self.wanted.len(),
                error = error
                    .as_deref()
                    .unwrap_or("the decoder produced no picture for them"),
                "GetImages: pictures could not be decoded."
            );
        }
    }
}

/// A built pipeline; set to NULL when dropped.
struct Pipeline {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    /// Timestamps of the decoded frames that go on to the encoder.
    wanted: Arc<Mutex<HashSet<u64>>>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn make(name: &str) -> Result<gst::Element, DecodeError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|e| DecodeError::Setup(format!("{name}: {e}")))
}

fn setup<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> DecodeError {
    move |e| DecodeError::Setup(format!("{what}: {e}"))
}

impl Pipeline {
    fn build(codec_private: &[u8], output: &Output) -> Result<Pipeline, DecodeError> {
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field(
                "codec_data",
                gst::Buffer::from_slice(codec_private.to_vec()),
            )
            .build();
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(false)
            .stream_type(gst_app::AppStreamType::Stream)
            .build();
        let decoder = make("avdec_h264")?;
        // Corrupt frames are skipped, never the end of the pipeline (the other fragments'
        // pictures are in it too).
        decoder.set_property("max-errors", -1i32);
        let scale = make("videoscale")?;
        let mut size = gst::Caps::builder("video/x-raw");
        if let Some(w) = output.width {
            size = size.field("width", w as i32);
        }
        if let Some(h) = output.height {
            size = size.field("height", h as i32);
        }
        if output.width.is_some() || output.height.is_some() {
            // Square pixels: with one dimension given, videoscale derives the other from
            // the display aspect ratio; with both, the picture is stretched to them.
            size = size.field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
        }
        let size_filter = make("capsfilter")?;
        size_filter.set_property("caps", size.build());
        let convert = make("videoconvert")?;
        // RGB for both encoders: JPEG (JFIF) is full-range BT.601 YCbCr, and jpegenc takes
        // I420 as it comes (limited range, often BT.709), which washes the picture out;
        // videoconvert (1.22) does not convert the range alone between YUV formats. From
        // RGB, libjpeg does the JFIF conversion itself.
        let rgb = make("capsfilter")?;
        rgb.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .build(),
        );
        let encoder = match output.format {
            ImageFormat::Jpeg { quality } => {
                let enc = make("jpegenc")?;
                enc.set_property("quality", quality.clamp(1, 100) as i32);
                enc
            }
            ImageFormat::Png => {
                let enc = make("pngenc")?;
                enc.set_property("compression-level", PNG_COMPRESSION_LEVEL);
                enc
            }
        };
        let sink = gst_app::AppSink::builder().sync(false).build();
        let pipeline = gst::Pipeline::new();
        let chain: [gst::Element; 8] = [
            src.clone().upcast(),
            decoder.clone(),
            scale,
            size_filter,
            convert,
            rgb,
            encoder,
            sink.clone().upcast(),
        ];
        pipeline
            .add_many(chain.iter())
            .map_err(setup("adding elements"))?;
        gst::Element::link_many(chain.iter()).map_err(setup("linking elements"))?;

        // Only the wanted pictures go on to the scaler and the encoder.
        let decoded = decoder
            .static_pad("src")
            .ok_or_else(|| DecodeError::Setup("avdec_h264 has no src pad".into()))?;
        let wanted: Arc<Mutex<HashSet<u64>>> = Arc::default();
        let filter = Arc::clone(&wanted);
        decoded.add_probe(gst::PadProbeType::BUFFER, move |_pad, info| {
            let keep = info
                .buffer()
                .and_then(|b| b.pts())
                .is_some_and(|pts| filter.lock().is_ok_and(|w| w.contains(&pts.nseconds())));
            if keep {
                gst::PadProbeReturn::Ok
            } else {
                gst::PadProbeReturn::Drop
            }
        });
        Ok(Pipeline {
            pipeline,
            src,
            sink,
            wanted,
        })
    }

    fn start(&self) -> Result<(), DecodeError> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(setup("starting the pipeline"))
    }

    /// Lets the decoded frame with this timestamp through to the encoder.
    fn want(&self, pts_ns: u64) {
        if let Ok(mut w) = self.wanted.lock() {
            w.insert(pts_ns);
        }
    }

    /// The first error posted on the bus, if any.
    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
        match msg.view() {
            gst::MessageView::Error(err) => Some(format!(
                "{} ({})",
                err.error(),
                err.debug().map(|d| d.to_string()).unwrap_or_default()
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_starts_at_the_preceding_key_frame() {
        // Two GOPs: key frames at 0 and 4.
        let keys = [true, false, false, false, true, false, false];
        assert_eq!(feed_plan(&keys, false, &[2]), vec![0, 1, 2]);
        assert_eq!(feed_plan(&keys, false, &[5]), vec![4, 5]);
        // Several targets share one pass; frames after the last target are not fed.
        assert_eq!(feed_plan(&keys, false, &[1, 5]), vec![0, 1, 4, 5]);
        assert_eq!(feed_plan(&keys, false, &[0, 4]), vec![0, 4]);
        // Reordering: always from the start.
        assert_eq!(feed_plan(&keys, true, &[5]), vec![0, 1, 2, 3, 4, 5]);
        // No key frame flag at all: from the start; out of range targets are ignored.
        assert_eq!(
            feed_plan(&[false, false, false], false, &[1, 9]),
            vec![0, 1]
        );
        assert!(feed_plan(&keys, false, &[]).is_empty());
    }
}
