//! `loadgen kinesis get`: GetRecords read throughput from TRIM_HORIZON, then put-to-get
//! latency with one polling reader per shard.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{Session, Target, describe_failure, error_code, sha256_hex};
use super::put::{PutStats, blast};
use super::records::{Body, decoded_len, now_us, stamp_of};
use super::sample::{Sampler, merge};
use super::{Ctx, Errors, Load, ensure_stream, mib};
use crate::stats::{hist_json, new_hist};

pub(crate) struct Config {
    pub(crate) stream: String,
    pub(crate) shards: u32,
    pub(crate) load: Load,
    pub(crate) fill: Duration,
    pub(crate) expect_records: Option<u64>,
    pub(crate) limit: u32,
    pub(crate) read_timeout: Duration,
    pub(crate) latency: Duration,
    pub(crate) latency_rate: f64,
    pub(crate) latency_batch: usize,
    pub(crate) poll: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsOut<'a> {
    #[serde(borrow, default)]
    records: Vec<Rec<'a>>,
    next_shard_iterator: Option<String>,
    millis_behind_latest: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Rec<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// One reader's counts.
struct ReadStats {
    records: u64,
    data_bytes: u64,
    response_bytes: u64,
    calls: u64,
    empty_calls: u64,
    throttled: u64,
    hist: Histogram<u64>,
    /// Put-to-get latency of stamped records.
    arrival: Histogram<u64>,
    errors: Errors,
}

impl ReadStats {
    fn new() -> Self {
        Self {
            records: 0,
            data_bytes: 0,
            response_bytes: 0,
            calls: 0,
            empty_calls: 0,
            throttled: 0,
            hist: new_hist(),
            arrival: new_hist(),
            errors: Errors::default(),
        }
    }

    fn merge(&mut self, o: ReadStats) {
        self.records += o.records;
        self.data_bytes += o.data_bytes;
        self.response_bytes += o.response_bytes;
        self.calls += o.calls;
        self.empty_calls += o.empty_calls;
        self.throttled += o.throttled;
        self.hist.add(&o.hist).ok();
        self.arrival.add(&o.arrival).ok();
        self.errors.merge(o.errors);
    }
}

async fn shard_iterator(
    s: &mut Session,
    stream: &str,
    shard: &str,
    kind: &str,
) -> anyhow::Result<String> {
    let (status, v) = s
        .json(
            "GetShardIterator",
            &json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}),
        )
        .await?;
    if status != 200 {
        bail!("GetShardIterator {stream}/{shard}: HTTP {status} {v}");
    }
    v["ShardIterator"]
        .as_str()
        .map(str::to_owned)
        .context("GetShardIterator: no ShardIterator")
}

/// Outcome of one GetRecords call.
enum Page {
    Records {
        count: u64,
        next: Option<String>,
        behind: Option<u64>,
    },
    Throttled,
}

/// One GetRecords call; books counts (and arrival latency of stamped records).
async fn get_records(
    s: &mut Session,
    iterator: &str,
    limit: u32,
    st: &mut ReadStats,
) -> anyhow::Result<Page> {
    let body = serde_json::to_vec(&json!({"ShardIterator": iterator, "Limit": limit}))?;
    let t = Instant::now();
    let status = s.call("GetRecords", &body, &sha256_hex(&body)).await?;
    let arrived = now_us();
    st.calls += 1;
    if status != 200 {
        let v: Value = serde_json::from_slice(s.body()).unwrap_or(Value::Null);
        if error_code(&v) == "ProvisionedThroughputExceededException" {
            st.throttled += 1;
            return Ok(Page::Throttled);
        }
        bail!("{}", describe_failure("GetRecords", status, s.body()));
    }
    st.hist.saturating_record(t.elapsed().as_micros() as u64);
    st.response_bytes += s.body().len() as u64;
    let out: GetRecordsOut<'_> =
        serde_json::from_slice(s.body()).context("parsing the GetRecords response")?;
    for r in &out.records {
        st.data_bytes += decoded_len(&r.data) as u64;
        if let Some(ts) = stamp_of(&r.data) {
            st.arrival
                .saturating_record(arrived.saturating_sub(ts).max(1));
        }
    }
    let count = out.records.len() as u64;
    st.records += count;
    if count == 0 {
        st.empty_calls += 1;
    }
    Ok(Page::Records {
        count,
        next: out.next_shard_iterator,
        behind: out.millis_behind_latest,
    })
}

