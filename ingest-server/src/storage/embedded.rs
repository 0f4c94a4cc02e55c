//! The embedded default store: fragment files plus the SQLite index, under one data
//! directory, with no external service.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{OptionalExtension, params};

use super::files::FragmentFiles;
use super::index::{
    self, FRAGMENT_COLUMNS, Index, STREAM_COLUMNS, fragment_from_row, stream_from_row,
};
use super::{
    FragmentQuery, FragmentRecord, NewFragment, NewStream, StoreError, StreamKey, StreamRecord,
    StreamUpdate, TimestampKind, VideoStore,
};

/// Fragment sequences reserved per index write: numbers are handed out from memory
/// and the index only records the end of the reserved block, so a crash skips at most
/// the rest of a block and never reuses a number.
const SEQ_BLOCK: i64 = 1024;

/// Files under `DIR/media`, index at `DIR/index.sqlite3`.
pub struct EmbeddedStore {
    files: FragmentFiles,
    index: Index,
    /// Per stream: (next sequence to hand out, end of the reserved block).
    seq_blocks: Mutex<HashMap<i64, (i64, i64)>>,
}

fn new_version() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

impl EmbeddedStore {
    /// Opens the store in `data_dir`, then removes media files the index does not know
    /// (writes a crash interrupted before their index row was committed).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let files = FragmentFiles::open(data_dir.join("media"))?;
        let index = Index::open(&data_dir.join("index.sqlite3"))?;
        let store = Self {
            files,
            index,
            seq_blocks: Mutex::new(HashMap::new()),
        };
        store.reconcile()?;
        Ok(store)
    }

    fn reconcile(&self) -> Result<(), StoreError> {
        let known: std::collections::HashMap<i64, std::collections::HashSet<i64>> =
            self.index.read(|conn| {
                let mut map: std::collections::HashMap<i64, std::collections::HashSet<i64>> = conn
                    .prepare("SELECT id FROM streams")?
                    .query_map([], |r| r.get::<_, i64>(0))?
                    .map(|id| id.map(|id| (id, Default::default())))
                    .collect::<Result<_, _>>()?;
                let mut stmt = conn.prepare("SELECT stream_id, seq FROM fragments")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
                for row in rows {
                    let (stream, seq) = row?;
                    map.entry(stream).or_default().insert(seq);
                }
                Ok(map)
            })?;
        let removed = self.files.reconcile(
            |stream| known.contains_key(&stream),
            |stream, seq| known.get(&stream).is_some_and(|s| s.contains(&seq)),
        )?;
        if removed > 0 {
            tracing::info!(
                removed,
                "Removed media files that no committed index row refers to."
            );
        }
        Ok(())
    }
}

