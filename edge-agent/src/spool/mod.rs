//! The queue of fragments not yet persisted by the server, in memory and on disk.
//!
//! Every fragment enters in memory as it is captured, frame by frame, and leaves on its
//! PERSISTED ack. While the server acknowledges promptly nothing touches the disk (SD cards wear
//! out): a fragment still unacknowledged `spill_after` after it was completed is written to the
//! disk spool and dropped from memory (`buffered` mode, the default); `durable` mode writes each
//! fragment as soon as it is complete. The disk spool is bounded in bytes: beyond the bound the
//! oldest fragments are dropped, counted and logged. The trade-off between the modes is in the
//! agent's README.
//!
//! The uplink reads the queue through a [`Position`]: it can stream the fragment being captured
//! as it grows (live) or catch up on a backlog, with the same code.

mod disk;
mod record;

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Notify;
use tracing::{info, warn};

use disk::DiskSpool;

/// When fragments go to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SpoolMode {
    /// Only fragments still unacknowledged after `spill_after` (default).
    Buffered,
    /// Every fragment as soon as it is complete.
    Durable,
}

/// Spool settings.
#[derive(Debug, Clone)]
pub(crate) struct SpoolConfig {
    pub(crate) dir: PathBuf,
    /// Bound of the disk spool, in bytes of fragment data.
    pub(crate) max_bytes: u64,
    pub(crate) mode: SpoolMode,
    pub(crate) spill_after: Duration,
    /// Unacknowledged bytes kept in memory before fragments are spilled early.
    pub(crate) memory_max_bytes: u64,
}

/// Where the uplink is in the queue: the next byte to send is `offset` in fragment `id` (or
/// the start of the first fragment after it, once it is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    pub(crate) id: u64,
    pub(crate) offset: usize,
}

/// Bytes for the uplink.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) id: u64,
    pub(crate) timecode_ms: u64,
    /// Info + Tracks of the session this fragment belongs to.
    pub(crate) header: Arc<[u8]>,
    /// Offset of `bytes` in the fragment; 0 at a fragment boundary.
    pub(crate) offset: usize,
    pub(crate) bytes: Bytes,
}

impl Chunk {
    /// The position right after this chunk.
    pub(crate) fn end(&self) -> Position {
        Position {
            id: self.id,
            offset: self.offset + self.bytes.len(),
        }
    }
}

/// Counters and depth, for `edge-agent status`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct SpoolStatus {
    pub(crate) fragments: usize,
    pub(crate) bytes: u64,
    pub(crate) disk_fragments: usize,
    pub(crate) disk_bytes: u64,
    pub(crate) oldest_age_secs: Option<f64>,
}

/// Fragment counters, for `edge-agent status`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct FragmentCounters {
    pub(crate) captured: u64,
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    /// Dropped because the spool was full.
    pub(crate) dropped: u64,
    /// Refused by the server (ERROR acks) and skipped.
    pub(crate) errors: u64,
}

enum Data {
    /// The fragment being captured.
    Growing(Vec<u8>),
    /// Complete, in memory.
    Complete(Bytes),
    /// Complete, only on disk.
    OnDisk,
}

struct Entry {
    id: u64,
    timecode_ms: u64,
    header: Arc<[u8]>,
    data: Data,
    len: usize,
    on_disk: bool,
    completed_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    next_id: u64,
    memory_bytes: u64,
    disk_bytes: u64,
    disk_fragments: usize,
    counters: FragmentCounters,
    bitrate_kbps: f64,
}

/// The shared queue.
pub(crate) struct Spool {
    state: Mutex<State>,
    changed: Notify,
    disk: DiskSpool,
    config: SpoolConfig,
    disk_failing: AtomicBool,
    /// Wakes the spill thread when a fragment completes in durable mode.
    spill_due: Mutex<bool>,
    spill_wake: Condvar,
}

