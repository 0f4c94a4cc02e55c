//! Configuration: one TOML file (`--config`, documented in `edge-agent.example.toml`) and
//! command-line flags that override it, resolved into [`AgentConfig`] with the defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::capture::{CaptureSettings, EncoderChoice, Source};
use crate::spool::SpoolMode;

/// Default spool directory (relative to the working directory; packages use /var/lib).
pub(crate) const DEFAULT_SPOOL_DIR: &str = "edge-agent-spool";

#[derive(Debug, Parser)]
#[command(
    name = "edge-agent",
    version,
    about = "Camera agent: captures H.264 with GStreamer and uploads it to Kinesis Video Streams (ours or AWS's) with PutMedia, spooling to disk through outages"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Capture and upload, in the foreground, until SIGTERM or SIGINT.
    Run(Box<RunArgs>),
    /// Show the running agent's state, spool depth and counters (with --state-dir: the
    /// running `tail`'s files and counters).
    Status {
        #[arg(long, default_value = DEFAULT_SPOOL_DIR)]
        spool_dir: PathBuf,
        /// The state directory of a running `edge-agent tail`.
        #[arg(long, conflicts_with = "spool_dir")]
        state_dir: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set or remove fragment metadata on the running agent.
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Write this device's configuration and credentials, check them against the server,
    /// then enable and start edge-agent.service.
    Provision(Box<crate::provision::ProvisionArgs>),
    /// Follow log files (like `tail -F`) into a Kinesis data stream, one record per line,
    /// in the foreground until SIGTERM or SIGINT.
    Tail(Box<crate::tail::config::TailArgs>),
}

#[derive(Debug, Subcommand)]
pub(crate) enum MetadataCommand {
    /// Put a tag: on the next fragment only, or on every fragment with --persistent (a
    /// persistent tag with an empty value is removed).
    Put {
        #[arg(long)]
        persistent: bool,
        #[arg(long, default_value = DEFAULT_SPOOL_DIR)]
        spool_dir: PathBuf,
        name: String,
        value: String,
    },
    /// Remove a persistent tag.
    Remove {
        #[arg(long, default_value = DEFAULT_SPOOL_DIR)]
        spool_dir: PathBuf,
        name: String,
    },
}

