//! SubscribeToShard: records pushed to an enhanced fan-out consumer over an HTTP/2
//! `application/vnd.amazon.eventstream` response for the subscription's lifetime
//! (5 minutes by default, as AWS). Records are sent as soon as the shard log makes them
//! durable (the log's watch wakes the subscription), not on a polling interval.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use crate::protocol::body::{ResponseBody, channel};
use crate::protocol::error::AwsError;
use crate::protocol::rpc::{Doc, Encoding, eventstream};

use super::describe;
use super::errors;
use super::keys::Sequence;
use super::ops::consumers::{effective_status, stream_of_consumer};
use super::ops::records::{get_shard_iterator, read_batch};
use super::state::{Shard, Status, parse_shard_id};
use super::{StreamsService, now_ms};

/// AWS refuses a new subscription for the same consumer and shard within 5 seconds.
const RESUBSCRIBE_MS: i64 = 5_000;
/// An event is sent at least this often while the shard is quiet, so consumers see
/// their position (ContinuationSequenceNumber) and that the subscription lives.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Records per event.
const EVENT_RECORDS: usize = 10_000;

impl StreamsService {
    /// Checks a SubscribeToShard request and starts streaming its events.
    pub async fn subscribe(
        self: &Arc<Self>,
        input: &Doc,
        encoding: Encoding,
        request_id: &str,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let consumer_arn = input.str("ConsumerARN").unwrap_or_default().to_owned();
        let shard_text = input.str("ShardId").unwrap_or_default().to_owned();
        let stream_name = stream_of_consumer(self, &consumer_arn)?;
        let consumer_gone = || {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Consumer {consumer_arn} not found."),
            )
        };
        // The consumer must exist and be ACTIVE.
        {
            let inner = self.lock();
            let stream = inner.streams.get(&stream_name).ok_or_else(consumer_gone)?;
            let consumer = stream
                .consumers
                .iter()
                .find(|c| c.arn == consumer_arn)
                .ok_or_else(consumer_gone)?;
            match effective_status(consumer, now_ms()) {
                Some(Status::Active) => {}
                Some(status) => {
                    return Err(AwsError::in_use(format!(
                        "Consumer {consumer_arn} is not ACTIVE, instead in state {}.",
                        status.as_str()
                    )));
                }
                None => return Err(consumer_gone()),
            }
        }
        // The starting position, checked as GetShardIterator checks it.
        let start = input
            .get("StartingPosition")
            .cloned()
            .unwrap_or_else(Doc::map);
        let lookup = Doc::map()
            .with("StreamName", stream_name.as_str())
            .with("ShardId", shard_text.as_str())
            .with("ShardIteratorType", start.str("Type").unwrap_or_default())
            .with("StartingSequenceNumber", start.str("SequenceNumber"))
            .with(
                "Timestamp",
                start.timestamp("Timestamp").map(Doc::Timestamp),
            );
        let token = get_shard_iterator(self, &lookup)?;
        let position = self
            .iterator_key
            .decode(token.str("ShardIterator").unwrap_or_default())
            .ok_or_else(errors::internal)?;
        let shard_index = parse_shard_id(&shard_text).unwrap_or_default();
        let generation = self.claim_subscription(&consumer_arn, shard_index, &shard_text)?;

