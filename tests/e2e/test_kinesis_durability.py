"""Kinesis Data Streams durability and ordering: per-key order across a split and a merge
(followed through ChildShards), every acknowledged record surviving kill -9 during a
concurrent PutRecords load (same sequence number, data and order), retention bounds, and
KPL-aggregated records (aws_kinesis_agg) stored byte-identical."""

from __future__ import annotations

import base64
import datetime
import threading
import time

from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records
from botocore.exceptions import BotoCoreError, ClientError

import kinesis as K


def follow_key(kc, name, key, *, timeout=15.0):
    """Read the records of partition key ``key`` the way a consumer does: from the root
    shard that holds its hash, to the end of each closed shard, then into the child (from
    ChildShards) whose hash range holds the key, until the open shard is caught up.
    Returns (records, path of shard ids)."""
    h = K.pk_hash(key)
    shards = K.all_shards(kc, name)
    ids = {s["ShardId"] for s in shards}
    roots = [s for s in shards if s.get("ParentShardId") not in ids and K.shard_range(s)[0] <= h <= K.shard_range(s)[1]]
    assert len(roots) == 1, roots
    shard, path, records = roots[0]["ShardId"], [], []
    while True:
        path.append(shard)
        read = K.read_shard(kc, name, shard, timeout=timeout)
        records += [r for r in read.records if r["PartitionKey"] == key]
        if not read.closed:
            return records, path
        nxt = [c for c in read.child_shards if int(c["HashKeyRange"]["StartingHashKey"]) <= h <= int(c["HashKeyRange"]["EndingHashKey"])]
        assert len(nxt) == 1, read.child_shards
        assert shard in nxt[0]["ParentShards"]
        shard = nxt[0]["ShardId"]


def test_one_partition_key_stays_in_order_across_split_and_merge(kinesis_server, kstreams):
    kc = kinesis_server.kinesis()
    name = kstreams.create(1)
    key, other = "ordered-key", "other-key"
    acked: list[tuple[str, bytes]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def producer():
        pc = kinesis_server.kinesis()
        n = 0
        try:
            while not stop.is_set() and n < 2000:
                data = b"%06d" % n
                r = pc.put_record(StreamName=name, PartitionKey=key, Data=data)
                acked.append((r["SequenceNumber"], data))
                pc.put_record(StreamName=name, PartitionKey=other, Data=b"noise")
                n += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=producer)
    t.start()
    try:
        def wait_acks(n):
            deadline = time.monotonic() + 20
            while len(acked) < n:
                assert time.monotonic() < deadline and t.is_alive(), errors
                time.sleep(0.01)

        wait_acks(20)
        kc.split_shard(StreamName=name, ShardToSplit=K.shard_id(0), NewStartingHashKey=str(2**127))
        K.wait_status(kc, name)
        wait_acks(len(acked) + 20)
        kc.merge_shards(StreamName=name, ShardToMerge=K.shard_id(1), AdjacentShardToMerge=K.shard_id(2))
        K.wait_status(kc, name)
        wait_acks(len(acked) + 20)
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    records, path = follow_key(kc, name, key)
    child = K.shard_id(1) if K.pk_hash(key) < 2**127 else K.shard_id(2)
    assert path == [K.shard_id(0), child, K.shard_id(3)]
    assert [(r["SequenceNumber"], r["Data"]) for r in records] == acked
    # Parents are read before children through ParentShardId as well.
    order = K.lineage_order(K.all_shards(kc, name))
    assert order.index(K.shard_id(0)) < order.index(child) < order.index(K.shard_id(3))


