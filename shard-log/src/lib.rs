//! Durable storage of Kinesis Data Streams records: one append-only log per shard, made
//! of segment files with a sparse index, written with group commit.
//!
//! # On-disk format
//!
//! ```text
//! <root>/<id>/                       id = "<stream>/shardId-000000000000", say
//!     00000000000000000000.log       sealed segment: frames of sequences 0..N
//!     00000000000000000000.idx       its sparse index, written when it was sealed
//!     0000000000000000N.log          active segment (the last name), appended to
//!     LOCK                           locked (flock) by the one handle writing the shard
//! ```
//!
//! * A segment's name is the sequence of its first record, 20 digits so that names sort
//!   like numbers. A new segment starts when the active one reaches
//!   [`LogConfig::segment_bytes`]; a record is never split across segments.
//! * Records are framed back to back: `body_len u32 | crc u32 | sequence u64 |
//!   arrival_ms i64 | key_len u16 | key | data` (little endian). The CRC-32 covers the
//!   length and the whole body, so damage anywhere in a frame is detected.
//! * The `.idx` file holds the segment's summary (end sequence, length, newest arrival)
//!   and one (sequence, offset, arrival) entry per 64 KiB, under its own CRC. A missing,
//!   damaged or stale one is rebuilt by scanning its segment.
//! * Opening a shard reads the `.idx` files and scans only the active segment, cutting
//!   it (durably) at the first frame that is torn, fails its CRC or is out of sequence.
//!
//! # Durability
//!
//! [`ShardLog::append`] resolves only after its records are written and `fdatasync`ed,
//! and readers never see a record before that. A segment file's directory is `fsync`ed
//! after the file is created and before anything is written to it. So an acknowledged record survives a process crash
//! or power loss, provided the disk honours flushes. A record never acknowledged may
//! or may not be there after a crash, but sequences are never reused: the active
//! segment's name keeps the next sequence even when its records are cut. A failed
//! write or sync fails the appends waiting on it and every later one, until the shard
//! is reopened (recovered from disk) through [`LogStore::shard`].
//!
//! Appends from many tasks are batched per shard: while one `fdatasync` is in flight
//! the next appends queue up and go out together with one write and one sync, on a
//! small pool of commit threads (never on tokio workers) so shards sync in parallel.

mod commit;
mod index;
mod record;
mod recovery;
mod segment;
mod shard;
mod store;

use std::io;
use std::path::Path;

use bytes::Bytes;

pub use record::MAX_DATA_BYTES;
pub use shard::ShardLog;
pub use store::LogStore;

/// Store-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// A new segment starts once the active one holds this many bytes. Retention works
    /// in whole segments, so this is also its granularity.
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 << 20,
        }
    }
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// Where an appended record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence: u64,
    pub arrival_ms: i64,
}

/// A durable record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub sequence: u64,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

/// An I/O error that says what was being done to which file.
pub(crate) fn io_error(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Makes a directory's entries (created or deleted files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "fsync directory", e))
}
