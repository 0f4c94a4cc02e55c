//! `loadgen kinesis put-latency`: open-loop load at a fixed rate, latency measured from the
//! send and from the scheduled send time when a call had to wait for the previous one on its
//! connection (so a slow response also counts against the calls queued behind it: no
//! coordinated omission).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::http::{Session, Target};
use super::put::{PutStats, bodies};
use super::records::Body;
use super::sample::{Sampler, merge};
use super::{Ctx, Load};
use crate::stats::{hist_json, new_hist};

pub(crate) struct Config {
    pub(crate) load: Load,
    pub(crate) rate: f64,
    pub(crate) probe_rate: f64,
    pub(crate) probe_conns: usize,
    pub(crate) duration: Duration,
}

struct Paced {
    stats: PutStats,
    /// From the scheduled send time of calls sent late (connection busy), else from the send.
    scheduled: Histogram<u64>,
    /// Calls sent later than 1 ms after their slot (the connection was still busy).
    late: u64,
}

/// Sends `bodies` round-robin at `start + offset + k * interval` until `deadline`.
async fn paced(
    target: Arc<Target>,
    bodies: Vec<Body>,
    start: Instant,
    offset: Duration,
    interval: Duration,
    deadline: Instant,
) -> Paced {
    let mut p = Paced {
        stats: PutStats::new(),
        scheduled: new_hist(),
        late: 0,
    };
    let mut session = Session::new(target);
    if let Err(e) = session.connect().await {
        p.stats.errors.add(|| format!("connect: {e:#}"));
    }
    for k in 0u64.. {
        let at = start + offset + interval.mul_f64(k as f64);
        if at >= deadline {
            break;
        }
        // The latency counts from the slot when the connection was still busy with the
        // previous call (the server made this one wait), else from the actual send: the
        // timer wakes up to ~1 ms after the slot, which is the generator's, not the server's.
        let now = Instant::now();
        let from = if at > now {
            tokio::time::sleep_until(at.into()).await;
            Instant::now()
        } else {
            if now - at > Duration::from_millis(1) {
                p.late += 1;
            }
            at
        };
        let body = &bodies[k as usize % bodies.len()];
        if p.stats.send(&mut session, body).await.is_some() {
            p.scheduled
                .saturating_record(from.elapsed().as_micros() as u64);
        }
    }
    p.stats.connects = session.connects;
    p
}

async fn group(
    target: &Arc<Target>,
    per_conn: Vec<Vec<Body>>,
    start: Instant,
    interval: Duration,
    deadline: Instant,
) -> Paced {
    let n = per_conn.len();
    let mut set = tokio::task::JoinSet::new();
    for (i, bodies) in per_conn.into_iter().enumerate() {
        // Connection i takes every n-th slot of the aggregate schedule.
        let offset = interval.mul_f64(i as f64 / n as f64);
        set.spawn(paced(
            Arc::clone(target),
            bodies,
            start,
            offset,
            interval,
            deadline,
        ));
    }
    let mut all = Paced {
        stats: PutStats::new(),
        scheduled: new_hist(),
        late: 0,
    };
    while let Some(r) = set.join_next().await {
        if let Ok(p) = r {
            all.stats.merge(p.stats);
            all.scheduled.add(&p.scheduled).ok();
            all.late += p.late;
        }
    }
    all
}

fn paced_json(p: &Paced, secs: f64, record_bytes: usize) -> Value {
    let mut v = p.stats.json(secs, record_bytes);
    merge(
        &mut v,
        json!({
            "latency_from_schedule_ms": hist_json(&p.scheduled),
            "late_sends": p.late,
        }),
    );
    v
}

pub(crate) async fn run(
    ctx: &Ctx,
    stream: &str,
    shards: usize,
    cfg: Config,
) -> anyhow::Result<Value> {
    let load = &cfg.load;
    eprintln!(
        "loadgen: kinesis put-latency ({}) {} records/s in batches of {} over {} producers + {} PutRecord/s probes for {:?} to {}",
        ctx.label,
        cfg.rate,
        load.batch,
        load.producers,
        cfg.probe_rate,
        cfg.duration,
        ctx.target.url()
    );
    let start = Instant::now() + Duration::from_millis(300);
    let deadline = start + cfg.duration;
    let sampler = Sampler::start(&ctx.server_pids);

    let bg = (cfg.rate > 0.0 && load.producers > 0).then(|| {
        // Aggregate request interval: batch / rate.
        let interval = Duration::from_secs_f64(load.batch.max(1) as f64 / cfg.rate);
        let per_conn: Vec<Vec<Body>> = bodies(stream, load, "l")
            .into_iter()
            .map(|b| vec![b])
            .collect();
        // Each producer: every `producers`-th slot, i.e. its own interval is N times longer.
        let per_interval = interval.mul_f64(load.producers as f64);
        group(&ctx.target, per_conn, start, per_interval, deadline)
    });
    let probes = (cfg.probe_rate > 0.0).then(|| {
        let per_interval = Duration::from_secs_f64(cfg.probe_conns as f64 / cfg.probe_rate);
        let per_conn: Vec<Vec<Body>> = (0..cfg.probe_conns)
            .map(|c| {
                (0..16)
                    .map(|k| {
                        Body::new(
                            stream,
                            &format!("probe{c}-{k}"),
                            1,
                            load.record_bytes,
                            1000 + (c * 16 + k) as u64,
                        )
                    })
                    .collect()
            })
            .collect();
        group(&ctx.target, per_conn, start, per_interval, deadline)
    });
    let (bg, probes) = match (bg, probes) {
        (Some(b), Some(p)) => {
            let (b, p) = tokio::join!(b, p);
            (Some(b), Some(p))
        }
        (Some(b), None) => (Some(b.await), None),
        (None, Some(p)) => (None, Some(p.await)),
        (None, None) => (None, None),
    };
    let secs = start.elapsed().as_secs_f64();
    let sample = sampler.finish().await;

    let mut v = ctx.header("kinesis-put-latency");
    merge(
        &mut v,
        json!({
            "stream": stream,
            "shards": shards,
            "rate_records_per_s": cfg.rate,
            "producers": load.producers,
            "batch": load.batch,
            "record_bytes": load.record_bytes,
            "probe_rate_per_s": cfg.probe_rate,
            "probe_conns": cfg.probe_conns,
            "duration_s": cfg.duration.as_secs_f64(),
            "measured_s": secs,
            "load": bg.as_ref().map(|p| paced_json(p, secs, load.record_bytes)),
            "put_record": probes.as_ref().map(|p| paced_json(p, secs, load.record_bytes)),
        }),
    );
    merge(&mut v, sample);
    Ok(v)
}
