//! One shard's log: its state, the append API (queued for group commit), the commit
//! round that a pool thread runs, segment rolling and retention. Reads are in `read`.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{oneshot, watch};
use tracing::error;

use crate::commit::{self, CommitPool, Failure, Queue, Request, lock};
use crate::index::{self, IndexEntry, Summary};
use crate::record::{self, MAX_DATA_BYTES, MAX_KEY_LEN};
use crate::recovery::{self, Recovered};
use crate::segment::{self, LOCK_FILE, Segment, SegmentFile};
use crate::{Appended, NewRecord, io_error, sync_dir};

mod read;

/// The durable log of one shard. Obtained from [`crate::LogStore::shard`].
pub struct ShardLog {
    /// Lets `&self` methods hand the shard to the commit pool.
    me: Weak<ShardLog>,
    id: String,
    dir: PathBuf,
    segment_bytes: u64,
    pool: Arc<CommitPool>,
    store_syncs: Arc<AtomicU64>,
    syncs: AtomicU64,
    /// Appends waiting for the next commit round.
    queue: Mutex<Queue>,
    /// Held by the commit round for the whole write + sync.
    writer: Mutex<Writer>,
    /// What readers may see: durable records only.
    view: RwLock<View>,
    durable: watch::Sender<u64>,
    removed: AtomicBool,
    /// Where the last read stopped: readers tailing the log resume there exactly
    /// instead of re-reading from the previous index entry.
    resume: Mutex<Option<Resume>>,
    /// Exclusive lock on the directory's `LOCK` file while this handle may write;
    /// released on failure or removal so the shard can be reopened.
    dir_lock: Mutex<Option<File>>,
}

struct Writer {
    active: Arc<SegmentFile>,
    /// Bytes in the active segment (all durable between rounds).
    len: u64,
    next: u64,
    last_arrival: Option<i64>,
    last_entry: Option<IndexEntry>,
    failed: Option<Failure>,
}

struct View {
    /// Oldest first; the last one is the active segment. Never empty.
    segments: Vec<Segment>,
    next: u64,
    last_arrival: Option<i64>,
}

#[derive(Clone, Copy)]
struct Resume {
    base: u64,
    sequence: u64,
    offset: u64,
}

