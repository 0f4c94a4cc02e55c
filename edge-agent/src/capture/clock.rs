//! Capture timestamps: pipelines run on a REALTIME system clock, so a buffer's running time plus
//! the pipeline's base time is a Unix time in nanoseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use gstreamer as gst;

/// A system clock reading `CLOCK_REALTIME`. A fresh instance, not `SystemClock::obtain()`: that
/// one is the process-wide default and changing its type would affect every other pipeline.
pub(crate) fn realtime_clock() -> gst::Clock {
    use gst::prelude::*;
    gst::SystemClock::new(Some("edge-agent-realtime"), gst::ClockType::Realtime).upcast()
}

/// Now, as Unix nanoseconds (0 before 1970, saturating far in the future).
pub(crate) fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The wall-clock time at which a sample's buffer was captured: its PTS converted to running
/// time through the sample's segment, plus the element's base time. `None` when the buffer has
/// no PTS or falls outside the segment.
pub(crate) fn capture_time_ns(
    sample: &gst::Sample,
    base_time: Option<gst::ClockTime>,
) -> Option<u64> {
    let pts = sample.buffer()?.pts()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let running = segment.to_running_time(pts)?;
    running.nseconds().checked_add(base_time?.nseconds())
}

/// Keeps a stream's timestamps non-decreasing across clock steps and pipeline rebuilds.
#[derive(Debug, Default)]
pub(crate) struct Monotonic {
    last: Option<u64>,
}

impl Monotonic {
    /// `t`, or the previous timestamp if `t` would go backwards.
    pub(crate) fn clamp(&mut self, t: u64) -> u64 {
        let t = self.last.map_or(t, |last| t.max(last));
        self.last = Some(t);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clamps_backward_steps() {
        let mut m = Monotonic::default();
        assert_eq!(m.clamp(10), 10);
        assert_eq!(m.clamp(5), 10);
        assert_eq!(m.clamp(12), 12);
    }

    #[test]
    fn realtime_clock_reads_unix_time() {
        if gst::init().is_err() {
            panic!("gstreamer init failed");
        }
        let clock = realtime_clock();
        use gst::prelude::*;
        let gst_now = clock.time().nseconds();
        let diff = gst_now.abs_diff(now_unix_ns());
        assert!(diff < 50_000_000, "clock off by {diff} ns");
    }
}
