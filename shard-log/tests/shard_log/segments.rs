//! Segment rolling, reads across segments, time search, retention and the `.idx` files.

use std::time::Duration;

use shard_log::StoredRecord;

use crate::common::{SHARD, base_of, check_filled, files, fill, open, read_all, rec, shard_dir};

/// Small segments so a few hundred records span many of them.
const SEGMENT: u64 = 4096;
const LEN: usize = 150;

#[tokio::test]
async fn segments_roll_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SEGMENT);
    let log = store.shard(SHARD).unwrap();
    fill(&log, 0, 300, LEN, 7).await;

    let logs = files(&shard_dir(dir.path()), "log");
    let idxs = files(&shard_dir(dir.path()), "idx");
    assert!(
        logs.len() > 5,
        "expected several segments, got {}",
        logs.len()
    );
    // Every segment but the active one is sealed: full, with an index.
    assert_eq!(idxs.len(), logs.len() - 1);
    for sealed in &logs[..logs.len() - 1] {
        assert!(std::fs::metadata(sealed).unwrap().len() >= SEGMENT);
    }
    // Names are the first sequence of each segment, increasing from 0.
    assert_eq!(base_of(&logs[0]), 0);
    let bases: Vec<u64> = logs.iter().map(|p| base_of(p)).collect();
    assert!(bases.windows(2).all(|w| w[0] < w[1]));
    for &b in &bases[1..] {
        assert_eq!(log.read(b, 1, usize::MAX).unwrap()[0].sequence, b);
    }

    check_filled(&read_all(&log), 0..300, LEN);
    // Every window, whatever segment boundaries it crosses.
    for from in (0..300).step_by(3) {
        let got = log.read(from, 11, usize::MAX).unwrap();
        let end = (from + 11).min(300);
        check_filled(&got, from..end, LEN);
    }
    // Byte limits across segments: 10 records' worth of data.
    let got = log.read(20, 1000, 10 * LEN).unwrap();
    check_filled(&got, 20..30, LEN);

    // Everything survives a reopen, and appends continue in the same segment scheme.
    drop(log);
    drop(store);
    let store = open(dir.path(), SEGMENT);
    let log = store.shard(SHARD).unwrap();
    assert_eq!(log.next_sequence(), 300);
    check_filled(&read_all(&log), 0..300, LEN);
    fill(&log, 300, 50, LEN, 5).await;
    check_filled(&read_all(&log), 0..350, LEN);
}

/// Appends in rounds a few milliseconds apart so that arrival times differ.
async fn timed_fill(log: &shard_log::ShardLog, rounds: u64, per_round: u64) {
    for round in 0..rounds {
        fill(log, round * per_round, per_round, LEN, per_round).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

fn first_at_or_after(records: &[StoredRecord], ms: i64, end: u64) -> u64 {
    records
        .iter()
        .find(|r| r.arrival_ms >= ms)
        .map_or(end, |r| r.sequence)
}

#[tokio::test]
async fn sequence_at_time_matches_a_linear_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SEGMENT);
    let log = store.shard(SHARD).unwrap();
    timed_fill(&log, 40, 6).await;
    let all = read_all(&log);
    let end = log.next_sequence();
    let mut times: Vec<i64> = all.iter().map(|r| r.arrival_ms).collect();
    times.dedup();
    assert!(times.len() > 10, "arrivals should differ between rounds");
    let check = |log: &shard_log::ShardLog| {
        for &t in &times {
            for ms in [t - 1, t, t + 1] {
                assert_eq!(
                    log.sequence_at_time(ms).unwrap(),
                    first_at_or_after(&all, ms, end),
                    "at {ms}"
                );
            }
        }
        assert_eq!(log.sequence_at_time(i64::MIN).unwrap(), 0);
        assert_eq!(log.sequence_at_time(i64::MAX).unwrap(), end);
    };
    check(&log);
    // The same answers from indexes loaded from `.idx` files.
    drop(log);
    drop(store);
    let store = open(dir.path(), SEGMENT);
    check(&store.shard(SHARD).unwrap());
}

