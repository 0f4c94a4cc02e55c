//! Fragment media files: `DIR/media/<stream id>/<seq>.mkv`, one file per fragment,
//! holding exactly the bytes GetMedia serves up to the end of the Cluster.
//!
//! A file is durable once its data and its directory entry are synced; only then is
//! its index row written (see `design/storage-lifecycle.md`), so a file without a row
//! is an interrupted write and [`FragmentFiles::reconcile`] removes it at startup.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The media file tree.
#[derive(Debug)]
pub(super) struct FragmentFiles {
    root: PathBuf,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Syncs a directory so entries created or removed in it survive a power cut.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

impl FragmentFiles {
    /// Opens (creating if needed) the tree under `root`.
    pub(super) fn open(root: PathBuf) -> Result<Self, StoreError> {
        fs::create_dir_all(&root).map_err(io("create directory", &root))?;
        Ok(Self { root })
    }

    fn stream_dir(&self, stream_id: i64) -> PathBuf {
        self.root.join(stream_id.to_string())
    }

    fn path(&self, stream_id: i64, seq: i64) -> PathBuf {
        self.stream_dir(stream_id).join(format!("{seq}.mkv"))
    }

    /// Writes a fragment and syncs it and its directory entry.
    pub(super) fn write(&self, stream_id: i64, seq: i64, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.stream_dir(stream_id);
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
            sync_dir(&self.root)?;
        }
        let path = self.path(stream_id, seq);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io("create", &path))?;
        file.write_all(bytes).map_err(io("write", &path))?;
        file.sync_data().map_err(io("sync", &path))?;
        sync_dir(&dir)
    }

    /// Reads a whole fragment.
    pub(super) fn read(&self, stream_id: i64, seq: i64) -> Result<Vec<u8>, StoreError> {
        let path = self.path(stream_id, seq);
        fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound,
            _ => StoreError::Io {
                op: "read",
                path,
                source,
            },
        })
    }

    /// Removes fragments (already gone from the index); missing files are fine.
    pub(super) fn remove(&self, stream_id: i64, seqs: &[i64]) -> Result<(), StoreError> {
        for &seq in seqs {
            let path = self.path(stream_id, seq);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove", &path)(e)),
            }
        }
        Ok(())
    }

    /// Removes a deleted stream's directory.
    pub(super) fn remove_stream(&self, stream_id: i64) -> Result<(), StoreError> {
        let dir = self.stream_dir(stream_id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove directory", &dir)(e)),
        }
    }

    /// Removes every file the index does not know: writes interrupted by a crash
    /// before their row was committed, and leftovers of deleted streams or expired
    /// fragments. Returns how many files were removed.
    pub(super) fn reconcile(
        &self,
        stream_exists: impl Fn(i64) -> bool,
        fragment_exists: impl Fn(i64, i64) -> bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.root).map_err(io("list", &self.root))? {
            let entry = entry.map_err(io("list", &self.root))?;
            let Some(stream_id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            if !stream_exists(stream_id) {
                self.remove_stream(stream_id)?;
                removed += 1;
                continue;
            }
            let dir = entry.path();
            for file in fs::read_dir(&dir).map_err(io("list", &dir))? {
                let file = file.map_err(io("list", &dir))?;
                let name = file.file_name();
                let seq = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".mkv"))
                    .and_then(|n| n.parse::<i64>().ok());
                let keep = seq.is_some_and(|seq| fragment_exists(stream_id, seq));
                if !keep {
                    let path = file.path();
                    fs::remove_file(&path).map_err(io("remove", &path))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
