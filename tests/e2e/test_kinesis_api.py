"""Kinesis Data Streams through the real boto3 client: every operation of the botocore
``kinesis`` 2013-12-02 model, with AWS's semantics (states, shard lineage, hash key routing,
iterators, pagination, tags, consumers, encryption, monitoring, limits, policies, settings).

``test_every_operation_of_the_model_has_a_test`` fails when an operation of the model has no
test here, and each test checks that it really made a successful call of every operation it
claims to cover."""

from __future__ import annotations

import base64
import datetime
import json
import time

import botocore.session
import pytest

import kinesis as K
from kinesis import expect_error

UTC = datetime.timezone.utc
COVERED: dict[str, list[str]] = {}


def covers(*ops):
    def deco(fn):
        for op in ops:
            COVERED.setdefault(op, []).append(fn.__name__)
        fn._covers = ops
        return fn

    return deco


@pytest.fixture
def called():
    return set()


@pytest.fixture
def make_client(kinesis_server, called):
    """boto3 Kinesis clients that record which operations answered 200."""

    def make(server=None, **kw):
        c = (server or kinesis_server).kinesis(**kw)

        def after(http_response, model, **_):
            if http_response is not None and http_response.status_code == 200:
                called.add(model.name)

        c.meta.events.register("after-call.kinesis", after)
        return c

    return make


@pytest.fixture
def kc(make_client):
    return make_client()


@pytest.fixture
def kstreams(request, make_client):
    """conftest's kstreams, with a client whose calls count for ``covers``."""
    streams = K.Streams(make_client(), request.node.name)
    yield streams
    streams.cleanup()


@pytest.fixture(autouse=True)
def _operations_really_called(request, called):
    yield
    ops = getattr(request.function, "_covers", ())
    rep = getattr(request.node, "rep_call", None)
    if ops and rep is not None and rep.passed:
        missing = sorted(set(ops) - called)
        assert not missing, f"{request.function.__name__} claims to cover {missing} but made no successful call of them"


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def near_now(ts: datetime.datetime, slack: float = 5.0) -> bool:
    return abs((ts - now()).total_seconds()) <= slack


def test_every_operation_of_the_model_has_a_test():
    ops = set(botocore.session.get_session().get_service_model("kinesis").operation_names)
    assert len(ops) == 39
    assert sorted(ops - set(COVERED)) == [], "operations without a test"
    assert sorted(set(COVERED) - ops) == [], "tests claim operations the model does not have"


