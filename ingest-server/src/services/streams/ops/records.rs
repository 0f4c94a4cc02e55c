//! The data plane: PutRecord(s), GetShardIterator and GetRecords.
//!
//! A put is routed by the MD5 of its partition key (or its ExplicitHashKey) to the open
//! shard owning that hash key, appended to the shard's log, and acknowledged only once
//! the log has made it durable. The records of one request that land on one shard are
//! appended together and in request order.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shard_log::NewRecord;

use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use super::super::describe;
use super::super::errors;
use super::super::iterator::Position;
use super::super::keys::{Sequence, parse_hash, partition_hash};
use super::super::state::{Route, Shard, Status, Stream, parse_shard_id, shard_id};
use super::super::{StreamsService, now_ms};

type Svc = Arc<StreamsService>;

/// Records per PutRecords request, and bytes (data + partition keys) per request.
const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
/// With records above 1 MiB allowed (UpdateMaxRecordSize), a request may carry one.
const MAX_LARGE_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// GetRecords returns at most this much data per call, as AWS.
const MAX_READ_BYTES: usize = 10 * 1024 * 1024;
const DEFAULT_GET_LIMIT: i64 = 10_000;
/// How often a put re-routes records whose shard closed under it (a reshard applying).
const REROUTE_ATTEMPTS: usize = 20;

/// A record on its way into a shard.
struct Entry {
    /// Position in the request.
    slot: usize,
    partition_key: String,
    data: Bytes,
    hash: u128,
}

/// What happened to one record.
enum Outcome {
    Stored { shard: u32, sequence: String },
    Failed(&'static str, String),
}

pub(in super::super) async fn put_record(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let name = svc.stream_name(input)?;
    let (max_record, kms) = svc.writable(&name)?;
    let partition_key = input.str("PartitionKey").unwrap_or_default();
    let data = input.blob("Data").cloned().unwrap_or_default();
    let size = data.len() + partition_key.len();
    if size > max_record {
        return Err(errors::record_too_large(size, max_record));
    }
    if let Some(text) = input.str("SequenceNumberForOrdering")
        && Sequence::parse(text).is_none_or(|s| s.shard_created_ms > now_ms())
    {
        return Err(AwsError::invalid_argument(format!(
            "ExclusiveMinimumSequenceNumber {text} used in PutRecord on stream {name} under \
             account {} is invalid.",
            svc.config.account_id
        )));
    }
    let hash = hash_key(input, partition_key)?;
    let entry = Entry {
        slot: 0,
        partition_key: partition_key.to_owned(),
        data,
        hash,
    };
    let outcome = svc.append(&name, vec![entry]).await?.pop();
    match outcome {
        Some(Outcome::Stored { shard, sequence }) => Ok(Doc::map()
            .with("ShardId", shard_id(shard))
            .with("SequenceNumber", sequence)
            .with("EncryptionType", if kms { "KMS" } else { "NONE" })),
        Some(Outcome::Failed("ProvisionedThroughputExceededException", message)) => Err(
            AwsError::new(400, "ProvisionedThroughputExceededException", message),
        ),
        _ => Err(errors::internal()),
    }
}

pub(in super::super) async fn put_records(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let name = svc.stream_name(input)?;
    let (max_record, kms) = svc.writable(&name)?;
    let records = input.list("Records");
    let mut entries = Vec::with_capacity(records.len());
    let mut total = 0usize;
    for (slot, record) in records.iter().enumerate() {
        let partition_key = record.str("PartitionKey").unwrap_or_default();
        let data = record.blob("Data").cloned().unwrap_or_default();
        let size = data.len() + partition_key.len();
        if size > max_record {
            return Err(errors::record_too_large(size, max_record));
        }
        total += size;
        let hash = hash_key(record, partition_key)?;
        entries.push(Entry {
            slot,
            partition_key: partition_key.to_owned(),
            data,
            hash,
        });
    }
    let limit = if max_record > 1024 * 1024 {
        MAX_LARGE_REQUEST_BYTES
    } else {
        MAX_REQUEST_BYTES
    };
    if total > limit {
        return Err(AwsError::invalid_argument(format!(
            "Records size exceeds {} MB limit",
            limit / (1024 * 1024)
        )));
    }
    let outcomes = svc.append(&name, entries).await?;
    let mut failed = 0usize;
    let results: Vec<Doc> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Stored { shard, sequence } => Doc::map()
                .with("SequenceNumber", sequence)
                .with("ShardId", shard_id(shard)),
            Outcome::Failed(code, message) => {
                failed += 1;
                Doc::map()
                    .with("ErrorCode", code)
                    .with("ErrorMessage", message)
            }
        })
        .collect();
    Ok(Doc::map()
        .with("FailedRecordCount", failed)
        .with("Records", results)
        .with("EncryptionType", if kms { "KMS" } else { "NONE" }))
}

