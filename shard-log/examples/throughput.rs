//! Rough throughput check (not a timed test): 1 KiB records in appends of 500, from 8
//! concurrent appenders on 4 shards, then a sequential read-back, then single-record
//! appends from 64 tasks (PutRecord-like) to show group commit at work.
//!
//! cargo run --release -p shard-log --example throughput -- [SECONDS] [DIR]
//! DIR defaults to a temporary directory (it must be on a real disk for the fsync
//! figures to mean anything).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shard_log::{LogConfig, LogStore, NewRecord};

const SHARDS: usize = 4;
const APPENDERS: usize = 8;
const BATCH: usize = 500;
const RECORD: usize = 1024;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let tmp = tempfile::tempdir()?;
    let root = args
        .next()
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let store = Arc::new(LogStore::open(&root, LogConfig::default())?);
    let logs: Vec<_> = (0..SHARDS)
        .map(|s| store.shard(&format!("bench/shardId-{s:012}")))
        .collect::<Result<_, _>>()?;
    let data = Bytes::from(vec![0x5a; RECORD]);

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..APPENDERS {
        let log = Arc::clone(&logs[a % SHARDS]);
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let mut appends = 0u64;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let records = (0..BATCH)
                    .map(|i| NewRecord {
                        partition_key: format!("pk-{a}-{i}"),
                        data: data.clone(),
                    })
                    .collect();
                let t = Instant::now();
                log.append(records).await?;
                latencies.push(t.elapsed());
                appends += 1;
            }
            Ok::<_, std::io::Error>((appends, latencies))
        }));
    }
    let mut appends = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let (n, l) = t.await.expect("appender panicked")?;
        appends += n;
        latencies.extend(l);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let records = appends * BATCH as u64;
    let mib = (records * RECORD as u64) as f64 / (1 << 20) as f64;
    let syncs = store.sync_count();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "append: {records} records ({mib:.0} MiB of data) in {elapsed:.1} s = {:.0} MiB/s, {:.0} records/s",
        mib / elapsed,
        records as f64 / elapsed
    );
    println!(
        "        {syncs} fdatasyncs = {:.0}/s, {:.1} appends of {BATCH} per sync; append latency p50 {:?} p99 {:?}",
        syncs as f64 / elapsed,
        appends as f64 / syncs as f64,
        pct(0.5),
        pct(0.99)
    );
    println!("        RSS after writing: {} MiB", rss_kib() / 1024);

    let start = Instant::now();
    let mut read = 0u64;
    let mut bytes = 0u64;
    for log in &logs {
        let mut from = log.first_sequence();
        loop {
            let got = log.read(from, 10_000, 10 << 20)?;
            let Some(last) = got.last() else { break };
            from = last.sequence + 1;
            read += got.len() as u64;
            bytes += got.iter().map(|r| r.data.len() as u64).sum::<u64>();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "read:   {read} records in {elapsed:.2} s = {:.0} MiB/s (mostly from the page cache)",
        bytes as f64 / (1 << 20) as f64 / elapsed
    );
    println!("        RSS after reading: {} MiB", rss_kib() / 1024);

    let syncs_before = store.sync_count();
    let deadline = Instant::now() + Duration::from_secs(seconds.div_ceil(2));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let log = Arc::clone(&logs[t % SHARDS]);
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let record = NewRecord {
                    partition_key: format!("pk-{t}"),
                    data: data.clone(),
                };
                log.append(vec![record]).await?;
                n += 1;
            }
            Ok::<_, std::io::Error>(n)
        }));
    }
    let mut appends = 0;
    for t in tasks {
        appends += t.await.expect("appender panicked")?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let syncs = store.sync_count() - syncs_before;
    println!(
        "single-record appends from 64 tasks: {:.0} appends/s, {:.0} fdatasyncs/s ({:.1} appends per sync)",
        appends as f64 / elapsed,
        syncs as f64 / elapsed,
        appends as f64 / syncs as f64
    );
    drop(logs);
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("        RSS idle, shards closed: {} MiB", rss_kib() / 1024);
    Ok(())
}
