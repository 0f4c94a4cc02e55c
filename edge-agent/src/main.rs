//! `edge-agent`: camera -> H.264 (GStreamer) -> MKV fragments -> spool -> TLS PutMedia.
//!
//! `run` wires the pieces: the capture thread sends frames to the fragmenter, which appends
//! them to the spool; the uplink streams the spool to the server and removes what the server
//! persisted; a spill thread moves unacknowledged fragments to disk; the control socket
//! answers `status` and `metadata`.

mod capture;
mod config;
mod control;
mod fragmenter;
mod metadata;
mod provision;
mod run;
mod spool;
mod tail;
mod uplink;

use std::process::ExitCode;

use clap::Parser;

use config::{Cli, Command, MetadataCommand};
use control::Request;

/// Exit status for errors retrying cannot fix (credentials, certificate, camera, plugin).
const EXIT_FATAL: u8 = 3;
/// Exit status for a bad configuration (clap uses 2 for bad flags too).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Provision(args) => provision::run(*args),
        Command::Tail(args) => tail::run(*args),
        Command::Status {
            spool_dir,
            state_dir,
            json,
        } => {
            let dir = state_dir.unwrap_or(spool_dir);
            match control::request(&dir, &Request::Status) {
                Ok(response) => {
                    let status = response.status.unwrap_or_default();
                    if json {
                        println!("{status}");
                    } else if status["command"] == "tail" {
                        print_tail_status(&status);
                    } else {
                        print_status(&status);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("edge-agent status: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Metadata(command) => {
            let (spool_dir, request) = match command {
                MetadataCommand::Put {
                    persistent,
                    spool_dir,
                    name,
                    value,
                } => (
                    spool_dir,
                    Request::MetadataPut {
                        name,
                        value,
                        persistent,
                    },
                ),
                MetadataCommand::Remove { spool_dir, name } => {
                    (spool_dir, Request::MetadataRemove { name })
                }
            };
            match control::request(&spool_dir, &request) {
                Ok(response) if response.ok => ExitCode::SUCCESS,
                Ok(response) => {
                    eprintln!(
                        "edge-agent metadata: refused: {}",
                        response.error.unwrap_or_default()
                    );
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("edge-agent metadata: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_tail_status(status: &serde_json::Value) {
    println!("stream:      {}", status["stream"]);
    println!("state:       {}", status["state"]);
    if !status["last_error"].is_null() {
        println!("last error:  {}", status["last_error"]);
    }
    println!("queued:      {} bytes", status["queued_bytes"]);
    for file in status["files"].as_array().into_iter().flatten() {
        println!(
            "file:        {}: {} lines read, {} records acked, {} unacknowledged, checkpoint at {}",
            file["path"],
            file["lines_read"],
            file["records_acked"],
            file["unacknowledged"],
            file.pointer("/checkpoint/offset")
                .unwrap_or(&serde_json::Value::Null),
        );
    }
}

fn print_status(status: &serde_json::Value) {
    let get = |path: &str| status.pointer(path).cloned().unwrap_or_default();
    println!("stream:      {}", get("/stream"));
    println!("state:       {}", get("/state"));
    if let Some(error) = status.pointer("/last_error").filter(|e| !e.is_null()) {
        println!("last error:  {error}");
    }
    println!("encoder:     {}", get("/encoder"));
    println!(
        "spool:       {} fragments, {} bytes ({} fragments, {} bytes on disk), oldest {} s",
        get("/spool/fragments"),
        get("/spool/bytes"),
        get("/spool/disk_fragments"),
        get("/spool/disk_bytes"),
        get("/spool/oldest_age_secs"),
    );
    println!(
        "fragments:   {} captured, {} sent, {} acked, {} dropped, {} refused",
        get("/fragments/captured"),
        get("/fragments/sent"),
        get("/fragments/acked"),
        get("/fragments/dropped"),
        get("/fragments/errors"),
    );
    println!(
        "frames:      {} captured, {} dropped",
        get("/frames/captured"),
        get("/frames/dropped")
    );
    println!("bitrate:     {} kbit/s", get("/bitrate_kbps"));
    println!("disk writes: {} bytes", get("/disk_write_bytes"));
}
