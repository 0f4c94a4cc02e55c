//! `edge-agent tail`: follows log files (like `tail -F`) into a Kinesis data stream, one
//! record per line, with PutRecords batches.
//!
//! One loop reads new lines from every file into a queue, sends the front of the queue when a
//! batch is full or its oldest line has waited the flush interval, puts refused records back
//! in front (so they go before newer lines), and after each answer moves every file's
//! checkpoint over the lines acknowledged so far. The files are the buffer: while the server
//! is unreachable the loop stops reading and nothing is lost. Delivery is at least once: a
//! crash between an answer and the checkpoint write sends that batch again.

mod batch;
mod checkpoint;
pub(crate) mod config;
mod follow;
mod kinesis;

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::control::{self, Handler};
use crate::uplink::Backoff;
use crate::uplink::client::{Client, Endpoint};
use crate::{EXIT_CONFIG, EXIT_FATAL};
use batch::{Acks, MAX_BATCH_BYTES, MAX_RECORD_BYTES, Queue, Record};
use checkpoint::Store;
use config::{KeyFrom, PartitionKey, TailArgs, TailConfig};
use follow::{Follower, Position, Start};
use kinesis::Kinesis;

/// How often files are checked for new lines, rotation and truncation.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Bytes read from one file per round (files take turns).
const READ_BUDGET: usize = 1 << 20;
/// Reading stops while this much waits to be sent (the rest stays in the files).
const QUEUE_MAX_BYTES: usize = 2 * MAX_BATCH_BYTES;
/// Per-file progress is logged this often.
const STATS_EVERY: Duration = Duration::from_secs(30);
/// A clean stop still tries to send what was read for this long.
const FINAL_FLUSH: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Length of the keys of `--partition-key-from line`.
const LINE_KEY_LEN: usize = 16;

