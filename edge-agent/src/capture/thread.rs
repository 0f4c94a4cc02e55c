//! The capture thread: runs a pipeline, watches its bus, loops files, and rebuilds the pipeline
//! with exponential backoff when it fails at run time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, error, info, warn};

use super::pipeline::{self, Built};
use super::sink::{self, Delivery};
use super::{CaptureError, CaptureEvent, CaptureSettings, Source};

/// First delay before a rebuild; doubles on each failure without frames in between.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest delay between rebuilds.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A pipeline that produces no frame for this long is rebuilt (a camera that froze without
/// closing its connection); long enough for an RTSP connect.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the thread checks for stop requests between bus messages.
const POLL: Duration = Duration::from_millis(50);

/// Exponential backoff: 1 s, 2 s, 4 s ... 30 s, back to 1 s once frames flowed.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_INITIAL,
        }
    }
}

impl Backoff {
    /// The delay to wait now; the following one is doubled.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(BACKOFF_MAX);
        delay
    }

    /// After frames flowed again.
    pub(crate) fn reset(&mut self) {
        self.next = BACKOFF_INITIAL;
    }
}

/// How one pipeline run ended.
#[derive(Debug)]
enum Outcome {
    /// Stop was requested or the receiver is gone.
    Stopped,
    /// Retrying cannot help.
    Fatal(CaptureError),
    /// Rebuild after a backoff.
    Failed(String),
}

/// Everything the capture thread owns.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) settings: CaptureSettings,
    pub(crate) encoder: String,
    pub(crate) delivery: Delivery,
    pub(crate) stop: Arc<AtomicBool>,
}

/// Sets the pipeline to NULL however a run ends, which also joins its streaming threads.
struct Running(gst::Pipeline);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.set_state(gst::State::Null).is_err() {
            warn!("capture pipeline did not shut down cleanly");
        }
    }
}

