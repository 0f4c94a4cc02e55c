//! The read side of a shard log: positioned reads through the sparse index, time
//! search, and the resume point that lets tailing readers skip the index scan.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Resume, ShardLog, read_view};
use crate::StoredRecord;
use crate::commit::lock;
use crate::index::{INDEX_INTERVAL, IndexEntry};
use crate::segment::{FrameReader, SegmentFile, Step};

/// Largest single positioned read: big enough to amortise the syscall, small enough
/// that a large read does not leave big buffers behind in the allocator.
const MAX_READ_CHUNK: usize = 1 << 20;

/// Where a read starts inside one segment.
struct Start {
    file: Arc<SegmentFile>,
    sequence: u64,
    offset: u64,
    len: u64,
    end: u64,
}

fn corrupt(path: &Path, offset: u64, reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{}: corrupt record at offset {offset}: {reason}",
            path.display()
        ),
    )
}

impl ShardLog {
    /// Durable records with sequence >= `from`, in order, at most `max_records` and
    /// about `max_bytes` of data (always at least one record if any is available).
    /// Sequences before [`ShardLog::first_sequence`] read as the oldest stored ones.
    /// Damaged stored bytes (a CRC mismatch) end the result early, or fail the read
    /// with `InvalidData` naming the file and offset when nothing precedes them.
    pub fn read(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> io::Result<Vec<StoredRecord>> {
        self.check_open()?;
        let mut out = Vec::new();
        if max_records == 0 {
            return Ok(out);
        }
        let chunk = max_bytes
            .min(max_records.saturating_mul(4096))
            .saturating_add(INDEX_INTERVAL as usize)
            .clamp(16 << 10, MAX_READ_CHUNK);
        let mut data_bytes = 0usize;
        let mut cursor = from;
        while let Some(start) = self.locate(cursor) {
            let file = match start.file.file() {
                Ok(file) => file,
                // Trimmed since `locate`: carry on from what is left.
                Err(e) if e.kind() == io::ErrorKind::NotFound && self.first_sequence() > cursor => {
                    cursor = self.first_sequence();
                    continue;
                }
                Err(e) => return Err(e),
            };
            let path = &start.file.path;
            let mut reader = FrameReader::new(file, path, start.offset, start.len, chunk);
            let mut expected = start.sequence;
            loop {
                let (offset, frame) = match reader.next()? {
                    Step::End => break,
                    Step::Record { offset, frame } if frame.sequence == expected => (offset, frame),
                    Step::Record { offset, .. } => {
                        return partial(out, corrupt(path, offset, "unexpected sequence number"));
                    }
                    Step::Bad { offset, reason } => {
                        return partial(out, corrupt(path, offset, reason));
                    }
                };
                expected += 1;
                if frame.sequence < cursor {
                    continue;
                }
                let size = frame.data.len();
                if !out.is_empty() && data_bytes.saturating_add(size) > max_bytes {
                    self.remember(start.file.base, frame.sequence, offset);
                    return Ok(out);
                }
                let bytes = reader.bytes();
                out.push(StoredRecord {
                    sequence: frame.sequence,
                    arrival_ms: frame.arrival_ms,
                    partition_key: String::from_utf8_lossy(&bytes[frame.key.clone()]).into_owned(),
                    data: bytes.slice(frame.data.clone()),
                });
                data_bytes += size;
                if out.len() >= max_records {
                    self.remember(
                        start.file.base,
                        frame.sequence + 1,
                        offset + frame.len as u64,
                    );
                    return Ok(out);
                }
            }
            cursor = start.end;
        }
        Ok(out)
    }

    fn remember(&self, base: u64, sequence: u64, offset: u64) {
        *lock(&self.resume) = Some(Resume {
            base,
            sequence,
            offset,
        });
    }

    /// The segment holding `cursor` (or the next stored record after it) and the closest
    /// known position at or before it.
    fn locate(&self, cursor: u64) -> Option<Start> {
        let view = read_view(&self.view);
        if cursor >= view.next {
            return None;
        }
        let first = view
            .segments
            .partition_point(|s| s.summary.base <= cursor)
            .saturating_sub(1);
        for seg in &view.segments[first..] {
            let s = &seg.summary;
            let cursor = cursor.max(s.base);
            if cursor >= s.end {
                continue;
            }
            let mut at = s.index.at_or_before(cursor).unwrap_or(IndexEntry {
                sequence: s.base,
                offset: 0,
                arrival_ms: 0,
            });
            if let Some(r) = *lock(&self.resume)
                && r.base == s.base
                && r.sequence <= cursor
                && r.sequence > at.sequence
            {
                at.sequence = r.sequence;
                at.offset = r.offset;
            }
            return Some(Start {
                file: Arc::clone(&seg.file),
                sequence: at.sequence,
                offset: at.offset,
                len: s.len,
                end: s.end,
            });
        }
        None
    }

    /// Sequence of the first durable record with `arrival_ms >= ms`, or
    /// [`ShardLog::next_sequence`] if none.
    pub fn sequence_at_time(&self, ms: i64) -> io::Result<u64> {
        self.check_open()?;
        loop {
            let (file, entry, len, end) = {
                let view = read_view(&self.view);
                let found = view
                    .segments
                    .iter()
                    .find(|s| s.summary.last_arrival.is_some_and(|a| a >= ms));
                let Some(seg) = found else {
                    return Ok(view.next);
                };
                let Some(entry) = seg.summary.index.before_time(ms) else {
                    return Ok(seg.summary.base);
                };
                if entry.arrival_ms >= ms {
                    return Ok(entry.sequence);
                }
                (
                    Arc::clone(&seg.file),
                    entry,
                    seg.summary.len,
                    seg.summary.end,
                )
            };
            let handle = match file.file() {
                Ok(handle) => handle,
                // Trimmed since it was found: look again among what is left.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound && self.first_sequence() > file.base =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut reader = FrameReader::new(handle, &file.path, entry.offset, len, 64 << 10);
            loop {
                match reader.next()? {
                    Step::Record { frame, .. } if frame.arrival_ms >= ms => {
                        return Ok(frame.sequence);
                    }
                    Step::Record { .. } => {}
                    Step::End => return Ok(end),
                    Step::Bad { offset, reason } => {
                        return Err(corrupt(&file.path, offset, reason));
                    }
                }
            }
        }
    }
}

/// What a read found before hitting damage, or the damage if it found nothing.
fn partial(out: Vec<StoredRecord>, e: io::Error) -> io::Result<Vec<StoredRecord>> {
    if out.is_empty() { Err(e) } else { Ok(out) }
}
