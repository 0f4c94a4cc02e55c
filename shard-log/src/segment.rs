//! Segment files: naming, the shared file handle, positioned frame reading and the
//! verifying scan used by recovery.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

use crate::index::{IndexEntry, Summary};
use crate::io_error;
use crate::record::{self, Frame, Parsed};

/// Digits in a segment name: every u64 fits, and names sort like the numbers.
const NAME_DIGITS: usize = 20;
const LOG_EXT: &str = ".log";
const IDX_EXT: &str = ".idx";
/// Held locked by the handle that writes the shard.
pub(crate) const LOCK_FILE: &str = "LOCK";

pub(crate) fn log_name(base: u64) -> String {
    format!("{base:0NAME_DIGITS$}{LOG_EXT}")
}

pub(crate) fn idx_name(base: u64) -> String {
    format!("{base:0NAME_DIGITS$}{IDX_EXT}")
}

/// The first sequence of a segment from its `.log` file name.
pub(crate) fn parse_log_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(LOG_EXT)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One segment file, shared by the writer and readers so reads never reopen it.
/// Sealed segments are opened on first read, which keeps startup cheap.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    file: OnceLock<File>,
}

impl SegmentFile {
    pub(crate) fn unopened(base: u64, path: PathBuf) -> SegmentFile {
        SegmentFile {
            base,
            path,
            file: OnceLock::new(),
        }
    }

    pub(crate) fn with_file(base: u64, path: PathBuf, file: File) -> SegmentFile {
        SegmentFile {
            base,
            path,
            file: OnceLock::from(file),
        }
    }

    pub(crate) fn file(&self) -> io::Result<&File> {
        if let Some(f) = self.file.get() {
            return Ok(f);
        }
        let opened = File::open(&self.path).map_err(|e| io_error(&self.path, "open", e))?;
        Ok(self.file.get_or_init(|| opened))
    }
}

/// A segment as readers see it: the file and its durable contents.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) file: Arc<SegmentFile>,
    pub(crate) summary: Summary,
}

/// Opens a segment file for appending (reads go through the same handle).
pub(crate) fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .open(path)
        .map_err(|e| io_error(path, if create { "create" } else { "open" }, e))
}

pub(crate) enum Step {
    /// A verified frame starting at `offset`; ranges index [`FrameReader::bytes`].
    Record { offset: u64, frame: Frame },
    /// Everything up to the limit was read.
    End,
    /// The bytes at `offset` are not a valid frame.
    Bad { offset: u64, reason: &'static str },
}

/// Reads consecutive frames from `[start, limit)` of a file with positioned reads, a
/// chunk at a time, so that neither recovery nor reads load whole files.
pub(crate) struct FrameReader<'a> {
    file: &'a File,
    path: &'a Path,
    chunk_start: u64,
    chunk: Bytes,
    pos: usize,
    limit: u64,
    chunk_size: usize,
}

impl<'a> FrameReader<'a> {
    pub(crate) fn new(
        file: &'a File,
        path: &'a Path,
        start: u64,
        limit: u64,
        chunk_size: usize,
    ) -> Self {
        FrameReader {
            file,
            path,
            chunk_start: start,
            chunk: Bytes::new(),
            pos: 0,
            limit,
            chunk_size,
        }
    }

    pub(crate) fn next(&mut self) -> io::Result<Step> {
        loop {
            let offset = self.chunk_start + self.pos as u64;
            if offset >= self.limit {
                return Ok(Step::End);
            }
            match record::parse(&self.chunk[self.pos..]) {
                Parsed::Frame(frame) => {
                    let at = self.pos;
                    self.pos += frame.len;
                    return Ok(Step::Record {
                        offset,
                        frame: frame.shifted(at),
                    });
                }
                Parsed::Corrupt(reason) => return Ok(Step::Bad { offset, reason }),
                Parsed::Incomplete(needed) => {
                    let remaining = self.limit - offset;
                    if needed as u64 > remaining {
                        return Ok(Step::Bad {
                            offset,
                            reason: "torn record (the file ends inside it)",
                        });
                    }
                    let size = (needed.max(self.chunk_size) as u64).min(remaining);
                    self.fill(offset, size as usize)?;
                }
            }
        }
    }

    /// The current chunk, which the ranges of the last [`Step::Record`] index.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.chunk
    }

    fn fill(&mut self, offset: u64, size: usize) -> io::Result<()> {
        let mut buf = BytesMut::zeroed(size);
        self.file.read_exact_at(&mut buf, offset).map_err(|e| {
            io_error(
                self.path,
                &format!("read {size} bytes at offset {offset}"),
                e,
            )
        })?;
        self.chunk = buf.freeze();
        self.chunk_start = offset;
        self.pos = 0;
        Ok(())
    }
}

/// Chunk size for recovery scans: large reads, freed when the scan ends.
const SCAN_CHUNK: usize = 1 << 20;

/// A verifying pass over a whole segment file.
pub(crate) struct Scan {
    /// The valid prefix.
    pub(crate) summary: Summary,
    /// Where and why the valid prefix ends before the file does.
    pub(crate) problem: Option<(u64, &'static str)>,
}

/// Checks every frame's CRC and sequence number from the start of the file and rebuilds
/// the sparse index, stopping at the first frame that does not verify.
pub(crate) fn scan(file: &File, path: &Path, base: u64) -> io::Result<Scan> {
    let file_len = file
        .metadata()
        .map_err(|e| io_error(path, "stat", e))?
        .len();
    let mut summary = Summary::empty(base);
    let mut reader = FrameReader::new(file, path, 0, file_len, SCAN_CHUNK);
    let problem = loop {
        match reader.next()? {
            Step::End => break None,
            Step::Bad { offset, reason } => break Some((offset, reason)),
            Step::Record { offset, frame } => {
                if frame.sequence != summary.end {
                    break Some((offset, "unexpected sequence number"));
                }
                if summary.index.due(offset) {
                    summary.index.push(IndexEntry {
                        sequence: frame.sequence,
                        offset,
                        arrival_ms: frame.arrival_ms,
                    });
                }
                summary.end += 1;
                summary.len = offset + frame.len as u64;
                summary.last_arrival = Some(frame.arrival_ms);
            }
        }
    };
    summary.index.shrink();
    Ok(Scan { summary, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_parse() {
        assert_eq!(log_name(42), "00000000000000000042.log");
        assert_eq!(idx_name(42), "00000000000000000042.idx");
        assert_eq!(parse_log_name(&log_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_log_name("42.log"), None);
        assert_eq!(parse_log_name("0000000000000000004x.log"), None);
        assert_eq!(parse_log_name(&idx_name(1)), None);
        assert!(log_name(9) < log_name(10));
    }
}
