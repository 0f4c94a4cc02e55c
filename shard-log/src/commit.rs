//! Group commit. Appends wait in a per-shard queue; a pool thread takes everything
//! queued for a shard, writes it with one positioned write and covers it with one
//! fdatasync, while newer appends queue up behind for the next round. Blocking file
//! I/O therefore never runs on tokio workers, and shards being synced on different
//! pool threads overlap.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::error;

use crate::shard::ShardLog;
use crate::{Appended, NewRecord};

/// Upper bound on one batch: bounds the write buffer, not the latency of small appends
/// (a single larger append still goes in whole).
const MAX_BATCH_BYTES: usize = 16 << 20;

/// Enough threads for fsyncs of several shards to overlap, few enough to stay cheap.
const MAX_WORKERS: usize = 16;

/// Idle pool threads exit after this, so an idle server holds no committer threads.
const IDLE_EXIT: Duration = Duration::from_secs(2);

/// A write buffer larger than this is not kept while a worker waits for work.
const KEEP_BUFFER: usize = 1 << 20;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind, never a half-written file
    // state that later code would trust (that is tracked by `Failure`).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One `append` call waiting to be committed.
pub(crate) struct Request {
    pub(crate) records: Vec<NewRecord>,
    pub(crate) frame_bytes: usize,
    pub(crate) done: oneshot::Sender<io::Result<Vec<Appended>>>,
}

/// Why a shard refuses appends: a failed write or sync, or its removal.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    kind: io::ErrorKind,
    message: Arc<str>,
}

impl Failure {
    pub(crate) fn new(kind: io::ErrorKind, message: String) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn error(&self) -> io::Error {
        io::Error::new(self.kind, self.message.to_string())
    }
}

/// Appends waiting for a shard's next commit.
#[derive(Default)]
pub(crate) struct Queue {
    pending: VecDeque<Request>,
    /// The shard is in the pool's queue or being committed: exactly one thread at a
    /// time writes a shard, which keeps its records in order.
    scheduled: bool,
    failed: Option<Failure>,
}

impl Queue {
    /// Queues a request (the caller has checked [`Queue::failure`]); `true` means the
    /// caller must hand the shard to the pool.
    pub(crate) fn push(&mut self, request: Request) -> bool {
        self.pending.push_back(request);
        !std::mem::replace(&mut self.scheduled, true)
    }

    pub(crate) fn failure(&self) -> Option<&Failure> {
        self.failed.as_ref()
    }

    /// Whole requests in arrival order, up to [`MAX_BATCH_BYTES`] (at least one).
    pub(crate) fn take_batch(&mut self) -> Vec<Request> {
        let mut bytes = 0;
        let mut batch = Vec::new();
        while let Some(next) = self.pending.front() {
            if !batch.is_empty() && bytes + next.frame_bytes > MAX_BATCH_BYTES {
                break;
            }
            bytes += next.frame_bytes;
            batch.extend(self.pending.pop_front());
        }
        batch
    }

    /// After a commit round: whether the shard goes back into the pool's queue.
    pub(crate) fn finish_round(&mut self) -> bool {
        let again = self.failed.is_none() && !self.pending.is_empty();
        self.scheduled = again;
        again
    }

    /// Makes the failure sticky and hands back the requests to fail with it.
    pub(crate) fn fail(&mut self, failure: Failure) -> Vec<Request> {
        self.failed.get_or_insert(failure);
        self.pending.drain(..).collect()
    }
}

/// Resolves every request with the failure.
pub(crate) fn reject(requests: Vec<Request>, failure: &Failure) {
    for r in requests {
        let _ = r.done.send(Err(failure.error()));
    }
}

/// Threads that run commit rounds for shards with queued appends. Grows on demand up
/// to [`MAX_WORKERS`]; idle threads exit.
#[derive(Default)]
pub(crate) struct CommitPool {
    state: Mutex<PoolState>,
    wake: Condvar,
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Arc<ShardLog>>,
    workers: usize,
    idle: usize,
}

impl CommitPool {
    /// Queues a shard that has appends waiting (and is not queued already).
    pub(crate) fn schedule(self: &Arc<Self>, shard: Arc<ShardLog>) {
        let mut state = lock(&self.state);
        state.ready.push_back(shard);
        if state.ready.len() > state.idle && state.workers < MAX_WORKERS {
            let pool = Arc::clone(self);
            let spawned = thread::Builder::new()
                .name("shard-log-commit".into())
                .spawn(move || pool.work());
            match spawned {
                Ok(_) => state.workers += 1,
                Err(e) if state.workers == 0 => {
                    // Nobody else would ever run these commits: do it here, blocking.
                    error!(error = %e, "cannot start a commit thread; committing inline");
                    drop(state);
                    self.run_inline();
                    return;
                }
                Err(e) => error!(error = %e, "cannot start another commit thread"),
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    fn work(self: Arc<Self>) {
        let mut buf = Vec::new();
        loop {
            let shard = {
                let mut state = lock(&self.state);
                loop {
                    if let Some(shard) = state.ready.pop_front() {
                        break shard;
                    }
                    if buf.capacity() > KEEP_BUFFER {
                        buf = Vec::new();
                    }
                    state.idle += 1;
                    let (guard, wait) = self
                        .wake
                        .wait_timeout(state, IDLE_EXIT)
                        .unwrap_or_else(PoisonError::into_inner);
                    state = guard;
                    state.idle -= 1;
                    if wait.timed_out() && state.ready.is_empty() {
                        state.workers -= 1;
                        return;
                    }
                }
            };
            if shard.commit_round(&mut buf) {
                lock(&self.state).ready.push_back(shard);
            }
        }
    }

    fn run_inline(&self) {
        let mut buf = Vec::new();
        while let Some(shard) = lock(&self.state).ready.pop_front() {
            while shard.commit_round(&mut buf) {}
        }
    }
}
