//! Follows one path like `tail -F`: complete lines in order, across rotation by rename (the
//! old file is read to its end before the new one), copytruncate (the file shrinks: read it
//! again from the start) and a file that does not exist yet. A line is only returned once its
//! newline is written; each carries the position just after it, which is what a checkpoint
//! stores.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// How long a renamed-away file is still read after the path names a new file: writers
/// keep appending to the old one until they reopen their log.
pub(crate) const ROTATE_GRACE: Duration = Duration::from_secs(1);
/// How far back from the end a start "at the end" looks for the last newline.
const TAIL_LOOKBACK: u64 = 64 * 1024;

/// Which file: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) inode: u64,
}

impl FileId {
    fn of(meta: &Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            inode: meta.ino(),
        }
    }
}

/// A byte offset in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    #[serde(flatten)]
    pub(crate) file: FileId,
    pub(crate) offset: u64,
}

/// One record's worth of a line, without its newline (`\n` or `\r\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) data: Vec<u8>,
    /// Just after the line's newline; `None` for a piece of a line longer than a record
    /// (only its last piece ends the line).
    pub(crate) end: Option<Position>,
}

/// What one [`Follower::poll`] found.
#[derive(Debug, Default)]
pub(crate) struct Polled {
    pub(crate) lines: Vec<Line>,
    /// Bytes read: more may follow at once when this is not 0.
    pub(crate) read: usize,
}

/// Where to start reading the path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// After the last complete line (a file seen for the first time, by default).
    End,
    /// From the first byte (`--from-start`).
    Beginning,
    /// From a checkpoint.
    At(Position),
}

/// The file being read.
#[derive(Debug)]
struct Reader {
    file: File,
    id: FileId,
    /// First byte not yet returned.
    offset: u64,
    /// Bytes read after `offset` that do not end with a newline yet.
    partial: Vec<u8>,
}

impl Reader {
    fn read_pos(&self) -> u64 {
        self.offset + self.partial.len() as u64
    }
}

#[derive(Debug)]
pub(crate) struct Follower {
    path: PathBuf,
    /// Longest record data; longer lines are split (see `push_line`).
    max_piece: usize,
    reader: Option<Reader>,
    /// Since when the path names a file other than `reader`'s.
    rotated_since: Option<Instant>,
    waiting_logged: bool,
    /// Where the first file opened was started.
    first_open: Option<Position>,
}

