//! `loadgen kinesis`: Kinesis Data Streams load (JSON 1.1 over keep-alive HTTP/1.1, plain or
//! TLS, SigV4 service `kinesis`) for ingest-server, kinesalite and moto alike (bench/kinesis.sh).
//!
//! - `put`: PutRecords throughput. N producers, one connection each, each re-sending one
//!   batch body built (and hashed) once: distinct partition keys, records of R bytes.
//! - `put-latency`: paced PutRecords load at a fixed record rate plus PutRecord probes at a
//!   fixed call rate; latency from send and from the scheduled send time (open loop).
//! - `get`: GetRecords read throughput from TRIM_HORIZON (one reader per shard, as AWS
//!   consumers do), then put-to-get latency: records carry their send time, readers poll each
//!   shard every `--poll-ms` from LATEST.

mod get;
mod http;
mod latency;
mod put;
mod records;
mod sample;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use http::{Session, Signer, Target, error_code};

#[derive(Args, Clone)]
pub(crate) struct Conn {
    /// http://host:port or https://host:port (the server's main listener).
    #[arg(long)]
    endpoint: String,
    /// CA certificate (PEM) of an https endpoint.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// AWS credentials file ([default] profile, else the first with keys). Default: dummy keys,
    /// which kinesalite and moto accept (they need a signed request, not a valid one).
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Region of the SigV4 scope.
    #[arg(long, default_value = "us-west-2")]
    region: String,
    /// Server process ids for CPU and RSS from /proc (comma-separated).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Name of the server in the report.
    #[arg(long, default_value = "server")]
    label: String,
    /// Also write the JSON result here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub(crate) struct StreamArgs {
    /// Stream name; created when missing (waits for ACTIVE).
    #[arg(long, default_value = "loadgen")]
    stream: String,
    /// Shard count of a created stream.
    #[arg(long, default_value_t = 4)]
    shards: u32,
}

#[derive(Args, Clone)]
pub(crate) struct Load {
    /// Concurrent producers, one keep-alive connection each.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Records per PutRecords request (1: PutRecord).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Bytes of record data.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// PutRecords throughput: records/s, MiB/s, request latency, server CPU and RSS.
    Put {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        stream: StreamArgs,
        #[command(flatten)]
        load: Load,
        /// Seconds of load.
        #[arg(long, default_value_t = 30)]
        duration: u64,
    },
    /// Latency at a fixed load: paced PutRecords (or PutRecord with --batch 1) at --rate
    /// records/s, plus PutRecord probes at --probe-rate calls/s on their own connections.
    PutLatency {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        stream: StreamArgs,
        #[command(flatten)]
        load: Load,
        /// Records/s of the paced load, over all producers (0: probes only).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// PutRecord calls/s of the probes (0: none).
        #[arg(long, default_value_t = 200.0)]
        probe_rate: f64,
        /// Probe connections (calls are spread round-robin over them).
        #[arg(long, default_value_t = 4)]
        probe_conns: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 30)]
        duration: u64,
    },
    /// GetRecords read throughput from TRIM_HORIZON, then put-to-get latency on a new stream
    /// (STREAM-lat) with readers polling every shard.
    Get {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        stream: StreamArgs,
        /// Producers, batch and record size of the fill (--fill-seconds).
        #[command(flatten)]
        load: Load,
        /// Seconds of PutRecords at full speed before reading (0: read what the stream holds).
        #[arg(long, default_value_t = 0)]
        fill_seconds: u64,
        /// Records the stream holds, when filled elsewhere (checked against what is read).
        #[arg(long)]
        expect_records: Option<u64>,
        /// GetRecords Limit.
        #[arg(long, default_value_t = 10000)]
        limit: u32,
        /// Give up reading after this many seconds.
        #[arg(long, default_value_t = 300)]
        read_timeout: u64,
        /// Seconds of the put-to-get latency phase (0: skip it).
        #[arg(long, default_value_t = 30)]
        latency_seconds: u64,
        /// Records/s put during the latency phase.
        #[arg(long, default_value_t = 1000.0)]
        latency_rate: f64,
        /// Records per PutRecords request of the latency phase.
        #[arg(long, default_value_t = 10)]
        latency_batch: usize,
        /// Each reader's GetRecords period per shard (AWS allows 5 calls/s per shard: 200 ms).
        #[arg(long, default_value_t = 200)]
        poll_ms: u64,
    },
}

/// What every mode shares.
pub(crate) struct Ctx {
    target: Arc<Target>,
    label: String,
    server_pids: Vec<u32>,
}

