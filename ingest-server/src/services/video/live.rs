//! Live feeds: wakes readers that follow a stream (GetMedia, live HLS playlists) when a
//! fragment is stored or a frame of the fragment being received arrives, tells them whether
//! a producer is still connected, and holds that fragment's frames so far (low-latency HLS
//! parts are cut from them before the fragment is complete).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mkv_fragment::SegmentHeader;
use tokio::sync::watch;

/// The latest stored sequence per stream, the fragment being received, and whether a
/// producer is connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveState {
    /// Highest stored fragment sequence (0 = none seen since start).
    pub latest_seq: i64,
    /// A PutMedia connection is open.
    pub producing: bool,
    /// Sequence of the fragment being received (0 = none).
    pub partial_seq: i64,
    /// Frames of that fragment received so far.
    pub partial_frames: usize,
}

/// One frame of the fragment being received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialFrame {
    /// Track number.
    pub track: u64,
    /// Presentation time: producer timestamp in ms.
    pub pts_ms: i64,
    /// Key frame.
    pub keyframe: bool,
    /// The frame as sent (AVCC for H.264).
    pub data: Bytes,
}

/// The fragment being received by PutMedia, as far as it has arrived.
#[derive(Debug, Clone)]
pub struct PartialFragment {
    /// Its sequence in the stream (the fragment number is derived from it).
    pub seq: i64,
    /// Producer timestamp of its start, in ms.
    pub producer_start_ms: i64,
    /// The session header (tracks, codec private data) it belongs to.
    pub header: Arc<SegmentHeader>,
    /// Frames so far, in arrival order.
    pub frames: Vec<PartialFrame>,
}

/// One watch channel per stream, created on first use.
#[derive(Debug, Default)]
pub struct LiveFeeds {
    feeds: Mutex<HashMap<i64, watch::Sender<LiveState>>>,
    partials: Mutex<HashMap<i64, PartialFragment>>,
}

impl LiveFeeds {
    fn with<T>(&self, stream_id: i64, f: impl FnOnce(&watch::Sender<LiveState>) -> T) -> T {
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        let sender = feeds
            .entry(stream_id)
            .or_insert_with(|| watch::channel(LiveState::default()).0);
        f(sender)
    }

    /// A receiver that changes whenever the stream's state does.
    pub fn subscribe(&self, stream_id: i64) -> watch::Receiver<LiveState> {
        self.with(stream_id, |s| s.subscribe())
    }

    /// A fragment was stored.
    pub fn stored(&self, stream_id: i64, seq: i64) {
        self.with(stream_id, |s| {
            s.send_modify(|state| state.latest_seq = state.latest_seq.max(seq))
        });
    }

    /// A producer connected or left.
    pub fn producing(&self, stream_id: i64, producing: bool) {
        self.with(stream_id, |s| {
            s.send_modify(|state| state.producing = producing)
        });
    }

    /// A fragment starts arriving (replacing any earlier partial one).
    pub fn partial_started(&self, stream_id: i64, fragment: PartialFragment) {
        let seq = fragment.seq;
        let frames = fragment.frames.len();
        self.partials_lock().insert(stream_id, fragment);
        self.with(stream_id, |s| {
            s.send_modify(|state| {
                state.partial_seq = seq;
                state.partial_frames = frames;
            })
        });
    }

    /// A frame of the fragment being received arrived.
    pub fn partial_frame(&self, stream_id: i64, seq: i64, frame: PartialFrame) {
        let frames = {
            let mut partials = self.partials_lock();
            let Some(fragment) = partials.get_mut(&stream_id).filter(|f| f.seq == seq) else {
                return;
            };
            fragment.frames.push(frame);
            fragment.frames.len()
        };
        self.with(stream_id, |s| {
            s.send_modify(|state| {
                if state.partial_seq == seq {
                    state.partial_frames = frames;
                }
            })
        });
    }

    /// The fragment being received was stored, refused or abandoned.
    pub fn partial_ended(&self, stream_id: i64, seq: i64) {
        let removed = {
            let mut partials = self.partials_lock();
            let ours = partials.get(&stream_id).is_some_and(|f| f.seq == seq);
            ours && partials.remove(&stream_id).is_some()
        };
        if removed {
            self.with(stream_id, |s| {
                s.send_modify(|state| {
                    state.partial_seq = 0;
                    state.partial_frames = 0;
                })
            });
        }
    }

    /// A copy of the fragment being received, if any (frames share their bytes).
    pub fn partial(&self, stream_id: i64) -> Option<PartialFragment> {
        self.partials_lock().get(&stream_id).cloned()
    }

    fn partials_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, PartialFragment>> {
        self.partials.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a deleted stream (its readers see the channel close).
    pub fn remove(&self, stream_id: i64) {
        self.partials_lock().remove(&stream_id);
        self.feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&stream_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pts_ms: i64) -> PartialFrame {
        PartialFrame {
            track: 1,
            pts_ms,
            keyframe: pts_ms == 0,
            data: Bytes::from_static(b"f"),
        }
    }

    #[test]
    fn partial_fragment_lifecycle_wakes_readers() {
        let feeds = LiveFeeds::default();
        let mut rx = feeds.subscribe(7);
        let fragment = |seq| PartialFragment {
            seq,
            producer_start_ms: 1_000,
            header: Arc::new(SegmentHeader::default()),
            frames: Vec::new(),
        };
        feeds.partial_started(7, fragment(3));
        feeds.partial_frame(7, 3, frame(0));
        feeds.partial_frame(7, 3, frame(33));
        // A frame for another fragment (late, after a restart) is ignored.
        feeds.partial_frame(7, 2, frame(66));
        assert!(rx.has_changed().unwrap());
        let state = *rx.borrow_and_update();
        assert_eq!((state.partial_seq, state.partial_frames), (3, 2));
        assert_eq!(feeds.partial(7).unwrap().frames.len(), 2);
        // Ending another sequence leaves it; ending its own clears it.
        feeds.partial_ended(7, 2);
        assert!(feeds.partial(7).is_some());
        feeds.stored(7, 3);
        feeds.partial_ended(7, 3);
        assert!(feeds.partial(7).is_none());
        let state = *rx.borrow_and_update();
        assert_eq!(
            (state.latest_seq, state.partial_seq, state.partial_frames),
            (3, 0, 0)
        );
    }
}
