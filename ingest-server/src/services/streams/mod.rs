//! Kinesis Data Streams: the 39 operations of the botocore `kinesis` 2013-12-02 model
//! over durable per-shard logs ([`shard_log`]).
//!
//! The protocol layer ([`crate::protocol::rpc`]) has already decoded and validated the
//! input against the model; operations here apply AWS's semantics and checks and
//! return the output document. Stream metadata lives in a catalog (SQLite, one row per
//! stream); records live in the shard logs and are acknowledged only once durable.

mod catalog;
mod describe;
mod errors;
mod iterator;
mod keys;
mod ops;
mod shard;
mod state;
mod subscribe;
mod throttle;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shard_log::{LogConfig, LogStore};

use crate::config::Config;
use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use catalog::Catalog;
use iterator::IteratorKey;
use shard::ShardHandle;
use state::{Route, Runtime, Stream};

/// Settings of the service, from the command line.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub region: String,
    pub account_id: String,
    pub state_delay: Duration,
    pub shard_limit: u32,
    pub throughput_limits: bool,
    pub iterator_ttl: Duration,
    pub subscription: Duration,
}

impl StreamsConfig {
    /// The settings of a server configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            state_delay: Duration::from_millis(config.kinesis_state_delay_ms),
            shard_limit: config.kinesis_shard_limit,
            throughput_limits: config.kinesis_throughput_limits,
            iterator_ttl: Duration::from_secs(config.kinesis_iterator_ttl_secs.max(1)),
            subscription: Duration::from_secs(config.kinesis_subscription_secs.max(1)),
        }
    }
}

/// Mutable state: the streams by name and the catalog that persists them.
struct Inner {
    streams: BTreeMap<String, Stream>,
    catalog: Catalog,
    account: catalog::AccountSettings,
}

/// The Kinesis Data Streams service.
pub struct StreamsService {
    config: StreamsConfig,
    inner: Mutex<Inner>,
    logs: LogStore,
    iterator_key: IteratorKey,
    /// Last start of each (consumer ARN, shard index) subscription and its generation,
    /// for AWS's 5-second rule and take-over.
    subscriptions: Mutex<HashMap<(String, u32), (i64, u64)>>,
}