def test_kill9_during_put_records_load_keeps_every_acknowledged_record(private_server):
    srv = private_server(*K.KINESIS_ARGS)
    kc = srv.kinesis()
    name = K.unique("crash")
    K.create(kc, name, 4)
    acked: list[list[dict]] = [[] for _ in range(4)]
    sent: set[bytes] = set()
    lock = threading.Lock()
    started = threading.Barrier(5)

    def producer(tid):
        pc = srv.kinesis(connect_timeout=2, read_timeout=5)
        started.wait()
        for batch in range(10_000):
            entries = [{"PartitionKey": f"t{tid}-k{i % 5}", "Data": b"t%d-b%05d-r%02d-" % (tid, batch, i) + bytes([i]) * (i * 37)} for i in range(25)]
            with lock:
                sent.update(e["Data"] for e in entries)
            try:
                r = pc.put_records(StreamName=name, Records=entries)
            except (ClientError, BotoCoreError, OSError):
                return
            for e, res in zip(entries, r["Records"]):
                if "SequenceNumber" in res:
                    acked[tid].append({**e, **res})

    threads = [threading.Thread(target=producer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    deadline = time.monotonic() + 20
    while sum(len(a) for a in acked) < 1500:  # mid-load: a good number acknowledged, more in flight
        assert time.monotonic() < deadline, "load too slow"
        time.sleep(0.01)
    srv.kill9()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    total_acked = sum(len(a) for a in acked)

    srv.start()
    kc = srv.kinesis()
    s = K.summary(kc, name)
    assert s["StreamStatus"] == "ACTIVE" and s["OpenShardCount"] == 4
    stored = K.read_all(kc, name, limit=10000)
    assert set(stored) == {K.shard_id(i) for i in range(4)}
    by_seq = {}
    for sid, recs in stored.items():
        seqs = [int(r["SequenceNumber"]) for r in recs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{sid}: sequence numbers out of order or repeated"
        for r in recs:
            assert r["Data"] in sent, "a stored record that no producer sent (torn write?)"
            by_seq[(sid, r["SequenceNumber"])] = r
    for tid in range(4):
        for a in acked[tid]:
            got = by_seq.get((a["ShardId"], a["SequenceNumber"]))
            assert got is not None, f"acknowledged record lost: {a['ShardId']} {a['SequenceNumber']}"
            assert (got["Data"], got["PartitionKey"]) == (a["Data"], a["PartitionKey"])
    # Per shard, acknowledged records keep their put order (each producer puts in sequence).
    for tid in range(4):
        for key in {a["PartitionKey"] for a in acked[tid]}:
            seqs = [int(a["SequenceNumber"]) for a in acked[tid] if a["PartitionKey"] == key]
            assert seqs == sorted(seqs)
    assert total_acked >= 1500
    # The stream goes on after the crash: new numbers follow the old ones.
    r = kc.put_record(StreamName=name, PartitionKey="after", Data=b"after-restart")
    prior = [int(x["SequenceNumber"]) for x in stored[r["ShardId"]]]
    assert not prior or int(r["SequenceNumber"]) > max(prior)


def test_graceful_restart_keeps_streams_shards_and_records(private_server):
    srv = private_server(*K.KINESIS_ARGS)
    kc = srv.kinesis()
    name = K.unique("restart")
    K.create(kc, name, 2, Tags={"keep": "yes"})
    K.put_many(kc, name, [(f"k{i}", b"v%d" % i) for i in range(50)])
    kc.split_shard(StreamName=name, ShardToSplit=K.shard_id(0), NewStartingHashKey=str(2**126))
    K.wait_status(kc, name)
    kc.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    K.wait_status(kc, name)
    before_shards = K.all_shards(kc, name)
    before = K.read_all(kc, name)
    srv.restart()
    kc = srv.kinesis()
    assert K.all_shards(kc, name) == before_shards
    assert K.read_all(kc, name) == before
    s = K.summary(kc, name)
    assert s["RetentionPeriodHours"] == 72 and s["OpenShardCount"] == 3
    assert kc.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "keep", "Value": "yes"}]


def test_retention_window(kinesis_server, kstreams):
    """What can be checked without waiting a day: records carry arrival times inside the
    retention window; AT_TIMESTAMP before the window starts at the oldest retained record
    (TRIM_HORIZON); shortening the retention to its minimum keeps records younger than it."""
    kc = kinesis_server.kinesis()
    name = kstreams.create(1)
    kc.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    K.wait_status(kc, name)
    t0 = datetime.datetime.now(datetime.timezone.utc)
    K.put_many(kc, name, [("p", b"r%d" % i) for i in range(5)])
    recs = K.read_shard(kc, name, K.shard_id(0)).records
    for r in recs:
        assert t0 - datetime.timedelta(seconds=2) <= r["ApproximateArrivalTimestamp"] <= datetime.datetime.now(datetime.timezone.utc)
    old = K.iterator(kc, name, K.shard_id(0), "AT_TIMESTAMP", Timestamp=t0 - datetime.timedelta(hours=100))
    assert [r["Data"] for r in K.read_iterator(kc, old).records] == [b"r%d" % i for i in range(5)]
    kc.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    K.wait_status(kc, name)
    assert [r["SequenceNumber"] for r in K.read_shard(kc, name, K.shard_id(0)).records] == [r["SequenceNumber"] for r in recs]
    assert K.summary(kc, name)["RetentionPeriodHours"] == 24


def test_kpl_aggregated_records_round_trip(kinesis_server, kstreams):
    kc = kinesis_server.kinesis()
    name = kstreams.create(2)
    users = [(f"user-{i % 17}", (b"event-%04d:" % i) + bytes(range(i % 200))) for i in range(600)]
    agg = RecordAggregator()
    blobs = []
    for pk, data in users:
        full = agg.add_user_record(pk, data)
        if full is not None:
            blobs.append(full.get_contents())
    if agg.get_num_user_records():
        blobs.append(agg.clear_and_get().get_contents())
    assert len(blobs) >= 1
    entries = [{"PartitionKey": pk, "Data": data, **({"ExplicitHashKey": ehk} if ehk else {})} for pk, ehk, data in blobs]
    r = kc.put_records(StreamName=name, Records=entries)
    assert r["FailedRecordCount"] == 0
    stored = {}
    for sid, recs in K.read_all(kc, name).items():
        for rec in recs:
            stored[rec["SequenceNumber"]] = rec
    lambda_style = []
    for e, res in zip(entries, r["Records"]):
        rec = stored[res["SequenceNumber"]]
        assert rec["Data"] == e["Data"], "the aggregated blob comes back byte-identical"
        assert rec["PartitionKey"] == e["PartitionKey"]
        lambda_style.append({"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": rec["PartitionKey"], "sequenceNumber": rec["SequenceNumber"],
                                         "data": base64.b64encode(rec["Data"]).decode(), "approximateArrivalTimestamp": rec["ApproximateArrivalTimestamp"].timestamp()},
                             "eventSource": "aws:kinesis"})
    out = deaggregate_records(lambda_style)
    assert [(u["kinesis"]["partitionKey"], base64.b64decode(u["kinesis"]["data"])) for u in out] == users
