//! The spool directory: one record file per fragment, named by its queue id so that a directory
//! listing gives the send order. Files are written once, synced, and deleted when the server
//! has persisted the fragment (or when the spool is over its bound).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::record::{self, Record};

const EXTENSION: &str = "frag";

/// A record found at startup.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) id: u64,
    pub(crate) timecode_ms: u64,
    pub(crate) header: Vec<u8>,
    pub(crate) len: usize,
}

/// The `fragments/` directory of the spool.
#[derive(Debug, Clone)]
pub(crate) struct DiskSpool {
    dir: PathBuf,
}

impl DiskSpool {
    /// Opens (creating) `spool_dir/fragments`.
    pub(crate) fn open(spool_dir: &Path) -> io::Result<Self> {
        let dir = spool_dir.join("fragments");
        fs::create_dir_all(&dir)?;
        Ok(DiskSpool { dir })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.{EXTENSION}"))
    }

    /// Writes a record and makes it durable (file data, then the directory entry). Returns the
    /// bytes written.
    pub(crate) fn write(
        &self,
        id: u64,
        timecode_ms: u64,
        header: &[u8],
        data: &[u8],
    ) -> io::Result<usize> {
        let path = self.path(id);
        let mut file = File::create(&path)?;
        let prefix = record::encode_prefix(timecode_ms, header, data);
        let result = (|| {
            file.write_all(&prefix)?;
            file.write_all(header)?;
            file.write_all(data)?;
            file.sync_data()?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = result {
            // A half-written record would be discarded at startup anyway; do not leave it.
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(prefix.len() + header.len() + data.len())
    }

    /// Reads and verifies a record.
    pub(crate) fn read(&self, id: u64) -> io::Result<Record> {
        let bytes = fs::read(self.path(id))?;
        record::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Deletes a record; a record already gone is fine.
    pub(crate) fn remove(&self, id: u64) {
        match fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!(id, error = %e, "could not delete a spool record"),
        }
    }

    /// Lists the valid records in id order. Torn or foreign files are deleted and logged: they
    /// are what a crash mid-write leaves, and sending them would upload garbage.
    pub(crate) fn scan(&self) -> io::Result<Vec<Found>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|_| path.extension().is_some_and(|e| e == EXTENSION));
            let Some(id) = id else {
                warn!(path = %path.display(), "ignoring a file that is not a spool record");
                continue;
            };
            let bytes = fs::read(&path)?;
            match record::decode(&bytes) {
                Ok(rec) => found.push(Found {
                    id,
                    timecode_ms: rec.timecode_ms,
                    len: rec.data.len(),
                    header: rec.header,
                }),
                Err(e) => {
                    warn!(
                        path = %path.display(),
                        error = %e,
                        "discarding a torn spool record (crash while it was written); it will not be sent"
                    );
                    fs::remove_file(&path)?;
                }
            }
        }
        found.sort_by_key(|f| f.id);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_scan_read_remove_and_torn_files() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskSpool::open(dir.path()).unwrap();
        disk.write(2, 2_000, b"h", b"second").unwrap();
        disk.write(1, 1_000, b"h", b"first").unwrap();
        disk.write(3, 3_000, b"h", b"third").unwrap();
        // Tear the last one, and drop a garbage file with a record name.
        let torn = disk.path(3);
        let len = fs::metadata(&torn).unwrap().len();
        File::options()
            .write(true)
            .open(&torn)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        fs::write(disk.path(9), b"garbage").unwrap();

        let found = disk.scan().unwrap();
        let ids: Vec<_> = found.iter().map(|f| (f.id, f.timecode_ms)).collect();
        assert_eq!(ids, [(1, 1_000), (2, 2_000)]);
        assert!(!torn.exists() && !disk.path(9).exists());
        assert_eq!(disk.read(2).unwrap().data, b"second");
        disk.remove(2);
        disk.remove(2);
        assert_eq!(disk.scan().unwrap().len(), 1);
    }
}
