//! Capture and encode with GStreamer: a camera (or test source) in, H.264 access units with
//! wall-clock capture timestamps and their codec private data (avcC) out.
//!
//! The rest of the agent never touches GStreamer: it receives [`CaptureEvent`]s on a channel.
//! A capture thread owns the pipeline, watches its bus, and rebuilds it with backoff when a
//! source fails at run time (an RTSP camera dropping off the network), so callers see a pause in
//! frames, not an error. Only problems that retrying cannot fix (a missing plugin, a missing
//! device, a stream without SPS/PPS) end the capture with a [`CaptureError`].

mod avc;
mod clock;
mod elements;
mod encoder;
mod pipeline;
mod sink;
#[cfg(test)]
mod tests;
mod thread;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use gstreamer as gst;
use tokio::sync::mpsc::Sender;
use tracing::{error, info};

use sink::{Counters, Delivery};

/// Where the video comes from (`--source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `test`: videotestsrc with a clock overlay, live.
    Test,
    /// `file:PATH`: a media file played in a loop at real-time pace.
    File(PathBuf),
    /// `v4l2:DEVICE`: a USB/CSI camera through Video4Linux2.
    V4l2(PathBuf),
    /// `rtsp://...`: an IP camera; H.264 is passed through without re-encoding.
    Rtsp(String),
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "test" {
            Ok(Source::Test)
        } else if let Some(path) = s.strip_prefix("file:") {
            Ok(Source::File(PathBuf::from(path)))
        } else if let Some(device) = s.strip_prefix("v4l2:") {
            Ok(Source::V4l2(PathBuf::from(device)))
        } else if s.starts_with("rtsp://") || s.starts_with("rtsps://") {
            Ok(Source::Rtsp(s.to_owned()))
        } else {
            Err(format!(
                "unknown source `{s}`: expected test, file:PATH, v4l2:DEVICE or rtsp://..."
            ))
        }
    }
}

/// Encoder choice (`encoder` in the config): `auto` probes hardware encoders first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum EncoderChoice {
    /// First available of the hardware encoders, then x264enc.
    #[default]
    Auto,
    /// A GStreamer element name, e.g. `x264enc` or `v4l2h264enc`.
    Named(String),
}

/// What to capture and how to encode it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaptureSettings {
    /// The source.
    pub(crate) source: Source,
    /// Output width in pixels (raw sources only; RTSP passes through).
    pub(crate) width: u32,
    /// Output height in pixels.
    pub(crate) height: u32,
    /// Frames per second.
    pub(crate) framerate: u32,
    /// Target bitrate in kbit/s.
    pub(crate) bitrate_kbps: u32,
    /// Maximum distance between key frames, in frames.
    pub(crate) keyframe_interval: u32,
    /// Encoder selection.
    pub(crate) encoder: EncoderChoice,
}

/// The stream's format: what goes into the MKV track entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamFormat {
    /// AVCDecoderConfigurationRecord, validated: version 1, at least one SPS and one PPS.
    pub(crate) codec_private: Vec<u8>,
    /// Coded width in pixels.
    pub(crate) width: u32,
    /// Coded height in pixels.
    pub(crate) height: u32,
}

/// One encoded access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapturedFrame {
    /// Wall-clock time (Unix epoch, ns) at which the frame was captured.
    pub(crate) capture_unix_ns: u64,
    /// Key frame (IDR).
    pub(crate) keyframe: bool,
    /// AVCC payload: NAL units with 4-byte big-endian length prefixes.
    pub(crate) data: Vec<u8>,
    /// The format this frame belongs to; a new `Arc` whenever caps change.
    pub(crate) format: Arc<StreamFormat>,
}

/// Sent by the capture thread.
#[derive(Debug)]
pub(crate) enum CaptureEvent {
    /// A frame.
    Frame(CapturedFrame),
    /// The pipeline failed and is being rebuilt (frames pause); informational.
    Restarting {
        /// Why.
        reason: String,
    },
    /// Capture ended for good.
    Fatal(CaptureError),
}

