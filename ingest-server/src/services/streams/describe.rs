//! Renders catalog entries as the model's output structures.

use shard_log::StoredRecord;

use crate::protocol::rpc::Doc;

use super::keys::Sequence;
use super::state::{Shard, Status, Stream, shard_id};

/// The sequence number of the record at a log position (see [`Sequence::record`]).
pub(super) fn sequence(shard: &Shard, position: u64) -> String {
    Sequence::record(shard.created_ms, shard.index, position).format()
}

/// A shard's `StartingSequenceNumber`: just before its first record.
pub(super) fn starting_sequence(shard: &Shard) -> String {
    Sequence {
        shard_created_ms: shard.created_ms,
        shard_index: shard.index,
        position: 0,
    }
    .format()
}

/// `HashKeyRange`.
pub(super) fn hash_range(start: u128, end: u128) -> Doc {
    Doc::map()
        .with("StartingHashKey", start.to_string())
        .with("EndingHashKey", end.to_string())
}

/// `Shard`.
pub(super) fn shard(shard: &Shard) -> Doc {
    let mut range = Doc::map().with("StartingSequenceNumber", starting_sequence(shard));
    if let Some(closed) = shard.closed {
        // The last record's number (the starting one if the shard never had a record).
        let ending = Sequence {
            shard_created_ms: shard.created_ms,
            shard_index: shard.index,
            position: closed.end,
        };
        range.insert("EndingSequenceNumber", ending.format());
    }
    Doc::map()
        .with("ShardId", shard.id())
        .with("ParentShardId", shard.parent.map(shard_id))
        .with("AdjacentParentShardId", shard.adjacent_parent.map(shard_id))
        .with("HashKeyRange", hash_range(shard.start_hash, shard.end_hash))
        .with("SequenceNumberRange", range)
}

/// `ChildShards` of a closed shard: the shards that list it as a parent.
pub(super) fn child_shards(stream: &Stream, parent: u32) -> Doc {
    let children = stream
        .shards
        .iter()
        .filter(|s| s.parent == Some(parent) || s.adjacent_parent == Some(parent))
        .map(|s| {
            let parents: Vec<Doc> = s
                .parent
                .into_iter()
                .chain(s.adjacent_parent)
                .map(|p| Doc::from(shard_id(p)))
                .collect();
            Doc::map()
                .with("ShardId", s.id())
                .with("ParentShards", parents)
                .with("HashKeyRange", hash_range(s.start_hash, s.end_hash))
        })
        .collect::<Vec<_>>();
    Doc::from(children)
}

/// `StreamModeDetails`.
pub(super) fn mode_details(stream: &Stream) -> Doc {
    Doc::map().with("StreamMode", stream.mode.as_str())
}

/// `EnhancedMonitoring`.
pub(super) fn enhanced_monitoring(stream: &Stream) -> Doc {
    let metrics: Vec<Doc> = stream
        .shard_level_metrics
        .iter()
        .map(|m| Doc::from(m.as_str()))
        .collect();
    Doc::from(vec![Doc::map().with("ShardLevelMetrics", metrics)])
}

/// `EncryptionType` of the stream now.
pub(super) fn encryption_type(stream: &Stream) -> &'static str {
    if stream.encryption_key.is_some() {
        "KMS"
    } else {
        "NONE"
    }
}

/// The status shown now: a transition that has run out but whose timer has not fired
/// yet still shows, as AWS's eventual consistency does.
pub(super) fn status(stream: &Stream) -> Status {
    stream.status
}

/// `StreamSummary` (ListStreams).
pub(super) fn summary(stream: &Stream) -> Doc {
    Doc::map()
        .with("StreamName", stream.name.as_str())
        .with("StreamARN", stream.arn.as_str())
        .with("StreamStatus", status(stream).as_str())
        .with("StreamModeDetails", mode_details(stream))
        .with("StreamCreationTimestamp", Doc::Timestamp(stream.created_ms))
}

/// A stored record as `Record`.
pub(super) fn record(shard: &Shard, record: StoredRecord, kms: bool) -> Doc {
    Doc::map()
        .with("SequenceNumber", sequence(shard, record.sequence))
        .with(
            "ApproximateArrivalTimestamp",
            Doc::Timestamp(record.arrival_ms),
        )
        .with("Data", record.data)
        .with("PartitionKey", record.partition_key)
        .with("EncryptionType", if kms { Some("KMS") } else { None })
}
