//! Kinesis Data Streams through the AWS SDK for Rust (`aws-sdk-kinesis`, JSON 1.1 over h2c)
//! against an `ingest-server` running in this process. Each test starts its own server on a
//! fresh data directory.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::client::Waiters as _;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ConsumerStatus, PutRecordsRequestEntry, ShardIteratorType, StartingPosition,
    SubscribeToShardEventStream,
};
use kinesis_rust_sdk_tests::TestServer;

/// The StreamExists waiter polls every 10 s or more (its minimum delay).
const WAIT: Duration = Duration::from_secs(60);

async fn server() -> TestServer {
    TestServer::start()
        .await
        .expect("starting ingest-server in process")
}

/// CreateStream, then the SDK's `StreamExists` waiter.
async fn create_active(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    client
        .wait_until_stream_exists()
        .stream_name(name)
        .wait(WAIT)
        .await
        .expect("stream ACTIVE (StreamExists waiter)");
}

/// Every record of every shard from TRIM_HORIZON, as (partition key, data).
async fn read_all(client: &Client, name: &str, expect: usize) -> Vec<(String, Vec<u8>)> {
    let shards = client
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .expect("ListShards");
    let mut out = Vec::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator
            .expect("a shard iterator");
        // A few polls: a reader may see an empty page before it reaches the records.
        let mut last_seq: Option<String> = None;
        for _ in 0..5 {
            let page = client
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .expect("GetRecords");
            for r in page.records() {
                if let Some(prev) = &last_seq {
                    assert!(
                        seq_less(prev, r.sequence_number()),
                        "sequence numbers increase within a shard: {prev} then {}",
                        r.sequence_number()
                    );
                }
                last_seq = Some(r.sequence_number().to_owned());
                out.push((
                    r.partition_key().expect("a partition key").to_owned(),
                    r.data().as_ref().to_vec(),
                ));
            }
            let caught_up = page.millis_behind_latest == Some(0) && page.records().is_empty();
            match page.next_shard_iterator {
                Some(next) if !caught_up => iterator = next,
                _ => break,
            }
        }
    }
    assert_eq!(out.len(), expect, "records read back: {out:?}");
    out
}

