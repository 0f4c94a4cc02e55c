//! The appsink end: turns each sample into a [`CapturedFrame`] and hands it to the channel
//! without ever blocking GStreamer's streaming thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc::{Sender, error::TrySendError};
use tracing::{error, warn};

use super::avc::{self, AvcConfig};
use super::clock::{self, Monotonic};
use super::{CaptureError, CaptureEvent, CapturedFrame, StreamFormat};

/// Name of the application message the callback posts when the stream is unusable.
pub(crate) const FATAL_MESSAGE: &str = "edge-agent-capture-fatal";
/// Minimum time between two "channel full" warnings.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// Frame counters, shared with the handle (and through it with status reporting).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Frames handed to the channel.
    pub(crate) captured: Arc<AtomicU64>,
    /// Frames discarded because the channel was full.
    pub(crate) dropped: Arc<AtomicU64>,
}

impl Counters {
    /// Frames that came out of the pipeline, delivered or not: tells whether frames flow.
    pub(crate) fn produced(&self) -> u64 {
        self.captured
            .load(Ordering::Relaxed)
            .saturating_add(self.dropped.load(Ordering::Relaxed))
    }
}

/// Per-stream state that outlives one pipeline, so a rebuild with the same caps keeps the same
/// `Arc<StreamFormat>` and timestamps stay non-decreasing.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    caps: Option<gst::Caps>,
    format: Option<Arc<StreamFormat>>,
    timestamps: Monotonic,
    last_drop_warning: Option<Instant>,
}

impl StreamState {
    /// The format for `caps`: the current `Arc` while caps (or the format derived from them)
    /// stay the same, a new one when they change.
    pub(crate) fn format_for(
        &mut self,
        caps: &gst::CapsRef,
    ) -> Result<Arc<StreamFormat>, CaptureError> {
        if let (Some(known), Some(format)) = (&self.caps, &self.format)
            && known.as_ref() == caps
        {
            return Ok(Arc::clone(format));
        }
        let parsed = format_from_caps(caps)?;
        let format = match &self.format {
            Some(current) if **current == parsed => Arc::clone(current),
            _ => Arc::new(parsed),
        };
        self.caps = Some(caps.to_owned());
        self.format = Some(Arc::clone(&format));
        Ok(format)
    }
}

/// Reads and validates `codec_data`, width and height from H.264 caps.
pub(crate) fn format_from_caps(caps: &gst::CapsRef) -> Result<StreamFormat, CaptureError> {
    let invalid = |why: &str| CaptureError::InvalidCodecPrivateData(why.to_owned());
    let s = caps.structure(0).ok_or_else(|| invalid("empty caps"))?;
    let codec_data = s
        .get::<gst::Buffer>("codec_data")
        .map_err(|_| invalid("the caps carry no codec_data"))?;
    let map = codec_data
        .map_readable()
        .map_err(|_| invalid("codec_data is not readable"))?;
    AvcConfig::parse(map.as_slice())
        .map_err(|e| CaptureError::InvalidCodecPrivateData(e.to_string()))?;
    let dimension = |field: &str| {
        s.get::<i32>(field)
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| invalid(&format!("the caps carry no valid {field}")))
    };
    Ok(StreamFormat {
        codec_private: map.as_slice().to_vec(),
        width: dimension("width")?,
        height: dimension("height")?,
    })
}

/// Converts a sample; `Ok(None)` skips a buffer that cannot be used (no data, broken framing),
/// `Err` means the stream itself is unusable.
pub(crate) fn frame_from_sample(
    sample: &gst::Sample,
    base_time: Option<gst::ClockTime>,
    state: &mut StreamState,
) -> Result<Option<CapturedFrame>, CaptureError> {
    let caps = sample.caps().ok_or_else(|| {
        CaptureError::InvalidCodecPrivateData("a sample arrived without caps".to_owned())
    })?;
    let format = state.format_for(caps)?;
    let Some(buffer) = sample.buffer() else {
        return Ok(None);
    };
    let Ok(map) = buffer.map_readable() else {
        warn!("skipping an unreadable buffer");
        return Ok(None);
    };
    if avc::split_avcc(map.as_slice()).is_none() {
        warn!(
            len = map.size(),
            "skipping an access unit with broken AVCC framing"
        );
        return Ok(None);
    }
    let captured = clock::capture_time_ns(sample, base_time).unwrap_or_else(clock::now_unix_ns);
    Ok(Some(CapturedFrame {
        capture_unix_ns: state.timestamps.clamp(captured),
        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        data: map.as_slice().to_vec(),
        format,
    }))
}

/// What the appsink callback shares with the capture thread.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) events: Sender<CaptureEvent>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) state: Arc<Mutex<StreamState>>,
    /// Set by the callback when the stream is unusable; the thread reports it as Fatal.
    pub(crate) fatal: Arc<Mutex<Option<CaptureError>>>,
}

/// A poisoned lock only means another callback panicked mid-update; the data is still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the new-sample callback on `sink`.
pub(crate) fn install(sink: &gst_app::AppSink, delivery: Delivery) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| on_sample(sink, &delivery))
            .build(),
    );
}

