//! The API on a single shard: round trip, limits, watch, ids, removal.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{SHARD, open, payload, read_all, rec};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test]
async fn append_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 64 << 20);
    let log = store.shard(SHARD).unwrap();
    assert_eq!(log.next_sequence(), 0);
    assert_eq!(log.first_sequence(), 0);
    assert_eq!(log.last_arrival_ms(), None);
    assert!(log.read(0, 10, 1 << 20).unwrap().is_empty());
    assert_eq!(log.sequence_at_time(0).unwrap(), 0);

    let before = now_ms();
    let a = log
        .append(vec![
            rec("a", "one"),
            rec("b", ""),
            rec("ключ", payload(3, 5000)),
        ])
        .await
        .unwrap();
    let after = now_ms();
    assert_eq!(a.iter().map(|a| a.sequence).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(a.iter().all(|x| (before..=after).contains(&x.arrival_ms)));
    let b = log.append(vec![rec("c", "four")]).await.unwrap();
    assert_eq!(b[0].sequence, 3);
    assert!(b[0].arrival_ms >= a[2].arrival_ms);

    let all = read_all(&log);
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].partition_key, "a");
    assert_eq!(all[0].data, "one");
    assert_eq!(all[1].data, "");
    assert_eq!(all[2].partition_key, "ключ");
    assert_eq!(all[2].data, payload(3, 5000));
    assert_eq!(all[3].arrival_ms, b[0].arrival_ms);
    assert_eq!(log.next_sequence(), 4);
    assert_eq!(log.last_arrival_ms(), Some(b[0].arrival_ms));

    // Windows and limits.
    assert_eq!(log.read(2, 10, usize::MAX).unwrap().len(), 2);
    assert_eq!(log.read(1, 1, usize::MAX).unwrap()[0].sequence, 1);
    assert!(log.read(4, 10, usize::MAX).unwrap().is_empty());
    assert!(log.read(1_000, 10, usize::MAX).unwrap().is_empty());
    assert!(log.read(0, 0, usize::MAX).unwrap().is_empty());
    // At least one record even when it alone exceeds max_bytes.
    assert_eq!(log.read(2, 10, 1).unwrap().len(), 1);
    // "one" (3) + "" (0) fit in 3 bytes; the 5000-byte record does not.
    assert_eq!(log.read(0, 10, 3).unwrap().len(), 2);
    assert_eq!(log.read(0, 10, 5003).unwrap().len(), 3);

    // Appending nothing is a no-op that does not sync.
    let syncs = log.sync_count();
    assert!(log.append(Vec::new()).await.unwrap().is_empty());
    assert_eq!(log.sync_count(), syncs);
    assert_eq!(store.sync_count(), syncs);
}

#[tokio::test]
async fn sequential_reads_follow_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    let log = store.shard(SHARD).unwrap();
    let mut next = 0;
    for round in 0..50u64 {
        let records = (0..7)
            .map(|i| rec("k", payload(round * 7 + i, 3000)))
            .collect();
        log.append(records).await.unwrap();
        // A tailing consumer: reads in small pieces right behind the writer.
        loop {
            let got = log.read(next, 3, 8000).unwrap();
            if got.is_empty() {
                break;
            }
            for r in &got {
                assert_eq!(r.sequence, next);
                assert_eq!(r.data, payload(next, 3000));
                next += 1;
            }
        }
        assert_eq!(next, log.next_sequence());
    }
}

#[tokio::test]
async fn watch_reports_the_durable_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 64 << 20);
    let log = store.shard(SHARD).unwrap();
    let mut rx = log.watch();
    assert_eq!(*rx.borrow_and_update(), 0);
    let writer = Arc::clone(&log);
    let task = tokio::spawn(async move { writer.append(vec![rec("k", "x"), rec("k", "y")]).await });
    rx.changed().await.unwrap();
    let end = *rx.borrow_and_update();
    assert_eq!(end, 2);
    // Whatever the watch announces is readable.
    assert_eq!(log.read(0, 10, usize::MAX).unwrap().len(), 2);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn ids_and_handles() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 64 << 20);
    let a = store.shard("s/a").unwrap();
    let a2 = store.shard("s/a").unwrap();
    assert!(Arc::ptr_eq(&a, &a2));
    let b = store.shard("s/b").unwrap();
    assert!(!Arc::ptr_eq(&a, &b));
    for bad in ["", "../x", "s//a", "/abs", "s/a b", "s/ä"] {
        let e = store.shard(bad).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
    }
    a.append(vec![rec("k", "v")]).await.unwrap();
    assert_eq!(b.next_sequence(), 0);

    let huge_key = "k".repeat(70_000);
    let e = a.append(vec![rec(&huge_key, "v")]).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let huge_data = vec![0u8; shard_log::MAX_DATA_BYTES + 1];
    let e = a.append(vec![rec("k", huge_data)]).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(a.next_sequence(), 1);

    // A closed log reopens with its data.
    drop((a, a2));
    let a = store.shard("s/a").unwrap();
    assert_eq!(a.next_sequence(), 1);
}

