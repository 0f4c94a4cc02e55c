//! `edge-agent tail`'s flags and its `[tail]` section of the agent's TOML file, resolved
//! into [`TailConfig`] with the defaults (documented in `edge-agent.example.toml`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::config::{LogFormat, read_file};

/// Default state directory (checkpoints), relative to the working directory.
pub(crate) const DEFAULT_STATE_DIR: &str = "edge-agent-tail";
/// Default longest wait of a line before its batch is sent.
pub(crate) const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;
/// Shards of a stream the tailer creates.
pub(crate) const DEFAULT_SHARD_COUNT: u32 = 1;

/// Flags of `edge-agent tail`; each overrides the config file.
#[derive(Debug, Args, Default)]
pub(crate) struct TailArgs {
    /// TOML configuration file (top-level endpoint/ca/region/log_format and a [tail] section).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Kinesis Data Streams endpoint, e.g. https://127.0.0.1:8443 or https://kinesis.us-east-1.amazonaws.com.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Data stream name.
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// A log file to follow (repeat for more). It need not exist yet.
    #[arg(long = "file", value_name = "PATH")]
    pub(crate) files: Vec<PathBuf>,
    /// PEM file of the CA to trust (our server's DATA_DIR/tls/ca.pem); default: system roots.
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// A fixed partition key for every record.
    #[arg(long, conflicts_with = "partition_key_from")]
    pub(crate) partition_key: Option<String>,
    /// Where the partition key comes from: the host name (default), the file's path, or a
    /// different key for every line (spreads over shards, no order across them).
    #[arg(long, value_enum)]
    pub(crate) partition_key_from: Option<KeyFrom>,
    /// Directory of the per-file checkpoints and the control socket (default: ./edge-agent-tail).
    #[arg(long)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Create the stream when it does not exist.
    #[arg(long)]
    pub(crate) create_stream: bool,
    /// Shards of a stream created with --create-stream (default: 1).
    #[arg(long)]
    pub(crate) shard_count: Option<u32>,
    /// Read files without a checkpoint from their beginning instead of their end.
    #[arg(long)]
    pub(crate) from_start: bool,
    /// Longest time a line waits before its batch is sent, in milliseconds (default: 1000).
    #[arg(long)]
    pub(crate) flush_interval_ms: Option<u64>,
    #[arg(long, value_enum)]
    pub(crate) log_format: Option<LogFormat>,
}

/// Source of the partition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KeyFrom {
    #[default]
    Host,
    File,
    Line,
}

/// The `[tail]` section. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTail {
    /// Overrides the top-level endpoint (AWS serves Kinesis Data Streams on another host).
    endpoint: Option<String>,
    stream: Option<String>,
    #[serde(default)]
    files: Vec<PathBuf>,
    partition_key: Option<String>,
    partition_key_from: Option<KeyFrom>,
    state_dir: Option<PathBuf>,
    create_stream: Option<bool>,
    shard_count: Option<u32>,
    from_start: Option<bool>,
    flush_interval_ms: Option<u64>,
}

/// How records get their partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartitionKey {
    Fixed(String),
    From(KeyFrom),
}

/// Everything `tail` needs, defaults applied.
#[derive(Debug, Clone)]
pub(crate) struct TailConfig {
    pub(crate) endpoint: String,
    pub(crate) stream: String,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) ca: Option<PathBuf>,
    pub(crate) region: Option<String>,
    pub(crate) partition_key: PartitionKey,
    pub(crate) state_dir: PathBuf,
    pub(crate) create_stream: bool,
    pub(crate) shard_count: u32,
    pub(crate) from_start: bool,
    pub(crate) flush_interval: Duration,
    pub(crate) log_format: LogFormat,
}

