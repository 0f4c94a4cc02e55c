//! A self-hosted, AWS-compatible Kinesis Video Streams and Kinesis Data Streams server.
//!
//! Requests flow one way: wire ([`server`]) -> protocol layer ([`protocol`]: SigV4,
//! REST-JSON, JSON 1.1 / CBOR RPC, AWS error shapes) -> service ([`services`]) -> store
//! ([`storage`] for video, the `shard-log` crate for records), and back out through the
//! same layers.

pub mod config;
pub mod credentials;
pub mod protocol;
pub mod run;
pub mod server;
pub mod services;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod web;

pub use run::{Running, run_in_process};