/// Reads one shard from TRIM_HORIZON as fast as it answers, until it is caught up.
async fn drain_shard(
    target: Arc<Target>,
    stream: String,
    shard: String,
    limit: u32,
    deadline: Instant,
) -> ReadStats {
    let mut st = ReadStats::new();
    let mut s = Session::new(target);
    let mut iterator = match shard_iterator(&mut s, &stream, &shard, "TRIM_HORIZON").await {
        Ok(i) => i,
        Err(e) => {
            st.errors.add(|| format!("{e:#}"));
            return st;
        }
    };
    let mut empties = 0;
    while Instant::now() < deadline {
        match get_records(&mut s, &iterator, limit, &mut st).await {
            Ok(Page::Throttled) => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(Page::Records {
                count,
                next,
                behind,
            }) => {
                let Some(next) = next else { break };
                iterator = next;
                if count == 0 {
                    empties += 1;
                    // Caught up: the server says so, or it keeps answering empty pages.
                    if behind == Some(0) || empties >= 3 {
                        break;
                    }
                } else {
                    empties = 0;
                }
            }
            Err(e) => {
                st.errors.add(|| format!("{e:#}"));
                break;
            }
        }
    }
    st
}

/// Polls one shard every `poll` from LATEST until `stop`.
async fn poll_shard(
    target: Arc<Target>,
    stream: String,
    shard: String,
    mut iterator: String,
    poll: Duration,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
) -> ReadStats {
    let mut st = ReadStats::new();
    let mut s = Session::new(target);
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match get_records(&mut s, &iterator, 10_000, &mut st).await {
            Ok(Page::Records { count, next, .. }) => {
                received.fetch_add(count, Ordering::Relaxed);
                match next {
                    Some(n) => iterator = n,
                    None => {
                        st.errors.add(|| format!("{shard}: no NextShardIterator"));
                        break;
                    }
                }
            }
            Ok(Page::Throttled) => {}
            Err(e) => {
                st.errors.add(|| format!("{shard}: {e:#}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Ok(i) = shard_iterator(&mut s, &stream, &shard, "LATEST").await {
                    iterator = i;
                }
            }
        }
        tokio::time::sleep_until((t + poll).into()).await;
    }
    st
}

fn read_json(st: &ReadStats, secs: f64) -> Value {
    json!({
        "records": st.records,
        "records_per_s": st.records as f64 / secs,
        "MiB_per_s": mib(st.data_bytes) / secs,
        "response_MB_per_s": st.response_bytes as f64 / secs / 1e6,
        "calls": st.calls,
        "empty_calls": st.empty_calls,
        "throttled_calls": st.throttled,
        "records_per_call": if st.calls > st.empty_calls { st.records as f64 / (st.calls - st.empty_calls) as f64 } else { 0.0 },
        "get_records_latency_ms": hist_json(&st.hist),
        "errors": st.errors.count,
        "error_samples": st.errors.samples,
    })
}