/// The hash key of a record: its ExplicitHashKey, else the MD5 of its partition key.
fn hash_key(record: &Doc, partition_key: &str) -> Result<u128, AwsError> {
    match record.str("ExplicitHashKey") {
        Some(text) => parse_hash(text).ok_or_else(|| {
            AwsError::invalid_argument(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
                 Specified value was {text}"
            ))
        }),
        None => Ok(partition_hash(partition_key)),
    }
}

impl StreamsService {
    /// Checks that a stream takes writes; returns its record size limit in bytes and
    /// whether it encrypts.
    fn writable(&self, name: &str) -> Result<(usize, bool), AwsError> {
        let inner = self.lock();
        match inner.streams.get(name) {
            Some(s) if matches!(s.status, Status::Active | Status::Updating) => {
                Ok((s.max_record_kib as usize * 1024, s.encryption_key.is_some()))
            }
            _ => Err(errors::stream_not_found(name, &self.config.account_id)),
        }
    }

    fn routes(&self, name: &str) -> Result<Arc<Vec<Route>>, AwsError> {
        let inner = self.lock();
        inner
            .streams
            .get(name)
            .map(|s| Arc::clone(&s.runtime.routes))
            .ok_or_else(|| errors::stream_not_found(name, &self.config.account_id))
    }

