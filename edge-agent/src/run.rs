//! `edge-agent run`: starts capture, spool, uplink and control socket, and stops them in an
//! order that loses nothing: on SIGTERM/SIGINT capture stops, the fragment being captured is
//! completed, the uplink ends its session, and every unacknowledged fragment is written to the
//! spool for the next start.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::capture::{self, CaptureEvent};
use crate::config::{AgentConfig, LogFormat, RunArgs};
use crate::control::{self, Handler};
use crate::fragmenter::{Fragmenter, Output};
use crate::metadata::MetadataSet;
use crate::spool::{Spool, SpoolConfig};
use crate::uplink::client::{Client, Endpoint};
use crate::uplink::control_plane::StreamSettings;
use crate::uplink::{self, UplinkSettings};
use crate::{EXIT_CONFIG, EXIT_FATAL};

/// How often the spill thread looks for fragments to write.
const SPILL_EVERY: Duration = Duration::from_millis(200);
/// Frames buffered between the capture thread and the fragmenter.
const FRAME_QUEUE: usize = 256;

pub(crate) fn run(args: RunArgs) -> ExitCode {
    let config = match AgentConfig::resolve(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("edge-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(config.log_format);
    match start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("edge-agent: {e}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn start(config: AgentConfig) -> Result<(), String> {
    let endpoint = Endpoint::parse(&config.endpoint)?;
    let client = Client::from_environment(config.ca.as_deref(), config.region.as_deref())
        .map_err(|e| e.to_string())?;

    std::fs::create_dir_all(&config.spool_dir).map_err(|e| {
        format!(
            "cannot create spool directory {}: {e}",
            config.spool_dir.display()
        )
    })?;
    let spool = Arc::new(
        Spool::open(SpoolConfig {
            dir: config.spool_dir.clone(),
            max_bytes: config.spool_max_bytes,
            mode: config.spool_mode,
            spill_after: config.spill_after,
            memory_max_bytes: config.memory_max_bytes,
        })
        .map_err(|e| format!("cannot open spool {}: {e}", config.spool_dir.display()))?,
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(agent(config, client, endpoint, spool.clone()));
    // Whatever is still unacknowledged waits on disk for the next start.
    spool.spill(true);
    let (status, counters, _) = spool.status();
    info!(
        spooled = status.disk_fragments,
        acked = counters.acked,
        dropped = counters.dropped,
        "edge-agent stopped"
    );
    result
}

async fn agent(
    config: AgentConfig,
    client: Client,
    endpoint: Endpoint,
    spool: Arc<Spool>,
) -> Result<(), String> {
    let (frames_tx, mut frames_rx) = mpsc::channel(FRAME_QUEUE);
    let capture = capture::start(config.capture.clone(), frames_tx).map_err(|e| e.to_string())?;
    let encoder = capture.encoder().to_owned();

    let stop_spill = Arc::new(AtomicBool::new(false));
    let spill_thread = {
        let (spool, stop) = (spool.clone(), stop_spill.clone());
        std::thread::Builder::new()
            .name("spool".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    spool.spill(false);
                    spool.wait_for_spill_work(SPILL_EVERY);
                }
            })
            .map_err(|e| format!("cannot start the spool thread: {e}"))?
    };

    let metadata = Arc::new(Mutex::new(MetadataSet::default()));
    let uplink_status = uplink::new_status();
    let frames_captured = Arc::new(AtomicU64::new(0));
    let status = {
        let (spool, uplink_status, frames_captured, metadata) = (
            spool.clone(),
            uplink_status.clone(),
            frames_captured.clone(),
            metadata.clone(),
        );
        let (stream, encoder, frames_dropped) = (
            config.stream.clone(),
            encoder.clone(),
            capture.frames_dropped_counter(),
        );
        Box::new(move || {
            let (depth, counters, bitrate_kbps) = spool.status();
            let uplink = uplink_status.lock().map(|s| s.clone()).ok();
            let (persistent, pending) = metadata.lock().map(|m| m.snapshot()).unwrap_or_default();
            let tags = |tags: Vec<mkv_fragment::SimpleTag>| {
                tags.into_iter()
                    .map(|t| (t.name, serde_json::Value::String(t.value)))
                    .collect::<serde_json::Map<_, _>>()
            };
            json!({
                "stream": stream,
                "state": uplink.as_ref().map(|u| u.state),
                "last_error": uplink.and_then(|u| u.last_error),
                "encoder": encoder,
                "spool": depth,
                "fragments": counters,
                "frames": {
                    "captured": frames_captured.load(Ordering::Relaxed),
                    "dropped": frames_dropped.load(Ordering::Relaxed),
                },
                "metadata": { "persistent": tags(persistent), "next_fragment": tags(pending) },
                "bitrate_kbps": (bitrate_kbps * 10.0).round() / 10.0,
                "disk_write_bytes": disk_write_bytes(),
            })
        })
    };
    control::serve(
        &config.spool_dir,
        Handler {
            metadata: Some(metadata.clone()),
            status,
        },
    )
    .map_err(|e| format!("control socket in {}: {e}", config.spool_dir.display()))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let settings = UplinkSettings {
        endpoint,
        stream: StreamSettings {
            name: config.stream.clone(),
            create: config.create_stream,
            retention_hours: config.retention_hours,
        },
        stale_after: config.stale_after,
        rotate_after: config.rotate_after,
        backoff_min: Duration::from_millis(500),
        backoff_max: Duration::from_secs(5),
    };
    let mut uplink = tokio::spawn(uplink::run(
        client,
        settings,
        spool.clone(),
        uplink_status,
        shutdown_rx,
    ));

    let mut fragmenter = Fragmenter::new(config.fragment_duration);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    info!(stream = %config.stream, spool = %config.spool_dir.display(), "edge-agent running");
    let mut outcome = Ok(());
    let mut uplink_done = false;
    loop {
        tokio::select! {
            event = frames_rx.recv() => match event {
                Some(CaptureEvent::Frame(frame)) => {
                    frames_captured.fetch_add(1, Ordering::Relaxed);
                    let output = fragmenter.push(&frame, || {
                        metadata.lock().map(|mut m| m.take_for_fragment()).unwrap_or_default()
                    });
                    match output {
                        Output::Start { timecode_ms, header, bytes } => spool.start_fragment(timecode_ms, header, bytes),
                        Output::Append(bytes) => spool.append(&bytes),
                        Output::Skipped(why) => tracing::debug!(why, "frame skipped"),
                    }
                }
                Some(CaptureEvent::Restarting { reason }) => {
                    warn!(%reason, "capture restarting; the current fragment ends here");
                    fragmenter.reset();
                    spool.finish_fragment();
                }
                Some(CaptureEvent::Fatal(e)) => {
                    outcome = Err(e.to_string());
                    break;
                }
                None => {
                    outcome = Err("capture stopped".into());
                    break;
                }
            },
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            joined = &mut uplink => {
                uplink_done = true;
                outcome = match joined {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("uplink task failed: {e}")),
                };
                break;
            }
        }
    }
    capture.stop();
    fragmenter.reset();
    spool.finish_fragment();
    let _ = shutdown_tx.send(true);
    if !uplink_done {
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut uplink).await;
    }
    stop_spill.store(true, Ordering::Relaxed);
    let _ = spill_thread.join();
    let _ = std::fs::remove_file(config.spool_dir.join(control::SOCKET_NAME));
    outcome
}

/// Bytes this process caused to be written to storage (`/proc/self/io`), for the SD-card
/// wear figures of `status`.
fn disk_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string(Path::new("/proc/self/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}
