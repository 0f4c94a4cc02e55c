//! `getmedia-fanout`: R concurrent GetMedia EARLIEST readers of one stored stream, and in
//! the same run the time to read the stream's fragment files R times in parallel.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::client::{Client, Endpoint, HttpReader};

struct ReaderResult {
    bytes: u64,
    first_byte: Option<Duration>,
    last_byte: Option<Duration>,
    end: Duration,
    head: Vec<u8>,
}

async fn one_reader(
    client: Client,
    ep: Endpoint,
    stream: String,
    t0: Instant,
    keep_head: bool,
) -> anyhow::Result<ReaderResult> {
    let body = serde_json::to_vec(
        &json!({"StreamName": stream, "StartSelector": {"StartSelectorType": "EARLIEST"}}),
    )?;
    let head = client.request_head(
        "/getMedia",
        &ep,
        vec![
            ("content-type", "application/json".to_string()),
            ("content-length", body.len().to_string()),
            ("connection", "close".to_string()),
        ],
        &body,
    )?;
    let mut conn = client.connect(&ep).await?;
    conn.write_all(&head).await?;
    conn.write_all(&body).await?;
    conn.flush().await?;
    let mut reader = HttpReader::new(conn);
    let resp = reader.read_head().await?;
    if resp.status != 200 {
        let mut b = Vec::new();
        while let Ok(Some(c)) = reader.next_body_chunk(&resp).await {
            b.extend_from_slice(&c);
        }
        bail!(
            "GetMedia HTTP {}: {}",
            resp.status,
            String::from_utf8_lossy(&b)
        );
    }
    let mut out = ReaderResult {
        bytes: 0,
        first_byte: None,
        last_byte: None,
        end: Duration::ZERO,
        head: Vec::new(),
    };
    while let Some(c) = reader.next_body_chunk(&resp).await? {
        if c.is_empty() {
            continue;
        }
        let now = t0.elapsed();
        out.first_byte.get_or_insert(now);
        out.last_byte = Some(now);
        out.bytes += c.len() as u64;
        if keep_head && out.head.len() < 1 << 20 {
            out.head.extend_from_slice(&c);
        }
    }
    out.end = t0.elapsed();
    Ok(out)
}

/// The stream id embedded in the first AWS_KINESISVIDEO_FRAGMENT_NUMBER tag (server format
/// "91" + 10-digit stream id + 35-digit sequence).
fn stream_id_from(head: &[u8]) -> Option<u64> {
    let tag = b"AWS_KINESISVIDEO_FRAGMENT_NUMBER";
    let at = head.windows(tag.len()).position(|w| w == tag)? + tag.len();
    let rest = &head[at..(at + 64).min(head.len())];
    let start = rest
        .windows(47)
        .position(|w| w.iter().all(u8::is_ascii_digit) && w.starts_with(b"91"))?;
    std::str::from_utf8(&rest[start + 2..start + 12])
        .ok()?
        .parse()
        .ok()
}

fn list_fragment_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mkv"))
        .map(|p| {
            let n = p
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
            (n, p)
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

fn read_all(files: &[PathBuf]) -> anyhow::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for f in files {
        let mut file = std::fs::File::open(f)?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok(total)
}

pub(crate) async fn run(
    client: Client,
    ep: Endpoint,
    stream: String,
    readers: usize,
    data_dir: Option<PathBuf>,
    fragment_dir: Option<PathBuf>,
    out: Option<PathBuf>,
) -> anyhow::Result<Value> {
    eprintln!("loadgen: {readers} GetMedia EARLIEST readers of {stream}");
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..readers {
        set.spawn(one_reader(
            client.clone(),
            ep.clone(),
            stream.clone(),
            t0,
            i == 0,
        ));
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        match r? {
            Ok(r) => results.push(r),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let wall_end = t0.elapsed().as_secs_f64();
    let total: u64 = results.iter().map(|r| r.bytes).sum();
    let last_byte = results
        .iter()
        .filter_map(|r| r.last_byte)
        .max()
        .map(|d| d.as_secs_f64())
        .unwrap_or(wall_end);
    let gm_mbps = total as f64 / last_byte / 1e6;
    let head = results
        .iter()
        .find(|r| !r.head.is_empty())
        .map(|r| r.head.clone())
        .unwrap_or_default();

    // The files, R times in parallel (after one warm-up pass, so both sides read page cache).
    let frag_dir = match (fragment_dir, data_dir) {
        (Some(d), _) => Some(d),
        (None, Some(dd)) => stream_id_from(&head).map(|id| dd.join("media").join(id.to_string())),
        (None, None) => None,
    };
    let cat = if let Some(dir) = &frag_dir {
        let files = list_fragment_files(dir)?;
        let file_bytes = read_all(&files)?;
        let t = Instant::now();
        let files = std::sync::Arc::new(files);
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                let files = std::sync::Arc::clone(&files);
                std::thread::spawn(move || read_all(&files))
            })
            .collect();
        let mut cat_total = 0;
        for h in handles {
            cat_total += h
                .join()
                .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
        }
        let secs = t.elapsed().as_secs_f64();
        Some(json!({
            "dir": dir.display().to_string(),
            "files": files.len(),
            "bytes_per_pass": file_bytes,
            "total_bytes": cat_total,
            "secs": secs,
            "MBps": cat_total as f64 / secs / 1e6,
        }))
    } else {
        None
    };
    let cat_mbps = cat.as_ref().and_then(|c| c["MBps"].as_f64());
    let result = json!({
        "kind": "getmedia-fanout",
        "stream": stream,
        "readers": readers,
        "readers_ok": results.len(),
        "reader_errors": errors,
        "getmedia": {
            "total_bytes": total,
            "per_reader_bytes_min": results.iter().map(|r| r.bytes).min(),
            "per_reader_bytes_max": results.iter().map(|r| r.bytes).max(),
            "first_byte_s_max": results.iter().filter_map(|r| r.first_byte).max().map(|d| d.as_secs_f64()),
            "last_byte_s": last_byte,
            "all_ended_s": wall_end,
            "MBps_to_last_byte": gm_mbps,
            "MBps_to_end": total as f64 / wall_end / 1e6,
        },
        "cat": cat,
        "ratio_getmedia_to_cat": cat_mbps.map(|c| gm_mbps / c),
    });
    if let Some(out) = out {
        std::fs::write(&out, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(result)
}