impl Worker {
    /// Runs `first`, then rebuilds until stopped or a fatal error.
    pub(crate) fn run(self, first: Built) {
        let mut backoff = Backoff::default();
        let mut next = Some(first);
        loop {
            let produced_before = self.delivery.counters.produced();
            let built = next
                .take()
                .map_or_else(|| pipeline::build(&self.settings, &self.encoder), Ok);
            let outcome = match built {
                Ok(built) => self.play(built),
                Err(
                    e @ (CaptureError::MissingElement { .. } | CaptureError::MissingDevice { .. }),
                ) => Outcome::Fatal(e),
                Err(e) => Outcome::Failed(e.to_string()),
            };
            match outcome {
                Outcome::Stopped => return,
                Outcome::Fatal(e) => {
                    error!(error = %e, "capture stopped");
                    self.send_fatal(e);
                    return;
                }
                Outcome::Failed(reason) => {
                    if self.delivery.counters.produced() > produced_before {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay();
                    warn!(%reason, ?delay, "capture pipeline failed, rebuilding");
                    if !self.restart_after(reason, delay) {
                        return;
                    }
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.delivery.events.is_closed()
    }

    fn take_fatal(&self) -> Option<CaptureError> {
        sink::lock(&self.delivery.fatal).take()
    }

    fn play(&self, Built { pipeline, sink }: Built) -> Outcome {
        sink::install(&sink, self.delivery.clone());
        let running = Running(pipeline);
        let pipeline = &running.0;
        let Some(bus) = pipeline.bus() else {
            return Outcome::Failed("pipeline without a bus".to_owned());
        };
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The element that refused usually said why on the bus.
            let reason = bus
                .pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(e.error().to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| "the pipeline refused to start".to_owned());
            return Outcome::Failed(reason);
        }

        let mut produced = self.delivery.counters.produced();
        let mut last_progress = Instant::now();
        let poll = gst::ClockTime::from_mseconds(u64::try_from(POLL.as_millis()).unwrap_or(50));
        loop {
            if self.stopping() {
                return Outcome::Stopped;
            }
            let now_produced = self.delivery.counters.produced();
            if now_produced != produced {
                produced = now_produced;
                last_progress = Instant::now();
            } else if last_progress.elapsed() >= STALL_TIMEOUT {
                return Outcome::Failed(format!("no frames for {} s", STALL_TIMEOUT.as_secs()));
            }
            let Some(msg) = bus.timed_pop(poll) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) if matches!(self.settings.source, Source::File(_)) => {
                    debug!("end of file, looping");
                    let flags = gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT;
                    if pipeline.seek_simple(flags, gst::ClockTime::ZERO).is_err() {
                        return Outcome::Failed("could not seek back to the file start".to_owned());
                    }
                }
                gst::MessageView::Eos(_) => {
                    return Outcome::Failed("the source ended the stream".to_owned());
                }
                gst::MessageView::Error(e) => {
                    if let Some(fatal) = self.take_fatal() {
                        return Outcome::Fatal(fatal);
                    }
                    return classify(e);
                }
                gst::MessageView::Application(app)
                    if app
                        .structure()
                        .is_some_and(|s| s.name() == sink::FATAL_MESSAGE) =>
                {
                    if let Some(fatal) = self.take_fatal() {
                        return Outcome::Fatal(fatal);
                    }
                }
                gst::MessageView::Warning(w) => {
                    warn!(source = ?w.src().map(|s| s.path_string()), warning = %w.error(), "GStreamer warning");
                }
                gst::MessageView::Latency(_) => {
                    let _ = pipeline.recalculate_latency();
                }
                gst::MessageView::StateChanged(s)
                    if s.src()
                        .is_some_and(|src| src == pipeline.upcast_ref::<gst::Object>()) =>
                {
                    debug!(from = ?s.old(), to = ?s.current(), "capture pipeline state");
                }
                _ => {}
            }
        }
    }

    /// Sends Restarting while waiting out the backoff `delay`: retried while the channel is full,
    /// dropped only if it is still full when the delay ends. False when stopping.
    fn restart_after(&self, reason: String, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        let mut pending = Some(CaptureEvent::Restarting { reason });
        loop {
            if self.stopping() {
                return false;
            }
            if let Some(event) = pending.take() {
                match self.delivery.events.try_send(event) {
                    Ok(()) => {}
                    Err(TrySendError::Full(back)) => pending = Some(back),
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            if Instant::now() >= until {
                if pending.is_some() {
                    warn!("capture channel full: Restarting event not delivered");
                }
                return true;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Fatal must arrive: retried while the channel is full, until stop or receiver gone.
    fn send_fatal(&self, e: CaptureError) {
        let mut event = CaptureEvent::Fatal(e);
        loop {
            match self.delivery.events.try_send(event) {
                Ok(()) | Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(back)) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    event = back;
                    std::thread::sleep(POLL);
                }
            }
        }
    }
}

/// Runtime errors are retried, except input that no rebuild can use: a missing decoder, a file
/// that is not media, or a source without a stream that links to the video branch (an
/// audio-only file, an H.265 camera), which GStreamer reports as a `not-linked` flow.
fn classify(e: &gst::message::Error) -> Outcome {
    let err = e.error();
    let src = e
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default();
    let details = e.debug().map(|d| d.to_string()).unwrap_or_default();
    if err.matches(gst::CoreError::MissingPlugin) || err.matches(gst::StreamError::CodecNotFound) {
        return Outcome::Fatal(CaptureError::Pipeline(format!(
            "{src}: {err} (for H.264 input install gstreamer1.0-libav)"
        )));
    }
    if err.matches(gst::StreamError::TypeNotFound) || err.matches(gst::StreamError::WrongType) {
        return Outcome::Fatal(CaptureError::Pipeline(format!("{src}: {err}")));
    }
    if details.contains("not-linked") {
        return Outcome::Fatal(CaptureError::Pipeline(format!(
            "{src}: the source has no stream the pipeline can use (an H.264 stream for RTSP, \
             a video stream for files)"
        )));
    }
    info!(%src, error = %err, %details, "capture pipeline error");
    Outcome::Failed(format!("{src}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets() {
        let mut b = Backoff::default();
        let secs: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
