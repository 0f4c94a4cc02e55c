//! Live feeds: wakes GetMedia readers that follow a stream when a fragment is stored,
//! and tells them whether a producer is still connected.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// The latest stored sequence per stream and whether a producer is connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveState {
    /// Highest stored fragment sequence (0 = none seen since start).
    pub latest_seq: i64,
    /// A PutMedia connection is open.
    pub producing: bool,
}

/// One watch channel per stream, created on first use.
#[derive(Debug, Default)]
pub struct LiveFeeds {
    feeds: Mutex<HashMap<i64, watch::Sender<LiveState>>>,
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

    /// Forgets a deleted stream (its readers see the channel close).
    pub fn remove(&self, stream_id: i64) {
        self.feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&stream_id);
    }
}