/// Problems that retrying cannot fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CaptureError {
    /// A GStreamer element is not installed.
    #[error("GStreamer element `{element}` is missing: install the Debian package `{package}`")]
    MissingElement {
        /// Element factory name.
        element: String,
        /// Debian package that provides it.
        package: String,
    },
    /// The camera device does not exist or cannot be opened.
    #[error("camera device {device} is not available: {reason}")]
    MissingDevice {
        /// Device path.
        device: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The encoded stream carries no usable SPS/PPS.
    #[error(
        "the H.264 stream has no usable codec private data (SPS/PPS): {0}; refusing to upload video that players cannot decode"
    )]
    InvalidCodecPrivateData(String),
    /// Anything else from GStreamer that the capture could not recover from.
    #[error("capture failed: {0}")]
    Pipeline(String),
}

/// Starts capturing on a dedicated thread.
///
/// Returns `Err` right away for problems found before the pipeline runs: a missing element
/// ([`CaptureError::MissingElement`] naming the Debian package), a V4L2 device that does not
/// exist or cannot be opened ([`CaptureError::MissingDevice`]), an unreadable file or invalid
/// settings ([`CaptureError::Pipeline`]). With `EncoderChoice::Auto` this probes hardware
/// encoders first, which can take a few seconds each on machines that list them.
///
/// Later failures arrive as events: [`CaptureEvent::Restarting`] before each rebuild,
/// [`CaptureEvent::Fatal`] once, after which the thread has ended. Frames are sent with
/// `try_send`; when the channel is full they are dropped and counted. Capture also ends when the
/// receiver is dropped.
pub(crate) fn start(
    settings: CaptureSettings,
    events: Sender<CaptureEvent>,
) -> Result<CaptureHandle, CaptureError> {
    gst::init()
        .map_err(|e| CaptureError::Pipeline(format!("GStreamer did not initialise: {e}")))?;
    let raw = !matches!(settings.source, Source::Rtsp(_));
    if raw && (settings.width == 0 || settings.height == 0 || settings.framerate == 0) {
        return Err(CaptureError::Pipeline(format!(
            "invalid capture size {}x{}@{}",
            settings.width, settings.height, settings.framerate
        )));
    }
    elements::require(
        pipeline::required_elements(&settings.source)
            .iter()
            .copied(),
    )?;
    pipeline::check_source(&settings.source)?;
    let encoder = match settings.source {
        Source::Rtsp(_) => {
            info!("RTSP source: camera H.264 passed through, no encoder");
            pipeline::PASSTHROUGH.to_owned()
        }
        _ => encoder::choose(&settings)?,
    };
    let first = pipeline::build(&settings, &encoder)?;

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let worker = thread::Worker {
        settings,
        encoder: encoder.clone(),
        delivery: Delivery {
            events,
            counters: Arc::clone(&counters),
            state: Arc::new(Mutex::new(sink::StreamState::default())),
            fatal: Arc::new(Mutex::new(None)),
        },
        stop: Arc::clone(&stop),
    };
    let thread = std::thread::Builder::new()
        .name("capture".to_owned())
        .spawn(move || worker.run(first))
        .map_err(|e| CaptureError::Pipeline(format!("cannot start the capture thread: {e}")))?;
    Ok(CaptureHandle {
        encoder,
        counters,
        stop,
        thread: Some(thread),
    })
}

/// A running capture. [`CaptureHandle::stop`] or dropping it stops the pipeline and joins the
/// thread (within about 100 ms plus the pipeline's shutdown).
#[derive(Debug)]
pub(crate) struct CaptureHandle {
    encoder: String,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CaptureHandle {
    /// Stops the pipeline and joins the capture thread.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    /// The encoder element in use, e.g. `x264enc`; `passthrough` for RTSP.
    pub(crate) fn encoder(&self) -> &str {
        &self.encoder
    }

    /// Frames delivered to the channel so far.
    #[allow(dead_code, reason = "handle API; the agent may read only some of it")]
    pub(crate) fn frames_captured(&self) -> u64 {
        self.counters.captured.load(Ordering::Relaxed)
    }

    /// Frames discarded because the channel was full.
    #[allow(dead_code, reason = "handle API; the agent may read only some of it")]
    pub(crate) fn frames_dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// The live counter behind [`CaptureHandle::frames_dropped`], for status reporting.
    pub(crate) fn frames_dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.counters.dropped)
    }

    /// False once the capture thread has ended (after a Fatal event, or the receiver dropped).
    #[allow(dead_code, reason = "handle API; the agent may read only some of it")]
    pub(crate) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            error!("the capture thread panicked");
        }
    }
}

impl Drop for CaptureHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