impl std::fmt::Debug for StreamsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsService").finish_non_exhaustive()
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl StreamsService {
    /// Opens the catalog and shard logs under `dir` (blocking: recovery scans the logs'
    /// tails) and resumes unfinished transitions.
    pub fn open(dir: &Path, config: StreamsConfig) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let catalog = Catalog::open(&dir.join("catalog.sqlite"))?;
        let logs = LogStore::open(&dir.join("logs"), LogConfig::default())?;
        let iterator_key = IteratorKey::new(catalog.iterator_key()?);
        let account = catalog.account_settings()?;
        let mut streams = BTreeMap::new();
        for mut stream in catalog.load_streams()? {
            attach_runtime(&logs, &mut stream)?;
            streams.insert(stream.name.clone(), stream);
        }
        tracing::info!(
            streams = streams.len(),
            "Kinesis Data Streams catalog loaded."
        );
        let service = Arc::new(Self {
            config,
            inner: Mutex::new(Inner {
                streams,
                catalog,
                account,
            }),
            logs,
            iterator_key,
            subscriptions: Mutex::new(HashMap::new()),
        });
        Ok(service)
    }

    /// Schedules the transitions left unfinished by the previous run (call inside the
    /// runtime, after [`StreamsService::open`]).
    pub fn resume(self: &Arc<Self>) {
        let pending: Vec<(String, u64, i64)> = self
            .lock()
            .streams
            .values()
            .filter(|s| s.pending.is_some())
            .map(|s| (s.name.clone(), s.transition, s.until_ms))
            .collect();
        for (name, transition, until) in pending {
            self.schedule(name, transition, until);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one operation. `SubscribeToShard` goes through [`StreamsService::subscribe`].
    pub async fn handle(self: &Arc<Self>, operation: &str, input: &Doc) -> Result<Doc, AwsError> {
        use ops::*;
        match operation {
            "CreateStream" => streams::create(self, input),
            "DeleteStream" => streams::delete(self, input),
            "DescribeStream" => streams::describe(self, input),
            "DescribeStreamSummary" => streams::describe_summary(self, input),
            "ListStreams" => streams::list(self, input),
            "UpdateStreamMode" => streams::update_mode(self, input),
            "IncreaseStreamRetentionPeriod" => streams::retention(self, input, true),
            "DecreaseStreamRetentionPeriod" => streams::retention(self, input, false),
            "StartStreamEncryption" => streams::encryption(self, input, true),
            "StopStreamEncryption" => streams::encryption(self, input, false),
            "EnableEnhancedMonitoring" => streams::monitoring(self, input, true),
            "DisableEnhancedMonitoring" => streams::monitoring(self, input, false),
            "UpdateMaxRecordSize" => streams::max_record_size(self, input),
            "UpdateStreamWarmThroughput" => streams::warm_throughput(self, input),
            "ListShards" => shards::list(self, input),
            "SplitShard" => shards::split(self, input),
            "MergeShards" => shards::merge(self, input),
            "UpdateShardCount" => shards::update_count(self, input),
            "PutRecord" => records::put_record(self, input).await,
            "PutRecords" => records::put_records(self, input).await,
            "GetShardIterator" => records::get_shard_iterator(self, input),
            "GetRecords" => records::get_records(self, input),
            "RegisterStreamConsumer" => consumers::register(self, input),
            "DeregisterStreamConsumer" => consumers::deregister(self, input),
            "DescribeStreamConsumer" => consumers::describe(self, input),
            "ListStreamConsumers" => consumers::list(self, input),
            "AddTagsToStream" => tags::add_to_stream(self, input),
            "RemoveTagsFromStream" => tags::remove_from_stream(self, input),
            "ListTagsForStream" => tags::list_for_stream(self, input),
            "TagResource" => tags::tag_resource(self, input),
            "UntagResource" => tags::untag_resource(self, input),
            "ListTagsForResource" => tags::list_for_resource(self, input),
            "DescribeLimits" => account::describe_limits(self),
            "DescribeAccountSettings" => account::describe_settings(self),
            "UpdateAccountSettings" => account::update_settings(self, input),
            "PutResourcePolicy" => account::put_policy(self, input),
            "GetResourcePolicy" => account::get_policy(self, input),
            "DeleteResourcePolicy" => account::delete_policy(self, input),
            other => Err(AwsError::new(
                400,
                "UnknownOperationException",
                format!("Operation {other} is not supported."),
            )),
        }
    }

    /// Retention: drops records older than each stream's retention period, and the logs
    /// of closed shards once their last records have expired (they are no longer listed
    /// either). Called periodically by the server.
    pub async fn enforce_retention(self: &Arc<Self>) {
        let now = now_ms();
        let expired: Vec<String> = {
            let mut inner = self.lock();
            let mut ids = Vec::new();
            for stream in inner.streams.values_mut() {
                let horizon = now - stream.retention_ms();
                let gone: Vec<u32> = stream
                    .shards
                    .iter()
                    .filter(|s| s.closed.is_some_and(|c| c.at_ms < horizon))
                    .filter(|s| stream.runtime.handles.contains_key(&s.index))
                    .map(|s| s.index)
                    .collect();
                for index in gone {
                    stream.runtime.handles.remove(&index);
                    ids.push(stream.log_id(index));
                }
            }
            ids
        };
        for id in expired {
            match self.logs.remove(&id) {
                Ok(()) => {
                    tracing::info!(shard = %id, "Removed the log of an expired closed shard.")
                }
                Err(err) => {
                    tracing::warn!(shard = %id, error = %err, "Removing an expired shard log failed.")
                }
            }
        }
        let work: Vec<(Arc<ShardHandle>, i64)> = self
            .lock()
            .streams
            .values()
            .flat_map(|s| {
                let horizon = now - s.retention_ms();
                s.runtime
                    .handles
                    .values()
                    .map(move |h| (Arc::clone(h), horizon))
            })
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for (handle, horizon) in work {
                if let Err(err) = handle.log.trim_before(horizon) {
                    tracing::warn!(error = %err, "Trimming an expired shard log failed.");
                }
            }
        })
        .await;
    }

    // ------------------------------------------------------------------ transitions

    /// Starts a transitional state that ends after the configured delay with `pending`.
    fn begin_transition(
        self: &Arc<Self>,
        stream: &mut Stream,
        status: state::Status,
        pending: state::Pending,
    ) {
        let until = now_ms() + self.config.state_delay.as_millis() as i64;
        stream.status = status;
        stream.until_ms = until;
        stream.pending = Some(pending);
        stream.transition += 1;
        self.schedule(stream.name.clone(), stream.transition, until);
    }

    fn schedule(self: &Arc<Self>, name: String, transition: u64, until_ms: i64) {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let wait = (until_ms - now_ms()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            if let Err(err) = service.finish_transition(&name, transition).await {
                tracing::error!(stream = %name, error = %err, "Finishing a stream transition failed.");
            }
        });
    }

    async fn finish_transition(
        self: &Arc<Self>,
        name: &str,
        transition: u64,
    ) -> anyhow::Result<()> {
        let pending = {
            let inner = self.lock();
            match inner.streams.get(name) {
                Some(s) if s.transition == transition => s.pending.clone(),
                _ => None,
            }
        };
        let Some(pending) = pending else {
            return Ok(());
        };
        match pending {
            state::Pending::Delete => {
                let storage_id = {
                    let mut inner = self.lock();
                    let Some(stream) = inner.streams.remove(name) else {
                        return Ok(());
                    };
                    inner.catalog.delete_stream(name)?;
                    stream.storage_id
                };
                let logs_removed = {
                    let logs = &self.logs;
                    logs.remove(&storage_id)
                };
                logs_removed?;
                tracing::info!(stream = %name, "Stream deleted.");
            }
            state::Pending::Reshard(new_shards) => {
                ops::shards::apply_reshard(self, name, transition, new_shards).await?;
            }
            state::Pending::Activate | state::Pending::Encryption(_) => {
                let mut inner = self.lock();
                let Inner {
                    streams, catalog, ..
                } = &mut *inner;
                if let Some(stream) = streams.get_mut(name) {
                    if let Some(state::Pending::Encryption(key)) = stream.pending.take() {
                        ops::streams::apply_encryption(stream, key);
                    }
                    stream.status = state::Status::Active;
                    stream.pending = None;
                    catalog.save_stream(stream)?;
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------- lookups

    /// The stream an input names (StreamName or StreamARN).
    fn stream_name(&self, input: &Doc) -> Result<String, AwsError> {
        if let Some(arn) = input.str("StreamARN") {
            let name = self.name_from_arn(arn)?;
            if let Some(given) = input.str("StreamName")
                && given != name
            {
                return Err(AwsError::invalid_argument(format!(
                    "StreamARN {arn} and StreamName {given} do not refer to the same stream."
                )));
            }
            return Ok(name);
        }
        input.str("StreamName").map(str::to_owned).ok_or_else(|| {
            AwsError::invalid_argument("Either StreamName or StreamARN should be provided.")
        })
    }

    /// The stream name in a stream ARN of this account and region.
    fn name_from_arn(&self, arn: &str) -> Result<String, AwsError> {
        let prefix = format!(
            "arn:aws:kinesis:{}:{}:stream/",
            self.config.region, self.config.account_id
        );
        match arn.strip_prefix(&prefix) {
            Some(rest) if !rest.is_empty() && !rest.contains('/') => Ok(rest.to_owned()),
            _ => Err(errors::arn_not_found(arn)),
        }
    }

    fn stream_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{name}",
            self.config.region, self.config.account_id
        )
    }
}

/// Opens the logs of every shard of a stream and builds its routing table.
fn attach_runtime(logs: &LogStore, stream: &mut Stream) -> std::io::Result<()> {
    let mut handles = HashMap::new();
    for shard in &stream.shards {
        let handle = match stream.runtime.handles.get(&shard.index) {
            Some(existing) => Arc::clone(existing),
            None => Arc::new(ShardHandle::new(
                logs.shard(&stream.log_id(shard.index))?,
                shard.closed.is_some(),
            )),
        };
        handles.insert(shard.index, handle);
    }
    let mut routes: Vec<Route> = stream
        .open_shards()
        .map(|s| Route {
            start: s.start_hash,
            end: s.end_hash,
            index: s.index,
            created_ms: s.created_ms,
            handle: Arc::clone(&handles[&s.index]),
        })
        .collect();
    routes.sort_by_key(|r| r.start);
    stream.runtime = Runtime {
        handles,
        routes: Arc::new(routes),
    };
    Ok(())
}
