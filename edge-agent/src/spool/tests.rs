use super::*;

fn config(dir: &std::path::Path, max_bytes: u64, mode: SpoolMode) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        mode,
        spill_after: Duration::ZERO,
        memory_max_bytes: 1 << 20,
    }
}

fn header() -> Arc<[u8]> {
    Arc::from(&b"info+tracks"[..])
}

/// Reads everything queued from `pos` without waiting.
async fn drain(spool: &Spool, mut pos: Position) -> (Vec<(u64, Vec<u8>)>, Position) {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    while let Some(chunk) = spool.try_next_chunk(pos).await.unwrap() {
        match out.last_mut() {
            Some((tc, bytes)) if *tc == chunk.timecode_ms && chunk.offset > 0 => {
                bytes.extend_from_slice(&chunk.bytes)
            }
            _ => out.push((chunk.timecode_ms, chunk.bytes.to_vec())),
        }
        pos = chunk.end();
    }
    (out, pos)
}

#[tokio::test]
async fn streams_growing_fragments_then_acks_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(config(dir.path(), 1 << 20, SpoolMode::Buffered)).unwrap();
    spool.start_fragment(1_000, header(), b"a1".to_vec());
    let (got, pos) = drain(&spool, spool.first_position()).await;
    assert_eq!(got, [(1_000, b"a1".to_vec())]);
    spool.append(b"a2");
    spool.start_fragment(2_000, header(), b"b1".to_vec());
    let (got, _) = drain(&spool, pos).await;
    assert_eq!(got, [(1_000, b"a2".to_vec()), (2_000, b"b1".to_vec())]);

    assert!(spool.persisted(1_000));
    assert!(!spool.persisted(1_000));
    let (status, counters, _) = spool.status();
    assert_eq!(
        (status.fragments, counters.acked, counters.captured),
        (1, 1, 2)
    );
    // A new session starts at the first unacknowledged fragment.
    let (got, _) = drain(&spool, spool.first_position()).await;
    assert_eq!(got, [(2_000, b"b1".to_vec())]);
}

#[tokio::test]
async fn spilled_fragments_survive_a_restart_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(config(dir.path(), 1 << 20, SpoolMode::Buffered)).unwrap();
        for (i, tc) in [1_000u64, 2_000, 3_000].iter().enumerate() {
            spool.start_fragment(*tc, header(), vec![i as u8; 100]);
        }
        spool.spill(false); // the last one is still growing: not spilled
        let (status, ..) = spool.status();
        assert_eq!((status.disk_fragments, status.disk_bytes), (2, 200));
        // Reading from disk gives the same bytes.
        let (got, _) = drain(&spool, spool.first_position()).await;
        assert_eq!(got[0], (1_000, vec![0; 100]));
        assert_eq!(got.len(), 3);
        spool.finish_fragment();
        spool.spill(true);
        assert!(spool.persisted(2_000));
    }
    let spool = Spool::open(config(dir.path(), 1 << 20, SpoolMode::Buffered)).unwrap();
    let (got, _) = drain(&spool, spool.first_position()).await;
    assert_eq!(got, [(1_000, vec![0; 100]), (3_000, vec![2; 100])]);
    spool.start_fragment(4_000, header(), b"new".to_vec());
    let (got, _) = drain(&spool, spool.first_position()).await;
    assert_eq!(
        got.last().unwrap().0,
        4_000,
        "new fragments queue after old ones"
    );
}

#[tokio::test]
async fn full_spool_drops_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(config(dir.path(), 250, SpoolMode::Durable)).unwrap();
    for tc in 1..=5u64 {
        spool.start_fragment(tc * 1_000, header(), vec![0; 100]);
        spool.spill(false);
    }
    let (status, counters, _) = spool.status();
    assert_eq!(counters.dropped, 2);
    assert!(status.disk_bytes <= 250);
    let (got, _) = drain(&spool, spool.first_position()).await;
    let kept: Vec<_> = got.iter().map(|(tc, _)| *tc).collect();
    assert_eq!(kept, [3_000, 4_000, 5_000]);
}

#[tokio::test]
async fn buffered_mode_keeps_prompt_fragments_off_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 1 << 20, SpoolMode::Buffered);
    cfg.spill_after = Duration::from_secs(60);
    let spool = Spool::open(cfg).unwrap();
    spool.start_fragment(1_000, header(), vec![0; 100]);
    spool.start_fragment(2_000, header(), vec![0; 100]);
    spool.spill(false);
    assert_eq!(spool.status().0.disk_fragments, 0);
    assert!(spool.persisted(1_000));
    assert_eq!(
        std::fs::read_dir(dir.path().join("fragments"))
            .unwrap()
            .count(),
        0
    );
}
