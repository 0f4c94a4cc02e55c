//! Shards: ListShards and resharding (SplitShard, MergeShards, UpdateShardCount).
//!
//! A reshard puts the stream in UPDATING and applies when that ends, as on AWS: the
//! parents close at their exact log end (appends hold the shard's gate; closing waits
//! for them) and the children open. Every child has at most two parents, so consumers
//! that finish parents before children keep per-key order.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use super::super::describe;
use super::super::errors;
use super::super::keys::parse_hash;
use super::super::state::{Closed, NewShard, Pending, Shard, Status, Stream, parse_shard_id};
use super::super::{StreamsService, attach_runtime, now_ms};
use super::token;

type Svc = Arc<StreamsService>;

const DEFAULT_MAX_RESULTS: i64 = 1000;

/// Where a ListShards page continues.
#[derive(Debug, Serialize, Deserialize)]
struct ShardsPage {
    stream: String,
    created_ms: i64,
    after: Option<u32>,
    filter: Option<Filter>,
}

/// A ShardFilter.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Filter {
    kind: String,
    shard: Option<u32>,
    timestamp_ms: Option<i64>,
}

impl Filter {
    fn from_input(doc: &Doc) -> Result<Filter, AwsError> {
        let kind = doc.str("Type").unwrap_or_default().to_owned();
        let shard = doc.str("ShardId").and_then(parse_shard_id);
        let timestamp_ms = doc.timestamp("Timestamp");
        match kind.as_str() {
            "AFTER_SHARD_ID" if shard.is_none() => Err(AwsError::invalid_argument(
                "ShardId must be specified for the AFTER_SHARD_ID ShardFilter type.",
            )),
            "AT_TIMESTAMP" | "FROM_TIMESTAMP" if timestamp_ms.is_none() => {
                Err(AwsError::invalid_argument(format!(
                    "Timestamp must be specified for the {kind} ShardFilter type."
                )))
            }
            _ => Ok(Filter {
                kind,
                shard,
                timestamp_ms,
            }),
        }
    }

    fn keeps(&self, stream: &Stream, shard: &Shard, now: i64) -> bool {
        let open_at = |t: i64| {
            let t = t.max(stream.created_ms);
            shard.created_ms <= t && shard.closed.is_none_or(|c| c.at_ms > t)
        };
        match self.kind.as_str() {
            "AFTER_SHARD_ID" => self.shard.is_none_or(|after| shard.index > after),
            "AT_TRIM_HORIZON" => open_at(now - stream.retention_ms()),
            "AT_LATEST" => shard.closed.is_none(),
            "AT_TIMESTAMP" => open_at(self.timestamp_ms.unwrap_or(now)),
            "FROM_TIMESTAMP" => {
                let t = self.timestamp_ms.unwrap_or(now);
                shard.closed.is_none_or(|c| c.at_ms > t)
            }
            // FROM_TRIM_HORIZON: every retained shard.
            _ => true,
        }
    }
}