pub(crate) async fn run(ctx: &Ctx, cfg: Config) -> anyhow::Result<Value> {
    let mut v = ctx.header("kinesis-get");
    let shards = ensure_stream(&ctx.target, &cfg.stream, cfg.shards).await?;
    merge(
        &mut v,
        json!({"stream": cfg.stream, "shards": shards.len(), "limit": cfg.limit}),
    );

    // --- fill ---------------------------------------------------------------------------
    let mut expect = cfg.expect_records;
    if !cfg.fill.is_zero() {
        eprintln!(
            "loadgen: kinesis get ({}): filling {} for {:?} ({} producers x {} records x {} B)",
            ctx.label,
            cfg.stream,
            cfg.fill,
            cfg.load.producers,
            cfg.load.batch,
            cfg.load.record_bytes
        );
        let (stats, secs) = blast(&ctx.target, &cfg.stream, &cfg.load, cfg.fill).await;
        expect = Some(expect.unwrap_or(0) + stats.records);
        merge(
            &mut v,
            json!({"fill": stats.json(secs, cfg.load.record_bytes)}),
        );
    }

    // --- read throughput ------------------------------------------------------------------
    eprintln!(
        "loadgen: kinesis get ({}): reading {} from TRIM_HORIZON ({} readers)",
        ctx.label,
        cfg.stream,
        shards.len()
    );
    let sampler = Sampler::start(&ctx.server_pids);
    let t0 = Instant::now();
    let deadline = t0 + cfg.read_timeout;
    let mut set = tokio::task::JoinSet::new();
    for shard in &shards {
        set.spawn(drain_shard(
            Arc::clone(&ctx.target),
            cfg.stream.clone(),
            shard.clone(),
            cfg.limit,
            deadline,
        ));
    }
    let mut read = ReadStats::new();
    while let Some(r) = set.join_next().await {
        if let Ok(s) = r {
            read.merge(s);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut rj = read_json(&read, secs);
    merge(
        &mut rj,
        json!({
            "seconds": secs,
            "expected_records": expect,
            "complete": expect.map(|e| read.records == e),
            "timed_out": Instant::now() >= deadline,
        }),
    );
    merge(&mut rj, sampler.finish().await);
    if let Some(o) = rj.as_object_mut() {
        o.remove("rss_series_kib");
    }
    merge(&mut v, json!({"read": rj}));

    // --- put-to-get latency -----------------------------------------------------------------
    if !cfg.latency.is_zero() {
        let lat = latency(ctx, &cfg).await?;
        merge(&mut v, json!({"latency": lat}));
    }
    Ok(v)
}

async fn latency(ctx: &Ctx, cfg: &Config) -> anyhow::Result<Value> {
    let stream = format!("{}-lat", cfg.stream);
    let shards = ensure_stream(&ctx.target, &stream, cfg.shards).await?;
    eprintln!(
        "loadgen: kinesis get ({}): put-to-get latency on {stream}, {} records/s in batches of {}, readers poll every {:?}, {:?}",
        ctx.label, cfg.latency_rate, cfg.latency_batch, cfg.poll, cfg.latency
    );
    let mut s = Session::new(Arc::clone(&ctx.target));
    let mut iterators = Vec::new();
    for shard in &shards {
        iterators.push(shard_iterator(&mut s, &stream, shard, "LATEST").await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = tokio::task::JoinSet::new();
    for (shard, it) in shards.iter().zip(iterators) {
        readers.spawn(poll_shard(
            Arc::clone(&ctx.target),
            stream.clone(),
            shard.clone(),
            it,
            cfg.poll,
            Arc::clone(&stop),
            Arc::clone(&received),
        ));
    }
    // Readers are polling before the first record is put.
    tokio::time::sleep(cfg.poll).await;

    let sampler = Sampler::start(&ctx.server_pids);
    let mut body = Body::new(&stream, "lat", cfg.latency_batch, cfg.load.record_bytes, 99);
    let interval = Duration::from_secs_f64(cfg.latency_batch as f64 / cfg.latency_rate.max(0.001));
    let start = Instant::now();
    let deadline = start + cfg.latency;
    let mut put = PutStats::new();
    let mut session = Session::new(Arc::clone(&ctx.target));
    session.connect().await?;
    for k in 0u64.. {
        let at = start + interval.mul_f64(k as f64);
        if at >= deadline {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        if !body.stamp(now_us()) {
            bail!(
                "records of {} B cannot carry a timestamp",
                cfg.load.record_bytes
            );
        }
        put.send(&mut session, &body).await;
    }
    put.connects = session.connects;
    let put_secs = start.elapsed().as_secs_f64();
    // Let the readers pick up the last records.
    let grace = Instant::now() + cfg.poll * 2 + Duration::from_secs(3);
    while received.load(Ordering::Relaxed) < put.records && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut read = ReadStats::new();
    while let Some(r) = readers.join_next().await {
        if let Ok(s) = r {
            read.merge(s);
        }
    }
    let mut v = json!({
        "stream": stream,
        "shards": shards.len(),
        "rate_records_per_s": cfg.latency_rate,
        "batch": cfg.latency_batch,
        "poll_ms": cfg.poll.as_millis() as u64,
        "seconds": put_secs,
        "records_put": put.records,
        "records_read": read.records,
        "put_to_get_ms": hist_json(&read.arrival),
        "put": put.json(put_secs, cfg.load.record_bytes),
        "get_calls": read.calls,
        "get_empty_calls": read.empty_calls,
        "get_throttled_calls": read.throttled,
        "get_records_latency_ms": hist_json(&read.hist),
        "get_errors": read.errors.count,
        "get_error_samples": read.errors.samples,
    });
    let mut sample = sampler.finish().await;
    if let Some(o) = sample.as_object_mut() {
        o.remove("rss_series_kib");
    }
    merge(&mut v, sample);
    Ok(v)
}
