//! Helpers shared by the tests.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use shard_log::{LogConfig, LogStore, NewRecord, ShardLog, StoredRecord};

/// A shard id shaped like the service's: stream directory, then shard.
pub(crate) const SHARD: &str = "stream-1/shardId-000000000000";

pub(crate) fn rec(key: &str, data: impl Into<Bytes>) -> NewRecord {
    NewRecord {
        partition_key: key.to_string(),
        data: data.into(),
    }
}

/// Deterministic data for record `i`, `len` bytes long.
pub(crate) fn payload(i: u64, len: usize) -> Bytes {
    let seed = i.to_le_bytes();
    (0..len)
        .map(|j| seed[j % 8].wrapping_add(j as u8))
        .collect::<Vec<u8>>()
        .into()
}

pub(crate) fn open(root: &Path, segment_bytes: u64) -> LogStore {
    LogStore::open(root, LogConfig { segment_bytes }).expect("open store")
}

pub(crate) fn shard_dir(root: &Path) -> PathBuf {
    root.join(SHARD)
}

/// Files in `dir` with this extension, in name (= sequence) order.
pub(crate) fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// The first sequence encoded in a segment or index file name.
pub(crate) fn base_of(path: &Path) -> u64 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("segment name")
}

pub(crate) fn read_all(log: &ShardLog) -> Vec<StoredRecord> {
    log.read(0, usize::MAX, usize::MAX).expect("read all")
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Appends `n` records with keys `k{i}` and `payload(i, len)`, one append per `batch`.
pub(crate) async fn fill(log: &ShardLog, first: u64, n: u64, len: usize, batch: u64) {
    let mut i = first;
    while i < first + n {
        let end = (i + batch).min(first + n);
        let records = (i..end)
            .map(|j| rec(&format!("k{j}"), payload(j, len)))
            .collect();
        let appended = log.append(records).await.expect("append");
        assert_eq!(appended.first().map(|a| a.sequence), Some(i));
        i = end;
    }
}

/// Checks that `records` are exactly those written by [`fill`] for `range`.
pub(crate) fn check_filled(records: &[StoredRecord], range: std::ops::Range<u64>, len: usize) {
    assert_eq!(
        records.len() as u64,
        range.end - range.start,
        "record count"
    );
    for (r, i) in records.iter().zip(range) {
        assert_eq!(r.sequence, i);
        assert_eq!(r.partition_key, format!("k{i}"));
        assert_eq!(r.data, payload(i, len), "data of record {i}");
    }
}
