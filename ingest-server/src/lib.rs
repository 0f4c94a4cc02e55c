//! A self-hosted, AWS-compatible Kinesis Video Streams server.
//!
//! Requests flow one way: wire ([`server`]) -> protocol layer ([`protocol`]: SigV4,
//! REST-JSON, AWS error shapes) -> service ([`services`]) -> store ([`storage`]),
//! and back out through the same layers.

pub mod config;
pub mod credentials;
pub mod protocol;
pub mod server;
pub mod services;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod web;