impl TailConfig {
    /// Reads the config file (if any) and applies the flags over it.
    pub(crate) fn resolve(args: TailArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => Default::default(),
        };
        let t = file.tail;
        let endpoint = args
            .endpoint
            .or(t.endpoint)
            .or(file.endpoint)
            .ok_or("no endpoint: pass --endpoint URL or set `endpoint` in the config file")?;
        let stream = args
            .stream
            .or(t.stream)
            .ok_or("no stream: pass --stream NAME or set `stream` in the [tail] section")?;
        let files = if args.files.is_empty() {
            t.files
        } else {
            args.files
        };
        if files.is_empty() {
            return Err(
                "no file to follow: pass --file PATH or set `files` in the [tail] section".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = files.iter().find(|f| !seen.insert(*f)) {
            return Err(format!("file {} is given twice", dup.display()));
        }
        let partition_key = match (args.partition_key, args.partition_key_from) {
            (Some(key), _) => PartitionKey::Fixed(key),
            (None, Some(from)) => PartitionKey::From(from),
            (None, None) => match (t.partition_key, t.partition_key_from) {
                (Some(_), Some(_)) => {
                    return Err("set either partition_key or partition_key_from, not both".into());
                }
                (Some(key), None) => PartitionKey::Fixed(key),
                (None, from) => PartitionKey::From(from.unwrap_or_default()),
            },
        };
        if let PartitionKey::Fixed(key) = &partition_key
            && !(1..=256).contains(&key.chars().count())
        {
            return Err("partition key must be 1 to 256 characters long".into());
        }
        let shard_count = args
            .shard_count
            .or(t.shard_count)
            .unwrap_or(DEFAULT_SHARD_COUNT);
        if shard_count == 0 {
            return Err("shard-count must be at least 1".into());
        }
        let flush_ms = args
            .flush_interval_ms
            .or(t.flush_interval_ms)
            .unwrap_or(DEFAULT_FLUSH_INTERVAL_MS);
        if !(1..=3_600_000).contains(&flush_ms) {
            return Err("flush-interval-ms must be between 1 and 3600000".into());
        }
        Ok(TailConfig {
            endpoint,
            stream,
            files,
            ca: args.ca.or(file.ca),
            region: file.region,
            partition_key,
            state_dir: args
                .state_dir
                .or(t.state_dir)
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            create_stream: args.create_stream || t.create_stream.unwrap_or(false),
            shard_count,
            from_start: args.from_start || t.from_start.unwrap_or(false),
            flush_interval: Duration::from_millis(flush_ms),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_has_a_tail_section_and_flags_override_it() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("edge-agent.example.toml");
        let config = TailConfig::resolve(TailArgs {
            config: Some(example.clone()),
            ..TailArgs::default()
        })
        .unwrap();
        assert_eq!(config.stream, "logs");
        assert_eq!(config.files, vec![PathBuf::from("/var/log/syslog")]);
        assert_eq!(config.partition_key, PartitionKey::From(KeyFrom::Host));
        assert_eq!(config.flush_interval, Duration::from_secs(1));
        assert!(!config.from_start);
        let config = TailConfig::resolve(TailArgs {
            config: Some(example),
            files: vec!["/tmp/a.log".into()],
            partition_key: Some("k".into()),
            ..TailArgs::default()
        })
        .unwrap();
        assert_eq!(config.files, vec![PathBuf::from("/tmp/a.log")]);
        assert_eq!(config.partition_key, PartitionKey::Fixed("k".into()));
    }

    #[test]
    fn missing_or_bad_settings_are_refused_with_a_reason() {
        let base = || TailArgs {
            endpoint: Some("https://h".into()),
            stream: Some("s".into()),
            files: vec!["/tmp/x.log".into()],
            ..TailArgs::default()
        };
        let err = |args| TailConfig::resolve(args).unwrap_err();
        assert!(
            err(TailArgs {
                files: vec![],
                ..base()
            })
            .contains("--file")
        );
        assert!(
            err(TailArgs {
                stream: None,
                ..base()
            })
            .contains("--stream")
        );
        assert!(
            err(TailArgs {
                files: vec!["/a".into(), "/a".into()],
                ..base()
            })
            .contains("twice")
        );
        assert!(
            err(TailArgs {
                partition_key: Some(String::new()),
                ..base()
            })
            .contains("partition key")
        );
        assert!(
            err(TailArgs {
                flush_interval_ms: Some(0),
                ..base()
            })
            .contains("flush-interval-ms")
        );
    }
}
