//! `ingest` and `fill`: N concurrent PutMedia uploads replaying a source MKV.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::client::{Client, Endpoint, HttpReader};
use crate::mkv::Source;
use crate::procstat;
use crate::stats::{hist_json, new_hist};

/// How fragments are paced.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pacing {
    /// Fragment k is written when its time comes (live camera).
    RealTime,
    /// As fast as acks allow, at most `window` fragments awaiting PERSISTED; timecodes in the past.
    Burst { window: u64, fragments: u64 },
}

pub(crate) struct IngestConfig {
    pub(crate) endpoint: Endpoint,
    pub(crate) data_endpoint: Endpoint,
    pub(crate) client: Client,
    pub(crate) source: Arc<Source>,
    pub(crate) streams: usize,
    pub(crate) duration: Duration,
    pub(crate) server_pid: Option<String>,
    pub(crate) prefix: String,
    pub(crate) chunk_bytes: usize,
    pub(crate) drain: Duration,
    pub(crate) pacing: Pacing,
    pub(crate) out: Option<PathBuf>,
}

#[derive(Default)]
struct Pending {
    len: u64,
    written: Option<Instant>,
    received_at: Option<Instant>,
    persisted_at: Option<Instant>,
}

#[derive(Default)]
struct StreamState {
    pending: Mutex<HashMap<u64, Pending>>,
    persisted: AtomicU64,
    notify: Notify,
    first_fragment_number: Mutex<Option<String>>,
}

struct Shared {
    persisted_lat: Mutex<Histogram<u64>>,
    received_lat: Mutex<Histogram<u64>>,
    sent_frags: AtomicU64,
    sent_bytes: AtomicU64,
    persisted_frags: AtomicU64,
    persisted_bytes: AtomicU64,
    received_frags: AtomicU64,
    buffering: AtomicU64,
    idle: AtomicU64,
    error_acks: AtomicU64,
    unmatched: AtomicU64,
    stream_failures: AtomicU64,
    error_codes: Mutex<BTreeMap<String, u64>>,
    error_samples: Mutex<Vec<String>>,
}

impl Shared {
    fn new() -> Self {
        Self {
            persisted_lat: Mutex::new(new_hist()),
            received_lat: Mutex::new(new_hist()),
            sent_frags: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            persisted_frags: AtomicU64::new(0),
            persisted_bytes: AtomicU64::new(0),
            received_frags: AtomicU64::new(0),
            buffering: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            error_acks: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            stream_failures: AtomicU64::new(0),
            error_codes: Mutex::new(BTreeMap::new()),
            error_samples: Mutex::new(Vec::new()),
        }
    }

    fn sample(&self, msg: String) {
        let mut s = self.error_samples.lock().unwrap();
        if s.len() < 20 {
            eprintln!("loadgen: {msg}");
            s.push(msg);
        }
    }

    fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        let _ = h.lock().unwrap().record(us);
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Creates a stream, tolerating "already exists".
pub(crate) async fn create_stream(
    client: &Client,
    ep: &Endpoint,
    name: &str,
) -> anyhow::Result<()> {
    let (status, body) = client
        .json_call(
            ep,
            "/createStream",
            &json!({"StreamName": name, "DataRetentionInHours": 24, "MediaType": "video/h264"}),
        )
        .await?;
    if status == 200 {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body);
    if text.contains("ResourceInUse") {
        return Ok(());
    }
    bail!("createStream {name}: HTTP {status}: {text}")
}

pub(crate) async fn run(cfg: IngestConfig) -> anyhow::Result<Value> {
    let cfg = Arc::new(cfg);
    let shared = Arc::new(Shared::new());
    let t_prog = Instant::now();
    let pid = cfg.server_pid.clone();

    // RSS/CPU sampler, every second, from before the streams exist.
    let series = Arc::new(Mutex::new(Vec::<(f64, u64, f64, u64)>::new()));
    let stop_sampler = Arc::new(Notify::new());
    let sampler = {
        let series = Arc::clone(&series);
        let stop = Arc::clone(&stop_sampler);
        let pid = pid.clone();
        tokio::spawn(async move {
            let Some(pid) = pid else { return };
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.notified() => {}
                }
                let t = t_prog.elapsed().as_secs_f64();
                if let (Some(rss), Some(cpu)) =
                    (procstat::rss_kib(&pid), procstat::proc_cpu_secs(&pid))
                {
                    let anon = procstat::status_kib(&pid, "RssAnon:").unwrap_or(0);
                    series.lock().unwrap().push((t, rss, cpu, anon));
                } else {
                    eprintln!("loadgen: server pid {pid} is gone");
                    return;
                }
                if Arc::strong_count(&stop) == 1 {
                    return;
                }
            }
        })
    };

    // Create the streams (a few at a time).
    let names: Vec<String> = match cfg.pacing {
        Pacing::Burst { .. } if cfg.streams == 1 => vec![cfg.prefix.clone()],
        _ => (0..cfg.streams)
            .map(|j| format!("{}-{j:04}", cfg.prefix))
            .collect(),
    };
    let t_create = Instant::now();
    for batch in names.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for name in batch {
            let c = cfg.client.clone();
            let ep = cfg.endpoint.clone();
            let name = name.clone();
            set.spawn(async move { create_stream(&c, &ep, &name).await });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
    }
    let create_secs = t_create.elapsed().as_secs_f64();
    eprintln!(
        "loadgen: created {} streams in {create_secs:.2}s",
        cfg.streams
    );

    let first_period = Duration::from_millis(cfg.source.durations_ms[0]);
    let lead_in = Duration::from_millis(1500);
    let base = Instant::now() + lead_in;
    let base_wall = SystemTime::now() + lead_in;
    let end = base + cfg.duration;
    let warmup = first_period * 2;
    let window_start = base + first_period + warmup;
    let window_end = end;

    // CPU over the steady-state window.
    let window_task = {
        let pid = pid.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(window_start.into()).await;
            let a = (
                Instant::now(),
                pid.as_deref().and_then(procstat::proc_cpu_secs),
                procstat::machine_cpu(),
                procstat::proc_cpu_secs("self"),
            );
            tokio::time::sleep_until(window_end.into()).await;
            let b = (
                Instant::now(),
                pid.as_deref().and_then(procstat::proc_cpu_secs),
                procstat::machine_cpu(),
                procstat::proc_cpu_secs("self"),
            );
            (a, b)
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    let states: Vec<Arc<StreamState>> = (0..cfg.streams)
        .map(|_| Arc::new(StreamState::default()))
        .collect();
    for (j, name) in names.iter().enumerate() {
        let stagger = first_period.mul_f64(j as f64 / cfg.streams as f64);
        let (start, start_wall) = match cfg.pacing {
            Pacing::RealTime => (base + stagger, base_wall + stagger),
            Pacing::Burst { fragments, .. } => {
                let span = Duration::from_millis(cfg.source.schedule(fragments).0 + 2000);
                (base, base_wall - span)
            }
        };
        let cfg = Arc::clone(&cfg);
        let shared = Arc::clone(&shared);
        let st = Arc::clone(&states[j]);
        let name = name.clone();
        tasks.spawn(async move {
            if let Err(e) = upload(&cfg, &shared, &st, &name, start, unix_ms(start_wall), end).await
            {
                shared.stream_failures.fetch_add(1, Relaxed);
                shared.sample(format!("stream {name}: {e:#}"));
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    let finished = Instant::now();
    let ((wa_t, wa_srv, wa_m, wa_self), (wb_t, wb_srv, wb_m, wb_self)) =
        if finished >= window_start && matches!(cfg.pacing, Pacing::RealTime) {
            // The last fragments go out up to a period before `end`: the window still runs to `end`.
            window_task.await?
        } else {
            window_task.abort();
            let now = (
                Instant::now(),
                pid.as_deref().and_then(procstat::proc_cpu_secs),
                procstat::machine_cpu(),
                procstat::proc_cpu_secs("self"),
            );
            (now, now)
        };
    stop_sampler.notify_one();
    drop(stop_sampler);
    let _ = tokio::time::timeout(Duration::from_secs(3), sampler).await;

    let missing: u64 = states
        .iter()
        .map(|s| s.pending.lock().unwrap().len() as u64)
        .sum();
    let window_secs = wb_t.duration_since(wa_t).as_secs_f64();
    let srv_cpu = match (wa_srv, wb_srv) {
        (Some(a), Some(b)) if window_secs > 0.0 => Some((b - a) / window_secs * 100.0),
        _ => None,
    };
    let self_cpu = match (wa_self, wb_self) {
        (Some(a), Some(b)) if window_secs > 0.0 => Some((b - a) / window_secs * 100.0),
        _ => None,
    };
    let m_total = wb_m.total.saturating_sub(wa_m.total) as f64;
    let machine_busy = if m_total > 0.0 {
        Some(wb_m.busy.saturating_sub(wa_m.busy) as f64 / m_total * 100.0)
    } else {
        None
    };
    let machine_iowait = if m_total > 0.0 {
        Some(wb_m.iowait.saturating_sub(wa_m.iowait) as f64 / m_total * 100.0)
    } else {
        None
    };

    let series = series.lock().unwrap().clone();
    let rss = rss_summary(
        &series,
        window_start.duration_since(t_prog).as_secs_f64(),
        window_end.duration_since(t_prog).as_secs_f64(),
    );
    let dur = cfg.duration.as_secs_f64();
    let mib = 1024.0 * 1024.0;
    let first_numbers: Vec<Option<String>> = states
        .iter()
        .map(|s| s.first_fragment_number.lock().unwrap().clone())
        .collect();
    let result = json!({
        "kind": "ingest",
        "streams": cfg.streams,
        "duration_s": dur,
        "pacing": format!("{:?}", cfg.pacing),
        "chunk_bytes": cfg.chunk_bytes,
        "create_streams_s": create_secs,
        "source": {
            "fragments": cfg.source.clusters.len(),
            "period_ms": cfg.source.period_ms(),
            "mean_fragment_bytes": cfg.source.clusters.iter().map(|c| c.body.len()).sum::<usize>() / cfg.source.clusters.len(),
            "max_fragment_bytes": cfg.source.clusters.iter().map(|c| c.body.len()).max(),
            "bits_per_sec": cfg.source.bytes_per_sec() * 8.0,
        },
        "fragments_sent": shared.sent_frags.load(Relaxed),
        "bytes_sent": shared.sent_bytes.load(Relaxed),
        "fragments_received_ack": shared.received_frags.load(Relaxed),
        "fragments_persisted": shared.persisted_frags.load(Relaxed),
        "bytes_persisted": shared.persisted_bytes.load(Relaxed),
        "buffering_acks": shared.buffering.load(Relaxed),
        "idle_acks": shared.idle.load(Relaxed),
        "error_acks": shared.error_acks.load(Relaxed),
        "error_codes": *shared.error_codes.lock().unwrap(),
        "unmatched_acks": shared.unmatched.load(Relaxed),
        "missing_persisted_acks": missing,
        "stream_failures": shared.stream_failures.load(Relaxed),
        "error_samples": *shared.error_samples.lock().unwrap(),
        "persisted_latency_ms": hist_json(&shared.persisted_lat.lock().unwrap()),
        "received_latency_ms": hist_json(&shared.received_lat.lock().unwrap()),
        "offered_MBps": shared.sent_bytes.load(Relaxed) as f64 / dur / 1e6,
        "acked_MBps": shared.persisted_bytes.load(Relaxed) as f64 / dur / 1e6,
        "expected_MBps": cfg.source.bytes_per_sec() * cfg.streams as f64 / 1e6,
        "window_s": window_secs,
        "server": {
            "pid": pid,
            "cpu_pct_of_one_core": srv_cpu,
            "cpu_pct_of_one_core_per_stream": srv_cpu.map(|c| c / cfg.streams as f64),
            "rss": rss,
            "threads": pid.as_deref().and_then(procstat::threads),
        },
        "machine": {
            "cores": procstat::ncpu(),
            "busy_pct_of_all_cores": machine_busy,
            "iowait_pct_of_all_cores": machine_iowait,
        },
        "loadgen_cpu_pct_of_one_core": self_cpu,
        "first_fragment_numbers": if cfg.streams <= 4 { json!(first_numbers) } else { Value::Null },
        "rss_series_kib": series.iter().map(|(t, r, c, a)| json!([(t * 10.0).round() / 10.0, r, (c * 100.0).round() / 100.0, a])).collect::<Vec<_>>(),
        "run_secs": t_prog.elapsed().as_secs_f64(),
        "_units": "latencies in ms; MBps = 1e6 bytes/s; rss in MiB; rss_series = [t_s, rss_kib, server_cpu_s, rss_anon_kib]",
    });
    let _ = mib;
    if let Some(out) = &cfg.out {
        std::fs::write(out, serde_json::to_vec_pretty(&result)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(result)
}

fn rss_summary(series: &[(f64, u64, f64, u64)], w0: f64, w1: f64) -> Value {
    if series.is_empty() {
        return Value::Null;
    }
    let mib = |k: u64| k as f64 / 1024.0;
    let start = series[0].1;
    let max = series.iter().map(|s| s.1).max().unwrap_or(0);
    let end = series.last().unwrap().1;
    let win: Vec<&(f64, u64, f64, u64)> =
        series.iter().filter(|s| s.0 >= w0 && s.0 <= w1).collect();
    // Least-squares slope over the steady-state window, MiB per minute.
    let slope = if win.len() >= 3 {
        let n = win.len() as f64;
        let mx = win.iter().map(|s| s.0).sum::<f64>() / n;
        let my = win.iter().map(|s| mib(s.1)).sum::<f64>() / n;
        let sxy: f64 = win.iter().map(|s| (s.0 - mx) * (mib(s.1) - my)).sum();
        let sxx: f64 = win.iter().map(|s| (s.0 - mx).powi(2)).sum();
        if sxx > 0.0 {
            Some(sxy / sxx * 60.0)
        } else {
            None
        }
    } else {
        None
    };
    // Quarter points of the window, to show flatness without the series.
    let at = |frac: f64| -> Option<f64> {
        if win.is_empty() {
            return None;
        }
        let i = ((win.len() - 1) as f64 * frac).round() as usize;
        Some(mib(win[i].1))
    };
    let anon_at = |frac: f64| -> Option<f64> {
        if win.is_empty() {
            return None;
        }
        let i = ((win.len() - 1) as f64 * frac).round() as usize;
        Some(mib(win[i].3))
    };
    json!({
        "anon_window_q1_mib": anon_at(0.25),
        "anon_window_end_mib": anon_at(1.0),
        "anon_max_mib": series.iter().map(|s| s.3).max().map(mib),
        "start_mib": mib(start),
        "max_mib": mib(max),
        "end_mib": mib(end),
        "window_start_mib": at(0.0),
        "window_q1_mib": at(0.25),
        "window_mid_mib": at(0.5),
        "window_q3_mib": at(0.75),
        "window_end_mib": at(1.0),
        "window_max_mib": win.iter().map(|s| s.1).max().map(mib),
        "window_slope_mib_per_min": slope,
        "samples": series.len(),
    })
}

fn chunk_frame(buf: &mut Vec<u8>, data: &[u8], chunk: usize) {
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        buf.extend_from_slice(piece);
        buf.extend_from_slice(b"\r\n");
    }
}

#[allow(clippy::too_many_arguments)]
async fn upload(
    cfg: &IngestConfig,
    shared: &Arc<Shared>,
    st: &Arc<StreamState>,
    name: &str,
    start: Instant,
    start_wall_ms: u64,
    end: Instant,
) -> anyhow::Result<()> {
    let conn = cfg.client.connect(&cfg.data_endpoint).await?;
    let head = cfg.client.request_head(
        "/putMedia",
        &cfg.data_endpoint,
        vec![
            ("x-amzn-stream-name", name.to_string()),
            ("x-amzn-fragment-timecode-type", "ABSOLUTE".to_string()),
            (
                "x-amzn-producer-start-timestamp",
                format!("{}.{:03}", start_wall_ms / 1000, start_wall_ms % 1000),
            ),
            ("x-amzn-fragment-acknowledgment-required", "1".to_string()),
            ("transfer-encoding", "chunked".to_string()),
            ("connection", "keep-alive".to_string()),
            ("user-agent", "kvs-bench-loadgen/0.1".to_string()),
        ],
        &[],
    )?;
    let (rd, mut wr) = tokio::io::split(conn);
    let mut first = head;
    chunk_frame(&mut first, &cfg.source.header, cfg.chunk_bytes);
    wr.write_all(&first).await?;
    wr.flush().await?;

    // Ack reader.
    let reader = {
        let shared = Arc::clone(shared);
        let st = Arc::clone(st);
        let name = name.to_string();
        tokio::spawn(async move {
            let r = read_acks(rd, &shared, &st).await;
            if let Err(e) = &r {
                shared.sample(format!("stream {name}: ack reader: {e:#}"));
            }
            st.notify.notify_waiters();
            r
        })
    };

    let mut k: u64 = 0;
    let mut buf = Vec::new();
    loop {
        let (offset, idx) = cfg.source.schedule(k);
        match cfg.pacing {
            Pacing::RealTime => {
                let at = start + Duration::from_millis(offset);
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
            }
            Pacing::Burst { window, fragments } => {
                if k >= fragments {
                    break;
                }
                loop {
                    let notified = st.notify.notified();
                    if k < st.persisted.load(Relaxed) + window || reader.is_finished() {
                        break;
                    }
                    notified.await;
                }
            }
        }
        if reader.is_finished() {
            bail!("ack stream ended while uploading (after {k} fragments)");
        }
        let tc = start_wall_ms + offset;
        let frag = cfg.source.fragment(idx, tc);
        buf.clear();
        chunk_frame(&mut buf, &frag, cfg.chunk_bytes);
        st.pending.lock().unwrap().insert(
            tc,
            Pending {
                len: frag.len() as u64,
                ..Default::default()
            },
        );
        wr.write_all(&buf).await.context("writing a fragment")?;
        wr.flush().await?;
        let written = Instant::now();
        shared.sent_frags.fetch_add(1, Relaxed);
        shared.sent_bytes.fetch_add(frag.len() as u64, Relaxed);
        {
            let mut p = st.pending.lock().unwrap();
            if let Some(e) = p.get_mut(&tc) {
                e.written = Some(written);
                if let Some(r) = e.received_at {
                    Shared::record(&shared.received_lat, r.saturating_duration_since(written));
                }
                if let Some(a) = e.persisted_at {
                    Shared::record(&shared.persisted_lat, a.saturating_duration_since(written));
                    p.remove(&tc);
                }
            }
        }
        k += 1;
    }

    // Drain: wait for the outstanding PERSISTED acks.
    let drain_until = Instant::now() + cfg.drain;
    loop {
        let notified = st.notify.notified();
        if st.pending.lock().unwrap().is_empty() || reader.is_finished() {
            break;
        }
        if tokio::time::timeout_at(drain_until.into(), notified)
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = wr.write_all(b"0\r\n\r\n").await;
    let _ = wr.flush().await;
    match tokio::time::timeout(Duration::from_secs(10), reader).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            shared.sample(format!(
                "stream {name}: response did not end 10 s after the last chunk"
            ));
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}

async fn read_acks<R: tokio::io::AsyncRead + Unpin>(
    rd: R,
    shared: &Shared,
    st: &StreamState,
) -> anyhow::Result<()> {
    let mut reader = HttpReader::new(rd);
    let head = reader.read_head().await?;
    if head.status != 200 {
        let mut body = Vec::new();
        while let Ok(Some(c)) = reader.next_body_chunk(&head).await {
            body.extend_from_slice(&c);
            if body.len() > 4096 {
                break;
            }
        }
        bail!(
            "PutMedia HTTP {}: {}",
            head.status,
            String::from_utf8_lossy(&body)
        );
    }
    let mut line = Vec::new();
    while let Some(chunk) = reader.next_body_chunk(&head).await? {
        let now = Instant::now();
        for &b in &chunk {
            if b == b'\n' {
                handle_ack(&line, now, shared, st);
                line.clear();
            } else {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        handle_ack(&line, Instant::now(), shared, st);
    }
    Ok(())
}

fn handle_ack(line: &[u8], now: Instant, shared: &Shared, st: &StreamState) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        shared.sample(format!("unparseable ack: {text}"));
        return;
    };
    let ev = v.get("EventType").and_then(Value::as_str).unwrap_or("");
    let tc = v.get("FragmentTimecode").and_then(Value::as_u64);
    match ev {
        "IDLE" => {
            shared.idle.fetch_add(1, Relaxed);
        }
        "BUFFERING" => {
            shared.buffering.fetch_add(1, Relaxed);
        }
        "RECEIVED" => {
            shared.received_frags.fetch_add(1, Relaxed);
            let mut p = st.pending.lock().unwrap();
            match tc.and_then(|tc| p.get_mut(&tc)) {
                Some(e) => match e.written {
                    Some(w) => {
                        Shared::record(&shared.received_lat, now.saturating_duration_since(w))
                    }
                    None => e.received_at = Some(now),
                },
                None => {
                    shared.unmatched.fetch_add(1, Relaxed);
                }
            }
        }
        "PERSISTED" => {
            if let Some(n) = v.get("FragmentNumber").and_then(Value::as_str) {
                let mut f = st.first_fragment_number.lock().unwrap();
                if f.is_none() {
                    *f = Some(n.to_string());
                }
            }
            let mut p = st.pending.lock().unwrap();
            match tc.and_then(|tc| p.get_mut(&tc).map(|e| (tc, e))) {
                Some((tc, e)) => {
                    shared.persisted_frags.fetch_add(1, Relaxed);
                    shared.persisted_bytes.fetch_add(e.len, Relaxed);
                    match e.written {
                        Some(w) => {
                            Shared::record(&shared.persisted_lat, now.saturating_duration_since(w));
                            p.remove(&tc);
                        }
                        None => e.persisted_at = Some(now),
                    }
                    st.persisted.fetch_add(1, Relaxed);
                }
                None => {
                    shared.unmatched.fetch_add(1, Relaxed);
                }
            }
            drop(p);
            st.notify.notify_waiters();
        }
        "ERROR" => {
            shared.error_acks.fetch_add(1, Relaxed);
            let code = format!(
                "{} {}",
                v.get("ErrorId").map(|x| x.to_string()).unwrap_or_default(),
                v.get("ErrorCode").and_then(Value::as_str).unwrap_or("")
            );
            *shared.error_codes.lock().unwrap().entry(code).or_default() += 1;
            shared.sample(format!("ERROR ack: {text}"));
            if let Some(tc) = tc {
                st.pending.lock().unwrap().remove(&tc);
            }
            st.notify.notify_waiters();
        }
        other => {
            shared.sample(format!("unknown ack type {other}: {text}"));
        }
    }
}
