//! A shard's runtime handle: its durable log, the gate that lets a reshard close it
//! at an exact position, and the optional AWS-style throughput limits.

use std::sync::{Arc, Mutex};

use shard_log::ShardLog;
use tokio::sync::RwLock;

use super::throttle::Throughput;

/// One shard's log and the state around it.
#[derive(Debug)]
pub(super) struct ShardHandle {
    pub(super) log: Arc<ShardLog>,
    /// Appends hold the read side; closing takes the write side, so no append lands
    /// after the shard's ending sequence number. `true` once closed.
    pub(super) closed: RwLock<bool>,
    pub(super) throughput: Mutex<Throughput>,
}

impl ShardHandle {
    /// A handle over an open log.
    pub(super) fn new(log: Arc<ShardLog>, closed: bool) -> Self {
        Self {
            log,
            closed: RwLock::new(closed),
            throughput: Mutex::new(Throughput::default()),
        }
    }
}
