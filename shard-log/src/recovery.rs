//! Opening a shard directory: sealed segments come back from their `.idx` files (or a
//! scan when that is missing or damaged); the active (last) segment is always scanned
//! and cut at the first frame that does not verify.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use tracing::warn;

use crate::index::Summary;
use crate::segment::{self, Segment, SegmentFile};
use crate::{io_error, sync_dir};

/// A recovered shard: its segments in order, the last one open for appending.
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Segment>,
}

/// Recovers (or, when it holds no segment, initialises) the shard log in `dir`, which
/// exists.
pub(crate) fn recover(dir: &Path) -> io::Result<Recovered> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, "list", e))? {
        let entry = entry.map_err(|e| io_error(dir, "list", e))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if let Some(base) = entry.file_name().to_str().and_then(segment::parse_log_name)
            && is_file
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();

    let Some((&active_base, sealed)) = bases.split_last() else {
        let path = dir.join(segment::log_name(0));
        let file = segment::open_rw(&path, true)?;
        sync_dir(dir)?;
        let file = Arc::new(SegmentFile::with_file(0, path, file));
        return Ok(Recovered {
            segments: vec![Segment {
                file,
                summary: Summary::empty(0),
            }],
        });
    };

    let mut segments = Vec::with_capacity(bases.len());
    for (i, &base) in sealed.iter().enumerate() {
        let summary = load_sealed(dir, base)?;
        let next = bases[i + 1];
        if summary.end != next {
            warn!(
                segment = %dir.join(segment::log_name(base)).display(),
                end = summary.end,
                next_segment = next,
                "sealed segment does not end where the next one starts; sequences in between are unreadable"
            );
        }
        let path = dir.join(segment::log_name(base));
        segments.push(Segment {
            file: Arc::new(SegmentFile::unopened(base, path)),
            summary,
        });
    }
    segments.push(recover_active(dir, active_base)?);
    Ok(Recovered { segments })
}

/// A sealed segment's summary from its `.idx` file, rebuilt by scanning when needed.
fn load_sealed(dir: &Path, base: u64) -> io::Result<Summary> {
    let log_path = dir.join(segment::log_name(base));
    let idx_path = dir.join(segment::idx_name(base));
    let log_len = fs::metadata(&log_path)
        .map_err(|e| io_error(&log_path, "stat", e))?
        .len();
    let why = match fs::read(&idx_path) {
        Ok(bytes) => match Summary::decode(&bytes, base, log_len) {
            Some(summary) => return Ok(summary),
            None => "damaged or stale".to_string(),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => "missing".to_string(),
        Err(e) => format!("unreadable ({e})"),
    };
    warn!(index = %idx_path.display(), "segment index {why}; rebuilding it by scanning the segment");
    let file = File::open(&log_path).map_err(|e| io_error(&log_path, "open", e))?;
    let scan = segment::scan(&file, &log_path, base)?;
    if let Some((offset, reason)) = scan.problem {
        warn!(
            segment = %log_path.display(),
            offset,
            reason,
            "sealed segment is damaged; records from this offset on are unreadable"
        );
    }
    write_index(&idx_path, &scan.summary.encode());
    Ok(scan.summary)
}

/// Persists a sealed segment's index. Failure only costs a scan at the next open, so it
/// is logged rather than returned.
pub(crate) fn write_index(idx_path: &Path, bytes: &[u8]) {
    let result = File::create(idx_path).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_data()
    });
    if let Err(e) = result {
        warn!(index = %idx_path.display(), error = %e, "could not write segment index");
    }
}

/// Scans the active segment and cuts any torn or corrupt tail, durably, so that later
/// appends follow the last good record.
fn recover_active(dir: &Path, base: u64) -> io::Result<Segment> {
    let path = dir.join(segment::log_name(base));
    let file = segment::open_rw(&path, false)?;
    let scan = segment::scan(&file, &path, base)?;
    if let Some((offset, reason)) = scan.problem {
        let file_len = file
            .metadata()
            .map_err(|e| io_error(&path, "stat", e))?
            .len();
        warn!(
            segment = %path.display(),
            offset,
            reason,
            cut_bytes = file_len.saturating_sub(scan.summary.len),
            "cutting the torn or corrupt tail of the log"
        );
        file.set_len(scan.summary.len)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(&path, "truncate the damaged tail of", e))?;
    }
    Ok(Segment {
        file: Arc::new(SegmentFile::with_file(base, path, file)),
        summary: scan.summary,
    })
}
