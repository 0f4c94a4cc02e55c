//! Per-file checkpoints in the state directory: the file (device, inode) and the offset just
//! after the last line the stream acknowledged. Each is replaced atomically (temporary file,
//! fsync, rename, fsync of the directory), so a crash leaves the old or the new one, never a
//! torn one. A lock file keeps a second tailer off the same directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::follow::Position;

const LOCK_NAME: &str = "lock";

/// What is stored for one followed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// The followed path, for people reading the directory.
    pub(crate) path: PathBuf,
    #[serde(flatten)]
    pub(crate) position: Position,
}

#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    /// Held (locked) while the store is open.
    _lock: File,
}

impl Store {
    /// Creates the directory if needed and locks it.
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create state directory {}: {e}", dir.display()))?;
        let lock_path = dir.join(LOCK_NAME);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        lock.try_lock().map_err(|_| {
            format!(
                "another edge-agent tail uses the state directory {}",
                dir.display()
            )
        })?;
        Ok(Store {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    /// The checkpoint of `path`, if one was saved (an unreadable one is an error: starting
    /// over would resend or skip lines silently).
    pub(crate) fn load(&self, path: &Path) -> Result<Option<Checkpoint>, String> {
        let file = self.file_for(path);
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                format!(
                    "checkpoint {} is unreadable ({e}); remove it to start that file over",
                    file.display()
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read checkpoint {}: {e}", file.display())),
        }
    }

    /// Replaces the checkpoint of `path` atomically and durably.
    pub(crate) fn save(&self, path: &Path, position: Position) -> io::Result<()> {
        let file = self.file_for(path);
        let tmp = file.with_extension("json.tmp");
        let checkpoint = Checkpoint {
            path: path.to_owned(),
            position,
        };
        let mut bytes = serde_json::to_vec(&checkpoint).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let mut out = File::create(&tmp)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
        drop(out);
        std::fs::rename(&tmp, &file)?;
        File::open(&self.dir)?.sync_all()
    }

    /// `var_log_syslog-1a2b3c4d.json`: readable, and the CRC of the whole path keeps
    /// `/a/b_c` and `/a_b/c` apart.
    fn file_for(&self, path: &Path) -> PathBuf {
        let text = path.to_string_lossy();
        let mut name: String = text
            .trim_start_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.len() > 100 {
            name = name.split_off(name.len() - 100);
        }
        let crc = crc32fast::hash(path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{name}-{crc:08x}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tail::follow::FileId;

    fn pos(inode: u64, offset: u64) -> Position {
        Position {
            file: FileId { dev: 7, inode },
            offset,
        }
    }

    #[test]
    fn round_trip_per_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (Path::new("/var/log/a.log"), Path::new("/var/log_a.log"));
        assert_eq!(store.load(a).unwrap(), None);
        store.save(a, pos(11, 100)).unwrap();
        store.save(b, pos(12, 5)).unwrap();
        store.save(a, pos(11, 250)).unwrap();
        assert_eq!(store.load(a).unwrap().unwrap().position, pos(11, 250));
        assert_eq!(store.load(b).unwrap().unwrap().position, pos(12, 5));
        assert_eq!(store.load(a).unwrap().unwrap().path, a);
        drop(store);
        // Survives a restart.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load(a).unwrap().unwrap().position, pos(11, 250));
    }

    #[test]
    fn save_replaces_atomically_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = Path::new("/x.log");
        store.save(path, pos(1, 10)).unwrap();
        let file = store.file_for(path);
        // A crash after writing the temporary file but before the rename: the old
        // checkpoint is what a restart sees, and the stale temporary file is overwritten.
        std::fs::write(file.with_extension("json.tmp"), b"{\"torn").unwrap();
        assert_eq!(store.load(path).unwrap().unwrap().position, pos(1, 10));
        store.save(path, pos(1, 20)).unwrap();
        assert_eq!(store.load(path).unwrap().unwrap().position, pos(1, 20));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_corrupt_checkpoint_is_an_error_not_a_silent_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::write(store.file_for(Path::new("/y.log")), b"garbage").unwrap();
        assert!(
            store
                .load(Path::new("/y.log"))
                .unwrap_err()
                .contains("unreadable")
        );
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        assert!(
            Store::open(dir.path())
                .unwrap_err()
                .contains("another edge-agent tail")
        );
    }
}
