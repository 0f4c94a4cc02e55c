//! Stream lifecycle and settings: create, delete, describe, list, mode, retention,
//! encryption, enhanced monitoring, record size and warm throughput.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use super::super::describe;
use super::super::errors;
use super::super::keys::{MAX_HASH, even_ranges};
use super::super::state::{Mode, Pending, Shard, Status, Stream};
use super::super::{StreamsService, attach_runtime, now_ms};
use super::token;

/// Shards a new ON_DEMAND stream starts with (as on AWS).
const ON_DEMAND_SHARDS: i64 = 4;
/// ON_DEMAND streams allowed per account (AWS's default).
pub(in super::super) const ON_DEMAND_STREAM_LIMIT: usize = 50;
/// Tags per stream.
pub(in super::super) const MAX_TAGS: usize = 50;
const DEFAULT_RETENTION_HOURS: u32 = 24;
const MAX_RETENTION_HOURS: i64 = 8760;
const DEFAULT_MAX_RECORD_KIB: u32 = 1024;
/// Every shard-level metric, what "ALL" stands for.
const ALL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

type Svc = Arc<StreamsService>;

pub(in super::super) fn create(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let name = input.str("StreamName").unwrap_or_default().to_owned();
    let account = &svc.config.account_id;
    let mode = input
        .get("StreamModeDetails")
        .and_then(|d| d.str("StreamMode"))
        .map_or(Mode::Provisioned, Mode::parse);
    let shard_count = match (mode, input.int("ShardCount")) {
        (Mode::Provisioned, Some(n)) => n,
        (Mode::Provisioned, None) => {
            return Err(AwsError::invalid_argument(
                "ShardCount is required for streams in PROVISIONED mode.",
            ));
        }
        (Mode::OnDemand, _) => ON_DEMAND_SHARDS,
    };
    let tags = super::tags::tag_map(input);
    super::tags::check_tag_chars(tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
    if tags.len() > MAX_TAGS {
        return Err(AwsError::invalid_argument(format!(
            "Failed to create stream {name} under account {account} because a given stream cannot \
             have more than {MAX_TAGS} tags associated with it."
        )));
    }
    let mut guard = svc.lock();
    let inner = &mut *guard;
    if inner.streams.contains_key(&name) {
        return Err(AwsError::in_use(format!(
            "Stream {name} under account {account} already exists."
        )));
    }
    if mode == Mode::OnDemand
        && inner
            .streams
            .values()
            .filter(|s| s.mode == Mode::OnDemand)
            .count()
            >= ON_DEMAND_STREAM_LIMIT
    {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            format!(
                "This request would exceed the ON_DEMAND stream count limit for the account \
                 {account}. Limit: {ON_DEMAND_STREAM_LIMIT}."
            ),
        ));
    }
    svc.check_shard_limit(inner, None, shard_count as u64)?;
    let now = now_ms();
    let shards = even_ranges(0, MAX_HASH, shard_count as u32)
        .into_iter()
        .enumerate()
        .map(|(i, range)| Shard::open(i as u32, range, now))
        .collect();
    let mut stream = Stream {
        arn: svc.stream_arn(&name),
        name: name.clone(),
        storage_id: uuid::Uuid::new_v4().simple().to_string(),
        created_ms: now,
        status: Status::Creating,
        until_ms: now,
        pending: None,
        transition: 0,
        mode,
        retention_hours: DEFAULT_RETENTION_HOURS,
        encryption_key: None,
        shard_level_metrics: BTreeSet::new(),
        tags,
        shards,
        consumers: Vec::new(),
        policy: None,
        max_record_kib: input
            .int("MaxRecordSizeInKiB")
            .map_or(DEFAULT_MAX_RECORD_KIB, |k| k as u32),
        warm_throughput_mibps: input.int("WarmThroughputMiBps").map(|v| v as u32),
        runtime: Default::default(),
    };
    attach_runtime(&svc.logs, &mut stream).map_err(|err| {
        tracing::error!(stream = %name, error = %err, "Creating shard logs failed.");
        errors::internal()
    })?;
    svc.begin_transition(&mut stream, Status::Creating, Pending::Activate);
    inner.catalog.save_stream(&stream).map_err(|err| {
        tracing::error!(stream = %name, error = %err, "Saving the stream catalog failed.");
        errors::internal()
    })?;
    tracing::info!(stream = %name, shards = shard_count, mode = mode.as_str(), "Stream created.");
    inner.streams.insert(name, stream);
    Ok(Doc::map())
}

pub(in super::super) fn delete(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let account = svc.config.account_id.clone();
    svc.update_stream(input, |stream, _| {
        if stream.status == Status::Deleting {
            return Err(errors::stream_not_found(&stream.name, &account));
        }
        if stream.status == Status::Creating {
            return Err(errors::not_active(&stream.name, &account, stream.status));
        }
        let live_consumers = stream
            .consumers
            .iter()
            .any(|c| c.status != Status::Deleting);
        if live_consumers && input.bool("EnforceConsumerDeletion") != Some(true) {
            return Err(AwsError::in_use(format!(
                "Stream {} under account {account} has registered consumers. Deregister them or \
                 set EnforceConsumerDeletion.",
                stream.name
            )));
        }
        svc.begin_transition(stream, Status::Deleting, Pending::Delete);
        Ok(Doc::map())
    })
}