# ------------------------------------------------------------------ create / describe / delete
@covers("CreateStream", "DescribeStream", "DeleteStream")
def test_create_provisioned_stream_waiters_describe_delete(kc, kstreams):
    name = kstreams.name()
    before = now()
    assert kc.create_stream(StreamName=name, ShardCount=3)["ResponseMetadata"]["HTTPStatusCode"] == 200
    kc.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})

    d = kc.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamName"] == name
    assert d["StreamARN"] == K.stream_arn(name)
    assert d["StreamStatus"] == "ACTIVE"
    assert d["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert d["RetentionPeriodHours"] == 24
    assert d["EncryptionType"] == "NONE"
    assert "KeyId" not in d
    assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert d["HasMoreShards"] is False
    assert before - datetime.timedelta(seconds=2) <= d["StreamCreationTimestamp"] <= now() + datetime.timedelta(seconds=2)
    assert [s["ShardId"] for s in d["Shards"]] == [K.shard_id(i) for i in range(3)]
    for shard, (start, end) in zip(d["Shards"], K.even_ranges(3)):
        assert shard["HashKeyRange"] == {"StartingHashKey": str(start), "EndingHashKey": str(end)}
        assert set(shard["SequenceNumberRange"]) == {"StartingSequenceNumber"}
        assert K.SEQ_RE.match(shard["SequenceNumberRange"]["StartingSequenceNumber"])
        assert "ParentShardId" not in shard and "AdjacentParentShardId" not in shard
    # The exact boundaries AWS uses for three shards.
    assert d["Shards"][0]["HashKeyRange"]["EndingHashKey"] == "113427455640312821154458202477256070484"
    assert d["Shards"][2]["HashKeyRange"]["StartingHashKey"] == "226854911280625642308916404954512140970"
    assert d["Shards"][2]["HashKeyRange"]["EndingHashKey"] == "340282366920938463463374607431768211455"

    kc.delete_stream(StreamName=name)
    kc.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    expect_error(kc.describe_stream, "ResourceNotFoundException", K.NOT_FOUND.format(name=name), StreamName=name)
    assert name not in kc.list_streams(Limit=10000)["StreamNames"]


@covers("CreateStream", "DescribeStream", "DescribeStreamSummary", "DeleteStream", "UpdateShardCount", "PutRecord", "SplitShard", "MergeShards")
def test_transitional_states_and_operations_refused_meanwhile(private_server, make_client):
    """CREATING -> ACTIVE -> UPDATING -> ACTIVE -> DELETING -> gone, on a server whose
    transitions take long enough (600 ms) to observe them reliably."""
    srv = private_server("--kinesis-state-delay-ms", "600")
    kc = make_client(srv)
    name = K.unique("states")
    kc.create_stream(StreamName=name, ShardCount=2)
    assert kc.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "CREATING"
    assert K.summary(kc, name)["StreamStatus"] == "CREATING"
    # AWS: a CREATING stream takes no records (not found) and no resharding (not ACTIVE).
    expect_error(kc.put_record, "ResourceNotFoundException", K.NOT_FOUND.format(name=name), StreamName=name, PartitionKey="a", Data=b"x")
    expect_error(
        kc.split_shard, "ResourceInUseException", K.NOT_ACTIVE.format(name=name, state="CREATING"),
        StreamName=name, ShardToSplit=K.shard_id(0), NewStartingHashKey="2",
    )
    expect_error(kc.create_stream, "ResourceInUseException", K.IN_USE.format(name=name), StreamName=name, ShardCount=1)
    K.wait_status(kc, name, "ACTIVE")

    r = kc.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert K.summary(kc, name)["StreamStatus"] == "UPDATING"
    # Writes go on while a stream is UPDATING; resharding does not.
    assert kc.put_record(StreamName=name, PartitionKey="during-update", Data=b"u")["SequenceNumber"]
    expect_error(
        kc.merge_shards, "ResourceInUseException", K.NOT_ACTIVE.format(name=name, state="UPDATING"),
        StreamName=name, ShardToMerge=K.shard_id(0), AdjacentShardToMerge=K.shard_id(1),
    )
    assert r["CurrentShardCount"] == 2 and r["TargetShardCount"] == 4
    K.wait_status(kc, name, "ACTIVE")
    assert K.summary(kc, name)["OpenShardCount"] == 4
    first = K.open_shards(kc, name)[0]
    lo, hi = K.shard_range(first)
    kc.split_shard(StreamName=name, ShardToSplit=first["ShardId"], NewStartingHashKey=str((lo + hi) // 2))
    K.wait_status(kc, name, "ACTIVE")
    shards = K.open_shards(kc, name)
    kc.merge_shards(StreamName=name, ShardToMerge=shards[0]["ShardId"], AdjacentShardToMerge=shards[1]["ShardId"])
    K.wait_status(kc, name, "ACTIVE")

    kc.delete_stream(StreamName=name)
    assert K.summary(kc, name)["StreamStatus"] == "DELETING"
    K.wait_gone(kc, name)


@covers("CreateStream", "DescribeStreamSummary")
def test_on_demand_stream_and_summary(kc, kstreams):
    name = kstreams.name()
    kc.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = K.wait_status(kc, name)
    assert s["StreamName"] == name
    assert s["StreamARN"] == K.stream_arn(name)
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    # AWS creates an on-demand stream with 4 shards (4 MiB/s write capacity).
    assert s["OpenShardCount"] == 4
    assert [x["HashKeyRange"] for x in K.all_shards(kc, name)] == [
        {"StartingHashKey": str(a), "EndingHashKey": str(b)} for a, b in K.even_ranges(4)
    ]
    assert s["RetentionPeriodHours"] == 24
    assert s["EncryptionType"] == "NONE"
    assert s["ConsumerCount"] == 0
    assert s["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert s["MaxRecordSizeInKiB"] == 1024
    assert near_now(s["StreamCreationTimestamp"])

    prov = kstreams.create(2)
    p = K.summary(kc, prov)
    assert p["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert p["OpenShardCount"] == 2
    assert p["StreamStatus"] == "ACTIVE"


@covers("CreateStream", "DescribeStream")
def test_describe_stream_shard_pagination(kc, kstreams):
    name = kstreams.create(5)
    page = kc.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in page["Shards"]] == [K.shard_id(0), K.shard_id(1)]
    assert page["HasMoreShards"] is True
    page = kc.describe_stream(StreamName=name, Limit=2, ExclusiveStartShardId=K.shard_id(1))["StreamDescription"]
    assert [s["ShardId"] for s in page["Shards"]] == [K.shard_id(2), K.shard_id(3)]
    assert page["HasMoreShards"] is True
    page = kc.describe_stream(StreamName=name, Limit=2, ExclusiveStartShardId=K.shard_id(3))["StreamDescription"]
    assert [s["ShardId"] for s in page["Shards"]] == [K.shard_id(4)]
    assert page["HasMoreShards"] is False
    full = kc.get_paginator("describe_stream").paginate(StreamName=name, PaginationConfig={"PageSize": 2}).build_full_result()
    assert [s["ShardId"] for s in full["StreamDescription"]["Shards"]] == [K.shard_id(i) for i in range(5)]


@covers("ListStreams")
def test_list_streams_pagination_and_summaries(kc, kstreams):
    names = sorted(kstreams.create(1) for _ in range(3))
    seen, summaries, token, pages = [], [], None, 0
    while True:
        kw = {"Limit": 1}
        if token:
            kw["NextToken"] = token
        r = kc.list_streams(**kw)
        pages += 1
        assert len(r["StreamNames"]) <= 1
        assert [s["StreamName"] for s in r["StreamSummaries"]] == r["StreamNames"]
        seen += r["StreamNames"]
        summaries += r["StreamSummaries"]
        if not r["HasMoreStreams"]:
            assert "NextToken" not in r
            break
        token = r["NextToken"]
        assert pages < 1000
    assert seen == sorted(seen), "ListStreams lists names in lexicographic order"
    assert len(seen) == len(set(seen))
    for n in names:
        assert seen.count(n) == 1
        s = next(x for x in summaries if x["StreamName"] == n)
        assert s["StreamARN"] == K.stream_arn(n)
        assert s["StreamStatus"] == "ACTIVE"
        assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert near_now(s["StreamCreationTimestamp"], 60)
    # ExclusiveStartStreamName: the names after it.
    after = kc.list_streams(ExclusiveStartStreamName=names[0], Limit=2)
    assert after["StreamNames"][0] == names[1]
    assert names[0] not in after["StreamNames"]
    # The paginator follows NextToken to the same list.
    full = kc.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}).build_full_result()
    assert [n for n in full["StreamNames"] if n in names] == names


# ---------------------------------------------------------------------------------- shards
def split_in_two(kc, name, shard=K.shard_id(0), at=2**127):
    kc.split_shard(StreamName=name, ShardToSplit=shard, NewStartingHashKey=str(at))
    K.wait_status(kc, name)


@covers("ListShards", "SplitShard")
def test_list_shards_filters_and_tokens(kc, kstreams):
    name = kstreams.create(2)
    created = K.summary(kc, name)["StreamCreationTimestamp"]
    # boto3 sends whole seconds: make the split happen in a later second than the creation.
    while now().replace(microsecond=0) <= created.replace(microsecond=0):
        time.sleep(0.05)
    split_in_two(kc, name, K.shard_id(0), 2**126)
    ids = lambda shards: [s["ShardId"] for s in shards]  # noqa: E731

    every = kc.list_shards(StreamName=name)["Shards"]
    assert ids(every) == [K.shard_id(i) for i in range(4)]
    closed = every[0]
    assert K.SEQ_RE.match(closed["SequenceNumberRange"]["EndingSequenceNumber"])
    assert every[2]["ParentShardId"] == K.shard_id(0) and every[3]["ParentShardId"] == K.shard_id(0)
    assert every[2]["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(2**126 - 1)}
    assert every[3]["HashKeyRange"] == {"StartingHashKey": str(2**126), "EndingHashKey": str(2**127 - 1)}

    def listed(**flt):
        return ids(kc.list_shards(StreamName=name, ShardFilter=flt)["Shards"])

    assert listed(Type="AT_LATEST") == [K.shard_id(1), K.shard_id(2), K.shard_id(3)]
    assert listed(Type="AT_TRIM_HORIZON") == [K.shard_id(0), K.shard_id(1)]
    assert listed(Type="FROM_TRIM_HORIZON") == [K.shard_id(i) for i in range(4)]
    assert listed(Type="AFTER_SHARD_ID", ShardId=K.shard_id(1)) == [K.shard_id(2), K.shard_id(3)]
    # A whole second after the creation and before the split (the split waited for it).
    at_creation = created.replace(microsecond=0) + datetime.timedelta(seconds=1)
    assert listed(Type="AT_TIMESTAMP", Timestamp=at_creation) == [K.shard_id(0), K.shard_id(1)]
    assert listed(Type="FROM_TIMESTAMP", Timestamp=at_creation) == [K.shard_id(i) for i in range(4)]
    later = now() + datetime.timedelta(seconds=1)
    while now() < later:
        time.sleep(0.05)
    assert listed(Type="AT_TIMESTAMP", Timestamp=later.replace(microsecond=0)) == [K.shard_id(1), K.shard_id(2), K.shard_id(3)]
    assert listed(Type="FROM_TIMESTAMP", Timestamp=later.replace(microsecond=0)) == [K.shard_id(1), K.shard_id(2), K.shard_id(3)]

    # MaxResults + NextToken (NextToken alone, without StreamName, as AWS requires).
    got, r = [], kc.list_shards(StreamName=name, MaxResults=1)
    got += ids(r["Shards"])
    while "NextToken" in r:
        r = kc.list_shards(NextToken=r["NextToken"], MaxResults=1)
        assert len(r["Shards"]) <= 1
        got += ids(r["Shards"])
    assert got == [K.shard_id(i) for i in range(4)]
    assert ids(kc.list_shards(StreamName=name, ExclusiveStartShardId=K.shard_id(1))["Shards"]) == [K.shard_id(2), K.shard_id(3)]
    assert ids(K.all_shards(kc, name, MaxResults=3)) == [K.shard_id(i) for i in range(4)]


# ------------------------------------------------------------------------------ put / get
@covers("PutRecord")
def test_put_record_routes_by_hash_key(kc, kstreams):
    name = kstreams.create(3)
    shards = K.all_shards(kc, name)
    (s0, e0), (s1, e1), (s2, e2) = K.even_ranges(3)
    for key, want in [(0, 0), (e0, 0), (s1, 1), (e1, 1), (s2, 2), (K.HASH_MAX, 2)]:
        r = kc.put_record(StreamName=name, PartitionKey="ignored", ExplicitHashKey=str(key), Data=b"h")
        assert r["ShardId"] == K.shard_id(want), key
        assert K.SEQ_RE.match(r["SequenceNumber"])
    last: dict[str, int] = {}
    for i in range(30):
        pk = f"user-{i}"
        r = kc.put_record(StreamName=name, PartitionKey=pk, Data=f"d{i}".encode())
        assert r["ShardId"] == K.shard_holding(shards, K.pk_hash(pk)), pk
        assert r.get("EncryptionType", "NONE") == "NONE"
        seq = int(r["SequenceNumber"])
        assert seq > last.get(r["ShardId"], 0), "sequence numbers increase within a shard"
        last[r["ShardId"]] = seq
    # SequenceNumberForOrdering: the new record's number is greater than the one given.
    first = kc.put_record(StreamName=name, PartitionKey="o", Data=b"1")
    second = kc.put_record(StreamName=name, PartitionKey="o", Data=b"2", SequenceNumberForOrdering=first["SequenceNumber"])
    assert second["ShardId"] == first["ShardId"]
    assert int(second["SequenceNumber"]) > int(first["SequenceNumber"])
    # Data round trip, byte for byte (every byte value).
    blob = bytes(range(256)) * 4
    r = kc.put_record(StreamName=name, PartitionKey="blob", Data=blob, ExplicitHashKey="0")
    recs = K.read_iterator(kc, K.iterator(kc, name, K.shard_id(0), "AT_SEQUENCE_NUMBER", StartingSequenceNumber=r["SequenceNumber"])).records
    assert recs[0]["Data"] == blob and recs[0]["PartitionKey"] == "blob" and recs[0]["SequenceNumber"] == r["SequenceNumber"]


@covers("PutRecords")
def test_put_records_order_routing_and_readback(kc, kstreams):
    name = kstreams.create(2)
    shards = K.all_shards(kc, name)
    entries = [{"PartitionKey": f"k{i % 7}", "Data": f"rec-{i}".encode()} for i in range(40)]
    entries.append({"PartitionKey": "x", "Data": b"explicit", "ExplicitHashKey": str(K.HASH_MAX)})
    r = kc.put_records(StreamName=name, Records=entries)
    assert r["FailedRecordCount"] == 0
    assert len(r["Records"]) == len(entries)
    assert r.get("EncryptionType", "NONE") == "NONE"
    for e, res in zip(entries, r["Records"]):
        assert set(res) == {"SequenceNumber", "ShardId"}
        want = K.shard_holding(shards, int(e["ExplicitHashKey"]) if "ExplicitHashKey" in e else K.pk_hash(e["PartitionKey"]))
        assert res["ShardId"] == want
    stored = K.read_all(kc, name)
    for sid in (K.shard_id(0), K.shard_id(1)):
        want = [(e["PartitionKey"], e["Data"], res["SequenceNumber"]) for e, res in zip(entries, r["Records"]) if res["ShardId"] == sid]
        assert [(x["PartitionKey"], x["Data"], x["SequenceNumber"]) for x in stored[sid]] == want
        seqs = [int(x["SequenceNumber"]) for x in stored[sid]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@covers("PutRecords", "CreateStream")
def test_put_records_partial_failure_reporting(private_server, make_client):
    """With AWS's per-shard limits enforced, a batch that overruns one shard's 1 MiB/s gets
    per-record ProvisionedThroughputExceededException entries (in request order) and the
    other records are stored; nothing failed is stored."""
    srv = private_server(*K.KINESIS_ARGS, "--kinesis-throughput-limits")
    kc = make_client(srv)
    name = K.unique("partial")
    K.create(kc, name, 2)
    shards = K.all_shards(kc, name)
    hot = K.key_for_shard(shards, K.shard_id(0), "hot")
    cold = K.key_for_shard(shards, K.shard_id(1), "cold")
    big = b"B" * (200 * 1024)
    entries = []
    for i in range(10):  # 2 MB for shard 0: about half must be refused
        entries.append({"PartitionKey": hot, "Data": big[:-8] + b"%08d" % i})
        entries.append({"PartitionKey": cold, "Data": b"small-%d" % i})
    r = kc.put_records(StreamName=name, Records=entries)
    failed = [(i, x) for i, x in enumerate(r["Records"]) if "ErrorCode" in x]
    assert r["FailedRecordCount"] == len(failed) > 0
    for i, x in failed:
        assert entries[i]["PartitionKey"] == hot, "only the overrun shard refuses records"
        assert x["ErrorCode"] == "ProvisionedThroughputExceededException"
        assert x["ErrorMessage"] == f"Rate exceeded for shard {K.shard_id(0)} in stream {name} under account {K.ACCOUNT}."
        assert "SequenceNumber" not in x and "ShardId" not in x
    ok = [(i, x) for i, x in enumerate(r["Records"]) if "ErrorCode" not in x]
    assert sum(1 for i, _ in ok if entries[i]["PartitionKey"] == hot) >= 4, "about 1 MiB of the hot shard's records fit"
    stored = K.read_all(kc, name)
    for sid in (K.shard_id(0), K.shard_id(1)):
        want = [(entries[i]["Data"], x["SequenceNumber"]) for i, x in ok if x["ShardId"] == sid]
        assert [(rec["Data"], rec["SequenceNumber"]) for rec in stored[sid]] == want


@covers("GetShardIterator", "GetRecords")
def test_shard_iterator_types(kc, kstreams, kinesis_server):
    name = kstreams.create(1)
    sid = K.shard_id(0)
    puts, arrival_bounds = [], []
    for i in range(5):
        t0 = time.time()
        puts.append(kc.put_record(StreamName=name, PartitionKey="p", Data=b"r%d" % i))
        arrival_bounds.append((t0, time.time()))
        time.sleep(0.003)  # distinct arrival milliseconds
    seqs = [p["SequenceNumber"] for p in puts]

    def data(kind, **kw):
        return [r["Data"] for r in K.read_iterator(kc, K.iterator(kc, name, sid, kind, **kw)).records]

    th = K.read_iterator(kc, K.iterator(kc, name, sid, "TRIM_HORIZON")).records
    assert [r["Data"] for r in th] == [b"r%d" % i for i in range(5)]
    assert [r["SequenceNumber"] for r in th] == seqs
    for r, (lo, hi) in zip(th, arrival_bounds):
        t = r["ApproximateArrivalTimestamp"].timestamp()
        assert lo - 0.002 <= t <= hi + 0.002, (lo, t, hi)
        assert r["PartitionKey"] == "p"
    assert data("AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == [b"r2", b"r3", b"r4"]
    assert data("AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == [b"r3", b"r4"]
    assert data("AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[4]) == []
    # AT_TIMESTAMP: boto3 sends whole seconds; a time before the first record gives all.
    assert data("AT_TIMESTAMP", Timestamp=th[0]["ApproximateArrivalTimestamp"] - datetime.timedelta(seconds=2)) == [b"r%d" % i for i in range(5)]
    # ...and with millisecond precision (as the Java and JS SDKs send it), from record 3 on.
    t3 = th[3]["ApproximateArrivalTimestamp"].timestamp()
    assert th[2]["ApproximateArrivalTimestamp"].timestamp() < t3
    resp = K.raw_json(kinesis_server, "GetShardIterator", {"StreamName": name, "ShardId": sid, "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": round(t3, 3)})
    assert resp.status == 200, resp.data
    assert [r["Data"] for r in K.read_iterator(kc, resp.json["ShardIterator"]).records] == [b"r3", b"r4"]
    # LATEST: only what is put after the iterator was taken.
    latest = K.iterator(kc, name, sid, "LATEST")
    first = kc.get_records(ShardIterator=latest)
    assert first["Records"] == [] and first["MillisBehindLatest"] == 0
    kc.put_record(StreamName=name, PartitionKey="p", Data=b"after-latest")
    assert [r["Data"] for r in K.read_iterator(kc, first["NextShardIterator"], min_records=1).records] == [b"after-latest"]


@covers("GetRecords")
def test_get_records_limit_next_iterator_and_millis_behind(kc, kstreams):
    name = kstreams.create(1)
    K.put_many(kc, name, [("p", b"%03d" % i) for i in range(10)])
    t_put = time.monotonic()
    while time.monotonic() - t_put < 0.05:  # records at least 50 ms old
        time.sleep(0.01)
    it = K.iterator(kc, name, K.shard_id(0))
    r = kc.get_records(ShardIterator=it, Limit=3)
    assert [x["Data"] for x in r["Records"]] == [b"000", b"001", b"002"]
    assert r["MillisBehindLatest"] > 0, "behind the tip while unread records remain"
    assert r["NextShardIterator"] and r["NextShardIterator"] != it
    got = [x["Data"] for x in r["Records"]]
    it = r["NextShardIterator"]
    for _ in range(10):
        r = kc.get_records(ShardIterator=it, Limit=3)
        assert len(r["Records"]) <= 3
        got += [x["Data"] for x in r["Records"]]
        it = r["NextShardIterator"]
        if not r["Records"]:
            break
    assert got == [b"%03d" % i for i in range(10)]
    assert r["Records"] == [] and r["MillisBehindLatest"] == 0
    assert "ChildShards" not in r or r["ChildShards"] == []
    # An iterator can be used again (until it expires) and reads the same records.
    again = kc.get_records(ShardIterator=K.iterator(kc, name, K.shard_id(0)), Limit=10000)
    assert [x["Data"] for x in again["Records"]] == got


# ----------------------------------------------------------------------------- resharding
@covers("SplitShard", "MergeShards", "GetRecords")
def test_split_and_merge_lineage_and_child_shards(kc, kstreams):
    name = kstreams.create(1)
    before = [kc.put_record(StreamName=name, PartitionKey="p", Data=b"before-%d" % i)["SequenceNumber"] for i in range(3)]
    mid = 2**127
    split_in_two(kc, name, K.shard_id(0), mid)
    shards = K.all_shards(kc, name)
    assert [s["ShardId"] for s in shards] == [K.shard_id(i) for i in range(3)]
    parent, left, right = shards
    end = parent["SequenceNumberRange"]["EndingSequenceNumber"]
    assert K.SEQ_RE.match(end) and int(end) >= int(before[-1])
    assert left["ParentShardId"] == parent["ShardId"] and right["ParentShardId"] == parent["ShardId"]
    assert "AdjacentParentShardId" not in left and "AdjacentParentShardId" not in right
    assert left["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(mid - 1)}
    assert right["HashKeyRange"] == {"StartingHashKey": str(mid), "EndingHashKey": str(K.HASH_MAX)}
    for child in (left, right):
        assert K.is_open(child)
        assert int(child["SequenceNumberRange"]["StartingSequenceNumber"]) > int(end)
    # The closed parent: its records, then the end with ChildShards and no NextShardIterator.
    read = K.read_shard(kc, name, parent["ShardId"])
    assert read.closed
    assert [r["SequenceNumber"] for r in read.records] == before
    assert read.child_shards == [
        {"ShardId": left["ShardId"], "ParentShards": [parent["ShardId"]], "HashKeyRange": left["HashKeyRange"]},
        {"ShardId": right["ShardId"], "ParentShards": [parent["ShardId"]], "HashKeyRange": right["HashKeyRange"]},
    ]
    # New records route to the children.
    assert kc.put_record(StreamName=name, PartitionKey="z", ExplicitHashKey=str(mid - 1), Data=b"l")["ShardId"] == left["ShardId"]
    assert kc.put_record(StreamName=name, PartitionKey="z", ExplicitHashKey=str(mid), Data=b"r")["ShardId"] == right["ShardId"]
    # AT_LATEST on a closed shard's iterator reaches its end at once.
    r = kc.get_records(ShardIterator=K.iterator(kc, name, parent["ShardId"], "LATEST"))
    assert r["Records"] == [] and r.get("NextShardIterator") is None and len(r["ChildShards"]) == 2

    kc.merge_shards(StreamName=name, ShardToMerge=left["ShardId"], AdjacentShardToMerge=right["ShardId"])
    K.wait_status(kc, name)
    shards = K.all_shards(kc, name)
    assert [s["ShardId"] for s in shards] == [K.shard_id(i) for i in range(4)]
    merged = shards[3]
    assert merged["ParentShardId"] == left["ShardId"]
    assert merged["AdjacentParentShardId"] == right["ShardId"]
    assert merged["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(K.HASH_MAX)}
    assert [s["ShardId"] for s in shards if K.is_open(s)] == [merged["ShardId"]]
    for p in (left["ShardId"], right["ShardId"]):
        rd = K.read_shard(kc, name, p)
        assert rd.closed and len(rd.records) == 1
        assert rd.child_shards == [{"ShardId": merged["ShardId"], "ParentShards": [left["ShardId"], right["ShardId"]], "HashKeyRange": merged["HashKeyRange"]}]
    assert kc.put_record(StreamName=name, PartitionKey="q", Data=b"m")["ShardId"] == merged["ShardId"]


@covers("UpdateShardCount")
def test_update_shard_count_uniform_scaling(kc, kstreams):
    name = kstreams.create(2)
    r = kc.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert r["StreamName"] == name and r["StreamARN"] == K.stream_arn(name)
    assert r["CurrentShardCount"] == 2 and r["TargetShardCount"] == 4
    K.wait_status(kc, name)

    def check(target):
        shards = K.all_shards(kc, name)
        opened = [s for s in shards if K.is_open(s)]
        closed = {s["ShardId"] for s in shards if not K.is_open(s)}
        assert [K.shard_range(s) for s in sorted(opened, key=lambda s: K.shard_range(s)[0])] == K.even_ranges(target)
        for s in opened:
            assert s["ParentShardId"] in closed
            assert s.get("AdjacentParentShardId") in closed | {None}
        assert K.summary(kc, name)["OpenShardCount"] == target
        ids = [s["ShardId"] for s in shards]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        return shards

    check(4)
    r = kc.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert r["CurrentShardCount"] == 4 and r["TargetShardCount"] == 2
    K.wait_status(kc, name)
    check(2)
    # Records keep flowing to the right shard after scaling.
    shards = K.open_shards(kc, name)
    for pk in ("a", "b", "c", "d"):
        assert kc.put_record(StreamName=name, PartitionKey=pk, Data=b"x")["ShardId"] == K.shard_holding(shards, K.pk_hash(pk))


@covers("UpdateStreamMode")
def test_update_stream_mode(kc, kstreams):
    name = kstreams.create(2)
    arn = K.stream_arn(name)
    kc.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = K.wait_status(kc, name)
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    kc.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
    s = K.wait_status(kc, name)
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert s["OpenShardCount"] >= 2
    assert kc.describe_stream(StreamARN=arn)["StreamDescription"]["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}


# ------------------------------------------------------------------ retention, encryption
@covers("IncreaseStreamRetentionPeriod", "DecreaseStreamRetentionPeriod")
def test_retention_period_bounds(kc, kstreams):
    name = kstreams.create(1)
    kc.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert K.wait_status(kc, name)["RetentionPeriodHours"] == 48
    kc.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=8760)
    assert K.wait_status(kc, name)["RetentionPeriodHours"] == 8760
    expect_error(kc.increase_stream_retention_period, "InvalidArgumentException", StreamName=name, RetentionPeriodHours=8761)
    kc.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=25)
    assert K.wait_status(kc, name)["RetentionPeriodHours"] == 25
    expect_error(
        kc.increase_stream_retention_period, "InvalidArgumentException",
        K.INCREASE_SHORTER.format(hours=24, name=name, current=25), StreamName=name, RetentionPeriodHours=24,
    )
    expect_error(
        kc.decrease_stream_retention_period, "InvalidArgumentException",
        K.DECREASE_LONGER.format(hours=26, name=name, current=25), StreamName=name, RetentionPeriodHours=26,
    )
    expect_error(kc.decrease_stream_retention_period, "InvalidArgumentException", K.MIN_RETENTION.format(hours=23), StreamName=name, RetentionPeriodHours=23)
    kc.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    assert K.wait_status(kc, name)["RetentionPeriodHours"] == 24
    assert kc.describe_stream(StreamName=name)["StreamDescription"]["RetentionPeriodHours"] == 24


@covers("StartStreamEncryption", "StopStreamEncryption", "PutRecord", "PutRecords", "GetRecords")
def test_stream_encryption_start_stop(kc, kstreams):
    name = kstreams.create(1)
    plain = kc.put_record(StreamName=name, PartitionKey="p", Data=b"plain")
    assert plain.get("EncryptionType", "NONE") == "NONE"
    kc.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    s = K.wait_status(kc, name)
    assert s["EncryptionType"] == "KMS" and s["KeyId"] == "alias/aws/kinesis"
    d = kc.describe_stream(StreamName=name)["StreamDescription"]
    assert d["EncryptionType"] == "KMS" and d["KeyId"] == "alias/aws/kinesis"
    enc = kc.put_record(StreamName=name, PartitionKey="p", Data=b"secret")
    assert enc["EncryptionType"] == "KMS"
    batch = kc.put_records(StreamName=name, Records=[{"PartitionKey": "p", "Data": b"secret-2"}])
    assert batch["EncryptionType"] == "KMS"
    recs = K.read_shard(kc, name, K.shard_id(0)).records
    assert [r["Data"] for r in recs] == [b"plain", b"secret", b"secret-2"]
    assert recs[0].get("EncryptionType", "NONE") == "NONE"
    assert [r["EncryptionType"] for r in recs[1:]] == ["KMS", "KMS"]

    kc.stop_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    s = K.wait_status(kc, name)
    assert s["EncryptionType"] == "NONE" and "KeyId" not in s
    after = kc.put_record(StreamName=name, PartitionKey="p", Data=b"plain-again")
    assert after.get("EncryptionType", "NONE") == "NONE"
    recs = K.read_shard(kc, name, K.shard_id(0)).records
    assert recs[-1]["Data"] == b"plain-again" and recs[-1].get("EncryptionType", "NONE") == "NONE"
    assert [r["EncryptionType"] for r in recs[1:3]] == ["KMS", "KMS"], "records keep the encryption they were written with"


# ------------------------------------------------------------------------------------ tags
@covers("AddTagsToStream", "ListTagsForStream", "RemoveTagsFromStream", "TagResource", "UntagResource", "ListTagsForResource", "CreateStream")
def test_tags_both_apis_and_limit(kc, kstreams):
    name = kstreams.name()
    kc.create_stream(StreamName=name, ShardCount=1, Tags={"team": "video", "env": "test"})
    K.wait_status(kc, name)
    arn = K.stream_arn(name)
    r = kc.list_tags_for_stream(StreamName=name)
    assert r["Tags"] == [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "video"}]
    assert r["HasMoreTags"] is False
    kc.add_tags_to_stream(StreamName=name, Tags={"env": "prod", "a": "1", "b": ""})
    want = {"a": "1", "b": "", "env": "prod", "team": "video"}
    assert {t["Key"]: t["Value"] for t in kc.list_tags_for_stream(StreamName=name)["Tags"]} == want
    # Pagination: Limit + ExclusiveStartTagKey, keys in order.
    page = kc.list_tags_for_stream(StreamName=name, Limit=2)
    assert [t["Key"] for t in page["Tags"]] == ["a", "b"] and page["HasMoreTags"] is True
    page = kc.list_tags_for_stream(StreamName=name, Limit=2, ExclusiveStartTagKey="b")
    assert [t["Key"] for t in page["Tags"]] == ["env", "team"] and page["HasMoreTags"] is False
    kc.remove_tags_from_stream(StreamName=name, TagKeys=["a", "missing-key"])
    want.pop("a")
    assert {t["Key"]: t["Value"] for t in kc.list_tags_for_resource(ResourceARN=arn)["Tags"]} == want

    kc.tag_resource(ResourceARN=arn, Tags={"owner": "qa"})
    want["owner"] = "qa"
    assert {t["Key"]: t["Value"] for t in kc.list_tags_for_resource(ResourceARN=arn)["Tags"]} == want
    kc.untag_resource(ResourceARN=arn, TagKeys=["b", "team"])
    want.pop("b"), want.pop("team")
    assert {t["Key"]: t["Value"] for t in kc.list_tags_for_stream(StreamName=name)["Tags"]} == want

    # A stream carries at most 50 tags: the 51st is refused and nothing of that call is kept.
    kc.add_tags_to_stream(StreamName=name, Tags={f"k{i:02d}": str(i) for i in range(48)})
    assert len(kc.list_tags_for_resource(ResourceARN=arn)["Tags"]) == 50
    e = expect_error(kc.add_tags_to_stream, "InvalidArgumentException", StreamName=name, Tags={"one-more": "x", "k00": "changed"})
    assert "50" in K.err(e)[1]
    tags = {t["Key"]: t["Value"] for t in kc.list_tags_for_resource(ResourceARN=arn)["Tags"]}
    assert len(tags) == 50 and "one-more" not in tags and tags["k00"] == "0"
    # Overwriting existing keys does not add tags, so it is allowed at the limit.
    kc.tag_resource(ResourceARN=arn, Tags={"k00": "zero"})
    assert {t["Key"]: t["Value"] for t in kc.list_tags_for_resource(ResourceARN=arn)["Tags"]}["k00"] == "zero"


# ------------------------------------------------------------------------------- consumers
def wait_consumer(kc, arn, status="ACTIVE", timeout=10.0, seen=None):
    deadline = time.monotonic() + timeout
    while True:
        d = kc.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]
        if seen is not None and (not seen or seen[-1] != d["ConsumerStatus"]):
            seen.append(d["ConsumerStatus"])
        if d["ConsumerStatus"] == status:
            return d
        assert time.monotonic() < deadline, f"consumer {arn} still {d['ConsumerStatus']}"
        time.sleep(0.02)


@covers("RegisterStreamConsumer", "DescribeStreamConsumer", "ListStreamConsumers", "DeregisterStreamConsumer")
def test_consumers_lifecycle(kc, kstreams):
    name = kstreams.create(1)
    arn = K.stream_arn(name)
    c = kc.register_stream_consumer(StreamARN=arn, ConsumerName="reader-a")["Consumer"]
    assert c["ConsumerName"] == "reader-a"
    assert c["ConsumerStatus"] == "CREATING"
    m = K.consumer_arn_re(name, "reader-a").match(c["ConsumerARN"])
    assert m, c["ConsumerARN"]
    assert abs(int(m.group(1)) - c["ConsumerCreationTimestamp"].timestamp()) <= 1
    assert near_now(c["ConsumerCreationTimestamp"])
    d = wait_consumer(kc, c["ConsumerARN"])
    assert d == {
        "ConsumerName": "reader-a",
        "ConsumerARN": c["ConsumerARN"],
        "ConsumerStatus": "ACTIVE",
        "ConsumerCreationTimestamp": c["ConsumerCreationTimestamp"],
        "StreamARN": arn,
    }
    assert kc.describe_stream_consumer(StreamARN=arn, ConsumerName="reader-a")["ConsumerDescription"] == d
    expect_error(kc.register_stream_consumer, "ResourceInUseException", StreamARN=arn, ConsumerName="reader-a")

    b = kc.register_stream_consumer(StreamARN=arn, ConsumerName="reader-b")["Consumer"]
    wait_consumer(kc, b["ConsumerARN"])
    assert K.summary(kc, name)["ConsumerCount"] == 2
    listed, r = [], kc.list_stream_consumers(StreamARN=arn, MaxResults=1)
    listed += r["Consumers"]
    while "NextToken" in r:
        r = kc.list_stream_consumers(StreamARN=arn, MaxResults=1, NextToken=r["NextToken"])
        listed += r["Consumers"]
    assert sorted(x["ConsumerName"] for x in listed) == ["reader-a", "reader-b"]
    for x in listed:
        assert set(x) == {"ConsumerName", "ConsumerARN", "ConsumerStatus", "ConsumerCreationTimestamp"}
        assert x["ConsumerStatus"] == "ACTIVE"

    kc.deregister_stream_consumer(ConsumerARN=c["ConsumerARN"])
    deadline = time.monotonic() + 10
    while True:
        try:
            st = kc.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]["ConsumerStatus"]
            assert st == "DELETING"
        except kc.exceptions.ResourceNotFoundException:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    kc.deregister_stream_consumer(StreamARN=arn, ConsumerName="reader-b")
    deadline = time.monotonic() + 10
    while kc.list_stream_consumers(StreamARN=arn)["Consumers"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert K.summary(kc, name)["ConsumerCount"] == 0
    expect_error(kc.describe_stream_consumer, "ResourceNotFoundException", StreamARN=arn, ConsumerName="reader-b")


@covers("SubscribeToShard", "RegisterStreamConsumer")
def test_subscribe_to_shard_with_boto3(make_client, kstreams):
    kc = make_client(read_timeout=15)
    name = kstreams.create(1)
    arn = K.stream_arn(name)
    consumer = kc.register_stream_consumer(StreamARN=arn, ConsumerName="efo")["Consumer"]
    wait_consumer(kc, consumer["ConsumerARN"])
    puts = [kc.put_record(StreamName=name, PartitionKey="p", Data=b"e%d" % i)["SequenceNumber"] for i in range(3)]
    r = kc.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId=K.shard_id(0), StartingPosition={"Type": "TRIM_HORIZON"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    stream = r["EventStream"]
    got, last = [], None
    deadline = time.monotonic() + 10
    try:
        for event in stream:
            assert set(event) == {"SubscribeToShardEvent"}, event
            ev = event["SubscribeToShardEvent"]
            got += ev["Records"]
            last = ev
            assert "ContinuationSequenceNumber" in ev and "MillisBehindLatest" in ev
            if len(got) >= 3 or time.monotonic() > deadline:
                break
    finally:
        stream.close()
    assert [x["Data"] for x in got] == [b"e0", b"e1", b"e2"]
    assert [x["SequenceNumber"] for x in got] == puts
    assert last["ContinuationSequenceNumber"] == puts[-1]
    assert last["MillisBehindLatest"] == 0


# ------------------------------------------------------------------------ monitoring, limits
@covers("EnableEnhancedMonitoring", "DisableEnhancedMonitoring")
def test_enhanced_monitoring(kc, kstreams):
    name = kstreams.create(1)
    r = kc.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes", "OutgoingRecords"])
    assert r["StreamName"] == name and r["StreamARN"] == K.stream_arn(name)
    assert r["CurrentShardLevelMetrics"] == []
    assert sorted(r["DesiredShardLevelMetrics"]) == ["IncomingBytes", "OutgoingRecords"]
    K.wait_status(kc, name)
    em = kc.describe_stream(StreamName=name)["StreamDescription"]["EnhancedMonitoring"]
    assert len(em) == 1 and sorted(em[0]["ShardLevelMetrics"]) == ["IncomingBytes", "OutgoingRecords"]
    r = kc.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert sorted(r["CurrentShardLevelMetrics"]) == ["IncomingBytes", "OutgoingRecords"]
    assert sorted(r["DesiredShardLevelMetrics"]) == sorted(K.ALL_METRICS)
    K.wait_status(kc, name)
    r = kc.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes"])
    assert sorted(r["CurrentShardLevelMetrics"]) == sorted(K.ALL_METRICS)
    assert sorted(r["DesiredShardLevelMetrics"]) == sorted(m for m in K.ALL_METRICS if m != "IncomingBytes")
    K.wait_status(kc, name)
    r = kc.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert r["DesiredShardLevelMetrics"] == []
    K.wait_status(kc, name)
    assert K.summary(kc, name)["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]


@covers("DescribeLimits")
def test_describe_limits_counts_open_shards(kc, kstreams):
    K.wait_account_settled(kc)
    before = kc.describe_limits()
    assert before["ShardLimit"] == 500
    assert before["OnDemandStreamCountLimit"] == 50
    name = kstreams.create(3)
    after = kc.describe_limits()
    assert after["OpenShardCount"] == before["OpenShardCount"] + 3
    assert after["OnDemandStreamCount"] == before["OnDemandStreamCount"]
    kc.split_shard(StreamName=name, ShardToSplit=K.shard_id(0), NewStartingHashKey="12345")
    K.wait_status(kc, name)
    assert kc.describe_limits()["OpenShardCount"] == before["OpenShardCount"] + 4, "a split closes one shard and opens two"
    od = kstreams.name()
    kc.create_stream(StreamName=od, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    K.wait_status(kc, od)
    assert kc.describe_limits()["OnDemandStreamCount"] == before["OnDemandStreamCount"] + 1
    kc.delete_stream(StreamName=od)
    K.wait_gone(kc, od)
    assert kc.describe_limits()["OnDemandStreamCount"] == before["OnDemandStreamCount"]
    kc.delete_stream(StreamName=name)
    K.wait_gone(kc, name)
    assert kc.describe_limits()["OpenShardCount"] == before["OpenShardCount"]


# ---------------------------------------------------------------- policies, account, sizes
@covers("PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy")
def test_resource_policies(kc, kstreams):
    name = kstreams.create(1)
    arn = K.stream_arn(name)
    assert kc.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "cross-account-read",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStreamSummary", "kinesis:ListShards"],
                "Resource": arn,
            }
        ],
    }
    kc.put_resource_policy(ResourceARN=arn, Policy=json.dumps(policy))
    assert json.loads(kc.get_resource_policy(ResourceARN=arn)["Policy"]) == policy
    policy["Statement"][0]["Action"] = ["kinesis:GetRecords"]
    kc.put_resource_policy(ResourceARN=arn, Policy=json.dumps(policy))
    assert json.loads(kc.get_resource_policy(ResourceARN=arn)["Policy"]) == policy
    kc.delete_resource_policy(ResourceARN=arn)
    assert kc.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    missing = K.stream_arn(kstreams.name())
    expect_error(kc.put_resource_policy, "ResourceNotFoundException", ResourceARN=missing, Policy=json.dumps(policy))
    expect_error(kc.get_resource_policy, "ResourceNotFoundException", ResourceARN=missing)


@covers("DescribeAccountSettings", "UpdateAccountSettings")
def test_account_settings_minimum_throughput_commitment(kc):
    r = kc.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})["MinimumThroughputBillingCommitment"]
    assert r["Status"] == "ENABLED"
    assert near_now(r["StartedAt"], 5)
    # AWS: a commitment lasts at least 24 hours.
    assert r["EarliestAllowedEndAt"] - r["StartedAt"] == datetime.timedelta(hours=24)
    d = kc.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert d["Status"] == "ENABLED" and d["StartedAt"] == r["StartedAt"]
    # Disabling inside the 24 hours schedules the end at the earliest allowed time...
    off = kc.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"})["MinimumThroughputBillingCommitment"]
    assert off["Status"] == "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
    assert off["StartedAt"] == r["StartedAt"] and off["EarliestAllowedEndAt"] == r["EarliestAllowedEndAt"]
    assert kc.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
    # ...and enabling again cancels the pending end.
    again = kc.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})["MinimumThroughputBillingCommitment"]
    assert again["Status"] == "ENABLED" and again["StartedAt"] == r["StartedAt"]


@covers("UpdateMaxRecordSize", "CreateStream", "PutRecord")
def test_update_max_record_size(kc, kstreams):
    name = kstreams.create(1)
    arn = K.stream_arn(name)
    assert K.summary(kc, name)["MaxRecordSizeInKiB"] == 1024
    big = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
    expect_error(kc.put_record, "InvalidArgumentException", StreamName=name, PartitionKey="p", Data=big)
    kc.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=2048)
    assert K.wait_status(kc, name)["MaxRecordSizeInKiB"] == 2048
    seq = kc.put_record(StreamName=name, PartitionKey="p", Data=big)["SequenceNumber"]
    recs = K.read_shard(kc, name, K.shard_id(0)).records
    assert [(r["SequenceNumber"], r["Data"]) for r in recs] == [(seq, big)]
    # A record over the new limit (data + partition key > 2 MiB) is still refused.
    expect_error(kc.put_record, "InvalidArgumentException", StreamName=name, PartitionKey="p", Data=b"x" * (2 * K.MIB))
    # CreateStream takes the maximum too.
    other = kstreams.create(1, MaxRecordSizeInKiB=3072)
    assert K.summary(kc, other)["MaxRecordSizeInKiB"] == 3072
    expect_error(kc.update_max_record_size, "ResourceNotFoundException", StreamARN=K.stream_arn(kstreams.name()), MaxRecordSizeInKiB=2048)


@covers("UpdateStreamWarmThroughput")
def test_update_stream_warm_throughput(kc, kstreams):
    name = kstreams.create(None, mode="ON_DEMAND")
    r = kc.update_stream_warm_throughput(StreamName=name, WarmThroughputMiBps=100)
    assert r["StreamName"] == name and r["StreamARN"] == K.stream_arn(name)
    assert r["WarmThroughput"]["TargetMiBps"] == 100
    s = K.wait_status(kc, name)
    assert s["WarmThroughput"]["TargetMiBps"] == 100
    r = kc.update_stream_warm_throughput(StreamARN=K.stream_arn(name), WarmThroughputMiBps=0)
    assert r["WarmThroughput"]["TargetMiBps"] == 0
    expect_error(kc.update_stream_warm_throughput, "ResourceNotFoundException", StreamName=kstreams.name(), WarmThroughputMiBps=10)


# ------------------------------------------------------------------ StreamARN, wire details
@covers("DescribeStream", "DescribeStreamSummary", "PutRecord", "PutRecords", "GetShardIterator", "GetRecords", "ListShards",
        "AddTagsToStream", "ListTagsForStream", "RemoveTagsFromStream", "IncreaseStreamRetentionPeriod",
        "DecreaseStreamRetentionPeriod", "EnableEnhancedMonitoring", "DisableEnhancedMonitoring", "SplitShard",
        "MergeShards", "UpdateShardCount", "StartStreamEncryption", "StopStreamEncryption", "DeleteStream")
def test_stream_arn_accepted_instead_of_stream_name(kc, kstreams):
    name = kstreams.create(1)
    arn = K.stream_arn(name)
    assert kc.describe_stream(StreamARN=arn)["StreamDescription"]["StreamName"] == name
    assert K.summary(kc, name) == kc.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
    seq = kc.put_record(StreamARN=arn, PartitionKey="p", Data=b"by-arn")["SequenceNumber"]
    assert kc.put_records(StreamARN=arn, Records=[{"PartitionKey": "p", "Data": b"by-arn-2"}])["FailedRecordCount"] == 0
    it = kc.get_shard_iterator(StreamARN=arn, ShardId=K.shard_id(0), ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq)["ShardIterator"]
    assert [r["Data"] for r in kc.get_records(StreamARN=arn, ShardIterator=it)["Records"]] == [b"by-arn", b"by-arn-2"]
    assert [s["ShardId"] for s in kc.list_shards(StreamARN=arn)["Shards"]] == [K.shard_id(0)]
    kc.add_tags_to_stream(StreamARN=arn, Tags={"via": "arn"})
    assert kc.list_tags_for_stream(StreamARN=arn)["Tags"] == [{"Key": "via", "Value": "arn"}]
    kc.remove_tags_from_stream(StreamARN=arn, TagKeys=["via"])
    kc.increase_stream_retention_period(StreamARN=arn, RetentionPeriodHours=30)
    K.wait_status(kc, name)
    kc.decrease_stream_retention_period(StreamARN=arn, RetentionPeriodHours=24)
    K.wait_status(kc, name)
    kc.enable_enhanced_monitoring(StreamARN=arn, ShardLevelMetrics=["IncomingRecords"])
    K.wait_status(kc, name)
    kc.disable_enhanced_monitoring(StreamARN=arn, ShardLevelMetrics=["IncomingRecords"])
    K.wait_status(kc, name)
    kc.start_stream_encryption(StreamARN=arn, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    K.wait_status(kc, name)
    kc.stop_stream_encryption(StreamARN=arn, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    K.wait_status(kc, name)
    kc.split_shard(StreamARN=arn, ShardToSplit=K.shard_id(0), NewStartingHashKey=str(2**127))
    K.wait_status(kc, name)
    kc.merge_shards(StreamARN=arn, ShardToMerge=K.shard_id(1), AdjacentShardToMerge=K.shard_id(2))
    K.wait_status(kc, name)
    kc.update_shard_count(StreamARN=arn, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    K.wait_status(kc, name)
    missing = kstreams.name()
    expect_error(kc.describe_stream_summary, "ResourceNotFoundException", K.NOT_FOUND.format(name=missing), StreamARN=K.stream_arn(missing))
    kc.delete_stream(StreamARN=arn)
    K.wait_gone(kc, name)


def test_response_headers_and_content_type(kinesis_server, kstreams):
    name = kstreams.create(1)
    r = K.raw_json(kinesis_server, "DescribeStreamSummary", {"StreamName": name})
    assert r.status == 200
    assert r.headers["content-type"] == K.JSON_CT
    assert K.UUID_RE.match(r.headers["x-amzn-requestid"])
    assert r.json["StreamDescriptionSummary"]["StreamName"] == name
    # Blobs travel as base64 text in JSON; timestamps as epoch seconds (a JSON number).
    put = K.raw_json(kinesis_server, "PutRecord", {"StreamName": name, "PartitionKey": "p", "Data": base64.b64encode(b"\x00\xffraw").decode()})
    assert put.status == 200 and set(put.json) >= {"ShardId", "SequenceNumber"}
    it = K.raw_json(kinesis_server, "GetShardIterator", {"StreamName": name, "ShardId": K.shard_id(0), "ShardIteratorType": "TRIM_HORIZON"}).json["ShardIterator"]
    got = K.raw_json(kinesis_server, "GetRecords", {"ShardIterator": it}).json
    rec = got["Records"][0]
    assert base64.b64decode(rec["Data"]) == b"\x00\xffraw"
    assert isinstance(rec["ApproximateArrivalTimestamp"], (int, float))
    assert abs(rec["ApproximateArrivalTimestamp"] - time.time()) < 30