    /// Appends entries to their shards (concurrently across shards, in order within
    /// one) and returns one outcome per entry in request order. Entries whose shard a
    /// reshard closes meanwhile are routed again to the children.
    async fn append(&self, name: &str, mut entries: Vec<Entry>) -> Result<Vec<Outcome>, AwsError> {
        let mut outcomes: Vec<Option<Outcome>> = (0..entries.len()).map(|_| None).collect();
        for attempt in 0..REROUTE_ATTEMPTS {
            if entries.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let routes = self.routes(name)?;
            let mut groups: Vec<Vec<Entry>> = (0..routes.len()).map(|_| Vec::new()).collect();
            for entry in entries.drain(..) {
                let at = routes.partition_point(|r| r.start <= entry.hash);
                match at.checked_sub(1).filter(|&i| entry.hash <= routes[i].end) {
                    Some(i) => groups[i].push(entry),
                    None => {
                        outcomes[entry.slot] = Some(Outcome::Failed(
                            "InternalFailure",
                            "No open shard owns this hash key.".into(),
                        ))
                    }
                }
            }
            let appends = groups
                .into_iter()
                .enumerate()
                .filter(|(_, g)| !g.is_empty())
                .map(|(i, group)| self.append_to_shard(name, &routes[i], group));
            for (done, retry) in futures_util::future::join_all(appends).await {
                for (slot, outcome) in done {
                    outcomes[slot] = Some(outcome);
                }
                entries.extend(retry);
            }
        }
        for entry in entries {
            outcomes[entry.slot] = Some(Outcome::Failed(
                "InternalFailure",
                "The shard was being resharded; retry the record.".into(),
            ));
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(Outcome::Failed(
                    "InternalFailure",
                    "Internal service failure.".into(),
                ))
            })
            .collect())
    }

    /// Appends one shard's entries; returns their outcomes and the entries to route
    /// again because the shard closed.
    async fn append_to_shard(
        &self,
        name: &str,
        route: &Route,
        group: Vec<Entry>,
    ) -> (Vec<(usize, Outcome)>, Vec<Entry>) {
        let gate = route.handle.closed.read().await;
        if *gate {
            return (Vec::new(), group);
        }
        let mut outcomes = Vec::with_capacity(group.len());
        let mut slots = Vec::with_capacity(group.len());
        let mut batch = Vec::with_capacity(group.len());
        {
            let now = now_ms();
            let mut throughput = self.config.throughput_limits.then(|| {
                route
                    .handle
                    .throughput
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
            });
            for entry in group {
                let size = (entry.data.len() + entry.partition_key.len()) as u64;
                if let Some(t) = throughput.as_mut()
                    && !t.admit_write(now, size)
                {
                    let message = errors::throughput_exceeded(
                        &shard_id(route.index),
                        name,
                        &self.config.account_id,
                    )
                    .message;
                    outcomes.push((
                        entry.slot,
                        Outcome::Failed("ProvisionedThroughputExceededException", message),
                    ));
                    continue;
                }
                slots.push(entry.slot);
                batch.push(NewRecord {
                    partition_key: entry.partition_key,
                    data: entry.data,
                });
            }
        }
        if batch.is_empty() {
            return (outcomes, Vec::new());
        }
        match route.handle.log.append(batch).await {
            Ok(appended) => {
                for (slot, a) in slots.into_iter().zip(appended) {
                    let sequence =
                        Sequence::record(route.created_ms, route.index, a.sequence).format();
                    outcomes.push((
                        slot,
                        Outcome::Stored {
                            shard: route.index,
                            sequence,
                        },
                    ));
                }
            }
            Err(err) => {
                tracing::error!(stream = %name, shard = route.index, error = %err, "Appending records failed; not acknowledged.");
                for slot in slots {
                    outcomes.push((
                        slot,
                        Outcome::Failed("InternalFailure", "Internal service failure.".into()),
                    ));
                }
            }
        }
        drop(gate);
        (outcomes, Vec::new())
    }
}

