//! `fsync-baseline`: the machine's own limit for what the server does per fragment:
//! write the fragment bytes to a new file, fdatasync it, fsync its directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::mkv::Source;
use crate::stats::{hist_json, new_hist};

struct PhaseStats {
    files: u64,
    bytes: u64,
    elapsed: Duration,
    sync: Histogram<u64>,
    total: Histogram<u64>,
    lag: Histogram<u64>,
}

fn write_one(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let path = dir.join(name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    let t1 = Instant::now();
    f.sync_data()?;
    File::open(dir)?.sync_all()?;
    let t2 = Instant::now();
    Ok((t2 - t1, t2 - t0))
}

fn rec(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).max(1));
}

/// Back-to-back writes for `duration` on `threads` threads (each its own subdirectory).
fn phase_max(
    dir: &Path,
    frags: &Arc<Vec<Vec<u8>>>,
    duration: Duration,
    threads: usize,
) -> anyhow::Result<PhaseStats> {
    let start = Instant::now();
    let end = start + duration;
    let mut handles = Vec::new();
    for t in 0..threads {
        let sub = dir.join(format!("max-{t}"));
        std::fs::create_dir_all(&sub)?;
        let frags = Arc::clone(frags);
        handles.push(std::thread::spawn(
            move || -> anyhow::Result<(u64, u64, Histogram<u64>, Histogram<u64>)> {
                let (mut files, mut bytes) = (0u64, 0u64);
                let (mut sync, mut total) = (new_hist(), new_hist());
                let mut i = 0usize;
                while Instant::now() < end {
                    let f = &frags[i % frags.len()];
                    let (s, tt) = write_one(&sub, &format!("{i}.mkv"), f)?;
                    rec(&mut sync, s);
                    rec(&mut total, tt);
                    files += 1;
                    bytes += f.len() as u64;
                    i += 1;
                }
                Ok((files, bytes, sync, total))
            },
        ));
    }
    let mut out = PhaseStats {
        files: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        sync: new_hist(),
        total: new_hist(),
        lag: new_hist(),
    };
    for h in handles {
        let (f, b, s, t) = h
            .join()
            .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
        out.files += f;
        out.bytes += b;
        out.sync.add(&s)?;
        out.total.add(&t)?;
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

/// Writes paced at `rate` bytes/s in aggregate (one fragment at a time, evenly spaced).
fn phase_paced(
    dir: &Path,
    frags: &[Vec<u8>],
    duration: Duration,
    rate: f64,
) -> anyhow::Result<PhaseStats> {
    let sub = dir.join("paced");
    std::fs::create_dir_all(&sub)?;
    let mean = frags.iter().map(|f| f.len()).sum::<usize>() as f64 / frags.len() as f64;
    let interval = Duration::from_secs_f64(mean / rate);
    let start = Instant::now();
    let end = start + duration;
    let mut out = PhaseStats {
        files: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        sync: new_hist(),
        total: new_hist(),
        lag: new_hist(),
    };
    let mut i = 0usize;
    loop {
        let due = start + interval.mul_f64(i as f64);
        if due >= end {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let f = &frags[i % frags.len()];
        let (s, tt) = write_one(&sub, &format!("{i}.mkv"), f)?;
        rec(&mut out.sync, s);
        rec(&mut out.total, tt);
        // Time from when the fragment was due to when it was durable (queueing included).
        rec(&mut out.lag, Instant::now().saturating_duration_since(due));
        out.files += 1;
        out.bytes += f.len() as u64;
        i += 1;
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

fn phase_json(p: &PhaseStats) -> Value {
    let secs = p.elapsed.as_secs_f64();
    json!({
        "files": p.files,
        "bytes": p.bytes,
        "elapsed_s": secs,
        "MBps": p.bytes as f64 / secs / 1e6,
        "fragments_per_s": p.files as f64 / secs,
        "sync_latency_ms": hist_json(&p.sync),
        "write_and_sync_latency_ms": hist_json(&p.total),
        "due_to_durable_ms": if p.lag.is_empty() { Value::Null } else { hist_json(&p.lag) },
    })
}

pub(crate) fn run(
    dir: PathBuf,
    source: &Source,
    bytes_per_sec: f64,
    stream_bytes_per_sec: f64,
    duration: Duration,
    threads: usize,
    out: Option<PathBuf>,
) -> anyhow::Result<Value> {
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let frags: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..source.clusters.len())
            .map(|i| source.fragment(i, 1_700_000_000_000 + i as u64 * 1000))
            .collect(),
    );
    eprintln!(
        "loadgen: fsync baseline (max speed, {threads} thread(s), {:.0}s) in {}",
        duration.as_secs_f64(),
        dir.display()
    );
    let max = phase_max(&dir, &frags, duration, threads.max(1))?;
    let paced = if bytes_per_sec > 0.0 {
        eprintln!(
            "loadgen: fsync baseline (paced at {:.1} MB/s, {:.0}s)",
            bytes_per_sec / 1e6,
            duration.as_secs_f64()
        );
        Some(phase_paced(&dir, &frags, duration, bytes_per_sec)?)
    } else {
        None
    };
    let max_mbps = max.bytes as f64 / max.elapsed.as_secs_f64();
    let per_stream = if stream_bytes_per_sec > 0.0 {
        stream_bytes_per_sec
    } else {
        source.bytes_per_sec()
    };
    let result = json!({
        "kind": "fsync-baseline",
        "dir": dir.display().to_string(),
        "threads": threads,
        "mean_fragment_bytes": frags.iter().map(|f| f.len()).sum::<usize>() / frags.len(),
        "max": phase_json(&max),
        "paced_rate_MBps": bytes_per_sec / 1e6,
        "paced": paced.as_ref().map(phase_json),
        "stream_bytes_per_sec": per_stream,
        "streams_capacity_by_bytes": max_mbps / per_stream,
        "streams_capacity_by_fragments": max.files as f64 / max.elapsed.as_secs_f64()
            / (1000.0 / (source.period_ms() as f64 / source.clusters.len() as f64)),
    });
    // Clean up what we wrote.
    for sub in std::fs::read_dir(&dir)? {
        let p = sub?.path();
        if p.is_dir()
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("max-") || n == "paced")
        {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
    if let Some(out) = out {
        std::fs::write(&out, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(result)
}