#[tokio::test]
async fn trim_before_deletes_old_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let sdir = shard_dir(dir.path());
    let store = open(dir.path(), SEGMENT);
    let log = store.shard(SHARD).unwrap();
    timed_fill(&log, 30, 6).await;
    let all = read_all(&log);
    let end = log.next_sequence();

    // Nothing is older than the first record.
    assert_eq!(log.trim_before(all[0].arrival_ms).unwrap(), 0);
    assert_eq!(log.first_sequence(), 0);

    let dir_bytes = |d: &std::path::Path| -> u64 {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let cut = all[all.len() / 2].arrival_ms;
    let before = dir_bytes(&sdir);
    let freed = log.trim_before(cut).unwrap();
    assert!(freed > 0);
    assert_eq!(before - dir_bytes(&sdir), freed);

    // What is left starts at a segment boundary, holds every record arriving at or
    // after the cut, and no whole sealed segment older than it.
    let first = log.first_sequence();
    let bases: Vec<u64> = files(&sdir, "log").iter().map(|p| base_of(p)).collect();
    assert_eq!(bases[0], first);
    assert!(first <= first_at_or_after(&all, cut, end));
    if bases.len() > 1 {
        let first_segment_last = &all[bases[1] as usize - 1];
        assert!(first_segment_last.arrival_ms >= cut);
    }
    let rest = read_all(&log);
    assert_eq!(rest.first().map(|r| r.sequence), Some(first));
    check_filled(&rest, first..end, LEN);
    assert_eq!(log.read(0, 1, usize::MAX).unwrap()[0].sequence, first);
    assert_eq!(log.sequence_at_time(i64::MIN).unwrap(), first);

    // Once every record has expired, the active segment is sealed and deleted too: an
    // empty active segment is left and the sequence goes on.
    log.trim_before(i64::MAX).unwrap();
    assert_eq!(files(&sdir, "log").len(), 1);
    assert_eq!(files(&sdir, "idx").len(), 0);
    assert_eq!(base_of(&files(&sdir, "log")[0]), end);
    assert!(read_all(&log).is_empty());
    assert_eq!(log.first_sequence(), end);
    assert_eq!(log.next_sequence(), end);
    // An empty active segment is not rolled again.
    log.trim_before(i64::MAX).unwrap();
    assert_eq!(files(&sdir, "log").len(), 1);
    let a = log.append(vec![rec("k", "after")]).await.unwrap();
    assert_eq!(a[0].sequence, end);

    drop(log);
    drop(store);
    let store = open(dir.path(), SEGMENT);
    let log = store.shard(SHARD).unwrap();
    assert_eq!(log.next_sequence(), end + 1);
    assert_eq!(read_all(&log).last().unwrap().data, "after");
}

#[tokio::test]
async fn missing_or_damaged_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let sdir = shard_dir(dir.path());
    let store = open(dir.path(), SEGMENT);
    let log = store.shard(SHARD).unwrap();
    timed_fill(&log, 20, 10).await;
    let all = read_all(&log);
    let end = log.next_sequence();
    let times: Vec<i64> = all.iter().map(|r| r.arrival_ms).collect();
    let answers: Vec<u64> = times
        .iter()
        .map(|&t| log.sequence_at_time(t).unwrap())
        .collect();
    drop(log);
    drop(store);

    let idxs = files(&sdir, "idx");
    assert!(idxs.len() >= 5);
    let originals: Vec<Vec<u8>> = idxs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    std::fs::remove_file(&idxs[0]).unwrap();
    let mut flipped = originals[1].clone();
    flipped[20] ^= 0x40;
    std::fs::write(&idxs[1], flipped).unwrap();
    std::fs::write(&idxs[2], &originals[2][..originals[2].len() / 2]).unwrap();
    std::fs::write(&idxs[3], &originals[4]).unwrap(); // another segment's index
    std::fs::write(&idxs[4], b"").unwrap();

    let store = open(dir.path(), SEGMENT);
    let log = store.shard(SHARD).unwrap();
    assert_eq!(log.next_sequence(), end);
    check_filled(&read_all(&log), 0..end, LEN);
    for (t, &answer) in times.iter().zip(&answers) {
        assert_eq!(log.sequence_at_time(*t).unwrap(), answer);
    }
    // Rebuilt byte for byte.
    for (p, original) in idxs.iter().zip(&originals) {
        assert_eq!(&std::fs::read(p).unwrap(), original, "{}", p.display());
    }
}