pub(in super::super) fn get_shard_iterator(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let account = svc.config.account_id.clone();
    let shard_text = input.str("ShardId").unwrap_or_default().to_owned();
    let kind = input
        .str("ShardIteratorType")
        .unwrap_or_default()
        .to_owned();
    let starting = input.str("StartingSequenceNumber");
    let stream_name = svc.stream_name(input)?;
    let missing = || match parse_shard_id(&shard_text) {
        Some(ix) => errors::shard_does_not_exist(&shard_id(ix), &stream_name, &account),
        None => errors::shard_not_found(&shard_text, &stream_name, &account),
    };
    // AWS names the shard, not the stream, when the stream does not exist.
    if !svc.lock().streams.contains_key(&stream_name) {
        return Err(missing());
    }
    svc.read_stream(input, |stream| {
        let shard = resolve_shard(stream, &shard_text, &account)?;
        let handle = stream.runtime.handles.get(&shard.index).ok_or_else(|| {
            errors::shard_does_not_exist(&shard.id(), &stream.name, &account)
        })?;
        let shard_name = shard.id();
        let position = match (kind.as_str(), starting) {
            ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", Some(text)) => {
                let seq = Sequence::parse(text).ok_or_else(|| {
                    AwsError::invalid_argument(format!(
                        "StartingSequenceNumber {text} used in GetShardIterator on shard {shard_name} \
                         in stream {} under account {account} is invalid.",
                        stream.name
                    ))
                })?;
                if seq.shard_index != shard.index {
                    return Err(AwsError::invalid_argument(format!(
                        "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call \
                         to a shard with {shard_name}",
                        shard_id(seq.shard_index)
                    )));
                }
                if seq.shard_created_ms != shard.created_ms {
                    return Err(AwsError::invalid_argument(format!(
                        "StartingSequenceNumber {text} used in GetShardIterator on shard {shard_name} \
                         in stream {} under account {account} is invalid because it did not come \
                         from this stream.",
                        stream.name
                    )));
                }
                if kind == "AT_SEQUENCE_NUMBER" {
                    seq.at()
                } else {
                    seq.after()
                }
            }
            ("TRIM_HORIZON" | "LATEST", Some(_)) | ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None) => {
                let has = if starting.is_some() { "also a" } else { "no" };
                return Err(AwsError::invalid_argument(format!(
                    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and \
                     StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no \
                     StartingSequenceNumber. Request specified {kind} and {has} StartingSequenceNumber."
                )));
            }
            ("TRIM_HORIZON", None) => handle.log.first_sequence(),
            ("LATEST", None) => handle.log.next_sequence(),
            ("AT_TIMESTAMP", _) => {
                let Some(at) = input.timestamp("Timestamp") else {
                    return Err(AwsError::invalid_argument(
                        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. \
                         Current request has no timestamp parameter.",
                    ));
                };
                let now = now_ms();
                if at > now {
                    return Err(AwsError::invalid_argument(format!(
                        "The timestampInMillis parameter cannot be greater than the \
                         currentTimestampInMillis. timestampInMillis: {at}, currentTimestampInMillis: {now}"
                    )));
                }
                handle.log.sequence_at_time(at).map_err(|err| {
                    tracing::error!(error = %err, "Searching a shard log by time failed.");
                    errors::internal()
                })?
            }
            _ => {
                return Err(AwsError::invalid_argument(format!(
                    "Invalid ShardIteratorType {kind}."
                )));
            }
        };
        let token = svc.iterator_key.encode(&Position {
            stream: stream.name.clone(),
            stream_created_ms: stream.created_ms,
            shard_index: shard.index,
            position,
            issued_ms: now_ms(),
        });
        Ok(Doc::map().with("ShardIterator", token))
    })
}

/// The shard an id names, with AWS's two different not-found messages.
fn resolve_shard<'a>(stream: &'a Stream, text: &str, account: &str) -> Result<&'a Shard, AwsError> {
    let index =
        parse_shard_id(text).ok_or_else(|| errors::shard_not_found(text, &stream.name, account))?;
    stream
        .shard(index)
        .filter(|s| stream.runtime.handles.contains_key(&s.index))
        .ok_or_else(|| errors::shard_does_not_exist(&shard_id(index), &stream.name, account))
}

/// `Thu Jan 22 01:22:02 UTC 2015`, the form of AWS's iterator expiry message.
fn amz_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] UTC [year]"
    );
    t.format(&format).unwrap_or_default()
}

/// Checks an iterator token and returns what it points at.
pub(in super::super) fn open_iterator(
    svc: &StreamsService,
    token: &str,
) -> Result<Position, AwsError> {
    let position = svc
        .iterator_key
        .decode(token)
        .ok_or_else(|| AwsError::invalid_argument("Invalid ShardIterator."))?;
    let now = now_ms();
    let ttl = svc.config.iterator_ttl.as_millis() as i64;
    if now - position.issued_ms > ttl {
        return Err(AwsError::new(
            400,
            "ExpiredIteratorException",
            format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} \
                 which is further in the future than the tolerated delay of {ttl} milliseconds.",
                amz_time(position.issued_ms),
                amz_time(now)
            ),
        ));
    }
    Ok(position)
}

