//! Command-line configuration. Every flag has an environment-variable twin and a
//! documented default, so systemd units and containers can configure the server
//! without a config file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Self-hosted, AWS-compatible Kinesis Video Streams server.
#[derive(Debug, Clone, Parser)]
#[command(name = "ingest-server", version, about)]
pub struct Config {
    /// Data directory: fragment files, the SQLite index, TLS material and credentials.
    #[arg(long, env = "KVS_DATA_DIR", default_value = "kvs-data")]
    pub data_dir: PathBuf,

    /// Main listener: every API (control plane, archived media, data plane).
    /// Offers HTTP/2 and HTTP/1.1.
    #[arg(long, env = "KVS_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Video data-plane listener, HTTP/1.1 only (the AWS producer SDK's PutMedia
    /// signature breaks over HTTP/2). GetDataEndpoint returns this one.
    /// Default: the main listener's port + 1 on the same address.
    #[arg(long, env = "KVS_DATA_LISTEN")]
    pub data_listen: Option<SocketAddr>,

    /// Serve plain HTTP instead of HTTPS (not for production: credentials and video
    /// cross the network in the clear).
    #[arg(long, env = "KVS_PLAIN_HTTP")]
    pub plain_http: bool,

    /// The operator's own certificate chain (PEM), instead of the local CA.
    #[arg(long, env = "KVS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, env = "KVS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Extra host names or IP addresses for the locally generated server certificate.
    #[arg(long = "tls-name", env = "KVS_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,

    /// Host name put in the URLs GetDataEndpoint returns. Default: the host the client
    /// addressed (its Host header).
    #[arg(long, env = "KVS_ADVERTISE_HOST")]
    pub advertise_host: Option<String>,

    /// Region used in ARNs this server mints.
    #[arg(long, env = "KVS_REGION", default_value = "us-west-2")]
    pub region: String,

    /// Account id used in ARNs this server mints.
    #[arg(long, env = "KVS_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,

    /// Seconds between retention sweeps that delete expired fragments.
    #[arg(long, env = "KVS_RETENTION_CHECK_SECS", default_value_t = 60)]
    pub retention_check_secs: u64,

    /// Seconds between IDLE acks on a PutMedia connection that receives no data.
    #[arg(long, env = "KVS_IDLE_ACK_SECS", default_value_t = 3)]
    pub idle_ack_secs: u64,

    /// Seconds without any data after which a PutMedia connection is closed (AWS: 30).
    #[arg(long, env = "KVS_PUT_MEDIA_TIMEOUT_SECS", default_value_t = 30)]
    pub put_media_timeout_secs: u64,

    /// Seconds a GetMedia response waits for a new fragment once it has caught up,
    /// before it ends (while a producer is connected it keeps waiting).
    #[arg(long, env = "KVS_GET_MEDIA_IDLE_SECS", default_value_t = 3)]
    pub get_media_idle_secs: u64,

    /// Kinesis Data Streams: milliseconds a stream or consumer stays CREATING, UPDATING
    /// or DELETING (AWS takes seconds; clients that wait for ACTIVE are exercised).
    #[arg(long, env = "KVS_KINESIS_STATE_DELAY_MS", default_value_t = 500)]
    pub kinesis_state_delay_ms: u64,

    /// Kinesis Data Streams: open shards allowed in the account (AWS's default in
    /// us-east-1, us-west-2 and eu-west-1), enforced with LimitExceededException.
    #[arg(long, env = "KVS_KINESIS_SHARD_LIMIT", default_value_t = 500)]
    pub kinesis_shard_limit: u32,

    /// Kinesis Data Streams: enforce AWS's per-shard throughput limits (writes 1 MiB/s
    /// or 1000 records/s, reads 5 calls/s and 2 MiB/s) with
    /// ProvisionedThroughputExceededException. Off by default: the disk sets the limit.
    #[arg(long, env = "KVS_KINESIS_THROUGHPUT_LIMITS")]
    pub kinesis_throughput_limits: bool,

    /// Kinesis Data Streams: seconds a shard iterator stays valid (AWS: 300).
    #[arg(long, env = "KVS_KINESIS_ITERATOR_TTL_SECS", default_value_t = 300)]
    pub kinesis_iterator_ttl_secs: u64,

    /// Kinesis Data Streams: seconds a SubscribeToShard subscription lasts (AWS: 300).
    #[arg(long, env = "KVS_KINESIS_SUBSCRIPTION_SECS", default_value_t = 300)]
    pub kinesis_subscription_secs: u64,
}

impl Config {
    /// The data-plane listener address.
    pub fn data_listen(&self) -> SocketAddr {
        self.data_listen.unwrap_or_else(|| {
            let mut addr = self.listen;
            if addr.port() != 0 {
                addr.set_port(addr.port().wrapping_add(1));
            }
            addr
        })
    }

    /// `--idle-ack-secs` as a duration.
    pub fn idle_ack_interval(&self) -> Duration {
        Duration::from_secs(self.idle_ack_secs.max(1))
    }
}
