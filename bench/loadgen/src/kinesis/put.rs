//! `loadgen kinesis put`: closed-loop PutRecords throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::http::{Session, Target, describe_failure};
use super::records::{Body, failed_record_count, first_record_error};
use super::sample::{Sampler, merge};
use super::{Ctx, Errors, Load, mib};
use crate::stats::{hist_json, new_hist};

/// What one producer (or a merge of them) did.
pub(crate) struct PutStats {
    pub(crate) hist: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) records: u64,
    pub(crate) failed_records: u64,
    pub(crate) request_bytes: u64,
    pub(crate) errors: Errors,
    pub(crate) record_errors: Errors,
    pub(crate) connects: u64,
}

impl PutStats {
    pub(crate) fn new() -> Self {
        Self {
            hist: new_hist(),
            requests: 0,
            records: 0,
            failed_records: 0,
            request_bytes: 0,
            errors: Errors::default(),
            record_errors: Errors::default(),
            connects: 0,
        }
    }

    pub(crate) fn merge(&mut self, o: PutStats) {
        self.hist.add(&o.hist).ok();
        self.requests += o.requests;
        self.records += o.records;
        self.failed_records += o.failed_records;
        self.request_bytes += o.request_bytes;
        self.errors.merge(o.errors);
        self.record_errors.merge(o.record_errors);
        self.connects += o.connects;
    }

    /// Sends `body` once and books the outcome; returns the request's latency when it
    /// succeeded (HTTP 200).
    pub(crate) async fn send(&mut self, session: &mut Session, body: &Body) -> Option<Duration> {
        let t = Instant::now();
        match session.call(body.op, &body.bytes, &body.sha256).await {
            Ok(200) => {
                let took = t.elapsed();
                self.hist.saturating_record(took.as_micros() as u64);
                self.requests += 1;
                self.request_bytes += body.bytes.len() as u64;
                let failed = if body.op == "PutRecords" {
                    failed_record_count(session.body()).unwrap_or(0)
                } else {
                    0
                };
                if failed > 0 {
                    self.failed_records += failed;
                    self.record_errors
                        .add(|| first_record_error(session.body()).unwrap_or_else(|| "?".into()));
                }
                self.records += body.records as u64 - failed.min(body.records as u64);
                Some(took)
            }
            Ok(status) => {
                self.errors
                    .add(|| describe_failure(body.op, status, session.body()));
                // Throttled or failing: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
            Err(e) => {
                self.errors.add(|| format!("{}: {e:#}", body.op));
                tokio::time::sleep(Duration::from_millis(100)).await;
                None
            }
        }
    }

    /// The JSON of these stats over a window of `secs`, records of `record_bytes`.
    pub(crate) fn json(&self, secs: f64, record_bytes: usize) -> Value {
        json!({
            "requests": self.requests,
            "records": self.records,
            "records_per_s": self.records as f64 / secs,
            "MiB_per_s": mib(self.records * record_bytes as u64) / secs,
            "request_MB_per_s": self.request_bytes as f64 / secs / 1e6,
            "failed_records": self.failed_records,
            "record_error_samples": self.record_errors.samples,
            "errors": self.errors.count,
            "error_samples": self.errors.samples,
            "connects": self.connects,
            "request_latency_ms": hist_json(&self.hist),
        })
    }
}

async fn producer(target: Arc<Target>, body: Body, start: Instant, deadline: Instant) -> PutStats {
    let mut stats = PutStats::new();
    let mut session = Session::new(target);
    if let Err(e) = session.connect().await {
        stats.errors.add(|| format!("connect: {e:#}"));
    }
    tokio::time::sleep_until(start.into()).await;
    while Instant::now() < deadline {
        stats.send(&mut session, &body).await;
    }
    stats.connects = session.connects;
    stats
}

/// Bodies for `producers` producers: batch of `batch` records, distinct partition keys.
pub(crate) fn bodies(stream: &str, load: &Load, tag: &str) -> Vec<Body> {
    (0..load.producers)
        .map(|p| {
            Body::new(
                stream,
                &format!("{tag}{p}"),
                load.batch.max(1),
                load.record_bytes,
                p as u64 + 1,
            )
        })
        .collect()
}

/// N producers re-sending their batch until `duration` has passed; returns the merged stats
/// and the measured window.
pub(crate) async fn blast(
    target: &Arc<Target>,
    stream: &str,
    load: &Load,
    duration: Duration,
) -> (PutStats, f64) {
    let bodies = bodies(stream, load, "p");
    // Let every producer connect first.
    let start = Instant::now() + Duration::from_millis(300);
    let deadline = start + duration;
    let mut set = tokio::task::JoinSet::new();
    for body in bodies {
        set.spawn(producer(Arc::clone(target), body, start, deadline));
    }
    let mut all = PutStats::new();
    while let Some(r) = set.join_next().await {
        if let Ok(s) = r {
            all.merge(s);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    (all, secs)
}

pub(crate) async fn run(
    ctx: &Ctx,
    stream: &str,
    shards: usize,
    load: &Load,
    duration: Duration,
) -> anyhow::Result<Value> {
    eprintln!(
        "loadgen: kinesis put ({}) {} producers x {} records x {} B for {:?} to {} ({stream}, {shards} shards)",
        ctx.label,
        load.producers,
        load.batch,
        load.record_bytes,
        duration,
        ctx.target.url()
    );
    let sampler = Sampler::start(&ctx.server_pids);
    let (stats, secs) = blast(&ctx.target, stream, load, duration).await;
    let sample = sampler.finish().await;
    let mut v = ctx.header("kinesis-put");
    merge(
        &mut v,
        json!({
            "stream": stream,
            "shards": shards,
            "producers": load.producers,
            "batch": load.batch,
            "record_bytes": load.record_bytes,
            "duration_s": duration.as_secs_f64(),
            "measured_s": secs,
        }),
    );
    merge(&mut v, stats.json(secs, load.record_bytes));
    merge(&mut v, sample);
    Ok(v)
}