pub(in super::super) fn get_records(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let position = open_iterator(svc, input.str("ShardIterator").unwrap_or_default())?;
    let limit = input.int("Limit").unwrap_or(DEFAULT_GET_LIMIT).max(1) as usize;
    let account = &svc.config.account_id;
    let lookup = Doc::map().with("StreamName", position.stream.as_str());
    let gone =
        || errors::shard_does_not_exist(&shard_id(position.shard_index), &position.stream, account);
    let (shard, handle, child_shards, horizon) = svc
        .read_stream(&lookup, |stream| {
            if stream.created_ms != position.stream_created_ms || stream.status == Status::Deleting
            {
                return Err(gone());
            }
            let shard = stream.shard(position.shard_index).ok_or_else(gone)?;
            let handle = Arc::clone(stream.runtime.handles.get(&shard.index).ok_or_else(gone)?);
            let children = shard
                .closed
                .map(|_| describe::child_shards(stream, shard.index));
            Ok((
                shard.clone(),
                handle,
                children,
                now_ms() - stream.retention_ms(),
            ))
        })
        .map_err(|e| {
            if e.code == "ResourceNotFoundException" {
                gone()
            } else {
                e
            }
        })?;
    if svc.config.throughput_limits {
        let mut t = handle.throughput.lock().unwrap_or_else(|e| e.into_inner());
        if !t.admit_read(now_ms()) {
            return Err(errors::throughput_exceeded(
                &shard.id(),
                &position.stream,
                account,
            ));
        }
    }
    let read = read_batch(&shard, &handle.log, position.position, limit, horizon)?;
    if svc.config.throughput_limits {
        let mut t = handle.throughput.lock().unwrap_or_else(|e| e.into_inner());
        t.count_read(read.bytes as u64);
    }
    let at_end = shard.closed.is_some_and(|c| read.next >= c.end);
    let next_iterator = (!at_end).then(|| {
        svc.iterator_key.encode(&Position {
            position: read.next,
            issued_ms: now_ms(),
            ..position.clone()
        })
    });
    Ok(Doc::map()
        .with("Records", read.records)
        .with("NextShardIterator", next_iterator)
        .with("MillisBehindLatest", read.millis_behind)
        .with("ChildShards", if at_end { child_shards } else { None }))
}

/// Records read from a shard for a consumer.
pub(in super::super) struct Batch {
    pub records: Vec<Doc>,
    /// Log position to continue from.
    pub next: u64,
    pub bytes: usize,
    pub millis_behind: i64,
    /// Sequence number of the last record returned, if any.
    pub last_sequence: Option<String>,
}

/// Reads up to `limit` records from `from`, skipping those older than `horizon`.
pub(in super::super) fn read_batch(
    shard: &Shard,
    log: &shard_log::ShardLog,
    from: u64,
    limit: usize,
    horizon: i64,
) -> Result<Batch, AwsError> {
    let start = from.max(log.first_sequence());
    let stored = log.read(start, limit, MAX_READ_BYTES).map_err(|err| {
        tracing::error!(shard = %shard.id(), error = %err, "Reading a shard log failed.");
        errors::internal()
    })?;
    let mut next = start;
    let mut bytes = 0;
    let mut last_arrival = None;
    let mut last_sequence = None;
    let mut records = Vec::with_capacity(stored.len());
    for record in stored {
        next = record.sequence + 1;
        if record.arrival_ms < horizon {
            continue;
        }
        bytes += record.data.len();
        last_arrival = Some(record.arrival_ms);
        let kms = shard.encrypted_at(record.sequence);
        let doc = describe::record(shard, record, kms);
        last_sequence = doc.str("SequenceNumber").map(str::to_owned);
        records.push(doc);
    }
    // How far the reader is behind the tip: the age of the last record returned while
    // newer ones remain (at least 1 ms, so "behind" never reads as caught up).
    let millis_behind = if next >= log.next_sequence() {
        0
    } else {
        last_arrival.map_or(1, |here| (super::super::now_ms() - here).max(1))
    };
    Ok(Batch {
        records,
        next,
        bytes,
        millis_behind,
        last_sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_message_time_format() {
        assert_eq!(amz_time(1_421_889_722_000), "Thu Jan 22 01:22:02 UTC 2015");
    }
}