/// Flags of `edge-agent run`; each overrides the config file.
#[derive(Debug, Args, Default)]
pub(crate) struct RunArgs {
    /// TOML configuration file.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Control-plane endpoint, e.g. https://127.0.0.1:8443 or https://kinesisvideo.us-east-1.amazonaws.com.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Stream name.
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// PEM file of the CA to trust (our server's DATA_DIR/tls/ca.pem); default: system roots.
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// test | file:PATH | v4l2:DEVICE | rtsp://...
    #[arg(long)]
    pub(crate) source: Option<String>,
    /// Spool directory (fragments waiting for acknowledgement, control socket).
    #[arg(long)]
    pub(crate) spool_dir: Option<PathBuf>,
    /// Target fragment duration in seconds (fragments start on key frames).
    #[arg(long)]
    pub(crate) fragment_duration: Option<f64>,
    /// Create the stream when it does not exist.
    #[arg(long)]
    pub(crate) create_stream: bool,
    /// Retention of a stream the agent creates, in hours.
    #[arg(long)]
    pub(crate) retention_hours: Option<u32>,
    #[arg(long)]
    pub(crate) width: Option<u32>,
    #[arg(long)]
    pub(crate) height: Option<u32>,
    #[arg(long)]
    pub(crate) framerate: Option<u32>,
    #[arg(long)]
    pub(crate) bitrate_kbps: Option<u32>,
    /// Maximum frames between key frames.
    #[arg(long)]
    pub(crate) keyframe_interval: Option<u32>,
    /// auto, or a GStreamer encoder element (x264enc, v4l2h264enc, nvv4l2h264enc, vaapih264enc).
    #[arg(long)]
    pub(crate) encoder: Option<String>,
    /// Bound of the disk spool in bytes; the oldest fragments are dropped beyond it.
    #[arg(long)]
    pub(crate) spool_max_bytes: Option<u64>,
    /// buffered: fragments reach the disk only when unacknowledged after --spill-after;
    /// durable: every fragment is written as soon as it is complete.
    #[arg(long, value_enum)]
    pub(crate) spool_mode: Option<SpoolMode>,
    /// Seconds a complete fragment may wait for its acknowledgement in memory.
    #[arg(long)]
    pub(crate) spill_after: Option<f64>,
    /// Seconds without any acknowledgement before a connection is replaced.
    #[arg(long)]
    pub(crate) stale_after: Option<f64>,
    #[arg(long, value_enum)]
    pub(crate) log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The config file. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) endpoint: Option<String>,
    stream: Option<String>,
    pub(crate) ca: Option<PathBuf>,
    pub(crate) region: Option<String>,
    create_stream: Option<bool>,
    retention_hours: Option<u32>,
    pub(crate) log_format: Option<LogFormat>,
    /// `edge-agent tail`'s settings.
    #[serde(default)]
    pub(crate) tail: crate::tail::config::FileTail,
    #[serde(default)]
    capture: FileCapture,
    #[serde(default)]
    spool: FileSpool,
    #[serde(default)]
    uplink: FileUplink,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCapture {
    source: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    framerate: Option<u32>,
    bitrate_kbps: Option<u32>,
    keyframe_interval: Option<u32>,
    encoder: Option<String>,
    fragment_duration: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpool {
    dir: Option<PathBuf>,
    max_bytes: Option<u64>,
    mode: Option<SpoolMode>,
    spill_after: Option<f64>,
    memory_max_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUplink {
    stale_after: Option<f64>,
    rotate_after: Option<f64>,
}

/// Everything `run` needs, defaults applied.
#[derive(Debug, Clone)]
pub(crate) struct AgentConfig {
    pub(crate) endpoint: String,
    pub(crate) stream: String,
    pub(crate) ca: Option<PathBuf>,
    /// From the config file; otherwise the environment decides (AWS_REGION...).
    pub(crate) region: Option<String>,
    pub(crate) create_stream: bool,
    pub(crate) retention_hours: u32,
    pub(crate) log_format: LogFormat,
    pub(crate) capture: CaptureSettings,
    pub(crate) fragment_duration: Duration,
    pub(crate) spool_dir: PathBuf,
    pub(crate) spool_max_bytes: u64,
    pub(crate) spool_mode: SpoolMode,
    pub(crate) spill_after: Duration,
    pub(crate) memory_max_bytes: u64,
    pub(crate) stale_after: Duration,
    pub(crate) rotate_after: Duration,
}

/// Defaults, documented in `edge-agent.example.toml`.
pub(crate) mod defaults {
    pub(crate) const WIDTH: u32 = 1280;
    pub(crate) const HEIGHT: u32 = 720;
    pub(crate) const FRAMERATE: u32 = 30;
    pub(crate) const BITRATE_KBPS: u32 = 2000;
    pub(crate) const FRAGMENT_DURATION_SECS: f64 = 2.0;
    /// 1 GiB: about 70 minutes of 2 Mbit/s video, a small share of an SD card.
    pub(crate) const SPOOL_MAX_BYTES: u64 = 1 << 30;
    pub(crate) const SPILL_AFTER_SECS: f64 = 3.0;
    pub(crate) const MEMORY_MAX_BYTES: u64 = 32 << 20;
    pub(crate) const STALE_AFTER_SECS: f64 = 10.0;
    /// The service ends sessions at 45 minutes; rotate well before.
    pub(crate) const ROTATE_AFTER_SECS: f64 = 40.0 * 60.0;
    pub(crate) const RETENTION_HOURS: u32 = 24;
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if (0.0..1e9).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "{name} must be a number of seconds >= 0 (got {value})"
        ))
    }
}