impl Ctx {
    fn new(conn: &Conn) -> anyhow::Result<Self> {
        let signer = Signer::new(conn.credentials.as_deref(), &conn.region)?;
        Ok(Self {
            target: Target::new(&conn.endpoint, conn.ca.as_deref(), signer)?,
            label: conn.label.clone(),
            server_pids: conn.server_pid.clone(),
        })
    }

    /// The fields every result starts with.
    fn header(&self, kind: &str) -> Value {
        json!({
            "kind": kind,
            "label": self.label,
            "endpoint": self.target.url(),
        })
    }
}

pub(crate) async fn run(cmd: Cmd) -> anyhow::Result<Value> {
    let (conn, v) = match cmd {
        Cmd::Put {
            conn,
            stream,
            load,
            duration,
        } => {
            let ctx = Ctx::new(&conn)?;
            let shards = ensure_stream(&ctx.target, &stream.stream, stream.shards).await?;
            let v = put::run(
                &ctx,
                &stream.stream,
                shards.len(),
                &load,
                Duration::from_secs(duration),
            )
            .await?;
            (conn, v)
        }
        Cmd::PutLatency {
            conn,
            stream,
            load,
            rate,
            probe_rate,
            probe_conns,
            duration,
        } => {
            let ctx = Ctx::new(&conn)?;
            let shards = ensure_stream(&ctx.target, &stream.stream, stream.shards).await?;
            let v = latency::run(
                &ctx,
                &stream.stream,
                shards.len(),
                latency::Config {
                    load,
                    rate,
                    probe_rate,
                    probe_conns: probe_conns.max(1),
                    duration: Duration::from_secs(duration),
                },
            )
            .await?;
            (conn, v)
        }
        Cmd::Get {
            conn,
            stream,
            load,
            fill_seconds,
            expect_records,
            limit,
            read_timeout,
            latency_seconds,
            latency_rate,
            latency_batch,
            poll_ms,
        } => {
            let ctx = Ctx::new(&conn)?;
            let v = get::run(
                &ctx,
                get::Config {
                    stream: stream.stream,
                    shards: stream.shards,
                    load,
                    fill: Duration::from_secs(fill_seconds),
                    expect_records,
                    limit,
                    read_timeout: Duration::from_secs(read_timeout),
                    latency: Duration::from_secs(latency_seconds),
                    latency_rate,
                    latency_batch: latency_batch.max(1),
                    poll: Duration::from_millis(poll_ms.max(1)),
                },
            )
            .await?;
            (conn, v)
        }
    };
    if let Some(out) = &conn.out {
        std::fs::write(out, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(v)
}

/// Creates the stream unless it exists, waits until DescribeStream says ACTIVE; returns the
/// shard ids.
pub(crate) async fn ensure_stream(
    target: &Arc<Target>,
    name: &str,
    shards: u32,
) -> anyhow::Result<Vec<String>> {
    let mut s = Session::new(Arc::clone(target));
    let (status, v) = s
        .json(
            "CreateStream",
            &json!({"StreamName": name, "ShardCount": shards}),
        )
        .await
        .with_context(|| format!("CreateStream {name} on {}", target.url()))?;
    if status != 200 && error_code(&v) != "ResourceInUseException" {
        bail!("CreateStream {name}: HTTP {status} {v}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = s
            .json("DescribeStream", &json!({"StreamName": name}))
            .await?;
        let d = &v["StreamDescription"];
        if status == 200 && d["StreamStatus"] == "ACTIVE" {
            let ids: Vec<String> = d["Shards"]
                .as_array()
                .context("DescribeStream: Shards")?
                .iter()
                .filter(|s| s["SequenceNumberRange"]["EndingSequenceNumber"].is_null())
                .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
                .collect();
            if ids.is_empty() {
                bail!("stream {name} has no open shard: {v}");
            }
            return Ok(ids);
        }
        if status != 200 && error_code(&v) != "ResourceNotFoundException" {
            bail!("DescribeStream {name}: HTTP {status} {v}");
        }
        if Instant::now() > deadline {
            bail!("stream {name} not ACTIVE after 60 s: {v}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps the first few error descriptions.
#[derive(Default)]
pub(crate) struct Errors {
    pub(crate) count: u64,
    pub(crate) samples: Vec<String>,
}

impl Errors {
    pub(crate) fn add(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.samples.len() < 5 {
            self.samples.push(what());
        }
    }

    pub(crate) fn merge(&mut self, other: Errors) {
        self.count += other.count;
        for s in other.samples {
            if self.samples.len() < 10 {
                self.samples.push(s);
            }
        }
    }
}

/// Mebibytes.
pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