fn on_sample(sink: &gst_app::AppSink, d: &Delivery) -> Result<gst::FlowSuccess, gst::FlowError> {
    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
    if lock(&d.fatal).is_some() {
        return Err(gst::FlowError::Error);
    }
    let mut state = lock(&d.state);
    match frame_from_sample(&sample, sink.base_time(), &mut state) {
        Ok(Some(frame)) => {
            deliver(d, &mut state, frame);
            Ok(gst::FlowSuccess::Ok)
        }
        Ok(None) => Ok(gst::FlowSuccess::Ok),
        Err(e) => {
            error!(error = %e, "capture stream unusable");
            *lock(&d.fatal) = Some(e);
            let msg = gst::message::Application::builder(gst::Structure::new_empty(FATAL_MESSAGE))
                .src(sink)
                .build();
            // The bus is gone only while the pipeline is being torn down.
            let _ = sink.post_message(msg);
            Err(gst::FlowError::Error)
        }
    }
}

fn deliver(d: &Delivery, state: &mut StreamState, frame: CapturedFrame) {
    match d.events.try_send(CaptureEvent::Frame(frame)) {
        Ok(()) => {
            d.counters.captured.fetch_add(1, Ordering::Relaxed);
        }
        Err(TrySendError::Full(_)) => {
            let dropped = d.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let now = Instant::now();
            if state
                .last_drop_warning
                .is_none_or(|at| now.duration_since(at) >= DROP_WARNING_INTERVAL)
            {
                state.last_drop_warning = Some(now);
                warn!(dropped, "capture channel full, dropping frames");
            }
        }
        // The receiver is gone; the capture thread notices and stops.
        Err(TrySendError::Closed(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// avcC for a Baseline stream: one SPS (profile 66), one PPS.
    const AVCC: &[u8] = &[
        1, 66, 0xc0, 13, 0xff, 0xe1, 0, 4, 0x67, 66, 0xc0, 13, 1, 0, 2, 0x68, 0xce,
    ];

    fn caps(codec_data: Option<&[u8]>, width: i32) -> gst::Caps {
        let mut caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("width", width)
            .field("height", 240i32)
            .build();
        if let Some(data) = codec_data
            && let Some(s) = caps.make_mut().structure_mut(0)
        {
            s.set("codec_data", gst::Buffer::from_slice(data.to_vec()));
        }
        caps
    }

    fn sample(caps: &gst::Caps, data: &[u8], delta: bool) -> gst::Sample {
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_mseconds(100));
            if delta {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(gst::ClockTime::ZERO);
        gst::Sample::builder()
            .buffer(&buffer)
            .caps(caps)
            .segment(&segment)
            .build()
    }

    const AU: &[u8] = &[0, 0, 0, 2, 0x65, 0x88];

    #[test]
    fn converts_samples_and_keeps_format_arc() {
        assert!(gst::init().is_ok());
        let mut state = StreamState::default();
        let c = caps(Some(AVCC), 320);
        let base = gst::ClockTime::from_seconds(1_700_000_000);
        let first = frame_from_sample(&sample(&c, AU, false), Some(base), &mut state)
            .expect("ok")
            .expect("frame");
        assert!(first.keyframe);
        assert_eq!(first.capture_unix_ns, 1_700_000_000_100_000_000);
        assert_eq!(first.data, AU);
        assert_eq!(
            (
                first.format.width,
                first.format.height,
                first.format.codec_private.as_slice()
            ),
            (320, 240, AVCC)
        );
        let second = frame_from_sample(&sample(&c, AU, true), Some(base), &mut state)
            .expect("ok")
            .expect("frame");
        assert!(!second.keyframe);
        assert!(Arc::ptr_eq(&first.format, &second.format));
        // Equal caps built anew keep the Arc; different caps get a new one.
        let same = frame_from_sample(&sample(&caps(Some(AVCC), 320), AU, true), None, &mut state)
            .expect("ok")
            .expect("frame");
        assert!(Arc::ptr_eq(&first.format, &same.format));
        // Without a base time the wall clock is used, still never going backwards.
        assert!(same.capture_unix_ns >= second.capture_unix_ns);
        let wider = frame_from_sample(&sample(&caps(Some(AVCC), 640), AU, true), None, &mut state)
            .expect("ok")
            .expect("frame");
        assert!(!Arc::ptr_eq(&first.format, &wider.format));
        assert_eq!(wider.format.width, 640);
    }

    #[test]
    fn rejects_missing_or_invalid_codec_data() {
        assert!(gst::init().is_ok());
        for c in [caps(None, 320), caps(Some(&AVCC[..10]), 320)] {
            let mut state = StreamState::default();
            assert!(matches!(
                frame_from_sample(&sample(&c, AU, false), None, &mut state),
                Err(CaptureError::InvalidCodecPrivateData(_))
            ));
        }
    }

    #[test]
    fn skips_broken_framing() {
        assert!(gst::init().is_ok());
        let mut state = StreamState::default();
        let c = caps(Some(AVCC), 320);
        let out = frame_from_sample(&sample(&c, &[0, 0, 0, 9, 0x65], false), None, &mut state);
        assert!(matches!(out, Ok(None)));
    }
}
