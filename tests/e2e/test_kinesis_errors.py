"""Kinesis Data Streams: bad input gets AWS's exception names, HTTP status and (where AWS's
wording is known) exact messages; a rejected write leaves the stored data unchanged."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.credentials import Credentials

import kinesis as K
from kinesis import assert_validation, constraint, expect_error


@pytest.fixture
def kc(kinesis_server):
    return kinesis_server.kinesis()


@pytest.fixture
def raw(kinesis_server):
    """A client that skips botocore's own parameter validation, so the server sees the bad input."""
    return kinesis_server.kinesis(parameter_validation=False)


def stored(kc, name):
    return {sid: [(r["SequenceNumber"], r["PartitionKey"], r["Data"]) for r in recs] for sid, recs in K.read_all(kc, name).items()}


# ------------------------------------------------------------------------------- not found
NOT_FOUND_CALLS = {
    "DescribeStream": lambda c, n: c.describe_stream(StreamName=n),
    "DescribeStreamSummary": lambda c, n: c.describe_stream_summary(StreamName=n),
    "DeleteStream": lambda c, n: c.delete_stream(StreamName=n),
    "PutRecord": lambda c, n: c.put_record(StreamName=n, PartitionKey="a", Data=b"x"),
    "PutRecords": lambda c, n: c.put_records(StreamName=n, Records=[{"PartitionKey": "a", "Data": b"x"}]),
    "ListShards": lambda c, n: c.list_shards(StreamName=n),
    "AddTagsToStream": lambda c, n: c.add_tags_to_stream(StreamName=n, Tags={"a": "b"}),
    "ListTagsForStream": lambda c, n: c.list_tags_for_stream(StreamName=n),
    "RemoveTagsFromStream": lambda c, n: c.remove_tags_from_stream(StreamName=n, TagKeys=["a"]),
    "IncreaseStreamRetentionPeriod": lambda c, n: c.increase_stream_retention_period(StreamName=n, RetentionPeriodHours=48),
    "DecreaseStreamRetentionPeriod": lambda c, n: c.decrease_stream_retention_period(StreamName=n, RetentionPeriodHours=24),
    "SplitShard": lambda c, n: c.split_shard(StreamName=n, ShardToSplit=K.shard_id(0), NewStartingHashKey="2"),
    "MergeShards": lambda c, n: c.merge_shards(StreamName=n, ShardToMerge=K.shard_id(0), AdjacentShardToMerge=K.shard_id(1)),
    "UpdateShardCount": lambda c, n: c.update_shard_count(StreamName=n, TargetShardCount=2, ScalingType="UNIFORM_SCALING"),
    "EnableEnhancedMonitoring": lambda c, n: c.enable_enhanced_monitoring(StreamName=n, ShardLevelMetrics=["ALL"]),
    "StartStreamEncryption": lambda c, n: c.start_stream_encryption(StreamName=n, EncryptionType="KMS", KeyId="alias/aws/kinesis"),
    "ListTagsForResource": lambda c, n: c.list_tags_for_resource(ResourceARN=K.stream_arn(n)),
    "RegisterStreamConsumer": lambda c, n: c.register_stream_consumer(StreamARN=K.stream_arn(n), ConsumerName="c"),
    "UpdateStreamMode": lambda c, n: c.update_stream_mode(StreamARN=K.stream_arn(n), StreamModeDetails={"StreamMode": "ON_DEMAND"}),
}


@pytest.mark.parametrize("op", sorted(NOT_FOUND_CALLS))
def test_unknown_stream_is_resource_not_found(kc, op):
    name = K.unique("missing")
    e = expect_error(lambda: NOT_FOUND_CALLS[op](kc, name), "ResourceNotFoundException")
    code, msg, _ = K.err(e)
    if op in ("ListTagsForResource", "RegisterStreamConsumer", "UpdateStreamMode"):
        assert name in msg, msg  # by ARN: AWS's wording differs by operation; the stream is named
    else:
        assert msg == K.NOT_FOUND.format(name=name)