pub(in super::super) fn list(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let named = input.str("StreamName").is_some() || input.str("StreamARN").is_some();
    let page: ShardsPage = match input.str("NextToken") {
        Some(_) if named => {
            let which = if input.str("StreamARN").is_some() {
                "StreamARN"
            } else {
                "StreamName"
            };
            return Err(AwsError::invalid_argument(format!(
                "NextToken and {which} cannot be provided together."
            )));
        }
        Some(t) => token::decode(t)?,
        None if !named => {
            return Err(AwsError::invalid_argument(
                "Either NextToken or StreamName should be provided.",
            ));
        }
        None => ShardsPage {
            stream: svc.stream_name(input)?,
            created_ms: 0,
            after: input.str("ExclusiveStartShardId").and_then(parse_shard_id),
            filter: input
                .get("ShardFilter")
                .map(Filter::from_input)
                .transpose()?,
        },
    };
    let max = input
        .int("MaxResults")
        .unwrap_or(DEFAULT_MAX_RESULTS)
        .max(1) as usize;
    let lookup = Doc::map().with("StreamName", page.stream.as_str());
    svc.read_stream(&lookup, |stream| {
        if page.created_ms != 0 && page.created_ms != stream.created_ms {
            return Err(AwsError::new(
                400,
                "ExpiredNextTokenException",
                "The NextToken belongs to a stream that no longer exists.",
            ));
        }
        if let Some(created) = input.timestamp("StreamCreationTimestamp")
            && created / 1000 != stream.created_ms / 1000
        {
            return Err(errors::stream_not_found(
                &stream.name,
                &svc.config.account_id,
            ));
        }
        let now = now_ms();
        let mut shards: Vec<&Shard> = stream
            .visible_shards(now)
            .filter(|s| page.after.is_none_or(|a| s.index > a))
            .filter(|s| page.filter.as_ref().is_none_or(|f| f.keeps(stream, s, now)))
            .collect();
        shards.sort_by_key(|s| s.index);
        let more = shards.len() > max;
        shards.truncate(max);
        let next = match shards.last() {
            Some(last) if more => Some(token::encode(ShardsPage {
                stream: stream.name.clone(),
                created_ms: stream.created_ms,
                after: Some(last.index),
                filter: page.filter.clone(),
            })),
            _ => None,
        };
        let shards: Vec<Doc> = shards.into_iter().map(describe::shard).collect();
        Ok(Doc::map().with("Shards", shards).with("NextToken", next))
    })
}

/// The open shard an operation names, or AWS's errors.
fn open_shard<'a>(
    svc: &StreamsService,
    stream: &'a Stream,
    id: &str,
) -> Result<&'a Shard, AwsError> {
    let account = &svc.config.account_id;
    let shard = parse_shard_id(id)
        .and_then(|ix| stream.shard(ix))
        .ok_or_else(|| errors::shard_not_found(id, &stream.name, account))?;
    if shard.closed.is_some() {
        return Err(AwsError::invalid_argument(format!(
            "Shard {} in stream {} under account {account} has already been merged or split, and \
             thus is not eligible for merging or splitting.",
            shard.id(),
            stream.name
        )));
    }
    Ok(shard)
}

pub(in super::super) fn split(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let shard_id = input.str("ShardToSplit").unwrap_or_default().to_owned();
    let key_text = input
        .str("NewStartingHashKey")
        .unwrap_or_default()
        .to_owned();
    svc.update_stream(input, |stream, inner| {
        svc.require_active(stream)?;
        let shard = open_shard(svc, stream, &shard_id)?;
        svc.check_shard_limit(inner, Some(stream), 1)?;
        let key = parse_hash(&key_text)
            .filter(|k| *k > shard.start_hash.saturating_add(1) && *k < shard.end_hash);
        let Some(key) = key else {
            return Err(AwsError::invalid_argument(format!(
                "NewStartingHashKey {key_text} used in SplitShard() on shard {} in stream {} under \
                 account {} is not both greater than one plus the shard's StartingHashKey {} and \
                 less than the shard's EndingHashKey {}.",
                shard.id(),
                stream.name,
                svc.config.account_id,
                shard.start_hash,
                shard.end_hash
            )));
        };
        let children = split_at(shard, key).to_vec();
        svc.begin_transition(stream, Status::Updating, Pending::Reshard(children));
        Ok(Doc::map())
    })
}

pub(in super::super) fn merge(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let first = input.str("ShardToMerge").unwrap_or_default().to_owned();
    let second = input
        .str("AdjacentShardToMerge")
        .unwrap_or_default()
        .to_owned();
    svc.update_stream(input, |stream, _| {
        svc.require_active(stream)?;
        let a = open_shard(svc, stream, &first)?;
        let b = open_shard(svc, stream, &second)?;
        let adjacent = a.end_hash.checked_add(1) == Some(b.start_hash)
            || b.end_hash.checked_add(1) == Some(a.start_hash);
        if !adjacent {
            return Err(AwsError::invalid_argument(format!(
                "Shards {} and {} in stream {} under account {} are not an adjacent pair of shards \
                 eligible for merging",
                a.id(),
                b.id(),
                stream.name,
                svc.config.account_id
            )));
        }
        let child = NewShard {
            start: a.start_hash.min(b.start_hash),
            end: a.end_hash.max(b.end_hash),
            parent: a.index,
            adjacent_parent: Some(b.index),
        };
        svc.begin_transition(stream, Status::Updating, Pending::Reshard(vec![child]));
        Ok(Doc::map())
    })
}