fn read_view<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_view<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ShardLog {
    pub(crate) fn open(
        id: String,
        dir: PathBuf,
        segment_bytes: u64,
        pool: Arc<CommitPool>,
        store_syncs: Arc<AtomicU64>,
    ) -> io::Result<Arc<ShardLog>> {
        let dir_lock = lock_dir(&dir)?;
        let Recovered { segments } = recovery::recover(&dir)?;
        let Some(active) = segments.last() else {
            return Err(io::Error::other(format!(
                "{}: recovery found no active segment",
                dir.display()
            )));
        };
        let next = active.summary.end;
        let last_arrival = segments.iter().rev().find_map(|s| s.summary.last_arrival);
        let writer = Writer {
            active: Arc::clone(&active.file),
            len: active.summary.len,
            next,
            last_arrival,
            last_entry: active.summary.index.last().copied(),
            failed: None,
        };
        Ok(Arc::new_cyclic(|me| ShardLog {
            me: me.clone(),
            id,
            dir,
            segment_bytes,
            pool,
            store_syncs,
            syncs: AtomicU64::new(0),
            queue: Mutex::new(Queue::default()),
            writer: Mutex::new(writer),
            view: RwLock::new(View {
                segments,
                next,
                last_arrival,
            }),
            durable: watch::channel(next).0,
            removed: AtomicBool::new(false),
            resume: Mutex::new(None),
            dir_lock: Mutex::new(Some(dir_lock)),
        }))
    }

    /// The id this log was opened with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Appends the records in order, contiguous. Resolves only after they are durable
    /// (written and fdatasync'ed; the directory fsync'ed when a segment file is created).
    ///
    /// Sequences are assigned here: a per-shard counter, strictly increasing by 1,
    /// starting at 0 for a new shard, never reused after restart. `arrival_ms` is the
    /// wall clock at commit, but never less than the previous record's.
    ///
    /// Dropping the future does not withdraw the records: they may still be committed.
    pub async fn append(&self, records: Vec<NewRecord>) -> io::Result<Vec<Appended>> {
        let mut frame_bytes = 0;
        for r in &records {
            if r.partition_key.len() > MAX_KEY_LEN {
                return Err(invalid(format!(
                    "partition key of {} bytes exceeds the limit of {MAX_KEY_LEN}",
                    r.partition_key.len()
                )));
            }
            if r.data.len() > MAX_DATA_BYTES {
                return Err(invalid(format!(
                    "record data of {} bytes exceeds the limit of {MAX_DATA_BYTES}",
                    r.data.len()
                )));
            }
            frame_bytes += record::frame_len(r.partition_key.len(), r.data.len());
        }
        let (done, answer) = oneshot::channel();
        let schedule = {
            let mut queue = lock(&self.queue);
            if let Some(failure) = queue.failure() {
                return Err(failure.error());
            }
            if records.is_empty() {
                return Ok(Vec::new());
            }
            queue.push(Request {
                records,
                frame_bytes,
                done,
            })
        };
        if schedule {
            let Some(me) = self.me.upgrade() else {
                return Err(io::Error::other(format!(
                    "shard log {} is closing",
                    self.id
                )));
            };
            self.pool.schedule(me);
        }
        answer.await.unwrap_or_else(|_| {
            Err(io::Error::other(format!(
                "shard log {}: the commit thread stopped before answering",
                self.id
            )))
        })
    }

    /// One group-commit round, run on a pool thread: commits everything queued (up to
    /// the batch limit). Returns whether more appends are waiting.
    pub(crate) fn commit_round(&self, buf: &mut Vec<u8>) -> bool {
        let batch = lock(&self.queue).take_batch();
        if !batch.is_empty() {
            let mut writer = lock(&self.writer);
            match self.write_batch(&mut writer, &batch, buf) {
                Ok(acks) => {
                    // Roll before acknowledging: once an append resolves, nothing touches
                    // the shard's files on its behalf any more. The records are durable
                    // either way, so a failed roll only fails later appends.
                    if writer.len >= self.segment_bytes
                        && let Err(e) = self.roll(&mut writer)
                    {
                        self.fail(&mut writer, e);
                    }
                    drop(writer);
                    for (request, appended) in batch.into_iter().zip(acks) {
                        let _ = request.done.send(Ok(appended));
                    }
                }
                Err(failure) => commit::reject(batch, &failure),
            }
        }
        lock(&self.queue).finish_round()
    }

    /// Writes a batch with one positioned write, syncs it, then publishes it to readers.
    fn write_batch(
        &self,
        w: &mut Writer,
        batch: &[Request],
        buf: &mut Vec<u8>,
    ) -> Result<Vec<Vec<Appended>>, Failure> {
        if let Some(failure) = &w.failed {
            return Err(failure.clone());
        }
        if w.len > 0 && w.len >= self.segment_bytes {
            self.roll(w).map_err(|e| self.fail(w, e))?;
        }
        let arrival_ms = now_ms().max(w.last_arrival.unwrap_or(i64::MIN));
        let start = w.len;
        let mut sequence = w.next;
        let mut last_entry = w.last_entry;
        let mut entries = Vec::new();
        let mut acks = Vec::with_capacity(batch.len());
        buf.clear();
        for request in batch {
            let mut appended = Vec::with_capacity(request.records.len());
            for r in &request.records {
                let offset = start + buf.len() as u64;
                if index::next_due(last_entry.as_ref(), offset) {
                    let entry = IndexEntry {
                        sequence,
                        offset,
                        arrival_ms,
                    };
                    entries.push(entry);
                    last_entry = Some(entry);
                }
                record::encode(
                    buf,
                    sequence,
                    arrival_ms,
                    r.partition_key.as_bytes(),
                    &r.data,
                );
                appended.push(Appended {
                    sequence,
                    arrival_ms,
                });
                sequence += 1;
            }
            acks.push(appended);
        }

        let active = Arc::clone(&w.active);
        let file = active.file().map_err(|e| self.fail(w, e))?;
        file.write_all_at(buf, start)
            .map_err(|e| self.fail(w, io_error(&active.path, "write", e)))?;
        file.sync_data()
            .map_err(|e| self.fail(w, io_error(&active.path, "fdatasync", e)))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.store_syncs.fetch_add(1, Ordering::Relaxed);

        let len = start + buf.len() as u64;
        w.len = len;
        w.next = sequence;
        w.last_arrival = Some(arrival_ms);
        w.last_entry = last_entry;
        {
            let mut view = write_view(&self.view);
            if let Some(seg) = view.segments.last_mut() {
                seg.summary.end = sequence;
                seg.summary.len = len;
                seg.summary.last_arrival = Some(arrival_ms);
                seg.summary.index.extend(entries);
            }
            view.next = sequence;
            view.last_arrival = Some(arrival_ms);
        }
        self.durable.send_replace(sequence);
        Ok(acks)
    }

    /// Seals the active segment (persisting its index) and starts a new one named after
    /// the next sequence. The directory is synced before anything goes into the file.
    fn roll(&self, w: &mut Writer) -> io::Result<()> {
        let sealed = {
            let mut view = write_view(&self.view);
            view.segments.last_mut().map(|seg| {
                seg.summary.index.shrink();
                (seg.summary.base, seg.summary.encode())
            })
        };
        if let Some((base, idx)) = sealed {
            recovery::write_index(&self.dir.join(segment::idx_name(base)), &idx);
        }
        let base = w.next;
        let path = self.dir.join(segment::log_name(base));
        let file = segment::open_rw(&path, true)?;
        sync_dir(&self.dir)?;
        let active = Arc::new(SegmentFile::with_file(base, path, file));
        w.active = Arc::clone(&active);
        w.len = 0;
        w.last_entry = None;
        write_view(&self.view).segments.push(Segment {
            file: active,
            summary: Summary::empty(base),
        });
        Ok(())
    }

    /// Makes the shard refuse appends from now on and fails those waiting.
    fn fail(&self, w: &mut Writer, e: io::Error) -> Failure {
        error!(shard = %self.id, error = %e, "shard log write failed; refusing appends until reopened");
        let failure = Failure::new(
            e.kind(),
            format!(
                "{e} (shard log {} refuses appends until it is reopened)",
                self.id
            ),
        );
        w.failed = Some(failure.clone());
        lock(&self.dir_lock).take();
        let waiting = lock(&self.queue).fail(failure.clone());
        commit::reject(waiting, &failure);
        failure
    }

    /// Called by [`crate::LogStore::remove`] before the files go: waits for a commit in
    /// flight, then refuses everything.
    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::SeqCst);
        let mut w = lock(&self.writer);
        let failure = Failure::new(
            io::ErrorKind::NotFound,
            format!("shard log {} was removed", self.id),
        );
        w.failed = Some(failure.clone());
        lock(&self.dir_lock).take();
        let waiting = lock(&self.queue).fail(failure.clone());
        commit::reject(waiting, &failure);
    }

    /// Whether a write failed, so that the store opens the shard afresh.
    pub(crate) fn is_failed(&self) -> bool {
        lock(&self.queue).failure().is_some()
    }

    fn check_open(&self) -> io::Result<()> {
        if self.removed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("shard log {} was removed", self.id),
            ));
        }
        Ok(())
    }

    /// The sequence the next appended record will get (= durable end).
    pub fn next_sequence(&self) -> u64 {
        read_view(&self.view).next
    }

    /// Oldest sequence still stored (after trimming).
    pub fn first_sequence(&self) -> u64 {
        let view = read_view(&self.view);
        view.segments.first().map_or(view.next, |s| s.summary.base)
    }

    /// Arrival ms of the newest durable record, if any.
    pub fn last_arrival_ms(&self) -> Option<i64> {
        read_view(&self.view).last_arrival
    }

    /// Wakes when the durable end moves; the value is [`ShardLog::next_sequence`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Number of fdatasyncs that committed appends to this shard since it was opened.
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Retention: deletes whole sealed segments whose newest record arrived before `ms`,
    /// oldest first. An active segment whose every record arrived before `ms` is sealed
    /// first, so an idle shard does not keep expired records on disk. Returns the bytes
    /// freed.
    pub fn trim_before(&self, ms: i64) -> io::Result<u64> {
        self.check_open()?;
        {
            let mut w = lock(&self.writer);
            // Arrivals only grow, so the shard's newest record is the active segment's.
            if w.failed.is_none()
                && w.len > 0
                && w.last_arrival.is_some_and(|a| a < ms)
                && let Err(e) = self.roll(&mut w)
            {
                let (kind, message) = (e.kind(), e.to_string());
                self.fail(&mut w, e);
                return Err(io::Error::new(kind, message));
            }
        }
        let doomed: Vec<Segment> = {
            let mut view = write_view(&self.view);
            let sealed = view.segments.len().saturating_sub(1);
            let keep = view.segments[..sealed]
                .iter()
                .position(|s| s.summary.last_arrival.is_some_and(|a| a >= ms))
                .unwrap_or(sealed);
            view.segments.drain(..keep).collect()
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut freed = 0;
        for seg in &doomed {
            let idx = self.dir.join(segment::idx_name(seg.summary.base));
            for path in [seg.file.path.as_path(), idx.as_path()] {
                freed += remove_file(path)?;
            }
        }
        sync_dir(&self.dir)?;
        Ok(freed)
    }
}

/// How long opening a shard waits for another handle to let go of it: a handle of a
/// dropped store may still be finishing a commit round for a cancelled append.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Takes the shard directory's lock, so that two handles (two stores, or two
/// processes) never write the same log.
fn lock_dir(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, "open", e))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "lock {}: the shard log is open in another LogStore or process",
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&path, "lock", e)),
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Deletes a file, returning its size; a file already gone frees nothing.
fn remove_file(path: &Path) -> io::Result<u64> {
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(path, "stat", e)),
    };
    match std::fs::remove_file(path) {
        Ok(()) => Ok(size),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_error(path, "delete", e)),
    }
}

impl fmt::Debug for ShardLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardLog")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .field("next_sequence", &self.next_sequence())
            .finish_non_exhaustive()
    }
}
