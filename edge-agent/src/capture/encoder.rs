//! Picks the H.264 encoder and writes its rate-control settings.
//!
//! `auto` tries the hardware encoders that the registry lists, in order, but a listed element
//! can still fail on this machine (a plugin built for a device that is absent), so each one is
//! probed with a short real encode before it is chosen; x264enc is the last resort.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tracing::{info, warn};

use super::{CaptureError, CaptureSettings, EncoderChoice, elements};

/// Hardware encoders in probing order: Raspberry Pi, Jetson, VA-API, Intel Quick Sync.
pub(crate) const HARDWARE: [&str; 4] =
    ["v4l2h264enc", "nvv4l2h264enc", "vaapih264enc", "qsvh264enc"];
/// The software fallback.
pub(crate) const SOFTWARE: &str = "x264enc";

/// How long a probe may take to encode its few frames.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames a probe encodes.
const PROBE_FRAMES: u32 = 10;

/// The encoder as a `gst-launch` fragment, with bitrate and key frame interval set through the
/// properties each known encoder has; other elements are used with their defaults.
pub(crate) fn description(element: &str, s: &CaptureSettings) -> String {
    let kbps = s.bitrate_kbps;
    let bps = u64::from(kbps) * 1000;
    let gop = s.keyframe_interval.max(1);
    match element {
        // 4:2:0 input: given a choice x264 encodes 4:4:4 (High 4:4:4), which browsers reject.
        // No scene-cut key frames: fragments are cut on key frames, so a regular GOP keeps
        // them at their configured duration.
        "x264enc" => format!(
            "video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=veryfast bitrate={kbps} key-int-max={gop} \
             bframes=0 option-string=scenecut=0"
        ),
        // The Pi's encoder takes V4L2 controls; without a fixed level its caps do not negotiate.
        "v4l2h264enc" => format!(
            "v4l2h264enc extra-controls=\"controls,video_bitrate={bps},h264_i_frame_period={gop},\
             repeat_sequence_header=1\" ! video/x-h264,level=(string)4"
        ),
        "nvv4l2h264enc" => {
            format!("nvv4l2h264enc bitrate={bps} iframeinterval={gop} insert-sps-pps=true")
        }
        // Bitrate only applies under a bitrate rate control; the default is constant QP.
        "vaapih264enc" => {
            format!("vaapih264enc rate-control=cbr bitrate={kbps} keyframe-period={gop}")
        }
        "qsvh264enc" => format!("qsvh264enc bitrate={kbps} gop-size={gop} b-frames=0"),
        other => other.to_owned(),
    }
}

/// Chooses the encoder element for `settings` (raw sources only).
pub(crate) fn choose(settings: &CaptureSettings) -> Result<String, CaptureError> {
    let chosen = match &settings.encoder {
        EncoderChoice::Named(name) => {
            elements::require([name.as_str()])?;
            name.clone()
        }
        EncoderChoice::Auto => auto(settings)?,
    };
    info!(encoder = %chosen, "H.264 encoder selected");
    Ok(chosen)
}

fn auto(settings: &CaptureSettings) -> Result<String, CaptureError> {
    for hw in HARDWARE.into_iter().filter(|e| elements::available(e)) {
        match probe(hw, settings) {
            Ok(()) => return Ok(hw.to_owned()),
            Err(reason) => {
                warn!(encoder = hw, %reason, "hardware encoder unusable, trying the next")
            }
        }
    }
    elements::require([SOFTWARE])?;
    Ok(SOFTWARE.to_owned())
}

/// Encodes a few test frames at the configured size with `element`; `Ok` once it produced
/// output and reached end of stream.
pub(crate) fn probe(element: &str, s: &CaptureSettings) -> Result<(), String> {
    let desc = format!(
        "videotestsrc num-buffers={PROBE_FRAMES} ! video/x-raw,width={},height={},framerate={}/1 \
         ! videoconvert ! {} ! h264parse ! video/x-h264,stream-format=avc,alignment=au \
         ! appsink name=probe sync=false",
        s.width,
        s.height,
        s.framerate,
        description(element, s)
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_owned())?;
    let result = run_probe(&pipeline);
    // Errors leaving the probe do not matter: it is dropped either way.
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run_probe(pipeline: &gst::Pipeline) -> Result<(), String> {
    let sink = pipeline
        .by_name("probe")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("probe sink missing")?;
    let produced = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&produced);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let _ = sink.pull_sample();
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "could not reach PLAYING".to_owned())?;
    let bus = pipeline.bus().ok_or("pipeline without bus")?;
    let timeout =
        gst::ClockTime::from_nseconds(u64::try_from(PROBE_TIMEOUT.as_nanos()).unwrap_or(u64::MAX));
    let msg = bus
        .timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error])
        .ok_or_else(|| format!("no end of stream within {PROBE_TIMEOUT:?}"))?;
    match msg.view() {
        gst::MessageView::Error(e) => Err(e.error().to_string()),
        _ if produced.load(Ordering::Relaxed) > 0 => Ok(()),
        _ => Err("no output".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Source;

    fn settings(encoder: EncoderChoice) -> CaptureSettings {
        CaptureSettings {
            source: Source::Test,
            width: 160,
            height: 120,
            framerate: 15,
            bitrate_kbps: 300,
            keyframe_interval: 15,
            encoder,
        }
    }

    #[test]
    fn describes_rate_control() {
        let s = settings(EncoderChoice::Auto);
        assert_eq!(
            description("x264enc", &s),
            "video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=veryfast bitrate=300 \
             key-int-max=15 bframes=0 option-string=scenecut=0"
        );
        assert!(description("nvv4l2h264enc", &s).contains("bitrate=300000 iframeinterval=15"));
        assert!(description("v4l2h264enc", &s).contains("video_bitrate=300000"));
        assert!(description("vaapih264enc", &s).contains("bitrate=300 keyframe-period=15"));
        assert_eq!(description("openh264enc", &s), "openh264enc");
    }

    #[test]
    fn probe_accepts_x264_and_rejects_unknown() {
        assert!(gst::init().is_ok());
        let s = settings(EncoderChoice::Auto);
        assert_eq!(probe("x264enc", &s), Ok(()));
        assert!(probe("no-such-encoder", &s).is_err());
        // Auto on a machine without hardware encoders (or with failing ones) lands on x264enc.
        let chosen = choose(&s).expect("an encoder");
        assert!(chosen == SOFTWARE || HARDWARE.contains(&chosen.as_str()));
    }

    #[test]
    fn named_encoder_must_exist() {
        assert!(gst::init().is_ok());
        let s = settings(EncoderChoice::Named("no-such-encoder".into()));
        assert!(matches!(
            choose(&s),
            Err(CaptureError::MissingElement { element, .. }) if element == "no-such-encoder"
        ));
    }
}
