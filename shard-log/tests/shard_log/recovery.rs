//! Reopening: after a clean close, after a torn write, after garbage at the tail.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::{
    SHARD, base_of, block_on, check_filled, files, fill, open, payload, read_all, rec, shard_dir,
};

const LEN: usize = 100;

#[tokio::test]
async fn reopen_after_clean_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let last_arrival = {
        let store = open(dir.path(), 64 << 20);
        let log = store.shard(SHARD).unwrap();
        fill(&log, 0, 10, LEN, 3).await;
        log.last_arrival_ms()
    };
    let store = open(dir.path(), 64 << 20);
    let log = store.shard(SHARD).unwrap();
    assert_eq!(log.next_sequence(), 10);
    assert_eq!(log.last_arrival_ms(), last_arrival);
    check_filled(&read_all(&log), 0..10, LEN);
    let a = log
        .append(vec![rec("k10", payload(10, LEN))])
        .await
        .unwrap();
    assert_eq!(a[0].sequence, 10);
    assert!(Some(a[0].arrival_ms) >= last_arrival);
    check_filled(&read_all(&log), 0..11, LEN);
}

/// A shard with `n` records; returns the segment holding the last one, which is the
/// active segment, and its length before that record was appended.
fn make_shard(root: &Path, n: u64, segment_bytes: u64) -> (PathBuf, u64) {
    block_on(async {
        let store = open(root, segment_bytes);
        let log = store.shard(SHARD).unwrap();
        fill(&log, 0, n - 1, LEN, 4).await;
        let sizes: Vec<(PathBuf, u64)> = files(&shard_dir(root), "log")
            .into_iter()
            .map(|p| {
                let len = std::fs::metadata(&p).unwrap().len();
                (p, len)
            })
            .collect();
        fill(&log, n - 1, 1, LEN, 1).await;
        let mut logs = files(&shard_dir(root), "log");
        if base_of(logs.last().unwrap()) == n {
            // The append filled the segment and a new one was started: take that back,
            // as if the process died between the write and the roll.
            std::fs::remove_file(logs.pop().unwrap()).unwrap();
        }
        let active = logs.pop().unwrap();
        let before = sizes
            .iter()
            .find(|(p, _)| *p == active)
            .map_or(0, |(_, len)| *len);
        (active, before)
    })
}

/// Opens the shard under `root` and checks it holds exactly records `0..n`, then that
/// appending continues at `n` and survives another reopen.
fn check_recovered(root: &Path, n: u64) {
    block_on(async {
        let store = open(root, 2048);
        let log = store.shard(SHARD).unwrap();
        assert_eq!(log.next_sequence(), n);
        check_filled(&read_all(&log), 0..n, LEN);
        let a = log
            .append(vec![rec(&format!("k{n}"), payload(n, LEN))])
            .await
            .unwrap();
        assert_eq!(a[0].sequence, n);
        drop(log);
        drop(store);
        let store = open(root, 2048);
        check_filled(&read_all(&store.shard(SHARD).unwrap()), 0..n + 1, LEN);
    });
}

/// Copies the shard directory of `from` to a fresh root.
fn copy_root(from: &Path, to: &Path) {
    let src = shard_dir(from);
    let dst = shard_dir(to);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
}

#[test]
fn torn_last_record_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    // Small segments: the torn segment is not the first one.
    let (active, before) = make_shard(&template, 40, 2048);
    assert!(files(&shard_dir(&template), "log").len() > 1);
    let full = std::fs::metadata(&active).unwrap().len();
    let name = active.file_name().unwrap().to_owned();
    for cut in before..full {
        let root = dir.path().join(format!("cut-{cut}"));
        copy_root(&template, &root);
        let seg = shard_dir(&root).join(&name);
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        check_recovered(&root, 39);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn torn_record_in_a_fresh_segment_keeps_the_sequence() {
    // Only one record in the active segment, and it is torn: the segment's name still
    // says where the sequence continues.
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    let mut n = 2;
    let (active, before) = loop {
        let _ = std::fs::remove_dir_all(&template);
        let (active, before) = make_shard(&template, n, 1024);
        if before == 0 {
            break (active, before);
        }
        n += 1;
        assert!(n < 100, "no segment ever started with the last record");
    };
    assert!(n > 2);
    let root = dir.path().join("cut");
    copy_root(&template, &root);
    let seg = shard_dir(&root).join(active.file_name().unwrap());
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(before + 5)
        .unwrap();
    check_recovered(&root, n - 1);
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    let (active, before) = make_shard(&template, 8, 64 << 20);
    let bytes = std::fs::read(&active).unwrap();
    let last_frame = bytes[before as usize..].to_vec();
    let mut flipped = last_frame.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let mut huge_len = last_frame.clone();
    huge_len[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("zeros", vec![0; 4096]),
        ("ones", vec![0xff; 100]),
        ("text", b"not a record at all".to_vec()),
        ("one byte", vec![7]),
        ("damaged copy of the last frame", flipped),
        ("huge length", huge_len),
        // A valid frame with an old sequence number (say, a stale rewrite).
        ("replayed frame", last_frame.clone()),
        (
            "valid frame then zeros",
            [last_frame.clone(), vec![0; 64]].concat(),
        ),
    ];
    for (i, (what, tail)) in garbage.iter().enumerate() {
        let root = dir.path().join(format!("g{i}"));
        copy_root(&template, &root);
        let seg = shard_dir(&root).join(active.file_name().unwrap());
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(tail)
            .unwrap();
        check_recovered(&root, 8);
        let len = std::fs::metadata(&seg).unwrap().len();
        assert!(
            len > bytes.len() as u64,
            "{what}: the new record follows the cut"
        );
    }
}