def test_get_shard_iterator_unknown_stream_or_shard(kc, kstreams):
    missing = K.unique("missing")
    expect_error(
        kc.get_shard_iterator, "ResourceNotFoundException", K.SHARD_NOT_FOUND.format(shard=K.shard_id(0), name=missing),
        StreamName=missing, ShardId=K.shard_id(0), ShardIteratorType="LATEST",
    )
    name = kstreams.create(1)
    expect_error(
        kc.get_shard_iterator, "ResourceNotFoundException", K.SHARD_NOT_FOUND.format(shard=K.shard_id(5), name=name),
        StreamName=name, ShardId=K.shard_id(5), ShardIteratorType="TRIM_HORIZON",
    )
    expect_error(
        kc.split_shard, "ResourceNotFoundException", K.COULD_NOT_FIND_SHARD.format(shard=K.shard_id(5), name=name),
        StreamName=name, ShardToSplit=K.shard_id(5), NewStartingHashKey="2",
    )


def test_duplicate_create_is_resource_in_use(kc, kstreams):
    name = kstreams.create(2)
    expect_error(kc.create_stream, "ResourceInUseException", K.IN_USE.format(name=name), StreamName=name, ShardCount=1)
    assert K.summary(kc, name)["OpenShardCount"] == 2, "the existing stream is untouched"


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "bad, rule",
    [
        ("has space", f"satisfy regular expression pattern: {K.STREAM_NAME_PATTERN}"),
        ("slash/name", f"satisfy regular expression pattern: {K.STREAM_NAME_PATTERN}"),
        ("semi;colon", f"satisfy regular expression pattern: {K.STREAM_NAME_PATTERN}"),
        ("a" * 129, "have length less than or equal to 128"),
    ],
)
def test_bad_stream_names(raw, bad, rule):
    e = expect_error(raw.create_stream, "ValidationException", StreamName=bad, ShardCount=1)
    assert K.err(e)[1] == "1 validation error detected: " + constraint(bad, "streamName", rule)
    assert bad not in raw.list_streams(Limit=10000)["StreamNames"]


def test_several_validation_errors_at_once(raw):
    e = expect_error(raw.create_stream, "ValidationException", StreamName="", ShardCount=0)
    assert K.err(e)[1].startswith("3 validation errors detected: ")
    assert_validation(
        e,
        constraint(0, "shardCount", "have value greater than or equal to 1"),
        constraint("", "streamName", f"satisfy regular expression pattern: {K.STREAM_NAME_PATTERN}"),
        constraint("", "streamName", "have length greater than or equal to 1"),
    )
    long_name, long_key = "a" * 129, "k" * 257
    e = expect_error(raw.put_record, "ValidationException", StreamName=long_name, PartitionKey=long_key, Data=b"x")
    assert K.err(e)[1].startswith("2 validation errors detected: ")
    assert_validation(
        e,
        constraint(long_key, "partitionKey", "have length less than or equal to 256"),
        constraint(long_name, "streamName", "have length less than or equal to 128"),
    )
    e = expect_error(raw.get_records, "ValidationException", ShardIterator="", Limit=0)
    assert_validation(
        e,
        constraint(0, "limit", "have value greater than or equal to 1"),
        constraint("", "shardIterator", "have length greater than or equal to 1"),
    )
    e = expect_error(raw.get_shard_iterator, "ValidationException", StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="BOGUS")
    assert_validation(
        e,
        constraint("BOGUS", "shardIteratorType",
                   "satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"),
    )


def test_partition_key_bounds(raw, kc, kstreams):
    name = kstreams.create(1)
    before = stored(kc, name)
    e = expect_error(raw.put_record, "ValidationException", StreamName=name, PartitionKey="", Data=b"x")
    assert_validation(e, constraint("", "partitionKey", "have length greater than or equal to 1"))
    key = "p" * 257
    e = expect_error(raw.put_record, "ValidationException", StreamName=name, PartitionKey=key, Data=b"x")
    assert_validation(e, constraint(key, "partitionKey", "have length less than or equal to 256"))
    e = expect_error(raw.put_records, "ValidationException", StreamName=name, Records=[{"PartitionKey": "ok", "Data": b"x"}, {"PartitionKey": "", "Data": b"y"}])
    assert_validation(e, constraint("", "records.2.member.partitionKey", "have length greater than or equal to 1"))
    assert stored(kc, name) == before
    # 256 characters (multi-byte ones too) are fine.
    ok = "é" * 256
    seq = kc.put_record(StreamName=name, PartitionKey=ok, Data=b"x")["SequenceNumber"]
    assert stored(kc, name)[K.shard_id(0)] == [(seq, ok, b"x")]