impl VideoStore for EmbeddedStore {
    fn create_stream(&self, new: NewStream) -> Result<StreamRecord, StoreError> {
        self.index.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row("SELECT id FROM streams WHERE name = ?1", [&new.name], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists(new.name));
            }
            let arn = format!("{}:stream/{}/{}", new.arn_prefix, new.name, new.now_ms);
            let tags = serde_json::to_string(&new.tags).unwrap_or_else(|_| "{}".into());
            conn.execute(
                "INSERT INTO streams (name, arn, device_name, media_type, kms_key_id, version, creation_time_ms, retention_hours, tags) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![new.name, arn, new.device_name, new.media_type, new.kms_key_id, new_version(), new.now_ms, new.retention_hours, tags],
            )?;
            let id = conn.last_insert_rowid();
            Ok(conn.query_row(&format!("SELECT {STREAM_COLUMNS} FROM streams WHERE id = ?1"), [id], stream_from_row)?)
        })
    }

    fn stream(&self, key: StreamKey<'_>) -> Result<Option<StreamRecord>, StoreError> {
        let (col, value) = match key {
            StreamKey::Name(n) => ("name", n),
            StreamKey::Arn(a) => ("arn", a),
        };
        self.index.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {STREAM_COLUMNS} FROM streams WHERE {col} = ?1"
                ))?
                .query_row([value], stream_from_row)
                .optional()?)
        })
    }

    fn list_streams(
        &self,
        prefix: Option<&str>,
        after_name: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamRecord>, StoreError> {
        self.index.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {STREAM_COLUMNS} FROM streams WHERE name > ?1 AND substr(name, 1, length(?2)) = ?2 \
                 ORDER BY name LIMIT ?3"
            ))?;
            let rows = stmt.query_map(
                params![after_name.unwrap_or(""), prefix.unwrap_or(""), limit as i64],
                stream_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn update_stream(
        &self,
        id: i64,
        expected_version: &str,
        update: StreamUpdate,
    ) -> Result<StreamRecord, StoreError> {
        let expected = expected_version.to_owned();
        self.index.write(move |conn| {
            let current: Option<String> = conn
                .query_row("SELECT version FROM streams WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            let current = current.ok_or(StoreError::NotFound)?;
            if current != expected {
                return Err(StoreError::VersionMismatch { current });
            }
            conn.execute(
                "UPDATE streams SET device_name = coalesce(?2, device_name), media_type = coalesce(?3, media_type), \
                 retention_hours = coalesce(?4, retention_hours), version = ?5 WHERE id = ?1",
                params![id, update.device_name, update.media_type, update.retention_hours, new_version()],
            )?;
            Ok(conn.query_row(&format!("SELECT {STREAM_COLUMNS} FROM streams WHERE id = ?1"), [id], stream_from_row)?)
        })
    }

    fn modify_stream_tags(
        &self,
        id: i64,
        add: BTreeMap<String, String>,
        remove: Vec<String>,
        max: usize,
    ) -> Result<(), StoreError> {
        // Read, change and write in one transaction, so concurrent tag calls never lose
        // each other's changes.
        self.index.write(move |conn| {
            let current: Option<String> = conn
                .query_row("SELECT tags FROM streams WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            let current = current.ok_or(StoreError::NotFound)?;
            let mut tags: BTreeMap<String, String> =
                serde_json::from_str(&current).unwrap_or_default();
            tags.extend(add);
            for key in &remove {
                tags.remove(key);
            }
            if tags.len() > max {
                return Err(StoreError::TooManyTags {
                    count: tags.len(),
                    max,
                });
            }
            let json = serde_json::to_string(&tags).unwrap_or_else(|_| "{}".into());
            conn.execute(
                "UPDATE streams SET tags = ?2 WHERE id = ?1",
                params![id, json],
            )?;
            Ok(())
        })
    }

    fn delete_stream(&self, id: i64, expected_version: Option<&str>) -> Result<(), StoreError> {
        let expected = expected_version.map(str::to_owned);
        self.index.write(move |conn| {
            let current: Option<String> = conn
                .query_row("SELECT version FROM streams WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            let current = current.ok_or(StoreError::NotFound)?;
            if expected.is_some_and(|e| e != current) {
                return Err(StoreError::VersionMismatch { current });
            }
            conn.execute("DELETE FROM fragments WHERE stream_id = ?1", [id])?;
            conn.execute("DELETE FROM streams WHERE id = ?1", [id])?;
            Ok(())
        })?;
        self.seq_blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        // Rows first, files second: a crash in between leaves files that reconcile removes.
        self.files.remove_stream(id)
    }

    fn allocate_fragment_seq(&self, stream_id: i64) -> Result<i64, StoreError> {
        let mut blocks = self.seq_blocks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((next, end)) = blocks.get_mut(&stream_id)
            && *next < *end
        {
            *next += 1;
            return Ok(*next - 1);
        }
        let start: i64 = self.index.write(move |conn| {
            let start: Option<i64> = conn
                .query_row(
                    "UPDATE streams SET next_seq = next_seq + ?2 WHERE id = ?1 RETURNING next_seq - ?2",
                    params![stream_id, SEQ_BLOCK],
                    |r| r.get(0),
                )
                .optional()?;
            start.ok_or(StoreError::NotFound)
        })?;
        blocks.insert(stream_id, (start + 1, start + SEQ_BLOCK));
        Ok(start)
    }

    fn find_duplicate(
        &self,
        stream_id: i64,
        producer_ts_ms: i64,
        content_hash: &[u8; 32],
    ) -> Result<Option<FragmentRecord>, StoreError> {
        self.index.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {FRAGMENT_COLUMNS} FROM fragments WHERE stream_id = ?1 AND producer_ts_ms = ?2 \
                     AND content_hash = ?3 ORDER BY seq LIMIT 1"
                ))?
                .query_row(params![stream_id, producer_ts_ms, &content_hash[..]], fragment_from_row)
                .optional()?)
        })
    }

    fn put_fragment(&self, fragment: NewFragment) -> Result<FragmentRecord, StoreError> {
        self.files
            .write(fragment.stream_id, fragment.seq, &fragment.media)?;
        let record = FragmentRecord {
            stream_id: fragment.stream_id,
            seq: fragment.seq,
            producer_ts_ms: fragment.producer_ts_ms,
            server_ts_ms: fragment.server_ts_ms,
            duration_ms: fragment.duration_ms,
            size_bytes: fragment.size_bytes,
            tracks_json: fragment.tracks_json,
            user_tags: fragment.user_tags,
        };
        let row = record.clone();
        let hash = fragment.content_hash;
        let result = self.index.write(move |conn| {
            let tags = serde_json::to_string(&row.user_tags).unwrap_or_else(|_| "[]".into());
            let inserted = conn.execute(
                "INSERT INTO fragments (stream_id, seq, producer_ts_ms, server_ts_ms, duration_ms, size_bytes, content_hash, tracks, user_tags) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM streams WHERE id = ?1)",
                params![row.stream_id, row.seq, row.producer_ts_ms, row.server_ts_ms, row.duration_ms, row.size_bytes, &hash[..], row.tracks_json, tags],
            )?;
            if inserted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        });
        if let Err(err) = result {
            // Not indexed, so never served: remove the file now rather than at next start.
            let _ = self.files.remove(record.stream_id, &[record.seq]);
            return Err(err);
        }
        Ok(record)
    }

    fn fragment(&self, stream_id: i64, seq: i64) -> Result<Option<FragmentRecord>, StoreError> {
        self.index.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {FRAGMENT_COLUMNS} FROM fragments WHERE stream_id = ?1 AND seq = ?2"
                ))?
                .query_row(params![stream_id, seq], fragment_from_row)
                .optional()?)
        })
    }

    fn fragments_after(
        &self,
        stream_id: i64,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<FragmentRecord>, StoreError> {
        let query = FragmentQuery {
            range: None,
            after_seq: Some(after_seq),
            limit,
        };
        self.list_fragments(stream_id, &query)
    }

    fn seek(
        &self,
        stream_id: i64,
        kind: TimestampKind,
        ts_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.index
            .read(|conn| index::seek(conn, stream_id, kind, ts_ms))
    }

    fn latest_seq(&self, stream_id: i64) -> Result<Option<i64>, StoreError> {
        self.index.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT max(seq) FROM fragments WHERE stream_id = ?1")?
                .query_row([stream_id], |r| r.get(0))?)
        })
    }

    fn list_fragments(
        &self,
        stream_id: i64,
        query: &FragmentQuery,
    ) -> Result<Vec<FragmentRecord>, StoreError> {
        self.index
            .read(|conn| index::list_fragments(conn, stream_id, query))
    }

    fn read_fragment_media(&self, fragment: &FragmentRecord) -> Result<Vec<u8>, StoreError> {
        self.files.read(fragment.stream_id, fragment.seq)
    }

    fn expire(&self, now_ms: i64) -> Result<usize, StoreError> {
        let expired: Vec<(i64, i64)> = self.index.write(move |conn| {
            let mut stmt = conn.prepare(
                "DELETE FROM fragments WHERE (stream_id, seq) IN ( \
                   SELECT f.stream_id, f.seq FROM fragments f JOIN streams s ON s.id = f.stream_id \
                   WHERE f.server_ts_ms < ?1 - s.retention_hours * 3600000) RETURNING stream_id, seq",
            )?;
            let rows = stmt.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        for (stream_id, seq) in &expired {
            self.files.remove(*stream_id, &[*seq])?;
        }
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_stream(name: &str, retention_hours: i64) -> NewStream {
        NewStream {
            name: name.into(),
            device_name: None,
            media_type: Some("video/h264".into()),
            kms_key_id: None,
            retention_hours,
            tags: BTreeMap::new(),
            arn_prefix: "arn:aws:kinesisvideo:us-west-2:000000000000".into(),
            now_ms: 1_700_000_000_000,
        }
    }

    fn fragment(stream_id: i64, seq: i64, ts: i64) -> NewFragment {
        NewFragment {
            stream_id,
            seq,
            producer_ts_ms: ts,
            server_ts_ms: ts + 5,
            duration_ms: 2000,
            size_bytes: 3,
            content_hash: [seq as u8; 32],
            tracks_json: "[]".into(),
            user_tags: vec![("k".into(), "v".into())],
            media: vec![1, 2, seq as u8],
        }
    }

    #[test]
    fn fragments_survive_reopen_and_orphans_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let stream_id;
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let s = store.create_stream(new_stream("cam", 24)).unwrap();
            stream_id = s.id;
            for ts in [1000, 3000, 5000] {
                let seq = store.allocate_fragment_seq(s.id).unwrap();
                store.put_fragment(fragment(s.id, seq, ts)).unwrap();
            }
            // A file written but never indexed, as a crash between the steps leaves it.
            store.files.write(s.id, 99, b"torn").unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let all = store.fragments_after(stream_id, 0, 100).unwrap();
        assert_eq!(all.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(store.read_fragment_media(&all[2]).unwrap(), vec![1, 2, 3]);
        assert!(
            !dir.path()
                .join(format!("media/{stream_id}/99.mkv"))
                .exists()
        );
        assert_eq!(all[0].user_tags, vec![("k".to_string(), "v".to_string())]);
        // Sequences keep increasing after a restart: the rest of the reserved block is skipped.
        assert_eq!(
            store.allocate_fragment_seq(stream_id).unwrap(),
            1 + SEQ_BLOCK
        );
    }

    #[test]
    fn seek_finds_the_containing_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s = store.create_stream(new_stream("cam", 24)).unwrap();
        for ts in [1000, 3000, 5000] {
            let seq = store.allocate_fragment_seq(s.id).unwrap();
            store.put_fragment(fragment(s.id, seq, ts)).unwrap();
        }
        assert_eq!(
            store.seek(s.id, TimestampKind::Producer, 3500).unwrap(),
            Some(2)
        );
        assert_eq!(
            store.seek(s.id, TimestampKind::Producer, 0).unwrap(),
            Some(1)
        );
        assert_eq!(
            store.seek(s.id, TimestampKind::Producer, 9000).unwrap(),
            None
        );
        assert_eq!(
            store.seek(s.id, TimestampKind::Server, 5004).unwrap(),
            Some(2)
        );
        let dup = store.find_duplicate(s.id, 3000, &[2; 32]).unwrap();
        assert_eq!(dup.map(|f| f.seq), Some(2));
        assert!(
            store
                .find_duplicate(s.id, 3000, &[9; 32])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn versions_guard_updates_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s = store.create_stream(new_stream("cam", 1)).unwrap();
        assert!(matches!(
            store.create_stream(new_stream("cam", 1)),
            Err(StoreError::AlreadyExists(_))
        ));
        let err = store
            .update_stream(s.id, "stale", StreamUpdate::default())
            .unwrap_err();
        assert!(matches!(err, StoreError::VersionMismatch { .. }));
        let updated = store
            .update_stream(
                s.id,
                &s.version,
                StreamUpdate {
                    retention_hours: Some(5),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(updated.retention_hours, 5);
        assert_ne!(updated.version, s.version);
        let seq = store.allocate_fragment_seq(s.id).unwrap();
        store.put_fragment(fragment(s.id, seq, 1)).unwrap();
        store.delete_stream(s.id, Some(&updated.version)).unwrap();
        assert!(store.stream(StreamKey::Name("cam")).unwrap().is_none());
        assert!(!dir.path().join(format!("media/{}", s.id)).exists());
        // A fragment for a deleted stream is refused and leaves no file.
        assert!(matches!(
            store.put_fragment(fragment(s.id, 2, 1)),
            Err(StoreError::NotFound)
        ));
        assert!(!dir.path().join(format!("media/{}/2.mkv", s.id)).exists());
    }

    #[test]
    fn tag_changes_merge_atomically_and_respect_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let s = store.create_stream(new_stream("cam", 1)).unwrap();
        // Concurrent single-tag additions: none may be lost.
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = std::sync::Arc::clone(&store);
                std::thread::spawn(move || {
                    let add = BTreeMap::from([(format!("k{i}"), "v".to_string())]);
                    store.modify_stream_tags(s.id, add, Vec::new(), 50).unwrap();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let tags = store.stream(StreamKey::Name("cam")).unwrap().unwrap().tags;
        assert_eq!(tags.len(), 8, "{tags:?}");
        store
            .modify_stream_tags(s.id, BTreeMap::new(), vec!["k0".into()], 50)
            .unwrap();
        let too_many: BTreeMap<_, _> = (0..3).map(|i| (format!("n{i}"), String::new())).collect();
        let err = store
            .modify_stream_tags(s.id, too_many, Vec::new(), 9)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TooManyTags { count: 10, max: 9 }),
            "{err}"
        );
        let tags = store.stream(StreamKey::Name("cam")).unwrap().unwrap().tags;
        assert_eq!(
            tags.len(),
            7,
            "a refused change leaves the tags as they were"
        );
    }

    #[test]
    fn retention_expires_old_fragments() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let s = store.create_stream(new_stream("cam", 1)).unwrap();
        for ts in [0, 3_600_000] {
            let seq = store.allocate_fragment_seq(s.id).unwrap();
            store.put_fragment(fragment(s.id, seq, ts)).unwrap();
        }
        // server_ts = ts + 5; at now = 1h + 10ms only the first is older than 1 h.
        assert_eq!(store.expire(3_600_010).unwrap(), 1);
        let left = store.fragments_after(s.id, 0, 10).unwrap();
        assert_eq!(left.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![2]);
        assert!(!dir.path().join(format!("media/{}/1.mkv", s.id)).exists());
    }
}