#[tokio::test]
async fn remove_deletes_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 64 << 20);
    let s1a = store.shard("s1/a").unwrap();
    let s1b = store.shard("s1/b").unwrap();
    let s10 = store.shard("s10/a").unwrap();
    for log in [&s1a, &s1b, &s10] {
        log.append(vec![rec("k", "v")]).await.unwrap();
    }
    store.remove("s1").unwrap();
    assert!(!dir.path().join("s1").exists());
    assert!(
        dir.path().join("s10/a").exists(),
        "prefix is by path component"
    );
    for log in [&s1a, &s1b] {
        let e = log.append(vec![rec("k", "v")]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("removed"), "{e}");
        assert!(log.read(0, 10, 100).is_err());
    }
    s10.append(vec![rec("k", "v")]).await.unwrap();
    assert_eq!(read_all(&s10).len(), 2);

    // The id can be used again: a new, empty log.
    let again = store.shard("s1/a").unwrap();
    assert!(!Arc::ptr_eq(&again, &s1a));
    assert_eq!(again.next_sequence(), 0);
    again.append(vec![rec("k", "v")]).await.unwrap();
    assert_eq!(read_all(&again).len(), 1);

    // Removing what does not exist is fine; a single shard can be removed too.
    store.remove("nothing/here").unwrap();
    store.remove("s10/a").unwrap();
    assert!(!dir.path().join("s10/a").exists());
}

#[tokio::test]
async fn a_shard_is_written_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), 64 << 20);
    let log = first.shard(SHARD).unwrap();
    log.append(vec![rec("k", "v")]).await.unwrap();
    let second = open(dir.path(), 64 << 20);
    let e = second.shard(SHARD).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert!(e.to_string().contains("LOCK"), "{e}");
    // Other shards are independent; once the first handle is gone the shard opens.
    second.shard("other/shard").unwrap();
    drop(log);
    drop(first);
    let log = second.shard(SHARD).unwrap();
    assert_eq!(log.next_sequence(), 1);
}

#[tokio::test]
async fn a_failed_write_refuses_appends_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1024);
    let log = store.shard(SHARD).unwrap();
    // Directories where the next segment files would go make the segment roll fail,
    // which takes the same path as a failed write or fdatasync.
    let sdir = crate::common::shard_dir(dir.path());
    for base in 1..40 {
        std::fs::create_dir(sdir.join(format!("{base:020}.log"))).unwrap();
    }
    let mut acked = 0u64;
    let error = loop {
        match log.append(vec![rec("k", payload(acked, 100))]).await {
            Ok(a) => {
                assert_eq!(a[0].sequence, acked);
                acked += 1;
                assert!(acked < 40, "the roll never happened");
            }
            Err(e) => break e,
        }
    };
    assert!(acked > 1);
    let message = error.to_string();
    assert!(message.contains(&format!("{acked:020}.log")), "{message}");
    assert!(message.contains("refuses appends"), "{message}");
    // Sticky: later appends fail too, without touching the disk.
    let syncs = log.sync_count();
    assert!(log.append(vec![rec("k", "x")]).await.is_err());
    assert_eq!(log.sync_count(), syncs);
    // What was acknowledged stays readable.
    assert_eq!(read_all(&log).len() as u64, acked);
    assert_eq!(log.next_sequence(), acked);

    // Reopening recovers from disk and the sequence goes on.
    for base in 1..40 {
        std::fs::remove_dir(sdir.join(format!("{base:020}.log"))).unwrap();
    }
    let reopened = store.shard(SHARD).unwrap();
    assert!(!Arc::ptr_eq(&reopened, &log));
    assert_eq!(reopened.next_sequence(), acked);
    let a = reopened.append(vec![rec("k", "again")]).await.unwrap();
    assert_eq!(a[0].sequence, acked);
    let all = read_all(&reopened);
    assert_eq!(all.len() as u64, acked + 1);
    for r in &all[..acked as usize] {
        assert_eq!(r.data, payload(r.sequence, 100));
    }
}

#[test]
fn handles_are_shareable_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<shard_log::LogStore>();
    send_sync::<shard_log::ShardLog>();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 64 << 20);
    let log = store.shard(SHARD).unwrap();
    send(&log.append(Vec::new()));
}