def test_bad_explicit_hash_key(raw, kc, kstreams):
    name = kstreams.create(1)
    before = stored(kc, name)
    too_big = str(2**128)
    expect_error(raw.put_record, "InvalidArgumentException", K.BAD_HASH_KEY.format(key=too_big), StreamName=name, PartitionKey="a", Data=b"x", ExplicitHashKey=too_big)
    expect_error(
        raw.put_records, "InvalidArgumentException", K.BAD_HASH_KEY.format(key=too_big),
        StreamName=name, Records=[{"PartitionKey": "a", "Data": b"x", "ExplicitHashKey": too_big}, {"PartitionKey": "a", "Data": b"y"}],
    )
    for bad in ("abc", "ten"):
        e = expect_error(raw.put_record, "ValidationException", StreamName=name, PartitionKey="a", Data=b"x", ExplicitHashKey=bad)
        assert_validation(e, constraint(bad, "explicitHashKey", r"satisfy regular expression pattern: 0|([1-9]\d{0,38})"))
    assert stored(kc, name) == before


def test_record_size_limit(raw, kc, kstreams):
    """The record limit (1 MiB by default) counts the data and the partition key."""
    name = kstreams.create(1)
    exact = b"\x07" * (K.MIB - 1)
    seq = kc.put_record(StreamName=name, PartitionKey="p", Data=exact)["SequenceNumber"]
    before = stored(kc, name)
    assert before[K.shard_id(0)] == [(seq, "p", exact)]
    expect_error(raw.put_record, "InvalidArgumentException", StreamName=name, PartitionKey="p", Data=exact + b"!")
    expect_error(raw.put_record, "InvalidArgumentException", StreamName=name, PartitionKey="pk", Data=exact)
    expect_error(
        raw.put_records, "InvalidArgumentException",
        StreamName=name, Records=[{"PartitionKey": "a", "Data": b"small"}, {"PartitionKey": "p", "Data": exact + b"!"}],
    )
    assert stored(kc, name) == before, "a rejected request stores nothing, not even its valid records"


def test_put_records_count_and_total_size_limits(raw, kc, kstreams):
    name = kstreams.create(1)
    kc.put_record(StreamName=name, PartitionKey="seed", Data=b"seed")
    before = stored(kc, name)
    e = expect_error(raw.put_records, "ValidationException", StreamName=name, Records=[{"PartitionKey": "a", "Data": b"x"}] * 501)
    n, parts = K.validation_parts(K.err(e)[1])
    assert n == 1
    assert re.fullmatch(r"Value '\[.*\]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500", parts[0], re.S)
    e = expect_error(raw.put_records, "ValidationException", StreamName=name, Records=[])
    assert_validation(e, constraint("[]", "records", "have length greater than or equal to 1"))
    # Six records of 1,000,000 bytes: each under 1 MiB, together over 5 MiB.
    expect_error(
        raw.put_records, "InvalidArgumentException", K.RECORDS_TOO_LARGE,
        StreamName=name, Records=[{"PartitionKey": "a", "Data": bytes([i]) * 1_000_000} for i in range(6)],
    )
    assert stored(kc, name) == before
    # 500 records are fine.
    r = kc.put_records(StreamName=name, Records=[{"PartitionKey": "a", "Data": b"%d" % i} for i in range(500)])
    assert r["FailedRecordCount"] == 0 and len(r["Records"]) == 500


