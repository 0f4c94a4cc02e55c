//! The SQLite fragment index (WAL, `synchronous = FULL`).
//!
//! All writes go through one writer thread that commits whatever has queued up in a
//! single transaction (group commit), each request in its own savepoint: with many
//! cameras, one fsync of the WAL acknowledges many fragments. Reads use a small pool
//! of read connections, which WAL lets run beside the writer.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, MutexGuard};
use std::thread;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::{FragmentQuery, FragmentRecord, StoreError, StreamRecord, TimestampKind};

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = include_str!("sql/schema.sql");
const READERS: usize = 4;
/// Most requests folded into one transaction.
const MAX_BATCH: usize = 256;

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// The index: a writer thread and a pool of readers.
pub(super) struct Index {
    writer: SyncSender<Job>,
    readers: Vec<Mutex<Connection>>,
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        0 => {
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?;
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        other => Err(StoreError::Incompatible(format!(
            "the index has schema version {other}; this server understands version {SCHEMA_VERSION} \
             (upgrade the server, or restore a matching backup)"
        ))),
    }
}

fn writer_loop(conn: Connection, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions = Vec::with_capacity(batch.len());
        if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs drops their reply channels: each waiter gets an error.
            tracing::error!(error = %err, "Index transaction could not start.");
            drop(batch);
            continue;
        }
        for job in batch {
            let _ = conn.execute_batch("SAVEPOINT job");
            let (ok, done) = job(&conn);
            let end = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            let _ = conn.execute_batch(end);
            completions.push(done);
        }
        let commit = conn.execute_batch("COMMIT");
        let shared = commit.map_err(|e| e.to_string());
        if shared.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in completions {
            done(shared.clone().map_err(StoreError::Incompatible));
        }
    }
}

impl Index {
    /// Opens or creates the index at `path`.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let rw = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer_conn = open(path, rw)?;
        migrate(&writer_conn)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let ro = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            readers.push(Mutex::new(open(path, ro)?));
        }
        let (tx, rx) = mpsc::sync_channel::<Job>(1024);
        thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || writer_loop(writer_conn, rx))
            .map_err(|source| StoreError::Io {
                op: "spawn index writer",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            writer: tx,
            readers,
        })
    }

    /// Runs `f` in the writer's next transaction; returns once that transaction is
    /// committed (durable) or has failed.
    pub(super) fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Result<T, StoreError>>(1);
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, done)
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError::Incompatible("the index writer has stopped".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Incompatible("the index writer has stopped".into()))?
    }

    /// Runs `f` on a read connection.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for conn in &self.readers {
            if let Ok(guard) = conn.try_lock() {
                return f(&guard);
            }
        }
        let guard: MutexGuard<'_, Connection> = self.readers[0]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard)
    }
}

// ---- SQL, in one place ----

pub(super) const STREAM_COLUMNS: &str = "id, name, arn, device_name, media_type, kms_key_id, version, creation_time_ms, retention_hours, tags";
pub(super) const FRAGMENT_COLUMNS: &str =
    "stream_id, seq, producer_ts_ms, server_ts_ms, duration_ms, size_bytes, tracks, user_tags";

pub(super) fn stream_from_row(row: &Row<'_>) -> rusqlite::Result<StreamRecord> {
    let tags: String = row.get(9)?;
    Ok(StreamRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        arn: row.get(2)?,
        device_name: row.get(3)?,
        media_type: row.get(4)?,
        kms_key_id: row.get(5)?,
        version: row.get(6)?,
        creation_time_ms: row.get(7)?,
        retention_hours: row.get(8)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

pub(super) fn fragment_from_row(row: &Row<'_>) -> rusqlite::Result<FragmentRecord> {
    let tags: String = row.get(7)?;
    Ok(FragmentRecord {
        stream_id: row.get(0)?,
        seq: row.get(1)?,
        producer_ts_ms: row.get(2)?,
        server_ts_ms: row.get(3)?,
        duration_ms: row.get(4)?,
        size_bytes: row.get(5)?,
        tracks_json: row.get(6)?,
        user_tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

fn ts_column(kind: TimestampKind) -> &'static str {
    match kind {
        TimestampKind::Producer => "producer_ts_ms",
        TimestampKind::Server => "server_ts_ms",
    }
}

/// `ListFragments` rows in sequence order.
pub(super) fn list_fragments(
    conn: &Connection,
    stream_id: i64,
    query: &FragmentQuery,
) -> Result<Vec<FragmentRecord>, StoreError> {
    let (col, start, end) = match query.range {
        Some((kind, start, end)) => (ts_column(kind), start, end),
        None => ("seq", i64::MIN, i64::MAX),
    };
    let sql = format!(
        "SELECT {FRAGMENT_COLUMNS} FROM fragments WHERE stream_id = ?1 AND seq > ?2 \
         AND {col} BETWEEN ?3 AND ?4 ORDER BY seq LIMIT ?5"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            stream_id,
            query.after_seq.unwrap_or(0),
            start,
            end,
            query.limit as i64
        ],
        fragment_from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The fragment containing `ts_ms` (the last one starting at or before it that has not
/// ended by then), else the first starting after it.
pub(super) fn seek(
    conn: &Connection,
    stream_id: i64,
    kind: TimestampKind,
    ts_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let col = ts_column(kind);
    let containing: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT seq FROM fragments WHERE stream_id = ?1 AND {col} <= ?2 AND {col} + duration_ms > ?2 \
             ORDER BY {col} DESC, seq DESC LIMIT 1"
        ))?
        .query_row(params![stream_id, ts_ms], |r| r.get(0))
        .optional()?;
    if containing.is_some() {
        return Ok(containing);
    }
    Ok(conn
        .prepare_cached(&format!(
            "SELECT seq FROM fragments WHERE stream_id = ?1 AND {col} >= ?2 ORDER BY {col}, seq LIMIT 1"
        ))?
        .query_row(params![stream_id, ts_ms], |r| r.get(0))
        .optional()?)
}
