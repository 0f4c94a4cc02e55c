//! Crash test: a child process (this test binary again, running `crash_child`) appends
//! from several tasks on several shards and prints every acknowledged record; the
//! parent SIGKILLs it at some point and checks that each acknowledged record is there
//! after reopening, repeatedly on the same directory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::common::{open, read_all, rec};

const CHILD_ENV: &str = "SHARD_LOG_CRASH_CHILD_ROOT";
const SHARDS: usize = 2;
const TASKS_PER_SHARD: usize = 4;
/// Small segments, so kills also land around segment rolls.
const SEGMENT: u64 = 16 << 10;

fn shard_id(s: usize) -> String {
    format!("crash-stream/shard-{s}")
}

/// The child's side; does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Arc::new(open(Path::new(&root), SEGMENT));
        let mut tasks = Vec::new();
        for s in 0..SHARDS {
            let log = store.shard(&shard_id(s)).unwrap();
            for t in 0..TASKS_PER_SHARD {
                let log = Arc::clone(&log);
                tasks.push(tokio::spawn(async move {
                    // Bounded in case the parent never kills us.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let count = 1 + (n % 5) as usize;
                        let records = (0..count)
                            .map(|j| rec("k", Bytes::from(format!("{s}:{t}:{n}:{j}"))))
                            .collect();
                        let appended = log.append(records).await.unwrap();
                        let mut out = String::new();
                        for (j, a) in appended.iter().enumerate() {
                            out += &format!("ACK {s} {} {s}:{t}:{n}:{j}\n", a.sequence);
                        }
                        let mut stdout = std::io::stdout().lock();
                        stdout.write_all(out.as_bytes()).unwrap();
                        stdout.flush().unwrap();
                        n += 1;
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

struct Ack {
    shard: usize,
    sequence: u64,
    data: String,
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    Some(Ack {
        shard: parts.next()?.parse().ok()?,
        sequence: parts.next()?.parse().ok()?,
        data: parts.next()?.to_string(),
    })
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = Vec::new();
    for kill_after in [30, 700, 2500] {
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(ack) = parse(&line) {
                acked.push(ack);
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(seen, kill_after, "the child stopped before being killed");
        // What it printed before dying was acknowledged as well.
        acked.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
        verify(dir.path(), &acked);
    }
}

fn verify(root: &Path, acked: &[Ack]) {
    let store = open(root, SEGMENT);
    for s in 0..SHARDS {
        let log = store.shard(&shard_id(s)).unwrap();
        let records = read_all(&log);
        // Dense from 0: whatever survived has no holes.
        assert!(
            records
                .iter()
                .enumerate()
                .all(|(i, r)| r.sequence == i as u64)
        );
        assert_eq!(log.next_sequence(), records.len() as u64);
        let by_seq: HashMap<u64, &Bytes> = records.iter().map(|r| (r.sequence, &r.data)).collect();
        for ack in acked.iter().filter(|a| a.shard == s) {
            let data = by_seq.get(&ack.sequence);
            assert_eq!(
                data.map(|d| d.as_ref()),
                Some(ack.data.as_bytes()),
                "acknowledged record {} of shard {s} lost",
                ack.sequence
            );
        }
    }
}
