"""Kinesis Data Streams over CBOR, exactly as the AWS SDK for Java v2 (and so the KCL) speaks
it: ``application/x-amz-cbor-1.1`` bodies signed with SigV4, blobs as CBOR byte strings,
timestamps as CBOR tag 1 wrapping an integer of epoch milliseconds, errors as a CBOR map with
``__type`` plus the ``x-amzn-ErrorType`` header."""

from __future__ import annotations

import time

import cbor2
import pytest

import kinesis as K


def cbor_call(server, op, payload, **kw):
    return K.raw_call(server, op, cbor2.dumps(payload), content_type=K.CBOR_CT, **kw)


def ok(resp) -> dict:
    assert resp.status == 200, (resp.status, resp.headers, resp.data[:500])
    assert resp.headers["content-type"] == K.CBOR_CT
    assert K.UUID_RE.match(resp.headers["x-amzn-requestid"])
    body = resp.cbor()
    assert isinstance(body, dict)
    return body


def epoch_ms(value) -> int:
    """A CBOR timestamp as the Java SDK v2 reads it: tag 1 around an integer of milliseconds."""
    assert isinstance(value, cbor2.CBORTag) and value.tag == 1, repr(value)
    assert isinstance(value.value, int) and not isinstance(value.value, bool), f"not an integer: {value.value!r}"
    return value.value


def error_type(body) -> str:
    return body["__type"].split("#")[-1].split(":")[0]


def test_put_record_put_records_get_records_round_trip(kinesis_server, kstreams):
    name = kstreams.create(2)
    blob = bytes(range(256))
    t0 = int(time.time() * 1000)
    put = ok(cbor_call(kinesis_server, "PutRecord", {"StreamName": name, "PartitionKey": "cbor", "Data": blob, "ExplicitHashKey": "0"}))
    assert put["ShardId"] == K.shard_id(0)
    assert isinstance(put["SequenceNumber"], str) and K.SEQ_RE.match(put["SequenceNumber"])

    batch = ok(cbor_call(kinesis_server, "PutRecords", {
        "StreamName": name,
        "Records": [{"PartitionKey": "cbor", "Data": b"second\x00", "ExplicitHashKey": "1"},
                    {"PartitionKey": "cbor", "Data": b"", "ExplicitHashKey": "2"},
                    {"PartitionKey": "cbor", "Data": b"other shard", "ExplicitHashKey": str(K.HASH_MAX)}],
    }))
    t1 = int(time.time() * 1000)
    assert batch["FailedRecordCount"] == 0
    assert [r["ShardId"] for r in batch["Records"]] == [K.shard_id(0), K.shard_id(0), K.shard_id(1)]
    seqs = [put["SequenceNumber"]] + [r["SequenceNumber"] for r in batch["Records"][:2]]

    it = ok(cbor_call(kinesis_server, "GetShardIterator", {"StreamName": name, "ShardId": K.shard_id(0), "ShardIteratorType": "TRIM_HORIZON"}))
    assert isinstance(it["ShardIterator"], str)
    got = ok(cbor_call(kinesis_server, "GetRecords", {"ShardIterator": it["ShardIterator"], "Limit": 10}))
    recs = got["Records"]
    assert [r["Data"] for r in recs] == [blob, b"second\x00", b""]
    assert all(isinstance(r["Data"], bytes) for r in recs), "blobs are CBOR byte strings, not base64 text"
    assert [r["SequenceNumber"] for r in recs] == seqs
    assert [r["PartitionKey"] for r in recs] == ["cbor"] * 3
    for r in recs:
        ms = epoch_ms(r["ApproximateArrivalTimestamp"])
        assert t0 - 5 <= ms <= t1 + 5, (t0, ms, t1)
    assert isinstance(got["MillisBehindLatest"], int)
    assert isinstance(got["NextShardIterator"], str)

    # The same records read through JSON (boto3) are identical.
    kc = kinesis_server.kinesis()
    via_json = K.read_shard(kc, name, K.shard_id(0)).records
    assert [(r["SequenceNumber"], r["Data"]) for r in via_json] == [(r["SequenceNumber"], r["Data"]) for r in recs]
    for j, c in zip(via_json, recs):
        assert int(j["ApproximateArrivalTimestamp"].timestamp() * 1000 + 0.5) == epoch_ms(c["ApproximateArrivalTimestamp"])