# ---------------------------------------------------------------------- iterators, shards
def test_get_shard_iterator_argument_errors(kc, kstreams):
    name = kstreams.create(1)
    sid = K.shard_id(0)
    seq = kc.put_record(StreamName=name, PartitionKey="a", Data=b"x")["SequenceNumber"]
    for kind, extra, detail in [
        ("AT_SEQUENCE_NUMBER", {}, "AT_SEQUENCE_NUMBER and no StartingSequenceNumber"),
        ("AFTER_SEQUENCE_NUMBER", {}, "AFTER_SEQUENCE_NUMBER and no StartingSequenceNumber"),
        ("LATEST", {"StartingSequenceNumber": seq}, "LATEST and also a StartingSequenceNumber"),
        ("TRIM_HORIZON", {"StartingSequenceNumber": seq}, "TRIM_HORIZON and also a StartingSequenceNumber"),
    ]:
        expect_error(kc.get_shard_iterator, "InvalidArgumentException", K.SEQ_TYPE_MISMATCH.format(detail=detail),
                     StreamName=name, ShardId=sid, ShardIteratorType=kind, **extra)
    expect_error(kc.get_shard_iterator, "InvalidArgumentException", K.NO_TIMESTAMP, StreamName=name, ShardId=sid, ShardIteratorType="AT_TIMESTAMP")
    expect_error(
        kc.get_shard_iterator, "InvalidArgumentException",
        re.compile(r"^The timestampInMillis parameter cannot be greater than the currentTimestampInMillis\."),
        StreamName=name, ShardId=sid, ShardIteratorType="AT_TIMESTAMP", Timestamp=time.time() + 3600,
    )
    expect_error(kc.get_records, "InvalidArgumentException", K.INVALID_ITERATOR, ShardIterator="not-a-real-iterator")


def test_split_and_merge_argument_errors(kc, kstreams):
    name = kstreams.create(3)
    (s0, e0), _, (s2, e2) = K.even_ranges(3)
    for key in ("1", str(e0)):
        expect_error(
            kc.split_shard, "InvalidArgumentException",
            K.SPLIT_BAD_HASH.format(key=key, shard=K.shard_id(0), name=name, start=s0, end=e0),
            StreamName=name, ShardToSplit=K.shard_id(0), NewStartingHashKey=key,
        )
    expect_error(
        kc.merge_shards, "InvalidArgumentException", K.NOT_ADJACENT.format(a=K.shard_id(0), b=K.shard_id(2), name=name),
        StreamName=name, ShardToMerge=K.shard_id(0), AdjacentShardToMerge=K.shard_id(2),
    )
    assert [s["ShardId"] for s in K.all_shards(kc, name)] == [K.shard_id(i) for i in range(3)], "nothing resharded"


def test_list_shards_argument_errors(kc, kstreams):
    name = kstreams.create(3)
    token = kc.list_shards(StreamName=name, MaxResults=1)["NextToken"]
    expect_error(kc.list_shards, "InvalidArgumentException", K.LIST_SHARDS_TOKEN_AND_NAME, StreamName=name, NextToken=token)
    expect_error(kc.list_shards, "InvalidArgumentException", "NextToken and StreamARN cannot be provided together.", StreamARN=K.stream_arn(name), NextToken=token)
    # As botocore's list_shards paginator does (boto/botocore#2009): AWS refuses it too.
    with pytest.raises(kc.exceptions.InvalidArgumentException):
        list(kc.get_paginator("list_shards").paginate(StreamName=name, PaginationConfig={"PageSize": 1}))
    expect_error(kc.list_shards, "InvalidArgumentException")


def test_retention_above_maximum(kc, kstreams):
    name = kstreams.create(1)
    e = expect_error(kc.increase_stream_retention_period, "InvalidArgumentException", StreamName=name, RetentionPeriodHours=8761)
    assert "8760" in K.err(e)[1]
    assert K.summary(kc, name)["RetentionPeriodHours"] == 24


def test_tag_errors_leave_tags_unchanged(raw, kc, kstreams):
    name = kstreams.create(1)
    kc.add_tags_to_stream(StreamName=name, Tags={"keep": "me"})
    expect_error(kc.add_tags_to_stream, "InvalidArgumentException", K.TAG_BAD_CHARS, StreamName=name, Tags={"abc;def": "1"})
    e = expect_error(raw.add_tags_to_stream, "ValidationException", StreamName=name, Tags={"k" * 129: "v"})
    assert K.validation_parts(K.err(e)[1])[0] == 1
    assert kc.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "keep", "Value": "me"}]


