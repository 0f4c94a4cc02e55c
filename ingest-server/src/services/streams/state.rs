//! What the catalog remembers about each stream, as persisted (serde) plus the runtime
//! handles of its shard logs (rebuilt at start-up, never persisted).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::shard::ShardHandle;

/// A stream's status as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Status {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl Status {
    /// The model's `StreamStatus` / `ConsumerStatus` value.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Updating => "UPDATING",
            Status::Deleting => "DELETING",
        }
    }
}

/// Capacity mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Mode {
    Provisioned,
    OnDemand,
}

impl Mode {
    /// The model's `StreamMode` value.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Mode::Provisioned => "PROVISIONED",
            Mode::OnDemand => "ON_DEMAND",
        }
    }

    /// Parses a `StreamMode` value (validated against the model's enum beforehand).
    pub(super) fn parse(value: &str) -> Mode {
        if value == "ON_DEMAND" {
            Mode::OnDemand
        } else {
            Mode::Provisioned
        }
    }
}

/// A change that takes effect when the stream's transitional state ends, as on AWS
/// (resharding applies when UPDATING turns back into ACTIVE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Pending {
    /// Becomes ACTIVE.
    Activate,
    /// Is removed with its records.
    Delete,
    /// Closes the `parents` and opens shards with these hash ranges (inclusive), each
    /// with its parent and adjacent parent.
    Reshard(Vec<NewShard>),
    /// Encryption changes (None: stopped).
    Encryption(Option<String>),
}

/// A shard a reshard will open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct NewShard {
    #[serde(with = "u128_text")]
    pub(super) start: u128,
    #[serde(with = "u128_text")]
    pub(super) end: u128,
    pub(super) parent: u32,
    pub(super) adjacent_parent: Option<u32>,
}

/// One shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Shard {
    /// `shardId-{index:012}`.
    pub(super) index: u32,
    pub(super) parent: Option<u32>,
    pub(super) adjacent_parent: Option<u32>,
    #[serde(with = "u128_text")]
    pub(super) start_hash: u128,
    #[serde(with = "u128_text")]
    pub(super) end_hash: u128,
    /// Creation time; part of every sequence number of the shard.
    pub(super) created_ms: i64,
    /// Set once closed by a reshard: the log position past its last record, and when.
    pub(super) closed: Option<Closed>,
    /// Log positions where encryption was switched on (true) or off (false), in order;
    /// records report `EncryptionType` KMS from the position encryption started.
    #[serde(default)]
    pub(super) encryption_changes: Vec<(u64, bool)>,
}

/// Where and when a shard was closed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Closed {
    /// Log position past the last record (the shard has records `0..end`... from its
    /// first retained one).
    pub(super) end: u64,
    pub(super) at_ms: i64,
}

impl Shard {
    /// A new open shard without parents over the inclusive hash key range.
    pub(super) fn open(index: u32, (start_hash, end_hash): (u128, u128), created_ms: i64) -> Shard {
        Shard {
            index,
            parent: None,
            adjacent_parent: None,
            start_hash,
            end_hash,
            created_ms,
            closed: None,
            encryption_changes: Vec::new(),
        }
    }

    /// The shard id clients use.
    pub(super) fn id(&self) -> String {
        shard_id(self.index)
    }

    /// Whether the record at `position` was written while encryption was on.
    pub(super) fn encrypted_at(&self, position: u64) -> bool {
        self.encryption_changes
            .iter()
            .rev()
            .find(|(from, _)| *from <= position)
            .is_some_and(|(_, on)| *on)
    }
}

/// `shardId-000000000007`.
pub(super) fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// Parses `shardId-000000000007` (or a bare `7`, or `anything-7`, as AWS accepts).
pub(super) fn parse_shard_id(id: &str) -> Option<u32> {
    let digits = id.rsplit('-').next().unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u32>()
        .ok()
        .filter(|ix| *ix <= i32::MAX as u32)
}

/// An enhanced fan-out consumer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Consumer {
    pub(super) name: String,
    pub(super) arn: String,
    pub(super) created_ms: i64,
    pub(super) status: Status,
    /// When CREATING or DELETING ends.
    pub(super) until_ms: i64,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) policy: Option<String>,
}

/// One stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Stream {
    pub(super) name: String,
    pub(super) arn: String,
    /// Directory of its shard logs; a new one for every incarnation of a name.
    pub(super) storage_id: String,
    pub(super) created_ms: i64,
    pub(super) status: Status,
    /// When the transitional status ends and `pending` applies.
    pub(super) until_ms: i64,
    pub(super) pending: Option<Pending>,
    /// Distinguishes transitions, so a late timer never applies a newer one.
    pub(super) transition: u64,
    pub(super) mode: Mode,
    pub(super) retention_hours: u32,
    /// KMS key id while encryption is on.
    pub(super) encryption_key: Option<String>,
    pub(super) shard_level_metrics: BTreeSet<String>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) shards: Vec<Shard>,
    pub(super) consumers: Vec<Consumer>,
    pub(super) policy: Option<String>,
    pub(super) max_record_kib: u32,
    pub(super) warm_throughput_mibps: Option<u32>,
    #[serde(skip)]
    pub(super) runtime: Runtime,
}

/// Open log handles of a stream's shards and the routing table of its open shards.
#[derive(Debug, Default, Clone)]
pub(super) struct Runtime {
    pub(super) handles: HashMap<u32, Arc<ShardHandle>>,
    /// Open shards sorted by starting hash key.
    pub(super) routes: Arc<Vec<Route>>,
}

/// An open shard and its hash key range.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub(super) start: u128,
    pub(super) end: u128,
    pub(super) index: u32,
    /// The shard's creation time, part of its sequence numbers.
    pub(super) created_ms: i64,
    pub(super) handle: Arc<ShardHandle>,
}

impl Stream {
    /// The shard with this index.
    pub(super) fn shard(&self, index: u32) -> Option<&Shard> {
        self.shards.iter().find(|s| s.index == index)
    }

    /// Shards still open.
    pub(super) fn open_shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().filter(|s| s.closed.is_none())
    }

    /// Retention in milliseconds.
    pub(super) fn retention_ms(&self) -> i64 {
        i64::from(self.retention_hours) * 3_600_000
    }

    /// Shards whose records may still be retained: open ones, and closed ones closed
    /// less than a retention period ago (AWS lists those too).
    pub(super) fn visible_shards(&self, now_ms: i64) -> impl Iterator<Item = &Shard> {
        let horizon = now_ms - self.retention_ms();
        self.shards
            .iter()
            .filter(move |s| s.closed.is_none_or(|c| c.at_ms >= horizon))
    }

    /// The log id of a shard (relative path under the log store).
    pub(super) fn log_id(&self, index: u32) -> String {
        format!("{}/{}", self.storage_id, shard_id(index))
    }
}

/// 128-bit hash keys are kept as decimal text in the catalog (JSON has no u128).
mod u128_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_round_trip() {
        assert_eq!(shard_id(7), "shardId-000000000007");
        assert_eq!(parse_shard_id("shardId-000000000007"), Some(7));
        assert_eq!(parse_shard_id("7"), Some(7));
        assert_eq!(parse_shard_id("shardId-x"), None);
        assert_eq!(parse_shard_id("shardId-99999999999"), None);
    }
}