        let (tx, body) = channel(4);
        let service = Arc::clone(self);
        let subscription = Subscription {
            consumer_arn,
            stream_name,
            shard_index,
            generation,
            encoding,
            next: position.position,
        };
        tokio::spawn(async move { service.run_subscription(subscription, tx).await });
        Response::builder()
            .status(200)
            .header("content-type", "application/vnd.amazon.eventstream")
            .header("x-amzn-RequestId", request_id)
            .body(body)
            .map_err(|_| errors::internal())
    }

    /// Registers a new subscription; ResourceInUseException within 5 s of the last one.
    /// A later one takes over: the older subscription ends.
    fn claim_subscription(
        &self,
        consumer: &str,
        shard: u32,
        shard_text: &str,
    ) -> Result<u64, AwsError> {
        let now = now_ms();
        let mut subs = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        let key = (consumer.to_owned(), shard);
        let generation = match subs.get(&key) {
            Some((started, _)) if now - started < RESUBSCRIBE_MS => {
                return Err(AwsError::in_use(format!(
                    "Another active subscription exists for consumer {consumer} and shard \
                     {shard_text}. Wait 5 seconds after a subscription starts before subscribing again."
                )));
            }
            Some((_, generation)) => generation + 1,
            None => 1,
        };
        subs.insert(key, (now, generation));
        Ok(generation)
    }

    fn subscription_current(&self, s: &Subscription) -> bool {
        let subs = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        subs.get(&(s.consumer_arn.clone(), s.shard_index))
            .is_some_and(|(_, g)| *g == s.generation)
    }

    /// The shard and log of a live subscription, or why it must end.
    fn subscription_target(
        &self,
        s: &Subscription,
    ) -> Result<(Shard, Arc<super::shard::ShardHandle>, i64), AwsError> {
        let inner = self.lock();
        let gone = || {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Consumer {} not found.", s.consumer_arn),
            )
        };
        let stream = inner.streams.get(&s.stream_name).ok_or_else(gone)?;
        let alive = stream
            .consumers
            .iter()
            .find(|c| c.arn == s.consumer_arn)
            .and_then(|c| effective_status(c, now_ms()))
            .is_some_and(|st| st == Status::Active);
        if !alive || stream.status == Status::Deleting {
            return Err(gone());
        }
        let shard = stream.shard(s.shard_index).ok_or_else(gone)?.clone();
        let handle = Arc::clone(
            stream
                .runtime
                .handles
                .get(&s.shard_index)
                .ok_or_else(gone)?,
        );
        Ok((shard, handle, now_ms() - stream.retention_ms()))
    }

    async fn run_subscription(
        self: Arc<Self>,
        mut s: Subscription,
        tx: tokio::sync::mpsc::Sender<Bytes>,
    ) {
        if tx
            .send(eventstream::initial_response(s.encoding))
            .await
            .is_err()
        {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.config.subscription;
        let mut continuation: Option<String> = None;
        let mut last_sent = tokio::time::Instant::now() - HEARTBEAT;
        loop {
            if !self.subscription_current(&s) {
                let message = "Another subscription took over this consumer and shard.";
                let _ = tx
                    .send(eventstream::exception(
                        s.encoding,
                        "ResourceInUseException",
                        message,
                    ))
                    .await;
                return;
            }
            let (shard, handle, horizon) = match self.subscription_target(&s) {
                Ok(target) => target,
                Err(err) => {
                    let _ = tx
                        .send(eventstream::exception(s.encoding, err.code, &err.message))
                        .await;
                    return;
                }
            };
            let mut watch = handle.log.watch();
            let batch = match read_batch(&shard, &handle.log, s.next, EVENT_RECORDS, horizon) {
                Ok(batch) => batch,
                Err(err) => {
                    let _ = tx
                        .send(eventstream::exception(s.encoding, err.code, &err.message))
                        .await;
                    return;
                }
            };
            s.next = batch.next;
            if let Some(last) = &batch.last_sequence {
                continuation = Some(last.clone());
            }
            let at_end = shard.closed.is_some_and(|c| s.next >= c.end);
            let due = tokio::time::Instant::now() >= last_sent + HEARTBEAT;
            if !batch.records.is_empty() || at_end || due {
                // Resuming AFTER_SEQUENCE_NUMBER this number continues at `next`.
                let continuation_number = continuation.clone().unwrap_or_else(|| {
                    Sequence {
                        shard_created_ms: shard.created_ms,
                        shard_index: shard.index,
                        position: s.next,
                    }
                    .format()
                });
                let mut event = Doc::map()
                    .with("Records", batch.records)
                    .with("ContinuationSequenceNumber", continuation_number)
                    .with("MillisBehindLatest", batch.millis_behind);
                if at_end {
                    let lookup = Doc::map().with("StreamName", s.stream_name.as_str());
                    let children = self
                        .read_stream(&lookup, |stream| {
                            Ok(describe::child_shards(stream, shard.index))
                        })
                        .ok();
                    event.insert("ChildShards", children);
                }
                let frame = eventstream::event(s.encoding, "SubscribeToShardEvent", &event);
                if tx.send(frame).await.is_err() {
                    return;
                }
                last_sent = tokio::time::Instant::now();
                if at_end {
                    return;
                }
                if s.next < handle.log.next_sequence() {
                    continue;
                }
            }
            let wake = (last_sent + HEARTBEAT).min(deadline);
            tokio::select! {
                _ = watch.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = tx.closed() => return,
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
        }
    }
}

/// One running subscription.
struct Subscription {
    consumer_arn: String,
    stream_name: String,
    shard_index: u32,
    generation: u64,
    encoding: Encoding,
    /// Next log position to send.
    next: u64,
}