pub(in super::super) fn describe(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let limit = input.int("Limit").unwrap_or(100).max(1) as usize;
    let after = input
        .str("ExclusiveStartShardId")
        .and_then(super::super::state::parse_shard_id);
    svc.read_stream(input, |stream| {
        let now = now_ms();
        let mut shards: Vec<&Shard> = if stream.status == Status::Creating {
            Vec::new()
        } else {
            stream
                .visible_shards(now)
                .filter(|s| after.is_none_or(|a| s.index > a))
                .collect()
        };
        shards.sort_by_key(|s| s.index);
        let more = shards.len() > limit;
        let shards: Vec<Doc> = shards
            .into_iter()
            .take(limit)
            .map(describe::shard)
            .collect();
        let description = Doc::map()
            .with("StreamName", stream.name.as_str())
            .with("StreamARN", stream.arn.as_str())
            .with("StreamStatus", describe::status(stream).as_str())
            .with("StreamModeDetails", describe::mode_details(stream))
            .with("Shards", shards)
            .with("HasMoreShards", more)
            .with("RetentionPeriodHours", stream.retention_hours)
            .with("StreamCreationTimestamp", Doc::Timestamp(stream.created_ms))
            .with("EnhancedMonitoring", describe::enhanced_monitoring(stream))
            .with("EncryptionType", describe::encryption_type(stream))
            .with("KeyId", stream.encryption_key.clone());
        Ok(Doc::map().with("StreamDescription", description))
    })
}

pub(in super::super) fn describe_summary(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    svc.read_stream(input, |stream| {
        let consumers = stream
            .consumers
            .iter()
            .filter(|c| c.status != Status::Deleting)
            .count();
        let warm = stream.warm_throughput_mibps.map(|mibps| {
            Doc::map()
                .with("TargetMiBps", mibps)
                .with("CurrentMiBps", mibps)
        });
        let summary = Doc::map()
            .with("StreamName", stream.name.as_str())
            .with("StreamARN", stream.arn.as_str())
            .with("StreamStatus", describe::status(stream).as_str())
            .with("StreamModeDetails", describe::mode_details(stream))
            .with("RetentionPeriodHours", stream.retention_hours)
            .with("StreamCreationTimestamp", Doc::Timestamp(stream.created_ms))
            .with("EnhancedMonitoring", describe::enhanced_monitoring(stream))
            .with("EncryptionType", describe::encryption_type(stream))
            .with("KeyId", stream.encryption_key.clone())
            .with("OpenShardCount", stream.open_shards().count())
            .with("ConsumerCount", consumers)
            .with("WarmThroughput", warm)
            .with("MaxRecordSizeInKiB", stream.max_record_kib);
        Ok(Doc::map().with("StreamDescriptionSummary", summary))
    })
}

pub(in super::super) fn list(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let limit = input.int("Limit").unwrap_or(100).max(1) as usize;
    let after: Option<String> = match input.str("NextToken") {
        Some(t) => Some(token::decode(t)?),
        None => input.str("ExclusiveStartStreamName").map(str::to_owned),
    };
    let inner = svc.lock();
    let mut streams = inner
        .streams
        .values()
        .filter(|s| after.as_ref().is_none_or(|a| s.name.as_str() > a.as_str()));
    let page: Vec<&Stream> = streams.by_ref().take(limit).collect();
    let more = streams.next().is_some();
    let names: Vec<Doc> = page.iter().map(|s| Doc::from(s.name.as_str())).collect();
    let summaries: Vec<Doc> = page.iter().map(|s| describe::summary(s)).collect();
    let next = (more && !page.is_empty()).then(|| token::encode(&page[page.len() - 1].name));
    Ok(Doc::map()
        .with("StreamNames", names)
        .with("HasMoreStreams", more)
        .with("NextToken", next)
        .with("StreamSummaries", summaries))
}

pub(in super::super) fn update_mode(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let mode = input
        .get("StreamModeDetails")
        .and_then(|d| d.str("StreamMode"))
        .map_or(Mode::Provisioned, Mode::parse);
    svc.update_stream(input, |stream, _| {
        svc.require_active(stream)?;
        if stream.mode == mode {
            return Err(AwsError::invalid_argument(format!(
                "Stream {} under account {} is already in {} mode.",
                stream.name,
                svc.config.account_id,
                mode.as_str()
            )));
        }
        stream.mode = mode;
        if let Some(warm) = input.int("WarmThroughputMiBps") {
            stream.warm_throughput_mibps = Some(warm as u32);
        }
        svc.begin_transition(stream, Status::Updating, Pending::Activate);
        Ok(Doc::map())
    })
}

