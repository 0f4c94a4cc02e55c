//! The store: maps shard ids to directories under the root, keeps one open
//! [`ShardLog`] per id, and owns the commit pool shared by all shards.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::commit::{CommitPool, lock};
use crate::shard::ShardLog;
use crate::{LogConfig, io_error, sync_dir};

/// All shard logs under one root directory. `Send + Sync`; share it in an `Arc`.
pub struct LogStore {
    root: PathBuf,
    config: LogConfig,
    pool: Arc<CommitPool>,
    syncs: Arc<AtomicU64>,
    /// Weak so that a shard nobody uses is closed (its files and memory released).
    shards: Mutex<HashMap<String, Weak<ShardLog>>>,
}

impl LogStore {
    /// Opens (creating) the root directory. Nothing else is scanned until a shard is
    /// opened.
    pub fn open(root: &Path, config: LogConfig) -> io::Result<LogStore> {
        if config.segment_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "LogConfig::segment_bytes must be at least 1",
            ));
        }
        if !root.is_dir() {
            fs::create_dir_all(root).map_err(|e| io_error(root, "create directory", e))?;
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Ok(LogStore {
            root: root.to_path_buf(),
            config,
            pool: Arc::new(CommitPool::default()),
            syncs: Arc::new(AtomicU64::new(0)),
            shards: Mutex::new(HashMap::new()),
        })
    }

    /// The log of one shard, opened (recovering: a torn or corrupt tail is detected by
    /// CRC and cut, with a warning) or created.
    ///
    /// `id` is a relative path of `[A-Za-z0-9_.-]` components separated by `/`, e.g.
    /// `"<stream>/shardId-000000000000"`. The same id gives the same `Arc` while it is
    /// open. A log whose write failed is reopened (recovered) here, once its old handle
    /// is done writing, which is how a shard comes back after an fsync error.
    pub fn shard(&self, id: &str) -> io::Result<Arc<ShardLog>> {
        validate_id(id)?;
        let mut shards = lock(&self.shards);
        if let Some(open) = shards.get(id).and_then(Weak::upgrade)
            && !open.is_failed()
        {
            return Ok(open);
        }
        let dir = create_dirs(&self.root, id)?;
        let log = ShardLog::open(
            id.to_string(),
            dir,
            self.config.segment_bytes,
            Arc::clone(&self.pool),
            Arc::clone(&self.syncs),
        )?;
        shards.retain(|_, w| w.strong_count() > 0);
        shards.insert(id.to_string(), Arc::downgrade(&log));
        Ok(log)
    }

    /// Deletes every log under `prefix` (a stream deleted): the log `prefix` itself and
    /// those whose id starts with `prefix/`. Open handles become unusable: appends and
    /// reads fail. A later [`LogStore::shard`] with such an id starts an empty log.
    pub fn remove(&self, prefix: &str) -> io::Result<()> {
        validate_id(prefix)?;
        let mut shards = lock(&self.shards);
        let nested = format!("{prefix}/");
        shards.retain(|id, log| {
            let doomed = id == prefix || id.starts_with(&nested);
            if doomed && let Some(log) = log.upgrade() {
                log.mark_removed();
            }
            !doomed
        });
        let dir = self.root.join(prefix);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&dir, "delete", e)),
        }
        match dir.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }

    /// Number of fdatasyncs that committed appends, over all shards of this store.
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore")
            .field("root", &self.root)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn validate_id(id: &str) -> io::Result<()> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    if id.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid shard log id {id:?}: expected [A-Za-z0-9_.-] components separated by '/'"
            ),
        ))
    }
}

/// Creates the directories of `id` under `root`, syncing each parent whose entries
/// changed, so a new shard's directory survives a crash along with its first segment.
fn create_dirs(root: &Path, id: &str) -> io::Result<PathBuf> {
    let mut dir = root.to_path_buf();
    for component in id.split('/') {
        let parent = dir.clone();
        dir.push(component);
        match fs::create_dir(&dir) {
            Ok(()) => sync_dir(&parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(&dir, "create directory", e)),
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::validate_id;

    #[test]
    fn ids() {
        for ok in ["a", "3f2a-b_c.d/shardId-000000000000", "x/y/z"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "..", "a/../b", ".", "a b", "é", "a\\b",
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
