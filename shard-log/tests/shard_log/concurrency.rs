//! Many concurrent appenders on several shards: order, contiguity, group commit.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use shard_log::ShardLog;

use crate::common::{open, read_all, rec};

const SHARDS: usize = 3;
const TASKS_PER_SHARD: usize = 24;
const APPENDS_PER_TASK: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_are_ordered_contiguous_and_batched() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), 256 << 10));
    let logs: Vec<Arc<ShardLog>> = (0..SHARDS)
        .map(|s| store.shard(&format!("stream/shard-{s}")).unwrap())
        .collect();

    let mut tasks = Vec::new();
    for (s, log) in logs.iter().enumerate() {
        for t in 0..TASKS_PER_SHARD {
            let log = Arc::clone(log);
            tasks.push(tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..APPENDS_PER_TASK {
                    // 1..=4 records per append, each naming its task and position.
                    let n = 1 + (t + i) % 4;
                    let records = (0..n)
                        .map(|j| rec(&format!("t{t}"), Bytes::from(format!("{s}/{t}/{i}/{j}"))))
                        .collect();
                    let appended = log.append(records).await.unwrap();
                    assert_eq!(appended.len(), n);
                    acks.push((t, i, appended));
                }
                (s, acks)
            }));
        }
    }

    let mut by_shard: Vec<HashMap<u64, String>> = vec![HashMap::new(); SHARDS];
    let mut appends = [0u64; SHARDS];
    for task in tasks {
        let (s, acks) = task.await.unwrap();
        let mut last_seq = None;
        for (t, i, appended) in acks {
            appends[s] += 1;
            for (j, a) in appended.iter().enumerate() {
                // One append's records are contiguous...
                assert_eq!(a.sequence, appended[0].sequence + j as u64);
                let expected = format!("{s}/{t}/{i}/{j}");
                assert!(
                    by_shard[s].insert(a.sequence, expected).is_none(),
                    "sequence reused"
                );
            }
            // ...and a task's appends are in its order.
            assert!(last_seq < Some(appended[0].sequence));
            last_seq = appended.last().map(|a| a.sequence);
        }
    }

    for (s, log) in logs.iter().enumerate() {
        let expected = &by_shard[s];
        let total = expected.len() as u64;
        // Dense 0..total: nothing skipped, nothing duplicated.
        assert_eq!(log.next_sequence(), total);
        let records = read_all(log);
        assert_eq!(records.len() as u64, total);
        let mut last_arrival = i64::MIN;
        for (k, r) in records.iter().enumerate() {
            assert_eq!(r.sequence, k as u64);
            assert_eq!(std::str::from_utf8(&r.data).unwrap(), expected[&r.sequence]);
            assert!(r.arrival_ms >= last_arrival, "arrival went backwards");
            last_arrival = r.arrival_ms;
        }
        let syncs = log.sync_count();
        println!("shard {s}: {} appends, {syncs} fdatasyncs", appends[s]);
        assert!(syncs >= 1);
        assert!(
            syncs * 2 <= appends[s],
            "group commit should cover several appends per sync: {syncs} syncs for {} appends",
            appends[s]
        );
    }
    let per_shard: u64 = logs.iter().map(|l| l.sync_count()).sum();
    assert_eq!(store.sync_count(), per_shard);
}