impl Follower {
    pub(crate) fn new(path: PathBuf, start: Start, max_piece: usize) -> io::Result<Self> {
        let mut follower = Follower {
            path,
            max_piece: max_piece.max(1),
            reader: None,
            rotated_since: None,
            waiting_logged: false,
            first_open: None,
        };
        let current = stat(&follower.path)?;
        match start {
            Start::At(cp) if current.as_ref().is_some_and(|m| FileId::of(m) == cp.file) => {
                let size = current.map_or(0, |m| m.len());
                let offset = if size < cp.offset {
                    warn!(path = %follower.path.display(), checkpoint = cp.offset, size, "file shrank while stopped (truncated): reading it from the start");
                    0
                } else {
                    cp.offset
                };
                follower.open_path(offset)?;
            }
            Start::At(cp) => match find_by_id(&follower.path, cp.file) {
                // Rotated while stopped: finish the old file first, then the path from 0.
                Some((old_path, file, meta)) if meta.len() >= cp.offset => {
                    info!(path = %follower.path.display(), rotated_to = %old_path.display(), offset = cp.offset, "file was rotated while stopped: finishing the rotated file first");
                    follower.reader = Some(Reader {
                        file,
                        id: cp.file,
                        offset: cp.offset,
                        partial: Vec::new(),
                    });
                    // The grace period is long over: switch as soon as it is read.
                    let now = Instant::now();
                    follower.rotated_since = Some(now.checked_sub(ROTATE_GRACE).unwrap_or(now));
                    follower.first_open = Some(cp);
                }
                _ => {
                    if current.is_some() {
                        warn!(path = %follower.path.display(), "the checkpointed file is gone (rotated and removed while stopped?): reading the file now at this path from the start; lines written to the old one after the checkpoint are lost");
                    }
                    follower.open_path(0)?;
                }
            },
            Start::Beginning => follower.open_path(0)?,
            Start::End => {
                if let Some(meta) = current {
                    let offset = after_last_newline(&follower.path, meta.len())?;
                    follower.open_path(offset)?;
                }
            }
        }
        Ok(follower)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where the first file was opened: the checkpoint of a path that has none yet, so that
    /// a restart before the first acknowledgement neither skips nor repeats lines.
    pub(crate) fn first_open(&self) -> Option<Position> {
        self.first_open
    }

    /// Where reading continues (the end of the last returned line or piece).
    #[cfg(test)]
    fn position(&self) -> Option<Position> {
        self.reader.as_ref().map(|r| Position {
            file: r.id,
            offset: r.offset,
        })
    }

    /// Reads up to about `budget` bytes and returns the complete lines among them. At the
    /// end of the file, notices truncation and rotation.
    pub(crate) fn poll(&mut self, budget: usize) -> io::Result<Polled> {
        let mut polled = Polled::default();
        if self.reader.is_none() {
            // A file that appears after the start is new: all of it is read.
            self.open_path(0)?;
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(polled);
        };
        let mut buf = vec![0; budget.clamp(1, 64 * 1024)];
        while polled.read < budget {
            let n = reader.file.read_at(&mut buf, reader.read_pos())?;
            if n == 0 {
                break;
            }
            reader.partial.extend_from_slice(&buf[..n]);
            polled.read += n;
        }
        if polled.read > 0 {
            self.split_lines(&mut polled.lines);
            return Ok(polled);
        }
        let lines = &mut polled.lines;
        // At the end: has the file been truncated (copytruncate) or replaced (rename)?
        let size = reader.file.metadata()?.len();
        if size < reader.read_pos() {
            warn!(path = %self.path.display(), size, offset = reader.read_pos(), "file truncated (copytruncate?): reading it again from the start");
            reader.offset = 0;
            reader.partial.clear();
            return Ok(polled);
        }
        match stat(&self.path)? {
            Some(meta) if FileId::of(&meta) != reader.id => {
                let since = *self.rotated_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= ROTATE_GRACE {
                    self.finish_rotated(lines);
                    self.open_path(0)?;
                }
            }
            // Same file, or removed without a successor yet (keep the old one open).
            _ => self.rotated_since = None,
        }
        Ok(polled)
    }

    /// Closes a rotated-away file: a last line without newline will never be completed
    /// there, so it is returned as it is.
    fn finish_rotated(&mut self, lines: &mut Vec<Line>) {
        let Some(mut reader) = self.reader.take() else {
            return;
        };
        if !reader.partial.is_empty() {
            let data = std::mem::take(&mut reader.partial);
            reader.offset += data.len() as u64;
            let end = Position {
                file: reader.id,
                offset: reader.offset,
            };
            self.push_line(data, Some(end), lines);
        }
        info!(path = %self.path.display(), inode = reader.id.inode, offset = reader.offset, "rotated file read to its end; following the new file");
        self.rotated_since = None;
    }

    fn split_lines(&mut self, lines: &mut Vec<Line>) {
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        let mut rest = std::mem::take(&mut reader.partial);
        let mut consumed = 0;
        let mut complete = Vec::new();
        while let Some(nl) = rest[consumed..].iter().position(|b| *b == b'\n') {
            let line_end = consumed + nl + 1;
            let mut data = &rest[consumed..line_end - 1];
            if data.last() == Some(&b'\r') {
                data = &data[..data.len() - 1];
            }
            complete.push((data.to_vec(), reader.offset + line_end as u64));
            consumed = line_end;
        }
        let (id, base) = (reader.id, reader.offset);
        reader.offset = base + consumed as u64;
        rest.drain(..consumed);
        // A line longer than a record is sent in pieces before its newline arrives, so that
        // memory stays bounded; the checkpoint moves only when the whole line is acknowledged.
        let mut early = Vec::new();
        while rest.len() > self.max_piece {
            let cut = piece_len(&rest, self.max_piece);
            early.push(rest.drain(..cut).collect::<Vec<u8>>());
            reader.offset += cut as u64;
        }
        reader.partial = rest;
        for (data, end) in complete {
            self.push_line(
                data,
                Some(Position {
                    file: id,
                    offset: end,
                }),
                lines,
            );
        }
        for piece in early {
            lines.push(Line {
                data: piece,
                end: None,
            });
        }
    }

    /// Adds a line, split into pieces of at most `max_piece` bytes when longer.
    fn push_line(&self, data: Vec<u8>, end: Option<Position>, lines: &mut Vec<Line>) {
        if data.len() <= self.max_piece {
            lines.push(Line { data, end });
            return;
        }
        warn!(path = %self.path.display(), bytes = data.len(), limit = self.max_piece, "line longer than a record: sent as several records");
        let mut rest = &data[..];
        while rest.len() > self.max_piece {
            let cut = piece_len(rest, self.max_piece);
            lines.push(Line {
                data: rest[..cut].to_vec(),
                end: None,
            });
            rest = &rest[cut..];
        }
        lines.push(Line {
            data: rest.to_vec(),
            end,
        });
    }

    /// Opens the file now at the path, reading from `offset`; waits if there is none.
    fn open_path(&mut self, offset: u64) -> io::Result<()> {
        match File::open(&self.path) {
            Ok(file) => {
                let id = FileId::of(&file.metadata()?);
                info!(path = %self.path.display(), inode = id.inode, offset, "following file");
                self.first_open.get_or_insert(Position { file: id, offset });
                self.reader = Some(Reader {
                    file,
                    id,
                    offset,
                    partial: Vec::new(),
                });
                self.waiting_logged = false;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.waiting_logged {
                    info!(path = %self.path.display(), "waiting for the file to appear");
                    self.waiting_logged = true;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Longest prefix of at most `max` bytes that does not cut a UTF-8 character (when the
/// data is text; binary data is cut at `max`).
fn piece_len(data: &[u8], max: usize) -> usize {
    let max = max.min(data.len());
    if max == data.len() {
        return max;
    }
    // A UTF-8 character is at most 4 bytes: back up at most 3 continuation bytes.
    let mut cut = max;
    while cut > 0 && max - cut < 3 && (data[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    if cut == 0 || (data[cut] & 0xC0) == 0x80 {
        max
    } else {
        cut
    }
}

fn stat(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The offset after the last newline near the end: a start "at the end" must not begin in
/// the middle of a line being written.
fn after_last_newline(path: &Path, size: u64) -> io::Result<u64> {
    let from = size.saturating_sub(TAIL_LOOKBACK);
    let mut buf = vec![0; (size - from) as usize];
    let n = File::open(path)?.read_at(&mut buf, from)?;
    Ok(match buf[..n].iter().rposition(|b| *b == b'\n') {
        Some(i) => from + i as u64 + 1,
        None => size,
    })
}

/// A file in the path's directory with this id (where logrotate renamed the old file).
fn find_by_id(path: &Path, id: FileId) -> Option<(PathBuf, File, Metadata)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && FileId::of(&meta) == id {
            let file = File::open(entry.path()).ok()?;
            // The inode may have been reused between the listing and the open.
            let meta = file.metadata().ok()?;
            return (FileId::of(&meta) == id).then(|| (entry.path(), file, meta));
        }
    }
    None
}

#[cfg(test)]
mod tests;