pub(in super::super) fn retention(svc: &Svc, input: &Doc, increase: bool) -> Result<Doc, AwsError> {
    let hours = input.int("RetentionPeriodHours").unwrap_or_default();
    if hours < i64::from(DEFAULT_RETENTION_HOURS) {
        return Err(AwsError::invalid_argument(format!(
            "Minimum allowed retention period is 24 hours. Requested retention period ({hours} hours) is too short."
        )));
    }
    if hours > MAX_RETENTION_HOURS {
        return Err(AwsError::invalid_argument(format!(
            "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
        )));
    }
    svc.update_stream(input, |stream, _| {
        let current = i64::from(stream.retention_hours);
        if increase && hours < current {
            return Err(AwsError::invalid_argument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be shorter than \
                 existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
                stream.name
            )));
        }
        if !increase && hours > current {
            return Err(AwsError::invalid_argument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be longer than \
                 existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
                stream.name
            )));
        }
        stream.retention_hours = hours as u32;
        Ok(Doc::map())
    })
}

pub(in super::super) fn encryption(svc: &Svc, input: &Doc, start: bool) -> Result<Doc, AwsError> {
    if input.str("EncryptionType") != Some("KMS") {
        return Err(AwsError::invalid_argument("EncryptionType must be KMS."));
    }
    let key = input.str("KeyId").unwrap_or_default().to_owned();
    svc.update_stream(input, |stream, _| {
        svc.require_active(stream)?;
        if !start && stream.encryption_key.is_none() {
            return Err(AwsError::invalid_argument(format!(
                "Stream {} under account {} is not encrypted.",
                stream.name, svc.config.account_id
            )));
        }
        let pending = Pending::Encryption(start.then_some(key));
        svc.begin_transition(stream, Status::Updating, pending);
        Ok(Doc::map())
    })
}

/// Switches encryption when an Start/StopStreamEncryption transition ends. Records
/// appended from here on report the new `EncryptionType`. (The setting is recorded and
/// reported as AWS does; there is no KMS here, so data at rest is not KMS-encrypted.)
pub(in super::super) fn apply_encryption(stream: &mut Stream, key: Option<String>) {
    let on = key.is_some();
    stream.encryption_key = key;
    for shard in stream.shards.iter_mut().filter(|s| s.closed.is_none()) {
        if let Some(handle) = stream.runtime.handles.get(&shard.index) {
            shard
                .encryption_changes
                .push((handle.log.next_sequence(), on));
        }
    }
}

pub(in super::super) fn monitoring(svc: &Svc, input: &Doc, enable: bool) -> Result<Doc, AwsError> {
    let requested: BTreeSet<String> = input
        .list("ShardLevelMetrics")
        .iter()
        .filter_map(Doc::as_str)
        .flat_map(|m| {
            if m == "ALL" {
                ALL_METRICS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            } else {
                vec![m.to_owned()]
            }
        })
        .collect();
    svc.update_stream(input, |stream, _| {
        let current: Vec<Doc> = stream
            .shard_level_metrics
            .iter()
            .map(|m| Doc::from(m.as_str()))
            .collect();
        if enable {
            stream.shard_level_metrics.extend(requested.iter().cloned());
        } else {
            stream
                .shard_level_metrics
                .retain(|m| !requested.contains(m));
        }
        let desired: Vec<Doc> = stream
            .shard_level_metrics
            .iter()
            .map(|m| Doc::from(m.as_str()))
            .collect();
        Ok(Doc::map()
            .with("StreamName", stream.name.as_str())
            .with("CurrentShardLevelMetrics", current)
            .with("DesiredShardLevelMetrics", desired)
            .with("StreamARN", stream.arn.as_str()))
    })
}

pub(in super::super) fn max_record_size(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let kib = input.int("MaxRecordSizeInKiB").unwrap_or(1024) as u32;
    svc.update_stream(input, |stream, _| {
        svc.require_active(stream)?;
        stream.max_record_kib = kib;
        Ok(Doc::map())
    })
}

pub(in super::super) fn warm_throughput(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let mibps = input.int("WarmThroughputMiBps").unwrap_or_default() as u32;
    svc.update_stream(input, |stream, _| {
        svc.require_active(stream)?;
        if stream.mode != Mode::OnDemand {
            return Err(AwsError::invalid_argument(format!(
                "Warm throughput applies to ON_DEMAND streams; stream {} is PROVISIONED.",
                stream.name
            )));
        }
        stream.warm_throughput_mibps = Some(mibps);
        Ok(Doc::map()
            .with("StreamARN", stream.arn.as_str())
            .with("StreamName", stream.name.as_str())
            .with(
                "WarmThroughput",
                Doc::map()
                    .with("TargetMiBps", mibps)
                    .with("CurrentMiBps", mibps),
            ))
    })
}