impl Spool {
    /// Opens the spool directory and queues what an earlier run left in it (torn records are
    /// discarded).
    pub(crate) fn open(config: SpoolConfig) -> io::Result<Self> {
        let disk = DiskSpool::open(&config.dir)?;
        let mut state = State::default();
        let mut headers: Vec<Arc<[u8]>> = Vec::new();
        for found in disk.scan()? {
            // Fragments of one session share their header: keep one copy.
            let header = match headers.iter().find(|h| ***h == *found.header) {
                Some(h) => h.clone(),
                None => {
                    let h: Arc<[u8]> = found.header.into();
                    headers.push(h.clone());
                    h
                }
            };
            state.disk_bytes += found.len as u64;
            state.disk_fragments += 1;
            state.next_id = found.id + 1;
            state.entries.push_back(Entry {
                id: found.id,
                timecode_ms: found.timecode_ms,
                header,
                data: Data::OnDisk,
                len: found.len,
                on_disk: true,
                completed_at: None,
            });
        }
        if !state.entries.is_empty() {
            info!(
                fragments = state.entries.len(),
                bytes = state.disk_bytes,
                "spool holds fragments from an earlier run; they are sent first"
            );
        }
        // Ids restart above anything on disk, and never at 0 so `Position::default()` is
        // before everything.
        state.next_id = state.next_id.max(1);
        Ok(Spool {
            state: Mutex::new(state),
            changed: Notify::new(),
            disk,
            config,
            disk_failing: AtomicBool::new(false),
            spill_due: Mutex::new(false),
            spill_wake: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue half-updated in a way that
        // matters more than stopping the agent would.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new fragment (completing the previous one).
    pub(crate) fn start_fragment(&self, timecode_ms: u64, header: Arc<[u8]>, bytes: Vec<u8>) {
        let mut state = self.lock();
        if let Some(prev) = complete_last(&mut state) {
            let duration_ms = timecode_ms.saturating_sub(prev.0).max(1);
            state.bitrate_kbps = prev.1 as f64 * 8.0 / duration_ms as f64;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.memory_bytes += bytes.len() as u64;
        state.counters.captured += 1;
        state.entries.push_back(Entry {
            id,
            timecode_ms,
            header,
            len: bytes.len(),
            data: Data::Growing(bytes),
            on_disk: false,
            completed_at: None,
        });
        drop(state);
        self.changed.notify_waiters();
        self.fragment_completed();
    }

    /// Appends a frame to the fragment being captured.
    pub(crate) fn append(&self, bytes: &[u8]) {
        let mut state = self.lock();
        let Some(last) = state.entries.back_mut() else {
            return;
        };
        let Data::Growing(data) = &mut last.data else {
            return;
        };
        data.extend_from_slice(bytes);
        last.len += bytes.len();
        state.memory_bytes += bytes.len() as u64;
        drop(state);
        self.changed.notify_waiters();
    }

    /// Completes the fragment being captured (capture stopped or restarted).
    pub(crate) fn finish_fragment(&self) {
        complete_last(&mut self.lock());
        self.changed.notify_waiters();
        self.fragment_completed();
    }

    /// In durable mode a complete fragment is written at once, not at the next poll.
    fn fragment_completed(&self) {
        if self.config.mode == SpoolMode::Durable {
            *self.spill_due.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.spill_wake.notify_one();
        }
    }

    /// Blocks the spill thread until a fragment completes in durable mode, or `timeout`.
    pub(crate) fn wait_for_spill_work(&self, timeout: Duration) {
        let due = self.spill_due.lock().unwrap_or_else(|e| e.into_inner());
        let (mut due, _) = self
            .spill_wake
            .wait_timeout_while(due, timeout, |due| !*due)
            .unwrap_or_else(|e| e.into_inner());
        *due = false;
    }

    /// The next bytes after `pos`, waiting until there are some.
    pub(crate) async fn next_chunk(&self, pos: Position) -> io::Result<Chunk> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(chunk) = self.try_next_chunk(pos).await? {
                return Ok(chunk);
            }
            notified.await;
        }
    }

    /// The next bytes after `pos`, or `None` when there are none yet.
    pub(crate) async fn try_next_chunk(&self, mut pos: Position) -> io::Result<Option<Chunk>> {
        loop {
            let on_disk = {
                let state = self.lock();
                let Some(entry) = state.entries.iter().find(|e| e.id >= pos.id) else {
                    return Ok(None);
                };
                let offset = if entry.id == pos.id { pos.offset } else { 0 };
                let chunk = |bytes: Bytes| Chunk {
                    id: entry.id,
                    timecode_ms: entry.timecode_ms,
                    header: entry.header.clone(),
                    offset,
                    bytes,
                };
                match &entry.data {
                    Data::Growing(data) if offset < data.len() => {
                        return Ok(Some(chunk(Bytes::copy_from_slice(&data[offset..]))));
                    }
                    Data::Growing(_) => return Ok(None),
                    Data::Complete(data) if offset < data.len() => {
                        return Ok(Some(chunk(data.slice(offset..))));
                    }
                    Data::Complete(_) => None,
                    Data::OnDisk if offset < entry.len => Some((entry.id, offset)),
                    Data::OnDisk => None,
                }
                .map(|(id, offset)| (id, offset, entry.timecode_ms, entry.header.clone()))
                .ok_or(entry.id)
            };
            match on_disk {
                // This fragment is all sent: look at the next one.
                Err(id) => {
                    pos = Position {
                        id: id + 1,
                        offset: 0,
                    }
                }
                Ok((id, offset, timecode_ms, header)) => {
                    let disk = self.disk.clone();
                    let read = tokio::task::spawn_blocking(move || disk.read(id))
                        .await
                        .map_err(io::Error::other)?;
                    match read {
                        Ok(record) if offset <= record.data.len() => {
                            let bytes = Bytes::from(record.data).slice(offset..);
                            return Ok(Some(Chunk {
                                id,
                                timecode_ms,
                                header,
                                offset,
                                bytes,
                            }));
                        }
                        Ok(_) | Err(_) if !self.contains(id) => {
                            // Acknowledged or dropped while we were reading.
                            pos = Position {
                                id: id + 1,
                                offset: 0,
                            };
                        }
                        Ok(_) => {
                            warn!(id, "spool record shorter than queued; skipping it");
                            self.remove(id, Removal::Error);
                        }
                        Err(e) => {
                            warn!(id, error = %e, "cannot read a spooled fragment; skipping it");
                            self.remove(id, Removal::Error);
                        }
                    }
                }
            }
        }
    }

    fn contains(&self, id: u64) -> bool {
        self.lock().entries.iter().any(|e| e.id == id)
    }

    /// Position of the first queued byte (where a new session starts).
    pub(crate) fn first_position(&self) -> Position {
        let state = self.lock();
        Position {
            id: state.entries.front().map_or(0, |e| e.id),
            offset: 0,
        }
    }

    /// The server persisted the fragment with this timecode: forget it. Returns whether it was
    /// queued.
    pub(crate) fn persisted(&self, timecode_ms: u64) -> bool {
        let id = self.id_of(timecode_ms);
        id.is_some_and(|id| self.remove(id, Removal::Persisted))
    }

    /// The server refused the fragment with this timecode for good: skip it.
    pub(crate) fn refused(&self, timecode_ms: u64) -> bool {
        let id = self.id_of(timecode_ms);
        id.is_some_and(|id| self.remove(id, Removal::Error))
    }

    fn id_of(&self, timecode_ms: u64) -> Option<u64> {
        let state = self.lock();
        state
            .entries
            .iter()
            .find(|e| e.timecode_ms == timecode_ms && !matches!(e.data, Data::Growing(_)))
            .or_else(|| state.entries.iter().find(|e| e.timecode_ms == timecode_ms))
            .map(|e| e.id)
    }

    /// Counts a fragment the uplink started sending in a session (re-sends count again).
    pub(crate) fn count_sent(&self) {
        self.lock().counters.sent += 1;
    }

    fn remove(&self, id: u64, why: Removal) -> bool {
        let mut state = self.lock();
        let Some(index) = state.entries.iter().position(|e| e.id == id) else {
            return false;
        };
        let Some(entry) = state.entries.remove(index) else {
            return false;
        };
        forget(&mut state, &entry);
        match why {
            Removal::Persisted => state.counters.acked += 1,
            Removal::Error => state.counters.errors += 1,
            Removal::Full => state.counters.dropped += 1,
        }
        drop(state);
        if entry.on_disk {
            self.disk.remove(id);
        }
        self.changed.notify_waiters();
        true
    }

    /// Writes due fragments to disk and enforces the bounds. Blocking: run it on its own
    /// thread. `all` spills every complete fragment (at shutdown).
    pub(crate) fn spill(&self, all: bool) {
        while let Some((id, timecode_ms, header, data)) = self.next_to_spill(all) {
            match self.disk.write(id, timecode_ms, &header, &data) {
                Ok(_) => {
                    if self.disk_failing.swap(false, Ordering::Relaxed) {
                        info!("writing to the spool works again");
                    }
                    let mut state = self.lock();
                    if let Some(entry) = state.entries.iter_mut().find(|e| e.id == id) {
                        entry.on_disk = true;
                        entry.data = Data::OnDisk;
                        let len = entry.len as u64;
                        state.memory_bytes -= len;
                        state.disk_bytes += len;
                        state.disk_fragments += 1;
                    } else {
                        // Persisted while it was being written.
                        drop(state);
                        self.disk.remove(id);
                    }
                }
                Err(e) => {
                    if !self.disk_failing.swap(true, Ordering::Relaxed) {
                        warn!(dir = %self.config.dir.display(), error = %e,
                            "cannot write to the spool: unacknowledged video is kept in memory only, up to the memory bound");
                    }
                    break;
                }
            }
            self.enforce_disk_bound();
        }
        self.enforce_memory_bound();
    }

    fn next_to_spill(&self, all: bool) -> Option<(u64, u64, Arc<[u8]>, Bytes)> {
        let state = self.lock();
        let now = Instant::now();
        let over_memory = state.memory_bytes > self.config.memory_max_bytes;
        state.entries.iter().find_map(|e| {
            let Data::Complete(data) = &e.data else {
                return None;
            };
            let due = all
                || over_memory
                || self.config.mode == SpoolMode::Durable
                || e.completed_at
                    .is_some_and(|t| now.duration_since(t) >= self.config.spill_after);
            due.then(|| (e.id, e.timecode_ms, e.header.clone(), data.clone()))
        })
    }

    fn enforce_disk_bound(&self) {
        loop {
            let victim = {
                let state = self.lock();
                if state.disk_bytes <= self.config.max_bytes {
                    return;
                }
                state.entries.iter().find(|e| e.on_disk).map(|e| e.id)
            };
            let Some(id) = victim else { return };
            if self.remove(id, Removal::Full) {
                let dropped = self.lock().counters.dropped;
                warn!(
                    id,
                    dropped_total = dropped,
                    max_bytes = self.config.max_bytes,
                    "spool full: dropped the oldest fragment"
                );
            }
        }
    }

    /// Only reached when the disk cannot take fragments: then memory is the last buffer.
    fn enforce_memory_bound(&self) {
        loop {
            let victim = {
                let state = self.lock();
                if state.memory_bytes <= self.config.memory_max_bytes {
                    return;
                }
                state
                    .entries
                    .iter()
                    .find(|e| matches!(e.data, Data::Complete(_)))
                    .map(|e| e.id)
            };
            let Some(id) = victim else { return };
            if self.remove(id, Removal::Full) {
                warn!(
                    id,
                    "memory bound reached and the spool cannot be written: dropped the oldest fragment"
                );
            }
        }
    }

    /// Depth and counters.
    pub(crate) fn status(&self) -> (SpoolStatus, FragmentCounters, f64) {
        let state = self.lock();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let status = SpoolStatus {
            fragments: state.entries.len(),
            bytes: state.entries.iter().map(|e| e.len as u64).sum(),
            disk_fragments: state.disk_fragments,
            disk_bytes: state.disk_bytes,
            oldest_age_secs: state
                .entries
                .front()
                .map(|e| now_ms.saturating_sub(e.timecode_ms) as f64 / 1000.0),
        };
        (status, state.counters.clone(), state.bitrate_kbps)
    }
}

#[derive(Clone, Copy)]
enum Removal {
    Persisted,
    Error,
    Full,
}

/// Marks the growing fragment complete; returns its (timecode, length).
fn complete_last(state: &mut State) -> Option<(u64, usize)> {
    let last = state.entries.back_mut()?;
    if let Data::Growing(data) = &mut last.data {
        last.data = Data::Complete(Bytes::from(std::mem::take(data)));
        last.completed_at = Some(Instant::now());
        return Some((last.timecode_ms, last.len));
    }
    None
}

fn forget(state: &mut State, entry: &Entry) {
    let len = entry.len as u64;
    match entry.data {
        Data::Growing(_) | Data::Complete(_) => state.memory_bytes -= len,
        Data::OnDisk => {}
    }
    if entry.on_disk {
        state.disk_bytes -= len;
        state.disk_fragments -= 1;
    }
}

#[cfg(test)]
mod tests;