def test_at_timestamp_iterator_with_millisecond_tag(kinesis_server, kstreams):
    name = kstreams.create(1)
    for i in range(3):
        ok(cbor_call(kinesis_server, "PutRecord", {"StreamName": name, "PartitionKey": "p", "Data": b"%d" % i}))
        time.sleep(0.003)
    it = ok(cbor_call(kinesis_server, "GetShardIterator", {"StreamName": name, "ShardId": K.shard_id(0), "ShardIteratorType": "TRIM_HORIZON"}))
    recs = ok(cbor_call(kinesis_server, "GetRecords", {"ShardIterator": it["ShardIterator"]}))["Records"]
    t1 = epoch_ms(recs[1]["ApproximateArrivalTimestamp"])
    assert epoch_ms(recs[0]["ApproximateArrivalTimestamp"]) < t1
    it = ok(cbor_call(kinesis_server, "GetShardIterator", {
        "StreamName": name, "ShardId": K.shard_id(0), "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": cbor2.CBORTag(1, t1),
    }))
    recs = ok(cbor_call(kinesis_server, "GetRecords", {"ShardIterator": it["ShardIterator"]}))["Records"]
    assert [r["Data"] for r in recs] == [b"1", b"2"]


def test_describe_stream_summary_timestamps_and_shapes(kinesis_server, kstreams):
    name = kstreams.create(3)
    before = int(time.time() * 1000)
    s = ok(cbor_call(kinesis_server, "DescribeStreamSummary", {"StreamName": name}))["StreamDescriptionSummary"]
    assert s["StreamName"] == name and s["StreamARN"] == K.stream_arn(name)
    assert s["OpenShardCount"] == 3 and isinstance(s["OpenShardCount"], int)
    created = epoch_ms(s["StreamCreationTimestamp"])
    assert before - 60_000 <= created <= before + 1000
    shards = ok(cbor_call(kinesis_server, "ListShards", {"StreamName": name}))["Shards"]
    assert [x["HashKeyRange"] for x in shards] == [{"StartingHashKey": str(a), "EndingHashKey": str(b)} for a, b in K.even_ranges(3)]


@pytest.mark.parametrize("op, payload, code, message", [
    ("DescribeStreamSummary", {"StreamName": "{missing}"}, "ResourceNotFoundException", K.NOT_FOUND),
    ("PutRecord", {"StreamName": "{missing}", "PartitionKey": "a", "Data": b"x"}, "ResourceNotFoundException", K.NOT_FOUND),
    ("CreateStream", {"StreamName": "bad name", "ShardCount": 1}, "ValidationException",
     "1 validation error detected: Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
    ("NoSuchOperation", {}, "UnknownOperationException", None),
])
def test_cbor_errors(kinesis_server, op, payload, code, message):
    missing = K.unique("missing")
    payload = {k: (v.format(missing=missing) if isinstance(v, str) else v) for k, v in payload.items()}
    r = cbor_call(kinesis_server, op, payload)
    assert r.status == 400
    assert r.headers["content-type"] == K.CBOR_CT
    assert r.error_type == code, r.headers
    body = r.cbor()
    assert error_type(body) == code
    if message is not None:
        assert body["message"] == message.format(name=missing)


def test_malformed_cbor_is_serialization_exception(kinesis_server):
    r = K.raw_call(kinesis_server, "ListStreams", b"\xbf\x61", content_type=K.CBOR_CT)  # truncated map
    assert r.status == 400
    assert r.error_type == "SerializationException"
    assert error_type(r.cbor()) == "SerializationException"
    # A blob sent as an integer is a type error.
    r = cbor_call(kinesis_server, "PutRecord", {"StreamName": "x", "PartitionKey": "a", "Data": 23})
    assert r.status == 400 and r.error_type == "SerializationException"


def test_cbor_and_json_share_one_listener_and_state(kinesis_server, kstreams):
    name = kstreams.create(1)
    kc = kinesis_server.kinesis()
    seq = kc.put_record(StreamName=name, PartitionKey="j", Data=b"from-json")["SequenceNumber"]
    it = ok(cbor_call(kinesis_server, "GetShardIterator", {"StreamName": name, "ShardId": K.shard_id(0), "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": seq}))
    # A CBOR iterator is accepted by a JSON client and the other way round.
    r = kc.get_records(ShardIterator=it["ShardIterator"])
    assert [x["Data"] for x in r["Records"]] == [b"from-json"]
    got = ok(cbor_call(kinesis_server, "GetRecords", {"ShardIterator": K.iterator(kc, name, K.shard_id(0))}))
    assert [x["Data"] for x in got["Records"]] == [b"from-json"]