def test_consumer_errors(kc, kstreams):
    name = kstreams.create(1)
    arn = K.stream_arn(name)
    expect_error(kc.describe_stream_consumer, "ResourceNotFoundException", StreamARN=arn, ConsumerName="nobody")
    expect_error(kc.deregister_stream_consumer, "ResourceNotFoundException", StreamARN=arn, ConsumerName="nobody")
    expect_error(
        kc.subscribe_to_shard, "ResourceNotFoundException",
        ConsumerARN=f"{arn}/consumer/nobody:1700000000", ShardId=K.shard_id(0), StartingPosition={"Type": "LATEST"},
    )


# ------------------------------------------------------------------- wire-level rejections
def test_malformed_json_is_serialization_exception(kinesis_server):
    r = K.raw_call(kinesis_server, "PutRecord", b'{"StreamName": "x", "Data": ')
    assert r.status == 400
    assert r.json["__type"].split("#")[-1] == "SerializationException"
    r = K.raw_call(kinesis_server, "PutRecord", json.dumps({"StreamName": "x", "PartitionKey": "a", "Data": "23456"}).encode())
    assert r.status == 400 and r.json["__type"].split("#")[-1] == "SerializationException", "Data is not base64"
    r = K.raw_call(kinesis_server, "CreateStream", json.dumps({"StreamName": "x", "ShardCount": "two"}).encode())
    assert r.status == 400 and r.json["__type"].split("#")[-1] == "SerializationException", "a string where an integer belongs"


def test_unknown_target_is_unknown_operation(kinesis_server):
    r = K.raw_call(kinesis_server, "NoSuchOperation", b"{}")
    assert r.status == 400
    assert r.json["__type"].split("#")[-1] == "UnknownOperationException"
    assert K.UUID_RE.match(r.headers["x-amzn-requestid"])
    r = K.raw_call(kinesis_server, None, b"{}", target="Kinesis_20131202.")
    assert r.status == 400 and r.json["__type"].split("#")[-1] == "UnknownOperationException"


def test_unsigned_request_with_bad_body_gets_the_body_error(kinesis_server):
    r = K.raw_call(kinesis_server, "ListStreams", b"{not json", sign=False)
    assert r.status == 400
    assert r.json["__type"].split("#")[-1] == "SerializationException"
    r = K.raw_call(kinesis_server, "ListStreams", b"{}", sign=False)
    assert r.status == 400
    assert r.json["__type"].split("#")[-1] == "MissingAuthenticationTokenException"
    assert r.json["message"] == "Missing Authentication Token"


def test_wrong_secret_and_unknown_key(kinesis_server, kstreams):
    name = kstreams.create(1)
    good = kinesis_server.credentials()
    bad_secret = kinesis_server.kinesis(creds=Credentials(good.access_key, good.secret_key[:-1] + ("A" if good.secret_key[-1] != "A" else "B")))
    e = expect_error(bad_secret.put_record, "InvalidSignatureException", StreamName=name, PartitionKey="a", Data=b"x")
    assert K.err(e)[1].startswith("The request signature we calculated does not match the signature you provided.")
    unknown = kinesis_server.kinesis(creds=Credentials("AKIAUNKNOWNKEY000000", "x" * 40))
    e = expect_error(unknown.put_record, "UnrecognizedClientException", StreamName=name, PartitionKey="a", Data=b"x")
    assert K.err(e)[1].startswith("The security token included in the request is invalid")
    assert stored(kinesis_server.kinesis(), name) == {K.shard_id(0): []}


# ------------------------------------------------------------------ expiry, limits, throttling
def test_expired_iterator(private_server):
    srv = private_server(*K.KINESIS_ARGS, "--kinesis-iterator-ttl-secs", "2")
    kc = srv.kinesis()
    name = K.unique("expiry")
    K.create(kc, name, 1)
    kc.put_record(StreamName=name, PartitionKey="a", Data=b"x")
    it = K.iterator(kc, name, K.shard_id(0))
    issued = time.monotonic()
    first = kc.get_records(ShardIterator=it)
    assert [r["Data"] for r in first["Records"]] == [b"x"]
    deadline = issued + 8
    while True:
        try:
            kc.get_records(ShardIterator=it)
        except kc.exceptions.ExpiredIteratorException as e:
            code, msg, status = K.err(e)
            assert status == 400
            assert re.match(K.EXPIRED_ITERATOR_RE.format(ms=2000), msg), msg
            break
        assert time.monotonic() < deadline, "iterator did not expire"
        time.sleep(0.1)
    assert time.monotonic() - issued >= 2.0, "expired before its TTL"
    # A fresh iterator works again.
    assert [r["Data"] for r in K.read_shard(kc, name, K.shard_id(0)).records] == [b"x"]


