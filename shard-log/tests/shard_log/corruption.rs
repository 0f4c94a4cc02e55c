//! Property tests: whatever bytes the files hold, opening and reading never panics, and
//! what the CRCs accept is exactly what was written.

use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;
use shard_log::StoredRecord;

use crate::common::{SHARD, block_on, files, fill, open, read_all, shard_dir};

const LEN: usize = 40;
const SEGMENT: u64 = 600;

/// A reference log, made once: its records and its files (name, bytes).
struct Template {
    records: Vec<StoredRecord>,
    files: Vec<(String, Vec<u8>)>,
}

static TEMPLATE: LazyLock<Template> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let store = open(dir.path(), SEGMENT);
        let log = store.shard(SHARD).unwrap();
        fill(&log, 0, 60, LEN, 3).await;
        let records = read_all(&log);
        let mut files_out = Vec::new();
        for ext in ["log", "idx"] {
            for p in files(&shard_dir(dir.path()), ext) {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                files_out.push((name, std::fs::read(&p).unwrap()));
            }
        }
        Template {
            records,
            files: files_out,
        }
    })
});

fn write_files(root: &Path, files: &[(String, Vec<u8>)]) {
    let dir = shard_dir(root);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Opens and reads everything in several ways; returns what a full read gave, or
/// `None` if the store reported an error. Must never panic.
fn open_and_read(root: &Path) -> Option<Vec<StoredRecord>> {
    let store = open(root, SEGMENT);
    let log = store.shard(SHARD).ok()?;
    let _ = log.sequence_at_time(0);
    let _ = log.sequence_at_time(i64::MAX);
    let _ = log.last_arrival_ms();
    for from in [0, 1, 17, log.first_sequence(), log.next_sequence()] {
        let _ = log.read(from, 5, 100);
    }
    log.read(0, usize::MAX, usize::MAX).ok()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_a_segment(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &[("00000000000000000000.log".into(), bytes)]);
        let got = open_and_read(dir.path()).expect("the active segment is cut, not refused");
        // Random bytes pass a CRC check essentially never.
        prop_assert!(got.is_empty());
    }

    #[test]
    fn damaged_active_segment_reads_a_prefix(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let t = &*TEMPLATE;
        let mut files = t.files.clone();
        let active = files.iter().filter(|(n, _)| n.ends_with(".log")).count() - 1;
        let bytes = &mut files[active].1;
        for (at, xor) in &edits {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        if let Some(cut) = cut {
            let len = cut.index(bytes.len());
            bytes.truncate(len);
        }
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &files);
        let got = open_and_read(dir.path()).expect("sealed segments are intact");
        // Sealed segments whole, then a prefix of the damaged active one.
        prop_assert!(got.len() < t.records.len());
        prop_assert_eq!(&got[..], &t.records[..got.len()]);
    }

    #[test]
    fn damaged_sealed_segments_and_indexes_never_panic(
        target in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        drop_index in any::<bool>(),
    ) {
        let t = &*TEMPLATE;
        let mut files = t.files.clone();
        let which = target.index(files.len());
        let bytes = &mut files[which].1;
        for (at, xor) in &edits {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= xor;
            }
        }
        if let Some(cut) = cut {
            let len = cut.index(bytes.len() + 1);
            bytes.truncate(len);
        }
        let damaged_index = files[which].0.ends_with(".idx");
        if drop_index {
            files.retain(|(n, _)| !n.ends_with(".idx"));
        }
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &files);
        let got = open_and_read(dir.path());
        if damaged_index || (edits.is_empty() && cut.is_none()) {
            // Only an index was touched: rebuilt, and every record is there.
            prop_assert_eq!(got.as_deref(), Some(&t.records[..]));
        }
        if let Some(got) = got {
            // Whatever is returned was written, in order.
            for r in &got {
                prop_assert_eq!(r, &t.records[r.sequence as usize]);
            }
            prop_assert!(got.windows(2).all(|w| w[0].sequence < w[1].sequence));
        }
    }
}