pub(in super::super) fn update_count(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let target = input.int("TargetShardCount").unwrap_or_default();
    svc.update_stream(input, |stream, inner| {
        svc.require_active(stream)?;
        let mut open: Vec<&Shard> = stream.open_shards().collect();
        open.sort_by_key(|s| s.start_hash);
        let current = open.len() as i64;
        if target > current * 2 {
            return Err(AwsError::invalid_argument(format!(
                "UpdateShardCount cannot scale up over double your current open shard count. \
                 Current open shard count: {current} Target shard count: {target}"
            )));
        }
        if target * 2 < current {
            return Err(AwsError::invalid_argument(format!(
                "UpdateShardCount cannot scale down below half your current open shard count. \
                 Current open shard count: {current} Target shard count: {target}"
            )));
        }
        if target > current {
            svc.check_shard_limit(inner, Some(stream), (target - current) as u64)?;
        }
        let children = if target >= current {
            scale_up(&open, (target - current) as usize)
        } else {
            scale_down(&open, (current - target) as usize)
        };
        if !children.is_empty() {
            svc.begin_transition(stream, Status::Updating, Pending::Reshard(children));
        }
        Ok(Doc::map()
            .with("StreamName", stream.name.as_str())
            .with("CurrentShardCount", current)
            .with("TargetShardCount", target)
            .with("StreamARN", stream.arn.as_str()))
    })
}

/// Splits the `splits` widest open shards in half.
fn scale_up(open: &[&Shard], splits: usize) -> Vec<NewShard> {
    let mut by_width: Vec<&&Shard> = open.iter().collect();
    by_width.sort_by_key(|s| std::cmp::Reverse(s.end_hash - s.start_hash));
    by_width
        .into_iter()
        .take(splits)
        .flat_map(|s| split_at(s, s.start_hash + (s.end_hash - s.start_hash) / 2 + 1))
        .collect()
}

/// The two children of splitting `shard` so that the second starts at `key`.
fn split_at(shard: &Shard, key: u128) -> [NewShard; 2] {
    [
        NewShard {
            start: shard.start_hash,
            end: key - 1,
            parent: shard.index,
            adjacent_parent: None,
        },
        NewShard {
            start: key,
            end: shard.end_hash,
            parent: shard.index,
            adjacent_parent: None,
        },
    ]
}

/// Merges `merges` disjoint adjacent pairs, narrowest pairs first. `open` is sorted by
/// starting hash key and has at least `2 * merges` shards.
fn scale_down(open: &[&Shard], merges: usize) -> Vec<NewShard> {
    let mut pairs: Vec<usize> = (0..open.len().saturating_sub(1)).collect();
    pairs.sort_by_key(|&i| open[i + 1].end_hash - open[i].start_hash);
    let mut used = vec![false; open.len()];
    let mut children = Vec::new();
    for i in pairs {
        if children.len() == merges {
            break;
        }
        if used[i] || used[i + 1] {
            continue;
        }
        used[i] = true;
        used[i + 1] = true;
        children.push(NewShard {
            start: open[i].start_hash,
            end: open[i + 1].end_hash,
            parent: open[i].index,
            adjacent_parent: Some(open[i + 1].index),
        });
    }
    // Narrowest-first can strand shards between used ones; pair the rest in order.
    let mut i = 0;
    while children.len() < merges && i + 1 < open.len() {
        if !used[i] && !used[i + 1] {
            used[i] = true;
            used[i + 1] = true;
            children.push(NewShard {
                start: open[i].start_hash,
                end: open[i + 1].end_hash,
                parent: open[i].index,
                adjacent_parent: Some(open[i + 1].index),
            });
        }
        i += 1;
    }
    children
}