pub(crate) fn run(args: TailArgs) -> ExitCode {
    let config = match TailConfig::resolve(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("edge-agent tail: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let endpoint = match Endpoint::parse(&config.endpoint) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("edge-agent tail: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    crate::run::init_logging(config.log_format);
    match start(config, endpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("edge-agent tail: {e}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// One followed file.
struct Tailed {
    follower: Follower,
    /// The partition key of its records (`None`: one per line).
    key: Option<String>,
    acks: Acks,
    /// Position of the last saved checkpoint.
    saved: Option<Position>,
    /// Checkpoint to write (acknowledged but not saved yet, e.g. after a write error).
    unsaved: Option<Position>,
    lines_read: u64,
    records_acked: u64,
    read_failing: bool,
}

impl Tailed {
    fn new(path: &Path, config: &TailConfig, store: &Store, host: &str) -> Result<Self, String> {
        let key = match &config.partition_key {
            PartitionKey::Fixed(key) => Some(key.clone()),
            PartitionKey::From(KeyFrom::Host) => Some(host.to_owned()),
            PartitionKey::From(KeyFrom::File) => Some(path_key(path)),
            PartitionKey::From(KeyFrom::Line) => None,
        };
        let max_piece = MAX_RECORD_BYTES - key.as_ref().map_or(LINE_KEY_LEN, String::len);
        let saved = store.load(path)?.map(|c| c.position);
        let start = match saved {
            Some(position) => Start::At(position),
            None if config.from_start => Start::Beginning,
            None => Start::End,
        };
        let follower = Follower::new(path.to_owned(), start, max_piece)
            .map_err(|e| format!("cannot follow {}: {e}", path.display()))?;
        Ok(Tailed {
            follower,
            key,
            acks: Acks::default(),
            saved,
            unsaved: None,
            lines_read: 0,
            records_acked: 0,
            read_failing: false,
        })
    }

    fn log_progress(&self) {
        info!(
            path = %self.follower.path().display(),
            lines_read = self.lines_read,
            records_acked = self.records_acked,
            unacknowledged = self.acks.pending(),
            checkpoint = self.saved.map(|p| p.offset),
            "tail progress"
        );
    }
}

fn start(config: TailConfig, endpoint: Endpoint) -> Result<(), String> {
    let client = Client::from_environment(config.ca.as_deref(), config.region.as_deref())
        .map_err(|e| e.to_string())?;
    let store = Store::open(&config.state_dir)?;
    let host = hostname();
    let files = config
        .files
        .iter()
        .map(|path| Tailed::new(path, &config, &store, &host))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(async {
        let mut stop = Stop::new()?;
        let status = Arc::new(Mutex::new(serde_json::Value::Null));
        let snapshot = status.clone();
        let handler = Handler {
            metadata: None,
            status: Box::new(move || snapshot.lock().map(|s| s.clone()).unwrap_or_default()),
        };
        control::serve(&config.state_dir, handler)
            .map_err(|e| format!("control socket in {}: {e}", config.state_dir.display()))?;
        Tailer {
            config: &config,
            kinesis: Kinesis::new(client, endpoint),
            store,
            files,
            queue: Queue::default(),
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            not_before: Instant::now(),
            state: State::Connecting,
            last_error: None,
            status,
        }
        .run(&mut stop)
        .await
    });
    let _ = std::fs::remove_file(config.state_dir.join(control::SOCKET_NAME));
    result
}

struct Tailer<'a> {
    config: &'a TailConfig,
    kinesis: Kinesis,
    store: Store,
    files: Vec<Tailed>,
    queue: Queue,
    backoff: Backoff,
    /// No PutRecords before this (backoff after a failure).
    not_before: Instant,
    state: State,
    last_error: Option<String>,
    /// What `edge-agent status --state-dir` shows.
    status: Arc<Mutex<serde_json::Value>>,
}

impl Tailer<'_> {
    async fn run(mut self, stop: &mut Stop) -> Result<(), String> {
        let config = self.config;
        // A file seen for the first time is checkpointed where it was opened (its end): a
        // restart before anything is acknowledged must not skip what was written meanwhile.
        self.checkpoint();
        loop {
            let prepared = tokio::select! {
                r = self.kinesis.prepare(&config.stream, config.create_stream, config.shard_count) => r,
                _ = stop.wait() => return Ok(()),
            };
            match prepared {
                Ok(()) => break,
                Err(e) if kinesis::is_fatal(&e) => return Err(e.to_string()),
                Err(e) => {
                    let delay = self.backoff.next();
                    warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "stream not reachable yet; lines wait in their files");
                    self.set_state(State::Backoff, Some(e.to_string()));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait() => return Ok(()),
                    }
                }
            }
        }
        self.backoff.reset();
        self.set_state(State::Running, None);
        info!(stream = %config.stream, files = self.files.len(), state_dir = %config.state_dir.display(), "edge-agent tail running");
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            let read_more = self.read_files();
            self.publish();
            let now = Instant::now();
            if now >= next_stats {
                self.files.iter().for_each(Tailed::log_progress);
                next_stats = now + STATS_EVERY;
            }
            if self.send_due(now) {
                let batch = self.queue.take_batch();
                let result = tokio::select! {
                    r = self.kinesis.put_records(&config.stream, &batch) => Some(r),
                    _ = stop.wait() => None,
                };
                let Some(result) = result else {
                    // Not acknowledged: read again from the checkpoint at the next start.
                    self.finish();
                    return Ok(());
                };
                self.handle(batch, result)?;
                continue;
            }
            if read_more {
                tokio::task::yield_now().await;
                continue;
            }
            let mut wake = now + POLL_EVERY;
            if let Some(oldest) = self.queue.oldest() {
                let flush_at =
                    (Instant::from_std(oldest) + config.flush_interval).max(self.not_before);
                wake = wake.min(flush_at);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.wait() => break,
            }
        }
        // A clean stop: send what was read (briefly), then save the checkpoints.
        let deadline = Instant::now() + FINAL_FLUSH;
        while !self.queue.is_empty()
            && Instant::now() < deadline
            && Instant::now() >= self.not_before
        {
            let batch = self.queue.take_batch();
            let Ok(result) =
                tokio::time::timeout_at(deadline, self.kinesis.put_records(&config.stream, &batch))
                    .await
            else {
                break;
            };
            self.handle(batch, result)?;
        }
        self.finish();
        Ok(())
    }

    /// Reads new lines while the queue has room; true when a file may have more at once.
    fn read_files(&mut self) -> bool {
        let mut more = false;
        let mut new_checkpoint = false;
        for (index, file) in self.files.iter_mut().enumerate() {
            if self.queue.bytes() >= QUEUE_MAX_BYTES {
                more = false;
                break;
            }
            let polled = match file.follower.poll(READ_BUDGET) {
                Ok(polled) => {
                    file.read_failing = false;
                    polled
                }
                Err(e) => {
                    // Once per failure, not every poll.
                    if !file.read_failing {
                        warn!(path = %file.follower.path().display(), error = %e, "cannot read file; trying again");
                        file.read_failing = true;
                    }
                    continue;
                }
            };
            more |= polled.read > 0;
            if file.saved.is_none()
                && file.unsaved.is_none()
                && file.follower.first_open().is_some()
            {
                new_checkpoint = true;
            }
            let now = std::time::Instant::now();
            for line in polled.lines {
                if line.end.is_some() {
                    file.lines_read += 1;
                }
                let n = file.acks.push(line.end);
                let key = file.key.clone().unwrap_or_else(|| line_key(&line.data, n));
                self.queue.push(Record {
                    file: index,
                    n,
                    key,
                    data: line.data,
                    queued_at: now,
                });
            }
        }
        if new_checkpoint {
            self.checkpoint();
        }
        more
    }

    fn send_due(&self, now: Instant) -> bool {
        let Some(oldest) = self.queue.oldest() else {
            return false;
        };
        now >= self.not_before
            && (self.queue.batch_full()
                || now >= Instant::from_std(oldest) + self.config.flush_interval)
    }

    /// Applies a PutRecords outcome: acknowledges, requeues, backs off, checkpoints.
    fn handle(
        &mut self,
        batch: Vec<Record>,
        result: Result<Vec<Option<String>>, crate::uplink::error::UplinkError>,
    ) -> Result<(), String> {
        match result {
            Ok(outcome) => {
                let mut refused = Vec::new();
                let mut codes = std::collections::BTreeMap::<String, usize>::new();
                for (record, error) in batch.into_iter().zip(outcome) {
                    match error {
                        None => {
                            let file = &mut self.files[record.file];
                            file.acks.ack(record.n);
                            file.records_acked += 1;
                        }
                        Some(code) => {
                            *codes.entry(code).or_default() += 1;
                            refused.push(record);
                        }
                    }
                }
                if refused.is_empty() {
                    self.backoff.reset();
                    self.set_state(State::Running, None);
                } else {
                    let delay = self.backoff.next();
                    warn!(
                        refused = refused.len(),
                        ?codes,
                        retry_in_ms = delay.as_millis() as u64,
                        "PutRecords refused some records; retrying them before newer lines"
                    );
                    self.queue.requeue_front(refused);
                    self.not_before = Instant::now() + delay;
                }
                self.checkpoint();
                Ok(())
            }
            Err(e) if kinesis::is_fatal(&e) => Err(e.to_string()),
            Err(e) => {
                let delay = self.backoff.next();
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "PutRecords failed; lines wait in their files");
                self.set_state(State::Backoff, Some(e.to_string()));
                self.queue.requeue_front(batch);
                self.not_before = Instant::now() + delay;
                Ok(())
            }
        }
    }

    /// Saves the checkpoint of every file whose acknowledged prefix moved (or that has none
    /// yet: where it was first opened).
    fn checkpoint(&mut self) {
        for file in &mut self.files {
            if let Some(end) = file.acks.advance() {
                file.unsaved = Some(end);
            } else if file.saved.is_none() && file.unsaved.is_none() {
                file.unsaved = file.follower.first_open();
            }
            let Some(end) = file.unsaved else { continue };
            match self.store.save(file.follower.path(), end) {
                Ok(()) => {
                    file.saved = Some(end);
                    file.unsaved = None;
                }
                Err(e) => {
                    warn!(path = %file.follower.path().display(), error = %e, "cannot write checkpoint; lines may be sent again after a restart")
                }
            }
        }
    }

    fn set_state(&mut self, state: State, error: Option<String>) {
        self.state = state;
        if error.is_some() || state == State::Running {
            self.last_error = error;
        }
    }

    /// Refreshes the snapshot the control socket serves.
    fn publish(&self) {
        let files: Vec<_> = self
            .files
            .iter()
            .map(|f| {
                json!({
                    "path": f.follower.path(),
                    "lines_read": f.lines_read,
                    "records_acked": f.records_acked,
                    "unacknowledged": f.acks.pending(),
                    "checkpoint": f.saved,
                })
            })
            .collect();
        let snapshot = json!({
            "command": "tail",
            "stream": self.config.stream,
            "state": self.state,
            "last_error": self.last_error,
            "queued_bytes": self.queue.bytes(),
            "files": files,
        });
        if let Ok(mut status) = self.status.lock() {
            *status = snapshot;
        }
    }

    fn finish(&mut self) {
        self.checkpoint();
        self.set_state(State::Stopped, None);
        self.publish();
        self.files.iter().for_each(Tailed::log_progress);
        info!("edge-agent tail stopped");
    }
}

/// What the tailer is doing, for `edge-agent status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Connecting,
    Running,
    Backoff,
    Stopped,
}

/// SIGTERM or SIGINT.
struct Stop {
    sigterm: Signal,
}

impl Stop {
    fn new() -> Result<Self, String> {
        Ok(Stop {
            sigterm: signal(SignalKind::terminate())
                .map_err(|e| format!("cannot watch SIGTERM: {e}"))?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: stopping"),
            _ = self.sigterm.recv() => info!("SIGTERM: stopping"),
        }
    }
}

/// `--partition-key-from line`: a different key per line, spreading lines over shards.
fn line_key(data: &[u8], n: u64) -> String {
    format!("{:08x}{:08x}", crc32fast::hash(data), n as u32)
}

/// `--partition-key-from file`: the path, its last 256 characters when longer.
fn path_key(path: &Path) -> String {
    let text = path.to_string_lossy();
    let skip = text.chars().count().saturating_sub(256);
    text.chars().skip(skip).collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