impl AgentConfig {
    /// Reads the config file (if any) and applies the flags over it.
    pub(crate) fn resolve(args: RunArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        use defaults::*;
        let endpoint = args
            .endpoint
            .or(file.endpoint)
            .ok_or("no endpoint: pass --endpoint URL or set `endpoint` in the config file")?;
        let stream = args
            .stream
            .or(file.stream)
            .ok_or("no stream: pass --stream NAME or set `stream` in the config file")?;
        let c = file.capture;
        let framerate = args.framerate.or(c.framerate).unwrap_or(FRAMERATE);
        if framerate == 0 {
            return Err("framerate must be at least 1".into());
        }
        let source: Source = args
            .source
            .or(c.source)
            .unwrap_or_else(|| "test".into())
            .parse()?;
        let encoder = match args.encoder.or(c.encoder).as_deref() {
            None | Some("auto") => EncoderChoice::Auto,
            Some(name) => EncoderChoice::Named(name.to_owned()),
        };
        let capture = CaptureSettings {
            source,
            width: args.width.or(c.width).unwrap_or(WIDTH),
            height: args.height.or(c.height).unwrap_or(HEIGHT),
            framerate,
            bitrate_kbps: args.bitrate_kbps.or(c.bitrate_kbps).unwrap_or(BITRATE_KBPS),
            // A key frame every second by default: fragments can be cut close to their target.
            keyframe_interval: args
                .keyframe_interval
                .or(c.keyframe_interval)
                .unwrap_or(framerate)
                .max(1),
            encoder,
        };
        let fragment_duration = seconds(
            "fragment-duration",
            args.fragment_duration
                .or(c.fragment_duration)
                .unwrap_or(FRAGMENT_DURATION_SECS),
        )?;
        if fragment_duration < Duration::from_millis(100)
            || fragment_duration > Duration::from_secs(20)
        {
            return Err("fragment-duration must be between 0.1 and 20 seconds (PutMedia refuses longer fragments)".into());
        }
        let s = file.spool;
        let u = file.uplink;
        Ok(AgentConfig {
            endpoint,
            stream,
            ca: args.ca.or(file.ca),
            region: file.region,
            create_stream: args.create_stream || file.create_stream.unwrap_or(false),
            retention_hours: args
                .retention_hours
                .or(file.retention_hours)
                .unwrap_or(RETENTION_HOURS),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            capture,
            fragment_duration,
            spool_dir: args
                .spool_dir
                .or(s.dir)
                .unwrap_or_else(|| DEFAULT_SPOOL_DIR.into()),
            spool_max_bytes: args
                .spool_max_bytes
                .or(s.max_bytes)
                .unwrap_or(SPOOL_MAX_BYTES),
            spool_mode: args.spool_mode.or(s.mode).unwrap_or(SpoolMode::Buffered),
            spill_after: seconds(
                "spill-after",
                args.spill_after
                    .or(s.spill_after)
                    .unwrap_or(SPILL_AFTER_SECS),
            )?,
            memory_max_bytes: s.memory_max_bytes.unwrap_or(MEMORY_MAX_BYTES),
            stale_after: seconds(
                "stale-after",
                args.stale_after
                    .or(u.stale_after)
                    .unwrap_or(STALE_AFTER_SECS),
            )?
            .max(Duration::from_secs(1)),
            rotate_after: seconds("rotate-after", u.rotate_after.unwrap_or(ROTATE_AFTER_SECS))?,
        })
    }
}

pub(crate) fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_flags_override_it() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("edge-agent.example.toml");
        let args = RunArgs {
            config: Some(example),
            stream: Some("from-flag".into()),
            spill_after: Some(1.5),
            ..RunArgs::default()
        };
        let config = AgentConfig::resolve(args).unwrap();
        assert_eq!(config.stream, "from-flag");
        assert_eq!(config.endpoint, "https://127.0.0.1:8443");
        assert_eq!(config.spill_after, Duration::from_millis(1500));
        assert_eq!(config.capture.width, defaults::WIDTH);
        assert_eq!(config.spool_max_bytes, defaults::SPOOL_MAX_BYTES);
        assert_eq!(config.fragment_duration, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let base = || RunArgs {
            endpoint: Some("https://h".into()),
            stream: Some("s".into()),
            ..RunArgs::default()
        };
        assert!(
            AgentConfig::resolve(RunArgs {
                endpoint: None,
                ..base()
            })
            .unwrap_err()
            .contains("--endpoint")
        );
        assert!(
            AgentConfig::resolve(RunArgs {
                fragment_duration: Some(60.0),
                ..base()
            })
            .unwrap_err()
            .contains("20 seconds")
        );
        assert!(
            AgentConfig::resolve(RunArgs {
                source: Some("usb".into()),
                ..base()
            })
            .unwrap_err()
            .contains("unknown source")
        );
        assert!(
            AgentConfig::resolve(RunArgs {
                spill_after: Some(f64::NAN),
                ..base()
            })
            .is_err()
        );
    }
}