def test_shard_limit(private_server):
    srv = private_server(*K.KINESIS_ARGS, "--kinesis-shard-limit", "5")
    kc = srv.kinesis()
    a, b = K.unique("lim-a"), K.unique("lim-b")
    K.create(kc, a, 3)
    limits = kc.describe_limits()
    assert limits["ShardLimit"] == 5 and limits["OpenShardCount"] == 3
    expect_error(kc.create_stream, "LimitExceededException", K.SHARD_LIMIT.format(current=3, limit=5, extra=3), StreamName=b, ShardCount=3)
    expect_error(kc.describe_stream, "ResourceNotFoundException", StreamName=b)
    K.create(kc, b, 2)
    expect_error(
        kc.split_shard, "LimitExceededException", K.SHARD_LIMIT.format(current=5, limit=5, extra=1),
        StreamName=a, ShardToSplit=K.shard_id(0), NewStartingHashKey="2",
    )
    expect_error(
        kc.update_shard_count, "LimitExceededException", K.SHARD_LIMIT.format(current=5, limit=5, extra=1),
        StreamName=b, TargetShardCount=3, ScalingType="UNIFORM_SCALING",
    )
    assert [s["ShardId"] for s in K.all_shards(kc, a)] == [K.shard_id(i) for i in range(3)]
    assert kc.describe_limits()["OpenShardCount"] == 5
    kc.delete_stream(StreamName=b)
    K.wait_gone(kc, b)
    kc.split_shard(StreamName=a, ShardToSplit=K.shard_id(0), NewStartingHashKey="2")
    K.wait_status(kc, a)
    assert kc.describe_limits()["OpenShardCount"] == 4


def test_throughput_limits(private_server):
    srv = private_server(*K.KINESIS_ARGS, "--kinesis-throughput-limits")
    kc = srv.kinesis()
    name = K.unique("tput")
    K.create(kc, name, 1)
    chunk = b"w" * (256 * 1024)
    acked, refused = [], None
    for i in range(12):  # 3 MiB into one shard as fast as possible: over 1 MiB/s
        try:
            acked.append((kc.put_record(StreamName=name, PartitionKey="a", Data=chunk[:-4] + b"%04d" % i)["SequenceNumber"], i))
        except kc.exceptions.ProvisionedThroughputExceededException as e:
            refused = e
            break
    assert refused is not None, "1 MiB/s per shard was not enforced"
    code, msg, status = K.err(refused)
    assert status == 400
    assert msg == f"Rate exceeded for shard {K.shard_id(0)} in stream {name} under account {K.ACCOUNT}."
    assert 3 <= len(acked) <= 8
    # Reads: 5 GetRecords per second per shard.
    it = K.iterator(kc, name, K.shard_id(0))
    throttled = False
    for _ in range(12):
        try:
            it = kc.get_records(ShardIterator=it, Limit=1)["NextShardIterator"]
        except kc.exceptions.ProvisionedThroughputExceededException:
            throttled = True
            break
    assert throttled, "5 GetRecords/s per shard was not enforced"
    # Everything acknowledged, and nothing refused, is stored (read slowly: 3 calls/s).
    recs, it, deadline = [], K.iterator(kc, name, K.shard_id(0)), time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.34)
        try:
            r = kc.get_records(ShardIterator=it, Limit=2)
        except kc.exceptions.ProvisionedThroughputExceededException:
            continue
        recs += r["Records"]
        it = r["NextShardIterator"]
        if not r["Records"] and r["MillisBehindLatest"] == 0:
            break
    assert [(r["SequenceNumber"], r["Data"][-4:]) for r in recs] == [(s, b"%04d" % i) for s, i in acked]
