//! Benchmark load generator for `ingest-server` (see bench/ingest.sh). It plays many
//! producers at once; it is not the project's camera agent.

mod baseline;
mod client;
mod fanout;
mod hls_fanout;
mod http1;
mod ingest;
mod kinesis;
mod mkv;
mod procstat;
mod stats;
mod summary;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loadgen", about = "ingest-server benchmark load generator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Conn {
    /// Control-plane endpoint, https://host:port.
    #[arg(long)]
    endpoint: String,
    /// Data-plane (PutMedia/GetMedia) endpoint, https://host:port.
    #[arg(long)]
    data_endpoint: Option<String>,
    /// CA certificate (PEM) the server's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// AWS CLI style credentials file ([default] profile, or else the first with keys).
    #[arg(long)]
    credentials: PathBuf,
    /// Region put in the SigV4 scope.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// N concurrent real-time PutMedia uploads; latency, throughput, server CPU and RSS.
    Ingest {
        #[command(flatten)]
        conn: Conn,
        /// Source MKV (one Cluster per fragment, TimecodeScale 1 ms).
        #[arg(long)]
        media: PathBuf,
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// Seconds of upload per stream.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Server process id, for CPU and RSS from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Stream name prefix (names are PREFIX-0000 ...).
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// HTTP chunk size of the upload body.
        #[arg(long, default_value_t = 16384)]
        chunk_bytes: usize,
        /// Seconds to wait for outstanding PERSISTED acks after the last fragment.
        #[arg(long, default_value_t = 15)]
        drain: u64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fills one stream with F fragments as fast as acks allow (timecodes in the recent past).
    Fill {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        media: PathBuf,
        #[arg(long)]
        stream: String,
        #[arg(long, default_value_t = 60)]
        fragments: u64,
        /// Fragments in flight (sent but not PERSISTED).
        #[arg(long, default_value_t = 4)]
        window: u64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The machine's limit: write each fragment to a new file + fdatasync + directory fsync.
    FsyncBaseline {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        media: PathBuf,
        /// Aggregate rate of the paced phase (bytes/s); 0 skips it unless --paced-streams is set.
        #[arg(long, default_value_t = 0.0)]
        bytes_per_sec: f64,
        /// Paced phase at this many streams' worth of the source's bit rate (instead of --bytes-per-sec).
        #[arg(long, default_value_t = 0)]
        paced_streams: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Writer threads of the back-to-back phase.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// R concurrent GetMedia EARLIEST readers of one stream vs reading its files R times.
    GetmediaFanout {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        stream: String,
        #[arg(long, default_value_t = 32)]
        readers: usize,
        /// Server data dir: the stream's files are found at DIR/media/<stream id>.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The stream's fragment directory (overrides --data-dir).
        #[arg(long)]
        fragment_dir: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// N live HLS players of one session (keep-alive HTTP/1.1 over TLS), or the same request
    /// mix against the saved bytes served as static files; server CPU and RSS.
    HlsFanout {
        /// Live: the HLS session URL (master playlist). Static: the base URL of the web server
        /// serving --static-dir.
        #[arg(long)]
        url: String,
        /// CA certificate (PEM) the server's certificate chains to.
        #[arg(long)]
        ca: PathBuf,
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Seconds of playing.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Pause between a client's playlist loads, after it fetched the new segments.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        /// Server process ids for CPU and RSS from /proc (comma-separated).
        #[arg(long, value_delimiter = ',')]
        server_pid: Vec<u32>,
        /// Also count the direct children of --server-pid (nginx workers).
        #[arg(long)]
        children: bool,
        /// Static mode: a directory written by --save-dir (manifest.json, segments).
        #[arg(long)]
        static_dir: Option<PathBuf>,
        /// Live mode: write what client 0 fetched here, as a static site.
        #[arg(long)]
        save_dir: Option<PathBuf>,
        /// Name of the server in the report.
        #[arg(long, default_value = "server")]
        label: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Kinesis Data Streams load: PutRecords throughput, paced put latency, GetRecords
    /// throughput and put-to-get latency (bench/kinesis.sh), over http:// or https://.
    Kinesis {
        #[command(subcommand)]
        cmd: kinesis::Cmd,
    },
    /// Writes the markdown summary of a results directory.
    Summary {
        #[arg(long)]
        dir: PathBuf,
        /// Stream counts of the ingest runs (ingest-N.json).
        #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
        streams: Vec<usize>,
        /// The command line to quote in the summary.
        #[arg(long, default_value = "bench/ingest.sh")]
        command: String,
        #[arg(long)]
        out: PathBuf,
    },
}

fn endpoints(conn: &Conn) -> anyhow::Result<(client::Endpoint, client::Endpoint, client::Client)> {
    let ep = client::Endpoint::parse(&conn.endpoint)?;
    let data = match &conn.data_endpoint {
        Some(d) => client::Endpoint::parse(d)?,
        None => ep.clone(),
    };
    let c = client::Client::new(&conn.ca, &conn.credentials, &conn.region)?;
    Ok((ep, data, c))
}

fn print(v: &serde_json::Value) {
    // Print without the long RSS series.
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("rss_series_kib");
    }
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Ingest {
            conn,
            media,
            streams,
            duration,
            server_pid,
            prefix,
            chunk_bytes,
            drain,
            out,
        } => {
            let (ep, data, c) = endpoints(&conn)?;
            let source = Arc::new(mkv::load(&media)?);
            let v = rt.block_on(ingest::run(ingest::IngestConfig {
                endpoint: ep,
                data_endpoint: data,
                client: c,
                source,
                streams,
                duration: Duration::from_secs(duration),
                server_pid: server_pid.map(|p| p.to_string()),
                prefix,
                chunk_bytes,
                drain: Duration::from_secs(drain),
                pacing: ingest::Pacing::RealTime,
                out,
            }))?;
            print(&v);
        }
        Cmd::Fill {
            conn,
            media,
            stream,
            fragments,
            window,
            out,
        } => {
            let (ep, data, c) = endpoints(&conn)?;
            let source = Arc::new(mkv::load(&media)?);
            let v = rt.block_on(ingest::run(ingest::IngestConfig {
                endpoint: ep,
                data_endpoint: data,
                client: c,
                source,
                streams: 1,
                duration: Duration::from_secs(3600),
                server_pid: None,
                prefix: stream,
                chunk_bytes: 16384,
                drain: Duration::from_secs(15),
                pacing: ingest::Pacing::Burst { window, fragments },
                out,
            }))?;
            print(&v);
            if v["fragments_persisted"].as_u64() != Some(fragments) {
                anyhow::bail!(
                    "fill: only {} of {fragments} fragments PERSISTED",
                    v["fragments_persisted"]
                );
            }
        }
        Cmd::FsyncBaseline {
            dir,
            media,
            bytes_per_sec,
            paced_streams,
            duration,
            threads,
            out,
        } => {
            let source = mkv::load(&media)?;
            let bytes_per_sec = if bytes_per_sec > 0.0 {
                bytes_per_sec
            } else {
                paced_streams as f64 * source.bytes_per_sec()
            };
            let v = baseline::run(
                dir,
                &source,
                bytes_per_sec,
                0.0,
                Duration::from_secs(duration),
                threads,
                out,
            )?;
            print(&v);
        }
        Cmd::GetmediaFanout {
            conn,
            stream,
            readers,
            data_dir,
            fragment_dir,
            out,
        } => {
            let (_, data, c) = endpoints(&conn)?;
            let v = rt.block_on(fanout::run(
                c,
                data,
                stream,
                readers,
                data_dir,
                fragment_dir,
                out,
            ))?;
            print(&v);
        }
        Cmd::HlsFanout {
            url,
            ca,
            clients,
            duration,
            interval_ms,
            server_pid,
            children,
            static_dir,
            save_dir,
            label,
            out,
        } => {
            let mut v = rt.block_on(hls_fanout::run(hls_fanout::Config {
                url,
                ca,
                clients,
                duration: Duration::from_secs(duration),
                interval: Duration::from_millis(interval_ms),
                server_pids: server_pid,
                children,
                static_dir,
                save_dir,
                label,
                out,
            }))?;
            if let Some(o) = v.as_object_mut() {
                o.remove("saved");
            }
            print(&v);
        }
        Cmd::Kinesis { cmd } => {
            let v = rt.block_on(kinesis::run(cmd))?;
            print(&v);
        }
        Cmd::Summary {
            dir,
            streams,
            command,
            out,
        } => {
            let md = summary::run(&dir, &streams, &command, &out)?;
            println!("{md}");
        }
    }
    Ok(())
}
