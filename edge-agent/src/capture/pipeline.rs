//! Builds the pipeline for each source, ending in an appsink that receives AVC access units.
//!
//! Structure is written as a `gst-launch` description for readability; user-supplied strings
//! (file path, device, URL) are set as properties afterwards, so no quoting can break parsing.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{CaptureError, CaptureSettings, Source, clock, elements, encoder};

/// What `CaptureHandle::encoder` reports for RTSP, where the camera's H.264 is passed through.
pub(crate) const PASSTHROUGH: &str = "passthrough";

/// Name of the source element whose `location`/`device` is set after parsing.
const SRC: &str = "src";
/// Name of the appsink.
const SINK: &str = "sink";
/// Samples the appsink may hold; the callback pulls each at once, so this only bounds memory.
const SINK_MAX_BUFFERS: u32 = 8;
/// The tail every pipeline shares: SPS/PPS repeated before each IDR, AVC framing, whole AUs.
const H264_TAIL: &str =
    "h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au";

/// A pipeline ready to be set to PLAYING, on the realtime clock.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) pipeline: gst::Pipeline,
    pub(crate) sink: gst_app::AppSink,
}

/// The elements a source needs besides the encoder.
pub(crate) fn required_elements(source: &Source) -> &'static [&'static str] {
    match source {
        Source::Test => &[
            "videotestsrc",
            "clockoverlay",
            "videoconvert",
            "h264parse",
            "appsink",
        ],
        Source::File(_) => &[
            "filesrc",
            "decodebin",
            "videoconvert",
            "videoscale",
            "videorate",
            "h264parse",
            "appsink",
        ],
        Source::V4l2(_) => &[
            "v4l2src",
            "videoconvert",
            "videoscale",
            "videorate",
            "h264parse",
            "appsink",
        ],
        Source::Rtsp(_) => &["rtspsrc", "rtph264depay", "h264parse", "appsink"],
    }
}

/// Checks that the source can be opened: the V4L2 device exists, is a character device and
/// opens read-write; the file is readable. RTSP and test need nothing.
pub(crate) fn check_source(source: &Source) -> Result<(), CaptureError> {
    match source {
        Source::V4l2(device) => check_device(device),
        Source::File(path) => File::open(path)
            .map(drop)
            .map_err(|e| CaptureError::Pipeline(format!("cannot read {}: {e}", path.display()))),
        Source::Test | Source::Rtsp(_) => Ok(()),
    }
}