/// Decimal sequence numbers compare by length, then digits.
fn seq_less(a: &str, b: &str) -> bool {
    (a.len(), a) < (b.len(), b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_wait_list_shards() {
    let server = server().await;
    let client = server.client();
    create_active(&client, "sdk-create", 3).await;

    let summary = client
        .describe_stream_summary()
        .stream_name("sdk-create")
        .send()
        .await
        .expect("DescribeStreamSummary");
    let d = summary.stream_description_summary().expect("a summary");
    assert_eq!(d.stream_name(), "sdk-create");
    assert_eq!(d.open_shard_count(), 3);
    assert!(
        d.stream_arn().starts_with("arn:aws:kinesis:"),
        "{}",
        d.stream_arn()
    );

    let shards = client
        .list_shards()
        .stream_name("sdk-create")
        .send()
        .await
        .expect("ListShards");
    let ids: Vec<&str> = shards.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    // The hash key ranges cover 0 ..= 2^128 - 1 without gaps.
    let first = shards.shards()[0]
        .hash_key_range()
        .expect("a hash key range");
    assert_eq!(first.starting_hash_key(), "0");
    let last = shards.shards()[2]
        .hash_key_range()
        .expect("a hash key range");
    assert_eq!(
        last.ending_hash_key(),
        "340282366920938463463374607431768211455"
    );

    let streams = client.list_streams().send().await.expect("ListStreams");
    assert!(
        streams.stream_names().iter().any(|n| n == "sdk-create"),
        "{:?}",
        streams.stream_names()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_put_records_get_records_round_trip() {
    let server = server().await;
    let client = server.client();
    create_active(&client, "sdk-rw", 2).await;

    let one = client
        .put_record()
        .stream_name("sdk-rw")
        .partition_key("pk-single")
        .data(Blob::new(b"hello kinesis".to_vec()))
        .send()
        .await
        .expect("PutRecord");
    assert!(one.shard_id().starts_with("shardId-"), "{}", one.shard_id());
    assert!(
        one.sequence_number().bytes().all(|b| b.is_ascii_digit()),
        "{}",
        one.sequence_number()
    );

    let entries: Vec<PutRecordsRequestEntry> = (0..20)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("pk-{i}"))
                .data(Blob::new(vec![i as u8; 100 + i]))
                .build()
                .expect("an entry")
        })
        .collect();
    let many = client
        .put_records()
        .stream_name("sdk-rw")
        .set_records(Some(entries))
        .send()
        .await
        .expect("PutRecords");
    assert_eq!(many.failed_record_count(), Some(0));
    assert_eq!(many.records().len(), 20);
    assert!(many.records().iter().all(|r| r.sequence_number().is_some()));

    let got = read_all(&client, "sdk-rw", 21).await;
    let got: BTreeSet<(String, Vec<u8>)> = got.into_iter().collect();
    let mut want: BTreeSet<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("pk-{i}"), vec![i as u8; 100 + i]))
        .collect();
    want.insert(("pk-single".to_owned(), b"hello kinesis".to_vec()));
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    let server = server().await;
    let client = server.client();

    let err = client
        .describe_stream_summary()
        .stream_name("no-such-stream")
        .send()
        .await
        .expect_err("DescribeStreamSummary of a missing stream");
    let service = err.into_service_error();
    assert!(
        service.is_resource_not_found_exception(),
        "ResourceNotFoundException, got {service:?}"
    );

    let err = client
        .create_stream()
        .stream_name("not a valid name!")
        .shard_count(1)
        .send()
        .await
        .expect_err("CreateStream with an invalid name");
    let service = err.into_service_error();
    assert!(
        service.is_validation_exception(),
        "ValidationException, got {service:?}"
    );
    let message = service.message().unwrap_or_default();
    assert!(
        message.contains("validation error detected"),
        "AWS's message form: {message}"
    );

    create_active(&client, "sdk-dup", 2).await;
    let err = client
        .create_stream()
        .stream_name("sdk-dup")
        .shard_count(1)
        .send()
        .await
        .expect_err("CreateStream of an existing stream");
    assert!(
        err.into_service_error().is_resource_in_use_exception(),
        "ResourceInUseException"
    );

    // Wrong keys: the service's auth error, not a transport failure.
    let bad = kinesis_rust_sdk_tests::sdk_client(
        &server.endpoint,
        aws_sdk_kinesis::config::Credentials::new("AKIDWRONG", "wrong", None, None, "test"),
    );
    let err = bad
        .list_streams()
        .send()
        .await
        .expect_err("ListStreams with unknown keys");
    let code = err.code().map(str::to_owned);
    assert!(
        matches!(
            code.as_deref(),
            Some("UnrecognizedClientException" | "InvalidSignatureException")
        ),
        "auth error code, got {code:?} ({err:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_shard_receives_records() {
    let server = server().await;
    let client = server.client();
    create_active(&client, "sdk-efo", 2).await;
    let stream_arn = client
        .describe_stream_summary()
        .stream_name("sdk-efo")
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary()
        .expect("a summary")
        .stream_arn()
        .to_owned();

    let consumer = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("sdk-consumer")
        .send()
        .await
        .expect("RegisterStreamConsumer");
    let consumer_arn = consumer
        .consumer()
        .expect("a consumer")
        .consumer_arn()
        .to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = client
            .describe_stream_consumer()
            .consumer_arn(&consumer_arn)
            .send()
            .await
            .expect("DescribeStreamConsumer");
        let status = d
            .consumer_description()
            .map(|c| c.consumer_status().clone());
        if status == Some(ConsumerStatus::Active) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer not ACTIVE: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Hash key 0 lands in shardId-000000000000, the shard subscribed to.
    client
        .put_record()
        .stream_name("sdk-efo")
        .partition_key("before")
        .explicit_hash_key("0")
        .data(Blob::new(b"before subscribing".to_vec()))
        .send()
        .await
        .expect("PutRecord before subscribing");

    let mut subscription = client
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id("shardId-000000000000")
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .expect("a starting position"),
        )
        .send()
        .await
        .expect("SubscribeToShard");

    // The record stored before, then one put while subscribed, pushed by the server.
    let mut want = vec![b"before subscribing".to_vec(), b"while subscribed".to_vec()];
    let mut put_live = false;
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < want.len() {
        let event = tokio::time::timeout_at(deadline, subscription.event_stream.recv())
            .await
            .expect("records within 60 s")
            .expect("an event, not an error")
            .expect("the subscription still open");
        match event {
            SubscribeToShardEventStream::SubscribeToShardEvent(e) => {
                assert!(!e.continuation_sequence_number().is_empty());
                got.extend(e.records().iter().map(|r| r.data().as_ref().to_vec()));
            }
            other => panic!("unexpected event {other:?}"),
        }
        if !put_live && !got.is_empty() {
            put_live = true;
            client
                .put_record()
                .stream_name("sdk-efo")
                .partition_key("live")
                .explicit_hash_key("0")
                .data(Blob::new(b"while subscribed".to_vec()))
                .send()
                .await
                .expect("PutRecord while subscribed");
        }
    }
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// The most common stream: one shard covering the whole hash key space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_shard_stream() {
    let server = server().await;
    let client = server.client();
    create_active(&client, "sdk-one", 1).await;
    let shards = client
        .list_shards()
        .stream_name("sdk-one")
        .send()
        .await
        .expect("ListShards");
    let range = shards.shards()[0]
        .hash_key_range()
        .expect("a hash key range");
    assert_eq!(
        (range.starting_hash_key(), range.ending_hash_key()),
        ("0", "340282366920938463463374607431768211455")
    );
    client
        .put_record()
        .stream_name("sdk-one")
        .partition_key("k")
        .data(Blob::new(b"one".to_vec()))
        .send()
        .await
        .expect("PutRecord");
    let got = read_all(&client, "sdk-one", 1).await;
    assert_eq!(got, [("k".to_owned(), b"one".to_vec())]);
}