/// Applies a reshard when its UPDATING state ends: closes the parents at their exact
/// log ends and opens the children.
pub(in super::super) async fn apply_reshard(
    svc: &Svc,
    name: &str,
    transition: u64,
    children: Vec<NewShard>,
) -> anyhow::Result<()> {
    let parents: Vec<u32> = {
        let mut ids: Vec<u32> = children
            .iter()
            .flat_map(|c| std::iter::once(c.parent).chain(c.adjacent_parent))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let handles = {
        let inner = svc.lock();
        let Some(stream) = inner.streams.get(name) else {
            return Ok(());
        };
        if stream.transition != transition {
            return Ok(());
        }
        parents
            .iter()
            .filter_map(|p| stream.runtime.handles.get(p).cloned())
            .collect::<Vec<_>>()
    };
    // Wait for in-flight appends to the parents, then keep them out.
    let mut gates = Vec::with_capacity(handles.len());
    for handle in &handles {
        let mut gate = handle.closed.write().await;
        *gate = true;
        gates.push(gate);
    }
    let mut guard = svc.lock();
    let inner = &mut *guard;
    let Some(stream) = inner.streams.get_mut(name) else {
        return Ok(());
    };
    let now = now_ms();
    let mut created = now;
    for (parent, handle) in parents.iter().zip(&handles) {
        if let Some(shard) = stream.shards.iter_mut().find(|s| s.index == *parent) {
            created = created.max(shard.created_ms + 1);
            shard.closed = Some(Closed {
                end: handle.log.next_sequence(),
                at_ms: now,
            });
        }
    }
    let first_index = stream.shards.iter().map(|s| s.index + 1).max().unwrap_or(0);
    let encrypted = stream.encryption_key.is_some();
    for (index, child) in (first_index..).zip(children) {
        let mut shard = Shard::open(index, (child.start, child.end), created);
        shard.parent = Some(child.parent);
        shard.adjacent_parent = child.adjacent_parent;
        if encrypted {
            shard.encryption_changes.push((0, true));
        }
        stream.shards.push(shard);
    }
    attach_runtime(&svc.logs, stream)?;
    stream.status = Status::Active;
    stream.pending = None;
    inner.catalog.save_stream(stream)?;
    drop(gates);
    tracing::info!(stream = %name, shards = stream.open_shards().count(), "Reshard applied.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::streams::keys::{MAX_HASH, even_ranges};

    fn shards(n: u32) -> Vec<Shard> {
        even_ranges(0, MAX_HASH, n)
            .into_iter()
            .enumerate()
            .map(|(i, range)| Shard::open(i as u32, range, 0))
            .collect()
    }

    fn covers_everything(children: &[NewShard], untouched: &[&Shard]) {
        let mut ranges: Vec<(u128, u128)> = children.iter().map(|c| (c.start, c.end)).collect();
        ranges.extend(untouched.iter().map(|s| (s.start_hash, s.end_hash)));
        ranges.sort();
        assert_eq!(ranges[0].0, 0);
        assert_eq!(ranges.last().unwrap().1, MAX_HASH);
        for w in ranges.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
    }

    #[test]
    fn scaling_up_splits_the_widest() {
        let all = shards(3);
        let open: Vec<&Shard> = all.iter().collect();
        let children = scale_up(&open, 2);
        assert_eq!(children.len(), 4);
        let parents: Vec<u32> = children.iter().map(|c| c.parent).collect();
        let untouched: Vec<&Shard> = open
            .iter()
            .copied()
            .filter(|s| !parents.contains(&s.index))
            .collect();
        assert_eq!(untouched.len(), 1);
        covers_everything(&children, &untouched);
    }

    #[test]
    fn scaling_down_merges_adjacent_pairs() {
        for (n, merges) in [(4u32, 2usize), (5, 2), (3, 1), (2, 1)] {
            let all = shards(n);
            let open: Vec<&Shard> = all.iter().collect();
            let children = scale_down(&open, merges);
            assert_eq!(children.len(), merges, "{n} shards");
            let mut parents: Vec<u32> = children
                .iter()
                .flat_map(|c| [c.parent, c.adjacent_parent.unwrap()])
                .collect();
            parents.sort();
            parents.dedup();
            assert_eq!(parents.len(), merges * 2);
            let untouched: Vec<&Shard> = open
                .iter()
                .copied()
                .filter(|s| !parents.contains(&s.index))
                .collect();
            covers_everything(&children, &untouched);
        }
    }
}