fn check_device(device: &Path) -> Result<(), CaptureError> {
    let missing = |reason: String| CaptureError::MissingDevice {
        device: device.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(device).map_err(|e| missing(e.to_string()))?;
    if !meta.file_type().is_char_device() {
        return Err(missing("not a character device".to_owned()));
    }
    // v4l2src opens the device read-write; check that now rather than at PLAYING.
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map(drop)
        .map_err(|e| missing(e.to_string()))
}

/// The pipeline description for `settings`; `encoder` is ignored for RTSP.
pub(crate) fn description(settings: &CaptureSettings, encoder: &str) -> String {
    let raw_caps = format!(
        "video/x-raw,width={},height={},framerate={}/1",
        settings.width, settings.height, settings.framerate
    );
    let enc = encoder::description(encoder, settings);
    match &settings.source {
        Source::Test => format!(
            "videotestsrc is-live=true pattern=smpte \
             ! clockoverlay time-format=\"%Y-%m-%d %H:%M:%S\" shaded-background=true \
             ! {raw_caps} ! videoconvert ! {enc} ! {H264_TAIL} ! appsink name={SINK}"
        ),
        // Not live: the appsink is synchronised (set in `build`) to pace at real time.
        Source::File(_) => format!(
            "filesrc name={SRC} ! decodebin ! videoconvert ! videoscale ! videorate \
             ! {raw_caps},pixel-aspect-ratio=1/1 ! videoconvert ! {enc} ! {H264_TAIL} \
             ! appsink name={SINK}"
        ),
        Source::V4l2(_) => format!(
            "v4l2src name={SRC} ! videoconvert ! videoscale ! videorate \
             ! {raw_caps},pixel-aspect-ratio=1/1 ! videoconvert ! {enc} ! {H264_TAIL} \
             ! appsink name={SINK}"
        ),
        Source::Rtsp(_) => format!(
            "rtspsrc name={SRC} latency=200 protocols=tcp \
             ! rtph264depay request-keyframe=true wait-for-keyframe=true ! {H264_TAIL} \
             ! appsink name={SINK}"
        ),
    }
}

/// Checks elements and source, then parses and configures the pipeline.
pub(crate) fn build(settings: &CaptureSettings, encoder: &str) -> Result<Built, CaptureError> {
    let extra = (!matches!(settings.source, Source::Rtsp(_))).then_some(encoder);
    elements::require(
        required_elements(&settings.source)
            .iter()
            .copied()
            .chain(extra),
    )?;
    check_source(&settings.source)?;

    let description = description(settings, encoder);
    // The RTSP URL (which may hold a password) is set as a property, not in this text.
    tracing::info!(pipeline = %description, "capture pipeline");
    let mut context = gst::ParseContext::new();
    let pipeline = gst::parse::launch_full(
        &description,
        Some(&mut context),
        gst::ParseFlags::FATAL_ERRORS,
    )
    .map_err(|e| match context.missing_elements().first() {
        Some(element) => elements::missing(element),
        None => CaptureError::Pipeline(format!("cannot build the pipeline: {e}")),
    })?
    .downcast::<gst::Pipeline>()
    .map_err(|_| CaptureError::Pipeline("the description is not a pipeline".to_owned()))?;

    match &settings.source {
        Source::File(path) => set_src(&pipeline, "location", path.to_string_lossy().as_ref())?,
        Source::V4l2(device) => set_src(&pipeline, "device", device.to_string_lossy().as_ref())?,
        Source::Rtsp(url) => set_src(&pipeline, "location", url)?,
        Source::Test => {}
    }

    let sink = pipeline
        .by_name(SINK)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| CaptureError::Pipeline("appsink missing from the pipeline".to_owned()))?;
    sink.set_max_buffers(SINK_MAX_BUFFERS);
    sink.set_drop(false);
    sink.set_property("emit-signals", false);
    sink.set_enable_last_sample(false);
    // Live sources are paced by their capture; waiting on the clock would only add latency.
    sink.set_sync(matches!(settings.source, Source::File(_)));

    pipeline.use_clock(Some(&clock::realtime_clock()));
    Ok(Built { pipeline, sink })
}

fn set_src(pipeline: &gst::Pipeline, property: &str, value: &str) -> Result<(), CaptureError> {
    let src = pipeline
        .by_name(SRC)
        .ok_or_else(|| CaptureError::Pipeline("source element missing".to_owned()))?;
    src.set_property(property, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::EncoderChoice;

    fn settings(source: Source) -> CaptureSettings {
        CaptureSettings {
            source,
            width: 320,
            height: 240,
            framerate: 15,
            bitrate_kbps: 500,
            keyframe_interval: 30,
            encoder: EncoderChoice::Auto,
        }
    }

    #[test]
    fn descriptions_parse_for_every_source() {
        assert!(gst::init().is_ok());
        for source in [
            Source::Test,
            Source::File("/nonexistent.mp4".into()),
            Source::V4l2("/dev/video0".into()),
            Source::Rtsp("rtsp://127.0.0.1/x".into()),
        ] {
            let desc = description(&settings(source), "x264enc");
            assert!(gst::parse::launch(&desc).is_ok(), "{desc}");
        }
    }

    #[test]
    fn rtsp_passes_h264_through() {
        let desc = description(&settings(Source::Rtsp("rtsp://h/x".into())), PASSTHROUGH);
        assert!(!desc.contains("264enc"), "{desc}");
        assert!(desc.contains("rtph264depay"));
    }

    #[test]
    fn missing_file_is_reported() {
        assert!(matches!(
            check_source(&Source::File("/no/such/file.mp4".into())),
            Err(CaptureError::Pipeline(_))
        ));
    }

    #[test]
    fn device_must_be_a_char_device() {
        assert!(matches!(
            check_source(&Source::V4l2("/".into())),
            Err(CaptureError::MissingDevice { .. })
        ));
    }
}
